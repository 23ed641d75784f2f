//! The backward signal at the input under a rule set (tape::RuleSet): what the rule-based
//! methods (guided backpropagation, deconvnet, LRP, DeepLIFT) multiply or report.

use std::ops::Range;

use tape::{RuleSet, Tape};
use tensor::{Float, Tensor};

use super::{default_batch, AttributionError};
use crate::infer::SpareTape;
use crate::models::{Mode, Model};
use crate::shards::{self, slice_images};

/// The signal reaching each input when backward starts from 1 at the logit of `classes[n]` for
/// image n, every op passing it back by `rules`. With `references` (N, C, H, W), each pass holds
/// a chunk of inputs followed by their references, as DeepLIFT's rescale rule needs, and only
/// the inputs' logits are seeded.
///
/// The caller has checked the inputs, classes and references. Chunks of [`default_batch`]
/// images (half that with references) bound the recorded activations; each chunk runs as the
/// shards of [`shards::ranges`] in parallel.
pub(crate) fn rule_signal<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    rules: RuleSet,
    references: Option<&Tensor<T>>,
) -> Result<Tensor<T>, AttributionError> {
    use rayon::prelude::*;
    let n = inputs.shape()[0];
    let batch = match references {
        Some(_) => (default_batch(model.input) / 2).max(1),
        None => default_batch(model.input),
    };
    let mut out = Vec::with_capacity(inputs.numel());
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        // Evaluation mode: images pass independently, so each shard (split by the chunk's size
        // alone, never by the thread count) computes exactly its images' signal, on one core.
        let shards: Vec<Vec<T>> = shards::ranges(end - start)
            .into_par_iter()
            .map(|r| {
                let range = start + r.start..start + r.end;
                shard_signal(model, inputs, classes, rules, references, range)
            })
            .collect::<Result<_, _>>()?;
        for s in shards {
            out.extend_from_slice(&s);
        }
    }
    Ok(Tensor::from_vec(inputs.shape(), out)?)
}

/// [`rule_signal`] of images `range`, on one tape: the images, then their references if any.
fn shard_signal<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    rules: RuleSet,
    references: Option<&Tensor<T>>,
    range: Range<usize>,
) -> Result<Vec<T>, AttributionError> {
    let per = inputs.numel() / inputs.shape()[0];
    let m = range.len();
    let mut chunk = slice_images(inputs, range.clone());
    let mut rows = classes[range.clone()].to_vec();
    if let Some(r) = references {
        let mut data = chunk.into_vec();
        data.extend_from_slice(&r.data()[range.start * per..range.end * per]);
        let mut shape = inputs.shape().to_vec();
        shape[0] = 2 * m;
        chunk = Tensor::from_vec(&shape, data)?;
        rows.extend_from_slice(&classes[range]);
    }
    // A spare tape keeps its pooled buffers from pass to pass (no fresh zeroed pages).
    let mut tape = SpareTape::take(true);
    tape.set_rules(rules);
    let result = record_signal(
        model,
        &mut tape,
        chunk,
        &rows,
        references.is_some(),
        m * per,
    );
    SpareTape::give_back(tape);
    result
}

/// The body of [`shard_signal`] on a cleared recording `tape` with the rules set: the signal at
/// the first `keep` elements of the input.
fn record_signal<T: Float>(
    model: &Model<T>,
    tape: &mut Tape<T>,
    chunk: Tensor<T>,
    rows: &[usize],
    with_references: bool,
    keep: usize,
) -> Result<Vec<T>, AttributionError> {
    let m = rows.len() / if with_references { 2 } else { 1 };
    let params = model.bind(tape, false);
    let x = tape.variable(chunk);
    let (logits, _) = model.forward(tape, x, &params, Mode::Eval)?;
    let mut picked = tape.select(logits, rows)?;
    if with_references {
        // Seed the inputs' logits only: the references' rows get zero.
        let mut mask = vec![T::ZERO; 2 * m];
        mask[..m].iter_mut().for_each(|v| *v = T::ONE);
        let mask = tape.constant(Tensor::from_vec(&[2 * m], mask)?);
        picked = tape.mul(picked, mask)?;
    }
    let total = tape.sum(picked)?;
    let grads = tape.backward(total)?;
    Ok(grads
        .get(x)
        .map(|g| g.data()[..keep].to_vec())
        .unwrap_or_else(|| vec![T::ZERO; keep]))
}
