//! Projected gradient descent (Madry et al. 2018) under the L-infinity and L2 norms, untargeted
//! and targeted: a seeded random start in the eps-ball, then k steps along the loss gradient,
//! each projected back onto the ball and clipped to the valid range [0, 1].

use rayon::prelude::*;
use tensor::Tensor;

use super::attack::attack;
use super::attack::AttackConfig;
use super::check::per_image;
use super::fgsm::sign;
use super::gradient::loss_gradient_and_values;
use super::normalized::l2_norm;
use super::prediction::predict;
use super::random::{image_rng, normal, unit_f64, SALT_PGD_START};
use super::{AdversarialError, Method};
use crate::models::{mix_seed, Model};

/// The norm whose ball bounds the perturbation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    /// max_i |delta_i| <= eps; steps are alpha * sign(g).
    LInf,
    /// ||delta||_2 <= eps; steps are alpha * g / ||g||_2.
    L2,
}

/// Settings of projected gradient descent.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PgdConfig {
    /// Steps k (default 20: "PGD-20").
    pub steps: usize,
    /// Step size alpha; `None` means 2.5 eps / k, the convention of Madry et al.'s robustness
    /// library (enough to cross the ball's diameter with room to spare).
    pub step_size: Option<f64>,
    /// Start at a uniformly random point of the eps-ball (seeded per image) instead of the input.
    pub random_start: bool,
    /// Runs from different random starts (1: one run). Each image keeps the first run whose
    /// example succeeds (misclassified; targeted: classified as the target), else the first
    /// run's; run 0 draws the start a single run draws, so more restarts never succeed on fewer
    /// images.
    pub restarts: usize,
}

impl Default for PgdConfig {
    fn default() -> Self {
        PgdConfig {
            steps: DEFAULT_PGD_STEPS,
            step_size: None,
            random_start: true,
            restarts: 1,
        }
    }
}

/// PGD's default number of steps.
pub const DEFAULT_PGD_STEPS: usize = 20;

impl PgdConfig {
    /// The step size alpha used at budget `eps`.
    pub fn alpha(&self, eps: f64) -> f64 {
        self.step_size
            .unwrap_or(2.5 * eps / self.steps.max(1) as f64)
    }
}

/// Salt of the random starts of restarts 1, 2, ... (restart 0 uses the run's own seed).
const SALT_RESTART: u64 = 0x0A15_0000;

/// PGD from `inputs` (values in [0, 1]) with budget `eps` in `norm`, best of
/// `config.pgd.restarts` runs per image (see [`PgdConfig::restarts`]).
///
/// Untargeted (`toward` false): ascends the loss J(O(x), labels[i]). Targeted (`toward` true):
/// `labels` are the targets and the loss is descended. Image i (counted from `first_image` in
/// its data set) draws its random start from `config.seed`, the restart and i, so results do
/// not depend on batching or threads. Arguments are assumed checked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pgd_from(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    norm: Norm,
    toward: bool,
    eps: f64,
    config: &AttackConfig,
    first_image: usize,
) -> Result<Tensor<f32>, AdversarialError> {
    if eps == 0.0 {
        // The ball is a point: nothing to search.
        return Ok(inputs.clone());
    }
    let mut best = pgd_run(
        model,
        inputs,
        labels,
        norm,
        toward,
        eps,
        config,
        first_image,
        config.seed,
    )?;
    if config.pgd.restarts <= 1 {
        return Ok(best);
    }
    let succeeded = |x: &Tensor<f32>| -> Result<Vec<bool>, AdversarialError> {
        Ok(predict(model, x, config.batch)?
            .iter()
            .zip(labels)
            .map(|(p, &y)| (p.class == y) == toward)
            .collect())
    };
    let per = per_image(inputs);
    let mut done = succeeded(&best)?;
    for restart in 1..config.pgd.restarts {
        if done.iter().all(|&d| d) {
            break;
        }
        let seed = mix_seed(config.seed, SALT_RESTART + restart as u64);
        let x = pgd_run(
            model,
            inputs,
            labels,
            norm,
            toward,
            eps,
            config,
            first_image,
            seed,
        )?;
        for (i, now) in succeeded(&x)?.into_iter().enumerate() {
            if now && !done[i] {
                best.data_mut()[i * per..(i + 1) * per]
                    .copy_from_slice(&x.data()[i * per..(i + 1) * per]);
                done[i] = true;
            }
        }
    }
    Ok(best)
}

