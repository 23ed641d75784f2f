//! The Fashion-MNIST half of the study: training, attribution before/after, adversarial examples.

use std::path::Path;

use tensor::Tensor;

use crate::adversarial::{
    adversarial_figure, attack_stats, classify_sign_image, compare_trained_untrained,
    flip_rate_plot, gradient_display, loss_gradient, model_edge_probe, output_change,
    write_summary, AttackConfig, AttackStats, EdgeProbeMeans, GradientMovie, Method, OutputChange,
    Summary, Sweep,
};
use crate::atomic_file::write_atomic;
use crate::attribution::{
    fresh_donor, gradient_x_input, integrated_gradients, occlusion, occlusion_x_gradient,
    randomization_sanity_check, AttributionMovie, Baseline, IgOptions, MovieOptions,
    OcclusionOptions, Target, TrainingIntegratedGradients, TIG_FILE,
};
use crate::checkpoint;
use crate::data::{Dataset, ImageSource, Prefix};
use crate::loss::LossKind;
use crate::models::{Model, ModelKind};
use crate::render::save_png;
use crate::train::TrainConfig;

use super::common::{first_images, median, save_grid};
use super::figures::gradient_image_figure;
use super::plan::Plan;
use super::training::{train_model, trained, TrainSummary};

/// The gradient-over-training movie of the Fashion-MNIST `deep`, relative to the study folder.
pub const GRADIENT_MOVIE: &str = "figures/fashion_gradient_movie.gif";

/// Trains `deep` with the attribution movie of the first 16 test images, the gradient movie of
/// the first 6 and the training-integrated gradients attached.
pub fn train_deep(
    out: &Path,
    plan: &Plan,
    seed: u64,
    train: &Dataset,
    test: &Dataset,
) -> anyhow::Result<(TrainSummary, usize)> {
    let mut cfg = TrainConfig::study(ModelKind::Deep);
    cfg.epochs = plan.deep_epochs;
    cfg.seed = seed;
    let train = train.take(plan.deep_train);
    std::fs::create_dir_all(out.join("figures"))?;
    let mut movie = AttributionMovie::from_dataset(
        &out.join("figures/fashion_deep_movie.gif"),
        test,
        MovieOptions {
            every: plan.movie_every,
            ..MovieOptions::default()
        },
    )?;
    let (inputs, labels) = first_images(test, 16)?;
    let mut tig = TrainingIntegratedGradients::new(
        inputs,
        labels,
        LossKind::CrossEntropy,
        Some(out.join("models/fashion-deep")),
    )?;
    // The loss gradient itself over training, drawn as the study draws its gradient images.
    let mut gradient_movie = GradientMovie::new(
        &out.join(GRADIENT_MOVIE),
        test,
        plan.movie_every,
        LossKind::CrossEntropy,
    )?;
    let summary = train_model(
        out,
        "fashion-deep",
        cfg,
        &train,
        test,
        &mut [&mut movie, &mut tig, &mut gradient_movie],
    )?;
    Ok((summary, movie.frames()))
}

/// Trains `alexnet` with the study's SGD, decay and L2.
pub fn train_alexnet(
    out: &Path,
    plan: &Plan,
    seed: u64,
    train: &Dataset,
    test: &Dataset,
) -> anyhow::Result<TrainSummary> {
    let mut cfg = TrainConfig::study(ModelKind::Alexnet);
    cfg.epochs = plan.alexnet_epochs;
    cfg.seed = seed;
    train_model(
        out,
        "fashion-alexnet",
        cfg,
        &train.take(plan.alexnet_train),
        test,
        &mut [],
    )
}

/// What the attribution section reports.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AttributionResults {
    /// (caption, relative path) of every picture, in report order.
    pub figures: Vec<(String, String)>,
    /// Integrated gradients on the trained model: per image |sum(IG) - (F(a) - F(0))| / |F(a) - F(0)|.
    pub ig_relative_errors: Vec<f64>,
    /// Integrated-gradients steps used.
    pub ig_steps: usize,
    /// Sanity check: (layers randomized down to, Spearman rank correlation with the trained map).
    pub sanity: Vec<(String, f64)>,
    /// Model states summed by the training-integrated gradients.
    pub tig_states: u64,
}

