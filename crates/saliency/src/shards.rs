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

/// Bytes of one image's largest activation times the images of an inference chunk: a few
/// layers' outputs for that many images stay in the caches from one layer to the next, where a
/// whole shard's (25 MB for `deep`'s first layer at batch 1000) goes out to memory and back.
/// Measured with `bench --workload infer` on `deep` (docs/performance.md): 16 to 128 images per
/// chunk all beat the whole shard, 64 to 128 by the most.
const INFERENCE_CHUNK_BYTES: usize = 6 << 20;

/// The same for a recorded pass (input gradients), whose chunk keeps every layer's output until
/// its backward: half the bytes (`deep`: 62 images) measured fastest there.
const RECORDED_CHUNK_BYTES: usize = 3 << 20;

/// Parameter bytes above which a shard is not chunked: every chunk reads all the weights again,
/// and for a network like `alexnet` (40 MB of weights) that costs more than the activations'
/// round trip saves (its inference ran 30 % slower in chunks of 64).
const CHUNK_MAX_PARAM_BYTES: usize = 4 << 20;

/// Fewest images per chunk: below it each layer's call costs more than its work.
const MIN_CHUNK_IMAGES: usize = 4;

/// `range` split into near-equal consecutive chunks for a pass of `model` (recorded for a
/// backward or not), each within [`INFERENCE_CHUNK_BYTES`] or [`RECORDED_CHUNK_BYTES`] of its
/// largest activation (and at least [`MIN_CHUNK_IMAGES`]); the whole range when the model's
/// weights are too large to read once per chunk. The split depends only on the model, the kind
/// of pass and the range, never on the thread count.
pub(crate) fn cache_chunks<T: Float>(
    model: &Model<T>,
    range: Range<usize>,
    recording: bool,
) -> Vec<Range<usize>> {
    let bytes = std::mem::size_of::<T>();
    let params = model.param_count() * bytes;
    let per_image = largest_activation(model) * bytes;
    let budget = if recording {
        RECORDED_CHUNK_BYTES
    } else {
        INFERENCE_CHUNK_BYTES
    };
    let most = if params > CHUNK_MAX_PARAM_BYTES || per_image == 0 {
        range.len()
    } else {
        (budget / per_image).max(MIN_CHUNK_IMAGES)
    };
    let count = range.len().div_ceil(most.max(1)).max(1);
    (0..count)
        .map(|c| range.start + c * range.len() / count..range.start + (c + 1) * range.len() / count)
        .filter(|c| !c.is_empty())
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
    /// near-equal consecutive ranges that cover the shard, smaller for a recorded pass;
    /// `alexnet` (40 MB of weights) is not chunked.
    #[test]
    fn small_networks_pass_in_cache_sized_chunks_and_large_ones_whole() {
        let deep = crate::models::deep::<f32>([1, 28, 28], 10, 1).unwrap();
        assert_eq!(largest_activation(&deep), 16 * 28 * 28);
        for (recording, budget) in [(false, INFERENCE_CHUNK_BYTES), (true, RECORDED_CHUNK_BYTES)] {
            let most = budget / (16 * 28 * 28 * 4);
            let chunks = cache_chunks(&deep, 3..503, recording);
            assert_eq!(chunks.len(), 500usize.div_ceil(most), "{chunks:?}");
            assert_eq!((chunks[0].start, chunks.last().unwrap().end), (3, 503));
            assert!(chunks.windows(2).all(|w| w[0].end == w[1].start));
            let (low, high) = (
                chunks.iter().map(|c| c.len()).min().unwrap(),
                chunks.iter().map(|c| c.len()).max().unwrap(),
            );
            assert!(high <= most && high - low <= 1, "{chunks:?}");
        }
        // f64 activations are twice the bytes: about twice the chunks
        let deep64 = deep.cast::<f64>();
        let most = INFERENCE_CHUNK_BYTES / (16 * 28 * 28 * 8);
        assert_eq!(
            cache_chunks(&deep64, 0..500, false).len(),
            500usize.div_ceil(most)
        );
        let alexnet = crate::models::alexnet::<f32>([1, 28, 28], 10, 1).unwrap();
        assert_eq!(cache_chunks(&alexnet, 3..503, true), vec![3..503]);
        // a 256x256 deep's first layer is 4 MB per image: the fewest images per chunk
        let flowers = crate::models::deep::<f32>([3, 256, 256], 5, 1).unwrap();
        assert_eq!(cache_chunks(&flowers, 0..8, false), vec![0..4, 4..8]);
        assert_eq!(cache_chunks(&deep, 5..5, false), Vec::<Range<usize>>::new());
        assert_eq!(cache_chunks(&deep, 0..1, true), vec![0..1]);
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
