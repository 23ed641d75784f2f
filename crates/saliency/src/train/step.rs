//! One minibatch's forward and backward pass, shared by the trainer and `saliency bench` so the
//! benchmark times exactly what training runs.

use tape::Tape;
use tensor::simd::SimdScalar;
use tensor::Tensor;

use crate::loss::{mean_loss, LossKind};
use std::ops::Range;

use rayon::prelude::*;

use crate::models::{Layer, Mode, Model, ModelError, RunningUpdate};
use crate::shards;

/// What one forward and backward pass produced.
pub struct StepOutput {
    /// Mean loss over the batch.
    pub loss: f32,
    /// Logits, (N, classes) row-major.
    pub logits: Vec<f32>,
    /// Gradient of the loss per parameter, in model order (zeros where the loss does not depend
    /// on one); `None` when the loss is not finite, in which case backward was skipped.
    pub grads: Option<Vec<Tensor<f32>>>,
    /// Batch-norm statistics to fold into the running ones after the update.
    pub updates: Vec<RunningUpdate<f32>>,
    /// The input batch, handed back (the trainer diagnoses a non-finite loss from it).
    pub images: Tensor<f32>,
}

/// The tapes one training step records on, kept between steps so their allocations are reused:
/// one per shard of the batch.
#[derive(Default)]
pub struct StepTapes {
    tapes: Vec<Tape<f32>>,
}

impl StepTapes {
    /// No tapes yet; they are created on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hands a step's gradients back once they are applied: their buffers go to the first
    /// tape's pool, where the next step's backward writes the same gradients again.
    pub fn recycle(&mut self, grads: Vec<Tensor<f32>>) {
        if let Some(tape) = self.tapes.first_mut() {
            grads.into_iter().for_each(|g| tape.recycle(g));
        }
    }

    /// The first `n` tapes, creating any that are missing.
    fn take(&mut self, n: usize) -> &mut [Tape<f32>] {
        while self.tapes.len() < n {
            self.tapes.push(Tape::new());
        }
        &mut self.tapes[..n]
    }
}

/// The shards (image ranges, [`shards::ranges`]) `model` can split a batch of `n` images into
/// with the same result as one pass up to rounding: images pass through the network
/// independently unless a layer mixes them (batch norm's statistics) or draws per-position
/// randomness (dropout masks).
fn shard_ranges(model: &Model<f32>, n: usize) -> Vec<Range<usize>> {
    let independent = model
        .layers
        .iter()
        .all(|l| !matches!(l, Layer::BatchNorm { .. } | Layer::Dropout { .. }));
    if independent {
        shards::ranges(n)
    } else {
        vec![0..n]
    }
}

