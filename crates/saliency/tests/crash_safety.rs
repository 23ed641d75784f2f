//! Crash safety of a training run: SIGKILL the `saliency train` process at different moments
//! (several while it is writing its checkpoints), then check that the run folder holds intact
//! files only, that the checkpoint evaluates, and that `--resume` continues and finishes with
//! the same weights as a run that was never interrupted.
//!
//! What a kill may leave, by design (see `Trainer::run`): every file is replaced atomically, in
//! the order metrics.jsonl, model.safetensors, state.safetensors, so model.safetensors may be one
//! epoch ahead of state.safetensors, never behind; resuming redoes that epoch, and trims
//! metrics.jsonl to the state's epochs first. A writer killed mid-write leaves a hidden
//! `.NAME.tmp-PID` file and its lock file (`.saliency.lock`, holding its PID): the temp file is
//! never read (every reader opens the fixed names), and the next `train` into the folder takes
//! over the dead process's lock and deletes the temp files. The checks below accept such
//! leftovers and nothing else.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use saliency::checkpoint;
use saliency::data::idx::encode_idx_u8;
use saliency::model_io::load_model;

const BIN: &str = env!("CARGO_BIN_EXE_saliency");

/// The files a run folder may hold after a kill.
const RUN_FILES: [&str; 4] = [
    "config.json",
    "metrics.jsonl",
    "model.safetensors",
    "state.safetensors",
];

/// Longest wait for a run to reach the moment a round kills it.
const PATIENCE: Duration = Duration::from_secs(120);

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("saliency-crash-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tiny Fashion-MNIST copy: `n` training and `n / 8` test images, a class-dependent band each.
fn write_fashion(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (stem, count) in [("train", n), ("t10k", n / 8)] {
        let labels: Vec<u8> = (0..count).map(|i| (i % 10) as u8).collect();
        let pixels: Vec<u8> = labels
            .iter()
            .enumerate()
            .flat_map(|(i, &l)| {
                (0..28 * 28).map(move |p| {
                    if (p / 28) / 3 == l as usize % 9 {
                        220
                    } else {
                        ((p * 7 + i * 13) % 40) as u8
                    }
                })
            })
            .collect();
        std::fs::write(
            dir.join(format!("{stem}-images-idx3-ubyte")),
            encode_idx_u8(&[count as u32, 28, 28], &pixels),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{stem}-labels-idx1-ubyte")),
            encode_idx_u8(&[count as u32], &labels),
        )
        .unwrap();
    }
}

fn train_args(data: &Path, out: &Path, epochs: u64, resume: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "train".into(),
        "--data-dir".into(),
        data.into(),
        "--no-download".into(),
        "--quiet".into(),
        "--threads".into(),
        "1".into(),
        "--batch-size".into(),
        "16".into(),
        "--epochs".into(),
        epochs.to_string().into(),
        "--out".into(),
        out.into(),
    ];
    if resume {
        args.push("--resume".into());
    }
    args
}

fn run_ok(args: &[OsString]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "saliency {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Names in `dir`, split into the expected run files and leftover temp files of the pattern
/// `.NAME.tmp-PID` for a run file NAME; the lock file of a killed writer is skipped; panics on
/// anything else.
fn classify(dir: &Path) -> (BTreeSet<String>, Vec<String>) {
    let mut files = BTreeSet::new();
    let mut temps = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if RUN_FILES.contains(&name.as_str()) {
            files.insert(name);
        } else if name == ".saliency.lock" {
            continue;
        } else if is_temp_of_run_file(&name) {
            temps.push(name);
        } else {
            panic!("unexpected file {name:?} in {}", dir.display());
        }
    }
    (files, temps)
}

