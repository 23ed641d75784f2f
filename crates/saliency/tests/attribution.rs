//! Attribution methods: exact identities on a linear model, finite differences, integrated-gradients
//! completeness, training-integrated sums, the randomization sanity check, errors, thread-count
//! independence and the attribution movie.

mod common;
use common::patterns;

use std::fs::File;
use std::path::PathBuf;

use saliency::attribution::{
    combine_maps, fresh_donor, gradient_x_input, gradient_x_input_signed, integrated_gradients,
    occlusion, occlusion_x_gradient, randomization_sanity_check, AttributionError,
    AttributionMovie, Baseline, IgOptions, IgResult, MovieOptions, OcclusionOptions, Score, Target,
    TrainingIntegratedGradients, TIG_FILE,
};
use saliency::checkpoint;
use saliency::infer::{input_gradients, predict_probs, Objective};
use saliency::loss::LossKind;
use saliency::models::builder::ModelBuilder;
use saliency::models::init::{Init, UniformSource};
use saliency::models::{Model, ModelKind};
use saliency::train::{TrainHook, TrainState};
use tensor::{Float, Tensor};

/// `n` images of shape `input` with values drawn uniformly from [lo, hi).
fn random_images<T: Float>(n: usize, input: [usize; 3], lo: f64, hi: f64, seed: u64) -> Tensor<T> {
    let mut src = UniformSource::new(seed);
    let shape = [n, input[0], input[1], input[2]];
    Tensor::from_fn(&shape, |_| T::from_f64(lo + (hi - lo) * src.next_unit()))
}

/// A purely linear model F(a) = W a + b on (1, 4, 4) inputs with 3 classes; W and b drawn anew
/// (nonzero bias, so the identities do not lean on b = 0).
fn linear_model() -> Model<f64> {
    let mut b = ModelBuilder::new(ModelKind::Deep, [1, 4, 4], 3, Init::GlorotUniform, 1);
    b.flatten().unwrap().head("fc").unwrap();
    let mut model = b.build().unwrap();
    let mut src = UniformSource::new(99);
    assert_eq!(model.param_info[0].name, "fc.weight");
    for w in model.params[0].data_mut() {
        *w = src.symmetric(2.0);
    }
    for bias in model.params[1].data_mut() {
        *bias = src.symmetric(0.5);
    }
    model
}

/// Asserts |got - want| <= tol elementwise, printing the worst element.
fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let (mut worst, mut at) = (0.0f64, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let e = (g - w).abs();
        if e > worst || e.is_nan() {
            (worst, at) = (e, i);
        }
    }
    assert!(
        worst <= tol,
        "{what}: element {at}: got {} want {} (error {worst:e} > tolerance {tol:e})",
        got[at],
        want[at]
    );
}

fn weight_row(model: &Model<f64>, class: usize) -> Vec<f64> {
    let k = model.params[0].shape()[1];
    model.params[0].data()[class * k..(class + 1) * k].to_vec()
}