/// Runs `images` (N, C, H, W) with `labels` through `model` in `mode`, and differentiates the
/// mean `loss` with respect to every parameter.
///
/// For a network whose images pass through independently (`deep`), the batch is split into
/// contiguous shards (`shards::ranges`) recorded on their own tapes in parallel: each shard's layers
/// then run on one core without waiting for the other, which matters most for small batches.
/// The mean loss and the gradients are the shards' own, weighted by their share of the batch
/// and added in shard order.
///
/// The parameters are moved onto the first tape and shared with the others ([`Model::bind`]),
/// never copied, and always moved back and let go of before this returns, whether it succeeds
/// or not; the tapes are cleared first and keep their allocations.
pub fn forward_backward(
    model: &mut Model<f32>,
    tapes: &mut StepTapes,
    images: Tensor<f32>,
    labels: &[usize],
    mode: Mode,
    loss: LossKind,
) -> Result<StepOutput, ModelError> {
    let n = labels.len();
    // A batch whose shape disagrees with the labels goes to the one-tape pass, which reports it.
    let well_formed = images.shape().len() == 4 && images.shape()[0] == n;
    let ranges = if well_formed {
        shard_ranges(model, n)
    } else {
        vec![0..n]
    };
    let tapes = tapes.take(ranges.len());
    if ranges.len() == 1 {
        let tape = &mut tapes[0];
        tape.clear();
        let params = model.lend(tape);
        let x = tape.constant(images);
        let result = record_and_differentiate(model, tape, x, &params, labels, mode, loss);
        model.take_back(tape, &params);
        let (loss, logits, grads, updates) = result?;
        let images = tape
            .take_value(x)
            .expect("the input is a leaf and is never released");
        return Ok(StepOutput {
            loss,
            logits,
            grads,
            updates,
            images,
        });
    }

    let mut ids = Vec::with_capacity(ranges.len());
    for (s, (tape, range)) in tapes.iter_mut().zip(&ranges).enumerate() {
        tape.clear();
        let params = if s == 0 {
            Vec::new() // lent below, once the other tapes hold their shares
        } else {
            model.bind(tape, true)
        };
        ids.push((
            params,
            tape.constant(shards::slice_images(&images, range.clone())),
        ));
    }
    ids[0].0 = model.lend(&mut tapes[0]);
    let shared: &Model<f32> = model;
    let results: Vec<_> = tapes
        .par_iter_mut()
        .zip(&ids)
        .enumerate()
        .map(|(s, (tape, (params, x)))| {
            let shard_labels = &labels[ranges[s].clone()];
            record_and_differentiate(shared, tape, *x, params, shard_labels, mode, loss)
        })
        .collect();
    model.take_back(&mut tapes[0], &ids[0].0);
    // The update writes the parameters next: a share still on a tape would make it copy them.
    for (tape, (params, _)) in tapes.iter_mut().zip(&ids).skip(1) {
        for &p in params {
            drop(tape.take_value(p));
        }
    }

    let (mut total_loss, mut logits, mut shard_grads, mut updates) =
        (0.0f32, Vec::new(), Vec::new(), Vec::new());
    let mut weights = Vec::with_capacity(ranges.len());
    for (s, result) in results.into_iter().enumerate() {
        let (shard_loss, shard_logits, grads, shard_updates) = result?;
        let weight = ranges[s].len() as f32 / n as f32;
        total_loss += weight * shard_loss;
        logits.extend(shard_logits);
        updates.extend(shard_updates);
        shard_grads.push(grads);
        weights.push(weight);
    }
    // Any shard with a non-finite loss skipped its backward, and so does the batch.
    let grads = shard_grads
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .map(|shards| {
            let (total, spent) = weighted_sum(shards, &weights);
            // the other shards' gradients, added in, go back to their own tapes' pools
            for (tape, grads) in tapes[1..].iter_mut().zip(spent) {
                grads.into_iter().for_each(|g| tape.recycle(g));
            }
            total
        });
    Ok(StepOutput {
        loss: total_loss,
        logits,
        grads,
        updates,
        images,
    })
}

/// `sum over s of weights[s] * shards[s]`, per parameter, written into the first shard's
/// tensors, returned with the other shards' (spent) tensors. Each element is `w0 * g0`, then
/// `+ w1 * g1` and so on in shard order, whatever the thread count: the threads split the
/// elements, never a sum. The SIMD kernels round each product and each sum as these scalar
/// expressions do.
#[allow(clippy::type_complexity)]
fn weighted_sum(
    mut shards: Vec<Vec<Tensor<f32>>>,
    weights: &[f32],
) -> (Vec<Tensor<f32>>, Vec<Vec<Tensor<f32>>>) {
    let rest = shards.split_off(1);
    let mut total = shards.pop().expect("at least one shard");
    let mut tasks = Vec::new();
    for (i, t) in total.iter_mut().enumerate() {
        for (c, chunk) in t.data_mut().chunks_mut(SUM_CHUNK).enumerate() {
            tasks.push((i, c * SUM_CHUNK, chunk));
        }
    }
    tasks.into_par_iter().for_each(|(i, start, chunk)| {
        f32::vscale(weights[0], chunk);
        for (part, &w) in rest.iter().zip(&weights[1..]) {
            f32::vaxpy(w, &part[i].data()[start..start + chunk.len()], chunk);
        }
    });
    (total, rest)
}

/// Elements per parallel task of [`weighted_sum`]: deep's gradients are a few dozen tensors
/// of at most 37k values, so they split by tensor, and alexnet's large ones by chunk.
const SUM_CHUNK: usize = 1 << 16;

