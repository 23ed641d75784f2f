//! The f32 forward tile of [`crate::direct3x3`] in AVX-512 intrinsics.
//!
//! The generic kernel (plain loops over `[T; 16]` arrays) left register allocation to the
//! compiler, and its code changed with edits elsewhere in the crate: the same source ran 25 %
//! slower after an unrelated change moved it between codegen units (accumulators spilled to a
//! 4 KiB stack frame, stores became scatters). Here the 16 accumulators are `__m512` values
//! the compiler keeps in registers, each weight is a broadcast operand of its FMA, and a row's
//! last partial vector is a masked store.
//!
//! The arithmetic is the generic tile's, operation for operation: each accumulator starts at
//! its channel's bias, then adds `x * w` as one fused multiply-add per input channel and tap in
//! the same order, so the output is bit for bit the same.

use std::arch::x86_64::*;

/// A zero-bordered image's shape, as [`crate::direct3x3`] lays it out.
#[derive(Clone, Copy)]
pub(crate) struct BorderedShape {
    /// Output rows and columns (the map's own).
    pub(crate) h: usize,
    pub(crate) w: usize,
    /// Vectors per row, `ceil(w / 16)`.
    pub(crate) vectors: usize,
    /// Row length of a bordered plane, `16 * vectors + 2`.
    pub(crate) pw: usize,
    /// Elements of a bordered plane, `(h + 2) * pw`.
    pub(crate) pplane: usize,
}

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

/// Every row of one image's block of output channels: `out_block` holds `channels` whole
/// `h x w` planes (at most 16), `image` the image's `c` bordered planes, `weights` the block's
/// `(c, 9, 16)` weights (zero past the block's channels), `bias` the block's 16 biases.
///
/// # Safety
/// The CPU must have AVX-512F. The lengths are checked here, so any slices are sound.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn forward_block(
    s: BorderedShape,
    c: usize,
    image: &[f32],
    weights: &[f32],
    bias: &[f32; 16],
    out_block: &mut [f32],
) {
    let plane = s.h * s.w;
    let channels = out_block.len() / plane;
    // every load below stays inside: the last one of a plane starts at
    // (h + 1) * pw + 16 * (vectors - 1) + 2 and ends at (h + 2) * pw
    assert!(s.pw == 16 * s.vectors + 2 && s.pplane == (s.h + 2) * s.pw);
    assert!(image.len() >= c * s.pplane && weights.len() >= c * 9 * 16);
    assert!(channels <= 16 && out_block.len() == channels * plane && s.w <= 16 * s.vectors);
    let (x_ptr, w_ptr, out_ptr) = (image.as_ptr(), weights.as_ptr(), out_block.as_mut_ptr());
    for y in 0..s.h {
        for v in 0..s.vectors {
            let x0 = 16 * v;
            let mut acc: [__m512; 16] = [_mm512_setzero_ps(); 16];
            for (a, &b) in acc.iter_mut().zip(bias) {
                *a = _mm512_set1_ps(b);
            }
            for ci in 0..c {
                let row = x_ptr.add(ci * s.pplane + y * s.pw + x0);
                let wc = w_ptr.add(ci * 9 * 16);
                for (t, &(dy, dx)) in TAPS.iter().enumerate() {
                    let x = _mm512_loadu_ps(row.add(dy * s.pw + dx));
                    let wt = wc.add(t * 16);
                    for (o, a) in acc.iter_mut().enumerate() {
                        *a = _mm512_fmadd_ps(x, _mm512_set1_ps(*wt.add(o)), *a);
                    }
                }
            }
            // lanes past the row's end are not stored
            let valid = (s.w - x0).min(16);
            let mask: __mmask16 = ((1u32 << valid) - 1) as u16;
            for (o, a) in acc.iter().enumerate().take(channels) {
                _mm512_mask_storeu_ps(out_ptr.add(o * plane + y * s.w + x0), mask, *a);
            }
        }
    }
}
