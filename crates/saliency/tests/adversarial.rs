//! Adversarial examples: the attacks do what their formulas say, the controls are deterministic
//! and of the stated size, the statistics count flips correctly, nothing depends on the thread
//! count, and the edge correlation measures what it claims.

use saliency::adversarial::{
    attack, attack_stats, fgsm, gradient_display, iterative_fgsm, l2_gradient_step, loss_gradient,
    luma, mean_edge_correlation, normalized_gradient_step, predict, random_direction, sign_noise,
    sign_step, sobel_magnitude, uniform_noise, AdversarialError, AttackConfig, Method, Sweep,
};
use saliency::data::Dataset;
use saliency::infer::{argmax_rows, input_gradients, predict_probs, Objective};
use saliency::loss::LossKind;
use saliency::models::builder::ModelBuilder;
use saliency::models::init::Init;
use saliency::models::{Model, ModelKind};
use tensor::Tensor;

/// A small conv net (conv 4 -> relu -> pool -> flatten -> 3 classes) on 1x8x8 inputs: it has the
/// dead ReLUs and max-pool routing that give exact zeros in input gradients.
fn tiny_conv(seed: u64) -> Model<f32> {
    let mut b = ModelBuilder::new(ModelKind::Deep, [1, 8, 8], 3, Init::TorchDefault, seed);
    b.conv("conv1", 4, 3, 1, 1)
        .unwrap()
        .relu()
        .unwrap()
        .pool(2, 2)
        .unwrap()
        .flatten()
        .unwrap()
        .head("fc")
        .unwrap();
    b.build().unwrap()
}

