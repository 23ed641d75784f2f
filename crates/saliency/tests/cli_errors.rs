//! The CLI on bad inputs: each case runs the real `saliency` binary on tiny files made in a temp
//! folder and checks it exits non-zero with a message naming the file or flag, what was expected
//! and what was found, without a panic, and without leaving a half-written output file.
//!
//! Items refer to the hardening checklist (1-18, 23, 25). Nothing reaches the network: every
//! run passes `--no-download` and `--data-dir`.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use saliency::data::idx::encode_idx_u8;
use saliency::model_io::{save_model, ModelMeta};
use saliency::models::{Model, ModelKind};

const BIN: &str = env!("CARGO_BIN_EXE_saliency");

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// A temp folder removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("saliency-cli-errors-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary in `cwd` with no backtrace variable (a panic would then print its
/// `RUST_BACKTRACE` note, which the checks look for) and no data variable.
fn saliency<S: AsRef<std::ffi::OsStr>>(cwd: &Path, args: &[S]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .env_remove("SALIENCY_DATA")
        .output()
        .expect("the saliency binary runs")
}

/// Checks a refused run: non-zero exit, no panic, and every needle in stderr. Returns stderr.
fn assert_refused(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected a failure, the run succeeded; stderr:\n{stderr}"
    );
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !stderr.contains(bad),
            "stderr shows a panic ({bad:?}):\n{stderr}"
        );
    }
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    stderr
}

/// Checks a successful run; returns stderr.
fn assert_ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "expected success; stderr:\n{stderr}");
    stderr
}

/// Every file under `dir` whose name marks an unfinished atomic write (`.NAME.tmp-PID`).
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

/// 28 x 28 pixels for label `label`: a bright row band whose position gives the class, so a
/// network can learn it in a few steps.
fn pixels_for(label: u8, index: usize) -> Vec<u8> {
    (0..28 * 28)
        .map(|p| {
            let (row, col) = (p / 28, p % 28);
            if row / 3 == label as usize % 9 {
                200 + (col % 50) as u8
            } else {
                ((p * 7 + index * 13) % 40) as u8
            }
        })
        .collect()
}

fn images_file(n: usize) -> Vec<u8> {
    let px: Vec<u8> = (0..n).flat_map(|i| pixels_for((i % 10) as u8, i)).collect();
    encode_idx_u8(&[n as u32, 28, 28], &px)
}

fn labels_file(n: usize) -> Vec<u8> {
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    encode_idx_u8(&[n as u32], &labels)
}

/// A tiny valid Fashion-MNIST copy in `dir`: 64 training and 16 test images.
fn write_fashion(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(TRAIN_IMAGES), images_file(64)).unwrap();
    std::fs::write(dir.join(TRAIN_LABELS), labels_file(64)).unwrap();
    std::fs::write(dir.join(TEST_IMAGES), images_file(16)).unwrap();
    std::fs::write(dir.join(TEST_LABELS), labels_file(16)).unwrap();
}

/// `train` on `data` into `out` with `extra` options; unless `extra` sets them: one epoch,
/// batch 16, one thread. Always quiet and without download.
fn train_args(data: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "train".into(),
        "--no-download".into(),
        "--quiet".into(),
        "--data-dir".into(),
        data.into(),
        "--out".into(),
        out.into(),
    ];
    for (flag, value) in [
        ("--epochs", "1"),
        ("--batch-size", "16"),
        ("--threads", "1"),
    ] {
        if !extra
            .iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
        {
            args.extend([OsString::from(flag), OsString::from(value)]);
        }
    }
    args.extend(extra.iter().map(OsString::from));
    args
}

/// Runs `train` on a Fashion-MNIST copy in which `file` holds `bytes` instead, expecting a
/// refusal naming the file and each needle, and no output folder.
fn train_with_bad_file(tag: &str, file: &str, bytes: &[u8], needles: &[&str]) -> String {
    let s = Scratch::new(tag);
    let data = s.join("data");
    write_fashion(&data);
    std::fs::write(data.join(file), bytes).unwrap();
    let out = s.join("run");
    let run = saliency(&s.0, &train_args(&data, &out, &[]));
    let path = data.join(file).display().to_string();
    let mut all = vec![path.as_str()];
    all.extend_from_slice(needles);
    let stderr = assert_refused(&run, &all);
    assert!(!out.exists(), "no output folder after a data error");
    stderr
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn class_names(n: usize) -> Vec<String> {
    saliency::data::FASHION_MNIST_CLASS_NAMES[..n]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn deep_meta(classes: usize) -> ModelMeta {
    ModelMeta {
        model: ModelKind::Deep,
        dataset: "fashion-mnist".into(),
        input: [1, 28, 28],
        class_names: class_names(classes),
        seed: 0,
        step: 0,
        epoch: 1,
    }
}

/// A valid deep checkpoint for Fashion-MNIST at `path`.
fn write_good_checkpoint(path: &Path) {
    let model: Model<f32> = ModelKind::Deep.build([1, 28, 28], 10, 0).unwrap();
    save_model(path, &model, &deep_meta(10)).unwrap();
}

fn eval_args(ckpt: &Path, data: &Path) -> Vec<OsString> {
    vec![
        "eval".into(),
        "--checkpoint".into(),
        ckpt.into(),
        "--data-dir".into(),
        data.into(),
        "--no-download".into(),
        "--threads".into(),
        "1".into(),
    ]
}

#[path = "cli_errors/checkpoints.rs"]
mod checkpoints;
#[path = "cli_errors/idx.rs"]
mod idx;
#[path = "cli_errors/image_folders.rs"]
mod image_folders;
#[path = "cli_errors/run_folder.rs"]
mod run_folder;
