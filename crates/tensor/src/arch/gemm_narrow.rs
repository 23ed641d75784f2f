//! f32 GEMM kernels for products with a narrow side, which read their operands in place.
//!
//! The convolutions of the `deep` network multiply a weight matrix of 16-64 rows by an im2col
//! matrix hundreds of rows deep and wide. `matrixmultiply` copies (packs) both operands into
//! its own layout first; with so few rows in the result, packing the big operand costs about as
//! much as the multiply. Two shapes are handled here without packing, with AVX2 and FMA (when
//! the CPU has them; otherwise `matrixmultiply` runs):
//!
//! - *panel*: `C (m x n) = A (m x k) * B (k x n)`, B and C with contiguous rows, `m <= 64`
//!   (the convolution forward `W * cols`). A tile of up to 6 rows by 16 columns of C sits in 12
//!   registers while `p` runs over `k`: each step loads 16 values of B's row `p` and broadcasts
//!   one value of A per row.
//! - *dot*: `C (m x n) = A (m x k) * B (k x n)` with A's rows and B's columns contiguous,
//!   `m <= 64` (the convolution weight gradient `dY * cols^T`). Each element of C is a dot
//!   product of two contiguous vectors; a tile of 4 x 3 of them accumulates in 12 registers,
//!   8 lanes wide, and each is reduced across lanes at the end in a fixed order.
//!
//! On the AVX-512 tier the panel kernel runs in 512-bit vectors (tiles of 6 x 32) with the same
//! bits: each element of C is one lane either way. The dot kernel stays 8 lanes wide on both
//! tiers, since its per-element order is its 8-lane partial sums.
//!
//! Every element of C is summed in an order fixed by `k` alone (whichever tile, block or thread
//! computes it), so results are bitwise independent of how the caller splits C. Only
//! `alpha = 1` and `beta` 0 or 1 are supported (all the engine uses).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Most rows of C the narrow kernels take; wider products are `matrixmultiply`'s.
const MAX_ROWS: usize = 64;

/// Deepest product the panel kernel sums in one pass over `k`. Deeper products go in blocks of
/// [`PANEL_DEPTH_BLOCK`] rows of B, each block's sums added into C: a k x 16 stripe of B whose
/// rows lie a power of two apart (AlexNet's fc input gradients, k = 2048) maps onto a few cache
/// sets and did not stay in cache for the next 6 rows of C, which ran at half `matrixmultiply`'s
/// speed.
#[cfg(target_arch = "x86_64")]
const PANEL_MAX_DEPTH: usize = 1024;

/// Rows of B per block of a product deeper than [`PANEL_MAX_DEPTH`]: a 256 x 16 stripe (16 KiB)
/// stays in L2 even when its rows share cache sets.
#[cfg(target_arch = "x86_64")]
const PANEL_DEPTH_BLOCK: usize = 256;

/// Fewest multiply-adds worth the narrow kernels' setup.
const MIN_MACS: usize = 4096;

/// True when the active tier runs the narrow kernels (AVX2 + FMA, and the CPU has them).
fn available() -> bool {
    crate::cpu::tier().avx2_fma()
}

/// One strided operand: `at(i, j) = ptr + i * rs + j * cs`.
#[derive(Clone, Copy)]
// Read only by the x86-64 kernels.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Strided {
    pub(crate) ptr: *const f32,
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

/// True when a narrow kernel takes the whole `m x k x n` product: `alpha = 1`, `beta` 0 or 1,
/// at most [`MAX_ROWS`] rows, and the strides one of the two kernels needs. Decided once per
/// product: [`sgemm`] then runs any block of it, so a split C gets the same bits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fits(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: (usize, usize),
    b: (usize, usize),
    beta: f32,
    csc: usize,
) -> bool {
    shape_fits(m, k, n, alpha, a, b, beta, csc) && available()
}

/// [`fits`] without the tier: the scaling, size and stride conditions alone (tests run the
/// kernels where the CPU has them, whatever the active tier).
#[allow(clippy::too_many_arguments)]
fn shape_fits(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: (usize, usize),
    b: (usize, usize),
    beta: f32,
    csc: usize,
) -> bool {
    let scaling = alpha == 1.0 && (beta == 0.0 || beta == 1.0);
    let size = m > 0 && m <= MAX_ROWS && m.saturating_mul(k).saturating_mul(n) >= MIN_MACS;
    // The panel kernel rereads a stripe of B for every 6 rows of C; deep products go in
    // blocks of k so that the stripe stays in cache (see `PANEL_DEPTH_BLOCK`).
    let panel = b.1 == 1 && csc == 1 && n >= 16;
    let dot = a.1 == 1 && b.0 == 1 && k >= 64;
    scaling && size && (panel || dot)
}

