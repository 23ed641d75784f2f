//! Direct convolution kernels for 2x2 maps at small batches, reading the weight in place.
//!
//! AlexNet's conv2..conv5 on Fashion-MNIST map 2x2 inputs to 2x2 outputs (stride 1, padding
//! that keeps the size). Each of the 4 output pixels reads each of the 4 input pixels through
//! exactly one tap, at offset `(iy - oy, ix - ox)` from the kernel's centre, so a pass is 16
//! multiply-adds per channel pair and image. At a batch of 16 every weight is used only
//! 16 times per pair of pixels, so any copy of the weight into another layout (im2col's GEMM
//! packs it; [`crate::unrolled`] writes a matrix 16/9 its size) costs as much as the arithmetic.
//! These kernels read the `[Cout, C, K, K]` weight where it is and keep the batch in SIMD
//! lanes (16 images per AVX-512 vector), with only the small activations rearranged:
//!
//! - forward: for one output channel and 16 images, 4 accumulators (one per output pixel) sum
//!   over input channels `c` the products of the 4 input-pixel vectors of `c` with the weight at
//!   each pair's tap (a broadcast straight from the weight);
//! - input gradient: the same with the roles of the pixels swapped, over output channels;
//! - weight gradient: for one output channel and 16 input channels (the lanes), the 9 offsets'
//!   accumulators sum over images and pixel pairs; the taps no pair reaches get zero.
//!
//! Every output element is summed by one task in an order fixed by the geometry, so the passes
//! are bitwise the same for any thread count. The loops are plain Rust over `[T; 16]` lanes with
//! `mul_add`, compiled inside `#[target_feature(enable = "avx512f,avx2,fma")]` functions, where
//! they become AVX-512 FMA instructions with the accumulators in registers. The 16 pixel pairs
//! are spelled out by a macro: as a loop, the compiler kept the accumulators in memory. The path
//! is taken only on the AVX-512 tier (`tensor::cpu::Tier`); elsewhere these layers take the
//! unrolled GEMMs.

use rayon::prelude::*;

use tensor::Float;

use tensor::cpu::Tier;

use crate::arch;
use crate::lanes::{fma_lanes, lanes_at, Lanes, LANES};
use crate::Conv2dGeometry;

/// Largest batch the direct kernels take. Above it, the unrolled GEMMs' one copy of the weight
/// is spread over enough images, and their register-blocked kernels win.
const MAX_BATCH: usize = 64;

/// The 16 pixel pairs of a 2x2 map, as (output pixel `p`, input pixel `q`, offset index `d`),
/// pixels row-major and `d = (iy - oy + 1) * 3 + (ix - ox + 1)`, in (p, q) order.
#[cfg(test)]
const PAIRS: [(usize, usize, usize); 16] = pixel_pairs();

/// Runs `$body` once for each of the 16 [`PAIRS`], with `$p`, `$q` and `$d` bound to
/// literals, so the accumulators' indices are constants and they stay in registers (a loop
/// over `PAIRS` kept them in memory). A test checks the list against [`PAIRS`].
macro_rules! for_each_pair {
    (|$p:ident, $q:ident, $d:ident| $body:block) => {
        for_each_pair!(@expand $p $q $d $body;
            (0, 0, 4) (0, 1, 5) (0, 2, 7) (0, 3, 8)
            (1, 0, 3) (1, 1, 4) (1, 2, 6) (1, 3, 7)
            (2, 0, 1) (2, 1, 2) (2, 2, 4) (2, 3, 5)
            (3, 0, 0) (3, 1, 1) (3, 2, 3) (3, 3, 4))
    };
    (@expand $p:ident $q:ident $d:ident $body:block; $(($pv:literal, $qv:literal, $dv:literal))*) => {
        $({
            let ($p, $q, $d): (usize, usize, usize) = ($pv, $qv, $dv);
            $body
        })*
    };
}