#[test]
fn linear_model_gradient_x_input_and_ig_are_exact() {
    let model = linear_model();
    let x: Tensor<f64> = random_images(2, model.input, 0.0, 1.0, 5);
    let classes = [2usize, 0];
    let per = 16;

    // Signed gradient x input of the logit: d(w_c . a + b_c)/da * a = w_c * a.
    let gxi = gradient_x_input_signed(&model, &x, &classes, Score::Logit).unwrap();
    let mut want = Vec::new();
    for (i, &c) in classes.iter().enumerate() {
        let w = weight_row(&model, c);
        want.extend((0..per).map(|j| w[j] * x.data()[i * per + j]));
    }
    assert_close(gxi.data(), &want, 1e-15, "signed gradient x input = w * a");

    // Integrated gradients of the logit from a baseline b: the gradient is w_c everywhere on the
    // path, so IG = (a - b) * w_c and completeness holds to round-off.
    let base: Tensor<f64> = random_images(1, model.input, 0.0, 1.0, 6);
    let options = IgOptions {
        steps: 7,
        score: Score::Logit,
        batch: Some(5), // chunks that split an image's path points
    };
    let ig = integrated_gradients(
        &model,
        &x,
        &classes,
        &Baseline::Given(base.clone()),
        &options,
    )
    .unwrap();
    let mut want = Vec::new();
    for (i, &c) in classes.iter().enumerate() {
        let w = weight_row(&model, c);
        want.extend((0..per).map(|j| (x.data()[i * per + j] - base.data()[j]) * w[j]));
    }
    assert_close(ig.attributions.data(), &want, 1e-14, "IG = (a - b) * w");
    for (e, d) in ig.completeness_error.iter().zip(&ig.delta) {
        assert!(
            e.abs() <= 1e-6 * d.abs().max(1.0),
            "completeness {e} of delta {d}"
        );
    }

    // The gray baseline is each image's mean value.
    let ig = integrated_gradients(&model, &x, &classes, &Baseline::Gray, &options).unwrap();
    let mut want = Vec::new();
    for (i, &c) in classes.iter().enumerate() {
        let w = weight_row(&model, c);
        let image = &x.data()[i * per..(i + 1) * per];
        let mean = image.iter().sum::<f64>() / per as f64;
        want.extend((0..per).map(|j| (image[j] - mean) * w[j]));
    }
    assert_close(
        ig.attributions.data(),
        &want,
        1e-14,
        "IG from gray = (a - mean) * w",
    );
}

/// Occlusion computed the slow way: one occluded copy at a time through `predict_probs`.
fn occlusion_reference(
    model: &Model<f64>,
    x: &Tensor<f64>,
    patch: usize,
    stride: usize,
) -> Vec<f64> {
    let [c, h, w] = model.input;
    let per = c * h * w;
    let k = model.classes;
    let mut out = vec![0.0; x.numel()];
    for i in 0..x.shape()[0] {
        let image = &x.data()[i * per..(i + 1) * per];
        let p = predict_probs(model, image, 1).unwrap();
        let mut top = 0;
        while top + patch <= h {
            let mut left = 0;
            while left + patch <= w {
                let mut copy = image.to_vec();
                let covered: Vec<usize> = (0..c)
                    .flat_map(|ch| {
                        (top..top + patch).flat_map(move |y| {
                            (left..left + patch).map(move |xx| ch * h * w + y * w + xx)
                        })
                    })
                    .collect();
                covered.iter().for_each(|&j| copy[j] = 0.0);
                let q = predict_probs(model, &copy, 1).unwrap();
                let v: f64 = (0..k).map(|j| (p[j] - q[j]).abs()).sum();
                covered.iter().for_each(|&j| out[i * per + j] += v);
                left += stride;
            }
            top += stride;
        }
    }
    out
}

#[test]
fn occlusion_matches_direct_computation() {
    let model = linear_model();
    let x: Tensor<f64> = random_images(2, model.input, 0.0, 1.0, 7);
    for (patch, stride, batch) in [(1, 1, 256), (1, 1, 3), (2, 1, 4), (3, 2, 256), (4, 4, 1)] {
        let got = occlusion(
            &model,
            &x,
            &OcclusionOptions {
                patch,
                stride,
                batch,
            },
        )
        .unwrap();
        let want = occlusion_reference(&model, &x, patch, stride);
        assert_close(
            got.data(),
            &want,
            1e-12,
            &format!("occlusion patch {patch} stride {stride}"),
        );
    }
    // A 1x1 patch on a linear model, by hand: zeroing pixel j moves every logit by -W[:, j] a_j.
    let got = occlusion(
        &model,
        &x,
        &OcclusionOptions {
            patch: 1,
            stride: 1,
            batch: 8,
        },
    )
    .unwrap();
    let softmax = |z: &[f64]| {
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|v| v / s).collect::<Vec<f64>>()
    };
    let (w, b) = (model.params[0].data(), model.params[1].data());
    let mut want = Vec::new();
    for image in x.data().chunks(16) {
        let z: Vec<f64> = (0..3)
            .map(|c| b[c] + (0..16).map(|j| w[c * 16 + j] * image[j]).sum::<f64>())
            .collect();
        let p = softmax(&z);
        for j in 0..16 {
            let zq: Vec<f64> = (0..3).map(|c| z[c] - w[c * 16 + j] * image[j]).collect();
            let q = softmax(&zq);
            want.push((0..3).map(|c| (p[c] - q[c]).abs()).sum::<f64>());
        }
    }
    assert_close(got.data(), &want, 1e-12, "1x1 occlusion by hand");
}