/// `C = A * B + beta * C` (`beta` 0 or 1) with the panel kernel when B's and C's rows are
/// contiguous, else the dot kernel (A's rows and B's columns contiguous). Any `m`, `n`; the
/// result of each element depends only on its row of A, its column of B and `k`.
///
/// # Safety
/// [`fits`] returned true for the product this block belongs to (same strides), so the CPU
/// has AVX2 and FMA and one kernel's strides hold; every element of the `m x k` A, `k x n` B
/// and `m x n` C views lies inside live allocations, C's elements are distinct, and nothing
/// else touches C.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: Strided,
    b: Strided,
    beta: f32,
    c: *mut f32,
    rsc: usize,
    csc: usize,
) {
    let accumulate = beta != 0.0;
    #[cfg(target_arch = "x86_64")]
    {
        if b.cs == 1 && csc == 1 {
            if crate::cpu::tier().avx512() {
                // SAFETY: the caller's guarantees, and the tier says the CPU has AVX-512F.
                unsafe { panel512(m, k, n, a, b, c, rsc, accumulate) }
            } else {
                // SAFETY: the caller's guarantees.
                unsafe { panel(m, k, n, a, b, c, rsc, accumulate) }
            }
        } else {
            // SAFETY: as above; `fits` checked the dot kernel's strides.
            unsafe { dot(m, k, n, a, b, c, rsc, csc, accumulate) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, k, n, a, b, c, rsc, csc, accumulate);
        unreachable!("fits() is false off x86_64");
    }
}

/// Lane mask with the first `count` (0..=8) of 8 lanes on.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn lane_mask(count: usize) -> __m256i {
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(count as i32), lanes)
}

/// The panel kernel over all of C; see the module docs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn panel(
    m: usize,
    k: usize,
    n: usize,
    a: Strided,
    b: Strided,
    c: *mut f32,
    rsc: usize,
    accumulate: bool,
) {
    // Blocks of k, fixed by k alone (one block up to PANEL_MAX_DEPTH), so every element's sum
    // is the same however C is split: block sums added into C in block order.
    let block = panel_depth_block(k);
    let mut p0 = 0;
    loop {
        let kb = block.min(k - p0);
        let acc = accumulate || p0 > 0;
        let mut j = 0;
        while j < n {
            let width = (n - j).min(16);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(6);
                // SAFETY: rows i..i + rows, columns j..j + width and the depth rows
                // p0..p0 + kb are inside the views.
                unsafe {
                    let a0 = a.ptr.add(i * a.rs + p0 * a.cs);
                    let b0 = b.ptr.add(p0 * b.rs + j);
                    let c0 = c.add(i * rsc + j);
                    let (ars, acs, brs) = (a.rs, a.cs, b.rs);
                    match rows {
                        6 => panel_tile::<6>(kb, a0, ars, acs, b0, brs, c0, rsc, width, acc),
                        5 => panel_tile::<5>(kb, a0, ars, acs, b0, brs, c0, rsc, width, acc),
                        4 => panel_tile::<4>(kb, a0, ars, acs, b0, brs, c0, rsc, width, acc),
                        3 => panel_tile::<3>(kb, a0, ars, acs, b0, brs, c0, rsc, width, acc),
                        2 => panel_tile::<2>(kb, a0, ars, acs, b0, brs, c0, rsc, width, acc),
                        _ => panel_tile::<1>(kb, a0, ars, acs, b0, brs, c0, rsc, width, acc),
                    }
                }
                i += rows;
            }
            j += width;
        }
        p0 += kb;
        if p0 >= k {
            break;
        }
    }
}

