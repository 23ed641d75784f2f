//! VarGrad (Adebayo et al. 2018) as Captum's `NoiseTunnel(Saliency, nt_type="vargrad")`: the
//! variance of |dF/dx| over noisy copies of each input.

use tensor::{Float, Tensor};

use super::smoothgrad::{noisy_moments, NoiseOptions};
use super::AttributionError;
use crate::models::Model;

/// VarGrad: E[|g|^2] - E[|g|]^2 over the same noisy copies [`smoothgrad`](super::smoothgrad)
/// draws (same seed, same copies), g = dF/dx at the copy. Non-negative up to rounding, which is
/// clamped away.
pub fn vargrad<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    options: &NoiseOptions,
) -> Result<Tensor<T>, AttributionError> {
    let (mean, mean_sq) = noisy_moments(model, inputs, classes, options, true)?;
    let var = mean
        .iter()
        .zip(&mean_sq)
        .map(|(&m, &q)| T::from_f64((q - m * m).max(0.0)))
        .collect();
    Ok(Tensor::from_vec(inputs.shape(), var)?)
}