/// Gradient x input, occlusion, their mean and integrated gradients of the first 16 test images,
/// untrained and trained; the randomization sanity check; the training-integrated gradients.
pub fn attribution(
    out: &Path,
    plan: &Plan,
    seed: u64,
    deep: &TrainSummary,
    test: &Dataset,
) -> anyhow::Result<AttributionResults> {
    let trained_model = trained(out, deep)?;
    let untrained: Model<f32> =
        ModelKind::Deep.build(trained_model.input, trained_model.classes, seed)?;
    let (x, y) = first_images(test, 16)?;
    let names = &test.class_names;
    let occ = OcclusionOptions::for_input(trained_model.input);
    let mut figures = Vec::new();
    for (state, model) in [("untrained", &untrained), ("trained", &trained_model)] {
        let pred = Target::Pred.resolve(model, &x, None)?;
        let maps = [
            (
                "gradient x input |ds/da| * a",
                "gxi",
                gradient_x_input(model, &x, &pred)?,
            ),
            (
                "occlusion (patch 4, stride 4)",
                "occlusion",
                occlusion(model, &x, &occ)?,
            ),
            (
                "occlusion x gradient (mean of the two max-normalized maps)",
                "occlusion_x_gradient",
                occlusion_x_gradient(model, &x, &occ)?,
            ),
            (
                "integrated gradients (black baseline)",
                "integrated_gradients",
                integrated_gradients(
                    model,
                    &x,
                    &pred,
                    &Baseline::Black,
                    &IgOptions {
                        steps: plan.ig_steps,
                        ..IgOptions::default()
                    },
                )?
                .attributions,
            ),
        ];
        for (title, file, m) in maps {
            let caption = format!("{title}, {state} deep");
            let rel = save_grid(
                out,
                &format!("figures/fashion_{file}_{state}.png"),
                model,
                &x,
                &y,
                &m,
                names,
                4,
                &caption,
            )?;
            figures.push((format!("{caption}; each map max-normalized"), rel));
        }
    }
    let pred = Target::Pred.resolve(&trained_model, &x, None)?;
    let ig = integrated_gradients(
        &trained_model,
        &x,
        &pred,
        &Baseline::Black,
        &IgOptions {
            steps: plan.ig_steps,
            ..IgOptions::default()
        },
    )?;
    let ig_relative_errors = ig
        .completeness_error
        .iter()
        .zip(&ig.delta)
        .map(|(e, d)| (e.abs() / d.abs().max(1e-12)) as f64)
        .collect();
    let donor = fresh_donor(&trained_model, seed ^ 0xD0D0)?;
    let sanity = randomization_sanity_check(&trained_model, &donor, &x, |m, inputs| {
        let p = Target::Pred.resolve(m, inputs, None)?;
        gradient_x_input(m, inputs, &p)
    })?
    .into_iter()
    .map(|s| (s.layer, s.spearman))
    .collect();
    let tig = checkpoint::load(&out.join("models/fashion-deep").join(TIG_FILE))?;
    let g = tig
        .get("gradients")
        .ok_or_else(|| anyhow::anyhow!("{TIG_FILE} holds no 'gradients'"))?;
    let states: u64 = tig
        .metadata
        .get("states")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let grads = Tensor::from_vec(&g.shape, g.data.iter().map(|v| v.abs()).collect())?;
    let rel = save_grid(
        out,
        "figures/fashion_training_integrated_gradients.png",
        &trained_model,
        &x,
        &y,
        &grads,
        names,
        4,
        "|sum over training of dJ/da| (training-integrated gradients)",
    )?;
    figures.push((
        "training-integrated gradients: |sum over every model state of dJ/da|, max-normalized"
            .into(),
        rel,
    ));
    Ok(AttributionResults {
        figures,
        ig_relative_errors,
        ig_steps: plan.ig_steps,
        sanity,
        tig_states: states,
    })
}

/// What the adversarial section reports.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AdversarialResults {
    /// Every (method, eps) row.
    pub stats: Vec<AttackStats>,
    /// (caption, relative path) of the pictures.
    pub figures: Vec<(String, String)>,
    /// Relative path of the flip-rate plot.
    pub plot: String,
    /// Relative path of summary.json.
    pub summary: String,
    /// The sign image eps * sign(g) classified alone: (true class, predicted class, confidence).
    pub sign_image: Vec<(String, String, f32)>,
    /// Mean Pearson correlation of |g| with the Sobel edge map: (trained, untrained).
    pub edge_correlation: (f64, f64),
    /// The sign attack at eps 0.01 on the trained and the untrained network: (trained, untrained).
    #[serde(default)]
    pub output_change: Option<(OutputChange, OutputChange)>,
    /// Every reading of the edge agreement on the same images: (trained, untrained).
    #[serde(default)]
    pub edge_probe: Option<(EdgeProbeMeans, EdgeProbeMeans)>,
}

