//! Gradient steps scaled by a norm of the gradient: the study's g / max(g), and the standard
//! L2 form eps * g / ||g||_2.

use rayon::prelude::*;
use tensor::Tensor;

use super::attack::{attack, AttackConfig};
use super::check::{check_epsilon, check_same_shape, per_image};
use super::step::apply_delta;
use super::{AdversarialError, Method};
use crate::models::Model;

/// Smallest L2 norm the L2 form divides by: a gradient this small (or zero) gives a step of at
/// most eps * ||g|| / 1e-12 rather than a division by zero, and a zero gradient gives no step.
pub const L2_FLOOR: f32 = 1e-12;

/// The signed maximum of one image's gradient, when it can be divided by: positive and finite.
///
/// The study divides by max(g), the largest element (not the largest magnitude). When every
/// element is <= 0 that maximum is zero (division by zero) or negative (the step would point
/// down the loss), so there is no sensible step and the image is left unchanged.
fn positive_max(g: &[f32]) -> Option<f32> {
    let m = g.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (m > 0.0 && m.is_finite()).then_some(m)
}

/// The study's normalized gradient step on given gradients: a' = a + eps * g / max(g) per image,
/// clamped to [0, 1] when `clip`.
///
/// The largest element of each image moves by exactly eps; elements with large negative
/// gradients can move by more than eps (the study's form divides by the signed maximum).
/// Images whose gradient has no positive element (including g = 0) are left unchanged.
pub fn normalized_gradient_step(
    inputs: &Tensor<f32>,
    grad: &Tensor<f32>,
    eps: f64,
    clip: bool,
) -> Result<Tensor<f32>, AdversarialError> {
    check_epsilon("epsilon", eps)?;
    check_same_shape("gradient", inputs, grad)?;
    let e = eps as f32;
    let mut delta = vec![0.0f32; grad.numel()];
    let per = per_image(grad);
    delta
        .par_chunks_mut(per)
        .zip(grad.data().par_chunks(per))
        .for_each(|(d, g)| {
            if let Some(m) = positive_max(g) {
                for (di, &gi) in d.iter_mut().zip(g) {
                    *di = e * (gi / m);
                }
            }
        });
    Ok(apply_delta(inputs, &delta, clip))
}

/// The standard L2 step on given gradients: a' = a + eps * g / max(||g||_2, [`L2_FLOOR`]) per
/// image, clamped to [0, 1] when `clip`. The step has L2 norm eps (before clipping) unless the
/// gradient is below the floor; a zero gradient changes nothing.
pub fn l2_gradient_step(
    inputs: &Tensor<f32>,
    grad: &Tensor<f32>,
    eps: f64,
    clip: bool,
) -> Result<Tensor<f32>, AdversarialError> {
    check_epsilon("epsilon", eps)?;
    check_same_shape("gradient", inputs, grad)?;
    let mut delta = vec![0.0f32; grad.numel()];
    let per = per_image(grad);
    delta
        .par_chunks_mut(per)
        .zip(grad.data().par_chunks(per))
        .for_each(|(d, g)| {
            let scale = (eps / l2_norm(g).max(L2_FLOOR as f64)) as f32;
            for (di, &gi) in d.iter_mut().zip(g) {
                *di = scale * gi;
            }
        });
    Ok(apply_delta(inputs, &delta, clip))
}

/// The L2 norm of the normalized-gradient step eps * g / max(g) of each image (0 where that step
/// is left out): the size the `random-direction` control is given.
pub fn normalized_step_norms(grad: &Tensor<f32>, eps: f64) -> Vec<f64> {
    grad.data()
        .par_chunks(per_image(grad))
        .map(|g| match positive_max(g) {
            Some(m) => eps * l2_norm(g) / m as f64,
            None => 0.0,
        })
        .collect()
}

/// ||g||_2 summed in f64, in index order.
pub(crate) fn l2_norm(g: &[f32]) -> f64 {
    g.iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt()
}

/// The study's normalized gradient attack: a' = a + eps * g / max(g), eps 0.15 by default.
pub fn normalized_gradient(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    attack(
        model,
        Method::NormalizedGradient,
        inputs,
        labels,
        eps,
        config,
    )
}

/// The standard L2 gradient attack: a' = a + eps * g / max(||g||_2, floor).
pub fn l2_gradient(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    attack(model, Method::L2Gradient, inputs, labels, eps, config)
}
