//! Splitting a batch of images into contiguous shards that run in parallel, each on its own
//! tape: the one policy training (`train::forward_backward`) and evaluation (`infer`) share.
//!
//! The split depends only on the batch size, never on the thread count, so every sum over
//! shards, and every rounding, is the same on any number of threads.

use std::ops::Range;

use tensor::{Float, Tensor};

use crate::models::Model;

/// Shards a batch is split into.
const SHARDS: usize = 2;

/// Images per shard below which a batch is not split: smaller shards leave too little work per
/// layer to pay for a second tape.
const MIN_SHARD_IMAGES: usize = 4;

/// The image ranges a batch of `n` images is split into, in order: [`SHARDS`] near-equal
/// ranges, or the whole batch when it is too small to split.
pub(crate) fn ranges(n: usize) -> Vec<Range<usize>> {
    let shards = if n >= SHARDS * MIN_SHARD_IMAGES {
        SHARDS
    } else {
        1
    };
    (0..shards)
        .map(|s| s * n / shards..(s + 1) * n / shards)
        .collect()
}

/// Bytes of one image's largest activation a chunk may hold: a few chunks' worth of layer
/// outputs then stay in the caches between one layer and the next, where a whole shard's
/// (25 MB for `deep`'s first layer at batch 1000) goes out to memory and back. Measured with
/// `bench --workload infer` on `deep` (docs/performance.md): 16 to 128 images per chunk all beat
/// the whole shard, 64 to 128 by the most.
const CHUNK_ACTIVATION_BYTES: usize = 6 << 20;

/// Parameter bytes above which a shard is not chunked: every chunk reads all the weights again,
/// and for a network like `alexnet` (40 MB of weights) that costs more than the activations'
/// round trip saves (its inference ran 30 % slower in chunks of 64).
const CHUNK_MAX_PARAM_BYTES: usize = 4 << 20;

/// Fewest images per chunk: below it each layer's call costs more than its work.
const MIN_CHUNK_IMAGES: usize = 4;

/// `range` split into consecutive chunks for an inference pass of `model` (see
/// [`CHUNK_ACTIVATION_BYTES`]); the whole range when the model's weights are too large to read
/// once per chunk. The split depends only on the model and the range.
pub(crate) fn cache_chunks<T: Float>(model: &Model<T>, range: Range<usize>) -> Vec<Range<usize>> {
    let bytes = std::mem::size_of::<T>();
    let params = model.param_count() * bytes;
    let per_image = largest_activation(model) * bytes;
    let chunk = if params > CHUNK_MAX_PARAM_BYTES || per_image == 0 {
        range.len()
    } else {
        (CHUNK_ACTIVATION_BYTES / per_image).max(MIN_CHUNK_IMAGES)
    };
    let chunk = chunk.max(1);
    range
        .clone()
        .step_by(chunk)
        .map(|lo| lo..(lo + chunk).min(range.end))
        .collect()
}

/// Elements of one image's largest layer output (or input), from the layers' output shapes.
fn largest_activation<T: Float>(model: &Model<T>) -> usize {
    let mut shape = model.input.to_vec();
    let mut largest = shape.iter().product::<usize>();
    for layer in &model.layers {
        match layer.output_shape(&shape) {
            Ok(next) => shape = next,
            Err(_) => break, // forward reports the shape error itself
        }
        largest = largest.max(shape.iter().product());
    }
    largest
}

/// Images `range` of an `(N, ...)` batch, copied. The caller keeps `range` inside `0..N` and
/// the batch at least one-dimensional.
pub(crate) fn slice_images<T: Float>(x: &Tensor<T>, range: Range<usize>) -> Tensor<T> {
    let per: usize = x.shape()[1..].iter().product();
    let mut shape = x.shape().to_vec();
    shape[0] = range.len();
    let data = x.data()[range.start * per..range.end * per].to_vec();
    Tensor::from_vec(&shape, data).expect("length from shape")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_batch_in_order() {
        assert_eq!(ranges(0), vec![0..0]);
        assert_eq!(ranges(7), vec![0..7]);
        assert_eq!(ranges(8), vec![0..4, 4..8]);
        assert_eq!(ranges(9), vec![0..4, 4..9]);
    }

    /// `deep` (0.7 MB of weights, 50 KB per image in its first layer) is chunked into
    /// consecutive ranges that cover the shard; `alexnet` (40 MB of weights) is not.
    #[test]
    fn small_networks_pass_in_cache_sized_chunks_and_large_ones_whole() {
        let deep = crate::models::deep::<f32>([1, 28, 28], 10, 1).unwrap();
        assert_eq!(largest_activation(&deep), 16 * 28 * 28);
        let chunks = cache_chunks(&deep, 3..503);
        let want = CHUNK_ACTIVATION_BYTES / (16 * 28 * 28 * 4);
        assert!(chunks.len() > 1, "{chunks:?}");
        assert_eq!(chunks[0], 3..3 + want);
        assert_eq!(chunks.last().unwrap().end, 503);
        assert!(chunks.windows(2).all(|w| w[0].end == w[1].start));
        assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= want));
        // f64 activations are twice the bytes: half the images per chunk
        let deep64 = deep.cast::<f64>();
        assert_eq!(cache_chunks(&deep64, 0..500)[0], 0..want / 2);
        let alexnet = crate::models::alexnet::<f32>([1, 28, 28], 10, 1).unwrap();
        assert_eq!(cache_chunks(&alexnet, 3..503), vec![3..503]);
        // a 256x256 deep's first layer is 4 MB per image: the fewest images per chunk
        let flowers = crate::models::deep::<f32>([3, 256, 256], 5, 1).unwrap();
        assert_eq!(cache_chunks(&flowers, 0..10)[0], 0..MIN_CHUNK_IMAGES);
    }

    #[test]
    fn a_slice_keeps_the_image_shape() {
        let x = Tensor::from_vec(&[3, 1, 2], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let s = slice_images(&x, 1..3);
        assert_eq!(
            (s.shape(), s.data()),
            (&[2, 1, 2][..], &[3.0, 4.0, 5.0, 6.0][..])
        );
    }
}
