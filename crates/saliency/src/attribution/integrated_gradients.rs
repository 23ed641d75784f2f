//! Integrated gradients (Sundararajan et al. 2017) with the midpoint Riemann sum, and its
//! completeness check.

use std::str::FromStr;

use tensor::{Float, Tensor};

use super::target::{scores, Score};
use super::{check_classes, check_inputs, check_shape, default_batch, AttributionError};
use crate::infer::input_gradients;
use crate::models::Model;

/// The reference input a' the path starts from.
#[derive(Clone, Debug, PartialEq)]
pub enum Baseline<T> {
    /// All zeros: a black image (the study's choice).
    Black,
    /// A uniform gray image at the mean of all the image's values (each image its own mean).
    Gray,
    /// A given baseline: (C, H, W) or (1, C, H, W) for every image, or (N, C, H, W), one per image.
    Given(Tensor<T>),
}

impl<T> FromStr for Baseline<T> {
    type Err = AttributionError;

    /// `black` (or `zero`) and `gray` (or `grey`); a given baseline has no text form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "black" | "zero" => Ok(Baseline::Black),
            "gray" | "grey" => Ok(Baseline::Gray),
            other => Err(AttributionError::Option {
                option: "baseline",
                expected: "black or gray".into(),
                found: format!("'{other}'"),
            }),
        }
    }
}

/// Settings of [`integrated_gradients`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IgOptions {
    /// Number m of path points (>= 1); the study uses 50.
    pub steps: usize,
    /// What F is: the target's probability (default) or its logit.
    pub score: Score,
    /// Path points per forward/backward pass; `None` picks [`default_batch`]. Memory only:
    /// results do not depend on it.
    pub batch: Option<usize>,
}

impl Default for IgOptions {
    fn default() -> Self {
        IgOptions {
            steps: 50,
            score: Score::Probability,
            batch: None,
        }
    }
}

/// Integrated gradients of a batch, with each image's completeness check.
#[derive(Clone, Debug, PartialEq)]
pub struct IgResult<T> {
    /// IG, shaped like the inputs.
    pub attributions: Tensor<T>,
    /// Per image: sum(IG) - (F(a) - F(a')). Zero for an exact integral; the midpoint rule's error
    /// falls as 1/m^2 for a smooth F.
    pub completeness_error: Vec<f32>,
    /// Per image: F(a) - F(a'), what the attributions should add up to.
    pub delta: Vec<f32>,
}

