//! `Prediction`: a model's top class and its softmax probability for each image of a batch.

use tensor::Tensor;

use super::check::per_image;
use super::gradient::chunk_size;
use super::AdversarialError;
use crate::infer::{argmax_rows, predict_probs};
use crate::models::Model;

/// The predicted class of one image and the model's confidence in it (max softmax probability).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prediction {
    /// argmax_k p_k (first on ties).
    pub class: usize,
    /// max_k p_k.
    pub confidence: f32,
}

/// Predictions for each image of `inputs` (N, C, H, W), `batch` images per pass (0 = default;
/// see [`super::chunk_size`]). Inputs outside [0, 1] are allowed: perturbed images and sign
/// images are classified as they are.
pub fn predict(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    batch: usize,
) -> Result<Vec<Prediction>, AdversarialError> {
    let shape = inputs.shape();
    if shape.len() != 4 || shape[1..] != model.input {
        return Err(AdversarialError::Shape {
            what: "inputs",
            expected: format!(
                "a batch of shape (N, {}, {}, {})",
                model.input[0], model.input[1], model.input[2]
            ),
            found: format!("{shape:?}"),
        });
    }
    let probs = predict_probs(model, inputs.data(), chunk_size(per_image(inputs), batch))?;
    let classes = argmax_rows(&probs, model.classes);
    Ok(classes
        .iter()
        .zip(probs.chunks_exact(model.classes))
        .map(|(&class, row)| Prediction {
            class,
            confidence: row[class],
        })
        .collect())
}

/// Softmax probabilities (N, classes) of a checked batch, in the chunks [`predict`] uses.
pub(crate) fn predict_probs_of(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
) -> Result<Vec<f32>, AdversarialError> {
    Ok(predict_probs(
        model,
        inputs.data(),
        chunk_size(per_image(inputs), 0),
    )?)
}
