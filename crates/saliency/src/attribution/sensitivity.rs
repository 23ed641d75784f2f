//! Max-sensitivity (Yeh et al. 2019) as Captum's `sensitivity_max`: the largest relative change
//! of a map under small uniform perturbations of the input.

use tensor::{Float, Tensor};

use super::sampling::{check_samples, sample_rng, unit};
use super::AttributionError;

/// Settings of [`max_sensitivity`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SensitivityOptions {
    /// Perturbations per image (Captum's `n_perturb_samples`, 10).
    pub samples: usize,
    /// Perturbations are uniform in [-radius, radius] per element (Captum's 0.02).
    pub radius: f64,
    /// Seed of the perturbations.
    pub seed: u64,
}

impl Default for SensitivityOptions {
    fn default() -> Self {
        SensitivityOptions {
            samples: 10,
            radius: 0.02,
            seed: 0,
        }
    }
}

/// Salt of the perturbations' streams.
const SALT_SENSITIVITY: u64 = 0x5E00;

/// Per image: max_k ||A(x + d_k) - A(x)|| / ||A(x)|| (Frobenius norms; Captum divides by the
/// unperturbed map's norm), d_k uniform in [-radius, radius], the perturbed input clipped to
/// [0, 1] (our methods refuse values outside). `explain` maps a batch to its maps, the same
/// targets each time; `maps` is its result on `inputs`. Lower is better; 0 for an all-zero map.
pub fn max_sensitivity<T: Float, E: From<AttributionError>>(
    inputs: &Tensor<T>,
    maps: &Tensor<T>,
    explain: impl Fn(&Tensor<T>) -> Result<Tensor<T>, E>,
    options: &SensitivityOptions,
) -> Result<Vec<f64>, E> {
    check_samples(options.samples)?;
    if !(options.radius.is_finite() && options.radius > 0.0 && options.radius <= 1.0) {
        return Err(AttributionError::Option {
            option: "radius",
            expected: "a perturbation radius above 0 up to 1".into(),
            found: options.radius.to_string(),
        }
        .into());
    }
    let n = inputs.shape()[0];
    let per = inputs.numel() / n;
    let per_map = maps.numel() / n;
    let norms: Vec<f64> = maps
        .data()
        .chunks_exact(per_map)
        .map(|m| m.iter().map(|v| v.to_f64().powi(2)).sum::<f64>().sqrt())
        .collect();
    let mut worst = vec![0.0f64; n];
    for k in 0..options.samples {
        let mut data = Vec::with_capacity(inputs.numel());
        for (i, image) in inputs.data().chunks_exact(per).enumerate() {
            let mut rng = sample_rng(options.seed, SALT_SENSITIVITY, i, k);
            data.extend(image.iter().map(|&x| {
                let d = options.radius * (2.0 * unit(&mut rng) - 1.0);
                T::from_f64((x.to_f64() + d).clamp(0.0, 1.0))
            }));
        }
        let perturbed =
            explain(&Tensor::from_vec(inputs.shape(), data).map_err(AttributionError::from)?)?;
        for i in 0..n {
            let range = i * per_map..(i + 1) * per_map;
            let diff: f64 = perturbed.data()[range.clone()]
                .iter()
                .zip(&maps.data()[range])
                .map(|(a, b)| (a.to_f64() - b.to_f64()).powi(2))
                .sum::<f64>()
                .sqrt();
            if norms[i] > 0.0 {
                worst[i] = worst[i].max(diff / norms[i]);
            }
        }
    }
    Ok(worst)
}
