//! Splitting a batch of images into contiguous shards that run in parallel, each on its own
//! tape: the one policy training (`train::forward_backward`) and evaluation (`infer`) share.
//!
//! The split depends only on the batch size, never on the thread count, so every sum over
//! shards, and every rounding, is the same on any number of threads.

use std::ops::Range;

use tensor::{Float, Tensor};

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
