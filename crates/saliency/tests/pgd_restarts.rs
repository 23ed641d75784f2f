//! PGD restarts (`adversary --restarts N`): best of N seeded random starts per image. On a
//! trained `deep`, every image one run fools stays fooled with more restarts (its example kept bit
//! for bit), the result does not depend on the thread count, and bad settings are named.

mod common;

use saliency::adversarial::{attack, predict, AttackConfig, Method, PgdConfig, TargetClass};
use saliency::models::{Model, ModelKind};
use saliency::train::{TrainConfig, Trainer};
use tensor::Tensor;

fn trained_deep() -> (Model<f32>, Tensor<f32>, Vec<usize>) {
    let (train, test) = common::fashion();
    let (train, test) = (train.take(8000), test.take(200));
    let mut config = TrainConfig::study(ModelKind::Deep);
    // As tests/strong_attacks.rs: about 65 % after two epochs, enough for attacks to bite.
    config.epochs = 2;
    let mut t = Trainer::new(config, [1, 28, 28], train.class_names.clone()).unwrap();
    t.run(&train, &test, None, &mut [], &mut |_| {}).unwrap();
    let x = Tensor::from_vec(&[test.len(), 1, 28, 28], test.images.clone()).unwrap();
    let y = test.labels.iter().map(|&l| l as usize).collect();
    (t.model, x, y)
}

/// A weak PGD (2 small steps), so that the start matters, with `restarts` runs.
fn config(restarts: usize) -> AttackConfig {
    AttackConfig {
        seed: 7,
        pgd: PgdConfig {
            steps: 2,
            step_size: None,
            random_start: true,
            restarts,
        },
        ..AttackConfig::default()
    }
}

#[test]
fn restarts_never_lower_the_attacks_success_and_keep_the_first_runs_successes() {
    let (model, x, y) = trained_deep();
    let per = 784;
    let mut gained = 0;
    for (method, target) in [
        (Method::Pgd, TargetClass::default()),
        (Method::PgdTargeted, TargetClass::LeastLikely),
    ] {
        // Success: misclassified (untargeted), classified as the target (targeted).
        let aims = match method {
            Method::PgdTargeted => target.resolve(&model, &x).unwrap(),
            _ => y.clone(),
        };
        for eps in [0.01, 0.03, 0.1] {
            let run = |restarts: usize| {
                let cfg = AttackConfig {
                    target,
                    ..config(restarts)
                };
                attack(&model, method, &x, &y, eps, &cfg).unwrap()
            };
            let (one, five) = (run(1), run(5));
            let fooled = |adv: &Tensor<f32>| -> Vec<bool> {
                predict(&model, adv, 64)
                    .unwrap()
                    .iter()
                    .zip(&aims)
                    .map(|(p, &aim)| (p.class == aim) == (method == Method::PgdTargeted))
                    .collect()
            };
            let (f1, f5) = (fooled(&one), fooled(&five));
            for i in 0..y.len() {
                assert!(
                    !f1[i] || f5[i],
                    "{method:?} eps {eps}: image {i} fooled by one run, not by five"
                );
                if f1[i] {
                    assert_eq!(
                        &one.data()[i * per..(i + 1) * per],
                        &five.data()[i * per..(i + 1) * per],
                        "image {i}: the first run's success is kept as it is"
                    );
                }
            }
            let (n1, n5) = (
                f1.iter().filter(|&&f| f).count(),
                f5.iter().filter(|&&f| f).count(),
            );
            eprintln!("{method:?} eps {eps}: fooled {n1} with one run, {n5} with five");
            assert!(n5 >= n1);
            gained += n5 - n1;
            // Every image stays in the ball and the valid range.
            for (a, b) in five.data().iter().zip(x.data()) {
                assert!((a - b).abs() <= eps as f32 + 1e-6 && (0.0..=1.0).contains(a));
            }
        }
    }
    assert!(gained > 0, "restarts fooled no image one run missed");
    // One restart is the single run; five are the same on any thread count.
    let single = AttackConfig {
        pgd: PgdConfig {
            restarts: 1,
            ..config(1).pgd
        },
        ..config(1)
    };
    let default_run = attack(&model, Method::Pgd, &x, &y, 0.03, &single).unwrap();
    let in_pool = |threads| {
        tensor::testing::in_pool(threads, || {
            attack(&model, Method::Pgd, &x, &y, 0.03, &config(5)).unwrap()
        })
    };
    assert_eq!(in_pool(1).data(), in_pool(2).data());
    let mut old_style = config(1);
    old_style.pgd = PgdConfig {
        steps: 2,
        ..PgdConfig::default()
    };
    assert_eq!(
        default_run.data(),
        attack(&model, Method::Pgd, &x, &y, 0.03, &old_style)
            .unwrap()
            .data(),
        "the default is one run"
    );
}

#[test]
fn bad_restarts_are_refused_naming_the_setting() {
    let model: Model<f32> = ModelKind::Deep.build([1, 28, 28], 10, 0).unwrap();
    let x = Tensor::from_fn(&[1, 1, 28, 28], |i| (i % 7) as f32 / 7.0);
    let msg = |pgd: PgdConfig| {
        let cfg = AttackConfig {
            pgd,
            ..AttackConfig::default()
        };
        attack(&model, Method::Pgd, &x, &[3], 0.1, &cfg)
            .unwrap_err()
            .to_string()
    };
    let zero = msg(PgdConfig {
        restarts: 0,
        ..PgdConfig::default()
    });
    assert!(zero.contains("restarts") && zero.contains('0'), "{zero}");
    let fixed = msg(PgdConfig {
        restarts: 3,
        random_start: false,
        ..PgdConfig::default()
    });
    assert!(
        fixed.contains("restarts") && fixed.contains("random start") && fixed.contains('3'),
        "{fixed}"
    );
}