/// One `R x width` tile of the panel kernel (`width <= 16`; masked when below 16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn panel_tile<const R: usize>(
    k: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    rsb: usize,
    c: *mut f32,
    rsc: usize,
    width: usize,
    accumulate: bool,
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    // SAFETY (whole body): the tile's rows of A, its k rows of B and its rows of C are inside
    // the views; masked loads and stores touch only the first `width` columns.
    unsafe {
        if width == 16 {
            for p in 0..k {
                let bp = b.add(p * rsb);
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let av = _mm256_set1_ps(*a.add(r * rsa + p * csa));
                    acc_r[0] = _mm256_fmadd_ps(av, b0, acc_r[0]);
                    acc_r[1] = _mm256_fmadd_ps(av, b1, acc_r[1]);
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let cr = c.add(r * rsc);
                let (mut lo, mut hi) = (acc_r[0], acc_r[1]);
                if accumulate {
                    lo = _mm256_add_ps(_mm256_loadu_ps(cr), lo);
                    hi = _mm256_add_ps(_mm256_loadu_ps(cr.add(8)), hi);
                }
                _mm256_storeu_ps(cr, lo);
                _mm256_storeu_ps(cr.add(8), hi);
            }
        } else {
            let (m0, m1) = (lane_mask(width.min(8)), lane_mask(width.saturating_sub(8)));
            for p in 0..k {
                let bp = b.add(p * rsb);
                let b0 = _mm256_maskload_ps(bp, m0);
                let b1 = _mm256_maskload_ps(bp.add(8), m1);
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let av = _mm256_set1_ps(*a.add(r * rsa + p * csa));
                    acc_r[0] = _mm256_fmadd_ps(av, b0, acc_r[0]);
                    acc_r[1] = _mm256_fmadd_ps(av, b1, acc_r[1]);
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let cr = c.add(r * rsc);
                let (mut lo, mut hi) = (acc_r[0], acc_r[1]);
                if accumulate {
                    lo = _mm256_add_ps(_mm256_maskload_ps(cr, m0), lo);
                    hi = _mm256_add_ps(_mm256_maskload_ps(cr.add(8), m1), hi);
                }
                _mm256_maskstore_ps(cr, m0, lo);
                _mm256_maskstore_ps(cr.add(8), m1, hi);
            }
        }
    }
}

/// Depth of each pass of the panel kernels over `k`: `k` itself up to [`PANEL_MAX_DEPTH`], else
/// [`PANEL_DEPTH_BLOCK`]. Fixed by `k` alone, so every element's sum is the same however C is
/// split, and the same in both kernels.
#[cfg(target_arch = "x86_64")]
fn panel_depth_block(k: usize) -> usize {
    if k <= PANEL_MAX_DEPTH {
        k.max(1)
    } else {
        PANEL_DEPTH_BLOCK
    }
}

/// [`panel`] in 512-bit vectors, for CPUs with two 512-bit FMA units: tiles of up to 6 rows by
/// 32 columns. Each element of C is still one lane that sums `A[i][p] * B[p][j]` over the same
/// blocks of `p`, in the same order, with the same fused multiply-adds, and adds each block's sum
/// into C as [`panel`] does: the same bits as the 256-bit kernel.
///
/// # Safety
/// As [`panel`], and the CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn panel512(
    m: usize,
    k: usize,
    n: usize,
    a: Strided,
    b: Strided,
    c: *mut f32,
    rsc: usize,
    accumulate: bool,
) {
    let block = panel_depth_block(k);
    let mut p0 = 0;
    loop {
        let kb = block.min(k - p0);
        let acc = accumulate || p0 > 0;
        let mut j = 0;
        while j < n {
            let width = (n - j).min(32);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(6);
                // SAFETY: rows i..i + rows, columns j..j + width and the depth rows
                // p0..p0 + kb are inside the views.
                unsafe {
                    let a0 = a.ptr.add(i * a.rs + p0 * a.cs);
                    let b0 = b.ptr.add(p0 * b.rs + j);
                    let c0 = c.add(i * rsc + j);
                    let t = (kb, a0, a.rs, a.cs, b0, b.rs, c0, rsc, width, acc);
                    match (rows, width > 16) {
                        (6, true) => panel_tile512::<6, 2>(t),
                        (5, true) => panel_tile512::<5, 2>(t),
                        (4, true) => panel_tile512::<4, 2>(t),
                        (3, true) => panel_tile512::<3, 2>(t),
                        (2, true) => panel_tile512::<2, 2>(t),
                        (_, true) => panel_tile512::<1, 2>(t),
                        (6, false) => panel_tile512::<6, 1>(t),
                        (5, false) => panel_tile512::<5, 1>(t),
                        (4, false) => panel_tile512::<4, 1>(t),
                        (3, false) => panel_tile512::<3, 1>(t),
                        (2, false) => panel_tile512::<2, 1>(t),
                        (_, false) => panel_tile512::<1, 1>(t),
                    }
                }
                i += rows;
            }
            j += width;
        }
        p0 += kb;
        if p0 >= k {
            break;
        }
    }
}

