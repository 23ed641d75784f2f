//! Which map to trust: every faithfulness metric of one method on one batch (deletion and
//! insertion areas, infidelity, max-sensitivity, completeness where defined, and optionally the
//! randomization sanity check). `evaluate-attribution` and the study both call [`evaluate_method`].

use tensor::{Float, Tensor};

use super::method::{run, Method, MethodOptions};
use super::{
    completeness_error, deletion_insertion, infidelity, max_sensitivity,
    randomization_sanity_check, AttributionError, CurveOptions, Curves, InfidelityOptions,
    SanityStep, Score, SensitivityOptions, ShapleyOptions,
};
use crate::models::Model;

/// The metrics' settings (each metric's own options, as Captum names them where it has them).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct EvaluationOptions {
    /// Deletion and insertion: points per curve and what removed pixels become.
    pub curves: CurveOptions,
    /// Infidelity: Gaussian perturbations of the input.
    pub infidelity: InfidelityOptions,
    /// Max-sensitivity: uniform perturbations, each re-explained.
    pub sensitivity: SensitivityOptions,
}

/// How far the maps are from adding up to F(x) - F(black), over the batch.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompletenessSummary {
    /// Mean over images of |sum(map) - (F(x) - F(black))|.
    pub mean_abs_error: f64,
    /// `mean_abs_error` divided by the mean |F(x) - F(black)|.
    pub mean_relative_error: f64,
    /// The score F (the method's default).
    pub score: Score,
}

/// One method's maps and metrics on a batch.
#[derive(Clone, Debug)]
pub struct MethodEvaluation<T> {
    /// The method.
    pub method: Method,
    /// Its maps of the batch.
    pub maps: Tensor<T>,
    /// Deletion and insertion curves and areas, per image.
    pub curves: Curves,
    /// Infidelity per image (lower is more faithful).
    pub infidelity: Vec<f64>,
    /// Max-sensitivity per image, relative to the map's norm (lower is more stable).
    pub max_sensitivity: Vec<f64>,
    /// Completeness against a black baseline, for the methods where it is defined.
    pub completeness: Option<CompletenessSummary>,
    /// The cascading randomization check, when a donor was given: the first step ("none") is the
    /// method against itself, the last has every layer re-drawn.
    pub sanity: Option<Vec<SanityStep>>,
}

/// The mean of a list (NaN for none).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Shapley sampling gives a patch's value to each of its pixels in every channel (Captum's
/// feature-mask convention), so its map adds up to F(x) - F(0) once per patch, not once per
/// element: each element divided by its patch's element count (c x the patch's cut-short
/// height x width) counts every patch once.
fn once_per_patch<T: Float>(
    maps: &Tensor<T>,
    input: [usize; 3],
    patch: usize,
) -> Result<Tensor<T>, AttributionError> {
    let [c, h, w] = input;
    let side = |i: usize, n: usize| (n - (i / patch) * patch).min(patch);
    let data = maps
        .data()
        .iter()
        .enumerate()
        .map(|(e, &v)| {
            let p = e % (h * w);
            let count = c * side(p / w, h) * side(p % w, w);
            T::from_f64(v.to_f64() / count as f64)
        })
        .collect();
    Ok(Tensor::from_vec(maps.shape(), data)?)
}

/// Runs `method` on `inputs` and every metric on its maps. `donor` (a freshly initialized model
/// of the same layout, see [`super::fresh_donor`]) adds the randomization sanity check.
pub fn evaluate_method<T: Float>(
    method: Method,
    options: &MethodOptions<T>,
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    metrics: &EvaluationOptions,
    donor: Option<&Model<T>>,
) -> Result<MethodEvaluation<T>, AttributionError> {
    let explain = |m: &Model<T>, x: &Tensor<T>| -> Result<Tensor<T>, AttributionError> {
        Ok(run(method, options, m, x, classes)?.maps)
    };
    let maps = explain(model, inputs)?;
    let curves = deletion_insertion(model, inputs, classes, &maps, &metrics.curves)?;
    let infid = infidelity(model, inputs, classes, &maps, &metrics.infidelity)?;
    let sens = max_sensitivity(
        inputs,
        &maps,
        |x: &Tensor<T>| explain(model, x),
        &metrics.sensitivity,
    )?;
    let completeness = if method.completeness_defined() {
        let score = method.default_score();
        let black = Tensor::zeros(&model.input);
        let per_feature = if method == Method::ShapleySampling {
            let patch = options
                .patch
                .unwrap_or_else(|| ShapleyOptions::for_input(model.input).patch);
            once_per_patch(&maps, model.input, patch)?
        } else {
            maps.clone()
        };
        let (errors, deltas) =
            completeness_error(model, inputs, classes, &per_feature, &black, score)?;
        // Relative to the mean |F(x) - F(0)|, not image by image: an image whose difference is
        // near zero would otherwise dominate the mean.
        let abs_error = mean(&errors.iter().map(|e| e.abs()).collect::<Vec<_>>());
        let abs_delta = mean(&deltas.iter().map(|d| d.abs()).collect::<Vec<_>>());
        Some(CompletenessSummary {
            mean_abs_error: abs_error,
            mean_relative_error: abs_error / abs_delta.max(1e-12),
            score,
        })
    } else {
        None
    };
    let sanity = match donor {
        Some(donor) => Some(randomization_sanity_check(model, donor, inputs, explain)?),
        None => None,
    };
    Ok(MethodEvaluation {
        method,
        maps,
        curves,
        infidelity: infid,
        max_sensitivity: sens,
        completeness,
        sanity,
    })
}
