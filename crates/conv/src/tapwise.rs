//! Convolution on tiny maps as a sum of per-tap GEMMs, skipping the padding.
//!
//! On a small map many of a kernel's taps read padding (a 3x3 kernel with padding 1 on a 4x4
//! map: 7 of 16 output pixels' windows stick out), so im2col would fill its matrix with zeros
//! and the GEMM would multiply them. Maps with no more pixels than the kernel has taps (AlexNet's
//! 2x2 layers) take [`crate::unrolled`] instead, which needs one GEMM per pass, and same 3x3
//! convolutions take [`crate::direct3x3`] on the AVX-512 tier; this path serves the other small
//! maps (up to 16 pixels; 4x4 maps without AVX-512) at batches of 32 or more. Every output pixel
//! `p` is a sum over the taps `t` that read an input pixel `q = p + t - padding`:
//!
//! `Y_p (Cout x N) = sum over valid t of W_t (Cout x C) * X_q (C x N)`
//!
//! where `W_t = W[:, :, ky, kx]`, and every operand is a contiguous matrix: the weight is copied
//! tap-major, `(K*K, Cout, C)`, and the activations are held pixel-major, `X` as `(Q, C, N)` and
//! `Y` as `(P, Cout, N)`, with the batch along the columns. Only these permutes copy data. The backward passes are the same sums transposed:
//!
//! - `dX_q = sum over (t, p) with q = p + t - padding of W_t^T * dY_p`;
//! - `dW_t = sum over valid p of dY_p * X_q^T`, the batch reduced inside each GEMM.
//!
//! Every output matrix is summed over its taps in the fixed (ky, kx) order and each GEMM is
//! [`gemm_par`], bitwise the same for any thread count, so the passes are too.

use rayon::prelude::*;

use tensor::{gemm_par, Float, MatRef};

use crate::blocks::min_items;
use crate::Conv2dGeometry;

/// Largest input or output map (pixels) the tap path takes: each (pixel, tap) pair is its own
/// GEMM, so bigger maps are better served by im2col's few large GEMMs.
const MAX_MAP_PIXELS: usize = 16;

/// Fewest images for the tap path: every (pixel, tap) GEMM repacks its `Cout x C` weight slice,
/// which is cheap next to `N` multiply-adds per packed weight only for a large batch.
const MIN_BATCH: usize = 32;

/// True when the convolution takes the tap path: stride 1, small input and output maps, a big
/// enough batch, some padding to skip (without padding im2col copies no zeros), and every
/// buffer size computable without overflow.
pub(crate) fn applies(g: &Conv2dGeometry) -> bool {
    let small = g.in_h * g.in_w <= MAX_MAP_PIXELS && g.out_h * g.out_w <= MAX_MAP_PIXELS;
    let fits = g
        .input_len()
        .checked_add(g.output_len())
        .and_then(|len| len.checked_add(g.weight_len()))
        .is_some();
    g.stride == 1 && g.padding > 0 && small && g.batch >= MIN_BATCH && fits
}

/// Workspace elements the tap path needs: both activations pixel-major, plus the weight (or its
/// gradient) tap-major.
pub(crate) fn workspace_len(g: &Conv2dGeometry) -> usize {
    g.input_len() + g.output_len() + g.weight_len()
}

/// The input pixel (iy, ix) tap (ky, kx) reads at output pixel (oy, ox), if it is inside the
/// input (stride 1).
fn source(g: &Conv2dGeometry, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
    let iy = (oy + ky).checked_sub(g.padding).filter(|&iy| iy < g.in_h)?;
    let ix = (ox + kx).checked_sub(g.padding).filter(|&ix| ix < g.in_w)?;
    Some(iy * g.in_w + ix)
}

/// The output pixel whose tap (ky, kx) reads input pixel (iy, ix), if any: [`source`] inverted.
fn target(g: &Conv2dGeometry, iy: usize, ix: usize, ky: usize, kx: usize) -> Option<usize> {
    let oy = (iy + g.padding)
        .checked_sub(ky)
        .filter(|&oy| oy < g.out_h)?;
    let ox = (ix + g.padding)
        .checked_sub(kx)
        .filter(|&ox| ox < g.out_w)?;
    Some(oy * g.out_w + ox)
}

