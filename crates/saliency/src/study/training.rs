//! Study steps that train a model: settings per profile, and the summary kept for the report.

use std::path::Path;
use std::time::Instant;

use crate::data::ImageSource;
use crate::model_io::load_model;
use crate::models::{Model, ModelKind};
use crate::train::{EpochMetrics, TrainConfig, TrainEvent, TrainHook, Trainer};

/// What the report needs from one training run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TrainSummary {
    /// Step name, also the folder under `models/`.
    pub name: String,
    /// Network.
    pub model: ModelKind,
    /// Data set description.
    pub dataset: String,
    /// Training images used.
    pub train_images: usize,
    /// Test images evaluated.
    pub test_images: usize,
    /// Epochs trained.
    pub epochs: u64,
    /// Per-epoch metrics.
    pub metrics: Vec<EpochMetrics>,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Wall time.
    pub seconds: f64,
    /// Relative path of the checkpoint.
    pub checkpoint: String,
}

/// Trains `config` on `train`, evaluating on `test`, writing the run into `out/models/name`,
/// with `hooks` watching; prints one line per epoch. Both sets are read a minibatch at a time
/// (an image folder's files decoded per batch through its cache, never the whole split as floats).
pub fn train_model(
    out: &Path,
    name: &str,
    config: TrainConfig,
    train: &dyn ImageSource,
    test: &dyn ImageSource,
    hooks: &mut [&mut dyn TrainHook],
) -> anyhow::Result<TrainSummary> {
    let dir = out.join("models").join(name);
    let started = Instant::now();
    let mut trainer = Trainer::new(config.clone(), train.shape(), train.class_names().to_vec())?;
    let epochs = config.epochs;
    let metrics = trainer.run(train, test, Some(&dir), hooks, &mut |e| match e {
        TrainEvent::Batch(p) => {
            let batches = p.batches as u64;
            super::progress::work(
                p.epoch * batches + p.batch as u64,
                epochs * batches,
                "batches",
            );
        }
        TrainEvent::Epoch(m) => {
            super::progress::line(format!(
                "  {name} epoch {}: train acc {:.2} %, test acc {:.2} %, {:.0} img/s",
                m.epoch,
                100.0 * m.train_accuracy,
                100.0 * m.test_accuracy,
                m.images_per_second
            ));
        }
    })?;
    Ok(TrainSummary {
        name: name.into(),
        model: config.model,
        dataset: train.name().to_string(),
        train_images: train.count(),
        test_images: test.count(),
        epochs: config.epochs,
        test_accuracy: metrics.last().map(|m| m.test_accuracy).unwrap_or(0.0),
        metrics,
        seconds: started.elapsed().as_secs_f64(),
        checkpoint: format!("models/{name}/model.safetensors"),
    })
}

/// The trained model of a finished training step.
pub fn trained(out: &Path, summary: &TrainSummary) -> anyhow::Result<Model<f32>> {
    Ok(load_model(&out.join(&summary.checkpoint))?.0)
}
