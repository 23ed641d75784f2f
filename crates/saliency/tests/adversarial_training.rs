//! Adversarial training (`train --adversarial pgd`): bit-identical on any thread count, exact
//! on resume, its settings recorded and a changed one refused, and it trains something other
//! than the standard run.

mod common;

use saliency::models::ModelKind;
use saliency::train::{AdversarialTraining, RunRecord, TrainConfig, Trainer, TrainingAttack};

fn config(epochs: u64, epsilon: f64) -> TrainConfig {
    let mut c = TrainConfig::study(ModelKind::Deep);
    c.epochs = epochs;
    c.batch_size = 16;
    c.adversarial = Some(AdversarialTraining {
        attack: TrainingAttack::Pgd,
        epsilon,
        steps: 2,
        step_size: None,
        clean_fraction: 0.25,
    });
    c
}

fn classes() -> Vec<String> {
    saliency::data::fashion_mnist::CLASS_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn bits(t: &Trainer) -> Vec<u32> {
    t.model
        .params
        .iter()
        .flat_map(|p| p.data().iter().map(|v| v.to_bits()))
        .collect()
}

#[test]
fn adversarial_training_repeats_bit_for_bit_on_any_thread_count() {
    let (train, test) = common::fashion();
    let (train, test) = (train.take(96), test.take(32));
    let run = |threads: usize, c: TrainConfig| {
        tensor::testing::in_pool(threads, || {
            let mut t = Trainer::new(c, [1, 28, 28], classes()).unwrap();
            t.run(&train, &test, None, &mut [], &mut |_| {}).unwrap();
            bits(&t)
        })
    };
    let one = run(1, config(1, 0.1));
    assert!(
        one == run(2, config(1, 0.1)),
        "weights differ between 1 and 2 threads"
    );
    let mut standard = config(1, 0.1);
    standard.adversarial = None;
    assert!(
        one != run(1, standard),
        "adversarial examples change the training"
    );
}

#[test]
fn adversarial_training_resumes_exactly_and_refuses_a_changed_setting() {
    let (train, test) = common::fashion();
    let (train, test) = (train.take(64), test.take(32));
    let dir = std::env::temp_dir().join(format!("saliency-adv-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut straight = Trainer::new(config(2, 0.1), [1, 28, 28], classes()).unwrap();
    straight
        .run(&train, &test, None, &mut [], &mut |_| {})
        .unwrap();
    let mut first = Trainer::new(config(1, 0.1), [1, 28, 28], classes()).unwrap();
    first
        .run(&train, &test, Some(&dir), &mut [], &mut |_| {})
        .unwrap();
    // The settings are in config.json.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(json["adversarial"]["attack"], "pgd");
    assert_eq!(json["adversarial"]["epsilon"], 0.1);
    assert_eq!(json["adversarial"]["steps"], 2);
    let resume = |c: TrainConfig| {
        Trainer::resume(
            c,
            [1, 28, 28],
            classes(),
            &RunRecord::default(),
            &dir,
            false,
        )
    };
    let mut resumed = resume(config(2, 0.1)).unwrap();
    assert_eq!((resumed.step, resumed.epoch), (4, 1));
    resumed
        .run(&train, &test, Some(&dir), &mut [], &mut |_| {})
        .unwrap();
    assert!(bits(&straight) == bits(&resumed), "resumed weights differ");
    // Another eps, or no adversarial training at all, is a different run.
    let err = resume(config(3, 0.2)).err().expect("refused").to_string();
    assert!(
        err.contains("adversarial.epsilon") && err.contains("0.1") && err.contains("0.2"),
        "{err}"
    );
    let mut standard = config(3, 0.1);
    standard.adversarial = None;
    let err = resume(standard).err().expect("refused").to_string();
    assert!(err.contains("adversarial"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_adversarial_training_options_are_refused_naming_the_option() {
    let dir = std::env::temp_dir().join(format!("saliency-adv-train-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let refused = |extra: &[&str], needles: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_saliency"))
            .args([
                "train",
                "--no-download",
                "--quiet",
                "--limit-train",
                "32",
                "--out",
            ])
            .arg(dir.join("run"))
            .arg("--data-dir")
            .arg(common::data_root())
            .args(extra)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} should be refused");
        assert!(!stderr.contains("panicked"), "{stderr}");
        for n in needles {
            assert!(
                stderr.contains(n),
                "{extra:?}: message lacks '{n}':\n{stderr}"
            );
        }
        assert!(!dir.join("run").join("config.json").exists());
    };
    refused(
        &["--adversarial", "pgd", "--epsilon", "-0.1"],
        &["--epsilon", "-0.1"],
    );
    refused(&["--adversarial", "pgd", "--steps", "0"], &["--steps", "0"]);
    refused(
        &["--adversarial", "pgd", "--step-size", "NaN"],
        &["--step-size", "NaN"],
    );
    refused(
        &["--adversarial", "pgd", "--step-size", "-0.01"],
        &["--step-size", "-0.01"],
    );
    refused(
        &["--adversarial", "pgd", "--steps", "-2"],
        &["--steps", "-2"],
    );
    refused(
        &["--adversarial", "pgd", "--clean-fraction", "1.5"],
        &["--clean-fraction", "1.5"],
    );
    refused(
        &["--adversarial", "fgsm"],
        &["--adversarial", "fgsm", "pgd"],
    );
    refused(&["--epsilon", "0.1"], &["--epsilon", "--adversarial"]);
    let _ = std::fs::remove_dir_all(&dir);
}
