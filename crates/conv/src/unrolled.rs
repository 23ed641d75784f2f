//! Convolution on tiny maps as a dense layer on an unrolled weight: no im2col, no permutes.
//!
//! With `Q = H*W` input pixels and `P = OH*OW` output pixels, an NCHW image is a vector of
//! `C*Q` values and its output one of `Cout*P`, and the convolution is the linear map between
//! them whose `(Cout*P) x (C*Q)` matrix `U` has
//!
//! `U[(o, p), (c, q)] = W[o, c, ky, kx]` where tap `(ky, kx)` of output pixel `p` reads input
//! pixel `q`, and 0 where no tap does.
//!
//! So for a batch, with the images as rows, every pass is one GEMM on contiguous operands:
//!
//! - forward: `Y (N x Cout*P) = X (N x C*Q) * U^T`;
//! - input gradient: `dX (N x C*Q) = dY (N x Cout*P) * U`;
//! - weight gradient: `dU = dY^T * X`, then `dW[o, c, t]` = the sum of `dU` over the pixel
//!   pairs `(p, q)` that tap `t` joins ([`fold`]).
//!
//! `U` holds `P*Q` multiply-adds per channel pair where im2col's GEMM holds `P*K*K`, so this path
//! is taken only when `Q <= K*K`: AlexNet's conv2..conv5 on 2x2 Fashion-MNIST maps (16 against
//! im2col's 36 or 100, which are mostly padding) and `deep`'s conv4 on its 3x3 map (81 and 81, but
//! no im2col copies). With a batch of at most 64 images the GEMMs run on the narrow kernels, which
//! read `U` in place.
//!
//! Each GEMM is [`gemm_par`] and [`unroll`] and [`fold`] sum in an order fixed by the geometry,
//! so every pass is bitwise the same for any number of threads.

use rayon::prelude::*;

use tensor::cpu::Tier;
#[cfg(target_arch = "x86_64")]
use tensor::f32_view::{as_f32, as_f32_mut};
use tensor::{gemm_par, Float, MatRef};

#[cfg(target_arch = "x86_64")]
#[cfg(target_arch = "x86_64")]
use crate::arch::{self, PixelTables};

use crate::blocks::min_items;
use crate::Conv2dGeometry;

/// Largest `P*Q` (output pixels times input pixels) the path takes: `U` is `P*Q/(K*K)` times
/// the size of the weight, which must stay small next to the activations.
const MAX_PIXEL_PAIRS: usize = 81;

/// True when the convolution takes the unrolled path: the dense matrix multiplies no more than
/// im2col would (`Q <= K*K`), the maps are tiny, and every buffer size is computable.
pub(crate) fn applies(g: &Conv2dGeometry) -> bool {
    let (p, q) = (g.out_h * g.out_w, g.in_h * g.in_w);
    let fits =
        unrolled_len_checked(g).is_some() && g.input_len().checked_add(g.output_len()).is_some();
    q <= g.kernel * g.kernel && p * q <= MAX_PIXEL_PAIRS && fits
}

/// `(Cout*P) * (C*Q)`, the length of `U`, if it does not overflow.
fn unrolled_len_checked(g: &Conv2dGeometry) -> Option<usize> {
    (g.out_channels * g.out_h * g.out_w)
        .checked_mul(g.in_channels)?
        .checked_mul(g.in_h * g.in_w)
}

/// Values per input image, `C*Q`: the columns of `X`.
fn in_len(g: &Conv2dGeometry) -> usize {
    g.in_channels * g.in_h * g.in_w
}

/// Values per output image, `Cout*P`: the columns of `Y`.
fn out_len(g: &Conv2dGeometry) -> usize {
    g.out_channels * g.out_h * g.out_w
}

/// Workspace elements the path needs: `U` or `dU`.
pub(crate) fn workspace_len(g: &Conv2dGeometry) -> usize {
    unrolled_len_checked(g).expect("applies() checked the length")
}

#[cfg(target_arch = "x86_64")]
/// True when f32 operands take the AVX-512 intrinsics kernels: small enough, and a tier that
/// runs AVX-512 (so the CPU has it).
fn vector_kernels(tier: Tier, kk: usize, q: usize) -> bool {
    PixelTables::fits(kk, q) && tier.avx512()
}

/// For every pixel pair `(p, q)`, in row-major `P x Q` order, the tap `ky * K + kx` that joins
/// them, if any.
fn pair_taps(g: &Conv2dGeometry) -> Vec<Option<usize>> {
    let tap_1d = |out: usize, input: usize| {
        (input + g.padding)
            .checked_sub(out * g.stride)
            .filter(|&k| k < g.kernel)
    };
    let mut taps = Vec::with_capacity(g.out_h * g.out_w * g.in_h * g.in_w);
    for (oy, ox) in (0..g.out_h).flat_map(|oy| (0..g.out_w).map(move |ox| (oy, ox))) {
        for (iy, ix) in (0..g.in_h).flat_map(|iy| (0..g.in_w).map(move |ix| (iy, ix))) {
            let tap = tap_1d(oy, iy).zip(tap_1d(ox, ix));
            taps.push(tap.map(|(ky, kx)| ky * g.kernel + kx));
        }
    }
    taps
}

