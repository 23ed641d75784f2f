//! Max-pool's backward for 2x2 windows at stride 2 (every pool of `deep`), f32, in AVX-512
//! intrinsics: each input-gradient value is written once, with no zero fill and no scatter.
//!
//! The windows do not overlap, so an input position belongs to at most one window and its
//! gradient is that window's output gradient if the window's argmax names it, else zero.
//! For 16 windows of one output row, four compares of the argmax against the four positions
//! give four masks; the masked gradients of the left and right columns are interleaved into
//! the 32 values of each of the two input rows. Positions outside every window (the last row
//! or column of an odd side) get zero.
//!
//! The general backward adds each gradient to a zeroed plane: `0.0 + dy`. The same addition is
//! made here, so the result is bit for bit the same (a gradient of -0.0 becomes +0.0 in both).
//! [`crate::NO_WINNER`] matches no position, so such a window passes nothing, as there. An
//! argmax naming a position outside its window (no forward writes one) makes the kernel decline
//! the plane, which the general scatter then handles (and panics on one outside the plane).

use std::arch::x86_64::*;

use tensor::cpu::first_lanes;

use crate::relu_max_pool2d::NO_WINNER;
use crate::{Pool2dGeometry, Upstream};

/// The input gradient of one plane: `grad_out` and `arg` its `(out_h, out_w)` output gradient
/// and argmax, `grad_in` its `(in_h, in_w)` input gradient, overwritten; with `positive`, each
/// gradient is taken as `max(dy, 0)` (0 for a NaN or either zero), as the general scatter's
/// [`crate::Upstream::Positive`] does. Returns false, with
/// `grad_in` partly written, when an argmax names a position outside its own window (no forward
/// writes one): the caller then runs the general scatter, whose contract covers that case.
///
/// # Safety
/// The CPU must have AVX-512F. The lengths are checked here.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn backward_plane(
    g: &Pool2dGeometry,
    grad_out: &[f32],
    arg: &[u32],
    grad_in: &mut [f32],
    upstream: Upstream,
) -> bool {
    let (w, out_w, out_h) = (g.in_w, g.out_w, g.out_h);
    assert!(g.kernel == 2 && g.stride == 2 && 2 * out_w <= w && 2 * out_h <= g.in_h);
    assert!(grad_out.len() == out_h * out_w && arg.len() == out_h * out_w);
    assert!(grad_in.len() == g.in_h * w);
    // lane j of a chunk: window j, whose top-left input is 2 * j past the chunk's first
    let steps = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    // the left and right columns' values interleaved: windows 0..8 and 8..16
    let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let (one, width) = (_mm512_set1_epi32(1), _mm512_set1_epi32(w as i32));
    let none = _mm512_set1_epi32(NO_WINNER as i32);
    let zero = _mm512_setzero_ps();
    let (dy_ptr, arg_ptr, dx_ptr) = (grad_out.as_ptr(), arg.as_ptr(), grad_in.as_mut_ptr());
    for oh in 0..out_h {
        let mut first = 0;
        while first < out_w {
            let n = (out_w - first).min(16);
            let at = oh * out_w + first;
            let mut dy = _mm512_add_ps(zero, _mm512_maskz_loadu_ps(first_lanes(n), dy_ptr.add(at)));
            if upstream != Upstream::AsIs {
                // `vmaxps` gives its second operand for a NaN or two zeros: +0.0 here
                dy = _mm512_max_ps(dy, zero);
            }
            let a = _mm512_maskz_loadu_epi32(first_lanes(n), arg_ptr.add(at).cast::<i32>());
            let start = 2 * oh * w + 2 * first;
            // Fits: the geometry caps a plane at u32::MAX elements (compared as bit patterns).
            let top_left = _mm512_add_epi32(_mm512_set1_epi32(start as i32), steps);
            let bottom_left = _mm512_add_epi32(top_left, width);
            let mut masks = [
                _mm512_cmpeq_epi32_mask(a, top_left),
                _mm512_cmpeq_epi32_mask(a, _mm512_add_epi32(top_left, one)),
                _mm512_cmpeq_epi32_mask(a, bottom_left),
                _mm512_cmpeq_epi32_mask(a, _mm512_add_epi32(bottom_left, one)),
            ];
            let no_winner = _mm512_cmpeq_epi32_mask(a, none);
            let placed = masks[0] | masks[1] | masks[2] | masks[3] | no_winner;
            if upstream == Upstream::PositiveNoWinnerToFirst {
                // deconvnet: a window without a winner sends its gradient to its first element
                masks[0] |= no_winner;
            }
            if placed & first_lanes(n) != first_lanes(n) {
                return false;
            }
            for (row, left, right) in [(start, masks[0], masks[1]), (start + w, masks[2], masks[3])]
            {
                let (l, r) = (
                    _mm512_maskz_mov_ps(left, dy),
                    _mm512_maskz_mov_ps(right, dy),
                );
                let values = 2 * n;
                let dst = dx_ptr.add(row);
                let lows = _mm512_permutex2var_ps(l, low, r);
                _mm512_mask_storeu_ps(dst, first_lanes(values.min(16)), lows);
                if values > 16 {
                    let highs = _mm512_permutex2var_ps(l, high, r);
                    _mm512_mask_storeu_ps(dst.add(16), first_lanes(values - 16), highs);
                }
            }
            first += 16;
        }
        if w > 2 * out_w {
            grad_in[2 * oh * w + w - 1] = 0.0;
            grad_in[(2 * oh + 1) * w + w - 1] = 0.0;
        }
    }
    grad_in[2 * out_h * w..].fill(0.0);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::x86_64::backward2x2_cases as cases;
    use tensor::cpu::Tier;
    use tensor::testing::require_tier;

    /// The kernel as a safe closure, for the shared cases.
    fn kernel(g: &Pool2dGeometry, dy: &[f32], arg: &[u32], dx: &mut [f32], up: Upstream) -> bool {
        // SAFETY: every caller checked the tier first (`require_tier`).
        unsafe { backward_plane(g, dy, arg, dx, up) }
    }

    #[test]
    fn every_value_is_the_scatter_s_bit_for_bit_needs_avx512() {
        if require_tier(
            Tier::Avx512,
            "every_value_is_the_scatter_s_bit_for_bit_needs_avx512",
        ) {
            cases::every_value_is_the_scatter_s(&kernel);
        }
    }

    #[test]
    fn an_argmax_outside_its_window_is_declined_needs_avx512() {
        if require_tier(
            Tier::Avx512,
            "an_argmax_outside_its_window_is_declined_needs_avx512",
        ) {
            cases::an_argmax_outside_its_window_is_declined(&kernel);
        }
    }
}