/// Deterministic inputs in [0, 1] (a hash of the index, no RNG needed).
fn inputs(n: usize, shape: [usize; 3], salt: u32) -> Tensor<f32> {
    let len = n * shape.iter().product::<usize>();
    let data = (0..len)
        .map(|i| {
            let x = (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(salt.wrapping_mul(97));
            ((x >> 8) % 1000) as f32 / 999.0
        })
        .collect();
    Tensor::from_vec(&[n, shape[0], shape[1], shape[2]], data).unwrap()
}

fn labels(n: usize, classes: usize) -> Vec<usize> {
    (0..n).map(|i| (i * 7 + 1) % classes).collect()
}

fn bits(t: &Tensor<f32>) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

fn config() -> AttackConfig {
    AttackConfig {
        steps: 3,
        ..AttackConfig::default()
    }
}

#[test]
fn sign_step_moves_by_eps_where_the_gradient_is_nonzero() {
    let a = inputs(2, [1, 4, 4], 1);
    // Every third element of g is zero, the others alternate in sign and size.
    let g = Tensor::from_fn(a.shape(), |i| match i % 3 {
        0 => 0.0,
        1 => 1e-9 * (i as f32 + 1.0),
        _ => -3.0,
    });
    let eps = 0.01;
    let out = sign_step(&a, &g, eps, false).unwrap();
    let mut moved = 0;
    for (i, ((&x, &y), &gi)) in a.data().iter().zip(out.data()).zip(g.data()).enumerate() {
        if gi == 0.0 {
            assert_eq!(x.to_bits(), y.to_bits(), "element {i} with g = 0 moved");
        } else {
            // Exactly a + eps * sign(g) in f32, which is eps up to rounding of the sum (half an
            // ulp of a value <= 1.01, 2^-24 * 1.01 ~ 6e-8).
            let s = gi.signum();
            assert_eq!(y, x + 0.01f32 * s, "element {i}");
            assert!(
                ((y - x) * s - 0.01).abs() <= 1.2e-7,
                "element {i}: moved {}",
                y - x
            );
            moved += 1;
        }
    }
    assert_eq!(moved, 2 * 16 - 11, "32 elements, 11 with g = 0");
    // eps = 0 returns the input bit for bit.
    assert_eq!(bits(&sign_step(&a, &g, 0.0, false).unwrap()), bits(&a));
    // With clipping every value stays in [0, 1], even for a huge step.
    let clipped = sign_step(&a, &g, 5.0, true).unwrap();
    assert!(clipped.data().iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn a_zero_gradient_changes_nothing() {
    let a = inputs(3, [1, 4, 4], 2);
    let zero = Tensor::zeros(a.shape());
    for eps in [0.0, 0.01, 0.15, 3.0] {
        assert_eq!(bits(&sign_step(&a, &zero, eps, false).unwrap()), bits(&a));
        assert_eq!(
            bits(&normalized_gradient_step(&a, &zero, eps, false).unwrap()),
            bits(&a)
        );
        assert_eq!(
            bits(&l2_gradient_step(&a, &zero, eps, false).unwrap()),
            bits(&a)
        );
    }
    // The study's g / max(g) with no positive element: left unchanged, never NaN.
    let negative = Tensor::full(a.shape(), -1.0f32);
    let out = normalized_gradient_step(&a, &negative, 0.15, false).unwrap();
    assert_eq!(bits(&out), bits(&a));
}

#[test]
fn normalized_and_l2_steps_have_the_stated_size() {
    let a = inputs(2, [1, 4, 4], 3);
    let g = Tensor::from_fn(a.shape(), |i| ((i * 37 % 11) as f32 - 4.0) * 0.25);
    let eps = 0.15;
    let norm = normalized_gradient_step(&a, &g, eps, false).unwrap();
    let l2 = l2_gradient_step(&a, &g, eps, false).unwrap();
    for img in 0..2 {
        let r = img * 16..(img + 1) * 16;
        let gi = &g.data()[r.clone()];
        let max = gi.iter().copied().fold(f32::MIN, f32::max);
        for j in r.clone() {
            // a' - a = eps * g / max(g), up to f32 rounding of the sum.
            let expect = eps as f32 * (g.data()[j] / max);
            let moved = norm.data()[j] - a.data()[j];
            assert!(
                (moved - expect).abs() < 1e-6,
                "image {img} element {j}: {moved} vs {expect}"
            );
        }
        let step: f64 = r
            .map(|j| ((l2.data()[j] - a.data()[j]) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            (step - eps).abs() < 1e-5,
            "L2 step norm {step}, expected {eps}"
        );
    }
    let clipped = normalized_gradient_step(&a, &g, 10.0, true).unwrap();
    assert!(clipped.data().iter().all(|v| (0.0..=1.0).contains(v)));
}

/// A linear model z = W a + b on 1x4x4 inputs with weights set by hand.
fn linear_model() -> Model<f32> {
    let mut b = ModelBuilder::new(ModelKind::Deep, [1, 4, 4], 3, Init::GlorotUniform, 0);
    b.flatten().unwrap().head("fc").unwrap();
    let mut m: Model<f32> = b.build().unwrap();
    // W[k][i] = 0.5 sin(1.3 k + 0.7 i + 0.2), b = (0.1, -0.2, 0.05).
    m.params[0] = Tensor::from_fn(&[3, 16], |j| {
        let (k, i) = (j / 16, j % 16);
        0.5 * (1.3 * k as f32 + 0.7 * i as f32 + 0.2).sin()
    });
    m.params[1] = Tensor::from_vec(&[3], vec![0.1, -0.2, 0.05]).unwrap();
    m
}

#[test]
fn on_a_linear_model_the_sign_attack_raises_the_loss_as_the_linear_form_predicts() {
    let model = linear_model();
    let w: Vec<f64> = model.params[0].data().iter().map(|&v| v as f64).collect();
    let a = inputs(4, [1, 4, 4], 4);
    let y = labels(4, 3);
    let g = loss_gradient(&model, &a, &y, LossKind::CrossEntropy).unwrap();
    let cfg = config();
    for eps in [0.001, 0.01] {
        let adv = fgsm(&model, &a, &y, eps, &cfg).unwrap();
        let (_, j0) = input_gradients(
            &model,
            &a,
            &Objective::Loss {
                labels: y.clone(),
                kind: LossKind::CrossEntropy,
            },
        )
        .unwrap();
        let (_, j1) = input_gradients(
            &model,
            &adv,
            &Objective::Loss {
                labels: y.clone(),
                kind: LossKind::CrossEntropy,
            },
        )
        .unwrap();
        let (_, z0) = input_gradients(&model, &a, &Objective::Logit(vec![0; 4])).unwrap();
        let (_, z1) = input_gradients(&model, &adv, &Objective::Logit(vec![0; 4])).unwrap();
        for n in 0..4 {
            let gn = &g.data()[n * 16..(n + 1) * 16];
            let l1: f64 = gn.iter().map(|v| v.abs() as f64).sum();
            // The step actually taken (f32), and the logit change it causes: v = W delta.
            let delta: Vec<f64> = (0..16)
                .map(|i| (adv.data()[n * 16 + i] - a.data()[n * 16 + i]) as f64)
                .collect();
            let v: Vec<f64> = (0..3)
                .map(|k| (0..16).map(|i| w[k * 16 + i] * delta[i]).sum())
                .collect();
            // Taylor: J(a + delta) = J(a) + g . delta + 1/2 v^T H v, H = diag(p) - p p^T at some
            // point between; v^T H v = Var_p(v) <= max_k v_k^2. So the change differs from the
            // first-order eps * ||g||_1 by at most max v^2 / 2 (plus f32 rounding of J, ~1e-6).
            let change = (j1[n] - j0[n]) as f64;
            let first = eps * l1;
            let bound = 0.5 * v.iter().map(|x| x * x).fold(0.0, f64::max) + 2e-6;
            assert!(change > 0.0, "image {n}: the loss fell ({change})");
            assert!(
                (change - first).abs() <= bound,
                "image {n}, eps {eps}: change {change}, first order {first}, bound {bound}"
            );
            // The logits move exactly linearly: z(a') - z(a) = eps * W sign(g).
            let predicted: f64 = (0..16)
                .map(|i| {
                    w[i] * eps
                        * if gn[i] > 0.0 {
                            1.0
                        } else if gn[i] < 0.0 {
                            -1.0
                        } else {
                            0.0
                        }
                })
                .sum();
            let actual = (z1[n] - z0[n]) as f64;
            assert!(
                (actual - predicted).abs() < 1e-5,
                "image {n}, eps {eps}: logit 0 moved {actual}, expected {predicted}"
            );
        }
    }
}

#[test]
fn iterated_form() {
    let model = tiny_conv(5);
    let a = inputs(6, [1, 8, 8], 5);
    let y = labels(6, 3);
    let eps = 0.05;
    let one = AttackConfig {
        steps: 1,
        ..config()
    };
    assert_eq!(
        bits(&iterative_fgsm(&model, &a, &y, eps, &one).unwrap()),
        bits(&fgsm(&model, &a, &y, eps, &one).unwrap()),
        "k = 1 is the single step"
    );
    let many = AttackConfig {
        steps: 7,
        ..config()
    };
    let out = iterative_fgsm(&model, &a, &y, eps, &many).unwrap();
    // k steps of eps/k: at most eps in total, up to one f32 rounding per step (7 x 6e-8).
    let worst = out
        .data()
        .iter()
        .zip(a.data())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= eps as f32 + 7.0 * 6e-8,
        "moved {worst} > eps {eps}"
    );
    assert!(worst > 0.0);
    let clipped =
        iterative_fgsm(&model, &a, &y, 0.5, &AttackConfig { clip: true, ..many }).unwrap();
    assert!(clipped.data().iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn random_controls_are_deterministic_and_of_the_stated_size() {
    let a = inputs(5, [1, 8, 8], 6);
    let r1 = uniform_noise(&a, 0.1, 42, false).unwrap();
    let r2 = uniform_noise(&a, 0.1, 42, false).unwrap();
    assert_eq!(bits(&r1), bits(&r2), "same seed, same noise");
    assert_ne!(bits(&r1), bits(&uniform_noise(&a, 0.1, 43, false).unwrap()));
    // On a black image the added noise is the output itself: its largest element is exactly 0.1
    // (n / max(n) is exactly 1 there), and every element lies in [0, 0.1].
    let black = Tensor::zeros(&[5, 1, 8, 8]);
    let noise = uniform_noise(&black, 0.1, 42, false).unwrap();
    for (i, img) in noise.data().chunks(64).enumerate() {
        let max = img.iter().copied().fold(f32::MIN, f32::max);
        assert_eq!(max, 0.1f32, "image {i}");
        assert!(img.iter().all(|&v| (0.0..=0.1).contains(&v)));
    }
    // On a real image, a' - a has maximum 0.1 up to the rounding of the sum.
    for img in 0..5 {
        let r = img * 64..(img + 1) * 64;
        let max = r
            .map(|j| r1.data()[j] - a.data()[j])
            .fold(f32::MIN, f32::max);
        assert!((max - 0.1).abs() < 1e-7, "image {img}: max added {max}");
    }
    // Noise of image i does not depend on the batch it came in.
    let last = Tensor::from_vec(&[1, 1, 8, 8], a.data()[..64].to_vec()).unwrap();
    assert_eq!(
        bits(&uniform_noise(&last, 0.1, 42, false).unwrap()),
        bits(&r1)[..64]
    );

    let s = sign_noise(&black, 0.01, 7, false).unwrap();
    assert!(s.data().iter().all(|&v| v == 0.01 || v == -0.01));
    let plus = s.data().iter().filter(|&&v| v > 0.0).count();
    // 320 fair coin flips: 160 +- 3 standard deviations (8.9 each).
    assert!((133..=187).contains(&plus), "{plus} of 320 positive");

    let d = random_direction(&black, &[0.5, 0.0, 1.0, 2.0, 0.25], 9, false).unwrap();
    for (img, &r) in [0.5, 0.0, 1.0, 2.0, 0.25].iter().enumerate() {
        let norm: f64 = d.data()[img * 64..(img + 1) * 64]
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            (norm - r).abs() < 1e-6,
            "image {img}: norm {norm}, expected {r}"
        );
    }
}

fn dataset(n: usize) -> Dataset {
    let x = inputs(n, [1, 8, 8], 7);
    Dataset {
        name: "toy".into(),
        images: x.data().to_vec(),
        labels: labels(n, 3).iter().map(|&l| l as u32).collect(),
        shape: [1, 8, 8],
        class_names: vec!["a".into(), "b".into(), "c".into()],
    }
}

/// A data set read only through `fill`, remembering the most images asked for at once.
struct Chunked {
    data: Dataset,
    largest: std::sync::atomic::AtomicUsize,
}

impl saliency::data::ImageSource for Chunked {
    fn name(&self) -> &str {
        "chunked"
    }
    fn labels(&self) -> &[u32] {
        &self.data.labels
    }
    fn shape(&self) -> [usize; 3] {
        self.data.shape
    }
    fn class_names(&self) -> &[String] {
        &self.data.class_names
    }
    fn fill(&self, positions: &[usize], out: &mut [f32]) -> Result<(), saliency::data::DataError> {
        self.largest
            .fetch_max(positions.len(), std::sync::atomic::Ordering::Relaxed);
        self.data.fill(positions, out)
    }
}

/// The statistics read a source a chunk at a time (an image folder's split is never held whole):
/// the same rows as from the data in memory, no read larger than a chunk, and an input out of
/// range named by its place in the whole set, not in its chunk.
#[test]
fn stats_read_their_source_a_chunk_at_a_time() {
    use saliency::data::ImageSource;
    let model = tiny_conv(8);
    let cfg = AttackConfig {
        batch: 16,
        seed: 3,
        ..config()
    };
    let sweeps = vec![
        Sweep::new(Method::Fgsm, vec![0.05, 0.3]),
        Sweep::new(Method::Random, vec![0.1]),
    ];
    let source = Chunked {
        data: dataset(40),
        largest: Default::default(),
    };
    let mut done = Vec::new();
    let streamed = attack_stats(&model, &source, &sweeps, &cfg, &mut |d, n| {
        done.push((d, n))
    })
    .unwrap();
    assert_eq!(done, [(16, 40), (32, 40), (40, 40)]);
    assert_eq!(source.largest.into_inner(), 16);
    let data = source.data;
    let held = attack_stats(&model, &data, &sweeps, &cfg, &mut |_, _| {}).unwrap();
    assert_eq!(streamed, held);
    assert_eq!(streamed[0].n, 40);

    let mut bad = data.clone();
    let element = 37 * data.values_per_image() + 5;
    bad.images[element] = 1.5;
    let e = attack_stats(&model, &bad, &sweeps, &cfg, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("element {element} (image 37) is 1.5")),
        "{e}"
    );
}

#[test]
fn stats_count_flips_like_a_direct_computation() {
    let model = tiny_conv(8);
    let data = dataset(40);
    let y: Vec<usize> = data.labels.iter().map(|&l| l as usize).collect();
    let x = Tensor::from_vec(&[40, 1, 8, 8], data.images.clone()).unwrap();
    // Chunks of 16 (16 + 16 + 8): noise seeding and sums must not care.
    let cfg = AttackConfig {
        batch: 16,
        seed: 3,
        ..config()
    };
    let sweeps = vec![
        Sweep::new(Method::Fgsm, vec![0.0, 0.05, 0.3]),
        Sweep::new(Method::Random, vec![0.1, 1.0]),
    ];
    let stats = attack_stats(&model, &data, &sweeps, &cfg, &mut |_, _| {}).unwrap();
    assert_eq!(stats.len(), 5);

    // Independently: predictions from the probabilities, the attack from its formula.
    let classes_of =
        |t: &Tensor<f32>| argmax_rows(&predict_probs(&model, t.data(), 100).unwrap(), 3);
    let before = classes_of(&x);
    let probs = predict_probs(&model, x.data(), 100).unwrap();
    let acc_before = before.iter().zip(&y).filter(|(p, l)| p == l).count() as f64 / 40.0;
    let conf_before: f64 = probs
        .chunks(3)
        .map(|r| r.iter().copied().fold(0.0f32, f32::max) as f64)
        .sum::<f64>()
        / 40.0;
    let g = loss_gradient(&model, &x, &y, LossKind::CrossEntropy).unwrap();
    let mut any_partial = false;
    for s in &stats {
        let adv = match s.method.as_str() {
            "fgsm" => Tensor::from_fn(x.shape(), |i| {
                let gi = g.data()[i];
                let sgn = if gi > 0.0 {
                    1.0
                } else if gi < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                x.data()[i] + s.epsilon as f32 * sgn
            }),
            _ => uniform_noise(&x, s.epsilon, 3, false).unwrap(),
        };
        let after = classes_of(&adv);
        let flips = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let correct = after.iter().zip(&y).filter(|(p, l)| p == l).count();
        assert_eq!(s.n, 40);
        assert_eq!(
            s.flipped_fraction,
            flips as f64 / 40.0,
            "{} eps {}",
            s.method,
            s.epsilon
        );
        assert_eq!(
            s.accuracy,
            correct as f64 / 40.0,
            "{} eps {}",
            s.method,
            s.epsilon
        );
        assert_eq!(s.accuracy_before, acc_before);
        assert!((s.mean_confidence_before - conf_before).abs() < 1e-9);
        any_partial |= flips > 0 && flips < 40;
        if s.epsilon == 0.0 {
            assert_eq!(s.flipped_fraction, 0.0);
            assert_eq!(s.mean_confidence_after, s.mean_confidence_before);
        }
    }
    assert!(any_partial, "some sweep flips some but not all: {stats:?}");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let model = tiny_conv(9);
    let a = inputs(12, [1, 8, 8], 9);
    let y = labels(12, 3);
    let data = dataset(24);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let cfg = AttackConfig {
                batch: 5,
                ..config()
            };
            let outs: Vec<Vec<u32>> = Method::ALL
                .iter()
                .map(|&m| bits(&attack(&model, m, &a, &y, m.default_epsilon(), &cfg).unwrap()))
                .collect();
            let sweeps: Vec<Sweep> = Method::ALL
                .iter()
                .map(|&m| Sweep::new(m, vec![0.05, 0.2]))
                .collect();
            let stats = attack_stats(&model, &data, &sweeps, &cfg, &mut |_, _| {}).unwrap();
            (outs, serde_json::to_string(&stats).unwrap())
        })
    };
    let (one, stats_one) = run(1);
    let (two, stats_two) = run(2);
    for (m, (x, y)) in Method::ALL.iter().zip(one.iter().zip(&two)) {
        assert!(x == y, "{m}: output differs between 1 and 2 threads");
    }
    assert_eq!(stats_one, stats_two);
}

