//! Hand cases of the faithfulness metrics: deletion/insertion, infidelity, max-sensitivity.

use tensor::Tensor;

use super::*;
use crate::models::builder::ModelBuilder;
use crate::models::init::Init;
use crate::models::ModelKind;

fn linear_model() -> Model<f64> {
    let mut b = ModelBuilder::new(ModelKind::Custom, [1, 4, 4], 3, Init::GlorotUniform, 1);
    b.flatten().unwrap().head("fc").unwrap();
    b.build().unwrap()
}

fn images(n: usize) -> Tensor<f64> {
    let data = (0..n * 16)
        .map(|i| ((i * 37 % 101) as f64) / 100.0)
        .collect();
    Tensor::from_vec(&[n, 1, 4, 4], data).unwrap()
}

/// For a linear logit, f(x) - f(x - I) = w . I exactly, so the gradient map has infidelity 0
/// (beta = 1), and a map unrelated to w has more.
#[test]
fn the_gradient_of_a_linear_model_has_zero_infidelity() {
    let model = linear_model();
    let x = images(2);
    let classes = [0, 2];
    let grad = saliency_map(&model, &x, &classes, Score::Logit).unwrap();
    // Signed gradient: saliency is |w|, so use gradient x input / input... build it from w.
    let mut g = grad.clone();
    for (i, &c) in classes.iter().enumerate() {
        g.data_mut()[i * 16..(i + 1) * 16]
            .copy_from_slice(&model.params[0].data()[c * 16..(c + 1) * 16]);
    }
    let opts = InfidelityOptions::default();
    let exact = infidelity(&model, &x, &classes, &g, &opts).unwrap();
    assert!(exact.iter().all(|&v| v < 1e-20), "{exact:?}");
    let other = Tensor::from_vec(
        &[2, 1, 4, 4],
        (0..32).map(|i| ((i * 7) % 5) as f64).collect(),
    )
    .unwrap();
    let worse = infidelity(&model, &x, &classes, &other, &opts).unwrap();
    assert!(worse.iter().all(|&v| v > 1e-6), "{worse:?}");
}

/// Deletion in the order of the true contributions w x drops the probability faster than the
/// reverse order; curves start and end where they must.
#[test]
fn deletion_and_insertion_reward_the_true_ranking() {
    let model = linear_model();
    let x = images(1);
    let class = [1];
    let truth = gradient_x_input_signed(&model, &x, &class, Score::Logit).unwrap();
    let mut reverse = truth.clone();
    reverse.data_mut().iter_mut().for_each(|v| *v = -*v);
    let opts = CurveOptions {
        steps: 16,
        replacement: Replacement::Black,
    };
    let good = deletion_insertion(&model, &x, &class, &truth, &opts).unwrap();
    let bad = deletion_insertion(&model, &x, &class, &reverse, &opts).unwrap();
    let p = super::target::scores(&model, &x, &class, Score::Probability).unwrap()[0];
    let p0 = super::target::scores(
        &model,
        &Tensor::zeros(&[1, 1, 4, 4]),
        &class,
        Score::Probability,
    )
    .unwrap()[0];
    for c in [&good, &bad] {
        assert!((c.deletion[0][0] - p).abs() < 1e-12 && (c.deletion[0][16] - p0).abs() < 1e-12);
        assert!((c.insertion[0][0] - p0).abs() < 1e-12 && (c.insertion[0][16] - p).abs() < 1e-12);
    }
    assert!(
        good.deletion_area[0] < bad.deletion_area[0],
        "{} vs {}",
        good.deletion_area[0],
        bad.deletion_area[0]
    );
    assert!(good.insertion_area[0] > bad.insertion_area[0]);
    let err = deletion_insertion(
        &model,
        &x,
        &class,
        &truth,
        &CurveOptions { steps: 0, ..opts },
    )
    .unwrap_err();
    assert!(err.to_string().contains("option steps"), "{err}");
}

#[test]
fn a_map_that_ignores_the_input_has_zero_sensitivity() {
    let model = linear_model();
    let x = images(2);
    let explain = |t: &Tensor<f64>| saliency_map(&model, t, &[0, 1], Score::Logit);
    let maps = explain(&x).unwrap();
    let s = max_sensitivity(&x, &maps, explain, &SensitivityOptions::default()).unwrap();
    assert_eq!(s, vec![0.0, 0.0]);
    // The input itself as the map moves by at most radius per element.
    let identity = |t: &Tensor<f64>| Ok::<_, AttributionError>(t.clone());
    let s = max_sensitivity(&x, &x, identity, &SensitivityOptions::default()).unwrap();
    for (i, v) in s.iter().enumerate() {
        let norm = x.data()[i * 16..(i + 1) * 16]
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt();
        assert!(*v > 0.0 && *v <= 0.02 * 4.0 / norm + 1e-12, "{v}");
    }
}