/// Integrated gradients along the straight path a' + alpha (a - a'):
/// IG = (a - a') * (1/m) sum_k dF/dx at alpha_k = (k - 1/2)/m, k = 1..m (Captum's
/// `riemann_middle`), with F the score of `classes[n]` for image n.
///
/// All path points (of all images) go through the network `options.batch` at a time, one backward
/// per pass (each point's score is differentiated on its own, since evaluation-mode images do not
/// interact). Gradients are summed in f64, in k order, so results do not depend on the batching.
pub fn integrated_gradients<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    baseline: &Baseline<T>,
    options: &IgOptions,
) -> Result<IgResult<T>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    let m = options.steps;
    if m == 0 {
        return Err(AttributionError::Option {
            option: "steps",
            expected: "at least 1 path point".into(),
            found: "0".into(),
        });
    }
    let batch = options.batch.unwrap_or_else(|| default_batch(model.input));
    if batch == 0 {
        return Err(AttributionError::Option {
            option: "batch",
            expected: "at least 1 path point per pass".into(),
            found: "0".into(),
        });
    }
    let baselines = expand_baseline(model, inputs, baseline)?;
    let per = inputs.numel() / n;
    let (a, b) = (inputs.data(), baselines.data());

    // Every (image, k) pair, image-major; each chunk is one forward/backward.
    let pairs: Vec<(usize, usize)> = (0..n).flat_map(|i| (1..=m).map(move |k| (i, k))).collect();
    let mut grad_sums = vec![0.0f64; n * per];
    for chunk in pairs.chunks(batch) {
        let mut points = Vec::with_capacity(chunk.len() * per);
        for &(i, k) in chunk {
            let alpha = (k as f64 - 0.5) / m as f64;
            let (ai, bi) = (&a[i * per..(i + 1) * per], &b[i * per..(i + 1) * per]);
            points.extend(ai.iter().zip(bi).map(|(&x, &x0)| {
                let x0 = x0.to_f64();
                T::from_f64(x0 + alpha * (x.to_f64() - x0))
            }));
        }
        let mut shape = inputs.shape().to_vec();
        shape[0] = chunk.len();
        let points = Tensor::from_vec(&shape, points)?;
        let point_classes = chunk.iter().map(|&(i, _)| classes[i]).collect();
        let (grad, _) = input_gradients(model, &points, &options.score.objective(point_classes))?;
        for (&(i, _), g) in chunk.iter().zip(grad.data().chunks_exact(per)) {
            for (s, &gv) in grad_sums[i * per..(i + 1) * per].iter_mut().zip(g) {
                *s += gv.to_f64();
            }
        }
    }

    let f_inputs = scores(model, inputs, classes, options.score)?;
    let f_baselines = scores(model, &baselines, classes, options.score)?;
    let mut attributions = Vec::with_capacity(n * per);
    let mut completeness_error = Vec::with_capacity(n);
    let mut delta = Vec::with_capacity(n);
    for i in 0..n {
        let range = i * per..(i + 1) * per;
        let mut total = 0.0f64;
        for ((&x, &x0), &s) in a[range.clone()]
            .iter()
            .zip(&b[range.clone()])
            .zip(&grad_sums[range])
        {
            let ig = (x.to_f64() - x0.to_f64()) * s / m as f64;
            total += ig;
            attributions.push(T::from_f64(ig));
        }
        let d = f_inputs[i] - f_baselines[i];
        delta.push(d as f32);
        completeness_error.push((total - d) as f32);
    }
    Ok(IgResult {
        attributions: Tensor::from_vec(inputs.shape(), attributions)?,
        completeness_error,
        delta,
    })
}

/// Refuses a given baseline with a value that is not finite, naming the first.
pub(super) fn check_finite<T: Float>(t: &Tensor<T>) -> Result<(), AttributionError> {
    match t.data().iter().position(|v| !v.is_finite()) {
        Some(index) => Err(AttributionError::Option {
            option: "baseline",
            expected: "finite values".into(),
            found: format!("element {index} = {}", t.data()[index]),
        }),
        None => Ok(()),
    }
}

/// True when a given baseline is one image for every input: (C, H, W) or (1, C, H, W).
pub(super) fn is_one_image<T: Float>(model: &Model<T>, t: &Tensor<T>) -> bool {
    t.shape() == model.input || t.shape() == [1, model.input[0], model.input[1], model.input[2]]
}

/// The baseline of every image as an (N, C, H, W) tensor.
pub(super) fn expand_baseline<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    baseline: &Baseline<T>,
) -> Result<Tensor<T>, AttributionError> {
    let n = inputs.shape()[0];
    let per = inputs.numel() / n;
    match baseline {
        Baseline::Black => Ok(Tensor::zeros(inputs.shape())),
        Baseline::Gray => {
            let mut data = Vec::with_capacity(inputs.numel());
            for image in inputs.data().chunks_exact(per) {
                let mean = image.iter().map(|v| v.to_f64()).sum::<f64>() / per as f64;
                data.resize(data.len() + per, T::from_f64(mean));
            }
            Ok(Tensor::from_vec(inputs.shape(), data)?)
        }
        Baseline::Given(t) => {
            check_finite(t)?;
            if is_one_image(model, t) {
                let data = t.data().iter().copied().cycle().take(n * per).collect();
                return Ok(Tensor::from_vec(inputs.shape(), data)?);
            }
            if check_shape(model, t, "baseline")? != n {
                return Err(AttributionError::Count {
                    what: "baseline images",
                    expected: n,
                    found: t.shape()[0],
                });
            }
            Ok(t.clone())
        }
    }
}
