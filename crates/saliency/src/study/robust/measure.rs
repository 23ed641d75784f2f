//! The comparison of one standard/robust pair: robust accuracy curves, attribution maps of the
//! same test images, feature preservation and the sanity check, each for both models.

use std::path::Path;

use tensor::Tensor;

use crate::adversarial::{
    attack_stats_detailed, loss_gradient, mean_edge_probe, model_edge_probe, robust_accuracy_plot,
    AttackConfig, Method, PgdConfig, RobustPoint, Sweep,
};
use crate::atomic_file::write_atomic;
use crate::attribution::{
    fresh_donor, grad_cam, gradient_x_input, guided_backprop, integrated_gradients,
    randomization_sanity_check, saliency_map, smoothgrad, AttributionError, Baseline,
    GradCamOptions, IgOptions, NoiseOptions, Score, Target,
};
use crate::data::{ImageSource, Prefix};
use crate::loss::LossKind;
use crate::models::Model;
use crate::render::save_png;

use super::super::common::first_images;
use super::super::training::{trained, TrainSummary};
use super::figures::{gradient_pictures, side_by_side};
use super::{GradientReadings, MapReadings, PairPlan, PairResults, SanityRow};

/// An attribution method as the section runs it: caption, file stem, the map of a batch.
type MapFn<'a> =
    Box<dyn Fn(&Model<f32>, &Tensor<f32>) -> Result<Tensor<f32>, AttributionError> + 'a>;

/// The methods drawn side by side, each explaining the model's own prediction: the gradient the
/// perceptually-aligned-gradients finding is about, the study's gradient x input and integrated
/// gradients, and three others with their own way of using the gradient.
fn methods(plan: &PairPlan, seed: u64) -> Vec<(&'static str, &'static str, MapFn<'static>)> {
    let pred = |m: &Model<f32>, x: &Tensor<f32>| Target::Pred.resolve(m, x, None);
    let ig_steps = plan.ig_steps;
    let samples = plan.smoothgrad_samples;
    vec![
        (
            "gradient |ds/da| (s: the predicted class's probability)",
            "gradient",
            Box::new(move |m, x| saliency_map(m, x, &pred(m, x)?, Score::Probability)),
        ),
        (
            "gradient x input |ds/da| * a",
            "gxi",
            Box::new(move |m, x| gradient_x_input(m, x, &pred(m, x)?)),
        ),
        (
            "integrated gradients (black baseline)",
            "integrated_gradients",
            Box::new(move |m, x| {
                let options = IgOptions {
                    steps: ig_steps,
                    ..IgOptions::default()
                };
                Ok(
                    integrated_gradients(m, x, &pred(m, x)?, &Baseline::Black, &options)?
                        .attributions,
                )
            }),
        ),
        (
            "SmoothGrad (sigma 0.15)",
            "smoothgrad",
            Box::new(move |m, x| {
                let options = NoiseOptions {
                    samples,
                    seed,
                    ..NoiseOptions::default()
                };
                smoothgrad(m, x, &pred(m, x)?, &options)
            }),
        ),
        (
            "guided backprop",
            "guided_backprop",
            Box::new(move |m, x| guided_backprop(m, x, &pred(m, x)?)),
        ),
        (
            "Grad-CAM (last conv layer, ReLU'd)",
            "grad_cam",
            Box::new(move |m, x| {
                let options = GradCamOptions {
                    relu: true,
                    ..GradCamOptions::default()
                };
                grad_cam(m, x, &pred(m, x)?, &options)
            }),
        ),
    ]
}

/// A one-channel map repeated over the image's `channels`, so the edge readings (which sum |g|
/// over channels) read it as they read a full-size map: Pearson does not see the factor.
fn to_channels(map: Tensor<f32>, channels: usize) -> anyhow::Result<Tensor<f32>> {
    let s = map.shape().to_vec();
    if s[1] == channels {
        return Ok(map);
    }
    let plane = s[2] * s[3];
    let mut data = Vec::with_capacity(map.numel() * channels);
    for image in map.data().chunks_exact(plane) {
        for _ in 0..channels {
            data.extend_from_slice(image);
        }
    }
    Ok(Tensor::from_vec(&[s[0], channels, s[2], s[3]], data)?)
}

