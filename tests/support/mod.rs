//! Helpers shared by the end-to-end tests in this folder: a scratch folder, running the binary
//! as a process, checking a refusal, and tiny data sets written on the spot (Fashion-MNIST IDX
//! files and flower folders of small PNGs) so no test needs the network or the full sets.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{DynamicImage, ImageFormat, RgbImage};
use saliency::data::idx::encode_idx_u8;

pub const BIN: &str = env!("CARGO_BIN_EXE_saliency");

/// A temp folder, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("saliency-e2e-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The command for the binary in `cwd`, with no backtrace or data variable (a panic would then
/// print its `RUST_BACKTRACE` note, which `assert_refused` looks for).
pub fn command<S: AsRef<std::ffi::OsStr>>(cwd: &Path, args: &[S]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .env_remove("SALIENCY_DATA");
    c
}

/// Runs the binary in `cwd` and waits for it.
pub fn saliency<S: AsRef<std::ffi::OsStr>>(cwd: &Path, args: &[S]) -> Output {
    command(cwd, args)
        .output()
        .expect("the saliency binary runs")
}

/// Checks a refused run: exit code 1 or 2 (an error, not a crash), no panic, and every needle
/// in stderr. Returns stderr.
pub fn assert_refused(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        matches!(out.status.code(), Some(1) | Some(2)),
        "expected exit code 1 or 2, found {:?}; stderr:\n{stderr}",
        out.status
    );
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "stack backtrace",
        "memory allocation",
    ] {
        assert!(
            !stderr.contains(bad),
            "stderr shows a crash ({bad:?}):\n{stderr}"
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
pub fn assert_ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "expected success ({:?}); stderr:\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The names in `dir`, sorted (empty if it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// 28 x 28 pixels whose bright row band gives the class, so a network learns it quickly.
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

/// A tiny valid Fashion-MNIST copy in `root/fashion-mnist`: 64 training and 16 test images.
pub fn write_fashion(root: &Path) {
    let dir = root.join("fashion-mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let images = |n: usize| {
        let px: Vec<u8> = (0..n).flat_map(|i| pixels_for((i % 10) as u8, i)).collect();
        encode_idx_u8(&[n as u32, 28, 28], &px)
    };
    let labels = |n: usize| {
        let l: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        encode_idx_u8(&[n as u32], &l)
    };
    std::fs::write(dir.join("train-images-idx3-ubyte"), images(64)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels(64)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), images(16)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels(16)).unwrap();
}

/// A small PNG of noise (different for each `salt`).
pub fn png(side: u32, salt: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([
            (x * 7 + y * 13 + salt * 31) as u8,
            (x * y + salt * 17) as u8,
            ((x ^ y) + salt) as u8,
        ])
    });
    let mut c = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut c, ImageFormat::Png)
        .unwrap();
    c.into_inner()
}

/// `root/flowers/<class>/` with `per_class` small PNGs for each class.
pub fn write_flowers(root: &Path, classes: &[&str], per_class: u32) -> PathBuf {
    let set = root.join("flowers");
    for (k, class) in classes.iter().enumerate() {
        std::fs::create_dir_all(set.join(class)).unwrap();
        for i in 0..per_class {
            let salt = 40 * k as u32 + i;
            std::fs::write(set.join(format!("{class}/{i}.png")), png(8, salt)).unwrap();
        }
    }
    set
}

/// `train` with `data_dir` and `out` and `extra`; one thread, batch 16, one epoch unless `extra`
/// sets them; always quiet and without download.
pub fn train_args(data_dir: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "train".into(),
        "--no-download".into(),
        "--quiet".into(),
        "--data-dir".into(),
        data_dir.into(),
        "--out".into(),
        out.into(),
    ];
    for (flag, value) in [
        ("--epochs", "1"),
        ("--batch-size", "16"),
        ("--threads", "1"),
    ] {
        if !extra.contains(&flag) {
            args.extend([OsString::from(flag), OsString::from(value)]);
        }
    }
    args.extend(extra.iter().map(OsString::from));
    args
}

/// An untrained `deep` checkpoint at `path` for `dataset` with inputs `input` and `classes`.
pub fn write_checkpoint(path: &Path, dataset: &str, input: [usize; 3], classes: &[&str]) {
    use saliency::model_io::{save_model, ModelMeta};
    use saliency::models::{Model, ModelKind};
    let model: Model<f32> = ModelKind::Deep.build(input, classes.len(), 0).unwrap();
    let meta = ModelMeta {
        model: ModelKind::Deep,
        dataset: dataset.into(),
        input,
        class_names: classes.iter().map(|c| c.to_string()).collect(),
        seed: 0,
        step: 0,
        epoch: 1,
    };
    save_model(path, &model, &meta).unwrap();
}

/// The ten Fashion-MNIST class names.
pub fn fashion_classes() -> Vec<&'static str> {
    saliency::data::FASHION_MNIST_CLASS_NAMES.to_vec()
}
