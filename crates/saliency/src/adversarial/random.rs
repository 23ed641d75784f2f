//! Random controls: the study's uniform noise a + 0.1 n / max(n), and noise matched in size to the
//! attacks (random signs of size eps, a random direction of a given L2 norm).
//!
//! Image i of a data set draws from its own ChaCha8 stream seeded by (seed, control, i), so the
//! noise does not depend on batching or on the number of threads.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tensor::Tensor;

use super::check::{check_epsilon, per_image};
use super::step::apply_delta;
use super::AdversarialError;
use crate::models::mix_seed;

/// The study's size of the uniform-noise control.
pub const STUDY_RANDOM_EPSILON: f64 = 0.1;

/// Separate streams for the three controls, so the same seed gives unrelated noise.
const SALT_UNIFORM: u64 = 0x0A11;
const SALT_SIGN: u64 = 0x0A12;
const SALT_DIRECTION: u64 = 0x0A13;
/// The random start of projected gradient descent.
pub(crate) const SALT_PGD_START: u64 = 0x0A14;

/// The generator of image `image` for one control.
pub(crate) fn image_rng(seed: u64, salt: u64, image: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix_seed(mix_seed(seed, salt), image as u64))
}

/// A draw in [0, 1) with 24 random bits (every such f32 is exact).
fn unit_f32(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32
}

/// A draw in [0, 1) with 53 random bits.
pub(crate) fn unit_f64(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// One standard normal draw (Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]).
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - unit_f64(rng);
    let u2 = unit_f64(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Fills one delta per image, image i (counted from `first_image`) from its own stream.
fn per_image_delta(
    inputs: &Tensor<f32>,
    seed: u64,
    salt: u64,
    first_image: usize,
    fill: impl Fn(usize, &mut ChaCha8Rng, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut delta = vec![0.0f32; inputs.numel()];
    delta
        .par_chunks_mut(per_image(inputs))
        .enumerate()
        .for_each(|(i, d)| {
            let mut rng = image_rng(seed, salt, first_image + i);
            fill(i, &mut rng, d);
        });
    delta
}

/// The study's random control: a' = a + eps * n / max(n) with n ~ U[0, 1) per element, so each
/// image gets non-negative noise whose largest element is exactly eps (the study: eps = 0.1).
/// Clamped to [0, 1] when `clip`.
pub fn uniform_noise(
    inputs: &Tensor<f32>,
    eps: f64,
    seed: u64,
    clip: bool,
) -> Result<Tensor<f32>, AdversarialError> {
    check_epsilon("epsilon", eps)?;
    Ok(uniform_noise_from(inputs, eps, seed, clip, 0))
}

pub(crate) fn uniform_noise_from(
    inputs: &Tensor<f32>,
    eps: f64,
    seed: u64,
    clip: bool,
    first_image: usize,
) -> Tensor<f32> {
    let e = eps as f32;
    let delta = per_image_delta(inputs, seed, SALT_UNIFORM, first_image, |_, rng, d| {
        d.iter_mut().for_each(|v| *v = unit_f32(rng));
        let max = d.iter().copied().fold(0.0f32, f32::max);
        // max(n) = 0 only if every draw was 0 (odds 2^-24 per element): then there is no noise.
        if max > 0.0 {
            // n / max(n) is exactly 1 at the maximum, so that element gets exactly eps.
            d.iter_mut().for_each(|v| *v = e * (*v / max));
        } else {
            d.fill(0.0);
        }
    });
    apply_delta(inputs, &delta, clip)
}

/// The control matched to the fast gradient sign step: a' = a + eps * s with independent signs
/// s = +1 or -1 with equal odds (zero mean; the same L-infinity and L2 size as eps * sign(g) when
/// no gradient element is zero). Clamped to [0, 1] when `clip`.
pub fn sign_noise(
    inputs: &Tensor<f32>,
    eps: f64,
    seed: u64,
    clip: bool,
) -> Result<Tensor<f32>, AdversarialError> {
    check_epsilon("epsilon", eps)?;
    Ok(sign_noise_from(inputs, eps, seed, clip, 0))
}

pub(crate) fn sign_noise_from(
    inputs: &Tensor<f32>,
    eps: f64,
    seed: u64,
    clip: bool,
    first_image: usize,
) -> Tensor<f32> {
    let e = eps as f32;
    let delta = per_image_delta(inputs, seed, SALT_SIGN, first_image, |_, rng, d| {
        for v in d.iter_mut() {
            *v = if rng.next_u32() & 1 == 1 { e } else { -e };
        }
    });
    apply_delta(inputs, &delta, clip)
}

/// A uniformly random direction per image (a normalized Gaussian vector) scaled to the L2 norm
/// `norms[i]`: `a' = a + norms[i] * d / ||d||_2`. Given the norms of the normalized-gradient step
/// ([`super::normalized_step_norms`]) it is that attack's control; given eps for every image, the
/// L2 attack's. Clamped to [0, 1] when `clip`.
pub fn random_direction(
    inputs: &Tensor<f32>,
    norms: &[f64],
    seed: u64,
    clip: bool,
) -> Result<Tensor<f32>, AdversarialError> {
    random_direction_from(inputs, norms, seed, clip, 0)
}

pub(crate) fn random_direction_from(
    inputs: &Tensor<f32>,
    norms: &[f64],
    seed: u64,
    clip: bool,
    first_image: usize,
) -> Result<Tensor<f32>, AdversarialError> {
    let n = inputs.shape().first().copied().unwrap_or(0);
    if norms.len() != n {
        return Err(AdversarialError::Shape {
            what: "norms",
            expected: format!("{n} norms (one per image)"),
            found: format!("{} norms", norms.len()),
        });
    }
    for (i, &r) in norms.iter().enumerate() {
        check_epsilon(&format!("norms[{i}]"), r)?;
    }
    let delta = per_image_delta(inputs, seed, SALT_DIRECTION, first_image, |i, rng, d| {
        if norms[i] == 0.0 {
            return;
        }
        let draws: Vec<f64> = d.iter().map(|_| normal(rng)).collect();
        let length = draws.iter().map(|v| v * v).sum::<f64>().sqrt();
        if length > 0.0 {
            for (v, &z) in d.iter_mut().zip(&draws) {
                *v = (norms[i] * z / length) as f32;
            }
        }
    });
    Ok(apply_delta(inputs, &delta, clip))
}
