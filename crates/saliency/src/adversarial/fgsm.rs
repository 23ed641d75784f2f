//! Fast gradient sign: a' = a + eps * sign(g), and its iterated form (k steps of eps / k).

use tensor::Tensor;

use super::attack::{attack, AttackConfig};
use super::check::{check_epsilon, check_same_shape};
use super::gradient::loss_gradient_and_values;
use super::step::apply_delta;
use super::{AdversarialError, Method};
use crate::models::Model;

/// sign(v) with sign(0) = 0 (`f32::signum` gives 1 for +0, which would move pixels whose
/// gradient is exactly zero, e.g. behind a dead ReLU). NaN also gives 0.
pub fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// One sign step on given gradients: a' = a + eps * sign(g), clamped to [0, 1] when `clip`.
/// Every element with g != 0 moves by exactly eps (rounded to f32) before clipping; elements with
/// g = 0 keep their bits.
pub fn sign_step(
    inputs: &Tensor<f32>,
    grad: &Tensor<f32>,
    eps: f64,
    clip: bool,
) -> Result<Tensor<f32>, AdversarialError> {
    check_epsilon("epsilon", eps)?;
    sign_step_signed(inputs, grad, eps, clip)
}

/// a' = a + eps * sign(g) for an eps of either sign (a negative eps steps down the gradient,
/// as the targeted attacks do).
pub(crate) fn sign_step_signed(
    inputs: &Tensor<f32>,
    grad: &Tensor<f32>,
    eps: f64,
    clip: bool,
) -> Result<Tensor<f32>, AdversarialError> {
    check_same_shape("gradient", inputs, grad)?;
    let e = eps as f32;
    let delta: Vec<f32> = grad.data().iter().map(|&g| e * sign(g)).collect();
    Ok(apply_delta(inputs, &delta, clip))
}

/// The study's fast gradient sign attack: a' = a + eps * sign(dJ(O(a), y)/da).
/// Its default eps is 0.01; the study does not clip (`config.clip`).
pub fn fgsm(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    attack(model, Method::Fgsm, inputs, labels, eps, config)
}

/// The iterated form: `config.steps` = k steps a <- a + (eps / k) * sign(g(a)), the gradient
/// retaken at each step, clipped after each step when `config.clip`. With k = 1 this is exactly
/// [`fgsm`]. Without clipping no element moves by more than eps in total (k steps of eps / k).
pub fn iterative_fgsm(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    attack(model, Method::IterativeFgsm, inputs, labels, eps, config)
}

/// The loop behind [`iterative_fgsm`]; arguments are assumed checked.
pub(crate) fn iterate_sign_steps(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    let k = config.steps.max(1);
    // The step is rounded to f32 once, so k = 1 gives the same bits as the single step.
    let step = eps / k as f64;
    let mut x = inputs.clone();
    if eps == 0.0 {
        // Every step would be zero: skip the k gradient passes.
        return Ok(apply_delta(&x, &vec![0.0; x.numel()], config.clip));
    }
    for _ in 0..k {
        let (g, _) = loss_gradient_and_values(model, &x, labels, config.loss, config.batch)?;
        x = sign_step(&x, &g, step, config.clip)?;
    }
    Ok(x)
}