#[cfg(test)]
const fn pixel_pairs() -> [(usize, usize, usize); 16] {
    let mut out = [(0, 0, 0); 16];
    let mut i = 0;
    while i < 16 {
        let (p, q) = (i / 4, i % 4);
        let (oy, ox, iy, ix) = (p / 2, p % 2, q / 2, q % 2);
        out[i] = (p, q, (iy + 1 - oy) * 3 + (ix + 1 - ox));
        i += 1;
    }
    out
}

/// True when the direct kernels take the convolution: 2x2 in and out, stride 1, every offset
/// in `-1..=1` a tap of the kernel (padding at least 1 and at most `K - 2`), a 3x3 or 5x5
/// kernel, at most [`MAX_BATCH`] images, and a tier that runs the vector kernels.
pub(crate) fn applies(g: &Conv2dGeometry, tier: Tier) -> bool {
    let two_by_two = g.in_h == 2 && g.in_w == 2 && g.out_h == 2 && g.out_w == 2;
    let offsets_are_taps = g.padding >= 1 && g.padding + 2 <= g.kernel;
    two_by_two
        && g.stride == 1
        && offsets_are_taps
        && matches!(g.kernel, 3 | 5)
        && g.batch <= MAX_BATCH
        && tier.vector_kernels()
}

/// The batch rounded up to whole vectors.
fn padded_batch(g: &Conv2dGeometry) -> usize {
    g.batch.next_multiple_of(LANES)
}

/// Workspace elements the kernels need: the larger of the forward's and the input gradient's
/// two rearranged activations, and the weight gradient's one.
pub(crate) fn workspace_len(g: &Conv2dGeometry) -> usize {
    let npad = padded_batch(g);
    let passes = npad * 4 * (g.in_channels + g.out_channels);
    passes.max(g.batch * 4 * g.in_channels.next_multiple_of(LANES))
}

/// Offset, within one input channel's `K*K` weights, of the tap at offset (-1, -1) from the
/// centre: the start of the `2K + 3` weights the 9 offsets reach.
fn first_tap(k: usize, padding: usize) -> usize {
    (padding - 1) * (k + 1)
}

/// The weight at offset index `d` within a window starting at [`first_tap`].
#[inline(always)]
fn tap<T: Copy, const K: usize>(window: &[T], d: usize) -> T {
    window[(d / 3) * K + d % 3]
}

/// NCHW `(N, C, 4)` to vectors of images, `(Npad / LANES, C, 4, LANES)`, the padded images zero.
fn to_image_lanes<T: Float>(src: &[T], n: usize, c: usize, dst: &mut [T]) {
    dst.par_chunks_mut(c * 4 * LANES)
        .enumerate()
        .for_each(|(block, out)| {
            for (ci, pixels) in out.chunks_exact_mut(4 * LANES).enumerate() {
                for (q, lanes) in pixels.chunks_exact_mut(LANES).enumerate() {
                    for (l, d) in lanes.iter_mut().enumerate() {
                        let ni = block * LANES + l;
                        *d = if ni < n {
                            src[(ni * c + ci) * 4 + q]
                        } else {
                            T::ZERO
                        };
                    }
                }
            }
        });
}

/// Channel-major `(C, 4, Npad)` back to NCHW `(N, C, 4)` (`dst` holds the N real images;
/// the padded ones are dropped).
fn from_channel_rows<T: Float>(src: &[T], c: usize, npad: usize, dst: &mut [T]) {
    dst.par_chunks_mut(c * 4)
        .enumerate()
        .for_each(|(ni, image)| {
            for (j, d) in image.iter_mut().enumerate() {
                *d = src[j * npad + ni];
            }
        });
}

/// Stores a tile's 4 pixel vectors for image block `block` into one channel's `(4, Npad)` rows.
fn store_pixels<T: Float>(acc: &[Lanes<T>; 4], block: usize, npad: usize, out: &mut [T]) {
    for (pixel, lanes) in acc.iter().enumerate() {
        let at = pixel * npad + block * LANES;
        out[at..at + LANES].copy_from_slice(lanes);
    }
}

/// Loads the 4 pixel vectors of one channel from `(.., 4, LANES)` lanes.
#[inline(always)]
fn pixel_vectors<T: Float>(lanes: &[T]) -> [Lanes<T>; 4] {
    std::array::from_fn(|q| lanes_at(lanes, q * LANES))
}

