//! Unit tests of the attribution module's small pieces: parsing, validation, ranks, map combining.

use tensor::Tensor;

use super::*;
use crate::models::builder::ModelBuilder;
use crate::models::init::Init;
use crate::models::ModelKind;

fn linear_model() -> Model<f64> {
    let mut b = ModelBuilder::new(ModelKind::Deep, [1, 4, 4], 3, Init::GlorotUniform, 1);
    b.flatten().unwrap().head("fc").unwrap();
    b.build().unwrap()
}

#[test]
fn target_and_score_parse() {
    assert_eq!("pred".parse::<Target>().unwrap(), Target::Pred);
    assert_eq!("label".parse::<Target>().unwrap(), Target::Label);
    assert_eq!(" 7 ".parse::<Target>().unwrap(), Target::Class(7));
    let err = "cat".parse::<Target>().unwrap_err().to_string();
    assert!(err.contains("target") && err.contains("'cat'"), "{err}");
    assert_eq!("logit".parse::<Score>().unwrap(), Score::Logit);
    assert!("softmax".parse::<Score>().is_err());
    assert_eq!(Target::Class(3).to_string(), "3");
}

#[test]
fn targets_resolve_and_are_checked() {
    let model = linear_model();
    let x = Tensor::full(&[2, 1, 4, 4], 0.5);
    assert_eq!(
        Target::Class(2).resolve(&model, &x, None).unwrap(),
        vec![2, 2]
    );
    let err = Target::Class(3)
        .resolve(&model, &x, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("target class 3") && err.contains("below 3"),
        "{err}"
    );
    assert!(matches!(
        Target::Label.resolve(&model, &x, None),
        Err(AttributionError::MissingLabels)
    ));
    assert_eq!(
        Target::Label.resolve(&model, &x, Some(&[1, 0])).unwrap(),
        vec![1, 0]
    );
    assert!(Target::Label.resolve(&model, &x, Some(&[1])).is_err());
    // Pred is the argmax of the probabilities.
    let probs = crate::infer::predict_probs(&model, x.data(), 8).unwrap();
    let pred = crate::infer::argmax_rows(&probs, 3);
    assert_eq!(Target::Pred.resolve(&model, &x, None).unwrap(), pred);
}

#[test]
fn inputs_outside_unit_range_are_rejected() {
    let model = linear_model();
    let mut x = Tensor::full(&[2, 1, 4, 4], 0.5);
    x.data_mut()[3] = 1.0 + 1e-7; // round-off: accepted
    x.data_mut()[5] = -1e-7;
    assert!(check_inputs(&model, &x).is_ok());
    x.data_mut()[20] = 1.5;
    let err = check_inputs(&model, &x).unwrap_err().to_string();
    assert!(
        err.contains("element 20") && err.contains("image 1") && err.contains("1.5"),
        "{err}"
    );
    x.data_mut()[20] = f64::NAN;
    assert!(check_inputs(&model, &x).is_err());
    let wrong = Tensor::full(&[1, 1, 4, 5], 0.5);
    let err = check_inputs(&model, &wrong).unwrap_err().to_string();
    assert!(
        err.contains("(N, 1, 4, 4)") && err.contains("[1, 1, 4, 5]"),
        "{err}"
    );
}

#[test]
fn default_patch_matches_the_study() {
    assert_eq!(default_patch(28), 4);
    assert_eq!(default_patch(256), 32);
    assert_eq!(default_patch(1), 1);
    let o = OcclusionOptions::for_input([3, 256, 256]);
    assert_eq!((o.patch, o.stride), (32, 32));
    assert_eq!(default_batch([1, 28, 28]), 256);
    assert_eq!(default_batch([3, 256, 256]), 10);
}

#[test]
fn spearman_of_known_series() {
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), 1.0);
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
    // Ranks [1, 2.5, 2.5, 4] vs [1, 2, 3, 4]: cov = 4.5, var 4.5 and 5 -> 4.5 / sqrt(22.5).
    let r = spearman(&[0.0, 1.0, 1.0, 5.0], &[1.0, 2.0, 3.0, 4.0]);
    assert!((r - 4.5 / 22.5f64.sqrt()).abs() < 1e-12, "{r}");
    assert_eq!(spearman(&[2.0; 4], &[2.0; 4]), 1.0);
    assert_eq!(spearman(&[2.0; 4], &[1.0, 2.0, 3.0, 4.0]), 0.0);
}

#[test]
fn combine_maps_sums_channels_and_normalizes() {
    // One 2-channel 1x2 image: first map channels sum to [2, 4] -> [0.5, 1];
    // second sums to [3, 0] -> [1, 0]; mean [0.75, 0.5].
    let a = Tensor::from_vec(&[1, 2, 1, 2], vec![1.0f64, 1.0, 1.0, 3.0]).unwrap();
    let b = Tensor::from_vec(&[1, 2, 1, 2], vec![1.0f64, 0.0, 2.0, 0.0]).unwrap();
    let m = combine_maps(&a, &b).unwrap();
    assert_eq!(m.shape(), &[1, 1, 1, 2]);
    assert_eq!(m.data(), &[0.75, 0.5]);
    // An all-zero map contributes nothing.
    let z = Tensor::zeros(&[1, 2, 1, 2]);
    assert_eq!(combine_maps(&z, &b).unwrap().data(), &[0.5, 0.0]);
}

#[test]
fn baseline_parses() {
    assert_eq!("black".parse::<Baseline<f32>>().unwrap(), Baseline::Black);
    assert_eq!("gray".parse::<Baseline<f32>>().unwrap(), Baseline::Gray);
    let err = "white".parse::<Baseline<f32>>().unwrap_err().to_string();
    assert!(err.contains("baseline") && err.contains("'white'"), "{err}");
}
