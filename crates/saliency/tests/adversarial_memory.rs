//! The memory of adversarial training (issue 23, item 5): a PGD-k step runs its k input-gradient
//! passes one after the other on the evaluation tapes, beside the training step's own, so its
//! peak memory is that of about two standard steps whatever k, not k of them.
//!
//! Each case runs in a process of its own (this test binary, re-run with one case selected by an
//! environment variable), and its peak resident set size (Linux `VmHWM`) is the measure.

use saliency::data::Dataset;
use saliency::models::ModelKind;
use saliency::train::{AdversarialTraining, TrainConfig, Trainer, TrainingAttack};

/// The environment variable that selects a child's case.
const CASE: &str = "SALIENCY_ADVERSARIAL_MEMORY_CASE";

/// Images per minibatch: large enough that a step's tapes dwarf the process's own memory.
const BATCH: usize = 128;

/// The process's peak resident set size, KiB.
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `n` images of seeded pixels in [0, 1] with labels 0..9.
fn data(n: usize, name: &str) -> Dataset {
    Dataset {
        name: name.into(),
        images: (0..n * 784)
            .map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 999.0)
            .collect(),
        labels: (0..n).map(|i| (i % 10) as u32).collect(),
        shape: [1, 28, 28],
        class_names: (0..10).map(|c| format!("c{c}")).collect(),
    }
}

/// The training settings of a case: `standard`, `pgd-K`, or `idle` (built, never stepped).
fn config(case: &str) -> TrainConfig {
    let mut c = TrainConfig::study(ModelKind::Deep);
    c.epochs = 1;
    c.batch_size = BATCH;
    if let Some(k) = case.strip_prefix("pgd-") {
        c.adversarial = Some(AdversarialTraining {
            attack: TrainingAttack::Pgd,
            epsilon: 0.1,
            steps: k.parse().unwrap(),
            step_size: None,
            clean_fraction: 0.0,
        });
    }
    c
}

#[test]
#[ignore = "a child of the test below, which runs it once per case"]
fn memory_case() {
    let case = std::env::var(CASE).expect("run by the test below, with its case set");
    let (train, test) = (data(3 * BATCH, "train"), data(8, "test"));
    tensor::testing::in_pool(2, || {
        let mut t = Trainer::new(config(&case), train.shape, train.class_names.clone()).unwrap();
        if case != "idle" {
            t.run(&train, &test, None, &mut [], &mut |_| {}).unwrap();
        }
    });
    println!("PEAK_KIB {}", peak_kib());
}

/// The peak resident memory of a child process running `case`, KiB.
fn peak_of(case: &str) -> u64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "memory_case", "--nocapture"])
        .env(CASE, case)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "case {case} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_KIB "))
        .unwrap_or_else(|| panic!("case {case} printed no peak:\n{stdout}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux: the peak memory is read from /proc/self/status"
)]
fn a_pgd_training_step_holds_about_two_standard_steps_of_memory_whatever_its_steps() {
    let idle = peak_of("idle");
    let above = |case: &str| peak_of(case).saturating_sub(idle) as f64 / 1024.0;
    let standard = above("standard");
    let (one, eight) = (above("pgd-1"), above("pgd-8"));
    eprintln!(
        "MiB above an idle process: standard {standard:.1}, PGD-1 {one:.1}, PGD-8 {eight:.1}"
    );
    // The steps' tapes are what is measured: they must dominate the process's own memory.
    assert!(
        standard > 8.0,
        "a standard step took only {standard:.1} MiB"
    );
    // Eight passes in turn reuse the first one's memory (k-fold would be about 8 times).
    assert!(
        eight <= 1.25 * one + 4.0,
        "PGD-8 {eight:.1} MiB against PGD-1 {one:.1} MiB"
    );
    // One evaluation-mode gradient pass beside a training step: at most about two steps' worth.
    assert!(
        eight <= 2.5 * standard,
        "PGD-8 {eight:.1} MiB against a standard step's {standard:.1} MiB"
    );
}