#[test]
fn study_gradient_x_input_matches_finite_differences() {
    // A small network with every layer kind the study's models use, in f64, PyTorch init so the
    // biases are nonzero.
    let mut b = ModelBuilder::new(ModelKind::Deep, [2, 6, 6], 4, Init::TorchDefault, 11);
    b.conv("c1", 4, 3, 1, 1)
        .unwrap()
        .relu()
        .unwrap()
        .pool(2, 2)
        .unwrap();
    b.conv("c2", 5, 3, 1, 1)
        .unwrap()
        .relu()
        .unwrap()
        .flatten()
        .unwrap();
    b.linear("f1", 8)
        .unwrap()
        .relu()
        .unwrap()
        .head("f2")
        .unwrap();
    let model: Model<f64> = b.build().unwrap();
    let x: Tensor<f64> = random_images(2, model.input, 0.05, 0.95, 12);
    let classes = Target::Pred.resolve(&model, &x, None).unwrap();
    let got = gradient_x_input(&model, &x, &classes).unwrap();

    // s(a) = max_k softmax_k(model(a)); central differences with step h.
    let per = 2 * 6 * 6;
    let s = |image: &[f64]| {
        let p = predict_probs(&model, image, 1).unwrap();
        p.iter().cloned().fold(f64::MIN, f64::max)
    };
    let h = 1e-6;
    let mut want = Vec::new();
    for i in 0..2 {
        let image = &x.data()[i * per..(i + 1) * per];
        for j in 0..per {
            let (mut up, mut down) = (image.to_vec(), image.to_vec());
            up[j] += h;
            down[j] -= h;
            want.push(((s(&up) - s(&down)) / (2.0 * h)).abs() * image[j]);
        }
    }
    let scale = want.iter().cloned().fold(0.0, f64::max);
    assert!(scale > 1e-6, "the map should not vanish (max {scale})");
    // Central differences err by O(h^2) plus round-off ~1e-16 / h = 1e-10.
    assert_close(
        got.data(),
        &want,
        1e-7 * scale.max(1.0),
        "|ds/da| * a vs finite differences",
    );
}

#[test]
fn integrated_gradients_completeness_on_deep() {
    // Untrained `deep` as built (glorot, zero biases) barely responds: glorot keeps about half the
    // variance per ReLU layer, so after 12 layers F(a) - F(0) is ~1e-6 and completeness holds
    // trivially. Tripling every kernel (amplitude x (3 / sqrt 2)^12 overall) gives an untrained
    // network of the same architecture whose top probability climbs from 0.1 at the black
    // baseline to ~0.9 at the input: a strongly curved path to integrate.
    let mut model: Model<f32> = ModelKind::Deep.build([1, 28, 28], 10, 3).unwrap();
    for (p, info) in model.params.iter_mut().zip(&model.param_info) {
        if info.name.ends_with(".weight") {
            p.data_mut().iter_mut().for_each(|w| *w *= 3.0);
        }
    }
    let x = patterns::<f32>();
    let classes = Target::Pred.resolve(&model, &x, None).unwrap();
    let run = |steps: usize, baseline: &Baseline<f32>| {
        let options = IgOptions {
            steps,
            ..IgOptions::default()
        };
        integrated_gradients(&model, &x, &classes, baseline, &options).unwrap()
    };
    let total_error = |r: &IgResult<f32>| {
        r.completeness_error
            .iter()
            .map(|e| e.abs() as f64)
            .sum::<f64>()
    };

    let r = run(64, &Baseline::Black);
    for (i, (e, d)) in r.completeness_error.iter().zip(&r.delta).enumerate() {
        assert!(
            d.abs() > 0.1,
            "image {i}: F(a) - F(0) = {d}, too small to test"
        );
        assert!(
            e.abs() <= 0.01 * d.abs(),
            "image {i}: completeness error {e} > 1% of F(a) - F(0) = {d}"
        );
    }
    // The midpoint rule's error falls as 1/m^2 on a smooth path: m = 8 -> 128 should gain far
    // more than a factor of 10 (measured: ~250).
    let (coarse, fine) = (
        total_error(&run(8, &Baseline::Black)),
        total_error(&run(128, &Baseline::Black)),
    );
    assert!(
        fine * 10.0 < coarse,
        "black: |error| at m=128 ({fine:e}) not well below m=8 ({coarse:e})"
    );

    // From the gray baseline the path crosses more ReLU kinks and F moves less, so the relative
    // error is larger at a given m (measured up to ~6% at m = 64 here); it still shrinks with m.
    let (coarse, fine) = (
        total_error(&run(8, &Baseline::Gray)),
        total_error(&run(128, &Baseline::Gray)),
    );
    assert!(
        fine < coarse,
        "gray: |error| at m=128 ({fine:e}) not below m=8 ({coarse:e})"
    );
}