/// Robust accuracy (PGD and FGSM, both clipped to [0, 1]) of `model` per eps of `plan` on `data`.
fn curve(
    model: &Model<f32>,
    data: &dyn ImageSource,
    plan: &PairPlan,
    config: &AttackConfig,
) -> anyhow::Result<Vec<RobustPoint>> {
    let sweeps = [
        Sweep::new(Method::Pgd, plan.epsilons.clone()),
        Sweep::new(Method::Fgsm, plan.epsilons.clone()),
    ];
    Ok(attack_stats_detailed(
        model,
        data,
        &sweeps,
        config,
        &mut |done, total| {
            crate::study::progress::work(done as u64, total as u64, "images attacked")
        },
    )?)
}

/// Compares the study's `standard` model with its `robust` twin on `test`: writes the curves
/// (`robust_NAME/robust_accuracy.json` and `.svg`) and the figures (`figures/robust_NAME_*.png`)
/// under `out` and returns every number the report shows. `loss` is the loss both were trained
/// with, whose gradient the attacks and the feature-preservation readings use.
#[allow(clippy::too_many_arguments)]
pub fn compare(
    out: &Path,
    name: &str,
    data_name: &str,
    plan: &PairPlan,
    seed: u64,
    standard: &TrainSummary,
    robust: &TrainSummary,
    test: &dyn ImageSource,
    loss: LossKind,
) -> anyhow::Result<PairResults> {
    let standard_model = trained(out, standard)?;
    let robust_model = trained(out, robust)?;
    let untrained: Model<f32> =
        standard
            .model
            .build(standard_model.input, standard_model.classes, seed)?;
    let config = AttackConfig {
        loss,
        seed,
        clip: true,
        pgd: PgdConfig {
            steps: plan.eval_steps,
            step_size: None,
            random_start: true,
            restarts: 1,
        },
        ..AttackConfig::default()
    };

    // Robust accuracy curves of both models on the same images.
    let eval = Prefix::new(test, plan.eval_images);
    let standard_curve = curve(&standard_model, &eval, plan, &config)?;
    let robust_curve = curve(&robust_model, &eval, plan, &config)?;
    let dir = format!("robust_{name}");
    std::fs::create_dir_all(out.join(&dir))?;
    let curves_json = format!("{dir}/robust_accuracy.json");
    write_atomic(
        &out.join(&curves_json),
        serde_json::to_string_pretty(&serde_json::json!({
            "dataset": eval.name(),
            "config": config,
            "standard": { "model": standard.checkpoint, "robust_accuracy": standard_curve },
            "robust": { "model": robust.checkpoint, "robust_accuracy": robust_curve },
        }))?
        .as_bytes(),
    )?;
    // One line per model and attack: the plot groups points by their method's name.
    let named: Vec<RobustPoint> = [("standard", &standard_curve), ("robust", &robust_curve)]
        .into_iter()
        .flat_map(|(who, points)| {
            points.iter().map(move |p| {
                let mut p = p.clone();
                let attack = if p.stats.method == Method::Pgd.name() {
                    format!("pgd-{}", plan.eval_steps)
                } else {
                    p.stats.method.clone()
                };
                p.stats.method = format!("{who} {attack}");
                p
            })
        })
        .collect();
    let plot = format!("{dir}/robust_accuracy.svg");
    write_atomic(
        &out.join(&plot),
        robust_accuracy_plot(
            &named,
            &format!(
                "{} on {data_name}: standard and robust (PGD-{} training at eps {:.3})",
                standard.model, plan.train_steps, plan.epsilon
            ),
        )
        .as_bytes(),
    )?;

    // Attribution maps of the same test images, standard above robust.
    let (x, y) = first_images(test, plan.map_images)?;
    let channels = standard_model.input[0];
    let mut figures = Vec::new();
    let mut maps = Vec::new();
    for (caption, stem, method) in methods(plan, seed) {
        let s = method(&standard_model, &x)?;
        let r = method(&robust_model, &x)?;
        let rel = format!("figures/robust_{name}_{stem}.png");
        let image = side_by_side(
            &standard_model,
            &robust_model,
            &x,
            &y,
            &s,
            &r,
            test.class_names(),
            &format!(
                "{caption}: standard (top) and robust (bottom) {}",
                standard.model
            ),
        )?;
        save_png(&out.join(&rel), &image)?;
        figures.push((
            format!("{caption}, the first {} test images: the standard {} (top row) and its robust twin (bottom row); each map max-normalized", y.len(), standard.model),
            rel,
        ));
        maps.push(MapReadings {
            method: caption.to_string(),
            standard: mean_edge_probe(&x, &to_channels(s, channels)?)?,
            robust: mean_edge_probe(&x, &to_channels(r, channels)?)?,
        });
    }
    let shown = |m: &Model<f32>| loss_gradient(m, &x, &y, loss);
    let rel = format!("figures/robust_{name}_loss_gradient.png");
    let image = gradient_pictures(
        x.data(),
        &[
            ("standard", shown(&standard_model)?.data()),
            ("robust", shown(&robust_model)?.data()),
        ],
        &y.iter()
            .map(|&l| test.class_names()[l].clone())
            .collect::<Vec<_>>(),
        standard_model.input,
        "minus the loss gradient -dJ/da, 0.5 - 0.5 g / max|g| (mid gray 0): standard and robust",
    );
    save_png(&out.join(&rel), &image)?;
    figures.push((
        "the loss gradient itself, as a picture: -dJ/da for the true class, scaled per image so that 0 is mid gray and the largest |g| is black or white (brighter: raising the pixel lowers the loss), for the standard model and its robust twin".into(),
        rel,
    ));

    // Feature preservation: the study's measure on more images, with the untrained reference.
    // The probe's images are held as one batch: at most `probe_images` (the whole split in the
    // paper and quick profiles, 735 photos of the full flowers, 578 MB as floats).
    let (px, py) = first_images(test, plan.probe_images)?;
    let gradient = GradientReadings {
        standard: model_edge_probe(&standard_model, &px, &py, &config)?,
        robust: model_edge_probe(&robust_model, &px, &py, &config)?,
        untrained: model_edge_probe(&untrained, &px, &py, &config)?,
    };

    // The randomization sanity check of the gradient map, for both models.
    let check = |m: &Model<f32>| -> anyhow::Result<Vec<(String, f64)>> {
        let donor = fresh_donor(m, seed ^ 0xD0D0)?;
        Ok(randomization_sanity_check(m, &donor, &x, |mm, inputs| {
            saliency_map(
                mm,
                inputs,
                &Target::Pred.resolve(mm, inputs, None)?,
                Score::Probability,
            )
        })?
        .into_iter()
        .map(|s| (s.layer, s.spearman))
        .collect())
    };
    let sanity = check(&standard_model)?
        .into_iter()
        .zip(check(&robust_model)?)
        .map(|((layer, standard), (_, robust))| SanityRow {
            layer,
            standard,
            robust,
        })
        .collect();

    Ok(PairResults {
        data: data_name.into(),
        plan: plan.clone(),
        standard: standard.clone(),
        robust: robust.clone(),
        standard_curve,
        robust_curve,
        plot,
        curves_json,
        figures,
        gradient,
        maps,
        sanity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_channel_map_is_repeated_over_the_channels_and_a_full_map_kept() {
        let map = Tensor::from_vec(&[2, 1, 1, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let rgb = to_channels(map.clone(), 3).unwrap();
        assert_eq!(rgb.shape(), &[2, 3, 1, 2]);
        assert_eq!(
            rgb.data(),
            &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 3.0, 4.0]
        );
        assert_eq!(to_channels(map.clone(), 1).unwrap().data(), map.data());
    }
}
