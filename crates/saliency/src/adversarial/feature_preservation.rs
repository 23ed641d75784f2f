//! Feature preservation: the study's display of the loss gradient, clip(10 g / max(g), 0, 1), and
//! a number for "trained gradients show the image's edges": the correlation of |g| with the
//! image's Sobel edge map, for a trained and an untrained model.

use rayon::prelude::*;
use tensor::Tensor;

use super::attack::AttackConfig;
use super::check::{check_batch, check_inputs_in_unit_range, check_same_shape, per_image};
use super::edges::{luma, pearson, sobel_magnitude, spearman};
use super::gradient::loss_gradient_and_values;
use super::AdversarialError;
use crate::models::Model;

/// The study's brightening of the gradient image: 10 g / max(g).
pub const DISPLAY_GAIN: f32 = 10.0;

/// The study's gradient picture, per image: clip(10 g / max(g), 0, 1) with max(g) the signed
/// maximum over all elements of the image and g kept channel-wise (an RGB input gives an RGB
/// picture). Negative gradients show black; anything above a tenth of the maximum saturates.
///
/// An image whose gradient has no positive element (max(g) <= 0, e.g. g = 0) has nothing to
/// show at this scale and is all zeros (black) rather than NaN.
pub fn gradient_display(grad: &Tensor<f32>) -> Tensor<f32> {
    let mut out = Tensor::zeros(grad.shape());
    let per = per_image(grad);
    out.data_mut()
        .par_chunks_mut(per)
        .zip(grad.data().par_chunks(per))
        .for_each(|(o, g)| {
            let m = g.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if m > 0.0 && m.is_finite() {
                for (oi, &gi) in o.iter_mut().zip(g) {
                    *oi = (DISPLAY_GAIN * gi / m).clamp(0.0, 1.0);
                }
            }
        });
    out
}

/// How well one gradient map follows its image's edges.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EdgeCorrelation {
    /// Pearson correlation of |g| (summed over channels) with the Sobel magnitude of the luma.
    pub pearson: f64,
    /// Spearman (rank) correlation of the same two maps.
    pub spearman: f64,
}

/// The correlation of one image's gradient magnitude sum_c |g_c| with the Sobel edge magnitude of
/// its gray (luma) image; `image` and `grad` are planar (C, H, W) with `shape` = [C, H, W].
/// `None` when undefined: a constant gradient map (e.g. zero) or an image without edges.
pub fn edge_correlation(image: &[f32], grad: &[f32], shape: [usize; 3]) -> Option<EdgeCorrelation> {
    let [c, h, w] = shape;
    let plane = h * w;
    let mut magnitude = vec![0.0f32; plane];
    for channel in grad.chunks_exact(plane.max(1)).take(c) {
        for (m, &g) in magnitude.iter_mut().zip(channel) {
            *m += g.abs();
        }
    }
    let edges = sobel_magnitude(&luma(image, c, h, w), h, w);
    Some(EdgeCorrelation {
        pearson: pearson(&magnitude, &edges)?,
        spearman: spearman(&magnitude, &edges)?,
    })
}

/// Edge correlations averaged over a set of images.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EdgeAgreement {
    /// Images looked at.
    pub n: usize,
    /// Images whose correlation is defined (the means are over these; 0 when there are none).
    pub defined: usize,
    /// Mean Pearson correlation.
    pub pearson: f64,
    /// Mean Spearman correlation.
    pub spearman: f64,
}

/// The mean edge correlation of the gradients `grads` of the images `inputs` (both (N, C, H, W)).
pub fn mean_edge_correlation(
    inputs: &Tensor<f32>,
    grads: &Tensor<f32>,
) -> Result<EdgeAgreement, AdversarialError> {
    check_same_shape("gradient", inputs, grads)?;
    let shape = inputs.shape();
    if shape.len() != 4 {
        return Err(AdversarialError::Shape {
            what: "inputs",
            expected: "a batch of shape (N, C, H, W)".into(),
            found: format!("{shape:?}"),
        });
    }
    let dims = [shape[1], shape[2], shape[3]];
    let per = per_image(inputs);
    // One result per image, in image order, then summed in that order: thread-independent.
    let each: Vec<Option<EdgeCorrelation>> = inputs
        .data()
        .par_chunks(per)
        .zip(grads.data().par_chunks(per))
        .map(|(a, g)| edge_correlation(a, g, dims))
        .collect();
    let defined: Vec<EdgeCorrelation> = each.iter().flatten().copied().collect();
    let k = defined.len().max(1) as f64;
    Ok(EdgeAgreement {
        n: shape[0],
        defined: defined.len(),
        pearson: defined.iter().map(|e| e.pearson).sum::<f64>() / k,
        spearman: defined.iter().map(|e| e.spearman).sum::<f64>() / k,
    })
}

/// The mean edge correlation of `model`'s loss gradients on `inputs` with their true `labels`.
pub fn model_edge_correlation(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    config: &AttackConfig,
) -> Result<EdgeAgreement, AdversarialError> {
    check_batch(model, inputs, labels)?;
    check_inputs_in_unit_range(inputs)?;
    let (g, _) = loss_gradient_and_values(model, inputs, labels, config.loss, config.batch)?;
    mean_edge_correlation(inputs, &g)
}

/// Edge agreement of a trained model's gradients next to an untrained one's.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeaturePreservation {
    /// The trained model.
    pub trained: EdgeAgreement,
    /// The same architecture with fresh weights.
    pub untrained: EdgeAgreement,
}

/// The study's claim as numbers: the trained model's gradients follow the image's edges (high
/// correlation), an untrained model's do not (near zero). `untrained` is typically
/// `trained.kind.build(trained.input, trained.classes, seed)`.
pub fn compare_trained_untrained(
    trained: &Model<f32>,
    untrained: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    config: &AttackConfig,
) -> Result<FeaturePreservation, AdversarialError> {
    Ok(FeaturePreservation {
        trained: model_edge_correlation(trained, inputs, labels, config)?,
        untrained: model_edge_correlation(untrained, inputs, labels, config)?,
    })
}
