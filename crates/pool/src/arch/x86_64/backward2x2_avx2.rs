//! Max-pool's backward for 2x2 windows at stride 2, f32, in AVX2 intrinsics: the AVX-512
//! kernel (`backward2x2_f32`) in 8-lane vectors, for CPUs with AVX2 but no AVX-512.
//!
//! Each input-gradient value is written once, with no zero fill and no scatter. For 8 windows of
//! one output row, four compares of the argmax against the four positions give four lane masks;
//! the masked gradients of the left and right columns are interleaved (unpack, then a swap of
//! 128-bit halves) into the 16 values of each of the two input rows. A row's last chunk of fewer
//! than 8 windows loads and stores whole vectors where the plane has room (the extra values are
//! overwritten later), and through stack buffers at the plane's end. The values are the scatter's: `0.0 + dy`
//! at the winner, +0.0 elsewhere, so the results are the AVX-512 kernel's and the general
//! backward's bit for bit.

use std::arch::x86_64::*;

use crate::relu_max_pool2d::NO_WINNER;
use crate::{Pool2dGeometry, Upstream};

/// Stores the first `n` of the 16 values `lo` (lanes 0..8) and `hi` (8..16) at `dst`, where
/// `room` says whether all 16 fit in the buffer. With room, all 16 go in two plain stores: the
/// extra values land on positions that their own stores (or the zero fill of the columns and
/// rows no window covers) overwrite afterwards: only a row's last chunk is partial, and it is
/// stored before the row's other chunks and the rows below. Without room, the store goes through a stack buffer: AVX2's masked store
/// (`vmaskmovps`) is microcoded and slow on AMD's cores, and a short `memcpy` per row cost 6 %
/// of a `deep` batch-128 training step.
#[inline(always)]
unsafe fn store_first(dst: *mut f32, n: usize, room: bool, lo: __m256, hi: __m256) {
    if n == 16 || room {
        _mm256_storeu_ps(dst, lo);
        _mm256_storeu_ps(dst.add(8), hi);
    } else {
        let mut buf = [0.0f32; 16];
        _mm256_storeu_ps(buf.as_mut_ptr(), lo);
        _mm256_storeu_ps(buf.as_mut_ptr().add(8), hi);
        std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, n);
    }
}

/// The input gradient of one plane, as `backward2x2_f32::backward_plane` (`positive` the same
/// clamp): returns false, with
/// `grad_in` partly written, when an argmax names a position outside its own window.
///
/// # Safety
/// The CPU must have AVX2. The lengths are checked here.
#[target_feature(enable = "avx2")]
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
    let steps = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    let (one, width) = (_mm256_set1_epi32(1), _mm256_set1_epi32(w as i32));
    let none = _mm256_set1_epi32(NO_WINNER as i32);
    let zero = _mm256_setzero_ps();
    let (dy_ptr, arg_ptr, dx_ptr) = (grad_out.as_ptr(), arg.as_ptr(), grad_in.as_mut_ptr());
    for oh in 0..out_h {
        // the row's last chunk first: the extra values of its whole-vector stores land on the
        // next row's first columns, which the other chunks write after it
        for first in (0..out_w).step_by(8).rev() {
            let n = (out_w - first).min(8);
            let at = oh * out_w + first;
            // a row's last chunk of fewer than 8 windows loads 8 where the plane has them: the
            // extra lanes only reach the stores' extra values
            let (dy, a) = if at + 8 <= grad_out.len() {
                (
                    _mm256_loadu_ps(dy_ptr.add(at)),
                    _mm256_loadu_si256(arg_ptr.add(at).cast::<__m256i>()),
                )
            } else {
                // the plane's last, partial chunk: through stack buffers, as the stores
                let (mut dy_buf, mut arg_buf) = ([0.0f32; 8], [0u32; 8]);
                dy_buf[..n].copy_from_slice(&grad_out[at..at + n]);
                arg_buf[..n].copy_from_slice(&arg[at..at + n]);
                (
                    _mm256_loadu_ps(dy_buf.as_ptr()),
                    _mm256_loadu_si256(arg_buf.as_ptr().cast::<__m256i>()),
                )
            };
            let mut dy = _mm256_add_ps(zero, dy);
            if upstream != Upstream::AsIs {
                // `vmaxps` gives its second operand for a NaN or two zeros: +0.0 here
                dy = _mm256_max_ps(dy, zero);
            }
            let start = 2 * oh * w + 2 * first;
            // Fits: the geometry caps a plane at u32::MAX elements (compared as bit patterns).
            let top_left = _mm256_add_epi32(_mm256_set1_epi32(start as i32), steps);
            let bottom_left = _mm256_add_epi32(top_left, width);
            let mut masks = [
                _mm256_cmpeq_epi32(a, top_left),
                _mm256_cmpeq_epi32(a, _mm256_add_epi32(top_left, one)),
                _mm256_cmpeq_epi32(a, bottom_left),
                _mm256_cmpeq_epi32(a, _mm256_add_epi32(bottom_left, one)),
            ];
            let no_winner = _mm256_cmpeq_epi32(a, none);
            let placed = _mm256_or_si256(
                _mm256_or_si256(
                    _mm256_or_si256(masks[0], masks[1]),
                    _mm256_or_si256(masks[2], masks[3]),
                ),
                no_winner,
            );
            if upstream == Upstream::PositiveNoWinnerToFirst {
                // deconvnet: a window without a winner sends its gradient to its first element
                masks[0] = _mm256_or_si256(masks[0], no_winner);
            }
            // every loaded lane must name a position of its window (or none)
            let placed_bits = _mm256_movemask_ps(_mm256_castsi256_ps(placed)) as u32;
            let wanted = (1u32 << n) - 1;
            if placed_bits & wanted != wanted {
                return false;
            }
            for (row, left, right) in [(start, masks[0], masks[1]), (start + w, masks[2], masks[3])]
            {
                let l = _mm256_and_ps(_mm256_castsi256_ps(left), dy);
                let r = _mm256_and_ps(_mm256_castsi256_ps(right), dy);
                // [l0 r0 l1 r1 | l4 r4 l5 r5] and [l2 r2 l3 r3 | l6 r6 l7 r7]
                let (u, v) = (_mm256_unpacklo_ps(l, r), _mm256_unpackhi_ps(l, r));
                let lo = _mm256_permute2f128_ps::<0x20>(u, v);
                let hi = _mm256_permute2f128_ps::<0x31>(u, v);
                store_first(dx_ptr.add(row), 2 * n, row + 16 <= grad_in.len(), lo, hi);
            }
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
    fn every_value_is_the_scatter_s_bit_for_bit_needs_avx2() {
        if require_tier(
            Tier::Avx2,
            "every_value_is_the_scatter_s_bit_for_bit_needs_avx2",
        ) {
            cases::every_value_is_the_scatter_s(&kernel);
        }
    }

    #[test]
    fn an_argmax_outside_its_window_is_declined_needs_avx2() {
        if require_tier(
            Tier::Avx2,
            "an_argmax_outside_its_window_is_declined_needs_avx2",
        ) {
            cases::an_argmax_outside_its_window_is_declined(&kernel);
        }
    }
}
