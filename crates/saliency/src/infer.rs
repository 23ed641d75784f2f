//! Inference and input gradients: batched forward passes in evaluation mode.

use tape::{NodeId, Tape};
use tensor::{Float, Tensor};

use crate::loss::{summed_loss, LossKind};
use crate::models::{Mode, Model, ModelError};

/// Softmax probabilities (N, classes) of `inputs` (N, C, H, W), in evaluation mode on a
/// no-record tape, `batch` images at a time (memory stays bounded for any N).
pub fn predict_probs<T: Float>(
    model: &Model<T>,
    inputs: &[T],
    batch: usize,
) -> Result<Vec<T>, ModelError> {
    let per = model.input.iter().product::<usize>();
    let n = inputs.len() / per;
    let mut out = Vec::with_capacity(n * model.classes);
    for start in (0..n).step_by(batch.max(1)) {
        let end = (start + batch.max(1)).min(n);
        let mut tape = Tape::no_record();
        let params = model.bind(&mut tape, false);
        let x = tape.constant(
            Tensor::from_vec(
                &[end - start, model.input[0], model.input[1], model.input[2]],
                inputs[start * per..end * per].to_vec(),
            )
            .map_err(tape::TapeError::from)?,
        );
        let (logits, _) = model.forward(&mut tape, x, &params, Mode::Eval)?;
        let p = tape.softmax(logits)?;
        out.extend_from_slice(tape.value(p).data());
    }
    Ok(out)
}

/// Index of the largest probability in each row (first one on ties).
pub fn argmax_rows<T: Float>(probs: &[T], classes: usize) -> Vec<usize> {
    probs
        .chunks_exact(classes)
        .map(tape::ops::max_row::argmax_first)
        .collect()
}

/// What to differentiate with respect to the input, per example.
#[derive(Clone, Debug, PartialEq)]
pub enum Objective {
    /// The largest softmax probability, max_k p_k (the study's gradient x input).
    TopProbability,
    /// The softmax probability of a given class per example.
    Probability(Vec<usize>),
    /// The logit of a given class per example.
    Logit(Vec<usize>),
    /// The training loss J(O(a), y) per example.
    Loss { labels: Vec<usize>, kind: LossKind },
}

/// The gradient of `objective` with respect to each input (same shape as `inputs`), and the
/// per-example objective values. Evaluation mode; parameters are constants on the tape.
pub fn input_gradients<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    objective: &Objective,
) -> Result<(Tensor<T>, Vec<T>), ModelError> {
    let mut tape = Tape::new();
    let params = model.bind(&mut tape, false);
    let x = tape.variable(inputs.clone());
    let (logits, _) = model.forward(&mut tape, x, &params, Mode::Eval)?;
    let per_example: NodeId = match objective {
        Objective::TopProbability => {
            let p = tape.softmax(logits)?;
            tape.max_row(p)?
        }
        Objective::Probability(classes) => {
            let p = tape.softmax(logits)?;
            tape.select(p, classes)?
        }
        Objective::Logit(classes) => tape.select(logits, classes)?,
        Objective::Loss { labels, kind } => {
            // Summed per-example losses: each input's gradient is its own loss gradient.
            let total = summed_loss(&mut tape, logits, labels, *kind)?;
            let grads = tape.backward(total)?;
            let g = grads.get_or_zeros(x, inputs.shape());
            // Per-example values for reporting: -log p_y recomputed from the logits.
            let lv = tape.value(logits).data().to_vec();
            let k = model.classes;
            let values = lv
                .chunks_exact(k)
                .zip(labels)
                .map(|(row, &y)| per_example_loss(row, y, *kind))
                .collect();
            return Ok((g, values));
        }
    };
    let values = tape.value(per_example).data().to_vec();
    let total = tape.sum(per_example)?;
    let grads = tape.backward(total)?;
    Ok((grads.get_or_zeros(x, inputs.shape()), values))
}

/// The loss of one row of logits against label `y`.
fn per_example_loss<T: Float>(row: &[T], y: usize, kind: LossKind) -> T {
    let softmax = |r: &[T]| -> Vec<T> {
        let mut o = vec![T::ZERO; r.len()];
        let max = r.iter().copied().fold(r[0], T::max);
        let mut s = T::ZERO;
        for (oi, &v) in o.iter_mut().zip(r) {
            *oi = (v - max).exp();
            s += *oi;
        }
        o.iter_mut().for_each(|v| *v /= s);
        o
    };
    let input = match kind {
        LossKind::CrossEntropy => row.to_vec(),
        LossKind::DoubleSoftmax => softmax(row),
    };
    -softmax(&input)[y].ln()
}