/// The part of [`forward_backward`] that may fail while the parameters sit on the tape.
#[allow(clippy::type_complexity)]
fn record_and_differentiate(
    model: &Model<f32>,
    tape: &mut Tape<f32>,
    x: tape::NodeId,
    params: &[tape::NodeId],
    labels: &[usize],
    mode: Mode,
    kind: LossKind,
) -> Result<
    (
        f32,
        Vec<f32>,
        Option<Vec<Tensor<f32>>>,
        Vec<RunningUpdate<f32>>,
    ),
    ModelError,
> {
    let (logits, updates) = model.forward(tape, x, params, mode)?;
    let loss = mean_loss(tape, logits, labels, kind)?;
    let loss_value = tape.value(loss).data()[0];
    let logit_values = tape.value(logits).data().to_vec();
    if !loss_value.is_finite() {
        return Ok((loss_value, logit_values, None, updates));
    }
    let mut grads = tape.backward(loss)?;
    let grads = params
        .iter()
        .map(|&p| {
            // Taken, not cloned: alexnet's gradients are 40 MB per step.
            grads
                .take(p)
                .unwrap_or_else(|| Tensor::zeros(tape.value(p).shape()))
        })
        .collect();
    Ok((loss_value, logit_values, Some(grads), updates))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::deep;
    use tensor::testing::in_pool;

    /// The one-tape pass, without sharding.
    fn unsharded(
        model: &mut Model<f32>,
        images: &Tensor<f32>,
        labels: &[usize],
    ) -> (f32, Vec<f32>, Vec<Tensor<f32>>) {
        let mut tape = Tape::new();
        let params = model.lend(&mut tape);
        let x = tape.constant(images.clone());
        let mode = Mode::Train { seed: 3 };
        let result = record_and_differentiate(
            model,
            &mut tape,
            x,
            &params,
            labels,
            mode,
            LossKind::CrossEntropy,
        );
        model.take_back(&mut tape, &params);
        let (loss, logits, grads, _) = result.unwrap();
        (loss, logits, grads.unwrap())
    }

    fn batch(n: usize) -> (Tensor<f32>, Vec<usize>) {
        let data = (0..n * 784)
            .map(|i| ((i as f32 * 0.618).fract() * 1.3).min(1.0))
            .collect();
        let labels = (0..n).map(|i| (i * 7) % 10).collect();
        (Tensor::from_vec(&[n, 1, 28, 28], data).unwrap(), labels)
    }

    fn max_relative_gap(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        a.iter()
            .zip(b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
            / scale
    }

    #[test]
    fn a_batch_that_disagrees_with_its_labels_is_an_error_not_a_panic() {
        let mut model = deep::<f32>([1, 28, 28], 10, 5).unwrap();
        let (images, labels) = batch(8);
        let mut tapes = StepTapes::new();
        let mode = Mode::Train { seed: 3 };
        let too_many = [labels.clone(), labels.clone()].concat();
        let result = forward_backward(
            &mut model,
            &mut tapes,
            images,
            &too_many,
            mode,
            LossKind::CrossEntropy,
        );
        assert!(result.is_err());
        let flat = Tensor::from_vec(&[8 * 784], vec![0.5; 8 * 784]).unwrap();
        let result = forward_backward(
            &mut model,
            &mut tapes,
            flat,
            &labels,
            mode,
            LossKind::CrossEntropy,
        );
        assert!(result.is_err());
        assert!(model.param_count() > 100_000, "the parameters came back");
    }

    /// After a step (two shards, one, or one that fails) no tape holds a share of a parameter,
    /// so the update writes each in place instead of copying it first.
    #[test]
    fn a_step_lets_go_of_the_parameters_before_the_update() {
        let mut model = deep::<f32>([1, 28, 28], 10, 5).unwrap();
        let mut tapes = StepTapes::new();
        let mode = Mode::Train { seed: 3 };
        for (n, labels_len) in [(8, 8), (2, 2), (8, 9)] {
            assert_eq!(shard_ranges(&model, n).len(), if n == 8 { 2 } else { 1 });
            let (images, labels) = batch(n);
            let labels: Vec<usize> = labels.iter().copied().cycle().take(labels_len).collect();
            let result = forward_backward(
                &mut model,
                &mut tapes,
                images,
                &labels,
                mode,
                LossKind::CrossEntropy,
            );
            assert_eq!(result.is_ok(), n == labels_len);
            for (i, p) in model.params.iter_mut().enumerate() {
                assert!(p.is_shared(), "parameter {i}");
                let at = p.data().as_ptr();
                p.data_mut()[0] += 0.0;
                assert_eq!(p.data().as_ptr(), at, "parameter {i} after {n} images");
            }
        }
    }

    #[test]
    fn shards_give_the_one_pass_result_up_to_rounding_for_any_thread_count() {
        let mut model = deep::<f32>([1, 28, 28], 10, 5).unwrap();
        // 9 images: unequal shards (4 and 5), so the weights are not exact halves
        for n in [8, 9] {
            let (images, labels) = batch(n);
            assert_eq!(shard_ranges(&model, n).len(), 2);
            let (want_loss, want_logits, want_grads) = unsharded(&mut model, &images, &labels);
            let run = |threads: usize, model: &mut Model<f32>| {
                in_pool(threads, || {
                    let mut tapes = StepTapes::new();
                    let mode = Mode::Train { seed: 3 };
                    forward_backward(
                        model,
                        &mut tapes,
                        images.clone(),
                        &labels,
                        mode,
                        LossKind::CrossEntropy,
                    )
                    .unwrap()
                })
            };
            let one = run(1, &mut model);
            assert!(
                (one.loss - want_loss).abs() <= 1e-6 * want_loss.abs(),
                "{} vs {want_loss}",
                one.loss
            );
            assert!(max_relative_gap(&one.logits, &want_logits) < 1e-5);
            let grads = one.grads.as_ref().unwrap();
            for (i, (g, want)) in grads.iter().zip(&want_grads).enumerate() {
                let gap = max_relative_gap(g.data(), want.data());
                assert!(gap < 1e-4, "n {n} parameter {i}: relative gap {gap}");
            }
            assert_eq!(one.images.data(), images.data(), "the batch is handed back");
            // the parameters went back to the model (a lent one would be empty)
            assert!(model.param_count() > 100_000);
            for threads in [2, 3] {
                let other = run(threads, &mut model);
                assert_eq!(other.loss.to_bits(), one.loss.to_bits());
                let same = other
                    .grads
                    .unwrap()
                    .iter()
                    .zip(grads)
                    .all(|(a, b)| a.data() == b.data());
                assert!(same, "n {n}: 1 and {threads} threads differ");
            }
        }
    }

    #[test]
    fn weighted_sum_adds_the_shards_in_order_bit_for_bit_on_any_thread_count() {
        // Three shards of two tensors, one longer than a task, with weights that round.
        let lens = [5, SUM_CHUNK + 3];
        let shard = |seed: u32| -> Vec<Tensor<f32>> {
            lens.iter()
                .map(|&len| {
                    let v = (0..len as u32)
                        .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 7.0 - 70.0)
                        .collect();
                    Tensor::from_vec(&[len], v).unwrap()
                })
                .collect()
        };
        let weights = [1.0f32 / 3.0, 0.5, 1.0 / 6.0];
        let expected: Vec<Vec<f32>> = (0..lens.len())
            .map(|i| {
                let parts: Vec<Vec<Tensor<f32>>> = (0..3).map(shard).collect();
                (0..lens[i])
                    .map(|j| {
                        let mut v = parts[0][i].data()[j] * weights[0];
                        for s in 1..3 {
                            v += weights[s] * parts[s][i].data()[j];
                        }
                        v
                    })
                    .collect()
            })
            .collect();
        for threads in [1, 2, 3] {
            let (total, spent) = in_pool(threads, || {
                weighted_sum((0..3).map(shard).collect(), &weights)
            });
            for (t, e) in total.iter().zip(&expected) {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(t.data()), bits(e), "{threads} threads");
            }
            assert_eq!(spent.len(), 2, "the other shards' tensors come back");
        }
    }
}
