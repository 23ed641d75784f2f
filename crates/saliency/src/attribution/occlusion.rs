//! Occlusion: slide a zero patch over the image and credit each covered pixel with the change in
//! the output probabilities.

use tensor::{Float, Tensor};

use super::{check_inputs, default_batch, AttributionError};
use crate::infer::predict_probs;
use crate::models::Model;

/// The study's patch side for images of side `side`: 4 for 28x28, 32 for 256x256 (an eighth of
/// the side, rounded, at least 1).
pub fn default_patch(side: usize) -> usize {
    ((side + 4) / 8).max(1)
}

/// Patch geometry and how many occluded copies go through the network at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OcclusionOptions {
    /// Side of the square zero patch, in pixels (1 ..= the image's shorter side).
    pub patch: usize,
    /// Step between patch positions, in pixels (>= 1). Positions start at 0 and stop where the
    /// patch still fits, so with a stride that does not divide `side - patch` the last rows and
    /// columns are never covered (as in Captum).
    pub stride: usize,
    /// Occluded copies per forward pass (memory only: results do not depend on it).
    pub batch: usize,
}

impl OcclusionOptions {
    /// The study's defaults for inputs (C, H, W): patch = stride = [`default_patch`] of the
    /// shorter side, and [`default_batch`] copies per pass (256 for Fashion-MNIST).
    pub fn for_input(input: [usize; 3]) -> Self {
        let patch = default_patch(input[1].min(input[2]));
        OcclusionOptions {
            patch,
            stride: patch,
            batch: default_batch(input),
        }
    }

    /// Checks the options against an (H, W) image.
    fn validate(&self, h: usize, w: usize) -> Result<(), AttributionError> {
        let side = h.min(w);
        if self.patch == 0 || self.patch > side {
            return Err(AttributionError::Option {
                option: "patch",
                expected: format!("a patch side from 1 to the image side {side} (image {h}x{w})"),
                found: self.patch.to_string(),
            });
        }
        if self.stride == 0 {
            return Err(AttributionError::Option {
                option: "stride",
                expected: "a stride of at least 1".into(),
                found: "0".into(),
            });
        }
        if self.batch == 0 {
            return Err(AttributionError::Option {
                option: "batch",
                expected: "at least 1 occluded copy per pass".into(),
                found: "0".into(),
            });
        }
        Ok(())
    }
}

/// Occlusion map of every image: for each patch position, v = sum_k |p_k(a) - p_k(a_occluded)|
/// (p = softmax output, a_occluded = a with the patch set to zero in every channel), added to
/// every pixel the patch covers, in every channel. Not normalized.
///
/// Inference only: the occluded copies of all images are run through [`predict_probs`] (no-record
/// tape, evaluation mode) `options.batch` at a time. Values are accumulated in f64 in position
/// order, so the result does not depend on the batch size or the thread count.
pub fn occlusion<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    options: &OcclusionOptions,
) -> Result<Tensor<T>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    let [c, h, w] = model.input;
    options.validate(h, w)?;
    let (per, k) = (c * h * w, model.classes);

    let base = predict_probs(model, inputs.data(), options.batch)?; // (N, K)
    let positions: Vec<(usize, usize)> = (0..=h - options.patch)
        .step_by(options.stride)
        .flat_map(|top| {
            (0..=w - options.patch)
                .step_by(options.stride)
                .map(move |left| (top, left))
        })
        .collect();
    // Every (image, position) pair, image-major, so each image's positions stay in order.
    let pairs: Vec<(usize, (usize, usize))> = (0..n)
        .flat_map(|i| positions.iter().map(move |&pos| (i, pos)))
        .collect();

    let mut map = vec![0.0f64; n * per]; // (N, C, H, W)
    let mut copies: Vec<T> = Vec::with_capacity(options.batch.min(pairs.len()) * per);
    for chunk in pairs.chunks(options.batch) {
        copies.clear();
        for &(i, (top, left)) in chunk {
            let start = copies.len();
            copies.extend_from_slice(&inputs.data()[i * per..(i + 1) * per]);
            for_each_covered(
                &mut copies[start..],
                [c, h, w],
                top,
                left,
                options.patch,
                |v| {
                    *v = T::ZERO;
                },
            );
        }
        let probs = predict_probs(model, &copies, options.batch)?; // (chunk, K)
        for (&(i, (top, left)), row) in chunk.iter().zip(probs.chunks_exact(k)) {
            let v: f64 = base[i * k..(i + 1) * k]
                .iter()
                .zip(row)
                .map(|(&p, &q)| (p.to_f64() - q.to_f64()).abs())
                .sum();
            let image = &mut map[i * per..(i + 1) * per];
            for_each_covered(image, [c, h, w], top, left, options.patch, |m| *m += v);
        }
    }
    let map = map.into_iter().map(T::from_f64).collect();
    Ok(Tensor::from_vec(inputs.shape(), map)?)
}

/// Calls `f` on every element of the planar (C, H, W) `image` under the square patch at
/// (`top`, `left`), in all channels.
fn for_each_covered<V>(
    image: &mut [V],
    [c, h, w]: [usize; 3],
    top: usize,
    left: usize,
    patch: usize,
    mut f: impl FnMut(&mut V),
) {
    for ch in 0..c {
        for y in top..top + patch {
            let row = ch * h * w + y * w;
            image[row + left..row + left + patch]
                .iter_mut()
                .for_each(&mut f);
        }
    }
}
