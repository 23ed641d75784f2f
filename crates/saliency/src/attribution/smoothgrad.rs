//! SmoothGrad (Smilkov et al. 2017) as Captum's `NoiseTunnel(Saliency)` computes it: the mean of
//! |dF/dx| over noisy copies x + N(0, sigma^2) of each input.

use tensor::{Float, Tensor};

use super::sampling::{
    check_batch, check_samples, check_sigma, gradients_at_points, normal, sample_rng,
};
use super::target::Score;
use super::{check_classes, check_inputs, default_batch, AttributionError};
use crate::models::Model;

/// Settings of [`smoothgrad`] and [`vargrad`](super::vargrad).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseOptions {
    /// Noisy copies per image (Captum's `nt_samples`), 1 to [`MAX_SAMPLES`](super::MAX_SAMPLES).
    pub samples: usize,
    /// Standard deviation of the Gaussian noise in input units (Captum's `stdevs`; inputs are in
    /// [0, 1]), above 0. The noisy copies are not clipped, as in Captum.
    pub sigma: f64,
    /// Seed of the noise: image i's sample k always gets the same noise.
    pub seed: u64,
    /// What F is: the target's logit (Captum's convention: the model's output) or its probability.
    pub score: Score,
    /// Noisy copies per forward/backward pass; `None` picks [`default_batch`]. Memory only.
    pub batch: Option<usize>,
}

impl Default for NoiseOptions {
    fn default() -> Self {
        NoiseOptions {
            samples: 50,
            sigma: 0.15,
            seed: 0,
            score: Score::Logit,
            batch: None,
        }
    }
}

/// Salt of the noise streams (shared by SmoothGrad and VarGrad, so the two see the same copies).
const SALT_NOISE: u64 = 0x5600;

/// The per-image mean and mean square of |dF/dx| over the noisy copies, in f64, summed in sample
/// order.
pub(crate) fn noisy_moments<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    options: &NoiseOptions,
) -> Result<(Vec<f64>, Vec<f64>), AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    check_samples(options.samples)?;
    check_sigma(options.sigma, true)?;
    let batch = options.batch.unwrap_or_else(|| default_batch(model.input));
    check_batch(batch)?;
    let per = inputs.numel() / n;
    let mut sum = vec![0.0f64; n * per];
    let mut sum_sq = vec![0.0f64; n * per];
    let a = inputs.data();
    gradients_at_points(
        model,
        n,
        options.samples,
        classes,
        options.score,
        batch,
        |i, k, point| {
            let mut rng = sample_rng(options.seed, SALT_NOISE, i, k);
            for (p, &x) in point.iter_mut().zip(&a[i * per..(i + 1) * per]) {
                *p = T::from_f64(x.to_f64() + options.sigma * normal(&mut rng));
            }
        },
        |i, _, g| {
            let range = i * per..(i + 1) * per;
            for ((s, q), &gv) in sum[range.clone()].iter_mut().zip(&mut sum_sq[range]).zip(g) {
                let v = gv.to_f64().abs();
                *s += v;
                *q += v * v;
            }
        },
    )?;
    let m = options.samples as f64;
    sum.iter_mut().for_each(|v| *v /= m);
    sum_sq.iter_mut().for_each(|v| *v /= m);
    Ok((sum, sum_sq))
}

/// SmoothGrad: (1/n) sum_k |dF/dx (x + eps_k)|, eps_k ~ N(0, sigma^2 I), with F the score of
/// `classes[i]` for image i. Shaped like the inputs, non-negative.
///
/// Memory is bounded by `options.batch` noisy copies, whatever the number of samples and images.
pub fn smoothgrad<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    options: &NoiseOptions,
) -> Result<Tensor<T>, AttributionError> {
    let (mean, _) = noisy_moments(model, inputs, classes, options)?;
    Ok(Tensor::from_vec(
        inputs.shape(),
        mean.into_iter().map(T::from_f64).collect(),
    )?)
}