/// One tile's operands: depth, A (pointer, row and column strides), B (pointer, row stride),
/// C (pointer, row stride), the tile's width and whether to add into C.
#[cfg(target_arch = "x86_64")]
type PanelTile = (
    usize,
    *const f32,
    usize,
    usize,
    *const f32,
    usize,
    *mut f32,
    usize,
    usize,
    bool,
);

/// One `R x width` tile of [`panel512`] in `H` vectors of 16 lanes (`width <= 16 * H`; lanes
/// past `width` are masked off).
///
/// # Safety
/// The tile's rows of A, its depth rows of B (first `width` columns) and its rows of C (first
/// `width` columns) are inside live allocations; the CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn panel_tile512<const R: usize, const H: usize>(tile: PanelTile) {
    let (k, a, rsa, csa, b, rsb, c, rsc, width, accumulate) = tile;
    let mask: [__mmask16; H] =
        std::array::from_fn(|h| crate::cpu::first_lanes(width.saturating_sub(16 * h).min(16)));
    let mut acc = [[_mm512_setzero_ps(); H]; R];
    // SAFETY (whole body): the tile's rows of A, its k rows of B and its rows of C are inside
    // the views; masked loads and stores touch only the first `width` columns.
    unsafe {
        for p in 0..k {
            let bp = b.add(p * rsb);
            let bv: [__m512; H] =
                std::array::from_fn(|h| _mm512_maskz_loadu_ps(mask[h], bp.add(16 * h)));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * rsa + p * csa));
                for h in 0..H {
                    acc_r[h] = _mm512_fmadd_ps(av, bv[h], acc_r[h]);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            let cr = c.add(r * rsc);
            for h in 0..H {
                let mut sum = acc_r[h];
                if accumulate {
                    sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask[h], cr.add(16 * h)), sum);
                }
                _mm512_mask_storeu_ps(cr.add(16 * h), mask[h], sum);
            }
        }
    }
}

/// The dot kernel over all of C; see the module docs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn dot(
    m: usize,
    k: usize,
    n: usize,
    a: Strided,
    b: Strided,
    c: *mut f32,
    rsc: usize,
    csc: usize,
    accumulate: bool,
) {
    let mut i = 0;
    while i < m {
        let rows = (m - i).min(4);
        let mut j = 0;
        while j < n {
            let cols = (n - j).min(3);
            // SAFETY: rows i..i + rows of A, columns j..j + cols of B and that tile of C are
            // inside the views.
            unsafe {
                let a0 = a.ptr.add(i * a.rs);
                let b0 = b.ptr.add(j * b.cs);
                let c0 = c.add(i * rsc + j * csc);
                match (rows, cols) {
                    (4, 3) => dot_tile::<4, 3>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                    (4, 2) => dot_tile::<4, 2>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                    (4, _) => dot_tile::<4, 1>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                    (3, 3) => dot_tile::<3, 3>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                    (3, 2) => dot_tile::<3, 2>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                    (3, _) => dot_tile::<3, 1>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                    (2, 3) => dot_tile::<2, 3>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                    (2, 2) => dot_tile::<2, 2>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                    (2, _) => dot_tile::<2, 1>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                    (_, 3) => dot_tile::<1, 3>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                    (_, 2) => dot_tile::<1, 2>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                    _ => dot_tile::<1, 1>(k, a0, a.rs, b0, b.cs, c0, rsc, csc, accumulate),
                }
            }
            j += cols;
        }
        i += rows;
    }
}

