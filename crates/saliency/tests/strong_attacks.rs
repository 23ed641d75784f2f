//! The stronger attacks (PGD, targeted FGSM and PGD, DeepFool, Carlini-Wagner L2) against
//! answers known in closed form on linear models, their option errors, and PGD at least as
//! strong as FGSM at every eps on a trained `deep`.

mod common;

use saliency::adversarial::{
    attack, attack_stats, attack_stats_detailed, AdversarialError, AttackConfig, DeepFoolConfig,
    Method, PgdConfig, Sweep, TargetClass,
};
use saliency::models::builder::ModelBuilder;
use saliency::models::init::Init;
use saliency::models::{Model, ModelKind};
use saliency::train::{TrainConfig, Trainer};
use tensor::Tensor;

/// logits = W x + b on 1x2x2 inputs (4 features), W (classes x 4) and b given.
fn linear(w: &[f32], b: &[f32]) -> Model<f32> {
    let classes = b.len();
    let mut builder =
        ModelBuilder::new(ModelKind::Custom, [1, 2, 2], classes, Init::TorchDefault, 0);
    builder.flatten().unwrap().head("fc").unwrap();
    let mut model: Model<f32> = builder.build().unwrap();
    model.params[0] = Tensor::from_vec(&[classes, 4], w.to_vec()).unwrap();
    model.params[1] = Tensor::from_vec(&[classes], b.to_vec()).unwrap();
    model
}

/// A binary affine classifier whose weight difference has no zero element.
fn binary() -> Model<f32> {
    linear(&[0.8, -0.5, 0.3, 1.1, -0.4, 0.6, -0.9, 0.2], &[0.05, -0.1])
}

/// Inputs well inside [0, 1] (so no clipping is involved unless a test wants it).
fn mid_inputs(n: usize) -> Tensor<f32> {
    Tensor::from_fn(&[n, 1, 2, 2], |i| 0.3 + 0.4 * ((i * 37 % 11) as f32 / 10.0))
}

fn logits_f64(w: &[f32], b: &[f32], x: &[f32]) -> Vec<f64> {
    let k = b.len();
    (0..k)
        .map(|c| {
            b[c] as f64
                + (0..4)
                    .map(|j| w[c * 4 + j] as f64 * x[j] as f64)
                    .sum::<f64>()
        })
        .collect()
}

fn bits(t: &Tensor<f32>) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn pgd_linf_on_a_linear_classifier_ends_at_fgsm_s_corner() {
    // For two classes the cross-entropy gradient is p_other (w_other - w_y): its sign is the
    // same everywhere, so PGD walks to the corner a + eps sign(w_other - w_y) from any start
    // (its k alpha = 2.5 eps covers the ball's diameter), which is FGSM's point.
    let model = binary();
    let x = mid_inputs(6);
    let labels = vec![0, 1, 0, 1, 1, 0];
    for eps in [0.01, 0.1, 0.2] {
        for seed in [0, 7] {
            let cfg = AttackConfig {
                clip: true,
                seed,
                ..AttackConfig::default()
            };
            let pgd = attack(&model, Method::Pgd, &x, &labels, eps, &cfg).unwrap();
            let fgsm = attack(&model, Method::Fgsm, &x, &labels, eps, &cfg).unwrap();
            assert_eq!(bits(&pgd), bits(&fgsm), "eps {eps} seed {seed}");
            // Targeted at the other class is the same walk for two classes: the gradient of
            // J(x, other) is the negative of J(x, y)'s up to a positive factor.
            let zeros = vec![0usize; 6];
            let toward_one = AttackConfig {
                target: TargetClass::Class(1),
                ..cfg.clone()
            };
            let targeted =
                attack(&model, Method::PgdTargeted, &x, &zeros, eps, &toward_one).unwrap();
            let untargeted = attack(&model, Method::Pgd, &x, &zeros, eps, &cfg).unwrap();
            assert_eq!(bits(&targeted), bits(&untargeted), "pgd-targeted eps {eps}");
            let fgsm_t =
                attack(&model, Method::FgsmTargeted, &x, &zeros, eps, &toward_one).unwrap();
            let fgsm_u = attack(&model, Method::Fgsm, &x, &zeros, eps, &cfg).unwrap();
            assert_eq!(bits(&fgsm_t), bits(&fgsm_u), "fgsm-targeted eps {eps}");
        }
    }
}

