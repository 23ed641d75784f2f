//! Max pooling: the forward (with argmax), its backward, and an argmax-free forward for inference.
//!
//! Backward derivation. Within one (n, c) plane, `y[j] = x[a(j)]` where `a(j)` is the argmax of
//! window `j`. Away from ties the winner does not move under a small change of `x`, so
//! `dy[j]/dx[i] = 1 if a(j) == i else 0`, and the chain rule gives
//! `dx[i] = sum over j with a(j) == i of dy[j]`: a scatter-add of `dy` to the stored argmax. With
//! overlapping windows (stride < kernel) one input can win several windows, so the adds
//! accumulate. At a tie the function is not differentiable; routing the gradient to the first
//! maximum (the one the forward chose) is a valid subgradient choice.

use rayon::prelude::*;
use tensor::cpu::Tier;
use tensor::f32_view::{as_f32, as_f32_mut};
use tensor::Float;

use crate::window2x2;

use crate::relu_max_pool2d::NO_WINNER;
use crate::Pool2dGeometry;

/// Fewest input elements a rayon task should cover: smaller tasks cost more to schedule than
/// the pooling they carry. It groups whole planes into tasks and changes no arithmetic.
const TASK_GRAIN: usize = 8 * 1024;

/// Planes per rayon task: the run a task pools, or the `with_min_len` of a per-plane split.
pub(crate) fn planes_per_task(g: &Pool2dGeometry) -> usize {
    TASK_GRAIN.div_ceil(g.in_plane().max(1))
}

/// Max pooling forward: writes each window's maximum to `output` and its position to `argmax`.
///
/// - `input`: `(N, C, H, W)`, `g.input_len()` elements.
/// - `output`: `(N, C, H_out, W_out)`, `g.output_len()` elements, overwritten.
/// - `argmax`: same shape as `output`; `argmax[i]` is the index of the winning element inside
///   its own (n, c) input plane, `row * in_w + col` in `0..in_h * in_w` (not a flat index into
///   `input`), so the u32 range is enough for any plane the geometry accepts.
///
/// Ties: the first maximum in row-major window order wins (comparison is strictly greater).
/// NaN: if any element of a window is NaN the output is NaN (the first NaN in row-major window
/// order, bit for bit) and the argmax points at it, so a NaN is propagated, never dropped.
///
/// Planes are pooled in parallel and independently, so the result is bitwise the same for any
/// number of threads. Panics if a buffer length does not match `g` (a programming error).
pub fn max_pool2d_forward<T: Float>(
    g: &Pool2dGeometry,
    input: &[T],
    output: &mut [T],
    argmax: &mut [u32],
) {
    let op = "max_pool2d_forward";
    g.assert_consistent(op);
    assert_len(op, "input", input.len(), g.input_len());
    assert_len(op, "output", output.len(), g.output_len());
    assert_len(op, "argmax", argmax.len(), g.output_len());
    if window2x2::applies(g) {
        // 2x2 windows at stride 2: 16 windows at a time (`window2x2::pool_planes`), the same
        // bits as the scan below.
        let (planes, tier) = (planes_per_task(g), tensor::cpu::tier());
        output
            .par_chunks_mut(planes * g.out_plane())
            .zip(argmax.par_chunks_mut(planes * g.out_plane()))
            .zip(input.par_chunks(planes * g.in_plane()))
            .for_each(|((out, arg), run)| window2x2::pool_planes(tier, g, run, out, arg));
        return;
    }
    output
        .par_chunks_mut(g.out_plane())
        .zip(argmax.par_chunks_mut(g.out_plane()))
        .zip(input.par_chunks(g.in_plane()))
        .with_min_len(planes_per_task(g))
        .for_each(|((out, arg), plane)| {
            // out, arg: (H_out, W_out); plane: (H, W)
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    let (value, index) = window_max(g, plane, oh, ow);
                    out[oh * g.out_w + ow] = value;
                    // Fits: the geometry caps in_h * in_w at u32::MAX.
                    arg[oh * g.out_w + ow] = index as u32;
                }
            }
        });
}

