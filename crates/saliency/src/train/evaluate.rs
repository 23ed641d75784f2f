//! Evaluation: accuracy and mean cross-entropy on a data set, in evaluation mode.

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

/// Evaluates `model` on every image of `data` (batches of 250, no tape memory kept).
pub fn evaluate(model: &Model<f32>, data: &Dataset) -> Result<Evaluation, ModelError> {
    let probs = predict_probs(model, &data.images, 250)?;
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