#[test]
fn option_and_input_errors_are_clear() {
    let model = linear_model();
    let x: Tensor<f64> = random_images(1, model.input, 0.0, 1.0, 8);
    let occ = |patch, stride| {
        occlusion(
            &model,
            &x,
            &OcclusionOptions {
                patch,
                stride,
                batch: 4,
            },
        )
        .unwrap_err()
        .to_string()
    };
    let e = occ(0, 1);
    assert!(
        e.contains("option patch") && e.contains("found 0") && e.contains("1 to the image side 4"),
        "{e}"
    );
    let e = occ(5, 1);
    assert!(e.contains("option patch") && e.contains("found 5"), "{e}");
    let e = occ(2, 0);
    assert!(e.contains("option stride") && e.contains("found 0"), "{e}");

    let e = gradient_x_input(&model, &x, &[3]).unwrap_err();
    assert!(
        matches!(
            e,
            AttributionError::ClassOutOfRange {
                class: 3,
                classes: 3,
                ..
            }
        ),
        "{e}"
    );
    let e = Target::Class(7)
        .resolve(&model, &x, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("target class 7") && e.contains("below 3"), "{e}");

    let mut bad = x.clone();
    bad.data_mut()[9] = -0.25;
    for e in [
        gradient_x_input(&model, &bad, &[0]).unwrap_err(),
        occlusion(&model, &bad, &OcclusionOptions::for_input(model.input)).unwrap_err(),
        integrated_gradients(&model, &bad, &[0], &Baseline::Black, &IgOptions::default())
            .unwrap_err(),
    ] {
        let e = e.to_string();
        assert!(
            e.contains("element 9") && e.contains("-0.25") && e.contains("[0, 1]"),
            "{e}"
        );
    }
    let zero_steps = IgOptions {
        steps: 0,
        ..IgOptions::default()
    };
    let e = integrated_gradients(&model, &x, &[0], &Baseline::Black, &zero_steps)
        .unwrap_err()
        .to_string();
    assert!(e.contains("option steps") && e.contains("found 0"), "{e}");
    let wrong_base = Baseline::Given(Tensor::zeros(&[1, 5, 5]));
    let e = integrated_gradients(&model, &x, &[0], &wrong_base, &IgOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("baseline") && e.contains("[1, 5, 5]"), "{e}");
}

