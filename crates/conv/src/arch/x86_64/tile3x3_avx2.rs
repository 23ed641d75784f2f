//! The f32 forward tile of [`crate::direct3x3`] in AVX2 + FMA intrinsics.
//!
//! As for AVX-512 (`tile3x3_f32`), the generic tile left register allocation to the compiler,
//! which for AVX2's 16 registers vectorized across channels with shuffles and stack spills and
//! ran slower than im2col + GEMM. Here a tile is 16 columns (two `__m256` per row) by up to 6
//! output channels: 12 accumulators, two input vectors and one broadcast weight, all in
//! registers; a block of 16 channels is three tiles (6, 6, 4). A map at most 8 wide (`deep`'s
//! 7x7 conv3) takes a narrow tile instead: one `__m256` of 8 columns by 2 rows by 6 channels,
//! the same 12 accumulators without the 9 of 16 lanes the wide tile would leave idle (0.80 to
//! 0.47 CPU-seconds for 1,000 forwards of conv3 at batch 128 on one Zen 4 core; the AVX-512 tier
//! runs it too).
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

/// Widest map the narrow tile takes: one `__m256` per row.
pub(crate) const NARROW: usize = 8;

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
    if s.w <= NARROW {
        narrow_block(s, c, image, weights, bias, out_block, channels);
        return;
    }
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

/// A block on a map at most [`NARROW`] wide (`deep`'s 7x7 conv3): the wide tile's 16 columns
/// would leave 9 of 16 lanes idle, so here a tile is one vector of 8 columns by 2 rows by
/// [`PART`] channels (the block's last 4 channels: a tile of 4). A plane of one row is a tile
/// whose second row repeats the first; on an odd number of rows the last tile starts at row
/// `h - 2` and so redoes a row of the tile before it, which stores the same bits again.
#[inline(always)]
unsafe fn narrow_block(
    s: BorderedShape,
    c: usize,
    image: &[f32],
    weights: &[f32],
    bias: &[f32; 16],
    out_block: &mut [f32],
    channels: usize,
) {
    debug_assert!(s.w <= NARROW);
    let mut y = 0;
    loop {
        // rows `top` and `bottom`: the same row when the plane has only one
        let top = y.min(s.h.saturating_sub(2));
        let bottom = (top + 1).min(s.h - 1);
        let mut first = 0;
        while first < channels {
            let n = (channels - first).min(PART);
            let tile = NarrowTile {
                s,
                c,
                top,
                bottom,
                first,
            };
            if first + PART <= 16 {
                tile.run::<PART>(image, weights, bias, out_block, n);
            } else {
                tile.run::<4>(image, weights, bias, out_block, n);
            }
            first += PART;
        }
        if bottom + 1 == s.h {
            break;
        }
        y += 2;
    }
}

/// A narrow tile's place: rows `top` and `bottom` (at most one apart), channels `first..`.
#[derive(Clone, Copy)]
struct NarrowTile {
    s: BorderedShape,
    c: usize,
    top: usize,
    bottom: usize,
    first: usize,
}

impl NarrowTile {
    /// Computes `P` channels' accumulators for both rows and stores the first `n` of them.
    #[inline(always)]
    unsafe fn run<const P: usize>(
        self,
        image: &[f32],
        weights: &[f32],
        bias: &[f32; 16],
        out_block: &mut [f32],
        n: usize,
    ) {
        let NarrowTile {
            s,
            c,
            top,
            bottom,
            first,
        } = self;
        debug_assert!(first + P <= 16 && n <= P && bottom < s.h && top <= bottom);
        let plane = s.h * s.w;
        let (x_ptr, w_ptr, out_ptr) = (image.as_ptr(), weights.as_ptr(), out_block.as_mut_ptr());
        let mut acc = [[_mm256_setzero_ps(); 2]; P];
        for (o, a) in acc.iter_mut().enumerate() {
            *a = [_mm256_set1_ps(bias[first + o]); 2];
        }
        for ci in 0..c {
            let (row_a, row_b) = (
                x_ptr.add(ci * s.pplane + top * s.pw),
                x_ptr.add(ci * s.pplane + bottom * s.pw),
            );
            let wc = w_ptr.add(ci * 9 * 16 + first);
            // per output value the taps come in the generic order: tap 0, 1, ..., 8 of this
            // input channel
            for (t, &(dy, dx)) in TAPS.iter().enumerate() {
                let at = dy * s.pw + dx;
                let (xa, xb) = (
                    _mm256_loadu_ps(row_a.add(at)),
                    _mm256_loadu_ps(row_b.add(at)),
                );
                let wt = wc.add(t * 16);
                for (o, a) in acc.iter_mut().enumerate() {
                    let w = _mm256_broadcast_ss(&*wt.add(o));
                    a[0] = _mm256_fmadd_ps(xa, w, a[0]);
                    a[1] = _mm256_fmadd_ps(xb, w, a[1]);
                }
            }
        }
        // Rows go in order, so a row's 8th lane, which lands on the next row's first column, is
        // overwritten by that row's own store (here or in the next tile); a plane's last row
        // masks, as AMD's masked stores are slow.
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(s.w as i32), lane);
        for (half, y) in [top, bottom].into_iter().enumerate() {
            let at = y * s.w;
            for (o, a) in acc.iter().enumerate().take(n) {
                let dst = out_ptr.add((first + o) * plane + at);
                if at + NARROW <= plane {
                    _mm256_storeu_ps(dst, a[half]);
                } else {
                    _mm256_maskstore_ps(dst, mask, a[half]);
                }
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