#[test]
fn edge_correlation_is_one_for_the_edge_map_and_near_zero_for_noise() {
    // A bright square with a diagonal ramp inside, on black: edges on the outline and gentle
    // ones inside.
    let (h, w) = (28, 28);
    let img: Vec<f32> = (0..h * w)
        .map(|i| {
            let (y, x) = (i / w, i % w);
            if (6..22).contains(&y) && (8..20).contains(&x) {
                0.4 + 0.02 * (x + y) as f32
            } else {
                0.0
            }
        })
        .collect();
    let edges = sobel_magnitude(&luma(&img, 1, h, w), h, w);
    let one = |v: Vec<f32>| Tensor::from_vec(&[1, 1, h, w], v).unwrap();
    let r = mean_edge_correlation(&one(img.clone()), &one(edges.clone())).unwrap();
    assert_eq!(r.defined, 1);
    assert!(
        (r.pearson - 1.0).abs() < 1e-9 && (r.spearman - 1.0).abs() < 1e-9,
        "{r:?}"
    );
    // The sign of g does not matter (|g| is compared): -edges also gives 1.
    let neg =
        mean_edge_correlation(&one(img.clone()), &one(edges.iter().map(|v| -v).collect())).unwrap();
    assert!((neg.pearson - 1.0).abs() < 1e-9);

    // Noise gradients: 32 images, each correlation ~ N(0, 1/784), sd 0.036; the mean's sd 0.006.
    let n = 32;
    let many = Tensor::from_vec(&[n, 1, h, w], img.repeat(n)).unwrap();
    let noise = uniform_noise(&Tensor::zeros(&[n, 1, h, w]), 1.0, 11, false).unwrap();
    let r = mean_edge_correlation(&many, &noise).unwrap();
    assert_eq!(r.defined, n);
    assert!(r.pearson.abs() < 0.04 && r.spearman.abs() < 0.04, "{r:?}");
}

