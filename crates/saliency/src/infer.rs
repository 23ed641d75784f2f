//! Inference and input gradients: batched forward passes in evaluation mode.

use tape::{NodeId, Tape};
use tensor::{Float, Tensor};

use crate::loss::{summed_loss, LossKind};
use crate::models::{Mode, Model, ModelError};
use crate::shards;

/// Softmax probabilities (N, classes) of `inputs` (N, C, H, W), in evaluation mode on a
/// no-record tape, `batch` images at a time (memory stays bounded for any N). Each thread's
/// shard of a batch passes through the whole network in chunks small enough that a layer's
/// output is still in cache when the next layer reads it ([`shards::cache_chunks`]). The chunks
/// depend only on the model and the batch, so the result is the same on any thread count.
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
        let shards = in_shards(end - start, |range| {
            let mut tape = SpareTape::take(false);
            let params = model.bind(&mut tape, false);
            let mut all = Vec::with_capacity(range.len() * model.classes);
            for chunk in shards::cache_chunks(model, range, false) {
                let (clo, chi) = (chunk.start, chunk.end);
                let (lo, hi) = (start + clo, start + chi);
                tape.rewind(params.len())?;
                let x = tape.constant(
                    Tensor::from_vec(
                        &[hi - lo, model.input[0], model.input[1], model.input[2]],
                        inputs[lo * per..hi * per].to_vec(),
                    )
                    .map_err(tape::TapeError::from)?,
                );
                let (logits, _) = model.forward(&mut tape, x, &params, Mode::Eval)?;
                let p = tape.softmax(logits)?;
                all.extend_from_slice(tape.value(p).data());
            }
            SpareTape::give_back(tape);
            Ok(all)
        })?;
        for probs in shards {
            out.extend_from_slice(&probs);
        }
    }
    Ok(out)
}

/// A per-thread spare tape, so repeated passes (attribution over many batches, an attack's
/// predictions and gradients, a benchmark loop) reuse the kernels' scratch space and buffers
/// instead of allocating and zeroing them for every batch. One tape per element type serves
/// both kinds of pass ([`Tape::restart`]): an inference pass keeps its released activations
/// in the pool for the next pass, and a second spare of the other kind would hold a second
/// copy of them. Only scratch and capacity carry over: a taken tape is cleared, and every
/// kernel writes its buffers before reading them.
pub(crate) struct SpareTape;

thread_local! {
    /// Spare tapes by element type.
    static SPARE_TAPES: std::cell::RefCell<Vec<Box<dyn std::any::Any>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl SpareTape {
    /// This thread's spare tape, cleared and set recording or not, or a new one.
    pub(crate) fn take<T: Float>(recording: bool) -> Tape<T> {
        let spare = SPARE_TAPES.with(|spares| {
            let mut spares = spares.borrow_mut();
            let at = spares.iter().position(|t| t.is::<Tape<T>>())?;
            spares.swap_remove(at).downcast::<Tape<T>>().ok()
        });
        match spare {
            Some(mut tape) => {
                tape.restart(recording);
                *tape
            }
            None if recording => Tape::new(),
            None => Tape::no_record(),
        }
    }

    /// Keeps `tape` (its values dropped, its rules back to plain gradients) as this thread's
    /// spare, unless the thread already has one of its element type.
    pub(crate) fn give_back<T: Float>(mut tape: Tape<T>) {
        tape.clear();
        tape.set_rules(tape::RuleSet::gradient());
        SPARE_TAPES.with(|spares| {
            let mut spares = spares.borrow_mut();
            if !spares.iter().any(|t| t.is::<Tape<T>>()) {
                spares.push(Box::new(tape));
            }
        });
    }
}

/// Runs `f` on the shards of a batch of `n` images ([`shards::ranges`]) in parallel and returns
/// the results in range order.
///
/// In evaluation mode images pass through the network independently (batch norm uses its
/// running statistics, dropout is off), so a shard computes exactly its images' rows of the
/// whole batch's result; each shard's layers then run on one core without waiting for the
/// other's, which is what small batches need.
fn in_shards<R: Send>(
    n: usize,
    f: impl Fn(std::ops::Range<usize>) -> Result<R, ModelError> + Sync,
) -> Result<Vec<R>, ModelError> {
    use rayon::prelude::*;
    shards::ranges(n).into_par_iter().map(&f).collect()
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
    let n = inputs.shape().first().copied().unwrap_or(0);
    // A per-example list of the wrong length is reported by the one-tape pass.
    let sized = match objective {
        Objective::TopProbability => true,
        Objective::Probability(c) | Objective::Logit(c) => c.len() == n,
        Objective::Loss { labels, .. } => labels.len() == n,
    };
    if !sized {
        return shard_input_gradients(model, inputs, objective);
    }
    let parts = in_shards(n, |range| {
        let mut tape = SpareTape::take(true);
        let params = model.bind(&mut tape, false);
        let mut grad = Vec::with_capacity(range.len() * inputs.numel() / n.max(1));
        let mut values = Vec::with_capacity(range.len());
        // On an error the tape is dropped rather than given back, as in `predict_probs`.
        for chunk in shards::cache_chunks(model, range, true) {
            let images = shards::slice_images(inputs, chunk.clone());
            tape.rewind(params.len())?;
            let (g, v) =
                record_input_gradients(model, &mut tape, &params, images, &objective.rows(chunk))?;
            grad.extend_from_slice(g.data());
            values.extend(v);
        }
        SpareTape::give_back(tape);
        Ok((grad, values))
    })?;
    let mut grad = Vec::with_capacity(inputs.numel());
    let mut values = Vec::with_capacity(n);
    for (g, v) in parts {
        grad.extend_from_slice(&g);
        values.extend(v);
    }
    let grad = Tensor::from_vec(inputs.shape(), grad).map_err(tape::TapeError::from)?;
    Ok((grad, values))
}

impl Objective {
    /// The objective of examples `range` only.
    fn rows(&self, range: std::ops::Range<usize>) -> Self {
        match self {
            Self::TopProbability => Self::TopProbability,
            Self::Probability(c) => Self::Probability(c[range].to_vec()),
            Self::Logit(c) => Self::Logit(c[range].to_vec()),
            Self::Loss { labels, kind } => Self::Loss {
                labels: labels[range].to_vec(),
                kind: *kind,
            },
        }
    }
}

/// [`input_gradients`] of one shard, on one tape.
fn shard_input_gradients<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    objective: &Objective,
) -> Result<(Tensor<T>, Vec<T>), ModelError> {
    let mut tape = SpareTape::take(true);
    let params = model.bind(&mut tape, false);
    let result = record_input_gradients(model, &mut tape, &params, inputs.clone(), objective);
    SpareTape::give_back(tape);
    result
}

