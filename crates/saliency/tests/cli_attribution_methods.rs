//! `saliency attribute --method M` for every method: it runs, writes maps shaped as documented,
//! and refuses bad method options by name without writing anything.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use saliency::model_io::{save_model, ModelMeta};
use saliency::models::{Model, ModelKind};

/// An untrained `deep` checkpoint in a fresh folder.
fn checkpoint(tag: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "saliency-attr-methods-{tag}-{}",
        std::process::id()
    ));
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

/// Runs the binary; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_saliency"))
        .args(args)
        .arg("--data-dir")
        .arg(common::data_root())
        .arg("--no-download")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        stderr,
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The shape of the `attributions` tensor a run wrote.
fn map_shape(out: &Path) -> Vec<usize> {
    let bytes = std::fs::read(out.join("attributions.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensor("attributions").unwrap().shape().to_vec()
}

#[test]
fn every_method_runs_from_the_cli() {
    let (dir, ck) = checkpoint("run");
    let cases: &[(&str, &[&str], [usize; 4])] = &[
        ("saliency-map", &[], [2, 1, 28, 28]),
        (
            "smoothgrad",
            &["--samples", "3", "--sigma", "0.2"],
            [2, 1, 28, 28],
        ),
        ("vargrad", &["--samples", "3"], [2, 1, 28, 28]),
        ("gradient-shap", &["--samples", "3"], [2, 1, 28, 28]),
        ("grad-cam", &["--layer", "conv3"], [2, 1, 28, 28]),
        (
            "shapley-sampling",
            &["--samples", "2", "--patch", "7"],
            [2, 1, 28, 28],
        ),
    ];
    for (method, extra, shape) in cases {
        let out = dir.join(method);
        let mut args = vec!["attribute", "--checkpoint", s(&ck), "--indices", "0..2"];
        args.extend(["--method", method, "--out", s(&out)]);
        args.extend(extra.iter());
        let (ok, _, stderr) = run(&args);
        assert!(ok, "{method}: {stderr}");
        assert_eq!(map_shape(&out), shape, "{method}");
        assert!(out.join("attributions.png").exists(), "{method}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_method_options_are_refused_by_name() {
    let (dir, ck) = checkpoint("bad");
    let out = dir.join("attr");
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--method", "grad-cam", "--layer", "fc1"],
            &["layer", "'fc1'", "conv1", "conv9"],
        ),
        (&["--method", "smoothgrad", "--sigma", "0"], &["sigma", "0"]),
        (
            &["--method", "smoothgrad", "--sigma", "NaN"],
            &["sigma", "NaN"],
        ),
        (
            &["--method", "vargrad", "--samples", "0"],
            &["samples", "0"],
        ),
        (
            &["--method", "gradient-shap", "--samples", "10001"],
            &["samples", "10001"],
        ),
        (
            &["--method", "gradient-shap", "--sigma", "-1"],
            &["sigma", "-1"],
        ),
        (
            &["--method", "shapley-sampling", "--patch", "29"],
            &["patch", "29"],
        ),
        (
            &["--method", "gradient-shap", "--baseline", "gray"],
            &["--baseline", "gray"],
        ),
        (
            &["--method", "lrp"],
            &["--method", "possible values", "saliency-map"],
        ),
    ];
    for (extra, needles) in cases {
        let mut args = vec![
            "attribute",
            "--checkpoint",
            s(&ck),
            "--indices",
            "0..2",
            "--out",
            s(&out),
        ];
        args.extend(extra.iter());
        let (ok, _, stderr) = run(&args);
        assert!(!ok, "{extra:?} should fail");
        for n in needles.iter() {
            assert!(
                stderr.contains(n),
                "{extra:?}: message lacks '{n}':\n{stderr}"
            );
        }
        assert!(!out.exists(), "{extra:?}: an output folder was left");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn json_is_one_document_on_stdout_and_pictures_take_their_options() {
    let (dir, ck) = checkpoint("json");
    let out = dir.join("ig");
    let (ok, stdout, stderr) = run(&[
        "attribute",
        "--checkpoint",
        s(&ck),
        "--indices",
        "0..3",
        "--method",
        "deeplift",
        "--sign",
        "all",
        "--style",
        "heat-map",
        "--outlier-percent",
        "5",
        "--json",
        "--out",
        s(&out),
    ]);
    assert!(ok, "{stderr}");
    let doc: serde_json::Value =
        serde_json::from_str(&stdout).expect("stdout is one JSON document");
    assert_eq!(doc["method"], "deeplift");
    assert_eq!(doc["sign"], "all");
    assert_eq!(doc["images"].as_array().unwrap().len(), 3);
    assert_eq!(doc["images"][0]["image"], "test 0");
    assert!(
        stderr.contains("wrote"),
        "human text goes to stderr: {stderr}"
    );
    for style in ["blended", "masked"] {
        let out = dir.join(style);
        let (ok, _, stderr) = run(&[
            "attribute",
            "--checkpoint",
            s(&ck),
            "--indices",
            "0..2",
            "--method",
            "saliency-map",
            "--style",
            style,
            "--sign",
            "absolute",
            "--out",
            s(&out),
        ]);
        assert!(ok, "{style}: {stderr}");
        assert!(out.join("attributions.png").exists());
    }
    let bad = dir.join("bad");
    for (extra, needles) in [
        (
            &["--sign", "all", "--style", "masked"][..],
            &["--style masked", "--sign"][..],
        ),
        (
            &["--outlier-percent", "100"][..],
            &["--outlier-percent", "100"][..],
        ),
        (&["--sign", "both"][..], &["--sign", "possible values"][..]),
    ] {
        let mut args = vec![
            "attribute",
            "--checkpoint",
            s(&ck),
            "--indices",
            "0..2",
            "--out",
            s(&bad),
        ];
        args.extend(extra.iter());
        let (ok, _, stderr) = run(&args);
        assert!(!ok, "{extra:?} should fail");
        for n in needles.iter() {
            assert!(
                stderr.contains(n),
                "{extra:?}: message lacks '{n}':\n{stderr}"
            );
        }
        assert!(!bad.exists());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn user_images_are_attributed_and_bad_files_named() {
    let (dir, ck) = checkpoint("image");
    let png = dir.join("shirt.png");
    image::GrayImage::from_fn(56, 40, |x, y| image::Luma([((x * 4 + y) % 256) as u8]))
        .save(&png)
        .unwrap();
    let out = dir.join("mine");
    let (ok, stdout, stderr) = run(&[
        "attribute",
        "--checkpoint",
        s(&ck),
        "--image",
        s(&png),
        "--method",
        "grad-cam",
        "--json",
        "--out",
        s(&out),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("resized"), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["images"][0]["image"], s(&png));
    assert_eq!(map_shape(&out), [1, 1, 28, 28]);
    // A reference image of the model's size for DeepLIFT; another size is refused, not resized.
    let gray = dir.join("gray.png");
    image::GrayImage::from_pixel(28, 28, image::Luma([128]))
        .save(&gray)
        .unwrap();
    let out = dir.join("ref");
    let (ok, stdout, stderr) = run(&[
        "attribute",
        "--checkpoint",
        s(&ck),
        "--indices",
        "0..2",
        "--method",
        "deeplift",
        "--reference",
        s(&gray),
        "--json",
        "--out",
        s(&out),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("completeness error"), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["images"].as_array().unwrap().len(), 2);
    let junk = dir.join("junk.jpg");
    std::fs::write(&junk, b"no picture here").unwrap();
    let bad = dir.join("bad");
    for (extra, needles) in [
        (vec!["--image", s(&junk)], vec!["--image", "junk.jpg"]),
        (
            vec!["--image", s(&png), "--target", "label"],
            vec!["--target label", "--image"],
        ),
        (
            vec!["--image", s(&png), "--indices", "0..2"],
            vec!["--indices"],
        ),
    ] {
        let mut args = vec!["attribute", "--checkpoint", s(&ck), "--out", s(&bad)];
        args.extend(extra.iter());
        let (ok, _, stderr) = run(&args);
        assert!(!ok, "{extra:?} should fail");
        for n in &needles {
            assert!(
                stderr.contains(n),
                "{extra:?}: message lacks '{n}':\n{stderr}"
            );
        }
        assert!(!bad.exists());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn evaluate_attribution_writes_json_and_a_table() {
    let (dir, ck) = checkpoint("evaluate");
    let out = dir.join("eval");
    let (ok, stdout, stderr) = run(&[
        "evaluate-attribution",
        "--checkpoint",
        s(&ck),
        "--indices",
        "0..2",
        "--methods",
        "saliency-map,deeplift,grad-cam",
        "--perturbations",
        "2",
        "--curve-steps",
        "7",
        "--replacement",
        "blur",
        "--sanity",
        "--json",
        "--out",
        s(&out),
    ]);
    assert!(ok, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let rows = doc["methods"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        for key in [
            "deletion_area",
            "insertion_area",
            "infidelity",
            "max_sensitivity",
        ] {
            let v = row[key].as_f64().unwrap();
            assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
        }
        assert!(
            row["per_image"]["deletion_curve"][0]
                .as_array()
                .unwrap()
                .len()
                == 8
        );
        // The sanity cascade: none, then each of deep's 12 layers.
        assert_eq!(row["sanity"].as_array().unwrap().len(), 13);
    }
    // DeepLIFT adds up to the logit difference; the others have no completeness.
    let deeplift = &rows[1]["completeness"];
    assert!(
        deeplift["mean_relative_error"].as_f64().unwrap() < 1e-3,
        "{deeplift}"
    );
    assert!(rows[0]["completeness"].is_null());
    assert!(
        stderr.contains("| deeplift |"),
        "the table goes to stderr with --json"
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("evaluation.json")).unwrap())
            .unwrap();
    assert_eq!(written, doc);
    assert!(std::fs::read_to_string(out.join("evaluation.md"))
        .unwrap()
        .contains("| grad-cam |"));
    let bad = dir.join("bad");
    for (extra, needle) in [
        (["--noise", "0"], "--noise"),
        (["--radius", "2"], "--radius"),
        (["--curve-steps", "0"], "--curve-steps"),
        (["--methods", "lrp"], "possible values"),
    ] {
        let mut args = vec![
            "evaluate-attribution",
            "--checkpoint",
            s(&ck),
            "--out",
            s(&bad),
        ];
        args.extend(extra);
        let (ok, _, stderr) = run(&args);
        assert!(!ok && stderr.contains(needle), "{extra:?}: {stderr}");
        assert!(!bad.exists());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Attributing more images than one picture can show keeps every map in the tensors but draws
/// only the first 256: the picture of 300 is the picture of 256, and the output says so.
#[test]
fn a_large_set_of_maps_is_saved_whole_and_drawn_as_its_first_256() {
    let (dir, ck) = checkpoint("many");
    let draw = |n: usize| {
        let out = dir.join(format!("n{n}"));
        let indices = format!("0..{n}");
        let (ok, stdout, stderr) = run(&[
            "attribute",
            "--checkpoint",
            s(&ck),
            "--indices",
            &indices,
            "--method",
            "saliency-map",
            "--json",
            "--out",
            s(&out),
        ]);
        assert!(ok, "{stderr}");
        let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let picture = image::open(out.join("attributions.png")).unwrap();
        (out, doc, stderr, (picture.width(), picture.height()))
    };
    let (out, doc, stderr, size) = draw(300);
    assert_eq!(map_shape(&out)[0], 300, "every map is saved");
    assert_eq!(doc["images"].as_array().unwrap().len(), 300);
    assert_eq!(doc["picture_images"], 256);
    assert!(
        stderr.contains("the first 256 of the 300 maps"),
        "the output says what the picture holds: {stderr}"
    );
    let (_, doc, stderr, size_256) = draw(256);
    assert_eq!(doc["picture_images"], 256);
    assert!(!stderr.contains("the first 256"), "{stderr}");
    assert_eq!(size, size_256, "the picture of 300 draws 256");
    let _ = std::fs::remove_dir_all(&dir);
}