/// All attacks and controls with an eps sweep over the test images, triptychs, the sign image,
/// and feature preservation trained vs untrained.
/// `limit` caps the attacked test images; `full_sweep` adds the iterated and L2 attacks and more eps;
/// `loss` is the loss `deep` was trained with, whose gradient the attacks follow.
///
/// The flip statistics stream over the first `limit` images of `test` a chunk at a time; only the
/// pictures' 6 images and the feature-preservation readings' first 200 are held as a batch.
pub fn adversarial(
    out: &Path,
    plan: &Plan,
    seed: u64,
    deep: &TrainSummary,
    test: &dyn ImageSource,
    name: &str,
    limit: usize,
    full_sweep: bool,
    loss: LossKind,
) -> anyhow::Result<AdversarialResults> {
    let model = trained(out, deep)?;
    let untrained: Model<f32> = deep.model.build(model.input, model.classes, seed)?;
    let data = Prefix::new(test, limit);
    // The gradient of the loss the model was trained with.
    let config = AttackConfig {
        steps: plan.iterative_steps,
        seed,
        loss,
        ..AttackConfig::default()
    };
    let sign_eps = vec![0.001, 0.01, 0.05, 0.1];
    let mut sweeps = vec![
        Sweep::new(Method::Fgsm, sign_eps.clone()),
        Sweep::new(Method::RandomSign, sign_eps.clone()),
        Sweep::new(Method::IterativeFgsm, vec![0.01, 0.1]),
        Sweep::new(Method::NormalizedGradient, vec![0.05, 0.15, 0.3]),
        Sweep::new(Method::RandomDirection, vec![0.05, 0.15, 0.3]),
        Sweep::new(Method::L2Gradient, vec![0.5, 1.0, 2.0]),
        // The study's non-negative noise at its own 0.1 and at the sign attack's 0.01.
        Sweep::new(Method::Random, vec![0.01, 0.1]),
    ];
    if !full_sweep {
        // Large images: the sign attack, the normalized gradient and their controls only.
        sweeps.retain(|s| {
            matches!(
                s.method,
                Method::Fgsm | Method::RandomSign | Method::NormalizedGradient | Method::Random
            )
        });
    }
    let stats = attack_stats(&model, &data, &sweeps, &config, &mut |done, total| {
        super::progress::work(done as u64, total as u64, "images attacked")
    })?;
    let dir = out.join(format!("{name}_adversarial"));
    write_summary(
        &dir,
        &Summary {
            dataset: data.name().to_string(),
            model: deep.checkpoint.clone(),
            config: config.clone(),
            results: stats.clone(),
        },
    )?;
    let plot = format!("{name}_adversarial/flip_rate.svg");
    write_atomic(
        &out.join(&plot),
        flip_rate_plot(&stats, &format!("{} on {}", deep.model, data.name())).as_bytes(),
    )?;
    let (x, y) = first_images(test, 6)?;
    let mut figures = Vec::new();
    for (m, eps) in [
        (Method::Fgsm, 0.01),
        (Method::Fgsm, 0.1),
        (Method::IterativeFgsm, 0.2),
        (Method::NormalizedGradient, 0.15),
        (Method::Random, 0.1),
    ] {
        if !full_sweep && m == Method::IterativeFgsm {
            continue;
        }
        let fig = adversarial_figure(&model, m, &x, &y, eps, &config, test.class_names())?;
        let rel = format!("figures/{name}_triptych_{}_{eps}.png", m.name());
        save_png(&out.join(&rel), &fig)?;
        let how = if m == Method::IterativeFgsm {
            format!(", {} steps of eps/{}", config.steps, config.steps)
        } else {
            String::new()
        };
        figures.push((format!("{} at eps {eps}{how}: input | perturbation (brightened, factor in the picture) | perturbed input", m.name()), rel));
    }
    let signs = classify_sign_image(&model, &x, &y, 0.01, &config)?;
    let sign_image = signs
        .iter()
        .zip(&y)
        .map(|(p, &l)| {
            (
                test.class_names()[l].clone(),
                test.class_names()[p.class].clone(),
                p.confidence,
            )
        })
        .collect();
    let fp_n = data.count().min(200);
    let (fx, fy) = first_images(&data, fp_n)?;
    let fp = compare_trained_untrained(&model, &untrained, &fx, &fy, &config)?;
    let shown = |m: &Model<f32>| -> anyhow::Result<Tensor<f32>> {
        Ok(gradient_display(&loss_gradient(m, &x, &y, config.loss)?))
    };
    let labels: Vec<String> = y.iter().map(|&l| test.class_names()[l].clone()).collect();
    let fig = gradient_image_figure(
        x.data(),
        shown(&model)?.data(),
        shown(&untrained)?.data(),
        &labels,
        model.input,
        "loss gradient dJ/da shown as clip(10 g / max g, 0, 1), trained and untrained",
    );
    let rel = format!("figures/{name}_gradient_images.png");
    save_png(&out.join(&rel), &fig)?;
    figures.push((
        "feature preservation as the study draws it: the loss gradient w.r.t. the input itself, clip(10 g / max(g), 0, 1) (negative parts black, a tenth of the maximum saturates), for the trained model and the same architecture untrained".into(),
        rel,
    ));
    let edge_probe = Some((
        model_edge_probe(&model, &fx, &fy, &config)?,
        model_edge_probe(&untrained, &fx, &fy, &config)?,
    ));
    let change = |m: &Model<f32>| output_change(m, Method::Fgsm, &fx, &fy, 0.01, &config);
    let output_change = Some((change(&model)?, change(&untrained)?));
    Ok(AdversarialResults {
        stats,
        figures,
        plot,
        summary: format!("{name}_adversarial/summary.json"),
        sign_image,
        edge_correlation: (fp.trained.pearson, fp.untrained.pearson),
        output_change,
        edge_probe,
    })
}

/// The median and largest of the integrated-gradients relative completeness errors.
pub fn ig_error_summary(r: &AttributionResults) -> (f64, f64) {
    (
        median(&r.ig_relative_errors),
        r.ig_relative_errors.iter().copied().fold(0.0, f64::max),
    )
}
