//! Occlusion x gradient: the mean of the max-normalized occlusion and gradient x input maps.

use tensor::{Float, Tensor};

use super::gradient_x_input::gradient_x_input;
use super::occlusion::{occlusion, OcclusionOptions};
use super::target::Target;
use super::{max_normalize_f64, AttributionError};
use crate::models::Model;

/// The study's combined map: per image, the channel-summed occlusion map and the channel-summed
/// gradient x input map (study form, predicted class) are each divided by their maximum, then
/// averaged. Returns (N, 1, H, W) with values in [0, 1].
pub fn occlusion_x_gradient<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    options: &OcclusionOptions,
) -> Result<Tensor<T>, AttributionError> {
    let classes = Target::Pred.resolve(model, inputs, None)?;
    let occluded = occlusion(model, inputs, options)?;
    let gradient = gradient_x_input(model, inputs, &classes)?;
    combine_maps(&occluded, &gradient)
}

/// Combines two (N, C, H, W) maps already computed (e.g. occlusion and gradient x input) into
/// their per-image mean after channel-summing and max-normalizing each: (N, 1, H, W).
///
/// For RGB the study sums a map over channels before showing it; doing that before normalizing
/// keeps the two maps on the same footing. An all-zero map contributes zeros.
pub fn combine_maps<T: Float>(
    first: &Tensor<T>,
    second: &Tensor<T>,
) -> Result<Tensor<T>, AttributionError> {
    let shape = first.shape();
    if shape.len() != 4 || second.shape() != shape {
        return Err(AttributionError::Option {
            option: "maps",
            expected: format!("two maps of the same shape (N, C, H, W), the first is {shape:?}"),
            found: format!("{:?}", second.shape()),
        });
    }
    let [n, c, h, w] = [shape[0], shape[1], shape[2], shape[3]];
    let plane = h * w;
    let mut out = Vec::with_capacity(n * plane);
    for i in 0..n {
        let mut a = summed_channels(&first.data()[i * c * plane..(i + 1) * c * plane], c, plane);
        let mut b = summed_channels(&second.data()[i * c * plane..(i + 1) * c * plane], c, plane);
        max_normalize_f64(&mut a);
        max_normalize_f64(&mut b);
        out.extend(a.iter().zip(&b).map(|(x, y)| T::from_f64(0.5 * (x + y))));
    }
    Ok(Tensor::from_vec(&[n, 1, h, w], out)?)
}

/// Sums a planar (C, H, W) map over channels, in f64.
fn summed_channels<T: Float>(map: &[T], c: usize, plane: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; plane];
    for ch in 0..c {
        for (o, v) in out.iter_mut().zip(&map[ch * plane..(ch + 1) * plane]) {
            *o += v.to_f64();
        }
    }
    out
}