#[test]
fn training_integrated_gradients_sum_the_loss_gradients() {
    let build = |seed| -> Model<f32> {
        let mut b = ModelBuilder::new(ModelKind::Deep, [1, 6, 6], 3, Init::TorchDefault, seed);
        b.conv("conv1", 3, 3, 1, 1)
            .unwrap()
            .relu()
            .unwrap()
            .flatten()
            .unwrap();
        b.head("fc1").unwrap();
        b.build().unwrap()
    };
    let states: Vec<Model<f32>> = (0..4).map(|s| build(20 + s)).collect();
    let x: Tensor<f32> = random_images(3, [1, 6, 6], 0.0, 1.0, 9);
    let labels = vec![2, 0, 1];
    let dir = std::env::temp_dir().join(format!("saliency-tig-{}", std::process::id()));
    let mut hook = TrainingIntegratedGradients::new(
        x.clone(),
        labels.clone(),
        LossKind::CrossEntropy,
        Some(dir.clone()),
    )
    .unwrap();
    for (step, model) in states.iter().enumerate() {
        let state = TrainState {
            step: step as u64,
            epoch: 0,
        };
        hook.observe(model, state).unwrap();
    }
    // Step 0 (the untrained model) is skipped: the sum covers states 1, 2 and 3.
    let objective = Objective::Loss {
        labels: labels.clone(),
        kind: LossKind::CrossEntropy,
    };
    let mut want = vec![0.0f64; x.numel()];
    for model in &states[1..] {
        let (g, _) = input_gradients(model, &x, &objective).unwrap();
        want.iter_mut()
            .zip(g.data())
            .for_each(|(w, &v)| *w += v as f64);
    }
    let (sum, count) = hook.result();
    assert_eq!(count, 3);
    assert_eq!(sum.shape(), x.shape());
    assert_close(sum.data(), &want, 1e-12, "training-integrated sum");

    hook.finish(&states[3], TrainState { step: 3, epoch: 1 })
        .unwrap();
    let saved = checkpoint::load(&dir.join(TIG_FILE)).unwrap();
    let get = |name: &str| {
        saved
            .tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .clone()
    };
    let grads: Vec<f64> = get("gradients").data.iter().map(|&v| v as f64).collect();
    assert_close(
        &grads,
        &want,
        1e-6 * want.iter().fold(1.0f64, |m, v| m.max(v.abs())),
        "saved sum",
    );
    assert_eq!(get("inputs").data, x.data());
    assert_eq!(get("labels").data, vec![2.0, 0.0, 1.0]);
    assert_eq!(saved.metadata["states"], "3");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn randomization_sanity_check_on_deep() {
    let model: Model<f32> = ModelKind::Deep.build([1, 28, 28], 10, 4).unwrap();
    let donor = fresh_donor(&model, 5).unwrap();
    let x = patterns::<f32>();
    let classes = Target::Pred.resolve(&model, &x, None).unwrap();
    let steps =
        randomization_sanity_check(&model, &donor, &x, |m, x| gradient_x_input(m, x, &classes))
            .unwrap();
    let layers: Vec<&str> = steps.iter().map(|s| s.layer.as_str()).collect();
    assert_eq!(
        layers,
        [
            "none", "fc3", "fc2", "fc1", "conv9", "conv8", "conv7", "conv6", "conv5", "conv4",
            "conv3", "conv2", "conv1"
        ]
    );
    assert_eq!(steps[0].spearman, 1.0, "the model against itself");
    // Gradient x input keeps a factor of the input, so it never decorrelates fully; but the
    // gradient part changes with every re-drawn layer. Measured: 0.58 after fc3, 0.47 after all,
    // at most 0.74 along the way; 0.9 leaves room for other seeds without hiding a map that
    // ignores the weights (which would stay at 1).
    for s in &steps[1..] {
        assert!(
            s.spearman < 0.9,
            "randomizing down to {} left the map nearly unchanged: {steps:?}",
            s.layer
        );
    }

    // A model that is its own donor changes nothing at any step.
    let same =
        randomization_sanity_check(&model, &model, &x, |m, x| gradient_x_input(m, x, &classes))
            .unwrap();
    assert!(same.iter().all(|s| s.spearman == 1.0), "{same:?}");
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let model: Model<f32> = ModelKind::Deep.build([1, 28, 28], 10, 6).unwrap();
    let x = patterns::<f32>();
    let run = || {
        let classes = Target::Pred.resolve(&model, &x, None).unwrap();
        let gxi = gradient_x_input(&model, &x, &classes).unwrap();
        let occ = occlusion(
            &model,
            &x,
            &OcclusionOptions {
                patch: 4,
                stride: 4,
                batch: 64,
            },
        )
        .unwrap();
        let combined = combine_maps(&occ, &gxi).unwrap();
        let ig = integrated_gradients(
            &model,
            &x,
            &classes,
            &Baseline::Black,
            &IgOptions {
                steps: 8,
                ..IgOptions::default()
            },
        )
        .unwrap();
        (gxi, occ, combined, ig)
    };
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    let one = pool(1).install(run);
    let two = pool(2).install(run);
    let bits = |t: &Tensor<f32>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    assert_eq!(bits(&one.0), bits(&two.0), "gradient x input");
    assert_eq!(bits(&one.1), bits(&two.1), "occlusion");
    assert_eq!(bits(&one.2), bits(&two.2), "occlusion x gradient");
    assert_eq!(
        bits(&one.3.attributions),
        bits(&two.3.attributions),
        "integrated gradients"
    );
    // The combined map equals the one-call form.
    let direct = occlusion_x_gradient(
        &model,
        &x,
        &OcclusionOptions {
            patch: 4,
            stride: 4,
            batch: 64,
        },
    )
    .unwrap();
    assert_eq!(bits(&direct), bits(&one.2));
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saliency-attr-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Frame sizes of a GIF, in order.
fn gif_frames(path: &std::path::Path) -> Vec<(u16, u16)> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(File::open(path).unwrap()).unwrap();
    let mut sizes = Vec::new();
    while let Some(f) = decoder.read_next_frame().unwrap() {
        sizes.push((f.width, f.height));
    }
    sizes
}

fn small_model(input: [usize; 3], classes: usize, seed: u64) -> Model<f32> {
    let mut b = ModelBuilder::new(ModelKind::Deep, input, classes, Init::TorchDefault, seed);
    b.conv("conv1", 4, 3, 1, 1)
        .unwrap()
        .relu()
        .unwrap()
        .pool(4, 4)
        .unwrap();
    b.flatten().unwrap().head("fc1").unwrap();
    b.build().unwrap()
}

#[test]
fn attribution_movie_streams_frames() {
    let names: Vec<String> = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let x: Tensor<f32> = random_images(16, [1, 28, 28], 0.0, 1.0, 10);
    let labels: Vec<usize> = (0..16).map(|i| i % 10).collect();
    let dir = scratch("movie");

    let path = dir.join("every1.gif");
    let mut movie = AttributionMovie::new(
        &path,
        x.clone(),
        labels.clone(),
        names.clone(),
        MovieOptions::default(),
    )
    .unwrap();
    for step in 0..3u64 {
        // A different model each step, as training would give.
        movie
            .observe(
                &small_model([1, 28, 28], 10, step),
                TrainState { step, epoch: 0 },
            )
            .unwrap();
    }
    let last = small_model([1, 28, 28], 10, 2);
    movie
        .finish(&last, TrainState { step: 2, epoch: 1 })
        .unwrap();
    let (w, h) = movie.frame_size().unwrap();
    // 4 columns of 224-pixel tiles (28 x 8), 4 rows of tiles plus captions, plus a title bar.
    assert!(w >= 4 * 224 && h >= 4 * 224, "frame {w}x{h}");
    assert_eq!(gif_frames(&path), vec![(w as u16, h as u16); 3]);

    let path = dir.join("every2.gif");
    let pngs = dir.join("frames");
    let options = MovieOptions {
        every: 2,
        png_dir: Some(pngs.clone()),
        ..MovieOptions::default()
    };
    let mut movie = AttributionMovie::new(&path, x, labels, names, options).unwrap();
    for step in 0..4u64 {
        movie.observe(&last, TrainState { step, epoch: 0 }).unwrap();
    }
    movie
        .finish(&last, TrainState { step: 3, epoch: 1 })
        .unwrap();
    assert_eq!(
        (movie.frames(), movie.last_step()),
        (2, Some(2)),
        "frames at steps 0 and 2"
    );
    assert_eq!(gif_frames(&path).len(), 2);
    let mut files: Vec<String> = std::fs::read_dir(&pngs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["frame_00000.png", "frame_00001.png"]);

    // RGB images larger than 64 pixels: 3 columns, channel-summed maps.
    let path = dir.join("rgb.gif");
    let x: Tensor<f32> = random_images(6, [3, 72, 72], 0.0, 1.0, 11);
    let model = small_model([3, 72, 72], 5, 1);
    let names: Vec<String> = ["daisy", "dandelion", "rose", "sunflower", "tulip"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut movie = AttributionMovie::new(
        &path,
        x,
        vec![0, 1, 2, 3, 4, 0],
        names,
        MovieOptions::default(),
    )
    .unwrap();
    movie
        .observe(&model, TrainState { step: 0, epoch: 0 })
        .unwrap();
    movie
        .finish(&model, TrainState { step: 0, epoch: 0 })
        .unwrap();
    let (w, h) = movie.frame_size().unwrap();
    // 72 pixels upscaled 4x (the smallest factor reaching 224) = 288-pixel tiles.
    assert!(
        (3 * 288..4 * 288).contains(&w) && (2 * 288..3 * 288).contains(&h),
        "frame {w}x{h}"
    );
    assert_eq!(gif_frames(&path).len(), 1);

    let e = AttributionMovie::new(
        &path,
        Tensor::zeros(&[1, 1, 4, 4]),
        vec![0],
        vec![],
        MovieOptions {
            every: 0,
            ..MovieOptions::default()
        },
    );
    assert!(e.err().unwrap().to_string().contains("option every"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every frame of a GIF decoded to RGB, with its size.
fn gif_rgb_frames(path: &std::path::Path) -> Vec<image::RgbImage> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(File::open(path).unwrap()).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = decoder.read_next_frame().unwrap() {
        let rgb: Vec<u8> = f
            .buffer
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        frames.push(image::RgbImage::from_raw(f.width as u32, f.height as u32, rgb).unwrap());
    }
    frames
}

/// Mean over pixels and channels of |a - b|, in levels of 255.
fn mean_abs_difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| x.abs_diff(y) as u64)
        .sum();
    total as f64 / a.as_raw().len() as f64
}

/// How far a GIF frame is from the exact frame: the mean |difference| over pixels and channels,
/// and the 99th percentile and the largest difference of 8x8-block means over blocks and
/// channels (what the eye sees as bands; dithering grain averages out in it).
fn palette_errors(gif: &image::RgbImage, exact: &image::RgbImage) -> (f64, f64, f64) {
    let mean = mean_abs_difference(gif, exact);
    let mut blocks = Vec::new();
    for by in 0..exact.height() / 8 {
        for bx in 0..exact.width() / 8 {
            for k in 0..3 {
                let (mut a, mut b) = (0i64, 0i64);
                for y in 0..8 {
                    for x in 0..8 {
                        a += gif.get_pixel(8 * bx + x, 8 * by + y).0[k] as i64;
                        b += exact.get_pixel(8 * bx + x, 8 * by + y).0[k] as i64;
                    }
                }
                blocks.push((a - b).abs() as f64 / 64.0);
            }
        }
    }
    blocks.sort_by(f64::total_cmp);
    let p99 = blocks[blocks.len() * 99 / 100];
    (mean, p99, *blocks.last().unwrap())
}

/// Percent of the pixels that are clearly tinted, max(r, g, b) - min(r, g, b) > 24 levels: the
/// inputs are gray, so outside the small captions and the colour bar only the heat map tints.
fn tinted_percent(img: &image::RgbImage) -> f64 {
    let tinted = img
        .pixels()
        .filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 24)
        .count();
    100.0 * tinted as f64 / (img.width() as u64 * img.height() as u64) as f64
}

/// The movie of a short real training run (the study's `deep` on 1,600 Fashion-MNIST images, 100
/// minibatches): its first frame (the untrained model) and its last must look different at a
/// glance, not only in their captions. Drawn with each frame's own maximum, both frames were
/// tinted all over (11.1 % and 8.4 % of the frame's pixels, mean |difference| 4.6 levels): only
/// the pattern of the tint moved. On one scale for the movie the untrained model's small
/// gradients leave the first frame nearly gray (1.4 %: the colour bar and the captions) and the
/// trained model's light up (8.9 %).
///
/// The GIF holds the frames closely: with its palette learned from the movie the last frame is off
/// by 0.63 levels on average, 1.41 on the 99th percentile of 8x8-block means (15.3 on the worst
/// block, a rare colour); the fixed colour cube with ordered dithering it used before was off by
/// 4.23 on average (its grain), 5.00 and 13.1 on the blocks.
#[test]
fn the_movie_of_a_training_run_changes_from_its_first_frame_to_its_last() {
    use saliency::train::{TrainConfig, Trainer};
    let (train, test) = common::fashion();
    let (train, test) = (train.take(6400), test.take(100));
    let mut config = TrainConfig::study(ModelKind::Deep);
    config.epochs = 1;
    config.batch_size = 16;
    let names = train.class_names.clone();
    let dir = scratch("movie-training");
    let path = dir.join("training.gif");
    let mut movie = AttributionMovie::from_dataset(
        &path,
        &test,
        MovieOptions {
            every: 80,
            png_dir: Some(dir.join("frames")),
            ..MovieOptions::default()
        },
    )
    .unwrap();
    let mut trainer = Trainer::new(config, [1, 28, 28], names).unwrap();
    let metrics = trainer
        .run(&train, &test, None, &mut [&mut movie], &mut |_| {})
        .unwrap();
    let frames = gif_rgb_frames(&path);
    assert_eq!(
        frames.len(),
        6,
        "steps 0, 80, ..., 400 (after the last minibatch)"
    );
    // The exact frames, as drawn (the GIF's palette is tested on its own).
    let png = |k: usize| {
        image::open(dir.join(format!("frames/frame_{k:05}.png")))
            .unwrap()
            .to_rgb8()
    };
    let (first, last) = (&png(0), &png(frames.len() - 1));
    let difference = mean_abs_difference(first, last);
    let (tint_first, tint_last) = (tinted_percent(first), tinted_percent(last));
    eprintln!(
        "test accuracy {:.3}; first vs last frame: mean |difference| {difference:.2} levels, \
         tinted {tint_first:.1} % -> {tint_last:.1} %",
        metrics[0].test_accuracy
    );
    // The GIF against the exact frames, and the same last frame through the fixed 252-colour cube
    // with ordered dithering that the movie used before.
    let (mean_error, block_p99, block_max) = palette_errors(&frames[frames.len() - 1], last);
    let cube = dir.join("cube.gif");
    let (w, h) = last.dimensions();
    let mut old = saliency::render::GifMovie::create(&cube, w as u16, h as u16, 10).unwrap();
    old.push_frame(last).unwrap();
    old.finish().unwrap();
    let (cube_mean, cube_p99, cube_max) = palette_errors(&gif_rgb_frames(&cube)[0], last);
    eprintln!(
        "last frame through the GIF palette: mean error {mean_error:.2}, 8x8 blocks p99 \
         {block_p99:.2}, max {block_max:.2}; through the fixed cube with dithering: \
         {cube_mean:.2}, {cube_p99:.2}, {cube_max:.2}"
    );
    assert!(
        mean_error < cube_mean / 3.0 && block_p99 < cube_p99,
        "GIF vs exact frame: mean error {mean_error:.2} (cube {cube_mean:.2}), 8x8 blocks p99 \
         {block_p99:.2} (cube {cube_p99:.2})"
    );
    if let Ok(keep) = std::env::var("SALIENCY_KEEP_MOVIE") {
        frames[0].save(format!("{keep}/first.png")).unwrap();
        frames
            .last()
            .unwrap()
            .save(format!("{keep}/last.png"))
            .unwrap();
    }
    assert!(
        tint_last > 2.0 * tint_first,
        "tinted pixels: first frame {tint_first:.1} %, last {tint_last:.1} %"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
