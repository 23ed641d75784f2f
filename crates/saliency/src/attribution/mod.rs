//! Input attribution: the study's methods (gradient x input, occlusion, their mean, integrated
//! gradients, gradients integrated over training, attribution movies) and a randomization sanity check.
//!
//! Every method takes a model and a batch (N, C, H, W) of inputs in [0, 1] and returns maps shaped
//! like the input (the combined occlusion x gradient map is channel-summed to (N, 1, H, W)). Maps
//! are raw: normalizing for display is the caller's job (see `render::max_normalize`), except where
//! the method itself is defined on normalized maps.

mod completeness;
mod deconvnet;
mod deeplift;
mod deletion_insertion;
pub mod evaluation;
mod exact_ig;
mod grad_cam;
mod gradient_shap;
mod gradient_x_input;
mod guided_backprop;
mod guided_grad_cam;
mod infidelity;
mod integrated_gradients;
mod lrp;
pub mod method;
mod movie;
mod movie_spill;
mod occlusion;
mod occlusion_x_gradient;
mod rule_signal;
mod saliency_map;
mod sampling;
mod sanity;
mod sensitivity;
mod shapley_sampling;
mod smoothgrad;
mod target;
mod training_integrated;
mod vargrad;
mod ziggurat;

pub use completeness::completeness_error;
pub use deconvnet::deconvnet;
pub use deeplift::deeplift;
pub use deletion_insertion::{deletion_insertion, CurveOptions, Curves, Replacement};
pub use evaluation::{evaluate_method, CompletenessSummary, EvaluationOptions, MethodEvaluation};
pub use exact_ig::{exact_integrated_gradients, ExactIgOptions, ExactIgResult};
pub use grad_cam::{conv_layer_index, grad_cam, GradCamOptions};
pub use gradient_shap::{gradient_shap, GradientShapOptions};
pub use gradient_x_input::{gradient_x_input, gradient_x_input_signed};
pub use guided_backprop::guided_backprop;
pub use guided_grad_cam::guided_grad_cam;
pub use infidelity::{infidelity, InfidelityOptions};
pub use integrated_gradients::{integrated_gradients, Baseline, IgOptions, IgResult};
pub use lrp::{lrp, LrpRule};
pub use method::{CompletenessReport, Method, MethodOptions, MethodOutput};
pub use movie::{AttributionMovie, MovieOptions};
pub use occlusion::{default_patch, occlusion, OcclusionOptions};
pub use occlusion_x_gradient::{combine_maps, occlusion_x_gradient};
pub use saliency_map::saliency_map;
pub use sampling::{MAX_SAMPLES, MAX_SIGMA};
pub use sanity::{fresh_donor, randomization_sanity_check, spearman, SanityStep};
pub use sensitivity::{max_sensitivity, SensitivityOptions};
pub use shapley_sampling::{shapley_sampling, ShapleyOptions};
pub use smoothgrad::{smoothgrad, NoiseOptions};
pub use target::{Score, Target};
pub use training_integrated::{TrainingIntegratedGradients, TIG_FILE};
pub use vargrad::vargrad;

use tensor::{Float, Tensor};

use crate::checkpoint::CheckpointError;
use crate::models::{Model, ModelError};
use crate::render::RenderError;

/// How far outside [0, 1] an input value may be and still count as round-off.
pub const RANGE_TOLERANCE: f64 = 1e-6;

/// Input elements per forward pass that [`default_batch`] aims for. With the study's networks the
/// activations are a few times larger than the inputs, so a pass of this many input elements
/// records on the order of a hundred megabytes (the flowers `deep` network: 10 images of 256x256).
const BATCH_ELEMENTS: usize = 1 << 21;

/// Largest number of images in one pass whatever their size (256 Fashion-MNIST copies).
const MAX_BATCH: usize = 256;

/// How many images of shape `input` (C, H, W) to put through the network at once: 256 for
/// Fashion-MNIST, 10 for 3x256x256 flowers, so memory stays bounded for any input size.
pub fn default_batch(input: [usize; 3]) -> usize {
    let per = input.iter().product::<usize>().max(1);
    (BATCH_ELEMENTS / per).clamp(1, MAX_BATCH)
}

