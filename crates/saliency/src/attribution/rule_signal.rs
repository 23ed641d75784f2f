//! The backward signal at the input under a rule set (tape::RuleSet): what the rule-based
//! methods (guided backpropagation, deconvnet, LRP, DeepLIFT) multiply or report.

use std::ops::Range;

use tape::{RuleSet, Tape};
use tensor::{Float, Tensor};

use super::{default_batch, AttributionError};
use crate::infer::SpareTape;
use crate::models::{Mode, Model};
use crate::shards::{self, slice_images};

/// The reference inputs a rule pass carries (DeepLIFT's rescale rule needs them).
#[derive(Clone, Copy)]
pub(crate) enum References<'a, T> {
    /// One reference per input, (N, C, H, W): each pass holds its inputs then as many
    /// references (`tape::References::Paired`).
    Paired(&'a Tensor<T>),
    /// One reference image (its C x H x W values) for every input: each pass holds its inputs
    /// then that one image (`tape::References::Shared`), so the reference costs one image's
    /// pass, not one per input.
    Shared(&'a [T]),
}

/// What a rule pass with references gives: the signal, and the target logits of each input
/// and of its reference from the same forward pass.
pub(crate) struct SignalAndLogits<T> {
    /// The signal at the inputs, shaped like them.
    pub signal: Tensor<T>,
    /// The logit of `classes[n]` at input n.
    pub logits: Vec<f64>,
    /// The logit of `classes[n]` at input n's reference.
    pub reference_logits: Vec<f64>,
}

/// The signal reaching each input when backward starts from 1 at the logit of `classes[n]` for
/// image n, every op passing it back by `rules`.
///
/// The caller has checked the inputs and classes. Chunks of [`default_batch`] images bound the
/// recorded activations; each chunk runs as the shards of [`shards::ranges`] in parallel.
pub(crate) fn rule_signal<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    rules: RuleSet,
) -> Result<Tensor<T>, AttributionError> {
    Ok(signal_in_chunks(model, inputs, classes, rules, None)?.signal)
}

/// [`rule_signal`] with `references` in every pass (with `rules` set to the matching
/// [`tape::References`] layout), and the target logits of the inputs and of their references.
/// The caller has checked the references' shape and values.
pub(crate) fn rule_signal_with_references<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    rules: RuleSet,
    references: References<'_, T>,
) -> Result<SignalAndLogits<T>, AttributionError> {
    signal_in_chunks(model, inputs, classes, rules, Some(references))
}

/// The body of both: chunk by chunk, shard by shard.
fn signal_in_chunks<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    rules: RuleSet,
    references: Option<References<'_, T>>,
) -> Result<SignalAndLogits<T>, AttributionError> {
    use rayon::prelude::*;
    let n = inputs.shape()[0];
    let batch = match references {
        Some(References::Paired(_)) => (default_batch(model.input) / 2).max(1),
        _ => default_batch(model.input),
    };
    let mut out = SignalAndLogits {
        signal: Tensor::zeros(&[0]),
        logits: Vec::new(),
        reference_logits: Vec::new(),
    };
    let mut signal = Vec::with_capacity(inputs.numel());
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        // Evaluation mode: images pass independently, so each shard (split by the chunk's size
        // alone, never by the thread count) computes exactly its images' signal, on one core.
        let shards: Vec<Shard<T>> = shards::ranges(end - start)
            .into_par_iter()
            .map(|r| {
                let range = start + r.start..start + r.end;
                // A spare tape keeps its pooled buffers from pass to pass (no fresh zeroed
                // pages); the parameters are bound once for the shard's chunks.
                let mut tape = SpareTape::take(true);
                let params = model.bind(&mut tape, false);
                tape.set_rules(rules);
                let result = pass_chunks(model, range, references)
                    .into_iter()
                    .map(|chunk| {
                        tape.rewind(params.len())?;
                        let pass = Pass {
                            model,
                            params: &params,
                        };
                        shard_signal(&pass, &mut tape, inputs, classes, references, chunk)
                    })
                    .collect::<Result<Vec<_>, AttributionError>>();
                SpareTape::give_back(tape);
                result
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        for s in shards {
            signal.extend_from_slice(&s.signal);
            out.logits.extend(s.logits);
            out.reference_logits.extend(s.reference_logits);
        }
    }
    out.signal = Tensor::from_vec(inputs.shape(), signal)?;
    Ok(out)
}

/// A shard's images in the chunks of one recorded pass each ([`shards::cache_chunks`]), halved
/// when every image brings its own reference into the pass.
fn pass_chunks<T: Float>(
    model: &Model<T>,
    range: Range<usize>,
    references: Option<References<'_, T>>,
) -> Vec<Range<usize>> {
    let chunks = shards::cache_chunks(model, range, true);
    if !matches!(references, Some(References::Paired(_))) {
        return chunks;
    }
    chunks
        .into_iter()
        .flat_map(|c| {
            let mid = c.start + c.len().div_ceil(2);
            [c.start..mid, mid..c.end]
        })
        .filter(|c| !c.is_empty())
        .collect()
}

/// One shard's signal and target logits (empty without references).
struct Shard<T> {
    signal: Vec<T>,
    logits: Vec<f64>,
    reference_logits: Vec<f64>,
}

/// The model of a rule pass and its parameters, bound on the pass's tape.
struct Pass<'a, T: Float> {
    model: &'a Model<T>,
    params: &'a [tape::NodeId],
}