fn is_temp_of_run_file(name: &str) -> bool {
    RUN_FILES.iter().any(|f| {
        name.strip_prefix(&format!(".{f}.tmp-"))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The epoch a checkpoint's metadata records.
fn epoch_of(path: &Path) -> u64 {
    let ckpt = checkpoint::load(path)
        .unwrap_or_else(|e| panic!("{} must load intact after a kill: {e}", path.display()));
    ckpt.metadata["epoch"].parse().unwrap()
}

/// How a round picks its moment to kill.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// As soon as a temp file shows up after the first checkpoint: a write is in progress.
    DuringWrite,
    /// This long after the first checkpoint appeared (somewhere in training or writing).
    After(Duration),
}

/// Starts a long run, kills it at `moment` once its first checkpoint exists, and returns
/// whether a temp file was seen just before the kill.
fn start_and_kill(data: &Path, out: &Path, moment: Moment) -> bool {
    let mut child = Command::new(BIN)
        .args(train_args(data, out, 1000, false))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut wait_for = |what: &str, ready: &mut dyn FnMut() -> bool| {
        while !ready() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the run ended ({status}) before {what}");
            }
            assert!(started.elapsed() < PATIENCE, "no {what} after {PATIENCE:?}");
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    wait_for("the first checkpoint", &mut || {
        out.join("state.safetensors").exists()
    });
    let mut saw_temp = false;
    match moment {
        Moment::DuringWrite => {
            wait_for("a checkpoint write", &mut || {
                saw_temp = std::fs::read_dir(out).is_ok_and(|rd| {
                    rd.filter_map(|e| e.ok())
                        .any(|e| is_temp_of_run_file(&e.file_name().to_string_lossy()))
                });
                saw_temp
            });
        }
        Moment::After(d) => std::thread::sleep(d),
    }
    child.kill().unwrap(); // SIGKILL on unix: no destructor, no cleanup runs
    child.wait().unwrap();
    saw_temp
}

#[test]
fn sigkill_at_any_moment_leaves_a_loadable_checkpoint_and_resume_finishes() {
    let s = Scratch::new("kill");
    let data = s.0.join("data");
    write_fashion(&data, 384);
    let moments = [
        Moment::DuringWrite,
        Moment::After(Duration::ZERO),
        Moment::DuringWrite,
        Moment::After(Duration::from_millis(15)),
        Moment::DuringWrite,
        Moment::After(Duration::from_millis(120)),
    ];
    let mut mid_write = 0;
    let mut leftovers = 0;
    for (round, &moment) in moments.iter().enumerate() {
        let out = s.0.join(format!("run{round}"));
        mid_write += usize::from(start_and_kill(&data, &out, moment));

        // Only run files and temp files of run files; the two checkpoints are present.
        let (files, temps) = classify(&out);
        leftovers += temps.len();
        for f in ["config.json", "model.safetensors", "state.safetensors"] {
            assert!(
                files.contains(f),
                "round {round} ({moment:?}): {f} missing, have {files:?}"
            );
        }
        // Both checkpoints load with valid checksums; the model is never behind the state.
        let state_epoch = epoch_of(&out.join("state.safetensors"));
        let model_epoch = epoch_of(&out.join("model.safetensors"));
        assert!(state_epoch >= 1, "round {round}: state epoch {state_epoch}");
        assert!(
            model_epoch == state_epoch || model_epoch == state_epoch + 1,
            "round {round}: model epoch {model_epoch}, state epoch {state_epoch}"
        );
        let (_, meta) = load_model(&out.join("model.safetensors")).unwrap();
        assert_eq!(meta.epoch, model_epoch);
        // metrics.jsonl is whole lines of JSON (it may hold one line past the state).
        let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        for line in metrics.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| {
                panic!("round {round}: half-written metrics line {line:?}: {e}")
            });
        }
        // The CLI evaluates the surviving model.
        run_ok(&[
            "eval".into(),
            "--checkpoint".into(),
            out.join("model.safetensors").into(),
            "--data-dir".into(),
            data.clone().into(),
            "--no-download".into(),
            "--threads".into(),
            "1".into(),
        ]);

        // Resume for one more epoch than the state holds: it continues and completes, with
        // any temp files still lying around.
        let target = state_epoch + 1;
        run_ok(&train_args(&data, &out, target, true));
        assert_eq!(epoch_of(&out.join("state.safetensors")), target);
        assert_eq!(epoch_of(&out.join("model.safetensors")), target);
        let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        let epochs: Vec<u64> = metrics
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            epochs,
            (1..=target).collect::<Vec<_>>(),
            "round {round}: one metrics line per epoch across the kill"
        );
        let (_, temps_after) = classify(&out);
        assert!(
            temps_after.is_empty(),
            "resume clears the killed writer's temp files: {temps_after:?}"
        );
        assert!(
            !out.join(".saliency.lock").exists(),
            "the resumed run releases its lock"
        );

        // The last round also checks the kill changed nothing: the same epochs straight through
        // give bit-identical checkpoints.
        if round == moments.len() - 1 {
            let straight = s.0.join("straight");
            run_ok(&train_args(&data, &straight, target, false));
            for f in ["model.safetensors", "state.safetensors"] {
                assert!(
                    std::fs::read(out.join(f)).unwrap() == std::fs::read(straight.join(f)).unwrap(),
                    "{f} after kill + resume differs from an uninterrupted run"
                );
            }
        }
    }
    eprintln!(
        "{} rounds: {mid_write} killed mid-write, {leftovers} temp file(s) left behind",
        moments.len()
    );
    assert!(mid_write >= 1, "no round caught a write in progress");
}

#[test]
fn leftover_temp_files_are_ignored_by_every_reader() {
    // A writer killed mid-write, simulated: partial temp files beside a complete run.
    let s = Scratch::new("temps");
    let data = s.0.join("data");
    write_fashion(&data, 64);
    let out = s.0.join("run");
    run_ok(&train_args(&data, &out, 1, false));
    let model = std::fs::read(out.join("model.safetensors")).unwrap();
    for f in RUN_FILES {
        std::fs::write(
            out.join(format!(".{f}.tmp-999999")),
            &model[..model.len() / 3],
        )
        .unwrap();
    }
    load_model(&out.join("model.safetensors")).unwrap();
    run_ok(&train_args(&data, &out, 2, true));
    assert_eq!(epoch_of(&out.join("state.safetensors")), 2);
    let (files, temps) = classify(&out);
    assert_eq!(files.len(), 4);
    assert!(
        temps.is_empty(),
        "the next writer (holding the lock) deletes stale temp files: {temps:?}"
    );
}
