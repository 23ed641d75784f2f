//! Evaluation: accuracy and mean cross-entropy on a data set, in evaluation mode.

use crate::attribution::default_batch;
use crate::data::Dataset;
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

/// Evaluates `model` on every image of `data` (no tape memory kept), in batches of 250 small
/// images or fewer large ones ([`default_batch`]: 10 flower photos of 3x256x256). Batches of 250
/// photos held gigabytes of activations: the `flowers17` run peaked at 6.5 GB.
pub fn evaluate(model: &Model<f32>, data: &Dataset) -> Result<Evaluation, ModelError> {
    let batch = default_batch(model.input).min(250);
    let probs = predict_probs(model, &data.images, batch)?;
    let pred = argmax_rows(&probs, model.classes);
    let n = data.len();
    let correct = pred
        .iter()
        .zip(&data.labels)
        .filter(|(p, y)| **p == **y as usize)
        .count();
    let loss: f64 = probs
        .chunks_exact(model.classes)
        .zip(&data.labels)
        .map(|(row, &y)| -(row[y as usize].max(1e-30) as f64).ln())
        .sum();
    Ok(Evaluation {
        accuracy: correct as f64 / n.max(1) as f64,
        loss: loss / n.max(1) as f64,
        n,
    })
}
