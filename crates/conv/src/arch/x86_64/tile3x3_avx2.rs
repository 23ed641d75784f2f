//! The f32 forward tile of [`crate::direct3x3`] in AVX2 + FMA intrinsics.
//!
//! As for AVX-512 (`tile3x3_f32`), the generic tile left register allocation to the compiler,
//! which for AVX2's 16 registers vectorized across channels with shuffles and stack spills and
//! ran slower than im2col + GEMM. Here a tile is 16 columns (two `__m256` per row) by up to 6
//! output channels: 12 accumulators, two input vectors and one broadcast weight, all in
//! registers; a block of 16 channels is three tiles (6, 6, 4).
//!
//! The arithmetic is the generic tile's, operation for operation: each accumulator starts at
//! its channel's bias, then adds `x * w` as one fused multiply-add per input channel and tap in
//! the same order, so the output is bit for bit the same (and the AVX-512 tier's).

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

/// Channels per tile: 6 x 2 accumulators leave registers for the input and the weight.
const PART: usize = 6;

/// Every row of one image's block of output channels: `out_block` holds `channels` whole
/// `h x w` planes (at most 16), `image` the image's `c` bordered planes, `weights` the block's
/// `(c, 9, 16)` weights (zero past the block's channels), `bias` the block's 16 biases.
///
/// # Safety
/// The CPU must have AVX2 and FMA. The lengths are checked here, so any slices are sound.
#[target_feature(enable = "avx2,fma")]
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
    for y in 0..s.h {
        for v in 0..s.vectors {
            let mut first = 0;
            while first < channels {
                let n = (channels - first).min(PART);
                // a tile of fewer channels computes PART anyway (the weights past the block's
                // channels are zero, and the bias lanes too) and stores only its own
                let tile = Tile {
                    s,
                    c,
                    y,
                    x0: 16 * v,
                    first,
                };
                if first + PART <= 16 {
                    tile.run::<PART>(image, weights, bias, out_block, n);
                } else {
                    tile.run::<4>(image, weights, bias, out_block, n);
                }
                first += PART;
            }
        }
    }
}

/// One tile's place: row `y`, columns `x0..x0 + 16`, channels `first..`.
#[derive(Clone, Copy)]
struct Tile {
    s: BorderedShape,
    c: usize,
    y: usize,
    x0: usize,
    first: usize,
}

impl Tile {
    /// Computes `P` channels' accumulators and stores the first `n` of them.
    #[inline(always)]
    unsafe fn run<const P: usize>(
        self,
        image: &[f32],
        weights: &[f32],
        bias: &[f32; 16],
        out_block: &mut [f32],
        n: usize,
    ) {
        let Tile { s, c, y, x0, first } = self;
        debug_assert!(first + P <= 16 && n <= P);
        let plane = s.h * s.w;
        let (x_ptr, w_ptr, out_ptr) = (image.as_ptr(), weights.as_ptr(), out_block.as_mut_ptr());
        let mut acc = [[_mm256_setzero_ps(); 2]; P];
        for (o, a) in acc.iter_mut().enumerate() {
            *a = [_mm256_set1_ps(bias[first + o]); 2];
        }
        for ci in 0..c {
            let row = x_ptr.add(ci * s.pplane + y * s.pw + x0);
            let wc = w_ptr.add(ci * 9 * 16 + first);
            for (t, &(dy, dx)) in TAPS.iter().enumerate() {
                let at = row.add(dy * s.pw + dx);
                let (lo, hi) = (_mm256_loadu_ps(at), _mm256_loadu_ps(at.add(8)));
                let wt = wc.add(t * 16);
                for (o, a) in acc.iter_mut().enumerate() {
                    let w = _mm256_broadcast_ss(&*wt.add(o));
                    a[0] = _mm256_fmadd_ps(lo, w, a[0]);
                    a[1] = _mm256_fmadd_ps(hi, w, a[1]);
                }
            }
        }
        // Where the plane has room, all 16 lanes go in two plain stores: the extra ones land on
        // the next row's first columns, which that row's own tiles write later (rows go in
        // order within a block). Only a plane's last row masks (AMD's masked stores are slow).
        let at = y * s.w + x0;
        if at + 16 <= plane {
            for (o, a) in acc.iter().enumerate().take(n) {
                let dst = out_ptr.add((first + o) * plane + at);
                _mm256_storeu_ps(dst, a[0]);
                _mm256_storeu_ps(dst.add(8), a[1]);
            }
        } else {
            let valid = (s.w - x0).min(16) as i32;
            let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lane);
            let mask_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid - 8), lane);
            for (o, a) in acc.iter().enumerate().take(n) {
                let dst = out_ptr.add((first + o) * plane + at);
                _mm256_maskstore_ps(dst, mask_lo, a[0]);
                _mm256_maskstore_ps(dst.add(8), mask_hi, a[1]);
            }
        }
    }
}