#[test]
fn pgd_stays_in_the_ball_and_the_valid_range() {
    // Inputs at 0 and 1 and a large eps: every result within eps of its input and in [0, 1].
    let model = linear(
        &[
            0.8, -0.5, 0.3, 1.1, -0.4, 0.6, -0.9, 0.2, 0.1, 0.1, -0.7, 0.4,
        ],
        &[0.0, 0.1, -0.1],
    );
    let x = Tensor::from_fn(&[5, 1, 2, 2], |i| [0.0, 1.0, 0.5, 0.97][i % 4]);
    let labels = vec![0, 1, 2, 0, 1];
    for method in [Method::Pgd, Method::PgdL2, Method::PgdTargeted] {
        let eps = 0.3;
        let out = attack(&model, method, &x, &labels, eps, &AttackConfig::default()).unwrap();
        for (img, (o, a)) in out.data().chunks(4).zip(x.data().chunks(4)).enumerate() {
            assert!(
                o.iter().all(|v| (0.0..=1.0).contains(v)),
                "{method} image {img}: {o:?}"
            );
            let l2: f64 = o
                .iter()
                .zip(a)
                .map(|(p, q)| ((p - q) as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let linf = o
                .iter()
                .zip(a)
                .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
            match method.norm() {
                saliency::adversarial::Norm::L2 => assert!(l2 <= eps + 1e-6, "{method}: {l2}"),
                saliency::adversarial::Norm::LInf => {
                    assert!(linf as f64 <= eps + 1e-6, "{method}: {linf}")
                }
            }
        }
    }
}

#[test]
fn pgd_l2_on_a_linear_classifier_ends_at_eps_along_the_weight_difference() {
    // The loss rises fastest along u = (w_other - w_y) / ||.||; with alpha = eps each projected
    // step halves the angle to u, so 30 steps end at a + eps u (to f32 rounding).
    let model = binary();
    let w = model.params[0].data().to_vec();
    let x = mid_inputs(4);
    let labels = vec![0, 1, 1, 0];
    let eps = 0.15;
    let cfg = AttackConfig {
        pgd: PgdConfig {
            steps: 30,
            step_size: Some(eps),
            random_start: true,
            restarts: 1,
        },
        ..AttackConfig::default()
    };
    let out = attack(&model, Method::PgdL2, &x, &labels, eps, &cfg).unwrap();
    for (i, &y) in labels.iter().enumerate() {
        let o = 1 - y;
        let d: Vec<f64> = (0..4)
            .map(|j| (w[o * 4 + j] - w[y * 4 + j]) as f64)
            .collect();
        let len = d.iter().map(|v| v * v).sum::<f64>().sqrt();
        for j in 0..4 {
            let want = x.data()[i * 4 + j] as f64 + eps * d[j] / len;
            let got = out.data()[i * 4 + j] as f64;
            assert!(
                (got - want).abs() < 2e-6,
                "image {i} element {j}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn deepfool_on_an_affine_binary_classifier_lands_on_the_boundary() {
    let model = binary();
    let (w, b) = (
        model.params[0].data().to_vec(),
        model.params[1].data().to_vec(),
    );
    let x = mid_inputs(5);
    // DeepFool attacks the label of images classified right (foolbox's criterion): the labels
    // here are the predictions, and a wrong label leaves its image alone.
    let labels: Vec<usize> = (0..5)
        .map(|i| {
            let z = logits_f64(&w, &b, &x.data()[i * 4..(i + 1) * 4]);
            usize::from(z[1] > z[0])
        })
        .collect();
    let wrong: Vec<usize> = labels.iter().map(|&y| 1 - y).collect();
    let untouched = attack(
        &model,
        Method::DeepFool,
        &x,
        &wrong,
        10.0,
        &AttackConfig::default(),
    )
    .unwrap();
    assert_eq!(bits(&untouched), bits(&x));
    let exact = AttackConfig {
        deepfool: DeepFoolConfig {
            max_iter: 1,
            overshoot: 0.0,
        },
        ..AttackConfig::default()
    };
    let out = attack(&model, Method::DeepFool, &x, &labels, 10.0, &exact).unwrap();
    let over = attack(
        &model,
        Method::DeepFool,
        &x,
        &labels,
        10.0,
        &AttackConfig::default(),
    )
    .unwrap();
    for i in 0..5 {
        let a = &x.data()[i * 4..(i + 1) * 4];
        let z = logits_f64(&w, &b, a);
        let o = if z[0] >= z[1] { 0 } else { 1 };
        let k = 1 - o;
        // Closed form: r = -(f_k - f_o) / ||w_k - w_o||^2 (w_k - w_o).
        let dw: Vec<f64> = (0..4)
            .map(|j| (w[k * 4 + j] - w[o * 4 + j]) as f64)
            .collect();
        let w2: f64 = dw.iter().map(|v| v * v).sum();
        let f = z[k] - z[o];
        let got = &out.data()[i * 4..(i + 1) * 4];
        for j in 0..4 {
            let want = a[j] as f64 - f / w2 * dw[j];
            assert!((got[j] as f64 - want).abs() < 1e-6, "image {i}: {got:?}");
        }
        let after = logits_f64(&w, &b, got);
        assert!(
            (after[0] - after[1]).abs() < 1e-5,
            "image {i} is on the boundary: {after:?}"
        );
        // With the default overshoot (0.02) the class changes, at 1.02 times the distance.
        let pushed = &over.data()[i * 4..(i + 1) * 4];
        let z2 = logits_f64(&w, &b, pushed);
        assert!(z2[k] > z2[o], "image {i} crossed: {z2:?}");
        let dist: f64 = pushed
            .iter()
            .zip(a)
            .map(|(p, q)| ((p - q) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let minimal = f.abs() / w2.sqrt();
        assert!(
            (dist / minimal - 1.02).abs() < 1e-4,
            "image {i}: {dist} vs 1.02 x {minimal}"
        );
    }
    // A budget below the distance gives the clean image back.
    let tight = attack(&model, Method::DeepFool, &x, &labels, 1e-4, &exact).unwrap();
    assert_eq!(bits(&tight), bits(&x));
}

#[test]
fn carlini_wagner_finds_the_minimal_l2_perturbation_of_a_linear_classifier() {
    let model = binary();
    let (w, b) = (
        model.params[0].data().to_vec(),
        model.params[1].data().to_vec(),
    );
    let x = mid_inputs(4);
    // The true label is the prediction, so every image needs a real step.
    let labels: Vec<usize> = (0..4)
        .map(|i| {
            let z = logits_f64(&w, &b, &x.data()[i * 4..(i + 1) * 4]);
            usize::from(z[1] > z[0])
        })
        .collect();
    let out = attack(
        &model,
        Method::CwL2,
        &x,
        &labels,
        10.0,
        &AttackConfig::default(),
    )
    .unwrap();
    for (i, &y) in labels.iter().enumerate() {
        let a = &x.data()[i * 4..(i + 1) * 4];
        let z = logits_f64(&w, &b, a);
        let dw: Vec<f64> = (0..4)
            .map(|j| (w[(1 - y) * 4 + j] - w[y * 4 + j]) as f64)
            .collect();
        let minimal = (z[y] - z[1 - y]).abs() / dw.iter().map(|v| v * v).sum::<f64>().sqrt();
        let got = &out.data()[i * 4..(i + 1) * 4];
        let after = logits_f64(&w, &b, got);
        assert!(
            after[1 - y] >= after[y] - 1e-5,
            "image {i} is adversarial: {after:?}"
        );
        let dist: f64 = got
            .iter()
            .zip(a)
            .map(|(p, q)| ((p - q) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        // No adversarial point is closer than the hyperplane; CW gets within 2 % of it.
        assert!(
            dist >= minimal * (1.0 - 1e-4) && dist <= minimal * 1.02,
            "image {i}: distance {dist}, minimal {minimal}"
        );
    }
}

#[test]
fn least_likely_targets_the_smallest_logit() {
    // Three classes; the least likely class of each image is the one of smallest logit. Targeted
    // FGSM then moves against the gradient of that class's loss.
    let w = [
        0.8, -0.5, 0.3, 1.1, -0.4, 0.6, -0.9, 0.2, 0.1, 0.1, -0.7, 0.4,
    ];
    let b = [0.0, 0.1, -0.1];
    let model = linear(&w, &b);
    let x = mid_inputs(6);
    let targets = TargetClass::LeastLikely.resolve(&model, &x).unwrap();
    for i in 0..6 {
        let z = logits_f64(&w, &b, &x.data()[i * 4..(i + 1) * 4]);
        let least = (0..3)
            .min_by(|&p, &q| z[p].partial_cmp(&z[q]).unwrap())
            .unwrap();
        assert_eq!(targets[i], least, "image {i}: {z:?}");
    }
    let labels = vec![0; 6];
    let cfg = AttackConfig::default();
    let out = attack(&model, Method::FgsmTargeted, &x, &labels, 0.05, &cfg).unwrap();
    let g = saliency::adversarial::loss_gradient(&model, &x, &targets, cfg.loss).unwrap();
    let want = saliency::adversarial::sign_step(
        &x,
        &Tensor::from_fn(g.shape(), |i| -g.data()[i]),
        0.05,
        false,
    )
    .unwrap();
    assert_eq!(bits(&out), bits(&want));
}

#[test]
fn bad_settings_are_refused_naming_the_setting() {
    let model = binary();
    let x = mid_inputs(2);
    let y = vec![0, 1];
    let run = |method: Method, eps: f64, cfg: AttackConfig| {
        attack(&model, method, &x, &y, eps, &cfg)
            .unwrap_err()
            .to_string()
    };
    let msg = run(Method::Pgd, -0.1, AttackConfig::default());
    assert!(msg.contains("epsilon") && msg.contains("-0.1"), "{msg}");
    let negative_step = AttackConfig {
        pgd: PgdConfig {
            step_size: Some(-0.01),
            ..PgdConfig::default()
        },
        ..AttackConfig::default()
    };
    let msg = run(Method::Pgd, 0.1, negative_step);
    assert!(msg.contains("step-size") && msg.contains("-0.01"), "{msg}");
    let zero_steps = AttackConfig {
        pgd: PgdConfig {
            steps: 0,
            ..PgdConfig::default()
        },
        ..AttackConfig::default()
    };
    let msg = run(Method::Pgd, 0.1, zero_steps);
    assert!(
        msg.contains("pgd steps") && msg.contains("found 0"),
        "{msg}"
    );
    let far = AttackConfig {
        target: TargetClass::Class(2),
        ..AttackConfig::default()
    };
    let err = attack(&model, Method::PgdTargeted, &x, &y, 0.1, &far).unwrap_err();
    assert!(
        matches!(
            err,
            AdversarialError::TargetClass {
                class: 2,
                classes: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("target-class"), "{err}");
}

#[test]
fn pgd_is_at_least_as_strong_as_fgsm_at_every_eps_on_a_trained_deep() {
    let (train, test) = common::fashion();
    let train = train.take(8000);
    let test = test.take(200);
    let mut config = TrainConfig::study(ModelKind::Deep);
    // Two epochs on 8,000 images: about 65 % (tests/training.rs), enough for attacks to bite.
    config.epochs = 2;
    let classes: Vec<String> = train.class_names.clone();
    let mut t = Trainer::new(config, [1, 28, 28], classes).unwrap();
    t.run(&train, &test, None, &mut [], &mut |_| {}).unwrap();
    let epsilons = vec![0.0, 0.01, 0.03, 0.1];
    let sweeps = [
        Sweep::new(Method::Fgsm, epsilons.clone()),
        Sweep::new(Method::Pgd, epsilons.clone()),
    ];
    let cfg = AttackConfig {
        clip: true,
        pgd: PgdConfig {
            steps: 10,
            ..PgdConfig::default()
        },
        ..AttackConfig::default()
    };
    let points = attack_stats_detailed(&t.model, &test, &sweeps, &cfg, &mut |_, _| {}).unwrap();
    let (fgsm, pgd) = points.split_at(epsilons.len());
    assert!(
        fgsm[0].stats.accuracy_before > 0.5,
        "the model learned: {:?}",
        fgsm[0].stats
    );
    for (f, p) in fgsm.iter().zip(pgd) {
        assert!(
            p.stats.accuracy <= f.stats.accuracy,
            "eps {}: pgd leaves {} correct, fgsm {}",
            p.stats.epsilon,
            p.stats.accuracy,
            f.stats.accuracy
        );
        assert!(p.mean_linf <= p.stats.epsilon + 1e-6, "{p:?}");
    }
    assert_eq!(
        pgd[0].stats.accuracy, pgd[0].stats.accuracy_before,
        "eps 0 changes nothing"
    );
    assert!(
        pgd[3].stats.accuracy < fgsm[3].stats.accuracy,
        "at eps 0.1 PGD is strictly stronger"
    );
    // The plain statistics are the detailed rows' own.
    let plain = attack_stats(&t.model, &test, &sweeps, &cfg, &mut |_, _| {}).unwrap();
    assert_eq!(
        plain,
        points.iter().map(|p| p.stats.clone()).collect::<Vec<_>>()
    );
}
