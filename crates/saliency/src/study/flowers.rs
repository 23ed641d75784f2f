//! The flower half of the study: medium and deep on 5 classes, a binary pair, gray vs color.

use std::path::Path;

use crate::attribution::{AttributionMovie, MovieOptions};
use crate::data::Dataset;
use crate::models::ModelKind;
use crate::task::DataSpec;
use crate::train::{OptimizerConfig, TrainConfig};

use super::plan::Plan;
use super::training::{train_model, TrainSummary};

/// The binary pair the study's "91 % on some pairs" is compared with.
pub const PAIR: [&str; 2] = ["daisy", "sunflowers"];

/// Loads `flowers` (or `flowers17`) with the given classes and color mode.
pub fn load(
    data_dir: Option<&Path>,
    set: &str,
    classes: Option<&[&str]>,
    gray: bool,
    seed: u64,
) -> anyhow::Result<(Dataset, Dataset)> {
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
    Ok(spec.load()?)
}

fn config(model: ModelKind, dataset: &str, epochs: u64, seed: u64) -> TrainConfig {
    let mut c = TrainConfig::study(model);
    c.dataset = dataset.into();
    c.epochs = epochs;
    c.seed = seed;
    c.optimizer = OptimizerConfig::study_adam();
    c.l2 = 0.0;
    c.batch_size = 16;
    c
}

/// Trains `model` on a flower task; with `movie_every`, films the first 6 test images in color.
pub fn train_flowers(
    out: &Path,
    name: &str,
    model: ModelKind,
    dataset: &str,
    epochs: u64,
    seed: u64,
    train: &Dataset,
    test: &Dataset,
    movie_every: Option<u64>,
) -> anyhow::Result<(TrainSummary, usize)> {
    let cfg = config(model, dataset, epochs, seed);
    if let Some(every) = movie_every {
        std::fs::create_dir_all(out.join("figures"))?;
        let mut m = AttributionMovie::from_dataset(
            &out.join(format!("figures/{name}_movie.gif")),
            test,
            MovieOptions {
                every,
                ..MovieOptions::default()
            },
        )?;
        let s = train_model(out, name, cfg, train, test, &mut [&mut m])?;
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
