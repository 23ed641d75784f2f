//! Plain saliency (Simonyan et al. 2014): the magnitude of the score's gradient, |dF/dx|.

use tensor::{Float, Tensor};

use super::gradient_x_input::score_gradients;
use super::target::Score;
use super::AttributionError;
use crate::models::Model;

/// |dF/dx| element-wise, with F the score (`score`) of `classes[n]` for image n: Captum's
/// `Saliency` with `abs=True`. Shaped like the inputs, non-negative.
pub fn saliency_map<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    score: Score,
) -> Result<Tensor<T>, AttributionError> {
    let (mut grad, _) = score_gradients(model, inputs, classes, score)?;
    grad.data_mut().iter_mut().for_each(|g| *g = g.abs());
    Ok(grad)
}
