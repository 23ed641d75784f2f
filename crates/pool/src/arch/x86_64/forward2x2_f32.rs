//! The 2x2 max-pool forward (stride 2), fused with the ReLU before it or plain, f32, in AVX-512
//! intrinsics: 16 windows at a time, for the AVX-512 tier.
//!
//! The AVX2 kernel (`forward2x2_avx2`) does 8 windows a chunk and took 9.8 % of a `deep`
//! gradient x input pass at batch 256 on an Intel Xeon (family 6 model 167) with two 512-bit
//! FMA units. Here a chunk is 16 windows: each of its two input rows is up to 32 values in two
//! masked loads, split into even and odd columns by one two-source permute each, and the four
//! scan steps are a compare into a mask and two masked moves each. The compares are the scalar
//! scan's, in its order (strictly greater, starting from +0.0 with no winner), so the outputs
//! and argmax are the portable body's bit for bit. Masked loads and stores touch only the
//! chunk's own values, so no chunk needs a stack buffer.
//!
//! The plain pool starts each window from its top-left value instead and makes the other three
//! compares; a chunk with a NaN among its windows' values takes the reference scan window by
//! window, as the portable body does, so it too gives the body's bits.

use std::arch::x86_64::*;

use tensor::cpu::first_lanes;

use crate::relu_max_pool2d::NO_WINNER;
use crate::Pool2dGeometry;

/// Windows per chunk: the 16 f32 lanes of an AVX-512 register.
const WINDOWS: usize = 16;

/// `max_pool2d(relu(x))` of a run of whole consecutive planes into their outputs and argmax,
/// as [`crate::window2x2::relu_pool_planes_body`].
///
/// # Safety
/// The CPU must have AVX-512F. The lengths are checked here.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn relu_pool_planes(
    g: &Pool2dGeometry,
    planes: &[f32],
    out: &mut [f32],
    arg: &mut [u32],
) {
    // SAFETY: AVX-512F as the caller promised.
    unsafe { planes_of::<true>(g, planes, out, arg) }
}

/// `max_pool2d(x)` of a run of whole consecutive planes into their outputs and argmax, as
/// [`crate::window2x2::pool_planes_body`].
///
/// # Safety
/// The CPU must have AVX-512F. The lengths are checked here.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn pool_planes(
    g: &Pool2dGeometry,
    planes: &[f32],
    out: &mut [f32],
    arg: &mut [u32],
) {
    // SAFETY: AVX-512F as the caller promised.
    unsafe { planes_of::<false>(g, planes, out, arg) }
}

/// The run's planes, with the ReLU or without.
#[target_feature(enable = "avx512f")]
unsafe fn planes_of<const RELU: bool>(
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
        // SAFETY: AVX-512F as the caller promised; the plane's slices hold in_plane inputs and
        // out_plane outputs (checked above).
        unsafe {
            plane::<RELU>(
                g,
                &planes[i..i + in_plane],
                &mut out[o..o + out_plane],
                &mut arg[o..o + out_plane],
            )
        };
    }
}

/// One plane: `input` holds its `in_h * in_w` values, `out` and `arg` its `out_h * out_w`.
#[target_feature(enable = "avx512f")]
unsafe fn plane<const RELU: bool>(
    g: &Pool2dGeometry,
    input: &[f32],
    out: &mut [f32],
    arg: &mut [u32],
) {
    let w = g.in_w;
    // lane j of a chunk: window j, whose top-left input is 2 * j past the chunk's first
    let steps = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let one = _mm512_set1_epi32(1);
    let row_below = _mm512_set1_epi32(w as u32 as i32);
    for oh in 0..g.out_h {
        let mut first = 0;
        while first < g.out_w {
            let n = WINDOWS.min(g.out_w - first);
            let start = 2 * oh * w + 2 * first;
            // the window's two rows: 2n values each, inside the plane (2 * out_w <= in_w and
            // 2 * out_h <= in_h); masked-off lanes read nothing and hold +0.0, which never wins
            let (lo, hi) = (
                first_lanes((2 * n).min(16)),
                first_lanes((2 * n).saturating_sub(16)),
            );
            debug_assert!(start + w + 2 * n <= input.len());
            // SAFETY: the masks cover only the 2n values of each row, inside `input`.
            let (top, bottom) = unsafe {
                let row = |at: usize| {
                    let p = input.as_ptr().add(at);
                    (
                        _mm512_maskz_loadu_ps(lo, p),
                        _mm512_maskz_loadu_ps(hi, p.add(16)),
                    )
                };
                (row(start), row(start + w))
            };
            let split = |(a, b): (__m512, __m512)| {
                (
                    _mm512_permutex2var_ps(a, even, b),
                    _mm512_permutex2var_ps(a, odd, b),
                )
            };
            let ((top_even, top_odd), (bottom_even, bottom_odd)) = (split(top), split(bottom));
            // Fits: the geometry caps a plane at u32::MAX elements; wrapping as the body's.
            let at = _mm512_add_epi32(_mm512_set1_epi32(start as u32 as i32), steps);
            let below = _mm512_add_epi32(at, row_below);
            let o = oh * g.out_w + first;
            let scan = [
                (top_even, at),
                (top_odd, _mm512_add_epi32(at, one)),
                (bottom_even, below),
                (bottom_odd, _mm512_add_epi32(below, one)),
            ];
            let (mut best, mut index) = if RELU {
                (_mm512_setzero_ps(), _mm512_set1_epi32(NO_WINNER as i32))
            } else {
                let nan = scan
                    .iter()
                    .fold(0, |m, &(v, _)| m | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v));
                if nan & first_lanes(n) != 0 {
                    // the first NaN of a window is its result: the reference scan's rule
                    for k in 0..n {
                        let (value, at) =
                            crate::max_pool2d::window_max_reference(g, input, oh, first + k);
                        out[o + k] = value;
                        arg[o + k] = at as u32;
                    }
                    first += WINDOWS;
                    continue;
                }
                (top_even, at)
            };
            for &(v, i) in &scan[usize::from(!RELU)..] {
                // strictly greater, so the first of equal maxima stays; NaN never wins
                let better = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best);
                best = _mm512_mask_mov_ps(best, better, v);
                index = _mm512_mask_mov_epi32(index, better, i);
            }
            debug_assert!(o + n <= out.len() && o + n <= arg.len());
            // SAFETY: the mask covers the chunk's n outputs, inside `out` and `arg`.
            unsafe {
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(o), first_lanes(n), best);
                _mm512_mask_storeu_epi32(arg.as_mut_ptr().add(o).cast(), first_lanes(n), index);
            }
            first += WINDOWS;
        }
    }
}
