//! `saliency adversary` from a script: `--json` prints one JSON document (tables on stderr), the
//! strong attacks and robust accuracy curves run from the CLI, `--loss` follows the run's
//! config.json, and bad options are refused naming the option.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use saliency::model_io::{save_model, ModelMeta};
use saliency::models::{Model, ModelKind};

/// An untrained `deep` checkpoint in a fresh folder.
fn checkpoint(tag: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("saliency-cli-adv-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let model: Model<f32> = ModelKind::Deep.build([1, 28, 28], 10, 1).unwrap();
    let meta = ModelMeta {
        model: ModelKind::Deep,
        dataset: "fashion-mnist".into(),
        input: [1, 28, 28],
        class_names: saliency::data::fashion_mnist::CLASS_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        seed: 0,
        step: 0,
        epoch: 0,
    };
    let path = dir.join("model.safetensors");
    save_model(&path, &model, &meta).unwrap();
    (dir, path)
}

fn run(ck: &Path, out: &Path, extra: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_saliency"))
        .arg("adversary")
        .arg("--checkpoint")
        .arg(ck)
        .arg("--out")
        .arg(out)
        .args(["--limit", "6", "--indices", "0..2", "--threads", "1"])
        .args(extra)
        .arg("--data-dir")
        .arg(common::data_root())
        .arg("--no-download")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
    output
}

fn refused(ck: &Path, out: &Path, extra: &[&str], needles: &[&str]) {
    let o = run(ck, out, extra);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{extra:?} should be refused");
    for n in needles {
        assert!(
            stderr.contains(n),
            "{extra:?}: message lacks '{n}':\n{stderr}"
        );
    }
    assert!(
        !out.join("summary.json").exists(),
        "nothing written for {extra:?}"
    );
}

#[test]
fn json_is_one_document_with_every_strong_attack_and_the_robust_curve() {
    let (dir, ck) = checkpoint("json");
    let out = dir.join("adv");
    let o = run(
        &ck,
        &out,
        &[
            "--method",
            "pgd,pgd-l2,fgsm-targeted,pgd-targeted,deepfool,cw-l2",
            "--epsilons",
            "0,0.1,0.5",
            "--steps",
            "2",
            "--deepfool-max-iter",
            "3",
            "--cw-binary-steps",
            "2",
            "--cw-steps",
            "5",
            "--target-class",
            "3",
            "--robust-accuracy",
            "--json",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let stdout = String::from_utf8(o.stdout).unwrap();
    // One document: it parses whole, and the tables went to stderr.
    let doc: serde_json::Value =
        serde_json::from_str(&stdout).expect("stdout is one JSON document");
    assert!(
        stderr.contains("| method |") && stderr.contains("robust accuracy"),
        "{stderr}"
    );
    assert!(!stdout.contains("| method |"));
    assert!(
        !stderr.contains("attacked 6/6"),
        "no progress drawn when stderr is not a terminal"
    );
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 6 * 3);
    let robust = doc["robust_accuracy"].as_array().unwrap();
    assert_eq!(robust.len(), 18);
    for r in results.iter().chain(robust) {
        assert!(
            r["method"].is_string() && r["flipped_fraction"].is_number(),
            "{r}"
        );
    }
    for r in robust {
        let eps = r["epsilon"].as_f64().unwrap();
        let (l2, linf) = (
            r["mean_l2"].as_f64().unwrap(),
            r["mean_linf"].as_f64().unwrap(),
        );
        assert!(
            (0.0..=1.0).contains(&r["success_rate"].as_f64().unwrap()),
            "{r}"
        );
        let bound = if r["norm"] == "l2" { l2 } else { linf };
        assert!(bound <= eps + 1e-6, "{r}: mean size above the budget");
        if eps == 0.0 {
            assert_eq!(r["accuracy"], r["accuracy_before"], "{r}");
        }
    }
    assert_eq!(doc["config"]["target"], serde_json::json!({"class": 3}));
    assert_eq!(doc["config"]["pgd"]["steps"], 2);
    for f in [
        "summary.json",
        "robust_accuracy.json",
        "robust_accuracy.md",
        "robust_accuracy.svg",
        "triptych_cw-l2.png",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    let svg = std::fs::read_to_string(out.join("robust_accuracy.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 6);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_attack_loss_is_the_one_the_run_trained_with() {
    let (dir, ck) = checkpoint("loss");
    let loss_of = |extra: &[&str], name: &str| {
        let out = dir.join(name);
        let mut args = vec![
            "--method",
            "pgd",
            "--epsilon",
            "0.1",
            "--steps",
            "1",
            "--json",
        ];
        args.extend(extra);
        let o = run(&ck, &out, &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        doc["config"]["loss"].as_str().unwrap().to_string()
    };
    assert_eq!(
        loss_of(&[], "a"),
        "cross-entropy",
        "no config.json: cross-entropy"
    );
    std::fs::write(
        dir.join("config.json"),
        r#"{"loss": "double-softmax", "epochs": 1}"#,
    )
    .unwrap();
    assert_eq!(loss_of(&[], "b"), "double-softmax", "the run's loss");
    assert_eq!(
        loss_of(&["--loss", "cross-entropy"], "c"),
        "cross-entropy",
        "--loss wins"
    );
    std::fs::write(dir.join("config.json"), r#"{"loss": "hinge"}"#).unwrap();
    refused(
        &ck,
        &dir.join("d"),
        &["--method", "pgd"],
        &["config.json", "hinge", "--loss"],
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_attack_options_are_refused_naming_the_option() {
    let (dir, ck) = checkpoint("errors");
    let out = dir.join("adv");
    refused(
        &ck,
        &out,
        &["--method", "pgd", "--step-size", "-0.1"],
        &["--step-size", "-0.1"],
    );
    refused(
        &ck,
        &out,
        &["--method", "pgd", "--steps", "0"],
        &["--steps", "0"],
    );
    refused(
        &ck,
        &out,
        &["--method", "pgd", "--epsilon", "-1"],
        &["--epsilon", "-1"],
    );
    refused(
        &ck,
        &out,
        &["--method", "pgd-targeted", "--target-class", "12"],
        &["--target-class", "12", "below 10"],
    );
    // Item 5 of issue 23: each bad option named, whichever attack or list carries it.
    refused(
        &ck,
        &out,
        &["--method", "fgsm-targeted", "--target-class", "10"],
        &["--target-class", "10", "below 10"],
    );
    refused(
        &ck,
        &out,
        &["--method", "pgd,fgsm", "--epsilons", "0.1,-0.05"],
        &["--epsilon", "-0.05"],
    );
    refused(
        &ck,
        &out,
        &["--method", "fgsm", "--epsilon", "-0.01"],
        &["--epsilon", "-0.01"],
    );
    refused(
        &ck,
        &out,
        &["--method", "pgd-l2", "--step-size", "-2"],
        &["--step-size", "-2"],
    );
    refused(
        &ck,
        &out,
        &["--method", "pgd", "--steps", "-3"],
        &["--steps", "-3"],
    );
    refused(
        &ck,
        &out,
        &["--method", "pgd", "--restarts", "0"],
        &["--restarts", "0"],
    );
    refused(
        &ck,
        &out,
        &["--method", "pgd", "--restarts", "3", "--no-random-start"],
        &["--restarts", "3", "--no-random-start"],
    );
    refused(
        &ck,
        &out,
        &["--method", "pgd", "--target-class", "2"],
        &["--target-class", "fgsm-targeted"],
    );
    refused(
        &ck,
        &out,
        &["--method", "pgd-targeted", "--target-class", "most"],
        &["--target-class", "most"],
    );
    refused(
        &ck,
        &out,
        &["--method", "pgdd"],
        &["pgdd", "pgd-l2", "cw-l2"],
    );
    refused(
        &ck,
        &out,
        &["--loss", "hinge"],
        &["--loss", "hinge", "double-softmax"],
    );
    refused(
        &ck,
        &out,
        &["--method", "cw-l2", "--cw-steps", "0"],
        &["--cw-steps", "0"],
    );
    refused(
        &ck,
        &out,
        &["--method", "deepfool", "--overshoot", "-1"],
        &["--overshoot", "-1"],
    );
    std::fs::remove_dir_all(dir).unwrap();
}
