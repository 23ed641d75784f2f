//! Exact (region-by-region) integrated gradients: identities on a linear model, completeness to
//! round-off on a kinked `deep` network, agreement with the midpoint rule as its steps grow, and
//! independence of the thread count.

mod common;
use common::patterns;

use saliency::attribution::{
    exact_integrated_gradients, integrated_gradients, Baseline, ExactIgOptions, IgOptions, Score,
    Target,
};
use saliency::infer::predict_probs;
use saliency::models::builder::ModelBuilder;
use saliency::models::init::{Init, UniformSource};
use saliency::models::{Model, ModelKind};
use tensor::Tensor;

/// `deep` with tripled kernels (so F moves a lot along the path) and random biases. With zero
/// biases and a black baseline the network is positively homogeneous along the path (no kinks
/// at all); the biases put ReLU and max-pool kinks on it, as in a trained network.
fn kinked_deep() -> Model<f64> {
    let mut model: Model<f64> = ModelKind::Deep.build([1, 28, 28], 10, 3).unwrap();
    let mut src = UniformSource::new(17);
    for (p, info) in model.params.iter_mut().zip(&model.param_info) {
        if info.name.ends_with(".weight") {
            p.data_mut().iter_mut().for_each(|w| *w *= 3.0);
        } else {
            p.data_mut()
                .iter_mut()
                .for_each(|b| *b = src.symmetric(0.2));
        }
    }
    model
}

#[test]
fn linear_model_is_exact_in_one_region() {
    let mut b = ModelBuilder::new(ModelKind::Deep, [1, 4, 4], 3, Init::GlorotUniform, 1);
    b.flatten().unwrap().head("fc").unwrap();
    let mut model: Model<f64> = b.build().unwrap();
    let mut src = UniformSource::new(5);
    model.params[1]
        .data_mut()
        .iter_mut()
        .for_each(|v| *v = src.symmetric(0.5));
    let x = Tensor::from_fn(&[2, 1, 4, 4], |i| (i as f64 * 0.37).sin().abs());
    let base = Tensor::from_fn(&[1, 4, 4], |i| 0.1 + 0.02 * i as f64);
    let options = ExactIgOptions {
        score: Score::Logit,
        ..ExactIgOptions::default()
    };
    let classes = [2, 0];
    let r = exact_integrated_gradients(
        &model,
        &x,
        &classes,
        &Baseline::Given(base.clone()),
        &options,
    )
    .unwrap();
    assert_eq!(r.regions, vec![1, 1]);
    for (n, &k) in classes.iter().enumerate() {
        for p in 0..16 {
            let w = model.params[0].data()[k * 16 + p];
            let want = (x.data()[n * 16 + p] - base.data()[p]) * w;
            let got = r.ig.attributions.data()[n * 16 + p];
            assert!(
                (got - want).abs() < 1e-12,
                "image {n} pixel {p}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn completeness_to_round_off_on_a_kinked_deep_network() {
    let model = kinked_deep();
    let x = patterns::<f64>();
    let classes = Target::Pred.resolve(&model, &x, None).unwrap();
    for baseline in [Baseline::Black, Baseline::Gray] {
        let r =
            exact_integrated_gradients(&model, &x, &classes, &baseline, &ExactIgOptions::default())
                .unwrap();
        for (i, ((e, d), regions)) in
            r.ig.completeness_error
                .iter()
                .zip(&r.ig.delta)
                .zip(&r.regions)
                .enumerate()
        {
            assert!(
                d.abs() > 0.02,
                "{baseline:?} image {i}: F(a) - F(a') = {d}, too small to test"
            );
            assert!(
                *regions > 20,
                "{baseline:?} image {i}: only {regions} regions, no kinks to test"
            );
            assert!(
                e.abs() <= 1e-6 * d.abs(),
                "{baseline:?} image {i}: completeness error {e:e} of F(a) - F(a') = {d} ({regions} regions)"
            );
        }
        // F(a) - F(a') agrees with the model's own forward pass (the engine's f64 softmax).
        let probs = predict_probs(&model, x.data(), 16).unwrap();
        let base = match baseline {
            Baseline::Black => vec![0.0; x.numel()],
            _ => x
                .data()
                .chunks_exact(784)
                .flat_map(|im| vec![im.iter().sum::<f64>() / 784.0; 784])
                .collect(),
        };
        let base_probs = predict_probs(&model, &base, 16).unwrap();
        for (i, d) in r.ig.delta.iter().enumerate() {
            let want = probs[i * 10 + classes[i]] - base_probs[i * 10 + classes[i]];
            assert!(
                (*d as f64 - want).abs() < 1e-6,
                "{baseline:?} image {i}: delta {d} vs forward pass {want}"
            );
        }
    }
}

#[test]
fn midpoint_rule_converges_to_the_exact_attributions() {
    let model = kinked_deep();
    let x = patterns::<f64>();
    let classes = Target::Pred.resolve(&model, &x, None).unwrap();
    let exact = exact_integrated_gradients(
        &model,
        &x,
        &classes,
        &Baseline::Black,
        &ExactIgOptions::default(),
    )
    .unwrap();
    let distance = |steps: usize| {
        let options = IgOptions {
            steps,
            ..IgOptions::default()
        };
        let r = integrated_gradients(&model, &x, &classes, &Baseline::Black, &options).unwrap();
        let num: f64 = r
            .attributions
            .data()
            .iter()
            .zip(exact.ig.attributions.data())
            .map(|(a, b)| (a - b).abs())
            .sum();
        let den: f64 = exact.ig.attributions.data().iter().map(|v| v.abs()).sum();
        num / den
    };
    let (coarse, fine) = (distance(16), distance(1024));
    assert!(
        fine < 0.02,
        "midpoint m=1024 is {fine:.4} (L1, relative) from the exact attributions"
    );
    assert!(
        fine * 4.0 < coarse,
        "no convergence: m=16 {coarse:.4}, m=1024 {fine:.4}"
    );
}

#[test]
fn exact_ig_does_not_depend_on_thread_count() {
    let model = kinked_deep();
    let x = patterns::<f64>();
    let classes = [1, 4, 7];
    let run = |threads: usize| {
        tensor::testing::in_pool(threads, || {
            exact_integrated_gradients(
                &model,
                &x,
                &classes,
                &Baseline::Gray,
                &ExactIgOptions::default(),
            )
            .unwrap()
        })
    };
    let one = run(1);
    for threads in [2, 3] {
        let other = run(threads);
        assert!(
            one.ig
                .attributions
                .data()
                .iter()
                .zip(other.ig.attributions.data())
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "attributions differ between 1 and {threads} threads"
        );
        assert_eq!(one.regions, other.regions);
    }
}

#[test]
fn region_limit_is_an_error_naming_the_option() {
    let model = kinked_deep();
    let x = patterns::<f64>();
    let options = ExactIgOptions {
        max_regions: 3,
        ..ExactIgOptions::default()
    };
    let err =
        exact_integrated_gradients(&model, &x, &[0, 0, 0], &Baseline::Black, &options).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("max-regions") && msg.contains("at most 3"),
        "{msg}"
    );
}
