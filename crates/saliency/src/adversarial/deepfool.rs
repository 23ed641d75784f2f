//! DeepFool (Moosavi-Dezfooli et al. 2016): the smallest L2 step that crosses the nearest
//! decision boundary of the model linearized at the current point, repeated until the
//! predicted class changes.

use rayon::prelude::*;
use tensor::Tensor;

use super::attack::{attack, AttackConfig};
use super::check::per_image;
use super::margin::{logits, margin_gradient};
use super::normalized::l2_norm;
use super::{AdversarialError, Method};
use crate::infer::argmax_rows;
use crate::models::Model;

/// Settings of DeepFool.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DeepFoolConfig {
    /// Most linearization steps per image (the paper's code: 50).
    pub max_iter: usize,
    /// The accumulated step is applied as (1 + overshoot) r, so the point ends past the boundary
    /// rather than on it (the paper: 0.02). With 0, the first step on an affine classifier lands
    /// exactly on the boundary.
    pub overshoot: f64,
}

impl Default for DeepFoolConfig {
    fn default() -> Self {
        DeepFoolConfig {
            max_iter: 50,
            overshoot: 0.02,
        }
    }
}

/// DeepFool against each image's label, with `config.deepfool`, as foolbox runs it: an image
/// already misclassified is left as it is; the result keeps an image only if its perturbation's
/// L2 norm is at most `eps` (otherwise the clean image is returned: the attack failed within the
/// budget), as foolbox reports minimal attacks.
pub fn deepfool(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    attack(model, Method::DeepFool, inputs, labels, eps, config)
}

/// DeepFool without a budget: the adversarial point of every image (values clipped to [0, 1]
/// after each step). For an image predicted as its label o, each step linearizes
/// f'_k = Z_k - Z_o for every k != o at the current point x, picks
/// l = argmin_k |f'_k| / ||grad f'_k||_2 and adds r = |f'_l| / ||grad f'_l||_2^2 grad f'_l to the
/// accumulated step; x = a + (1 + overshoot) * sum r. Images stop once their class is no longer
/// o (misclassified images never start).
pub(crate) fn deepfool_unbounded(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    let n = inputs.shape()[0];
    let k = model.classes;
    let per = per_image(inputs);
    let settings = &config.deepfool;
    let original = labels;
    let predicted = argmax_rows(&logits(model, inputs)?, k);
    let mut total = vec![0.0f64; inputs.numel()];
    let mut x = inputs.clone();
    let mut active: Vec<usize> = (0..n).filter(|&i| predicted[i] == labels[i]).collect();
    for _ in 0..settings.max_iter {
        if active.is_empty() || k < 2 {
            break;
        }
        let xa = gather_images(&x, &active, per)?;
        // Gradients of Z_j - Z_o for every class j (j = o gives zero), with the logits.
        let mut grads = Vec::with_capacity(k);
        let mut z = Vec::new();
        for j in 0..k {
            let (g, zv) = margin_gradient(model, &xa, &|i, _| (j, original[active[i]]))?;
            grads.push(g);
            z = zv;
        }
        let now = argmax_rows(&z, k);
        let mut still = Vec::with_capacity(active.len());
        for (slot, &img) in active.iter().enumerate() {
            if now[slot] != original[img] {
                continue; // crossed: done
            }
            let o = original[img];
            let row = &z[slot * k..(slot + 1) * k];
            let mut best: Option<(f64, usize, f64)> = None; // (distance, class, ||w||^2)
            for j in (0..k).filter(|&j| j != o) {
                let w = &grads[j].data()[slot * per..(slot + 1) * per];
                let w2 = l2_norm(w).powi(2);
                if w2 <= 0.0 || !w2.is_finite() {
                    continue;
                }
                let f = (row[j] - row[o]) as f64;
                let distance = f.abs() / w2.sqrt();
                if best.is_none_or(|(d, _, _)| distance < d) {
                    best = Some((distance, j, w2));
                }
            }
            let Some((_, l, w2)) = best else {
                continue; // flat everywhere: no direction to go
            };
            let f = (row[l] - row[o]) as f64;
            let w = &grads[l].data()[slot * per..(slot + 1) * per];
            let scale = f.abs() / w2;
            let t = &mut total[img * per..(img + 1) * per];
            for (ti, &wi) in t.iter_mut().zip(w) {
                *ti += scale * wi as f64;
            }
            still.push(img);
        }
        // Every image moved this round gets x = clip(a + (1 + overshoot) * total).
        let factor = 1.0 + settings.overshoot;
        let a = inputs.data();
        x.data_mut()
            .par_chunks_mut(per)
            .zip(total.par_chunks(per))
            .zip(a.par_chunks(per))
            .for_each(|((xi, ti), ai)| {
                for ((v, &t), &av) in xi.iter_mut().zip(ti).zip(ai) {
                    if t != 0.0 {
                        *v = ((av as f64 + factor * t) as f32).clamp(0.0, 1.0);
                    }
                }
            });
        active = still;
    }
    Ok(x)
}

/// The images `which` of a batch, as a batch.
pub(crate) fn gather_images(
    x: &Tensor<f32>,
    which: &[usize],
    per: usize,
) -> Result<Tensor<f32>, AdversarialError> {
    let mut data = Vec::with_capacity(which.len() * per);
    for &i in which {
        data.extend_from_slice(&x.data()[i * per..(i + 1) * per]);
    }
    let mut shape = x.shape().to_vec();
    shape[0] = which.len();
    Ok(Tensor::from_vec(&shape, data)?)
}

/// Keeps each adversarial image whose L2 distance to its input is at most `eps` and returns the
/// input for the others: a minimal-perturbation attack seen at budget eps.
pub(crate) fn within_l2_budget(
    inputs: &Tensor<f32>,
    adversarial: &Tensor<f32>,
    eps: f64,
) -> Tensor<f32> {
    let per = per_image(inputs);
    let mut out = adversarial.clone();
    out.data_mut()
        .par_chunks_mut(per)
        .zip(inputs.data().par_chunks(per))
        .for_each(|(o, a)| {
            let d = o
                .iter()
                .zip(a)
                .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            if d > eps {
                o.copy_from_slice(a);
            }
        });
    out
}