/// One `R x S` tile of the dot kernel: `C[r][s] (+)= sum_p A[r][p] * B[p][s]`, A's rows and
/// B's columns contiguous in `p`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn dot_tile<const R: usize, const S: usize>(
    k: usize,
    a: *const f32,
    rsa: usize,
    b: *const f32,
    csb: usize,
    c: *mut f32,
    rsc: usize,
    csc: usize,
    accumulate: bool,
) {
    let mut acc = [[_mm256_setzero_ps(); S]; R];
    let full = k / 8 * 8;
    // SAFETY (whole body): rows of A and columns of B are `k` long and inside the views; the
    // tail's masked loads read only indices below `k`.
    unsafe {
        let mut p = 0;
        while p < full {
            let mut bv = [_mm256_setzero_ps(); S];
            for (s, v) in bv.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(b.add(s * csb + p));
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm256_loadu_ps(a.add(r * rsa + p));
                for s in 0..S {
                    acc_r[s] = _mm256_fmadd_ps(av, bv[s], acc_r[s]);
                }
            }
            p += 8;
        }
        if full < k {
            let mask = lane_mask(k - full);
            let mut bv = [_mm256_setzero_ps(); S];
            for (s, v) in bv.iter_mut().enumerate() {
                *v = _mm256_maskload_ps(b.add(s * csb + full), mask);
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm256_maskload_ps(a.add(r * rsa + full), mask);
                for s in 0..S {
                    acc_r[s] = _mm256_fmadd_ps(av, bv[s], acc_r[s]);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (s, &v) in acc_r.iter().enumerate() {
                let sum = horizontal_sum(v);
                let cp = c.add(r * rsc + s * csc);
                *cp = if accumulate { *cp + sum } else { sum };
            }
        }
    }
}

/// The sum of 8 lanes in a fixed order: halves, then pairs, then the last two.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn horizontal_sum(v: __m256) -> f32 {
    let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    let one = _mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1));
    _mm_cvtss_f32(one)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::Tier;
    use crate::testing::require_tier;

    fn values(len: usize, seed: u64) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f32) / 500.0 - 1.0)
            .collect()
    }

    /// Runs the narrow kernel on (m, k, n) with A row-major and B either row-major (panel) or
    /// column-major (dot), against a direct f64 sum; returns whether the kernel ran.
    fn check(m: usize, k: usize, n: usize, b_col_major: bool, beta: f32) -> bool {
        let a = values(m * k, 1);
        let b = values(k * n, 2);
        let c0 = values(m * n, 3);
        let (rsb, csb) = if b_col_major { (1, k) } else { (n, 1) };
        let mut c = c0.clone();
        let av = Strided {
            ptr: a.as_ptr(),
            rs: k,
            cs: 1,
        };
        let bv = Strided {
            ptr: b.as_ptr(),
            rs: rsb,
            cs: csb,
        };
        if !shape_fits(m, k, n, 1.0, (k, 1), (rsb, csb), beta, 1) {
            return false;
        }
        // SAFETY: the callers checked that the CPU has AVX2 and FMA (`require_tier`), the
        // strides fit, and the views are exactly the three vectors.
        unsafe { sgemm(m, k, n, av, bv, beta, c.as_mut_ptr(), n, 1) };
        for i in 0..m {
            for j in 0..n {
                let (mut want, mut scale) = (beta as f64 * c0[i * n + j] as f64, 1.0f64);
                for p in 0..k {
                    let term = a[i * k + p] as f64 * b[p * rsb + j * csb] as f64;
                    want += term;
                    scale += term.abs();
                }
                let got = c[i * n + j] as f64;
                assert!(
                    (got - want).abs() <= 1e-6 * scale,
                    "{m}x{k}x{n} col-major B {b_col_major} beta {beta} at ({i},{j}): {got} vs {want}"
                );
            }
        }
        true
    }

    const NARROW: &str = "narrow_kernels_match_a_direct_sum_on_every_tile_shape_needs_avx2";

    #[test]
    #[cfg_attr(
        not(target_arch = "x86_64"),
        ignore = "needs avx2: not an x86-64 target"
    )]
    fn narrow_kernels_match_a_direct_sum_on_every_tile_shape_needs_avx2() {
        if !require_tier(Tier::Avx2, NARROW) {
            return;
        }
        // rows 1..6 and beyond, column tails 0..15, k tails for the dot kernel
        let panel = [
            (16, 144, 252),
            (6, 48, 16),
            (7, 64, 17),
            (64, 300, 33),
            (1, 70, 100),
            (5, 40, 31),
            // deeper than one pass: blocks of k, a partial last block, a power-of-two stride
            (16, 2048, 40),
            (7, 1300, 17),
        ];
        let dot = [
            (16, 252, 144),
            (4, 400, 3),
            (7, 130, 5),
            (64, 300, 10),
            (1, 4100, 1),
            (3, 257, 7),
        ];
        for beta in [0.0, 1.0] {
            for &(m, k, n) in &panel {
                assert!(check(m, k, n, false, beta), "panel {m}x{k}x{n} did not run");
            }
            for &(m, k, n) in &dot {
                assert!(check(m, k, n, true, beta), "dot {m}x{k}x{n} did not run");
            }
        }
    }

    #[test]
    fn other_shapes_and_scalings_are_left_to_matrixmultiply() {
        let fits = shape_fits;
        assert!(
            fits(16, 8, 64, 1.0, (8, 1), (64, 1), 0.0, 1),
            "a conv forward block"
        );
        assert!(
            !fits(65, 8, 64, 1.0, (8, 1), (64, 1), 0.0, 1),
            "too many rows"
        );
        assert!(!fits(16, 8, 64, 2.0, (8, 1), (64, 1), 0.0, 1), "alpha != 1");
        assert!(
            !fits(16, 8, 64, 1.0, (8, 1), (64, 1), 0.5, 1),
            "beta not 0 or 1"
        );
        assert!(
            !fits(16, 8, 64, 1.0, (8, 1), (1, 8), 0.0, 1),
            "B column-major with k < 64"
        );
        assert!(!fits(2, 2, 2, 1.0, (2, 1), (2, 1), 0.0, 1), "too small");
        assert!(
            fits(16, 2048, 64, 1.0, (2048, 1), (64, 1), 0.0, 1),
            "a deep panel goes in blocks of k"
        );
    }

    /// The 512-bit panel kernel gives the 256-bit one's bits on every tile shape (rows 1-6,
    /// full and masked halves, deep products in blocks of k), with and without adding into C.
    #[test]
    #[cfg_attr(
        not(target_arch = "x86_64"),
        ignore = "needs avx512: not an x86-64 target"
    )]
    fn the_512_bit_panel_gives_the_256_bit_panel_s_bits_needs_avx512() {
        const NAME: &str = "the_512_bit_panel_gives_the_256_bit_panel_s_bits_needs_avx512";
        if !require_tier(Tier::Avx512, NAME) {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        compare_panels();
    }

    /// The body of the test above: both panel kernels exist on x86-64 only.
    #[cfg(target_arch = "x86_64")]
    fn compare_panels() {
        let shapes = [
            (16, 144, 252),
            (6, 48, 16),
            (7, 64, 17),
            (64, 300, 33),
            (1, 70, 100),
            (5, 40, 31),
            (3, 9, 48),
            (16, 2048, 40),
            (7, 1300, 17),
        ];
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for accumulate in [false, true] {
            for &(m, k, n) in &shapes {
                let (a, b) = (values(m * k, 6), values(k * n, 7));
                let av = Strided {
                    ptr: a.as_ptr(),
                    rs: k,
                    cs: 1,
                };
                let bv = Strided {
                    ptr: b.as_ptr(),
                    rs: n,
                    cs: 1,
                };
                let (mut narrow, mut wide) = (values(m * n, 8), values(m * n, 8));
                // SAFETY: the CPU has AVX-512F (the test checked), so AVX2 and FMA too; the
                // views are exactly a, b and C.
                unsafe {
                    panel(m, k, n, av, bv, narrow.as_mut_ptr(), n, accumulate);
                    panel512(m, k, n, av, bv, wide.as_mut_ptr(), n, accumulate);
                }
                assert_eq!(
                    bits(&narrow),
                    bits(&wide),
                    "{m}x{k}x{n} accumulate {accumulate}"
                );
            }
        }
    }

    /// A deep panel's blocks of k are fixed by k alone: C computed whole, or as two column
    /// blocks (as a parallel split does), has the same bits.
    #[test]
    #[cfg_attr(
        not(target_arch = "x86_64"),
        ignore = "needs avx2: not an x86-64 target"
    )]
    fn a_deep_panel_gives_the_same_bits_however_c_is_split_needs_avx2() {
        const NAME: &str = "a_deep_panel_gives_the_same_bits_however_c_is_split_needs_avx2";
        if !require_tier(Tier::Avx2, NAME) {
            return;
        }
        let (m, k, n) = (16, 2048 + 100, 48);
        let (a, b) = (values(m * k, 4), values(k * n, 5));
        let av = Strided {
            ptr: a.as_ptr(),
            rs: k,
            cs: 1,
        };
        let view = |j0: usize| Strided {
            ptr: b[j0..].as_ptr(),
            rs: n,
            cs: 1,
        };
        let (mut whole, mut split) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
        // SAFETY: AVX2 checked above; the views cover a, b and C's rows of n (column blocks of
        // 16 and 32 start inside each row).
        unsafe {
            sgemm(m, k, n, av, view(0), 0.0, whole.as_mut_ptr(), n, 1);
            sgemm(m, k, 16, av, view(0), 0.0, split.as_mut_ptr(), n, 1);
            sgemm(
                m,
                k,
                32,
                av,
                view(16),
                0.0,
                split.as_mut_ptr().add(16),
                n,
                1,
            );
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&whole), bits(&split));
    }
}