/// Writes `U` (row-major `(Cout*P) x (C*Q)`) from the `[Cout, C, K, K]` weight, one output
/// channel's `P` rows per task. Each row is written in order, `Q` values per input channel
/// gathered from that channel's taps followed by a zero, which the pairs without a tap read:
/// one indexed load per value, no branch.
pub(crate) fn unroll<T: Float>(tier: Tier, g: &Conv2dGeometry, weight: &[T], u: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    let (c, q, kk) = (g.in_channels, g.in_h * g.in_w, g.kernel * g.kernel);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = tier;
    #[cfg(target_arch = "x86_64")]
    if let (Some(w), Some(u), true) = (as_f32(weight), as_f32_mut(u), vector_kernels(tier, kk, q)) {
        let tables = PixelTables::new(&pair_taps(g), c, q, kk);
        let block = g.out_h * g.out_w * c * q;
        u.par_chunks_mut(block)
            .zip(w.par_chunks(c * kk))
            .with_min_len(min_items(block))
            .for_each(|(u, w)| arch::unroll_f32(tier, w, u, &tables));
        return;
    }
    unroll_scalar(g, weight, u);
}

/// [`unroll`] in scalar code, for any element type.
fn unroll_scalar<T: Float>(g: &Conv2dGeometry, weight: &[T], u: &mut [T]) {
    let (c, q, kk) = (g.in_channels, g.in_h * g.in_w, g.kernel * g.kernel);
    // per pixel pair, the tap it reads, or `kk` (the zero after the taps) for none
    let reads: Vec<usize> = pair_taps(g).iter().map(|t| t.unwrap_or(kk)).collect();
    // the weight with each filter's taps followed by a zero
    let mut taps_and_zero = vec![T::ZERO; weight.len() / kk * (kk + 1)];
    for (dst, src) in taps_and_zero
        .chunks_exact_mut(kk + 1)
        .zip(weight.chunks_exact(kk))
    {
        dst[..kk].copy_from_slice(src);
    }
    let block = g.out_h * g.out_w * c * q;
    u.par_chunks_mut(block)
        .zip(taps_and_zero.par_chunks(c * (kk + 1)))
        .with_min_len(min_items(block))
        .for_each(|(rows, filter)| {
            for (row, pixel_reads) in rows.chunks_exact_mut(c * q).zip(reads.chunks_exact(q)) {
                for (dst, w) in row.chunks_exact_mut(q).zip(filter.chunks_exact(kk + 1)) {
                    for (d, &t) in dst.iter_mut().zip(pixel_reads) {
                        *d = w[t];
                    }
                }
            }
        });
}

/// `dW[o, c, t]` = the sum of `dU[(o, p), (c, q)]` over the pixel pairs `(p, q)` tap `t` joins,
/// in row-major `(p, q)` order; taps that join none get zero. Reads `dU` in order, as
/// [`unroll`] writes `U`.
fn fold<T: Float>(tier: Tier, g: &Conv2dGeometry, du: &[T], grad_weight: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    let (c, q, kk) = (g.in_channels, g.in_h * g.in_w, g.kernel * g.kernel);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = tier;
    #[cfg(target_arch = "x86_64")]
    if let (Some(du), Some(dw), true) = (
        as_f32(du),
        as_f32_mut(grad_weight),
        vector_kernels(tier, kk, q),
    ) {
        let tables = PixelTables::new(&pair_taps(g), c, q, kk);
        let block = g.out_h * g.out_w * c * q;
        dw.par_chunks_mut(c * kk)
            .zip(du.par_chunks(block))
            .with_min_len(min_items(block))
            .for_each(|(dw, du)| arch::fold_f32(tier, du, dw, &tables));
        return;
    }
    fold_scalar(g, du, grad_weight);
}

/// [`fold`] in scalar code, for any element type.
fn fold_scalar<T: Float>(g: &Conv2dGeometry, du: &[T], grad_weight: &mut [T]) {
    let (c, q, kk) = (g.in_channels, g.in_h * g.in_w, g.kernel * g.kernel);
    let taps = pair_taps(g);
    // per output pixel, (column within a channel's q values, tap) for the pairs that have a
    // tap; computed once, not allocated again for every output channel
    let pixel_pairs: Vec<Vec<(usize, usize)>> = taps
        .chunks_exact(q)
        .map(|row_taps| {
            row_taps
                .iter()
                .enumerate()
                .filter_map(|(qi, tap)| tap.map(|t| (qi, t)))
                .collect()
        })
        .collect();
    let block = g.out_h * g.out_w * c * q;
    grad_weight
        .par_chunks_mut(c * kk)
        .zip(du.par_chunks(block))
        .with_min_len(min_items(block))
        .for_each(|(filter, rows)| {
            filter.fill(T::ZERO);
            for (row, idx) in rows.chunks_exact(c * q).zip(&pixel_pairs) {
                for (src, dw) in row.chunks_exact(q).zip(filter.chunks_exact_mut(kk)) {
                    idx.iter().for_each(|&(qi, t)| dw[t] += src[qi]);
                }
            }
        });
}