/// Every tap (ky, kx) in the fixed order the sums use.
fn taps(k: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..k).flat_map(move |ky| (0..k).map(move |kx| (ky, kx)))
}

/// Matrix `index` of a buffer of contiguous `rows x cols` matrices (a pixel of a pixel-major
/// activation, a tap of a tap-major weight).
fn matrix<T>(buf: &[T], index: usize, rows: usize, cols: usize) -> MatRef<'_, T> {
    MatRef::row_major(&buf[index * rows * cols..][..rows * cols], rows, cols)
}

/// `out = sum of a * b` over `terms`, in their order (zero if there are none): the first
/// product overwrites, the rest accumulate.
fn gemm_sum<'a, T: Float + 'a>(
    out: &mut [T],
    terms: impl Iterator<Item = (MatRef<'a, T>, MatRef<'a, T>)>,
) {
    let mut beta = T::ZERO;
    for (a, b) in terms {
        gemm_par(T::ONE, a, b, beta, out);
        beta = T::ONE;
    }
    if beta == T::ZERO {
        out.fill(T::ZERO);
    }
}

/// The weight tap-major, `(K*K, Cout, C)`: every `W_t` becomes a contiguous matrix, so each
/// GEMM packs it with sequential reads. Read in place, `W_t` has a column stride of `K*K`, and
/// packing it once per (pixel, tap) pair was a quarter of an AlexNet batch-128 step.
fn to_tap_major<T: Float>(g: &Conv2dGeometry, weight: &[T], out: &mut [T]) {
    let (cout, c, kk) = (g.out_channels, g.in_channels, g.kernel * g.kernel);
    out.par_chunks_mut(cout * c)
        .enumerate()
        .for_each(|(tap, wt)| {
            for (o, row) in wt.chunks_exact_mut(c).enumerate() {
                for (ci, v) in row.iter_mut().enumerate() {
                    *v = weight[(o * c + ci) * kk + tap];
                }
            }
        });
}

/// [`to_tap_major`] inverted: `[Cout, C, K, K]` from `(K*K, Cout, C)`.
fn from_tap_major<T: Float>(g: &Conv2dGeometry, tap_major: &[T], weight: &mut [T]) {
    let (cout, c, kk) = (g.out_channels, g.in_channels, g.kernel * g.kernel);
    weight
        .par_chunks_mut(c * kk)
        .enumerate()
        .for_each(|(o, filter)| {
            for (ci, taps) in filter.chunks_exact_mut(kk).enumerate() {
                for (tap, d) in taps.iter_mut().enumerate() {
                    *d = tap_major[(tap * cout + o) * c + ci];
                }
            }
        });
}

/// NCHW `(N, C, P)` to pixel-major `(P, C, N)`.
fn to_pixel_major<T: Float>(src: &[T], n: usize, c: usize, pixels: usize, dst: &mut [T]) {
    dst.par_chunks_mut(c * n)
        .enumerate()
        .with_min_len(min_items(c * n))
        .for_each(|(p, plane)| {
            for (ci, row) in plane.chunks_exact_mut(n).enumerate() {
                for (ni, d) in row.iter_mut().enumerate() {
                    *d = src[(ni * c + ci) * pixels + p];
                }
            }
        });
}

/// Pixel-major `(P, C, N)` to NCHW `(N, C, P)`, adding `bias[c]` if given.
fn from_pixel_major<T: Float>(
    src: &[T],
    n: usize,
    c: usize,
    pixels: usize,
    bias: Option<&[T]>,
    dst: &mut [T],
) {
    dst.par_chunks_mut(c * pixels)
        .enumerate()
        .with_min_len(min_items(c * pixels))
        .for_each(|(ni, image)| {
            for (ci, plane) in image.chunks_exact_mut(pixels).enumerate() {
                let b = bias.map_or(T::ZERO, |b| b[ci]);
                for (p, d) in plane.iter_mut().enumerate() {
                    *d = src[(p * c + ci) * n + ni] + b;
                }
            }
        });
}

