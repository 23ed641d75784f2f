//! GradientSHAP (Lundberg and Lee 2017) as Captum's `GradientShap` defines it: expected
//! gradients over random baselines, random points on the path and optional input noise.

use tensor::{Float, Tensor};

use super::sampling::{
    below, check_batch, check_samples, check_sigma, gradients_at_points, normal, sample_rng, unit,
};
use super::target::Score;
use super::{check_classes, check_inputs, default_batch, AttributionError};
use crate::models::Model;

/// Settings of [`gradient_shap`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradientShapOptions {
    /// Samples per image (Captum's `n_samples`, default 5 there; 50 here).
    pub samples: usize,
    /// Standard deviation of the Gaussian noise added to the input (Captum's `stdevs`, default 0).
    pub sigma: f64,
    /// Seed of the draws.
    pub seed: u64,
    /// What F is: the target's logit (Captum's convention) or its probability.
    pub score: Score,
    /// Points per forward/backward pass; `None` picks [`default_batch`]. Memory only.
    pub batch: Option<usize>,
}

impl Default for GradientShapOptions {
    fn default() -> Self {
        GradientShapOptions {
            samples: 50,
            sigma: 0.0,
            seed: 0,
            score: Score::Logit,
            batch: None,
        }
    }
}

/// Salt of GradientSHAP's streams.
const SALT_SHAP: u64 = 0x5A00;

/// GradientSHAP: for each image x and sample k, draw a baseline b uniformly from `baselines`
/// (B, C, H, W), noise x~ = x + N(0, sigma^2) and alpha ~ U[0, 1); the sample's attribution is
/// (x~ - b) * dF/dx at b + alpha (x~ - b); the result is the mean over the samples. Its sum is
/// an estimate of F(x) - E_b[F(b)] (exact in expectation for sigma = 0).
pub fn gradient_shap<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    baselines: &Tensor<T>,
    options: &GradientShapOptions,
) -> Result<Tensor<T>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    check_samples(options.samples)?;
    check_sigma(options.sigma, false)?;
    let batch = options.batch.unwrap_or_else(|| default_batch(model.input));
    check_batch(batch)?;
    let per = inputs.numel() / n;
    let bshape = baselines.shape();
    let shaped =
        (bshape.len() == 4 && bshape[1..] == model.input && bshape[0] > 0) || bshape == model.input;
    if !shaped {
        return Err(AttributionError::Shape {
            what: "baselines",
            expected: model.input,
            found: bshape.to_vec(),
        });
    }
    if let Some(index) = baselines.data().iter().position(|v| !v.is_finite()) {
        return Err(AttributionError::Option {
            option: "baseline",
            expected: "finite values".into(),
            found: format!("element {index} = {}", baselines.data()[index]),
        });
    }
    let count = baselines.numel() / per;
    let (a, b) = (inputs.data(), baselines.data());
    // Sample k of image i: its baseline, alpha and noisy input; the point goes to the network,
    // the difference x~ - b is kept for the product.
    let draw = |i: usize, k: usize| -> (usize, f64, Vec<f64>) {
        let mut rng = sample_rng(options.seed, SALT_SHAP, i, k);
        let which = below(&mut rng, count);
        let alpha = unit(&mut rng);
        let noisy = a[i * per..(i + 1) * per]
            .iter()
            .map(|&x| {
                x.to_f64()
                    + if options.sigma > 0.0 {
                        options.sigma * normal(&mut rng)
                    } else {
                        0.0
                    }
            })
            .collect();
        (which, alpha, noisy)
    };
    let mut sums = vec![0.0f64; n * per];
    gradients_at_points(
        model,
        n,
        options.samples,
        classes,
        options.score,
        batch,
        |i, k, point| {
            let (which, alpha, noisy) = draw(i, k);
            let base = &b[which * per..(which + 1) * per];
            for ((p, &x), &x0) in point.iter_mut().zip(&noisy).zip(base) {
                let x0 = x0.to_f64();
                *p = T::from_f64(x0 + alpha * (x - x0));
            }
        },
        |i, k, g| {
            // Drawn again rather than stored: memory stays bounded by the batch.
            let (which, _, noisy) = draw(i, k);
            let base = &b[which * per..(which + 1) * per];
            let range = i * per..(i + 1) * per;
            for (((s, &gv), &x), &x0) in sums[range].iter_mut().zip(g).zip(&noisy).zip(base) {
                *s += (x - x0.to_f64()) * gv.to_f64();
            }
        },
    )?;
    let m = options.samples as f64;
    Ok(Tensor::from_vec(
        inputs.shape(),
        sums.into_iter().map(|v| T::from_f64(v / m)).collect(),
    )?)
}
