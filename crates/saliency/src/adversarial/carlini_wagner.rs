//! Carlini-Wagner L2 (Carlini and Wagner 2017): the smallest L2 perturbation found by
//! minimizing ||x' - a||_2^2 + c * max(Z_y(x') - max_{j != y} Z_j(x') + kappa, 0) with Adam in
//! tanh space, x' = (tanh(w) + 1) / 2 (always inside [0, 1]), and a binary search over c.

use rayon::prelude::*;
use tensor::Tensor;

use super::attack::{attack, AttackConfig};
use super::check::per_image;
use super::margin::margin_gradient;
use super::{AdversarialError, Method};
use crate::models::Model;

/// Settings of Carlini-Wagner L2.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CwConfig {
    /// Rounds of the binary search over c (the paper: 9; ours is lower for a CPU).
    pub binary_steps: usize,
    /// Adam steps per round (the paper: up to 10,000; ours is lower for a CPU).
    pub steps: usize,
    /// Adam's learning rate on w (the paper: 0.01).
    pub learning_rate: f64,
    /// The first c (the paper: 1e-3; ours starts higher to need fewer rounds).
    pub initial_c: f64,
    /// kappa: how far past the boundary the logit margin must go (the paper's default 0).
    pub confidence: f64,
}

impl Default for CwConfig {
    fn default() -> Self {
        CwConfig {
            binary_steps: 6,
            steps: 100,
            learning_rate: 0.01,
            initial_c: 0.1,
            confidence: 0.0,
        }
    }
}

/// Largest c the search tries before it gives an image up.
const C_CEILING: f64 = 1e10;

/// Carlini-Wagner L2 against each image's true label, with `config.cw`; an image's result is kept
/// only if its L2 distance to the input is at most `eps` (else the input is returned), as foolbox
/// reports minimal attacks. Nothing is random: the seed does not enter.
pub fn carlini_wagner_l2(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    attack(model, Method::CwL2, inputs, labels, eps, config)
}

/// tanh-space variable of a value in [0, 1]; the factor keeps atanh finite at 0 and 1.
fn to_w(a: f32) -> f64 {
    ((2.0 * a as f64 - 1.0) * 0.999_999).atanh()
}

/// The value of a tanh-space variable.
fn from_w(w: f64) -> f32 {
    ((w.tanh() + 1.0) / 2.0) as f32
}

/// The index of the largest logit other than `y`.
fn best_other(row: &[f32], y: usize) -> usize {
    let mut best = if y == 0 { 1 } else { 0 };
    for (j, &v) in row.iter().enumerate() {
        if j != y && v > row[best] {
            best = j;
        }
    }
    best
}

/// Carlini-Wagner without a budget: the smallest adversarial image found for each image (its
/// margin Z_y - max_{j != y} Z_j <= -kappa), or the input itself where none was found.
pub(crate) fn carlini_wagner_unbounded(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    let n = labels.len();
    let per = per_image(inputs);
    let cw = &config.cw;
    let kappa = cw.confidence;
    let a = inputs.data();
    let w0: Vec<f64> = a.iter().map(|&v| to_w(v)).collect();
    // Per image: search bounds, the current c, the best distance^2 and image so far.
    let mut lower = vec![0.0f64; n];
    let mut upper = vec![C_CEILING; n];
    let mut c = vec![cw.initial_c; n];
    let mut best_d2 = vec![f64::INFINITY; n];
    let mut best = a.to_vec();
    let (b1, b2, adam_eps) = (0.9f64, 0.999f64, 1e-8f64);
    for _ in 0..cw.binary_steps {
        let mut w = w0.clone();
        let (mut m, mut v) = (vec![0.0f64; w.len()], vec![0.0f64; w.len()]);
        let mut found = vec![false; n];
        for t in 1..=cw.steps {
            let xv: Vec<f32> = w.par_iter().map(|&wi| from_w(wi)).collect();
            let x = Tensor::from_vec(inputs.shape(), xv)?;
            // Gradient of Z_y - Z_j*, j* the strongest other class at this point.
            let (g, z) =
                margin_gradient(model, &x, &|i, row| (labels[i], best_other(row, labels[i])))?;
            let k = model.classes;
            // Record successes before the step: x is the point the logits belong to.
            for i in 0..n {
                let row = &z[i * k..(i + 1) * k];
                let margin = (row[labels[i]] - row[best_other(row, labels[i])]) as f64;
                if margin <= -kappa {
                    let d2: f64 = x.data()[i * per..(i + 1) * per]
                        .iter()
                        .zip(&a[i * per..(i + 1) * per])
                        .map(|(&p, &q)| (p as f64 - q as f64).powi(2))
                        .sum();
                    found[i] = true;
                    if d2 < best_d2[i] {
                        best_d2[i] = d2;
                        best[i * per..(i + 1) * per]
                            .copy_from_slice(&x.data()[i * per..(i + 1) * per]);
                    }
                }
            }
            let active: Vec<bool> = (0..n)
                .map(|i| {
                    let row = &z[i * k..(i + 1) * k];
                    (row[labels[i]] - row[best_other(row, labels[i])]) as f64 > -kappa
                })
                .collect();
            let lr = cw.learning_rate;
            let (bc1, bc2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
            w.par_chunks_mut(per)
                .zip(m.par_chunks_mut(per))
                .zip(v.par_chunks_mut(per))
                .enumerate()
                .for_each(|(i, ((wi, mi), vi))| {
                    let gi = &g.data()[i * per..(i + 1) * per];
                    let ai = &a[i * per..(i + 1) * per];
                    for e in 0..per {
                        let tanh = wi[e].tanh();
                        let xe = (tanh + 1.0) / 2.0;
                        // d/dx of ||x - a||^2 + c max(margin + kappa, 0), times dx/dw.
                        let mut dx = 2.0 * (xe - ai[e] as f64);
                        if active[i] {
                            dx += c[i] * gi[e] as f64;
                        }
                        let grad = dx * (1.0 - tanh * tanh) / 2.0;
                        mi[e] = b1 * mi[e] + (1.0 - b1) * grad;
                        vi[e] = b2 * vi[e] + (1.0 - b2) * grad * grad;
                        wi[e] -= lr * (mi[e] / bc1) / ((vi[e] / bc2).sqrt() + adam_eps);
                    }
                });
        }
        for i in 0..n {
            if found[i] {
                upper[i] = upper[i].min(c[i]);
                c[i] = (lower[i] + upper[i]) / 2.0;
            } else {
                lower[i] = lower[i].max(c[i]);
                c[i] = if upper[i] < C_CEILING {
                    (lower[i] + upper[i]) / 2.0
                } else {
                    c[i] * 10.0
                };
            }
        }
    }
    Ok(Tensor::from_vec(inputs.shape(), best)?)
}