/// Tap-path forward; see [`crate::conv2d_forward`]. `workspace` holds at least
/// [`workspace_len`] elements.
pub(crate) fn forward<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    workspace: &mut [T],
) {
    let (n, c, cout, k) = (g.batch, g.in_channels, g.out_channels, g.kernel);
    let (xq, rest) = workspace.split_at_mut(g.input_len());
    let (yp, rest) = rest.split_at_mut(g.output_len());
    let wt = &mut rest[..g.weight_len()];
    to_pixel_major(input, n, c, g.in_h * g.in_w, xq);
    to_tap_major(g, weight, wt);
    let (xq, wt): (&[T], &[T]) = (xq, wt);
    // Y_p = sum over the taps that read the input of W_t * X_q
    yp.par_chunks_mut(cout * n).enumerate().for_each(|(p, y)| {
        let (oy, ox) = (p / g.out_w, p % g.out_w);
        let terms = taps(k).filter_map(|(ky, kx)| {
            let q = source(g, oy, ox, ky, kx)?;
            Some((matrix(wt, ky * k + kx, cout, c), matrix(xq, q, c, n)))
        });
        gemm_sum(y, terms);
    });
    from_pixel_major(yp, n, cout, g.out_h * g.out_w, bias, output);
}

/// Tap-path input gradient; see [`crate::conv2d_backward_input`].
pub(crate) fn backward_input<T: Float>(
    g: &Conv2dGeometry,
    weight: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    workspace: &mut [T],
) {
    let (n, c, cout, k) = (g.batch, g.in_channels, g.out_channels, g.kernel);
    let (dxq, rest) = workspace.split_at_mut(g.input_len());
    let (dyp, rest) = rest.split_at_mut(g.output_len());
    let wt = &mut rest[..g.weight_len()];
    to_pixel_major(grad_output, n, cout, g.out_h * g.out_w, dyp);
    to_tap_major(g, weight, wt);
    let (dyp, wt): (&[T], &[T]) = (dyp, wt);
    // dX_q = sum over the (tap, output pixel) pairs that read input pixel q of W_t^T * dY_p
    dxq.par_chunks_mut(c * n).enumerate().for_each(|(q, dx)| {
        let (iy, ix) = (q / g.in_w, q % g.in_w);
        let terms = taps(k).filter_map(|(ky, kx)| {
            let p = target(g, iy, ix, ky, kx)?;
            Some((
                matrix(wt, ky * k + kx, cout, c).t(),
                matrix(dyp, p, cout, n),
            ))
        });
        gemm_sum(dx, terms);
    });
    from_pixel_major(dxq, n, c, g.in_h * g.in_w, None, grad_input);
}

/// Tap-path weight gradient; see [`crate::conv2d_backward_weight`].
pub(crate) fn backward_weight<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    workspace: &mut [T],
) {
    let (n, c, cout, k) = (g.batch, g.in_channels, g.out_channels, g.kernel);
    let (xq, rest) = workspace.split_at_mut(g.input_len());
    let (dyp, rest) = rest.split_at_mut(g.output_len());
    let dwt = &mut rest[..g.weight_len()];
    to_pixel_major(input, n, c, g.in_h * g.in_w, xq);
    to_pixel_major(grad_output, n, cout, g.out_h * g.out_w, dyp);
    let (xq, dyp): (&[T], &[T]) = (xq, dyp);
    // dW_t = sum over the output pixels where tap t reads the input of dY_p * X_q^T
    dwt.par_chunks_mut(cout * c)
        .enumerate()
        .for_each(|(tap, dw)| {
            let (ky, kx) = (tap / k, tap % k);
            let pixels = (0..g.out_h).flat_map(|oy| (0..g.out_w).map(move |ox| (oy, ox)));
            let terms = pixels.filter_map(|(oy, ox)| {
                let q = source(g, oy, ox, ky, kx)?;
                let p = oy * g.out_w + ox;
                Some((matrix(dyp, p, cout, n), matrix(xq, q, c, n).t()))
            });
            gemm_sum(dw, terms);
        });
    from_tap_major(g, dwt, grad_weight);
}
