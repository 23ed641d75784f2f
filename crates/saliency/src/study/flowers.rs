//! The flower half of the study: medium and deep on 5 classes, a binary pair, gray vs color.

use std::path::Path;
use std::sync::Arc;

use crate::adversarial::GradientMovie;
use crate::attribution::{gradient_x_input, AttributionMovie, MovieOptions, Target};
use crate::data::{CacheBudget, ImageSource, Images};
use crate::loss::LossKind;
use crate::models::{Model, ModelKind};
use crate::task::{open_noting_skips, DataSpec};
use crate::train::{OptimizerConfig, TrainConfig};

use super::common::{first_images, save_grid};
use super::plan::Plan;
use super::training::{train_model, trained, TrainSummary};

/// The binary pair the study's "91 % on some pairs" is compared with.
pub const PAIR: [&str; 2] = ["daisy", "sunflowers"];

/// Test images materialized for the training movies: the 6 both flower movies film (16 for
/// small images, so the same number serves any input size).
const FILMED: usize = 16;

/// Opens `flowers` (or `flowers17`) with the given classes and color mode: the seeded split is
/// chosen from the file names, every selected file is checked once, and the images are then read
/// a minibatch at a time, their decoded 8-bit pixels kept in caches drawing on `budget`
/// ([`crate::data::Selection::open`]). The floats read are the ones a whole decode gives, so the
/// study's results do not depend on how much of the split the cache holds.
pub fn open(
    data_dir: Option<&Path>,
    set: &str,
    classes: Option<&[&str]>,
    gray: bool,
    seed: u64,
    budget: &Arc<CacheBudget>,
) -> anyhow::Result<(Images, Images)> {
    let spec = DataSpec {
        name: set.into(),
        data_dir: data_dir.map(Path::to_path_buf),
        classes: classes.map(|c| c.iter().map(|s| s.to_string()).collect()),
        gray,
        size: 256,
        split_seed: seed,
        test_fraction: 0.2,
        allow_download: false,
        strict: true,
    };
    let (train, test, _) = spec.select()?;
    Ok((
        open_noting_skips(train, budget)?,
        open_noting_skips(test, budget)?,
    ))
}

/// Trains `medium` for the flower attacks (no movies) with the given training loss.
pub fn train_attack_model(
    out: &Path,
    name: &str,
    epochs: u64,
    seed: u64,
    train: &dyn ImageSource,
    test: &dyn ImageSource,
    loss: LossKind,
) -> anyhow::Result<(TrainSummary, usize)> {
    let mut cfg = config(ModelKind::Medium, "flowers", epochs, seed);
    cfg.loss = loss;
    Ok((train_model(out, name, cfg, train, test, &mut [])?, 0))
}

/// The flower runs' training settings: the study's Adam, batch 16, no L2.
pub fn config(model: ModelKind, dataset: &str, epochs: u64, seed: u64) -> TrainConfig {
    let mut c = TrainConfig::study(model);
    c.dataset = dataset.into();
    c.epochs = epochs;
    c.seed = seed;
    c.optimizer = OptimizerConfig::study_adam();
    c.l2 = 0.0;
    c.batch_size = 16;
    c
}

/// The gradient-over-training movie of the flower run `name`, relative to the study folder.
pub fn gradient_movie_path(name: &str) -> String {
    format!("figures/{name}_gradient_movie.gif")
}

/// Trains `model` on a flower task; with `movie_every`, films the first 6 test images in color:
/// their gradient x input (the attribution movie) and their loss gradient (the gradient movie).
pub fn train_flowers(
    out: &Path,
    name: &str,
    model: ModelKind,
    dataset: &str,
    epochs: u64,
    seed: u64,
    train: &dyn ImageSource,
    test: &dyn ImageSource,
    movie_every: Option<u64>,
) -> anyhow::Result<(TrainSummary, usize)> {
    let cfg = config(model, dataset, epochs, seed);
    if let Some(every) = movie_every {
        std::fs::create_dir_all(out.join("figures"))?;
        // Only the filmed images are held in memory; the movies take the first of them.
        let filmed = test.first_dataset(FILMED)?;
        let mut m = AttributionMovie::from_dataset(
            &out.join(format!("figures/{name}_movie.gif")),
            &filmed,
            MovieOptions {
                every,
                ..MovieOptions::default()
            },
        )?;
        let mut g = GradientMovie::new(
            &out.join(gradient_movie_path(name)),
            &filmed,
            every,
            cfg.loss,
        )?;
        let s = train_model(out, name, cfg, train, test, &mut [&mut m, &mut g])?;
        Ok((s, m.frames()))
    } else {
        Ok((train_model(out, name, cfg, train, test, &mut [])?, 0))
    }
}

/// Epochs of the flower runs in `plan`.
pub fn epochs(plan: &Plan, model: ModelKind) -> u64 {
    if model == ModelKind::Deep {
        plan.flower_deep_epochs
    } else {
        plan.flower_epochs
    }
}

/// Gradient x input of the first 6 test photos (one per class and more, the test split being
/// interleaved by class) for the model of the training run `run`, untrained (its seed's initial
/// weights) and trained, as the study's before/after stills. Returns (caption, path) of each.
pub fn stills(
    out: &Path,
    run: &TrainSummary,
    test: &dyn ImageSource,
    seed: u64,
) -> anyhow::Result<Vec<(String, String)>> {
    let trained_model = trained(out, run)?;
    let untrained: Model<f32> =
        run.model
            .build(trained_model.input, trained_model.classes, seed)?;
    let (x, y) = first_images(test, 6)?;
    let colour = if trained_model.input[0] == 1 {
        "gray"
    } else {
        "color"
    };
    let mut figures = Vec::new();
    for (state, model) in [("untrained", &untrained), ("trained", &trained_model)] {
        let pred = Target::Pred.resolve(model, &x, None)?;
        let maps = gradient_x_input(model, &x, &pred)?;
        let caption = format!(
            "gradient x input |ds/da| * a, {state} {} on {colour} flowers ({} epochs)",
            run.model, run.epochs
        );
        let rel = save_grid(
            out,
            &format!("figures/{}_gxi_{state}.png", run.name),
            model,
            &x,
            &y,
            &maps,
            test.class_names(),
            3,
            &caption,
        )?;
        figures.push((
            format!("{caption}; summed over channels, each map max-normalized, inferno overlay"),
            rel,
        ));
    }
    Ok(figures)
}
