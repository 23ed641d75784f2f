//! Hand-derived cases of the rule-based methods (guided backpropagation, deconvnet, guided
//! Grad-CAM, LRP, DeepLIFT) and the identities they must satisfy on the study's network.

use tensor::testing::in_pool;
use tensor::Tensor;

use super::*;
use crate::models::builder::ModelBuilder;
use crate::models::init::Init;
use crate::models::{deep, ModelKind};

/// F = v relu(W x + b) + c with 3 hidden units on a 1x2x2 input, 2 classes, set by hand.
fn one_hidden_layer() -> Model<f64> {
    let mut b = ModelBuilder::new(ModelKind::Custom, [1, 2, 2], 2, Init::GlorotUniform, 3);
    b.flatten()
        .unwrap()
        .linear("fc1", 3)
        .unwrap()
        .relu()
        .unwrap()
        .head("fc2")
        .unwrap();
    let mut model: Model<f64> = b.build().unwrap();
    let w = vec![
        0.5, -0.25, 1.0, 0.25, -1.0, 0.5, 0.5, 0.75, 0.25, 0.25, -0.5, 1.0,
    ];
    model.params[0] = Tensor::from_vec(&[3, 4], w).unwrap();
    model.params[1] = Tensor::from_vec(&[3], vec![0.1, -1.5, 0.05]).unwrap();
    model.params[2] = Tensor::from_vec(&[2, 3], vec![2.0, -1.0, 0.5, -0.5, 1.0, 1.5]).unwrap();
    model.params[3] = Tensor::from_vec(&[2], vec![0.3, -0.3]).unwrap();
    model
}

fn image() -> Tensor<f64> {
    Tensor::from_vec(&[1, 1, 2, 2], vec![0.2, 0.9, 0.4, 0.6]).unwrap()
}

fn study_images(n: usize) -> Tensor<f64> {
    let data = (0..n * 784)
        .map(|i| ((i as f64) * 0.0173).fract())
        .collect();
    Tensor::from_vec(&[n, 1, 28, 28], data).unwrap()
}

/// Guided: sum_j W_j v_j [z_j > 0][v_j > 0]; deconvnet: sum_j W_j max(v_j, 0), by hand.
#[test]
fn guided_backprop_and_deconvnet_of_one_hidden_layer_by_hand() {
    let model = one_hidden_layer();
    let x = image();
    let (w, b, v) = (
        model.params[0].data(),
        model.params[1].data(),
        model.params[2].data(),
    );
    let z: Vec<f64> = (0..3)
        .map(|j| (0..4).map(|i| w[j * 4 + i] * x.data()[i]).sum::<f64>() + b[j])
        .collect();
    assert!(
        z.iter().any(|&v| v <= 0.0) && z.iter().any(|&v| v > 0.0),
        "{z:?}"
    );
    let class = 0;
    let guided = guided_backprop(&model, &x, &[class]).unwrap();
    let deconv = deconvnet(&model, &x, &[class]).unwrap();
    for i in 0..4 {
        let want_g: f64 = (0..3)
            .filter(|&j| z[j] > 0.0 && v[class * 3 + j] > 0.0)
            .map(|j| w[j * 4 + i] * v[class * 3 + j])
            .sum();
        let want_d: f64 = (0..3)
            .map(|j| w[j * 4 + i] * v[class * 3 + j].max(0.0))
            .sum();
        assert!((guided.data()[i] - want_g).abs() < 1e-15, "{i}");
        assert!((deconv.data()[i] - want_d).abs() < 1e-15, "{i}");
    }
}

/// DeepLIFT of one hidden layer by hand: multipliers (relu(z) - relu(z')) / (z - z').
#[test]
fn deeplift_of_one_hidden_layer_by_hand_and_its_completeness() {
    let model = one_hidden_layer();
    let x = image();
    let (w, b, v) = (
        model.params[0].data(),
        model.params[1].data(),
        model.params[2].data(),
    );
    let z = |a: &[f64], j: usize| (0..4).map(|i| w[j * 4 + i] * a[i]).sum::<f64>() + b[j];
    let zero = [0.0; 4];
    let r = deeplift(&model, &x, &[1], &Baseline::Black).unwrap();
    for i in 0..4 {
        let want: f64 = (0..3)
            .map(|j| {
                let (za, zr) = (z(x.data(), j), z(&zero, j));
                let m = (za.max(0.0) - zr.max(0.0)) / (za - zr);
                x.data()[i] * w[j * 4 + i] * m * v[3 + j]
            })
            .sum();
        assert!((r.attributions.data()[i] - want).abs() < 1e-14, "{i}");
    }
    assert!(
        r.completeness_error[0].abs() < 1e-6,
        "{}",
        r.completeness_error[0]
    );
}