/// The body of [`shard_input_gradients`], on a recording `tape` that holds only the model's
/// parameters, `params`.
fn record_input_gradients<T: Float>(
    model: &Model<T>,
    tape: &mut Tape<T>,
    params: &[NodeId],
    inputs: Tensor<T>,
    objective: &Objective,
) -> Result<(Tensor<T>, Vec<T>), ModelError> {
    let shape = inputs.shape().to_vec();
    let x = tape.variable(inputs);
    let (logits, _) = model.forward(tape, x, params, Mode::Eval)?;
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
            let total = summed_loss(tape, logits, labels, *kind)?;
            let grads = tape.backward(total)?;
            let g = grads.get_or_zeros(x, &shape);
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
    Ok((grads.get_or_zeros(x, &shape), values))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{alexnet, deep};
    use tensor::testing::in_pool;

    fn images(n: usize) -> Tensor<f32> {
        let data = (0..n * 784)
            .map(|i| ((i as f32 * 0.377).fract() * 1.2).min(1.0))
            .collect();
        Tensor::from_vec(&[n, 1, 28, 28], data).unwrap()
    }

    #[test]
    fn shards_give_each_image_its_one_pass_result_on_any_thread_count() {
        // deep (no batch norm) and alexnet (batch norm and dropout, inert in evaluation mode)
        let models = [
            deep::<f32>([1, 28, 28], 10, 1).unwrap(),
            alexnet::<f32>([1, 28, 28], 10, 2).unwrap(),
        ];
        let n = 9; // shards of 4 and 5
        let x = images(n);
        let classes: Vec<usize> = (0..n).map(|i| (3 * i) % 10).collect();
        let objectives = [
            Objective::TopProbability,
            Objective::Probability(classes.clone()),
            Objective::Logit(classes.clone()),
            Objective::Loss {
                labels: classes.clone(),
                kind: LossKind::CrossEntropy,
            },
        ];
        for model in &models {
            for objective in &objectives {
                let (want_g, want_v) = shard_input_gradients(model, &x, objective).unwrap();
                let (g, v) = in_pool(1, || input_gradients(model, &x, objective).unwrap());
                let scale = want_g.data().iter().fold(1e-12f32, |m, v| m.max(v.abs()));
                let gap = g
                    .data()
                    .iter()
                    .zip(want_g.data())
                    .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    gap <= 1e-5 * scale,
                    "{:?} {objective:?}: gap {gap}",
                    model.kind
                );
                for (a, b) in v.iter().zip(&want_v) {
                    assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{a} vs {b}");
                }
                for threads in [2, 3] {
                    let (g2, v2) =
                        in_pool(threads, || input_gradients(model, &x, objective).unwrap());
                    assert!(
                        g2.data() == g.data() && v2 == v,
                        "1 and {threads} threads differ"
                    );
                }
            }
            // predict_probs: every row is a distribution, the same on any thread count
            let probs = in_pool(1, || predict_probs(model, x.data(), 1000).unwrap());
            assert_eq!(probs.len(), n * 10);
            for row in probs.chunks_exact(10) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
            let by_one = predict_probs(model, x.data(), 1).unwrap();
            for (a, b) in probs.iter().zip(&by_one) {
                assert!(
                    (a - b).abs() <= 1e-6,
                    "batch of {n} vs one at a time: {a} vs {b}"
                );
            }
            let probs2 = in_pool(2, || predict_probs(model, x.data(), 1000).unwrap());
            assert_eq!(probs2, probs);
        }
    }

    #[test]
    fn a_class_list_of_the_wrong_length_is_an_error_not_a_panic() {
        let model = deep::<f32>([1, 28, 28], 10, 1).unwrap();
        let x = images(12);
        let err = input_gradients(&model, &x, &Objective::Probability(vec![1; 5]));
        assert!(err.is_err());
    }
}