/// One forward tile: output channel `filter` (its `C*K*K` weights) and `bias` for 16 images
/// (`xt_block`, `(C, 4, LANES)`): the 4 output-pixel vectors.
#[inline(always)]
pub(crate) fn forward_tile<T: Float, const K: usize>(
    xt_block: &[T],
    filter: &[T],
    bias: T,
    first: usize,
) -> [Lanes<T>; 4] {
    let mut acc = [[bias; LANES]; 4];
    for (ci, lanes) in xt_block.chunks_exact(4 * LANES).enumerate() {
        let x = pixel_vectors(lanes);
        let window = &filter[ci * K * K + first..][..2 * K + 3];
        for_each_pair!(|p, q, d| {
            fma_lanes(&mut acc[p], &x[q], tap::<T, K>(window, d));
        });
    }
    acc
}

/// One input-gradient tile: input channel `c` for 16 images (`dyt_block`, `(Cout, 4, LANES)`):
/// the 4 input-pixel vectors.
#[inline(always)]
pub(crate) fn input_tile<T: Float, const K: usize>(
    dyt_block: &[T],
    weight: &[T],
    in_channels: usize,
    c: usize,
    first: usize,
) -> [Lanes<T>; 4] {
    let mut acc = [[T::ZERO; LANES]; 4];
    for (co, lanes) in dyt_block.chunks_exact(4 * LANES).enumerate() {
        let dy = pixel_vectors(lanes);
        let window = &weight[(co * in_channels + c) * K * K + first..][..2 * K + 3];
        for_each_pair!(|p, q, d| {
            fma_lanes(&mut acc[q], &dy[p], tap::<T, K>(window, d));
        });
    }
    acc
}

/// One weight-gradient tile: output channel `co`, input channels `c0..c0 + 16` (the lanes):
/// for each offset index, the sum over images and the pixel pairs at that offset. `xc` is
/// `(N, 4, Cpad)`, `grad_output` NCHW.
#[inline(always)]
pub(crate) fn weight_tile<T: Float>(
    xc: &[T],
    cpad: usize,
    c0: usize,
    grad_output: &[T],
    out_channels: usize,
    co: usize,
) -> [Lanes<T>; 9] {
    let mut acc = [[T::ZERO; LANES]; 9];
    for (ni, image) in xc.chunks_exact(4 * cpad).enumerate() {
        let x: [Lanes<T>; 4] = std::array::from_fn(|q| lanes_at(image, q * cpad + c0));
        let dy = &grad_output[(ni * out_channels + co) * 4..][..4];
        for_each_pair!(|p, q, d| {
            fma_lanes(&mut acc[d], &x[q], dy[p]);
        });
    }
    acc
}

/// The forward's and the input gradient's shared driver: `out` is `(channels, 4, Npad)` and
/// `lanes` the rearranged source, `(Npad / LANES, source_channels, 4, LANES)`; one task per
/// channel of `out` stores, for every image block, the 4 pixel vectors `tile(block, channel)`.
fn per_channel<T: Float>(
    lanes: &[T],
    source_channels: usize,
    npad: usize,
    out: &mut [T],
    tile: impl Fn(&[T], usize) -> [Lanes<T>; 4] + Sync,
) {
    out.par_chunks_mut(4 * npad)
        .enumerate()
        .for_each(|(channel, out)| {
            let blocks = lanes.chunks_exact(source_channels * 4 * LANES);
            for (block, source) in blocks.enumerate() {
                store_pixels(&tile(source, channel), block, npad, out);
            }
        });
}

/// Direct forward; see [`crate::conv2d_forward`]. `workspace` holds [`workspace_len`] elements.
pub(crate) fn forward<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    workspace: &mut [T],
) {
    match g.kernel {
        3 => forward_k::<T, 3>(tier, g, input, weight, bias, output, workspace),
        _ => forward_k::<T, 5>(tier, g, input, weight, bias, output, workspace),
    }
}

