//! Evaluation: accuracy and mean cross-entropy on a data set, in evaluation mode.

use crate::attribution::default_batch;
use crate::data::{DataError, ImageSource};
use crate::infer::{argmax_rows, predict_probs};
use crate::models::{Model, ModelError};

/// Accuracy and loss of a model on a data set.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Share of images whose top class is the label.
    pub accuracy: f64,
    /// Mean of -ln p(label).
    pub loss: f64,
    /// Images evaluated.
    pub n: usize,
}

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvaluateError {
    /// The model refused the images (shapes).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An image could not be read (a file changed since the data was opened).
    #[error(transparent)]
    Data(#[from] DataError),
}

/// Evaluates `model` on every image of `data` (no tape memory kept), in batches of 250 small
/// images or fewer large ones ([`default_batch`]: 10 flower photos of 3x256x256). Batches of 250
/// photos held gigabytes of activations: the `flowers17` run peaked at 6.5 GB. Only one batch of
/// images is in memory at a time (an image folder is decoded batch by batch).
pub fn evaluate(model: &Model<f32>, data: &dyn ImageSource) -> Result<Evaluation, EvaluateError> {
    let batch = default_batch(model.input).min(250);
    let n = data.count();
    let labels = data.labels();
    let mut probs = Vec::with_capacity(n * model.classes);
    let mut images = Vec::new();
    for start in (0..n).step_by(batch) {
        let positions: Vec<usize> = (start..(start + batch).min(n)).collect();
        images.resize(positions.len() * data.values_per_image(), 0.0);
        data.fill(&positions, &mut images)?;
        // One call per batch of `batch` images: the same batches, so the same bits, as one call
        // over the whole set.
        probs.extend(predict_probs(model, &images, batch)?);
    }
    let pred = argmax_rows(&probs, model.classes);
    let correct = pred
        .iter()
        .zip(labels)
        .filter(|(p, y)| **p == **y as usize)
        .count();
    let loss: f64 = probs
        .chunks_exact(model.classes)
        .zip(labels)
        .map(|(row, &y)| -(row[y as usize].max(1e-30) as f64).ln())
        .sum();
    Ok(Evaluation {
        accuracy: correct as f64 / n.max(1) as f64,
        loss: loss / n.max(1) as f64,
        n,
    })
}
