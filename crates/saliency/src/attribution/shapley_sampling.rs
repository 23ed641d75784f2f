//! Shapley value sampling over square patches (Castro et al. 2009), as Captum's
//! `ShapleyValueSampling` with a patch feature mask: each patch's mean marginal contribution
//! over random orders in which the patches are switched from the baseline to the input.

use tensor::{Float, Tensor};

use super::sampling::{check_samples, permutation, sample_rng};
use super::target::{scores, Score};
use super::{check_classes, check_inputs, default_batch, default_patch, AttributionError};
use crate::models::Model;

/// Settings of [`shapley_sampling`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShapleyOptions {
    /// Side of the square patches that form the features; the last row and column of patches
    /// are cut short when the side does not divide the image.
    pub patch: usize,
    /// Random orders per image (Captum's `n_samples`, 25 by default there and here).
    pub samples: usize,
    /// Seed of the orders.
    pub seed: u64,
    /// What F is: the target's logit (Captum's convention) or its probability.
    pub score: Score,
}

impl ShapleyOptions {
    /// Patches of the study's occlusion size (4 for 28x28, 32 for 256x256), 25 orders.
    pub fn for_input(input: [usize; 3]) -> Self {
        ShapleyOptions {
            patch: default_patch(input[1].min(input[2])),
            samples: 25,
            seed: 0,
            score: Score::Logit,
        }
    }
}

/// Salt of the orders' streams.
const SALT_SHAPLEY: u64 = 0x5B00;

/// Shapley value sampling against a black (zero) baseline: for each order, start from the
/// baseline and switch patches on one at a time; a patch's value is the mean over the orders of
/// F(after) - F(before), given to each of its pixels in every channel. Each order telescopes, so
/// every image's patch values sum exactly (up to rounding) to F(x) - F(0).
pub fn shapley_sampling<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    options: &ShapleyOptions,
) -> Result<Tensor<T>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    check_samples(options.samples)?;
    let [c, h, w] = model.input;
    if options.patch == 0 || options.patch > h.min(w) {
        return Err(AttributionError::Option {
            option: "patch",
            expected: format!(
                "a patch side from 1 to the image side {} (image {h}x{w})",
                h.min(w)
            ),
            found: options.patch.to_string(),
        });
    }
    let per = c * h * w;
    let (rows, cols) = (h.div_ceil(options.patch), w.div_ceil(options.patch));
    let features = rows * cols;
    // Which feature each pixel of a plane belongs to.
    let owner: Vec<usize> = (0..h * w)
        .map(|p| (p / w / options.patch) * cols + (p % w) / options.patch)
        .collect();
    let orders_per_pass = (default_batch(model.input) / (features + 1)).max(1);
    let jobs: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| (0..options.samples).map(move |k| (i, k)))
        .collect();
    let mut values = vec![0.0f64; n * features];
    let a = inputs.data();
    for chunk in jobs.chunks(orders_per_pass) {
        let orders: Vec<Vec<usize>> = chunk
            .iter()
            .map(|&(i, k)| permutation(&mut sample_rng(options.seed, SALT_SHAPLEY, i, k), features))
            .collect();
        let mut points = Vec::with_capacity(chunk.len() * (features + 1) * per);
        let mut point_classes = Vec::with_capacity(chunk.len() * (features + 1));
        for (&(i, _), order) in chunk.iter().zip(&orders) {
            let image = &a[i * per..(i + 1) * per];
            let mut on = vec![false; features];
            for step in 0..=features {
                if step > 0 {
                    on[order[step - 1]] = true;
                }
                points.extend(image.iter().enumerate().map(|(e, &v)| {
                    if on[owner[e % (h * w)]] {
                        v
                    } else {
                        T::ZERO
                    }
                }));
                point_classes.push(classes[i]);
            }
        }
        let x = Tensor::from_vec(&[point_classes.len(), c, h, w], points)?;
        let f = scores(model, &x, &point_classes, options.score)?;
        for ((&(i, _), order), f) in chunk.iter().zip(&orders).zip(f.chunks_exact(features + 1)) {
            for (step, &feature) in order.iter().enumerate() {
                values[i * features + feature] += f[step + 1] - f[step];
            }
        }
    }
    let m = options.samples as f64;
    let mut out = Vec::with_capacity(n * per);
    for i in 0..n {
        for e in 0..per {
            out.push(T::from_f64(values[i * features + owner[e % (h * w)]] / m));
        }
    }
    Ok(Tensor::from_vec(inputs.shape(), out)?)
}
