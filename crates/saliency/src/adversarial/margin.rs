//! Logits and the input gradient of a logit difference Z_a - Z_b per image: what DeepFool and
//! Carlini-Wagner need (both work on logits, not on the loss).

use rayon::prelude::*;
use tape::Tape;
use tensor::Tensor;

use super::check::per_image;
use super::AdversarialError;
use crate::models::{Mode, Model};
use crate::shards;

/// The logits (N, classes), row-major, of `inputs` (N, C, H, W) in evaluation mode.
pub(crate) fn logits(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
) -> Result<Vec<f32>, AdversarialError> {
    let n = inputs.shape()[0];
    let parts: Vec<Result<Vec<f32>, AdversarialError>> = shards::ranges(n)
        .into_par_iter()
        .map(|range| {
            let mut tape = Tape::no_record();
            let params = model.bind(&mut tape, false);
            let x = tape.constant(shards::slice_images(inputs, range));
            let (z, _) = model.forward(&mut tape, x, &params, Mode::Eval)?;
            Ok(tape.value(z).data().to_vec())
        })
        .collect();
    let mut out = Vec::with_capacity(n * model.classes);
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// Chooses (a, b) for image i from its logits row.
pub(crate) type PickClasses<'a> = dyn Fn(usize, &[f32]) -> (usize, usize) + Sync + 'a;

/// One shard's input gradient and logits, flat.
type ShardResult = Result<(Vec<f32>, Vec<f32>), AdversarialError>;

/// For each image i: the logits of `inputs` and the input gradient of Z_{a_i} - Z_{b_i}, where
/// `(a_i, b_i) = pick(i, logits row i)` is chosen from the logits of that very pass (so
/// Carlini-Wagner can differentiate against the currently strongest other class). Images pass
/// through independently (evaluation mode), so each image's result does not depend on the
/// others or on the thread count. Returns (gradient, logits).
pub(crate) fn margin_gradient(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    pick: &PickClasses<'_>,
) -> Result<(Tensor<f32>, Vec<f32>), AdversarialError> {
    let n = inputs.shape()[0];
    let k = model.classes;
    let parts: Vec<ShardResult> = shards::ranges(n)
        .into_par_iter()
        .map(|range| {
            let first = range.start;
            let slice = shards::slice_images(inputs, range);
            let shape = slice.shape().to_vec();
            let mut tape = Tape::new();
            let params = model.bind(&mut tape, false);
            let x = tape.variable(slice);
            let (z, _) = model.forward(&mut tape, x, &params, Mode::Eval)?;
            let zv = tape.value(z).data().to_vec();
            let (a, b): (Vec<usize>, Vec<usize>) = zv
                .chunks_exact(k)
                .enumerate()
                .map(|(i, row)| pick(first + i, row))
                .unzip();
            let za = tape.select(z, &a)?;
            let zb = tape.select(z, &b)?;
            let minus_zb = tape.scale(zb, -1.0)?;
            let diff = tape.add(za, minus_zb)?;
            let total = tape.sum(diff)?;
            let grads = tape.backward(total)?;
            Ok((grads.get_or_zeros(x, &shape).data().to_vec(), zv))
        })
        .collect();
    let mut grad = Vec::with_capacity(inputs.numel());
    let mut all = Vec::with_capacity(n * k);
    for p in parts {
        let (g, z) = p?;
        grad.extend(g);
        all.extend(z);
    }
    debug_assert_eq!(grad.len(), n * per_image(inputs));
    Ok((Tensor::from_vec(inputs.shape(), grad)?, all))
}
