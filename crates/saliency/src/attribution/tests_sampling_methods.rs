//! Hand-derived cases of the plain-gradient methods: saliency, SmoothGrad, VarGrad,
//! GradientSHAP, Grad-CAM and Shapley value sampling.

use tensor::testing::in_pool;
use tensor::Tensor;

use super::*;
use crate::models::builder::ModelBuilder;
use crate::models::init::Init;
use crate::models::{deep, ModelKind};

/// logits = W x + b on a 1x4x4 input, 3 classes.
fn linear_model() -> Model<f64> {
    let mut b = ModelBuilder::new(ModelKind::Custom, [1, 4, 4], 3, Init::GlorotUniform, 1);
    b.flatten().unwrap().head("fc").unwrap();
    b.build().unwrap()
}

/// A batch of `n` 1x4x4 images with values in [0, 1].
fn images(n: usize, salt: usize) -> Tensor<f64> {
    let data = (0..n * 16)
        .map(|i| (((i + salt) * 37 % 101) as f64) / 100.0)
        .collect();
    Tensor::from_vec(&[n, 1, 4, 4], data).unwrap()
}

fn weight_row(model: &Model<f64>, class: usize) -> Vec<f64> {
    model.params[0].data()[class * 16..(class + 1) * 16].to_vec()
}

#[test]
fn saliency_of_a_linear_model_is_the_weight_magnitude() {
    let model = linear_model();
    let x = images(2, 0);
    let map = saliency_map(&model, &x, &[2, 0], Score::Logit).unwrap();
    for (i, class) in [2, 0].into_iter().enumerate() {
        let want: Vec<f64> = weight_row(&model, class).iter().map(|w| w.abs()).collect();
        assert_eq!(&map.data()[i * 16..(i + 1) * 16], &want[..]);
    }
}

#[test]
fn smoothgrad_of_a_linear_model_is_exact_and_vargrad_is_zero() {
    let model = linear_model();
    let x = images(3, 5);
    let options = NoiseOptions {
        samples: 7,
        sigma: 0.3,
        ..NoiseOptions::default()
    };
    let sg = smoothgrad(&model, &x, &[1, 1, 2], &options).unwrap();
    let vg = vargrad(&model, &x, &[1, 1, 2], &options).unwrap();
    for (i, class) in [1, 1, 2].into_iter().enumerate() {
        for (j, w) in weight_row(&model, class).iter().enumerate() {
            let got = sg.data()[i * 16 + j];
            assert!((got - w.abs()).abs() < 1e-15, "{got} vs |{w}|");
            assert!(vg.data()[i * 16 + j].abs() < 1e-15);
        }
    }
}

/// F = v relu(w . x + b) with one hidden unit: dF/dx = v w 1[z > 0], so under noise
/// SmoothGrad = |v w| P(z + w . eps > 0) = |v w| Phi(z / (sigma |w|)), and VarGrad = (v w)^2 p (1 - p).
#[test]
fn smoothgrad_and_vargrad_of_one_relu_unit_match_the_normal_cdf() {
    let mut b = ModelBuilder::new(ModelKind::Custom, [1, 2, 2], 2, Init::GlorotUniform, 3);
    b.flatten()
        .unwrap()
        .linear("fc1", 1)
        .unwrap()
        .relu()
        .unwrap()
        .head("fc2")
        .unwrap();
    let mut model: Model<f64> = b.build().unwrap();
    let w = [0.5, -0.25, 1.0, 0.25];
    model.params[0] = Tensor::from_vec(&[1, 4], w.to_vec()).unwrap();
    model.params[1] = Tensor::from_vec(&[1], vec![-0.4]).unwrap();
    model.params[2] = Tensor::from_vec(&[2, 1], vec![2.0, -1.0]).unwrap();
    let x = Tensor::from_vec(&[1, 1, 2, 2], vec![0.2, 0.4, 0.3, 0.6]).unwrap();
    let z: f64 = w.iter().zip(x.data()).map(|(a, b)| a * b).sum::<f64>() - 0.4; // 0.05
    let sigma = 0.1;
    let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
    let p = normal_cdf(z / (sigma * norm));
    let samples = 4000;
    let options = NoiseOptions {
        samples,
        sigma,
        seed: 11,
        ..NoiseOptions::default()
    };
    let sg = smoothgrad(&model, &x, &[0], &options).unwrap();
    let vg = vargrad(&model, &x, &[0], &options).unwrap();
    // The share of samples with z > 0 has standard error sqrt(p (1 - p) / n); allow 4 of them.
    let tolerance = 4.0 * (p * (1.0 - p) / samples as f64).sqrt();
    for (j, wj) in w.iter().enumerate() {
        let scale = (2.0 * wj).abs();
        let share = sg.data()[j] / scale;
        assert!(
            (share - p).abs() < tolerance,
            "pixel {j}: share {share} vs Phi = {p}"
        );
        let var = vg.data()[j] / (scale * scale);
        assert!(
            (var - share * (1.0 - share)).abs() < 1e-9,
            "VarGrad {var} vs p(1-p) of the sample"
        );
    }
}

