//! The library's method dispatch: names, options reaching each method, refusals naming the
//! option, and the evaluation of one method by every metric.

use tensor::Tensor;

use super::method::run;
use super::*;
use crate::models::ModelKind;

fn deep() -> Model<f32> {
    ModelKind::Deep.build::<f32>([1, 28, 28], 10, 3).unwrap()
}

fn images(n: usize) -> Tensor<f32> {
    Tensor::from_fn(&[n, 1, 28, 28], |i| ((i * 37 + 11) % 101) as f32 / 100.0)
}

#[test]
fn every_method_has_one_name_that_parses_back() {
    let mut names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
    for m in Method::ALL {
        assert_eq!(m.name().parse::<Method>().unwrap(), m);
        assert_eq!(m.to_string(), m.name());
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Method::ALL.len());
    let e = "lrp".parse::<Method>().unwrap_err().to_string();
    assert!(
        e.contains("method") && e.contains("'lrp'") && e.contains("lrp-epsilon"),
        "{e}"
    );
}

/// The CLI's `--method` values are the library's names (clap derives them from the variants).
#[cfg(feature = "cli")]
#[test]
fn the_cli_spells_every_method_as_the_library_does() {
    use clap::ValueEnum;
    assert_eq!(Method::value_variants(), Method::ALL);
    for m in Method::ALL {
        assert_eq!(m.to_possible_value().unwrap().get_name(), m.name());
    }
}

/// `run` passes each option to its method: the maps equal a direct call with the same settings.
#[test]
fn run_gives_the_direct_calls_maps() {
    let model = deep();
    let x = images(2);
    let classes = [1, 7];
    let options = MethodOptions {
        samples: Some(3),
        sigma: Some(0.2),
        seed: 9,
        gamma: Some(0.5),
        epsilon: Some(1e-6),
        layer: Some("conv3".into()),
        batch: Some(2),
        ..MethodOptions::default()
    };
    let got = |m: Method| run(m, &options, &model, &x, &classes).unwrap().maps;
    let noise = NoiseOptions {
        samples: 3,
        sigma: 0.2,
        seed: 9,
        score: Score::Logit,
        batch: Some(2),
    };
    assert_eq!(
        got(Method::Smoothgrad).data(),
        smoothgrad(&model, &x, &classes, &noise).unwrap().data()
    );
    assert_eq!(
        got(Method::Vargrad).data(),
        vargrad(&model, &x, &classes, &noise).unwrap().data()
    );
    let rule = LrpRule::Gamma {
        gamma: 0.5,
        epsilon: 1e-6,
    };
    assert_eq!(
        got(Method::LrpGamma).data(),
        lrp(&model, &x, &classes, rule).unwrap().data()
    );
    let cam = GradCamOptions {
        layer: Some("conv3".into()),
        relu: false,
        score: Score::Logit,
    };
    assert_eq!(
        got(Method::GradCam).data(),
        grad_cam(&model, &x, &classes, &cam).unwrap().data()
    );
    // The study's gradient x input explains the probability; the signed form follows --score.
    assert_eq!(
        got(Method::GradientXInput).data(),
        gradient_x_input(&model, &x, &classes).unwrap().data()
    );
    let ig = run(
        Method::IntegratedGradients,
        &MethodOptions {
            steps: 8,
            ..MethodOptions::default()
        },
        &model,
        &x,
        &classes,
    )
    .unwrap();
    let direct = integrated_gradients(
        &model,
        &x,
        &classes,
        &Baseline::Black,
        &IgOptions {
            steps: 8,
            score: Score::Probability,
            ..IgOptions::default()
        },
    )
    .unwrap();
    assert_eq!(ig.maps.data(), direct.attributions.data());
    let c = ig
        .completeness
        .expect("integrated gradients report completeness");
    assert_eq!(c.error, direct.completeness_error);
    assert_eq!(c.delta, direct.delta);
    assert!(run(Method::SaliencyMap, &options, &model, &x, &classes)
        .unwrap()
        .completeness
        .is_none());
}

#[test]
fn options_a_method_cannot_use_are_refused_by_name() {
    let model = deep();
    let x = images(1);
    let probability = MethodOptions {
        score: Some(Score::Probability),
        ..MethodOptions::default()
    };
    let e = run(Method::LrpEpsilon, &probability, &model, &x, &[0])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("score") && e.contains("probability") && e.contains("lrp-epsilon"),
        "{e}"
    );
    let gray = MethodOptions {
        baseline: Baseline::Gray,
        ..MethodOptions::default()
    };
    let e = run(Method::GradientShap, &gray, &model, &x, &[0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("baseline") && e.contains("gray"), "{e}");
    let layer = MethodOptions {
        layer: Some("fc1".into()),
        ..MethodOptions::default()
    };
    let e = run(Method::GradCam, &layer, &model, &x, &[0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("fc1"), "{e}");
}

/// Every metric of one evaluation is finite; completeness is there exactly where it is defined,
/// and DeepLIFT's adds up; the sanity cascade has a step per re-drawn layer.
#[test]
fn an_evaluation_holds_every_metric() {
    let model = deep();
    let x = images(2);
    let classes = Target::Pred.resolve(&model, &x, None).unwrap();
    let metrics = EvaluationOptions {
        curves: CurveOptions {
            steps: 4,
            replacement: Replacement::Mean,
        },
        infidelity: InfidelityOptions {
            samples: 2,
            ..InfidelityOptions::default()
        },
        sensitivity: SensitivityOptions {
            samples: 2,
            ..SensitivityOptions::default()
        },
    };
    let donor = fresh_donor(&model, 5).unwrap();
    let options = MethodOptions::default();
    for method in [Method::Deeplift, Method::GuidedBackprop] {
        let e = evaluate_method(
            method,
            &options,
            &model,
            &x,
            &classes,
            &metrics,
            Some(&donor),
        )
        .unwrap();
        assert_eq!(e.maps.shape(), x.shape());
        for v in [
            &e.curves.deletion_area,
            &e.curves.insertion_area,
            &e.infidelity,
            &e.max_sensitivity,
        ] {
            assert_eq!(v.len(), 2);
            assert!(
                v.iter().all(|v| v.is_finite() && *v >= 0.0),
                "{method}: {v:?}"
            );
        }
        assert_eq!(e.curves.deletion[0].len(), 5);
        let sanity = e.sanity.unwrap();
        // "none" (the method against itself: 1), then each of deep's 12 layers.
        assert_eq!(sanity.len(), 13);
        assert_eq!(sanity[0].spearman, 1.0);
        assert_eq!(e.completeness.is_some(), method == Method::Deeplift);
    }
    // Shapley sampling's patches (5 pixels here, cut short at the edge of 28) each add up once.
    let shapley = MethodOptions {
        patch: Some(5),
        samples: Some(2),
        ..MethodOptions::default()
    };
    let e = evaluate_method(
        Method::ShapleySampling,
        &shapley,
        &model,
        &x,
        &classes,
        &metrics,
        None,
    )
    .unwrap();
    let c = e.completeness.unwrap();
    assert!(c.mean_relative_error < 1e-4, "{c:?}");
    let e = evaluate_method(
        Method::Deeplift,
        &options,
        &model,
        &x,
        &classes,
        &metrics,
        None,
    )
    .unwrap();
    let c = e.completeness.unwrap();
    assert_eq!(c.score, Score::Logit);
    assert!(c.mean_relative_error < 1e-3, "{c:?}");
    assert!(e.sanity.is_none());
}