/// Errors from the attribution methods. Messages name the option or input, what was expected and
/// what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttributionError {
    /// An option has a value the method cannot use.
    #[error("option {option}: expected {expected}, found {found}")]
    Option {
        /// The option's name as the CLI spells it (`patch`, `stride`, `steps`, ...).
        option: &'static str,
        /// What would be accepted.
        expected: String,
        /// What was given.
        found: String,
    },
    /// The inputs are not a batch (N, C, H, W) of the model's input shape.
    #[error("{what}: expected shape (N, {}, {}, {}) with N >= 1, found {found:?}", expected[0], expected[1], expected[2])]
    Shape {
        /// Which tensor (`inputs`, `baseline`).
        what: &'static str,
        /// The model's (C, H, W).
        expected: [usize; 3],
        /// The shape given.
        found: Vec<usize>,
    },
    /// An input value lies outside [0, 1] by more than round-off (or is not finite).
    #[error(
        "inputs: element {index} (image {image}) is {value}, expected a value in [0, 1] \
         (within {RANGE_TOLERANCE:e}); scale pixels by 1/255"
    )]
    InputRange {
        /// Flat index into the batch.
        index: usize,
        /// Which image of the batch.
        image: usize,
        /// The offending value.
        value: f64,
    },
    /// A target class is not one of the model's classes.
    #[error("target class {class} (image {image}): expected a class below {classes}")]
    ClassOutOfRange {
        /// The class asked for.
        class: usize,
        /// Which image it was for.
        image: usize,
        /// The model's number of classes.
        classes: usize,
    },
    /// Per-image targets or labels do not match the batch.
    #[error("{what}: expected one per image ({expected}), found {found}")]
    Count {
        /// `labels` or `classes`.
        what: &'static str,
        /// Number of images.
        expected: usize,
        /// Number given.
        found: usize,
    },
    /// The `label` target was asked for without labels.
    #[error("target label: needs the images' labels, none were given")]
    MissingLabels,
    /// The sanity check cannot re-draw this model's layers.
    #[error("sanity check: {0}")]
    Sanity(String),
    /// The network failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Drawing or writing a picture failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Saving tensors failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Creating a folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The folder.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl From<tape::TapeError> for AttributionError {
    fn from(e: tape::TapeError) -> Self {
        AttributionError::Model(ModelError::Tape(e))
    }
}

impl From<tensor::TensorError> for AttributionError {
    fn from(e: tensor::TensorError) -> Self {
        AttributionError::Model(ModelError::Tape(tape::TapeError::from(e)))
    }
}

/// Checks that `inputs` is a non-empty batch of the model's input shape with values in [0, 1]
/// (within [`RANGE_TOLERANCE`]), and returns the number of images.
pub fn check_inputs<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
) -> Result<usize, AttributionError> {
    let n = check_shape(model, inputs, "inputs")?;
    let per = inputs.numel() / n;
    // One branch-free pass first (it vectorizes; NaN fails both comparisons), and the search
    // for the culprit only when it fails: a batch's check costs a fraction of a layer.
    // The same f64 bounds as the search below, so both accept exactly the same values.
    let (lo, hi) = (-RANGE_TOLERANCE, 1.0 + RANGE_TOLERANCE);
    let in_range = inputs.data().iter().fold(true, |ok, &v| {
        let v = v.to_f64();
        ok & (v >= lo) & (v <= hi)
    });
    if in_range {
        return Ok(n);
    }
    for (index, &v) in inputs.data().iter().enumerate() {
        let v = v.to_f64();
        // NaN is in no range, so it is rejected too.
        if !(-RANGE_TOLERANCE..=1.0 + RANGE_TOLERANCE).contains(&v) {
            return Err(AttributionError::InputRange {
                index,
                image: index / per,
                value: v,
            });
        }
    }
    Ok(n)
}

/// Checks that `x` is (N, C, H, W) with N >= 1 and (C, H, W) the model's input; returns N.
fn check_shape<T: Float>(
    model: &Model<T>,
    x: &Tensor<T>,
    what: &'static str,
) -> Result<usize, AttributionError> {
    let shape = x.shape();
    if shape.len() != 4 || shape[1..] != model.input || shape[0] == 0 {
        return Err(AttributionError::Shape {
            what,
            expected: model.input,
            found: shape.to_vec(),
        });
    }
    Ok(shape[0])
}

/// Checks one class per image, each below the model's number of classes.
fn check_classes(classes: &[usize], n: usize, k: usize) -> Result<(), AttributionError> {
    if classes.len() != n {
        return Err(AttributionError::Count {
            what: "classes",
            expected: n,
            found: classes.len(),
        });
    }
    match classes.iter().position(|&c| c >= k) {
        Some(image) => Err(AttributionError::ClassOutOfRange {
            class: classes[image],
            image,
            classes: k,
        }),
        None => Ok(()),
    }
}

/// Divides a non-negative map by its largest magnitude when that is positive (the study's
/// `A / max(A)`); an all-zero map stays zero.
fn max_normalize_f64(map: &mut [f64]) {
    let scale = map.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale > 0.0 {
        map.iter_mut().for_each(|v| *v /= scale);
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_method;
#[cfg(test)]
mod tests_metrics;
#[cfg(test)]
mod tests_rule_methods;
#[cfg(test)]
mod tests_sampling_methods;