/// Unrolled forward; see [`crate::conv2d_forward`]. `workspace` holds [`workspace_len`]
/// elements.
pub(crate) fn forward<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    workspace: &mut [T],
) {
    unroll(tier, g, weight, workspace);
    forward_unrolled(g, input, workspace, bias, output);
}

/// Forward from `U` as [`unroll`] wrote it (`u`, [`workspace_len`] elements).
pub(crate) fn forward_unrolled<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    u: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
) {
    let (cq, coutp, pixels) = (in_len(g), out_len(g), g.out_h * g.out_w);
    let u = MatRef::row_major(u, coutp, cq);
    // The bias goes in first and the GEMM adds to it, so the output is written in one pass.
    let beta = match bias {
        Some(b) => {
            output
                .par_chunks_mut(coutp)
                .with_min_len(min_items(coutp))
                .for_each(|image| {
                    for (plane, &bo) in image.chunks_exact_mut(pixels).zip(b) {
                        plane.fill(bo);
                    }
                });
            T::ONE
        }
        None => T::ZERO,
    };
    let x = MatRef::row_major(input, g.batch, cq);
    gemm_par(T::ONE, x, u.t(), beta, output);
}

/// Unrolled input gradient; see [`crate::conv2d_backward_input`].
pub(crate) fn backward_input<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    weight: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    workspace: &mut [T],
) {
    unroll(tier, g, weight, workspace);
    backward_input_unrolled(g, workspace, grad_output, grad_input);
}

/// Input gradient from `U` as [`unroll`] wrote it (`u`, [`workspace_len`] elements).
pub(crate) fn backward_input_unrolled<T: Float>(
    g: &Conv2dGeometry,
    u: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
) {
    let (cq, coutp) = (in_len(g), out_len(g));
    let u = MatRef::row_major(u, coutp, cq);
    let dy = MatRef::row_major(grad_output, g.batch, coutp);
    gemm_par(T::ONE, dy, u, T::ZERO, grad_input);
}

/// Unrolled weight gradient; see [`crate::conv2d_backward_weight`].
pub(crate) fn backward_weight<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    input: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    workspace: &mut [T],
) {
    let (cq, coutp) = (in_len(g), out_len(g));
    let dy_t = MatRef::row_major(grad_output, g.batch, coutp).t();
    let x = MatRef::row_major(input, g.batch, cq);
    gemm_par(T::ONE, dy_t, x, T::ZERO, workspace);
    fold(tier, g, workspace, grad_weight);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random_vec;
    use tensor::testing::require_tier;

    /// The vector unroll and fold (taken for f32 on the AVX-512 tier) against the scalar
    /// ones, bit for bit: `deep`'s conv4 (3x3 map), a 2x2 map, a 3x3 map at stride 2, a 2x2 map
    /// under a padded 2x2 kernel.
    #[test]
    #[cfg_attr(
        not(target_arch = "x86_64"),
        ignore = "needs avx512: not an x86-64 target"
    )]
    fn vector_unroll_and_fold_match_the_scalar_ones_bit_for_bit_needs_avx512() {
        const NAME: &str = "vector_unroll_and_fold_match_the_scalar_ones_bit_for_bit_needs_avx512";
        if !require_tier(Tier::Avx512, NAME) {
            return;
        }
        for (c, side, cout, k, stride, pad) in [
            (16, 3, 32, 3, 1, 1),
            (5, 2, 7, 3, 1, 1),
            (3, 3, 4, 3, 2, 1),
            (2, 2, 3, 2, 1, 1),
        ] {
            let g = Conv2dGeometry::new(2, c, side, side, cout, k, stride, pad).expect("geometry");
            assert!(applies(&g), "{c} {side} {cout} {k}");
            #[cfg(target_arch = "x86_64")]
            assert!(
                vector_kernels(Tier::Avx512, k * k, side * side),
                "the vector kernels run"
            );
            let w: Vec<f32> = random_vec(g.weight_len(), 1)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let len = workspace_len(&g);
            let (mut fast, mut scalar) = (vec![f32::NAN; len], vec![f32::NAN; len]);
            unroll(Tier::Avx512, &g, &w, &mut fast);
            unroll_scalar(&g, &w, &mut scalar);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&scalar), "unroll, side {side}");

            // magnitudes from 1e-3 to 1e3, so a different order would round differently
            let du: Vec<f32> = random_vec(len, 2)
                .iter()
                .enumerate()
                .map(|(i, v)| (v * 10f64.powi(i as i32 % 7 - 3)) as f32)
                .collect();
            let (mut fast, mut scalar) = (vec![f32::NAN; w.len()], vec![f32::NAN; w.len()]);
            fold(Tier::Avx512, &g, &du, &mut fast);
            fold_scalar(&g, &du, &mut scalar);
            assert_eq!(bits(&fast), bits(&scalar), "fold, side {side}");
        }
    }
}
