//! Gradient x input: the study's |ds/da| * a, and the signed textbook form (dF/da) * a.

use tensor::{Float, Tensor};

use super::target::Score;
use super::{check_classes, check_inputs, default_batch, AttributionError};
use crate::infer::input_gradients;
use crate::models::Model;
use crate::shards::slice_images;

/// The study's gradient x input, A = |ds/da| * a element-wise, with s the softmax probability of
/// `classes[n]` for image n.
///
/// With the classes from [`Target::Pred`](super::Target::Pred), s = max_k p_k exactly as in the
/// study. Inputs are non-negative, so A >= 0 and the map can be max-normalized for display.
pub fn gradient_x_input<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
) -> Result<Tensor<T>, AttributionError> {
    let (grad, _) = score_gradients(model, inputs, classes, Score::Probability)?;
    Ok(times_input(grad, inputs, |g| g.abs()))
}

/// The signed textbook form, (dF/da) * a, with F the probability or the logit (`score`) of
/// `classes[n]` for image n. For a linear model F(a) = w . a + b and the logit this is w * a.
pub fn gradient_x_input_signed<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    score: Score,
) -> Result<Tensor<T>, AttributionError> {
    let (grad, _) = score_gradients(model, inputs, classes, score)?;
    Ok(times_input(grad, inputs, |g| g))
}

/// dF(x_n)/dx_n for every image, and the values F(x_n).
///
/// The per-image scores are summed and differentiated once: in evaluation mode images do not
/// interact, so the gradient of the sum with respect to image n is that image's own gradient.
/// Large batches go through in chunks of [`default_batch`] images to bound the recorded
/// activations; that changes nothing but memory.
pub(crate) fn score_gradients<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    score: Score,
) -> Result<(Tensor<T>, Vec<T>), AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    let batch = default_batch(model.input);
    if n <= batch {
        return Ok(input_gradients(
            model,
            inputs,
            &score.objective(classes.to_vec()),
        )?);
    }
    let mut grad = Vec::with_capacity(inputs.numel());
    let mut values = Vec::with_capacity(n);
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let chunk = slice_images(inputs, start..end);
        let objective = score.objective(classes[start..end].to_vec());
        let (g, v) = input_gradients(model, &chunk, &objective)?;
        grad.extend_from_slice(g.data());
        values.extend(v);
    }
    Ok((Tensor::from_vec(inputs.shape(), grad)?, values))
}

/// `f(g) * a` element-wise, reusing the gradient's buffer.
fn times_input<T: Float>(mut grad: Tensor<T>, inputs: &Tensor<T>, f: impl Fn(T) -> T) -> Tensor<T> {
    for (g, &a) in grad.data_mut().iter_mut().zip(inputs.data()) {
        *g = f(*g) * a;
    }
    grad
}
