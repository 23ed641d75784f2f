//! SmoothGrad (Smilkov et al. 2017) as Captum's `NoiseTunnel(Saliency)` computes it: the mean of
//! |dF/dx| over noisy copies x + N(0, sigma^2) of each input.

use tensor::{Float, Tensor};

use super::sampling::{
    add_normal_noise, check_batch, check_samples, check_sigma, gradients_at_points_par, sample_rng,
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

/// The per-image mean of |dF/dx| over the noisy copies and, when `squares`, its mean square
/// (else an empty vector), in f64, summed in sample order.
pub(crate) fn noisy_moments<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    options: &NoiseOptions,
    squares: bool,
) -> Result<(Vec<f64>, Vec<f64>), AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    check_samples(options.samples)?;
    check_sigma(options.sigma, true)?;
    let batch = options.batch.unwrap_or_else(|| default_batch(model.input));
    check_batch(batch)?;
    let per = inputs.numel() / n;
    let mut sum = vec![0.0f64; n * per];
    let mut sum_sq = vec![0.0f64; if squares { n * per } else { 0 }];
    let (a, sigma) = (inputs.data(), options.sigma);
    gradients_at_points_par(
        model,
        n,
        options.samples,
        classes,
        options.score,
        batch,
        // The noise is drawn straight into the pass's batch, from the (image, sample) stream.
        |i, k, point| {
            let mut rng = sample_rng(options.seed, SALT_NOISE, i, k);
            add_normal_noise(&mut rng, sigma, &a[i * per..(i + 1) * per], point);
        },
        |pass, grads| add_moments(pass, grads, per, &mut sum, &mut sum_sq),
    )?;
    let m = options.samples as f64;
    sum.iter_mut().for_each(|v| *v /= m);
    sum_sq.iter_mut().for_each(|v| *v /= m);
    Ok((sum, sum_sq))
}

/// Pixels per task of [`add_moments`].
const MOMENT_BLOCK: usize = 1024;

/// Adds |g| (and g^2, unless `sum_sq` is empty) of each gradient of a pass to its image's
/// running sums, in sample order for every pixel whatever the split: in parallel over the
/// pass's images and blocks of pixels, each task reading its pixels of that image's gradients
/// in pass order.
fn add_moments<T: Float>(
    pass: &[(usize, usize)],
    grads: &[T],
    per: usize,
    sum: &mut [f64],
    sum_sq: &mut [f64],
) {
    use rayon::prelude::*;
    let (Some(&(first, _)), Some(&(last, _))) = (pass.first(), pass.last()) else {
        return;
    };
    let images = first * per..(last + 1) * per;
    // This image's gradients: the pass is image-major, so they are one run of it.
    let own = |image: usize| {
        let from = pass.partition_point(|&(i, _)| i < image);
        let to = pass.partition_point(|&(i, _)| i <= image);
        &grads[from * per..to * per]
    };
    if sum_sq.is_empty() {
        sum[images]
            .par_chunks_mut(per)
            .enumerate()
            .for_each(|(offset, s)| {
                let own = own(first + offset);
                s.par_chunks_mut(MOMENT_BLOCK)
                    .enumerate()
                    .for_each(|(b, s)| {
                        for g in own.chunks_exact(per) {
                            for (s, &gv) in s.iter_mut().zip(&g[b * MOMENT_BLOCK..]) {
                                *s += gv.to_f64().abs();
                            }
                        }
                    });
            });
        return;
    }
    sum[images.clone()]
        .par_chunks_mut(per)
        .zip(sum_sq[images].par_chunks_mut(per))
        .enumerate()
        .for_each(|(offset, (s, q))| {
            let own = own(first + offset);
            s.par_chunks_mut(MOMENT_BLOCK)
                .zip(q.par_chunks_mut(MOMENT_BLOCK))
                .enumerate()
                .for_each(|(b, (s, q))| {
                    let at = b * MOMENT_BLOCK;
                    for g in own.chunks_exact(per) {
                        for ((s, q), &gv) in s.iter_mut().zip(q.iter_mut()).zip(&g[at..]) {
                            let v = gv.to_f64().abs();
                            *s += v;
                            *q += v * v;
                        }
                    }
                });
        });
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
    let (mean, _) = noisy_moments(model, inputs, classes, options, false)?;
    Ok(Tensor::from_vec(
        inputs.shape(),
        mean.into_iter().map(T::from_f64).collect(),
    )?)
}
