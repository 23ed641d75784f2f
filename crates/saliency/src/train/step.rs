//! One minibatch's forward and backward pass, shared by the trainer and `saliency bench` so the
//! benchmark times exactly what training runs.

use tape::Tape;
use tensor::Tensor;

use crate::loss::{mean_loss, LossKind};
use crate::models::{Mode, Model, ModelError, RunningUpdate};

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

/// Runs `images` (N, C, H, W) with `labels` through `model` in `mode`, and differentiates the
/// mean `loss` with respect to every parameter.
///
/// The parameters are moved onto `tape` rather than copied, and always moved back before this
/// returns, whether it succeeds or not; `tape` is cleared first and keeps its allocations.
pub fn forward_backward(
    model: &mut Model<f32>,
    tape: &mut Tape<f32>,
    images: Tensor<f32>,
    labels: &[usize],
    mode: Mode,
    loss: LossKind,
) -> Result<StepOutput, ModelError> {
    tape.clear();
    let params = model.lend(tape);
    let x = tape.constant(images);
    let result = record_and_differentiate(model, tape, x, &params, labels, mode, loss);
    model.take_back(tape, &params);
    let (loss, logits, grads, updates) = result?;
    let images = tape
        .take_value(x)
        .expect("the input is a leaf and is never released");
    Ok(StepOutput {
        loss,
        logits,
        grads,
        updates,
        images,
    })
}

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