/// Phi(t) by the erf series of Abramowitz and Stegun 7.1.26 (error below 1.5e-7).
fn normal_cdf(t: f64) -> f64 {
    let x = t.abs() / std::f64::consts::SQRT_2;
    let k = 1.0 / (1.0 + 0.3275911 * x);
    let poly = k
        * (0.254829592
            + k * (-0.284496736 + k * (1.421413741 + k * (-1.453152027 + k * 1.061405429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if t >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

#[test]
fn sampling_methods_do_not_depend_on_batch_or_threads_and_follow_the_seed() {
    let model = deep::<f32>([1, 28, 28], 10, 4).unwrap();
    let data = (0..3 * 784).map(|i| (i as f32 * 0.311).fract()).collect();
    let x = Tensor::from_vec(&[3, 1, 28, 28], data).unwrap();
    let classes = [1, 4, 9];
    let base = NoiseOptions {
        samples: 5,
        batch: Some(4),
        ..NoiseOptions::default()
    };
    let one = in_pool(1, || smoothgrad(&model, &x, &classes, &base).unwrap());
    let other_batch = NoiseOptions {
        batch: Some(15),
        ..base
    };
    let two = in_pool(2, || {
        smoothgrad(&model, &x, &classes, &other_batch).unwrap()
    });
    assert_eq!(one.data(), two.data());
    let reseeded = NoiseOptions { seed: 1, ..base };
    assert_ne!(
        smoothgrad(&model, &x, &classes, &reseeded).unwrap().data(),
        one.data()
    );
    let zeros = Tensor::zeros(&[1, 1, 28, 28]);
    let shap = GradientShapOptions {
        samples: 4,
        sigma: 0.1,
        batch: Some(3),
        ..GradientShapOptions::default()
    };
    let a = in_pool(1, || {
        gradient_shap(&model, &x, &classes, &zeros, &shap).unwrap()
    });
    let b = in_pool(2, || {
        gradient_shap(
            &model,
            &x,
            &classes,
            &zeros,
            &GradientShapOptions {
                batch: Some(12),
                ..shap
            },
        )
        .unwrap()
    });
    assert_eq!(a.data(), b.data());
}

#[test]
fn gradient_shap_of_a_linear_model_without_noise_is_input_minus_baseline_times_weight() {
    let model = linear_model();
    let x = images(2, 3);
    // Two baselines; for a linear F every draw gives (x - b) w, so the mean is (x - mean b) w
    // weighted by how often each was drawn: use equal baselines to make it exact.
    let baselines = Tensor::full(&[2, 1, 4, 4], 0.25);
    let options = GradientShapOptions {
        samples: 9,
        ..GradientShapOptions::default()
    };
    let got = gradient_shap(&model, &x, &[0, 2], &baselines, &options).unwrap();
    for (i, class) in [0, 2].into_iter().enumerate() {
        for (j, w) in weight_row(&model, class).iter().enumerate() {
            let want = (x.data()[i * 16 + j] - 0.25) * w;
            assert!((got.data()[i * 16 + j] - want).abs() < 1e-14);
        }
    }
    let wrong = Tensor::zeros(&[1, 1, 4, 5]);
    let err = gradient_shap(&model, &x, &[0, 2], &wrong, &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("baselines") && err.contains("[1, 1, 4, 5]"),
        "{err}"
    );
}

/// conv (1 -> 2 channels, 1x1, stride 2) then a dense head: A_k = a_k x_sub + c_k on the 2x2
/// grid of even pixels, dF/dA_k = the head's weights for channel k, alpha_k their mean, and
/// the map sum_k alpha_k A_k, each layer pixel covering a 2x2 block of the input.
#[test]
fn grad_cam_of_a_one_conv_model_matches_the_hand_formula() {
    let mut b = ModelBuilder::new(ModelKind::Custom, [1, 4, 4], 3, Init::GlorotUniform, 2);
    b.conv("conv1", 2, 1, 2, 0)
        .unwrap()
        .flatten()
        .unwrap()
        .head("fc")
        .unwrap();
    let model: Model<f64> = b.build().unwrap();
    let x = images(1, 7);
    let class = 1;
    let map = grad_cam(&model, &x, &[class], &GradCamOptions::default()).unwrap();
    assert_eq!(map.shape(), &[1, 1, 4, 4]);
    let (cw, cb, fw) = (
        model.params[0].data(),
        model.params[1].data(),
        model.params[2].data(),
    );
    let mut want = [0.0f64; 4];
    for k in 0..2 {
        let head = &fw[class * 8 + k * 4..class * 8 + k * 4 + 4];
        let alpha = head.iter().sum::<f64>() / 4.0;
        for (p, wp) in want.iter_mut().enumerate() {
            let (y, xx) = (p / 2 * 2, p % 2 * 2);
            *wp += alpha * (cw[k] * x.data()[y * 4 + xx] + cb[k]);
        }
    }
    for y in 0..4 {
        for xx in 0..4 {
            let got = map.data()[y * 4 + xx];
            let w = want[(y / 2) * 2 + xx / 2];
            assert!((got - w).abs() < 1e-14, "({y}, {xx}): {got} vs {w}");
        }
    }
    let relu = GradCamOptions {
        relu: true,
        ..GradCamOptions::default()
    };
    let r = grad_cam(&model, &x, &[class], &relu).unwrap();
    for (a, b) in r.data().iter().zip(map.data()) {
        assert_eq!(*a, b.max(0.0));
    }
    let missing = GradCamOptions {
        layer: Some("conv7".into()),
        ..GradCamOptions::default()
    };
    let err = grad_cam(&model, &x, &[class], &missing)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("option layer") && err.contains("conv1") && err.contains("'conv7'"),
        "{err}"
    );
}

#[test]
fn grad_cam_on_deep_names_its_conv_layers_and_runs_at_each() {
    let model = deep::<f32>([1, 28, 28], 10, 4).unwrap();
    let x = Tensor::full(&[2, 1, 28, 28], 0.5f32);
    for layer in ["conv1", "conv4", "conv9"] {
        let options = GradCamOptions {
            layer: Some(layer.into()),
            ..GradCamOptions::default()
        };
        let m = grad_cam(&model, &x, &[3, 3], &options).unwrap();
        assert_eq!(m.shape(), &[2, 1, 28, 28]);
        assert!(m.data().iter().all(|v| v.is_finite()));
    }
    let err = conv_layer_index(&model, Some("fc1"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("conv1, conv2") && err.contains("conv9"),
        "{err}"
    );
}

#[test]
fn shapley_sampling_is_exact_for_a_linear_model_and_efficient_for_deep() {
    let model = linear_model();
    let x = images(2, 1);
    let options = ShapleyOptions {
        patch: 2,
        samples: 3,
        seed: 5,
        score: Score::Logit,
    };
    let got = shapley_sampling(&model, &x, &[1, 2], &options).unwrap();
    for (i, class) in [1, 2].into_iter().enumerate() {
        let w = weight_row(&model, class);
        for p in 0..16 {
            let (py, px) = (p / 4 / 2, p % 4 / 2);
            let want: f64 = (0..16)
                .filter(|q| q / 4 / 2 == py && q % 4 / 2 == px)
                .map(|q| w[q] * x.data()[i * 16 + q])
                .sum();
            assert!((got.data()[i * 16 + p] - want).abs() < 1e-12);
        }
    }
    // Efficiency on a non-linear network: each patch's value is given to its 49 pixels, so the
    // map sums to 49 * sum of patch values = 49 (F(x) - F(0)).
    let deep = deep::<f64>([1, 28, 28], 10, 4).unwrap();
    let data = (0..784).map(|i| ((i as f64) * 0.013).fract()).collect();
    let x = Tensor::from_vec(&[1, 1, 28, 28], data).unwrap();
    let options = ShapleyOptions {
        patch: 7,
        samples: 2,
        seed: 1,
        score: Score::Logit,
    };
    let map = shapley_sampling(&deep, &x, &[6], &options).unwrap();
    let f = super::target::scores(&deep, &x, &[6], Score::Logit).unwrap()[0];
    let f0 = super::target::scores(&deep, &Tensor::zeros(&[1, 1, 28, 28]), &[6], Score::Logit)
        .unwrap()[0];
    let total = map.data().iter().sum::<f64>() / 49.0;
    assert!(
        (total - (f - f0)).abs() < 1e-9 * (f - f0).abs().max(1.0),
        "{total} vs {}",
        f - f0
    );
    let err = shapley_sampling(
        &deep,
        &x,
        &[6],
        &ShapleyOptions {
            patch: 29,
            ..options
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("option patch"), "{err}");
}