/// Max pooling backward: overwrites `grad_input` with the gradient of the pooling.
///
/// `grad_input` is first zeroed, then each `grad_output` element is added to the input
/// position its `argmax` names; overlapping windows that share a winner accumulate. An argmax
/// of [`NO_WINNER`] (a window [`crate::relu_max_pool2d_forward`] found without a positive
/// element) passes nothing.
///
/// - `grad_output`, `argmax`: `(N, C, H_out, W_out)`, `g.output_len()` elements; `argmax` as
///   written by [`max_pool2d_forward`] for the same geometry.
/// - `grad_input`: `(N, C, H, W)`, `g.input_len()` elements, overwritten.
///
/// Each plane is handled by one task, adding in row-major output order, so the result is
/// bitwise the same for any number of threads. Panics if a buffer length does not match `g`
/// or an argmax lies outside its plane.
pub fn max_pool2d_backward<T: Float>(
    g: &Pool2dGeometry,
    grad_output: &[T],
    argmax: &[u32],
    grad_input: &mut [T],
) {
    backward_on(
        tensor::cpu::tier(),
        g,
        grad_output,
        argmax,
        grad_input,
        Upstream::AsIs,
    )
}

/// What a backward scatters: the upstream gradient as it is, or as a ReLU rule at a fused
/// ReLU + pool's output changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// The gradient itself.
    AsIs,
    /// `max(g, 0)` (0 for a NaN or a zero of either sign): guided backpropagation's ReLU rule.
    Positive,
    /// `max(g, 0)`, each window without a winner ([`NO_WINNER`]) counting its first element
    /// (row-major) as its winner, as the pool of the ReLU's zeros would: deconvnet's ReLU rule,
    /// for windows that do not overlap.
    PositiveNoWinnerToFirst,
}

/// [`max_pool2d_backward`] of the upstream gradient as `upstream` says. Each value is changed
/// (and each window without a winner routed) as it is scattered, rather than in a full-size pass
/// of its own.
pub fn max_pool2d_backward_with<T: Float>(
    g: &Pool2dGeometry,
    grad_output: &[T],
    argmax: &[u32],
    grad_input: &mut [T],
    upstream: Upstream,
) {
    backward_on(
        tensor::cpu::tier(),
        g,
        grad_output,
        argmax,
        grad_input,
        upstream,
    )
}

/// [`max_pool2d_backward_with`] on `tier` (a tier the CPU lacks runs as the portable one would).
pub(crate) fn backward_on<T: Float>(
    tier: Tier,
    g: &Pool2dGeometry,
    grad_output: &[T],
    argmax: &[u32],
    grad_input: &mut [T],
    upstream: Upstream,
) {
    let op = "max_pool2d_backward";
    g.assert_consistent(op);
    assert_len(op, "grad_output", grad_output.len(), g.output_len());
    assert_len(op, "argmax", argmax.len(), g.output_len());
    assert_len(op, "grad_input", grad_input.len(), g.input_len());
    let in_plane = g.in_plane();
    // Non-overlapping 2x2 windows of f32 take the vector kernel (AVX-512 or AVX2), which writes
    // each value once (same bits); the rest zero the plane and scatter. Below 4 windows a row (deep's 3x3 and
    // 1x1 pool outputs) the vector setup costs more than the scatter (`benches/pool.rs`).
    let fast_2x2 = window2x2::applies(g) && g.out_w >= 4 && tier.avx2_fma();
    grad_input
        .par_chunks_mut(in_plane)
        .zip(grad_output.par_chunks(g.out_plane()))
        .zip(argmax.par_chunks(g.out_plane()))
        .with_min_len(planes_per_task(g))
        .for_each(|((grad_plane, grad_out), arg)| {
            // grad_plane: (H, W); grad_out, arg: (H_out, W_out)
            scatter_plane(tier, g, fast_2x2, grad_out, arg, grad_plane, upstream);
        });
}

