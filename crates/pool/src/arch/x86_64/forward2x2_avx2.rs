//! The fused ReLU + 2x2 max-pool forward (stride 2), f32, in AVX2 intrinsics: 8 windows at a
//! time, for the AVX2 and AVX-512 tiers.
//!
//! The portable body (`window2x2`) compiled for AVX2 spread its 16-lane arrays over pairs of
//! registers and the stack (6 % of a `deep` batch-128 training step on one Zen 4 core; this
//! kernel 4.5 %). Compiled for AVX-512 the body took 6.1 % of the same step, this kernel 4.6 %
//! (perf, one thread, build 16e00b8 + this kernel), so both tiers run it. Here a
//! chunk is 8 windows: each of its two input rows is 16 values in two loads, split into even and
//! odd columns (one `shufps` and one `vpermpd` each), and the four scan steps are a compare and
//! two blends each. The compares are the scalar scan's, in its order (strictly greater, starting
//! from +0.0 with no winner), so the outputs and argmax are the portable body's bit for bit.
//!
//! As in the portable body, chunks read and write whole vectors wherever the run's slices allow,
//! beyond the chunk's own windows too: the extra lanes land only on outputs that a later chunk
//! of the plane, or a later plane of the run, overwrites (row-major order). Only a run's last
//! chunks go through stack buffers.

use std::arch::x86_64::*;

use crate::relu_max_pool2d::NO_WINNER;
use crate::Pool2dGeometry;

/// Windows per chunk: the 8 f32 lanes of an AVX2 register.
const WINDOWS: usize = 8;

/// `max_pool2d(relu(x))` of a run of whole consecutive planes into their outputs and argmax,
/// as [`crate::window2x2::relu_pool_planes_body`].
///
/// # Safety
/// The CPU must have AVX2. The lengths are checked here.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn relu_pool_planes(
    g: &Pool2dGeometry,
    planes: &[f32],
    out: &mut [f32],
    arg: &mut [u32],
) {
    let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
    assert!(g.kernel == 2 && g.stride == 2 && 2 * g.out_w <= g.in_w && 2 * g.out_h <= g.in_h);
    assert!(in_plane > 0 && planes.len().is_multiple_of(in_plane));
    let count = planes.len() / in_plane;
    assert!(out.len() == count * out_plane && arg.len() == count * out_plane);
    for p in 0..count {
        let (i, o) = (p * in_plane, p * out_plane);
        plane(g, &planes[i..], &mut out[o..], &mut arg[o..]);
    }
}

/// One plane, whose slices start at the plane and run on to the end of the run.
#[inline(always)]
unsafe fn plane(g: &Pool2dGeometry, input: &[f32], out: &mut [f32], arg: &mut [u32]) {
    let w = g.in_w;
    // lane j of a chunk: window j, whose top-left input is 2 * j past the chunk's first
    let steps = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    for oh in 0..g.out_h {
        for first in (0..g.out_w).step_by(WINDOWS) {
            let n = WINDOWS.min(g.out_w - first);
            let start = 2 * oh * w + 2 * first;
            let (top_even, top_odd) = columns(input, start, 2 * n);
            let (bottom_even, bottom_odd) = columns(input, start + w, 2 * n);
            // Fits: the geometry caps a plane at u32::MAX elements; wrapping as the body's.
            let at = _mm256_add_epi32(_mm256_set1_epi32(start as u32 as i32), steps);
            let below = _mm256_add_epi32(at, _mm256_set1_epi32(w as u32 as i32));
            let one = _mm256_set1_epi32(1);
            let mut best = _mm256_setzero_ps();
            let mut index = _mm256_set1_epi32(NO_WINNER as i32);
            for (v, i) in [
                (top_even, at),
                (top_odd, _mm256_add_epi32(at, one)),
                (bottom_even, below),
                (bottom_odd, _mm256_add_epi32(below, one)),
            ] {
                // strictly greater, so the first of equal maxima stays; NaN never wins
                let better = _mm256_cmp_ps::<_CMP_GT_OQ>(v, best);
                best = _mm256_blendv_ps(best, v, better);
                index = _mm256_castps_si256(_mm256_blendv_ps(
                    _mm256_castsi256_ps(index),
                    _mm256_castsi256_ps(i),
                    better,
                ));
            }
            let at = oh * g.out_w + first;
            store(out, at, n, best);
            store(arg, at, n, _mm256_castsi256_ps(index));
        }
    }
}

/// The even and odd columns of the 16 values of `values` from `start` (in order), reading 16
/// where the slice has them, else the `count` there and +0.0 after them.
#[inline(always)]
unsafe fn columns(values: &[f32], start: usize, count: usize) -> (__m256, __m256) {
    let (a, b) = if start + 2 * WINDOWS <= values.len() {
        let p = values.as_ptr().add(start);
        (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(WINDOWS)))
    } else {
        let mut buf = [0.0f32; 2 * WINDOWS];
        buf[..count].copy_from_slice(&values[start..start + count]);
        (
            _mm256_loadu_ps(buf.as_ptr()),
            _mm256_loadu_ps(buf.as_ptr().add(WINDOWS)),
        )
    };
    // shufps takes lanes 0 and 2 (or 1 and 3) of each 128-bit half of a, then of b:
    // [a0 a2 b0 b2 | a4 a6 b4 b6]; the 64-bit swap of the middle pairs puts them in order
    let even = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
    let odd = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
    let order =
        |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
    (order(even), order(odd))
}

/// Stores the 8 lanes of `v` (f32 or u32 bits) at `at` of `values`, or only the first `n` where
/// fewer than 8 remain.
#[inline(always)]
unsafe fn store<V: Copy>(values: &mut [V], at: usize, n: usize, v: __m256) {
    debug_assert!(std::mem::size_of::<V>() == 4);
    if at + WINDOWS <= values.len() {
        _mm256_storeu_ps(values.as_mut_ptr().add(at).cast::<f32>(), v);
    } else {
        let mut buf = [0.0f32; WINDOWS];
        _mm256_storeu_ps(buf.as_mut_ptr(), v);
        std::ptr::copy_nonoverlapping(buf.as_ptr().cast::<V>(), values.as_mut_ptr().add(at), n);
    }
}
