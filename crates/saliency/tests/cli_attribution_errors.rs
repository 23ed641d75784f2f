//! Bad options of `saliency attribute` and `saliency adversary`: clear errors, no panics.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use saliency::model_io::{save_model, ModelMeta};
use saliency::models::{Model, ModelKind};

fn names() -> Vec<String> {
    saliency::data::fashion_mnist::CLASS_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// An untrained `deep` checkpoint (optionally with every weight zero) in a fresh folder.
fn checkpoint(tag: &str, zero: bool) -> (PathBuf, PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("saliency-attr-errors-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut model: Model<f32> = ModelKind::Deep.build([1, 28, 28], 10, 1).unwrap();
    if zero {
        model
            .params
            .iter_mut()
            .for_each(|p| p.data_mut().iter_mut().for_each(|v| *v = 0.0));
    }
    let meta = ModelMeta {
        model: ModelKind::Deep,
        dataset: "fashion-mnist".into(),
        input: [1, 28, 28],
        class_names: names(),
        seed: 0,
        step: 0,
        epoch: 0,
    };
    let path = dir.join("model.safetensors");
    save_model(&path, &model, &meta).unwrap();
    (dir, path)
}

/// Runs the binary; returns (success, stderr).
fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_saliency"))
        .args(args)
        .arg("--data-dir")
        .arg(common::data_root())
        .arg("--no-download")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "a panic: {stderr}"
    );
    (out.status.success(), stderr)
}

fn expect_error(args: &[&str], needles: &[&str]) {
    let (ok, stderr) = run(args);
    assert!(!ok, "{args:?} should fail");
    for n in needles {
        assert!(
            stderr.contains(n),
            "{args:?}: message lacks '{n}':\n{stderr}"
        );
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn negative_or_nan_epsilon_is_refused() {
    let (dir, ck) = checkpoint("eps", false);
    let out = dir.join("adv");
    expect_error(
        &[
            "adversary",
            "--checkpoint",
            s(&ck),
            "--epsilon",
            "-0.1",
            "--out",
            s(&out),
        ],
        &["--epsilon", "-0.1"],
    );
    expect_error(
        &[
            "adversary",
            "--checkpoint",
            s(&ck),
            "--epsilons",
            "0.01,NaN",
            "--out",
            s(&out),
        ],
        &["--epsilon", "NaN"],
    );
    expect_error(
        &[
            "adversary",
            "--checkpoint",
            s(&ck),
            "--method",
            "fgsn",
            "--out",
            s(&out),
        ],
        &["fgsn"],
    );
    expect_error(
        &[
            "adversary",
            "--checkpoint",
            s(&ck),
            "--method",
            "iterative-fgsm",
            "--steps",
            "0",
            "--out",
            s(&out),
        ],
        &["steps", "0"],
    );
    assert!(
        !out.join("summary.json").exists(),
        "no output for refused options"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn zero_steps_and_bad_patches_are_refused() {
    let (dir, ck) = checkpoint("patch", false);
    let out = dir.join("attr");
    expect_error(
        &[
            "attribute",
            "--checkpoint",
            s(&ck),
            "--method",
            "integrated-gradients",
            "--steps",
            "0",
            "--out",
            s(&out),
        ],
        &["steps", "0"],
    );
    expect_error(
        &[
            "attribute",
            "--checkpoint",
            s(&ck),
            "--method",
            "occlusion",
            "--patch",
            "0",
            "--out",
            s(&out),
        ],
        &["patch", "0"],
    );
    expect_error(
        &[
            "attribute",
            "--checkpoint",
            s(&ck),
            "--method",
            "occlusion",
            "--patch",
            "29",
            "--out",
            s(&out),
        ],
        &["patch", "29"],
    );
    expect_error(
        &[
            "attribute",
            "--checkpoint",
            s(&ck),
            "--method",
            "occlusion",
            "--stride",
            "0",
            "--out",
            s(&out),
        ],
        &["stride", "0"],
    );
    expect_error(
        &[
            "attribute",
            "--checkpoint",
            s(&ck),
            "--method",
            "saliency-maps",
            "--out",
            s(&out),
        ],
        &["--method", "saliency-maps"],
    );
    assert!(!out.join("attributions.safetensors").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn targets_and_indices_out_of_range_are_refused() {
    let (dir, ck) = checkpoint("range", false);
    let out = dir.join("attr");
    // The last valid index and the first invalid one, whichever copy of the data is found.
    let n = common::fashion().1.len();
    let (indices, first_bad, count) = (
        format!("{},{n}", n - 1),
        n.to_string(),
        format!("{n} images"),
    );
    expect_error(
        &[
            "attribute",
            "--checkpoint",
            s(&ck),
            "--target",
            "10",
            "--out",
            s(&out),
        ],
        &["target class 10", "below 10"],
    );
    expect_error(
        &[
            "attribute",
            "--checkpoint",
            s(&ck),
            "--indices",
            &indices,
            "--out",
            s(&out),
        ],
        &["--indices", &first_bad, &count],
    );
    expect_error(
        &[
            "adversary",
            "--checkpoint",
            s(&ck),
            "--indices",
            "20000",
            "--out",
            s(&out),
        ],
        &["--indices", "20000"],
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_all_zero_map_is_drawn_with_a_warning() {
    // Every weight zero: the output is constant, so every input gradient is exactly zero.
    let (dir, ck) = checkpoint("zero", true);
    let out = dir.join("attr");
    let (ok, stderr) = run(&[
        "attribute",
        "--checkpoint",
        s(&ck),
        "--indices",
        "0..2",
        "--out",
        s(&out),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("zero everywhere"), "{stderr}");
    let ckpt = saliency::checkpoint::load(&out.join("attributions.safetensors")).unwrap();
    assert!(ckpt
        .get("attributions")
        .unwrap()
        .data
        .iter()
        .all(|&v| v == 0.0));
    assert!(out.join("attributions.png").is_file());
    std::fs::remove_dir_all(dir).unwrap();
}