#[test]
fn deeplift_on_deep_sums_to_the_logit_difference_for_any_reference() {
    let model = deep::<f64>([1, 28, 28], 10, 5).unwrap();
    let x = study_images(3);
    for reference in [
        Baseline::Black,
        Baseline::Gray,
        Baseline::Given(Tensor::full(&[1, 28, 28], 0.3)),
    ] {
        let r = deeplift(&model, &x, &[0, 4, 7], &reference).unwrap();
        for (e, d) in r.completeness_error.iter().zip(&r.delta) {
            assert!(
                e.abs() <= 1e-6 * d.abs().max(1e-3),
                "{reference:?}: error {e} of {d}"
            );
        }
    }
    let wrong = Baseline::Given(Tensor::full(&[1, 27, 28], 0.3));
    let err = deeplift(&model, &x, &[0, 4, 7], &wrong)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("baseline") && err.contains("[1, 27, 28]"),
        "{err}"
    );
}

/// One reference for all (black, or one given image) passes once beside the images; a reference
/// per image passes with each. Both give the same maps and the same F(x) - F(x'), which is the
/// difference of the logits the network gives the images and the reference on their own.
#[test]
fn deeplift_with_one_reference_for_all_is_deeplift_with_a_copy_per_image() {
    let model = deep::<f64>([1, 28, 28], 10, 5).unwrap();
    let x = study_images(3);
    let classes = [0, 4, 7];
    let gray = Tensor::full(&[1, 28, 28], 0.3);
    for (one, copies) in [
        (Baseline::Black, Tensor::zeros(&[3, 1, 28, 28])),
        (
            Baseline::Given(gray.clone()),
            Tensor::full(&[3, 1, 28, 28], 0.3),
        ),
    ] {
        let shared = deeplift(&model, &x, &classes, &one).unwrap();
        let paired = deeplift(&model, &x, &classes, &Baseline::Given(copies.clone())).unwrap();
        tensor::testing::assert_close(
            &format!("{one:?}"),
            shared.attributions.data(),
            paired.attributions.data(),
            1e-12,
            1e-10,
        );
        let f = super::target::scores(&model, &x, &classes, super::target::Score::Logit).unwrap();
        let f0 =
            super::target::scores(&model, &copies, &classes, super::target::Score::Logit).unwrap();
        for i in 0..3 {
            let want = (f[i] - f0[i]) as f32;
            for d in [shared.delta[i], paired.delta[i]] {
                assert!(
                    (d - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{one:?}: {d} vs {want}"
                );
            }
        }
    }
}

/// With eps = 0, LRP-epsilon passes g z / z = g through every layer: it is gradient x input of
/// the logit (Montavon et al. 2019, LRP-0), biases included.
#[test]
fn lrp_epsilon_with_a_vanishing_epsilon_is_gradient_times_input() {
    let model = deep::<f64>([1, 28, 28], 10, 6).unwrap();
    let x = study_images(2);
    let lrp0 = lrp(&model, &x, &[2, 9], LrpRule::Epsilon { epsilon: 0.0 }).unwrap();
    let gxi = gradient_x_input_signed(&model, &x, &[2, 9], Score::Logit).unwrap();
    let scale = gxi.data().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (a, b) in lrp0.data().iter().zip(gxi.data()) {
        assert!((a - b).abs() < 1e-9 * scale, "{a} vs {b}");
    }
    // A large epsilon absorbs relevance: the map shrinks towards zero.
    let big = lrp(&model, &x, &[2, 9], LrpRule::Epsilon { epsilon: 1e3 }).unwrap();
    let norm = |t: &Tensor<f64>| t.data().iter().map(|v| v.abs()).sum::<f64>();
    assert!(
        norm(&big) < 0.5 * norm(&lrp0),
        "{} vs {}",
        norm(&big),
        norm(&lrp0)
    );
    let err = lrp(
        &model,
        &x,
        &[2, 9],
        LrpRule::Gamma {
            gamma: -1.0,
            epsilon: 0.0,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("option gamma"), "{err}");
}

#[test]
fn guided_grad_cam_is_guided_backprop_times_the_relu_cam() {
    let model = deep::<f64>([1, 28, 28], 10, 7).unwrap();
    let x = study_images(2);
    let ggc = guided_grad_cam(&model, &x, &[1, 3], Some("conv2")).unwrap();
    let guided = guided_backprop(&model, &x, &[1, 3]).unwrap();
    let options = GradCamOptions {
        layer: Some("conv2".into()),
        relu: true,
        score: Score::Logit,
    };
    let cam = grad_cam(&model, &x, &[1, 3], &options).unwrap();
    for ((a, g), c) in ggc.data().iter().zip(guided.data()).zip(cam.data()) {
        assert_eq!(*a, g * c);
    }
    assert!(ggc.data().iter().any(|&v| v != 0.0));
}

#[test]
fn rule_methods_are_the_same_on_any_thread_count() {
    let model = deep::<f32>([1, 28, 28], 10, 8).unwrap();
    let x = study_images(9).cast::<f32>();
    let classes = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    for rule in [
        LrpRule::Epsilon { epsilon: 0.01 },
        LrpRule::Gamma {
            gamma: 0.25,
            epsilon: 1e-9,
        },
        LrpRule::AlphaBeta {
            alpha: 2.0,
            beta: 1.0,
            epsilon: 1e-9,
        },
    ] {
        let one = in_pool(1, || lrp(&model, &x, &classes, rule).unwrap());
        let two = in_pool(2, || lrp(&model, &x, &classes, rule).unwrap());
        assert_eq!(one.data(), two.data(), "{rule:?}");
    }
    let one = in_pool(1, || {
        deeplift(&model, &x, &classes, &Baseline::Black).unwrap()
    });
    let two = in_pool(2, || {
        deeplift(&model, &x, &classes, &Baseline::Black).unwrap()
    });
    assert_eq!(one.attributions.data(), two.attributions.data());
}

/// The rule-based methods run `default_batch` images per pass (DeepLIFT half that, its references
/// riding along), so memory is bounded by the pass, not by the number of images: 300 images of
/// 1x2x2 take two passes (256 + 44; DeepLIFT three), and each image's map is the one it gets alone.
#[test]
fn rule_methods_chunk_their_images_without_changing_a_map() {
    let model = one_hidden_layer();
    let n = 300;
    assert_eq!(
        default_batch(model.input),
        256,
        "the case needs more than one pass"
    );
    let x = Tensor::from_fn(&[n, 1, 2, 2], |i| ((i * 37 + 5) % 97) as f64 / 96.0);
    let classes: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let rule = LrpRule::Epsilon { epsilon: 1e-9 };
    let all_lrp = lrp(&model, &x, &classes, rule).unwrap();
    let all_guided = guided_backprop(&model, &x, &classes).unwrap();
    let all_deeplift = deeplift(&model, &x, &classes, &Baseline::Black).unwrap();
    for i in [0, 1, 255, 256, 299] {
        let one = Tensor::from_vec(&[1, 1, 2, 2], x.data()[i * 4..(i + 1) * 4].to_vec()).unwrap();
        let c = &classes[i..i + 1];
        let same = |all: &Tensor<f64>, alone: Tensor<f64>| {
            assert_eq!(&all.data()[i * 4..(i + 1) * 4], alone.data(), "image {i}");
        };
        same(&all_lrp, lrp(&model, &one, c, rule).unwrap());
        same(&all_guided, guided_backprop(&model, &one, c).unwrap());
        same(
            &all_deeplift.attributions,
            deeplift(&model, &one, c, &Baseline::Black)
                .unwrap()
                .attributions,
        );
    }
}

/// LRP-epsilon's conv backward runs big layers in blocks of images (deep's conv1: 5 images per
/// block), so 24 images (two shards of 12: blocks of 5, 5 and 2) must give each image its map
/// alone, within rounding (the alone pass may take other conv paths on the small layers), and
/// the same bits on any thread count.
#[test]
fn lrp_epsilon_in_blocks_gives_each_image_its_map_alone() {
    let model = deep::<f32>([1, 28, 28], 10, 8).unwrap();
    let n = 24;
    let x = study_images(n).cast::<f32>();
    let classes: Vec<usize> = (0..n).map(|i| i % 10).collect();
    let rule = LrpRule::Epsilon { epsilon: 1e-9 };
    let all = in_pool(2, || lrp(&model, &x, &classes, rule).unwrap());
    let one_thread = in_pool(1, || lrp(&model, &x, &classes, rule).unwrap());
    assert_eq!(all.data(), one_thread.data());
    for i in [0, 4, 5, 11, 12, 23] {
        let image =
            Tensor::from_vec(&[1, 1, 28, 28], x.data()[i * 784..(i + 1) * 784].to_vec()).unwrap();
        let alone = lrp(&model, &image, &classes[i..i + 1], rule).unwrap();
        let scale = alone.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "image {i}: an all-zero map checks nothing");
        for (a, b) in all.data()[i * 784..(i + 1) * 784].iter().zip(alone.data()) {
            assert!((a - b).abs() <= 1e-5 * scale, "image {i}: {a} vs {b}");
        }
    }
}
