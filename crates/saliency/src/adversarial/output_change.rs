//! How much an attack moves a model's output: the study's "for an untrained model the output
//! barely changes at eps 0.01", measured on trained and untrained networks alike.

use tensor::Tensor;

use super::{attack, AdversarialError, AttackConfig, Method};
use crate::infer::{argmax_rows, predict_probs};
use crate::models::Model;

/// The change of a model's softmax output under one attack.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutputChange {
    /// The attack's CLI name.
    pub method: String,
    /// Its step size.
    pub epsilon: f64,
    /// Images attacked.
    pub n: usize,
    /// Share of images whose predicted class changed.
    pub flipped_fraction: f64,
    /// Mean over images of |p_after(c) - p_before(c)|, c the class predicted before the attack.
    pub mean_abs_delta_p: f64,
}

/// Attacks `inputs` (N, C, H, W) with their `labels` and measures the output's change.
pub fn output_change(
    model: &Model<f32>,
    method: Method,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<OutputChange, AdversarialError> {
    let k = model.classes;
    let before = predict_probs(model, inputs.data(), 256)?;
    let perturbed = attack(model, method, inputs, labels, eps, config)?;
    let after = predict_probs(model, perturbed.data(), 256)?;
    let (pb, pa) = (argmax_rows(&before, k), argmax_rows(&after, k));
    let n = labels.len();
    let flipped = pb.iter().zip(&pa).filter(|(b, a)| b != a).count();
    let delta: f64 = pb
        .iter()
        .enumerate()
        .map(|(i, &c)| f64::from((after[i * k + c] - before[i * k + c]).abs()))
        .sum();
    Ok(OutputChange {
        method: method.name().into(),
        epsilon: eps,
        n,
        flipped_fraction: flipped as f64 / n.max(1) as f64,
        mean_abs_delta_p: delta / n.max(1) as f64,
    })
}