/// One plane of the backward: `grad_plane` overwritten with the scatter of `grad_out`, each
/// value changed as `upstream` says as it is scattered, so the rule costs no pass of its own.
fn scatter_plane<T: Float>(
    tier: Tier,
    g: &Pool2dGeometry,
    fast_2x2: bool,
    grad_out: &[T],
    arg: &[u32],
    grad_plane: &mut [T],
    upstream: Upstream,
) {
    if let (true, Some(dy), Some(dx)) = (fast_2x2, as_f32(grad_out), as_f32_mut(grad_plane)) {
        if crate::arch::backward_plane_2x2_f32(tier, g, dy, arg, dx, upstream) {
            return;
        }
    }
    let in_plane = g.in_plane();
    grad_plane.fill(T::ZERO);
    let rows = grad_out
        .chunks_exact(g.out_w)
        .zip(arg.chunks_exact(g.out_w));
    for (oy, (dy_row, arg_row)) in rows.enumerate() {
        for (ox, (&dy, &a)) in dy_row.iter().zip(arg_row).enumerate() {
            let a = match (a, upstream) {
                // deconvnet: the window's first element, which a pool of the ReLU's zeros
                // would pick
                (NO_WINNER, Upstream::PositiveNoWinnerToFirst) => {
                    oy * g.stride * g.in_w + ox * g.stride
                }
                (NO_WINNER, _) => continue,
                (a, _) => a as usize,
            };
            assert!(
                a < in_plane,
                "max_pool2d_backward: argmax {a} lies outside its plane of {in_plane} elements"
            );
            let dy = if upstream != Upstream::AsIs && !(dy > T::ZERO) {
                T::ZERO
            } else {
                dy
            };
            grad_plane[a] += dy;
        }
    }
}

/// Max pooling forward without argmax, for inference (no-record mode).
///
/// Writes exactly the values [`max_pool2d_forward`] writes (same ties, same NaN rule, bit for
/// bit), without the argmax buffer a backward would need.
pub fn max_pool2d_forward_inference<T: Float>(g: &Pool2dGeometry, input: &[T], output: &mut [T]) {
    let op = "max_pool2d_forward_inference";
    g.assert_consistent(op);
    assert_len(op, "input", input.len(), g.input_len());
    assert_len(op, "output", output.len(), g.output_len());
    output
        .par_chunks_mut(g.out_plane())
        .zip(input.par_chunks(g.in_plane()))
        .with_min_len(planes_per_task(g))
        .for_each(|(out, plane)| {
            // out: (H_out, W_out); plane: (H, W)
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    out[oh * g.out_w + ow] = window_max(g, plane, oh, ow).0;
                }
            }
        });
}

/// The value and in-plane index of the winner of window `(oh, ow)` of one `(H, W)` plane.
///
/// Shared by both forwards so they cannot disagree on ties or NaN.
#[inline(always)]
fn window_max<T: Float>(g: &Pool2dGeometry, plane: &[T], oh: usize, ow: usize) -> (T, usize) {
    if g.kernel == 2 && g.stride == 2 {
        window_max_2x2(g, plane, oh, ow)
    } else {
        window_max_any(g, plane, oh, ow)
    }
}

/// [`window_max`] for the common 2x2, stride-2 window, unrolled into selects the compiler keeps
/// branch-free. A window holding a NaN (never in sound training) goes to the general loop, so
/// the result, ties and NaN included, is exactly [`window_max_any`]'s.
#[inline(always)]
fn window_max_2x2<T: Float>(g: &Pool2dGeometry, plane: &[T], oh: usize, ow: usize) -> (T, usize) {
    let first = 2 * oh * g.in_w + 2 * ow;
    let (top, bottom) = (
        &plane[first..first + 2],
        &plane[first + g.in_w..first + g.in_w + 2],
    );
    let (a, b, c, d) = (top[0], top[1], bottom[0], bottom[1]);
    if is_nan(a) || is_nan(b) || is_nan(c) || is_nan(d) {
        return window_max_any(g, plane, oh, ow);
    }
    // scan order (kh, kw) with a strict `>`: the first of equal maxima wins
    let (mut best, mut index) = (a, first);
    if b > best {
        (best, index) = (b, first + 1);
    }
    if c > best {
        (best, index) = (c, first + g.in_w);
    }
    if d > best {
        (best, index) = (d, first + g.in_w + 1);
    }
    (best, index)
}