#[test]
fn gradient_display_is_clipped_and_zero_safe() {
    let g = Tensor::from_vec(
        &[2, 1, 1, 4],
        vec![1.0, 0.05, -0.3, 0.2, 0.0, 0.0, 0.0, 0.0],
    )
    .unwrap();
    let d = gradient_display(&g);
    // 10 g / max(g) = (10, 0.5, -3, 2) clipped to (1, 0.5, 0, 1); a zero gradient is all black.
    assert_eq!(d.data(), &[1.0, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn errors_name_the_option_expected_and_found() {
    let model = tiny_conv(10);
    let a = inputs(2, [1, 8, 8], 10);
    let y = labels(2, 3);
    let msg = |e: AdversarialError| e.to_string();
    let e = msg(attack(&model, Method::Fgsm, &a, &y, -0.1, &config()).unwrap_err());
    assert!(
        e.contains("epsilon") && e.contains(">= 0") && e.contains("-0.1"),
        "{e}"
    );
    let e = msg(attack(&model, Method::Fgsm, &a, &y, f64::NAN, &config()).unwrap_err());
    assert!(e.contains("NaN"), "{e}");
    let zero = AttackConfig {
        steps: 0,
        ..config()
    };
    let e = msg(attack(&model, Method::IterativeFgsm, &a, &y, 0.1, &zero).unwrap_err());
    assert!(
        e.contains("steps") && e.contains("at least 1") && e.contains("found 0"),
        "{e}"
    );
    let e = msg("fsgm".parse::<Method>().unwrap_err());
    assert!(
        e.contains("fsgm") && e.contains("normalized-gradient"),
        "{e}"
    );
    let mut bad = a.clone();
    bad.data_mut()[70] = 1.5;
    let e = msg(attack(&model, Method::Fgsm, &bad, &y, 0.1, &config()).unwrap_err());
    assert!(
        e.contains("element 70") && e.contains("image 1") && e.contains("1.5"),
        "{e}"
    );
    let e = msg(attack(&model, Method::Fgsm, &a, &[0, 3], 0.1, &config()).unwrap_err());
    assert!(
        e.contains("label 3") && e.contains("index 1") && e.contains("below 3"),
        "{e}"
    );
    let e = msg(attack(&model, Method::Fgsm, &a, &[0], 0.1, &config()).unwrap_err());
    assert!(
        e.contains("labels") && e.contains("2 labels") && e.contains("found 1"),
        "{e}"
    );
    // Sweeps name the method and the position of a bad eps.
    let sweeps = [Sweep::new(Method::Random, vec![0.1, -1.0])];
    let e = msg(attack_stats(&model, &dataset(4), &sweeps, &config(), &mut |_, _| {}).unwrap_err());
    assert!(e.contains("random epsilons[1]"), "{e}");
    // Predictions on a perturbed input outside [0, 1] are fine (no range check there).
    assert_eq!(predict(&model, &bad, 0).unwrap().len(), 2);
}

mod common;

/// A small conv net for 1x28x28 Fashion-MNIST: conv 8 -> relu -> pool -> conv 16 -> relu -> pool
/// -> dense 64 -> relu -> 10 classes (~52k parameters), trainable in seconds.
fn small_fashion_net(seed: u64) -> Model<f32> {
    let mut b = ModelBuilder::new(ModelKind::Deep, [1, 28, 28], 10, Init::TorchDefault, seed);
    b.conv("conv1", 8, 3, 1, 1)
        .unwrap()
        .relu()
        .unwrap()
        .pool(2, 2)
        .unwrap();
    b.conv("conv2", 16, 3, 1, 1)
        .unwrap()
        .relu()
        .unwrap()
        .pool(2, 2)
        .unwrap();
    b.flatten()
        .unwrap()
        .linear("fc1", 64)
        .unwrap()
        .relu()
        .unwrap()
        .head("fc2")
        .unwrap();
    b.build().unwrap()
}

/// Trains `model` with Adam (lr 1e-3, batch 32) for `epochs` passes over `data` in order, calling
/// `hook` before the first update and after every update, as the trainer does.
fn train_small(
    model: &mut Model<f32>,
    data: &Dataset,
    epochs: usize,
    hook: &mut dyn saliency::train::TrainHook,
) {
    use saliency::train::{Optimizer, OptimizerConfig, TrainState};
    use tape::Tape;
    let mut opt = Optimizer::new(OptimizerConfig::study_adam(), &model.params);
    let per = data.image_len();
    let mut step = 0u64;
    hook.observe(model, TrainState { step, epoch: 0 }).unwrap();
    for epoch in 0..epochs {
        for start in (0..data.len()).step_by(32) {
            let end = (start + 32).min(data.len());
            let mut tape = Tape::new();
            let params = model.bind(&mut tape, true);
            let x = tape.constant(
                Tensor::from_vec(
                    &[end - start, 1, 28, 28],
                    data.images[start * per..end * per].to_vec(),
                )
                .unwrap(),
            );
            let (logits, _) = model
                .forward(&mut tape, x, &params, saliency::models::Mode::Eval)
                .unwrap();
            let y: Vec<usize> = data.labels[start..end]
                .iter()
                .map(|&l| l as usize)
                .collect();
            let loss =
                saliency::loss::mean_loss(&mut tape, logits, &y, LossKind::CrossEntropy).unwrap();
            let grads = tape.backward(loss).unwrap();
            let g: Vec<Tensor<f32>> = params
                .iter()
                .zip(&model.params)
                .map(|(&p, v)| grads.get_or_zeros(p, v.shape()))
                .collect();
            let check = opt.step(&mut model.params, &g, &model.param_info, 0.0);
            assert_eq!(
                check,
                saliency::train::UpdateCheck::default(),
                "step {step}"
            );
            step += 1;
            hook.observe(
                model,
                TrainState {
                    step,
                    epoch: epoch as u64,
                },
            )
            .unwrap();
        }
    }
    hook.finish(
        model,
        TrainState {
            step,
            epoch: epochs as u64,
        },
    )
    .unwrap();
}

fn stat<'a>(
    stats: &'a [saliency::adversarial::AttackStats],
    method: &str,
    eps: f64,
) -> &'a saliency::adversarial::AttackStats {
    stats
        .iter()
        .find(|s| s.method == method && s.epsilon == eps)
        .unwrap_or_else(|| panic!("no row for {method} at {eps}"))
}

/// The study's claims on a (briefly) trained network: the attacks flip far more predictions than
/// random noise of the same size, and trained gradients follow the image's edges more than
/// untrained ones. Also films the gradient during training and draws the figures.
#[test]
fn on_a_trained_network_attacks_beat_their_controls() {
    use saliency::adversarial::{
        adversarial_figure, compare_trained_untrained, flip_rate_plot, GradientMovie,
    };
    let (train, test) = common::fashion();
    let (train, test) = (train.take(3000), test.take(300));
    let mut model = small_fashion_net(1);
    let untrained = model.clone();
    let dir = std::env::temp_dir().join(format!("saliency-adv-trained-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gif = dir.join("gradients.gif");
    // 3000 images, batches of 32, two epochs: 188 updates; frames at steps 0, 50, 100, 150.
    let mut movie = GradientMovie::new(&gif, &test, 50, LossKind::CrossEntropy).unwrap();
    train_small(&mut model, &train, 2, &mut movie);
    assert_eq!(movie.frames(), 4);
    assert!(std::fs::read(&gif).unwrap().starts_with(b"GIF89a"));
    let acc = saliency::train::evaluate(&model, &test).unwrap().accuracy;
    // Two short epochs of this net reached 76 % here; chance is 10 %.
    assert!(acc > 0.7, "test accuracy {acc}");

    let cfg = AttackConfig::default();
    let sweeps = vec![
        Sweep::new(Method::Fgsm, vec![0.01, 0.1]),
        Sweep::new(Method::RandomSign, vec![0.1]),
        Sweep::new(Method::Random, vec![0.1]),
        Sweep::new(Method::NormalizedGradient, vec![0.15]),
        Sweep::new(Method::RandomDirection, vec![0.15]),
    ];
    let stats = attack_stats(&model, &test, &sweeps, &cfg, &mut |_, _| {}).unwrap();
    let table = saliency::adversarial::markdown_table(&stats);
    let fgsm = stat(&stats, "fgsm", 0.1).flipped_fraction;
    let sign = stat(&stats, "random-sign", 0.1).flipped_fraction;
    let uniform = stat(&stats, "random", 0.1).flipped_fraction;
    // Here: 43 % against 6 % and 5 %. "Far more": over three times its matched control.
    assert!(
        fgsm > 0.3 && fgsm > 3.0 * sign && fgsm > 3.0 * uniform,
        "{table}"
    );
    let normalized = stat(&stats, "normalized-gradient", 0.15).flipped_fraction;
    let direction = stat(&stats, "random-direction", 0.15).flipped_fraction;
    assert!(normalized > 3.0 * direction && normalized > 0.1, "{table}");
    assert!(
        stat(&stats, "fgsm", 0.01).flipped_fraction < fgsm,
        "{table}"
    );

    let y: Vec<usize> = test.labels.iter().map(|&l| l as usize).collect();
    let x = Tensor::from_vec(&[300, 1, 28, 28], test.images.clone()).unwrap();
    let fp = compare_trained_untrained(&model, &untrained, &x, &y, &cfg).unwrap();
    // Here: Pearson 0.28 trained against 0.12 untrained.
    assert!(fp.trained.pearson > fp.untrained.pearson + 0.05, "{fp:?}");

    let first4 = Tensor::from_vec(&[4, 1, 28, 28], test.images[..4 * 784].to_vec()).unwrap();
    let img = adversarial_figure(
        &model,
        Method::Fgsm,
        &first4,
        &y[..4],
        0.1,
        &cfg,
        &test.class_names,
    )
    .unwrap();
    // Three 224-pixel tiles per row, four rows, plus captions and a title.
    assert!(
        img.width() >= 3 * 224 && img.height() >= 4 * 224,
        "{:?}",
        img.dimensions()
    );
    saliency::render::save_png(&dir.join("fgsm.png"), &img).unwrap();
    let svg = flip_rate_plot(&stats, "Fashion-MNIST, small net");
    assert_eq!(svg.matches("<polyline").count(), 5);
    assert!(svg.contains("random-sign (control)"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn controls_match_the_size_of_their_attacks() {
    let model = tiny_conv(12);
    let a = inputs(6, [1, 8, 8], 12);
    let y = labels(6, 3);
    let cfg = config();
    let size = |t: &Tensor<f32>, img: usize| -> (f64, f64) {
        let r = img * 64..(img + 1) * 64;
        let d: Vec<f64> = r.map(|j| (t.data()[j] - a.data()[j]) as f64).collect();
        let linf = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        (linf, d.iter().map(|v| v * v).sum::<f64>().sqrt())
    };
    let eps = 0.15;
    let attack_step = attack(&model, Method::NormalizedGradient, &a, &y, eps, &cfg).unwrap();
    let control = attack(&model, Method::RandomDirection, &a, &y, eps, &cfg).unwrap();
    let fgsm_step = attack(&model, Method::Fgsm, &a, &y, 0.01, &cfg).unwrap();
    let signs = attack(&model, Method::RandomSign, &a, &y, 0.01, &cfg).unwrap();
    for img in 0..6 {
        // Same L2 norm (up to f32 rounding of the sums a + delta, ~1e-7 per element).
        let (_, l2_attack) = size(&attack_step, img);
        let (_, l2_control) = size(&control, img);
        assert!(
            (l2_attack - l2_control).abs() < 1e-5,
            "image {img}: {l2_attack} vs {l2_control}"
        );
        // Same L-infinity size: every element moves by eps.
        let (linf_fgsm, _) = size(&fgsm_step, img);
        let (linf_sign, l2_sign) = size(&signs, img);
        assert!((linf_fgsm - 0.01).abs() < 1e-7 && (linf_sign - 0.01).abs() < 1e-7);
        assert!(
            (l2_sign - 0.01 * 8.0).abs() < 1e-5,
            "64 elements of 0.01: L2 0.08"
        );
    }
}

#[test]
fn the_sign_image_is_classified_alone() {
    use saliency::adversarial::{classify_sign_image, sign_image};
    let model = tiny_conv(13);
    let a = inputs(5, [1, 8, 8], 13);
    let y = labels(5, 3);
    let g = loss_gradient(&model, &a, &y, LossKind::CrossEntropy).unwrap();
    let s = sign_image(&g, 0.01).unwrap();
    assert!(s
        .data()
        .iter()
        .all(|&v| v == 0.01 || v == -0.01 || v == 0.0));
    let by_hand = predict(&model, &s, 0).unwrap();
    let got = classify_sign_image(&model, &a, &y, 0.01, &config()).unwrap();
    assert_eq!(got, by_hand);
    assert!(got.iter().all(|p| p.class < 3 && p.confidence >= 1.0 / 3.0));
}
