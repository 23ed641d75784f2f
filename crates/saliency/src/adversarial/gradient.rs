//! The loss gradient g = dJ(O(a), y)/da of every input of a batch, computed in bounded chunks.

use tensor::Tensor;

use super::check::{check_batch, per_image};
use super::AdversarialError;
use crate::infer::{input_gradients, Objective};
use crate::loss::LossKind;
use crate::models::Model;

/// Images per forward/backward pass when the images are small (Fashion-MNIST).
pub const GRADIENT_BATCH: usize = 256;

/// Input elements per pass: a recording tape keeps every activation, so large images (flowers,
/// 3x256x256 = 196,608 elements) go a few at a time. 2^22 elements is 21 flowers, whose first
/// conv layer alone then holds 21 x 16 x 256 x 256 floats (88 MB).
const CHUNK_ELEMENTS: usize = 1 << 22;

/// Images per chunk for images of `per_image` elements when the caller asked for `requested`
/// (0 means [`GRADIENT_BATCH`]): at most `requested`, at most `CHUNK_ELEMENTS` elements, at
/// least 1. Depends only on sizes, never on threads, so results repeat bit for bit.
pub fn chunk_size(per_image: usize, requested: usize) -> usize {
    let requested = if requested == 0 {
        GRADIENT_BATCH
    } else {
        requested
    };
    requested.min(CHUNK_ELEMENTS / per_image.max(1)).max(1)
}

/// g = dJ(O(a), y)/da for each image of `inputs` (N, C, H, W) against its label: the per-example
/// loss gradient (no 1/N factor), same shape as `inputs`. Evaluation mode (no dropout, batch-norm
/// running statistics), so each image's gradient does not depend on the others in its chunk.
///
/// Inputs may lie outside [0, 1] here (iterated attacks without clipping step outside);
/// the public attacks check the range of what callers pass.
pub fn loss_gradient(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    loss: LossKind,
) -> Result<Tensor<f32>, AdversarialError> {
    loss_gradient_and_values(model, inputs, labels, loss, GRADIENT_BATCH).map(|(g, _)| g)
}

/// [`loss_gradient`] plus the per-example loss values J(O(a), y), `batch` images per pass
/// (see [`chunk_size`]).
pub fn loss_gradient_and_values(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    loss: LossKind,
    batch: usize,
) -> Result<(Tensor<f32>, Vec<f32>), AdversarialError> {
    check_batch(model, inputs, labels)?;
    let n = labels.len();
    let per = per_image(inputs);
    let chunk = chunk_size(per, batch);
    let mut grad = Vec::with_capacity(inputs.numel());
    let mut values = Vec::with_capacity(n);
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let mut shape = inputs.shape().to_vec();
        shape[0] = end - start;
        let x = Tensor::from_vec(&shape, inputs.data()[start * per..end * per].to_vec())?;
        let objective = Objective::Loss {
            labels: labels[start..end].to_vec(),
            kind: loss,
        };
        let (g, v) = input_gradients(model, &x, &objective)?;
        grad.extend_from_slice(g.data());
        values.extend_from_slice(&v);
    }
    Ok((Tensor::from_vec(inputs.shape(), grad)?, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_element_budget() {
        assert_eq!(chunk_size(784, 0), GRADIENT_BATCH);
        assert_eq!(chunk_size(784, 10), 10);
        assert_eq!(chunk_size(3 * 256 * 256, 256), (1 << 22) / (3 * 256 * 256));
        assert_eq!(chunk_size(usize::MAX, 256), 1);
    }
}
