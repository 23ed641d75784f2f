//! Infidelity (Yeh et al. 2019) as Captum's `infidelity` with `normalize=True`: how far the
//! map's prediction I . A of each perturbation's effect is from the true effect f(x) - f(x - I).

use tensor::{Float, Tensor};

use super::sampling::{check_samples, check_sigma, normal, sample_rng};
use super::target::{scores, Score};
use super::{check_classes, check_inputs, AttributionError};
use crate::models::Model;

/// Settings of [`infidelity`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InfidelityOptions {
    /// Perturbations per image (Captum's `n_perturb_samples`, 10).
    pub samples: usize,
    /// Standard deviation of the Gaussian perturbation I, in input units.
    pub sigma: f64,
    /// Seed of the perturbations.
    pub seed: u64,
}

impl Default for InfidelityOptions {
    fn default() -> Self {
        InfidelityOptions {
            samples: 10,
            sigma: 0.1,
            seed: 0,
        }
    }
}

/// Salt of the perturbations' streams.
const SALT_INFIDELITY: u64 = 0x1F00;

/// Per image: mean_k (beta I_k . A - (f(x) - f(x - I_k)))^2 with f the target's logit,
/// I_k ~ N(0, sigma^2) per element, and beta = mean(I.A df) / mean((I.A)^2) the scale that
/// minimizes it (Captum's `normalize=True`, so maps of any scale compare). A map (N, 1, H, W)
/// counts for every channel. Lower is better.
pub fn infidelity<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    maps: &Tensor<T>,
    options: &InfidelityOptions,
) -> Result<Vec<f64>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    check_samples(options.samples)?;
    check_sigma(options.sigma, true)?;
    let [c, h, w] = model.input;
    let plane = h * w;
    let mc = maps.numel() / (n * plane).max(1);
    if maps.numel() != n * mc * plane || (mc != 1 && mc != c) {
        return Err(AttributionError::Shape {
            what: "maps",
            expected: [c, h, w],
            found: maps.shape().to_vec(),
        });
    }
    let per = c * plane;
    let f = scores(model, inputs, classes, Score::Logit)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let image = &inputs.data()[i * per..(i + 1) * per];
        let map = &maps.data()[i * mc * plane..(i + 1) * mc * plane];
        let mut points = Vec::with_capacity(options.samples * per);
        let mut dots = Vec::with_capacity(options.samples);
        for k in 0..options.samples {
            let mut rng = sample_rng(options.seed, SALT_INFIDELITY, i, k);
            let mut dot = 0.0;
            for (e, &x) in image.iter().enumerate() {
                let noise = options.sigma * normal(&mut rng);
                let a = if mc == 1 { map[e % plane] } else { map[e] };
                dot += noise * a.to_f64();
                points.push(T::from_f64(x.to_f64() - noise));
            }
            dots.push(dot);
        }
        let x = Tensor::from_vec(&[options.samples, c, h, w], points)?;
        let fp = scores(model, &x, &vec![classes[i]; options.samples], Score::Logit)?;
        let diffs: Vec<f64> = fp.iter().map(|v| f[i] - v).collect();
        let m = options.samples as f64;
        let num: f64 = dots.iter().zip(&diffs).map(|(d, f)| d * f).sum::<f64>() / m;
        let den: f64 = dots.iter().map(|d| d * d).sum::<f64>() / m;
        let beta = if den > 0.0 { num / den } else { 0.0 };
        out.push(
            dots.iter()
                .zip(&diffs)
                .map(|(d, f)| (beta * d - f).powi(2))
                .sum::<f64>()
                / m,
        );
    }
    Ok(out)
}