/// The reference scan of window `(oh, ow)` (the general loop, NaN rule included): what the
/// vector kernels fall back to and are tested against.
pub(crate) fn window_max_reference<T: Float>(
    g: &Pool2dGeometry,
    plane: &[T],
    oh: usize,
    ow: usize,
) -> (T, usize) {
    window_max_any(g, plane, oh, ow)
}

/// [`window_max`] for any window: the reference scan.
#[inline(always)]
fn window_max_any<T: Float>(g: &Pool2dGeometry, plane: &[T], oh: usize, ow: usize) -> (T, usize) {
    let top = oh * g.stride;
    let left = ow * g.stride;
    let mut best_index = top * g.in_w + left;
    let mut best = plane[best_index];
    if is_nan(best) {
        return (best, best_index);
    }
    for kh in 0..g.kernel {
        let row_start = (top + kh) * g.in_w + left;
        // One slice per window row: the inner loop then needs no bounds checks.
        let row = &plane[row_start..row_start + g.kernel];
        for (kw, &v) in row.iter().enumerate() {
            // Strictly greater, so a tie keeps the earlier element. A NaN compares false
            // with everything and would be skipped silently, so it is caught here and ends
            // the search: the first NaN is the window's result.
            if v > best {
                best = v;
                best_index = row_start + kw;
            } else if is_nan(v) {
                return (v, row_start + kw);
            }
        }
    }
    (best, best_index)
}

/// True for NaN (the `Float` trait has no `is_nan`): NaN is the only value unequal to itself.
#[inline(always)]
#[allow(clippy::eq_op)]
fn is_nan<T: Float>(v: T) -> bool {
    v != v
}