/// One PGD run, its random starts drawn from `seed`.
#[allow(clippy::too_many_arguments)]
fn pgd_run(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    norm: Norm,
    toward: bool,
    eps: f64,
    config: &AttackConfig,
    first_image: usize,
    seed: u64,
) -> Result<Tensor<f32>, AdversarialError> {
    let per = per_image(inputs);
    let pgd = &config.pgd;
    let alpha = pgd.alpha(eps);
    let direction = if toward { -1.0 } else { 1.0 };
    let mut x = inputs.clone();
    if pgd.random_start {
        x.data_mut()
            .par_chunks_mut(per)
            .zip(inputs.data().par_chunks(per))
            .enumerate()
            .for_each(|(i, (xi, ai))| {
                let mut rng = image_rng(seed, SALT_PGD_START, first_image + i);
                match norm {
                    Norm::LInf => {
                        for (v, &a) in xi.iter_mut().zip(ai) {
                            *v = a + (eps * (2.0 * unit_f64(&mut rng) - 1.0)) as f32;
                        }
                    }
                    Norm::L2 => {
                        // A uniform point of the d-ball: a uniform direction, radius eps u^(1/d).
                        let z: Vec<f64> = ai.iter().map(|_| normal(&mut rng)).collect();
                        let length = z.iter().map(|v| v * v).sum::<f64>().sqrt();
                        let radius = eps * unit_f64(&mut rng).powf(1.0 / per as f64);
                        for ((v, &a), &zi) in xi.iter_mut().zip(ai).zip(&z) {
                            *v = a + (radius * zi / length.max(f64::MIN_POSITIVE)) as f32;
                        }
                    }
                }
                project(xi, ai, norm, eps);
            });
    }
    for _ in 0..pgd.steps {
        let (g, _) = loss_gradient_and_values(model, &x, labels, config.loss, config.batch)?;
        x.data_mut()
            .par_chunks_mut(per)
            .zip(g.data().par_chunks(per))
            .zip(inputs.data().par_chunks(per))
            .for_each(|((xi, gi), ai)| {
                match norm {
                    Norm::LInf => {
                        let step = (direction * alpha) as f32;
                        for (v, &gv) in xi.iter_mut().zip(gi) {
                            *v += step * sign(gv);
                        }
                    }
                    Norm::L2 => {
                        let length = l2_norm(gi);
                        if length > 0.0 && length.is_finite() {
                            let scale = (direction * alpha / length) as f32;
                            for (v, &gv) in xi.iter_mut().zip(gi) {
                                *v += scale * gv;
                            }
                        }
                    }
                }
                project(xi, ai, norm, eps);
            });
    }
    Ok(x)
}

/// Untargeted PGD under L-infinity: x_0 = clip(a + U[-eps, eps]^d), then
/// `x_{t+1} = clip_01(Proj_{||x - a||_inf <= eps}(x_t + alpha sign(dJ(x_t, y)/dx)))`,
/// `config.pgd.steps` times (alpha and the start in `config.pgd`).
pub fn pgd_linf(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    attack(model, Method::Pgd, inputs, labels, eps, config)
}

/// Untargeted PGD under L2: steps alpha g / ||g||_2, projection onto ||x - a||_2 <= eps.
pub fn pgd_l2(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    attack(model, Method::PgdL2, inputs, labels, eps, config)
}

/// Targeted PGD under L-infinity towards `config.target`: descends J(x, t) with steps
/// -alpha sign(dJ(x_t, t)/dx). `labels` are the true labels (checked, used only for the
/// statistics); the targets come from `config.target`.
pub fn pgd_targeted(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    attack(model, Method::PgdTargeted, inputs, labels, eps, config)
}

/// Projects one image `x` onto the eps-ball around `a` in `norm`, then clips it to [0, 1].
///
/// L-infinity: each element clamped to [a - eps, a + eps] (bounds rounded to f32 as
/// a + eps is, so a step of exactly eps lands on the bound bit for bit). L2: delta = x - a scaled
/// by min(1, eps / ||delta||_2). Clipping after projecting keeps the result in the ball (both
/// sets are convex and the clip only shrinks each |delta_i|).
pub(crate) fn project(x: &mut [f32], a: &[f32], norm: Norm, eps: f64) {
    let e = eps as f32;
    match norm {
        Norm::LInf => {
            for (v, &ai) in x.iter_mut().zip(a) {
                *v = v.clamp(ai - e, ai + e);
            }
        }
        Norm::L2 => {
            let length = x
                .iter()
                .zip(a)
                .map(|(&v, &ai)| {
                    let d = v as f64 - ai as f64;
                    d * d
                })
                .sum::<f64>()
                .sqrt();
            if length > eps {
                let scale = eps / length;
                for (v, &ai) in x.iter_mut().zip(a) {
                    *v = ai + ((*v as f64 - ai as f64) * scale) as f32;
                }
            }
        }
    }
    for v in x.iter_mut() {
        *v = v.clamp(0.0, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_keeps_the_ball_and_the_range() {
        let a = [0.5f32, 0.95, 0.02, 0.5];
        let mut x = [0.9f32, 1.3, -0.4, 0.52];
        project(&mut x, &a, Norm::LInf, 0.1);
        assert_eq!(x, [0.6, 1.0, 0.0, 0.52]);
        let mut y = [0.5f32 + 3.0, 0.95, 0.02, 0.5 + 4.0];
        project(&mut y, &a, Norm::L2, 0.5);
        // delta (3, 0, 0, 4) of length 5 scaled to 0.5: (0.3, 0, 0, 0.4)
        assert!(
            (y[0] - 0.8).abs() < 1e-6 && (y[3] - 0.9).abs() < 1e-6,
            "{y:?}"
        );
        assert_eq!(&y[1..3], &a[1..3]);
    }
}
