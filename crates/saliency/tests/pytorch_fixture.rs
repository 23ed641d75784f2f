//! A `deep` trained in PyTorch, loaded from its plain `state_dict` (no metadata), reproduces
//! PyTorch's logits and gradient x input and Captum's integrated gradients on 16 test images.
//! The fixture and the script that made it are in `tests/fixtures/pytorch/`.

use std::path::PathBuf;

use safetensors::SafeTensors;
use saliency::attribution::{gradient_x_input, integrated_gradients, Baseline, IgOptions, Score};
use saliency::model_io::load_state_dict;
use saliency::models::{Mode, ModelKind};
use tape::Tape;
use tensor::Tensor;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pytorch")
        .join(name)
}

/// The tensors of `deep_expected.safetensors` as f32 vectors with their shapes.
fn expected(name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(fixture("deep_expected.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let v = st.tensor(name).unwrap();
    let data = v
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (v.shape().to_vec(), data)
}

/// max |a - b| over max |b|: the error relative to the largest expected value.
fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let worst = a.iter().zip(b).fold(0.0f64, |m, (&x, &y)| {
        m.max((f64::from(x) - f64::from(y)).abs())
    });
    worst / scale
}

#[test]
fn pytorch_deep_reproduces_logits_gradients_and_captum_ig() {
    let model = load_state_dict(
        &fixture("deep_state_dict.safetensors"),
        ModelKind::Deep,
        [1, 28, 28],
        10,
    )
    .unwrap();
    let (shape, inputs) = expected("inputs");
    assert_eq!(shape, [16, 1, 28, 28]);
    let x = Tensor::from_vec(&shape, inputs).unwrap();

    let mut tape = Tape::no_record();
    let params = model.bind(&mut tape, false);
    let xi = tape.constant(x.clone());
    let (logits, _) = model.forward(&mut tape, xi, &params, Mode::Eval).unwrap();
    let ours = tape.value(logits).data().to_vec();
    let (_, theirs) = expected("logits");
    let e = relative_error(&ours, &theirs);
    eprintln!("logits: max error {e:e} of the largest");
    assert!(
        e < 1e-5,
        "logits differ from PyTorch's by {e:e} of the largest"
    );

    let (_, predicted) = expected("predicted");
    let classes: Vec<usize> = predicted.iter().map(|&p| p as usize).collect();
    let ours_pred: Vec<usize> = ours
        .chunks(10)
        .map(|r| (0..10).fold(0, |b, k| if r[k] > r[b] { k } else { b }))
        .collect();
    assert_eq!(ours_pred, classes);

    let gxi = gradient_x_input(&model, &x, &classes).unwrap();
    let (_, theirs) = expected("gradient_x_input");
    let e = relative_error(gxi.data(), &theirs);
    eprintln!("gradient x input: max error {e:e} of the largest");
    assert!(e < 1e-5, "gradient x input differs from PyTorch's by {e:e}");

    let ig = integrated_gradients(
        &model,
        &x,
        &classes,
        &Baseline::Black,
        &IgOptions {
            steps: 50,
            score: Score::Probability,
            batch: None,
        },
    )
    .unwrap();
    let (_, theirs) = expected("integrated_gradients");
    let e = relative_error(ig.attributions.data(), &theirs);
    eprintln!("integrated gradients: max error {e:e} of the largest");
    assert!(
        e < 1e-4,
        "integrated gradients differ from Captum's by {e:e}"
    );
}

#[test]
fn a_state_dict_for_another_architecture_is_refused_by_name() {
    let e = load_state_dict(
        &fixture("deep_state_dict.safetensors"),
        ModelKind::Alexnet,
        [1, 28, 28],
        10,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("deep_state_dict.safetensors"), "{e}");
    assert!(e.contains("alexnet"), "{e}");
}

/// The CLI evaluates the plain state_dict with `--architecture`, and without it says how.
#[test]
fn cli_evaluates_a_plain_state_dict_with_architecture() {
    let ck = fixture("deep_state_dict.safetensors");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_saliency"))
            .args(["eval", "--checkpoint"])
            .arg(&ck)
            .args(["--json", "--no-download", "--data-dir"])
            .arg(env!("SALIENCY_TEST_DATA"))
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--architecture", "deep"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // PyTorch measured 50.78 % on the full test set; any copy of the data lands near it.
    let acc = json["accuracy"].as_f64().unwrap();
    assert!((0.4..0.62).contains(&acc), "accuracy {acc}");
    assert_eq!(json["model"], "deep");
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--architecture"),
        "{stderr}"
    );
}