/// Panics with the op, the buffer name and both lengths when a buffer does not fit the geometry.
pub(crate) fn assert_len(op: &str, buffer: &str, found: usize, expected: usize) {
    assert!(
        found == expected,
        "{op}: {buffer} has {found} elements, geometry expects {expected}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::testing::require_tier;

    /// The AVX-512 and AVX2 tiers' 2x2 backward (each value written once) against the portable
    /// scatter, bit for bit, on argmaxes from a real forward (ties, negatives, no winner).
    #[test]
    #[cfg_attr(
        not(target_arch = "x86_64"),
        ignore = "needs avx512 or avx2: not an x86-64 target"
    )]
    fn the_x86_tiers_backward_has_the_portable_bits_needs_avx512_or_avx2() {
        const NAME: &str = "the_x86_tiers_backward_has_the_portable_bits_needs_avx512_or_avx2";
        for tier in [Tier::Avx512, Tier::Avx2] {
            if require_tier(tier, NAME) {
                same_bits_as_portable(tier);
            }
        }
    }

    fn same_bits_as_portable(tier: Tier) {
        for (h, w) in [(28, 28), (14, 14), (9, 65), (8, 8), (6, 10)] {
            let g = Pool2dGeometry::new(2, 3, h, w, 2, 2).expect("geometry");
            let x: Vec<f32> = (0..g.input_len())
                .map(|i| ((i * 7919 % 23) as f32 - 11.0) / 4.0)
                .collect();
            let (mut y, mut arg) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
            crate::relu_max_pool2d_forward(&g, &x, &mut y, &mut arg);
            let dy: Vec<f32> = (0..g.output_len())
                .map(|i| {
                    if i % 7 == 0 {
                        -0.0
                    } else {
                        i as f32 * 0.75 - 3.0
                    }
                })
                .collect();
            let (mut fast, mut portable) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
            backward_on(tier, &g, &dy, &arg, &mut fast, Upstream::AsIs);
            backward_on(Tier::Portable, &g, &dy, &arg, &mut portable, Upstream::AsIs);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&portable), "{tier} {h}x{w}");
            // The positive variant is the plain scatter of the clamped values, on this tier.
            let clamped: Vec<f32> = dy.iter().map(|&v| if v > 0.0 { v } else { 0.0 }).collect();
            let mut want = vec![f32::NAN; x.len()];
            backward_on(tier, &g, &clamped, &arg, &mut want, Upstream::AsIs);
            backward_on(tier, &g, &dy, &arg, &mut fast, Upstream::Positive);
            assert_eq!(bits(&fast), bits(&want), "positive, {tier} {h}x{w}");
        }
    }

    /// The positive variant on the portable tier and on overlapping windows (3/2): the scatter
    /// of max(g, 0), zeros of either sign and NaN becoming +0.
    #[test]
    fn the_positive_backward_scatters_the_clamped_gradient() {
        let g = Pool2dGeometry::new(2, 2, 7, 7, 3, 2).expect("geometry");
        let x: Vec<f32> = (0..g.input_len())
            .map(|i| ((i * 7919 % 23) as f32 - 11.0) / 4.0)
            .collect();
        let (mut y, mut arg) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
        max_pool2d_forward(&g, &x, &mut y, &mut arg);
        let dy: Vec<f32> = (0..g.output_len())
            .map(|i| match i % 5 {
                0 => -0.0,
                1 => f32::NAN,
                _ => i as f32 * 0.5 - 8.0,
            })
            .collect();
        let clamped: Vec<f32> = dy.iter().map(|&v| if v > 0.0 { v } else { 0.0 }).collect();
        let (mut got, mut want) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
        max_pool2d_backward_with(&g, &dy, &arg, &mut got, Upstream::Positive);
        max_pool2d_backward(&g, &clamped, &arg, &mut want);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
        assert!(got.iter().any(|&v| v > 0.0) && got.iter().all(|&v| v >= 0.0));
    }

    /// Deconvnet's scatter through a fused ReLU + pool is that of the clamped gradient through
    /// a pool of the ReLU's output (which sends a window of zeros to its first element), bit
    /// for bit, on every tier the CPU has and on windows of 2/2 and 3/3.
    #[test]
    fn no_winner_to_first_is_the_pool_of_the_relu_s_zeros() {
        const NAME: &str = "no_winner_to_first_is_the_pool_of_the_relu_s_zeros";
        for tier in [Tier::Avx512, Tier::Avx2, Tier::Portable] {
            if tier != Tier::Portable && !require_tier(tier, &format!("{NAME} on {tier}")) {
                continue;
            }
            for (side, k) in [(28, 2), (14, 2), (9, 3)] {
                let g = Pool2dGeometry::new(2, 3, side, side, k, k).expect("geometry");
                let x: Vec<f32> = (0..g.input_len())
                    .map(|i| ((i as f32 * 0.37).sin() - 0.6) * 4.0)
                    .collect();
                let (mut y, mut fused_arg) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
                crate::relu_max_pool2d_forward(&g, &x, &mut y, &mut fused_arg);
                assert!(
                    fused_arg.contains(&NO_WINNER),
                    "some window has no positive value"
                );
                let relu: Vec<f32> = x.iter().map(|&v| v.max(0.0)).collect();
                let mut arg = vec![0; g.output_len()];
                max_pool2d_forward(&g, &relu, &mut y, &mut arg);
                let dy: Vec<f32> = (0..g.output_len()).map(|i| i as f32 * 0.25 - 9.0).collect();
                let clamped: Vec<f32> = dy.iter().map(|&v| v.max(0.0)).collect();
                let (mut got, mut want) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
                let upstream = Upstream::PositiveNoWinnerToFirst;
                backward_on(tier, &g, &dy, &fused_arg, &mut got, upstream);
                backward_on(tier, &g, &clamped, &arg, &mut want, Upstream::AsIs);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{tier} {side}x{side} / {k}");
            }
        }
    }
}
