//! The backward signal at the input under a rule set (tape::RuleSet): what the rule-based
//! methods (guided backpropagation, deconvnet, LRP, DeepLIFT) multiply or report.

use tape::{RuleSet, Tape};
use tensor::{Float, Tensor};

use super::{default_batch, AttributionError};
use crate::models::{Mode, Model};
use crate::shards::slice_images;

/// The signal reaching each input when backward starts from 1 at the logit of `classes[n]` for
/// image n, every op passing it back by `rules`. With `references` (N, C, H, W), each pass holds
/// a chunk of inputs followed by their references, as DeepLIFT's rescale rule needs, and only
/// the inputs' logits are seeded.
///
/// The caller has checked the inputs, classes and references. Chunks of [`default_batch`]
/// images (half that with references) bound the recorded activations.
pub(crate) fn rule_signal<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    rules: RuleSet,
    references: Option<&Tensor<T>>,
) -> Result<Tensor<T>, AttributionError> {
    let n = inputs.shape()[0];
    let per = inputs.numel() / n;
    let batch = match references {
        Some(_) => (default_batch(model.input) / 2).max(1),
        None => default_batch(model.input),
    };
    let mut out = Vec::with_capacity(inputs.numel());
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let m = end - start;
        let mut chunk = slice_images(inputs, start..end);
        let mut rows = classes[start..end].to_vec();
        if let Some(r) = references {
            let mut data = chunk.into_vec();
            data.extend_from_slice(&r.data()[start * per..end * per]);
            let mut shape = inputs.shape().to_vec();
            shape[0] = 2 * m;
            chunk = Tensor::from_vec(&shape, data)?;
            rows.extend_from_slice(&classes[start..end]);
        }
        let mut tape = Tape::with_rules(rules);
        let params = model.bind(&mut tape, false);
        let x = tape.variable(chunk);
        let (logits, _) = model.forward(&mut tape, x, &params, Mode::Eval)?;
        let mut picked = tape.select(logits, &rows)?;
        if references.is_some() {
            // Seed the inputs' logits only: the references' rows get zero.
            let mut mask = vec![T::ZERO; 2 * m];
            mask[..m].iter_mut().for_each(|v| *v = T::ONE);
            let mask = tape.constant(Tensor::from_vec(&[2 * m], mask)?);
            picked = tape.mul(picked, mask)?;
        }
        let total = tape.sum(picked)?;
        let grads = tape.backward(total)?;
        let g = grads
            .get(x)
            .map(|g| g.data()[..m * per].to_vec())
            .unwrap_or_else(|| vec![T::ZERO; m * per]);
        out.extend_from_slice(&g);
    }
    Ok(Tensor::from_vec(inputs.shape(), out)?)
}