/// The signal of images `range` (one chunk of a shard) on `tape`, which holds only the
/// parameters and has the rules set: the images, then their references if any.
fn shard_signal<T: Float>(
    pass: &Pass<'_, T>,
    tape: &mut Tape<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    references: Option<References<'_, T>>,
    range: Range<usize>,
) -> Result<Shard<T>, AttributionError> {
    let model = pass.model;
    let per = inputs.numel() / inputs.shape()[0];
    let m = range.len();
    let mut chunk = slice_images(inputs, range.clone());
    let mut rows = classes[range.clone()].to_vec();
    let appended = match references {
        None => None,
        Some(References::Paired(r)) => {
            rows.extend_from_slice(&classes[range.clone()]);
            Some(&r.data()[range.start * per..range.end * per])
        }
        Some(References::Shared(r)) => {
            // The reference's row is never seeded: any class will do.
            rows.push(classes[range.start]);
            Some(r)
        }
    };
    if let Some(r) = appended {
        let mut data = chunk.into_vec();
        data.extend_from_slice(r);
        let mut shape = inputs.shape().to_vec();
        shape[0] = rows.len();
        chunk = Tensor::from_vec(&shape, data)?;
    }
    let (signal, logits) = record_signal(pass, tape, chunk, &rows, m, m * per)?;
    let (mut inputs_logits, mut reference_logits) = (Vec::new(), Vec::new());
    if let Some(references) = references {
        let classes_count = model.classes;
        for (i, &class) in rows[..m].iter().enumerate() {
            let r = match references {
                References::Paired(_) => m + i,
                References::Shared(_) => m,
            };
            inputs_logits.push(logits[i * classes_count + class].to_f64());
            reference_logits.push(logits[r * classes_count + class].to_f64());
        }
    }
    Ok(Shard {
        signal,
        logits: inputs_logits,
        reference_logits,
    })
}

/// The body of [`shard_signal`] on a cleared recording `tape` with the rules set: the signal at
/// the first `keep` elements of the input, when only the first `m` rows' logits are seeded,
/// and every row's logits.
fn record_signal<T: Float>(
    pass: &Pass<'_, T>,
    tape: &mut Tape<T>,
    chunk: Tensor<T>,
    rows: &[usize],
    m: usize,
    keep: usize,
) -> Result<(Vec<T>, Vec<T>), AttributionError> {
    let x = tape.variable(chunk);
    let (logits, _) = pass.model.forward(tape, x, pass.params, Mode::Eval)?;
    let mut picked = tape.select(logits, rows)?;
    if rows.len() > m {
        // Seed the inputs' logits only: the references' rows get zero.
        let mut mask = vec![T::ZERO; rows.len()];
        mask[..m].iter_mut().for_each(|v| *v = T::ONE);
        let mask = tape.constant(Tensor::from_vec(&[rows.len()], mask)?);
        picked = tape.mul(picked, mask)?;
    }
    let logit_values = tape.value(logits).data().to_vec();
    let total = tape.sum(picked)?;
    let grads = tape.backward(total)?;
    let signal = grads
        .get(x)
        .map(|g| g.data()[..keep].to_vec())
        .unwrap_or_else(|| vec![T::ZERO; keep]);
    Ok((signal, logit_values))
}
