//! The f32 weight-gradient tile of [`crate::direct3x3`] in AVX2 + FMA intrinsics.
//!
//! The generic tile (plain loops over `[f32; 8]` arrays) compiled for AVX2 kept its
//! accumulators on the stack. Here, for one input channel and 8 output channels (the lanes),
//! the 9 taps' accumulators are 9 `__m256` registers; a block of 16 output channels is two such
//! passes. Each lane adds, over every image and pixel in order, the output-gradient value times
//! the input value the tap reads there, one fused multiply-add each: the generic tile's
//! operations in its order, so the same bits.

use std::arch::x86_64::*;

use super::tile3x3_f32::BorderedShape;

/// The taps `(dy, dx)` in the order the generic kernel adds them.
const TAPS: [(usize, usize); 9] = [
    (0, 0),
    (0, 1),
    (0, 2),
    (1, 0),
    (1, 1),
    (1, 2),
    (2, 0),
    (2, 1),
    (2, 2),
];

/// The 9 taps' sums for input channel `ci` and the 16 output channels of block `block`:
/// `dyh` is the output gradient channels last, `(n, h, w, cout)` with `cout` a multiple of 16,
/// `xb` the zero-bordered input, `(n, c, pplane)`.
///
/// # Safety
/// The CPU must have AVX2 and FMA. The lengths are checked here, so any slices are sound.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn weight_tile(
    s: BorderedShape,
    n: usize,
    (dyh, xb): (&[f32], &[f32]),
    (ci, block): (usize, usize),
    (cout, c): (usize, usize),
) -> [[f32; 16]; 9] {
    let pixels = s.h * s.w;
    assert!(s.pw == 16 * s.vectors + 2 && s.pplane == (s.h + 2) * s.pw && s.w <= 16 * s.vectors);
    assert!(ci < c && cout.is_multiple_of(16) && 16 * (block + 1) <= cout);
    assert!(dyh.len() >= n * pixels * cout && xb.len() >= n * c * s.pplane);
    let mut out = [[0.0f32; 16]; 9];
    for half in 0..2 {
        let mut acc = [_mm256_setzero_ps(); 9];
        for ni in 0..n {
            let x_plane = xb.as_ptr().add((ni * c + ci) * s.pplane);
            let dy_image = dyh.as_ptr().add(ni * pixels * cout + block * 16 + half * 8);
            for y in 0..s.h {
                for x in 0..s.w {
                    // the window's farthest read, (y + 2) * pw + x + 2, is inside the plane
                    let d = _mm256_loadu_ps(dy_image.add((y * s.w + x) * cout));
                    let window = x_plane.add(y * s.pw + x);
                    for (a, &(dyo, dxo)) in acc.iter_mut().zip(&TAPS) {
                        let v = _mm256_broadcast_ss(&*window.add(dyo * s.pw + dxo));
                        *a = _mm256_fmadd_ps(d, v, *a);
                    }
                }
            }
        }
        for (tap, a) in out.iter_mut().zip(&acc) {
            _mm256_storeu_ps(tap.as_mut_ptr().add(half * 8), *a);
        }
    }
    out
}