fn forward_k<T: Float, const K: usize>(
    tier: Tier,
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    workspace: &mut [T],
) {
    let (n, c, cout, npad) = (g.batch, g.in_channels, g.out_channels, padded_batch(g));
    let (xt, rest) = workspace.split_at_mut(npad * c * 4);
    let yt = &mut rest[..cout * 4 * npad];
    to_image_lanes(input, n, c, xt);
    let (xt, first) = (&*xt, first_tap(K, g.padding));
    // yt: (Cout, 4, Npad), one output channel per task
    per_channel(xt, c, npad, yt, |xt_block, co| {
        let filter = &weight[co * c * K * K..][..c * K * K];
        let bias = bias.map_or(T::ZERO, |b| b[co]);
        arch::tile2x2_forward(tier, K, xt_block, filter, bias, first)
    });
    from_channel_rows(yt, cout, npad, output);
}

/// Direct input gradient; see [`crate::conv2d_backward_input`].
pub(crate) fn backward_input<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    weight: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    workspace: &mut [T],
) {
    match g.kernel {
        3 => backward_input_k::<T, 3>(tier, g, weight, grad_output, grad_input, workspace),
        _ => backward_input_k::<T, 5>(tier, g, weight, grad_output, grad_input, workspace),
    }
}

fn backward_input_k<T: Float, const K: usize>(
    tier: Tier,
    g: &Conv2dGeometry,
    weight: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    workspace: &mut [T],
) {
    let (n, c, cout, npad) = (g.batch, g.in_channels, g.out_channels, padded_batch(g));
    let (dyt, rest) = workspace.split_at_mut(npad * cout * 4);
    let dxt = &mut rest[..c * 4 * npad];
    to_image_lanes(grad_output, n, cout, dyt);
    let (dyt, first) = (&*dyt, first_tap(K, g.padding));
    // dxt: (C, 4, Npad), one input channel per task
    per_channel(dyt, cout, npad, dxt, |dyt_block, ci| {
        arch::tile2x2_input(tier, K, dyt_block, weight, (c, ci), first)
    });
    from_channel_rows(dxt, c, npad, grad_input);
}

/// Direct weight gradient; see [`crate::conv2d_backward_weight`].
pub(crate) fn backward_weight<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    input: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    workspace: &mut [T],
) {
    let (n, c, cout, k) = (g.batch, g.in_channels, g.out_channels, g.kernel);
    let (kk, cpad, first) = (k * k, c.next_multiple_of(LANES), first_tap(k, g.padding));
    // xc: (N, 4, Cpad), channels along the rows, the padded channels zero
    let xc = &mut workspace[..n * 4 * cpad];
    xc.par_chunks_mut(4 * cpad)
        .enumerate()
        .for_each(|(ni, image)| {
            for (q, row) in image.chunks_exact_mut(cpad).enumerate() {
                for (ci, d) in row.iter_mut().enumerate() {
                    *d = if ci < c {
                        input[(ni * c + ci) * 4 + q]
                    } else {
                        T::ZERO
                    };
                }
            }
        });
    let xc = &*xc;
    grad_weight
        .par_chunks_mut(c * kk)
        .enumerate()
        .for_each(|(co, filter)| {
            // A 2x2 image meets only the 3x3 taps from `first`: all of a 3x3 kernel, which the
            // loop below then writes, but only the middle of a 5x5 one, whose outer taps stay
            // zero. So only a 5x5 kernel is zeroed first: for alexnet's conv3-conv5 that would be
            // a second write of their weight gradients (12 MB a step).
            if k != 3 {
                filter.fill(T::ZERO);
            }
            for c0 in (0..c).step_by(LANES) {
                let acc = arch::tile2x2_weight(tier, xc, (cpad, c0), grad_output, (cout, co));
                for (l, taps) in filter[c0 * kk..].chunks_mut(kk).take(LANES).enumerate() {
                    for (d, lanes) in acc.iter().enumerate() {
                        taps[first + (d / 3) * k + d % 3] = lanes[l];
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unrolled_pair_list_is_the_computed_one() {
        let mut listed = Vec::new();
        for_each_pair!(|p, q, d| {
            listed.push((p, q, d));
        });
        assert_eq!(listed, PAIRS.to_vec());
    }
}
