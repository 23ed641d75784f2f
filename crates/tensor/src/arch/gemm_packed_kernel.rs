//! The packed GEMM's 6 x 16 register-blocked micro-kernel, in AVX2 + FMA intrinsics.
//!
//! One call multiplies a packed `6 x kc` panel of A (`kc` groups of 6 values, one per row) by a
//! packed `kc x 16` panel of B (`kc` rows of 16 values) into 12 `__m256` accumulators, two per
//! row of C, starting from zero: step `p` broadcasts the 6 values of A's group `p` and issues 12
//! fused multiply-adds against B's row `p`, so every element of the tile sums its `kc` products
//! in the order `p = 0, 1, ..` with one rounding each. The tile then updates C (see
//! [`Update`]); full tiles of a C with contiguous rows are updated in registers, the others
//! through a 6 x 16 buffer with the same scalar arithmetic per element.
//!
//! The body is instantiated twice, for AVX2 + FMA and for AVX-512F + AVX2 + FMA (where the
//! compiler may pick other registers and encodings): the same operations in the same order, so
//! the same bits. The AVX-512 tier also has [`kernel_avx512_pair`]: two neighbouring tiles
//! (B panels) at once in 12 `__m512` accumulators, one per row and tile, sharing A's
//! broadcasts. Each element still sums its products by one fused multiply-add each in `p`
//! order and is updated by the same operations, so the bits are those of the single tiles. A
//! CPU with two 512-bit FMA units (Intel's server cores) needs it to pass the 256-bit tile's
//! peak; Zen 4 runs a 512-bit FMA as two 256-bit halves, where the two kernels run alike.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Rows of C per micro-tile.
pub(crate) const MR: usize = 6;
/// Columns of C per micro-tile.
pub(crate) const NR: usize = 16;

/// How a finished micro-tile `t` (the sum of one `kc` block of products) goes into C.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Update {
    /// Scale of the products: the tile adds `alpha * t`.
    pub(crate) alpha: f32,
    /// Scale of C's old value on the first `kc` block; 0 ignores it (even NaN).
    pub(crate) beta: f32,
    /// True on the first `kc` block: `c = alpha * t` (beta 0) or `beta * c + alpha * t`;
    /// later blocks do `c = c + alpha * t`.
    pub(crate) first: bool,
}

impl Update {
    /// The new value of one element of C: `old` is read only when it counts. Two roundings
    /// where there are two operations (no fused multiply-add), exactly as the vector path.
    #[inline(always)]
    pub(crate) fn apply(self, old: impl FnOnce() -> f32, t: f32) -> f32 {
        let x = self.alpha * t;
        if !self.first {
            old() + x
        } else if self.beta == 0.0 {
            x
        } else {
            self.beta * old() + x
        }
    }
}

/// Where a micro-tile goes: C's top-left element, its strides, and how many of the tile's rows
/// and columns lie inside C.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels only
pub(crate) struct TileOut {
    pub(crate) c: *mut f32,
    pub(crate) rsc: usize,
    pub(crate) csc: usize,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}

/// Asks for the cache lines of a tile of C (the first and last element of each row) before
/// the `kc` loop: a tile is read or written once per `kc` block, long after its lines left the
/// cache, and its misses, taken after the loop, stalled the kernel (docs/architecture.md, "When
/// it runs", has the speeds before and after). The loop's 6 x `kc` fused multiply-adds hide the
/// latency. A prefetch neither faults nor changes a value, so any address is safe to ask for.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_tile(out: TileOut) {
    for i in 0..out.rows {
        let first = out.c.wrapping_add(i * out.rsc);
        let last = first.wrapping_add(out.cols.saturating_sub(1) * out.csc);
        // SAFETY: `_mm_prefetch` only hints the cache (SSE, in every x86-64 CPU); it reads
        // nothing and faults on no address.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(first as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(last as *const i8);
        }
    }
}

/// The kernel body, compiled once per tier by [`instantiate`]. A macro rather than an
/// `#[inline(always)]` function so each instantiation is compiled under its own features.
#[cfg(target_arch = "x86_64")]
macro_rules! kernel_body {
    ($kc:expr, $a:expr, $b:expr, $out:expr, $upd:expr) => {{
        let (kc, a, b, out, upd): (usize, *const f32, *const f32, TileOut, Update) =
            ($kc, $a, $b, $out, $upd);
        // SAFETY (whole body): the caller guarantees `a` holds `kc * MR` values, `b` holds
        // `kc * NR`, and that the `rows x cols` elements of `out` lie in C, exclusively ours.
        unsafe {
            prefetch_tile(out);
            let mut c00 = _mm256_setzero_ps();
            let mut c01 = _mm256_setzero_ps();
            let mut c10 = _mm256_setzero_ps();
            let mut c11 = _mm256_setzero_ps();
            let mut c20 = _mm256_setzero_ps();
            let mut c21 = _mm256_setzero_ps();
            let mut c30 = _mm256_setzero_ps();
            let mut c31 = _mm256_setzero_ps();
            let mut c40 = _mm256_setzero_ps();
            let mut c41 = _mm256_setzero_ps();
            let mut c50 = _mm256_setzero_ps();
            let mut c51 = _mm256_setzero_ps();
            let mut ap = a;
            let mut bp = b;
            for _ in 0..kc {
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                let x = _mm256_broadcast_ss(&*ap);
                c00 = _mm256_fmadd_ps(x, b0, c00);
                c01 = _mm256_fmadd_ps(x, b1, c01);
                let x = _mm256_broadcast_ss(&*ap.add(1));
                c10 = _mm256_fmadd_ps(x, b0, c10);
                c11 = _mm256_fmadd_ps(x, b1, c11);
                let x = _mm256_broadcast_ss(&*ap.add(2));
                c20 = _mm256_fmadd_ps(x, b0, c20);
                c21 = _mm256_fmadd_ps(x, b1, c21);
                let x = _mm256_broadcast_ss(&*ap.add(3));
                c30 = _mm256_fmadd_ps(x, b0, c30);
                c31 = _mm256_fmadd_ps(x, b1, c31);
                let x = _mm256_broadcast_ss(&*ap.add(4));
                c40 = _mm256_fmadd_ps(x, b0, c40);
                c41 = _mm256_fmadd_ps(x, b1, c41);
                let x = _mm256_broadcast_ss(&*ap.add(5));
                c50 = _mm256_fmadd_ps(x, b0, c50);
                c51 = _mm256_fmadd_ps(x, b1, c51);
                ap = ap.add(MR);
                bp = bp.add(NR);
            }
            let acc = [
                [c00, c01],
                [c10, c11],
                [c20, c21],
                [c30, c31],
                [c40, c41],
                [c50, c51],
            ];
            let alpha = _mm256_set1_ps(upd.alpha);
            if out.rows == MR && out.cols == NR && out.csc == 1 {
                let beta = _mm256_set1_ps(upd.beta);
                for (i, row) in acc.iter().enumerate() {
                    for (h, &t) in row.iter().enumerate() {
                        let cp = out.c.add(i * out.rsc + h * 8);
                        let x = _mm256_mul_ps(alpha, t);
                        let v = if !upd.first {
                            _mm256_add_ps(_mm256_loadu_ps(cp), x)
                        } else if upd.beta == 0.0 {
                            x
                        } else {
                            _mm256_add_ps(_mm256_mul_ps(beta, _mm256_loadu_ps(cp)), x)
                        };
                        _mm256_storeu_ps(cp, v);
                    }
                }
            } else {
                let mut tile = [0.0f32; MR * NR];
                for (i, row) in acc.iter().enumerate() {
                    for (h, &t) in row.iter().enumerate() {
                        _mm256_storeu_ps(tile.as_mut_ptr().add(i * NR + h * 8), t);
                    }
                }
                for i in 0..out.rows {
                    for j in 0..out.cols {
                        let cp = out.c.add(i * out.rsc + j * out.csc);
                        *cp = upd.apply(|| *cp, tile[i * NR + j]);
                    }
                }
            }
        }
    }};
}

/// The micro-kernel compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU has AVX2 and FMA; `a` holds `kc * MR` and `b` `kc * NR` readable values; the
/// `out.rows x out.cols` (at most `MR x NR`) elements of `out` are distinct, inside one live
/// allocation, and touched by nothing else during the call.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn kernel_avx2(
    kc: usize,
    a: *const f32,
    b: *const f32,
    out: TileOut,
    upd: Update,
) {
    kernel_body!(kc, a, b, out, upd)
}

/// The same micro-kernel compiled for AVX-512F + AVX2 + FMA (same operations, same bits).
///
/// # Safety
/// As [`kernel_avx2`], and the CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn kernel_avx512(
    kc: usize,
    a: *const f32,
    b: *const f32,
    out: TileOut,
    upd: Update,
) {
    kernel_body!(kc, a, b, out, upd)
}

/// Two neighbouring micro-tiles at once, for AVX-512F: `b0` and `b1` two packed `kc x 16`
/// panels of B, `out0` and `out1` their tiles of C (the same rows), each element computed as
/// [`kernel_avx512`] computes it (same bits).
///
/// # Safety
/// As [`kernel_avx512`], for both panels and both tiles.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn kernel_avx512_pair(
    kc: usize,
    a: *const f32,
    b0: *const f32,
    b1: *const f32,
    out0: TileOut,
    out1: TileOut,
    upd: Update,
) {
    // SAFETY (whole body): the caller guarantees `a` holds `kc * MR` values, `b0` and `b1`
    // `kc * NR` each, and that the `rows x cols` elements of each tile lie in C, exclusively
    // ours.
    unsafe {
        prefetch_tile(out0);
        prefetch_tile(out1);
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let mut ap = a;
        let (mut p0, mut p1) = (b0, b1);
        for _ in 0..kc {
            let v0 = _mm512_loadu_ps(p0);
            let v1 = _mm512_loadu_ps(p1);
            for (i, row) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*ap.add(i));
                row[0] = _mm512_fmadd_ps(x, v0, row[0]);
                row[1] = _mm512_fmadd_ps(x, v1, row[1]);
            }
            ap = ap.add(MR);
            p0 = p0.add(NR);
            p1 = p1.add(NR);
        }
        let alpha = _mm512_set1_ps(upd.alpha);
        let beta = _mm512_set1_ps(upd.beta);
        for (h, out) in [out0, out1].into_iter().enumerate() {
            if out.rows == MR && out.cols == NR && out.csc == 1 {
                for (i, row) in acc.iter().enumerate() {
                    let cp = out.c.add(i * out.rsc);
                    let x = _mm512_mul_ps(alpha, row[h]);
                    let v = if !upd.first {
                        _mm512_add_ps(_mm512_loadu_ps(cp), x)
                    } else if upd.beta == 0.0 {
                        x
                    } else {
                        _mm512_add_ps(_mm512_mul_ps(beta, _mm512_loadu_ps(cp)), x)
                    };
                    _mm512_storeu_ps(cp, v);
                }
            } else {
                let mut tile = [0.0f32; MR * NR];
                for (i, row) in acc.iter().enumerate() {
                    _mm512_storeu_ps(tile.as_mut_ptr().add(i * NR), row[h]);
                }
                for i in 0..out.rows {
                    for j in 0..out.cols {
                        let cp = out.c.add(i * out.rsc + j * out.csc);
                        *cp = upd.apply(|| *cp, tile[i * NR + j]);
                    }
                }
            }
        }
    }
}

/// Transposes the 8 x 8 block held in `r` (row `i` in `r[i]`) in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

/// Packs a full `kc x 16` panel of B whose columns are contiguous (`src` is `B[p0, j0]`, column
/// `j` starts at `src + j * cs`) into `dst` (`kc` rows of 16), 8 x 8 blocks at a time.
/// Only moves values: the packed panel is the same whatever code wrote it.
///
/// # Safety
/// The CPU has AVX2; `src + j * cs + p` is readable for `j < 16`, `p < kc`; `dst` has room
/// for `kc * NR` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn pack_b_columns(src: *const f32, cs: usize, kc: usize, dst: *mut f32) {
    // SAFETY (whole body): the caller's guarantees bound every offset.
    unsafe {
        let mut p = 0;
        while p + 8 <= kc {
            for half in 0..2 {
                let col = |j: usize| _mm256_loadu_ps(src.add((half * 8 + j) * cs + p));
                let rows = transpose8([
                    col(0),
                    col(1),
                    col(2),
                    col(3),
                    col(4),
                    col(5),
                    col(6),
                    col(7),
                ]);
                for (q, &row) in rows.iter().enumerate() {
                    _mm256_storeu_ps(dst.add((p + q) * NR + half * 8), row);
                }
            }
            p += 8;
        }
        for p in p..kc {
            for j in 0..NR {
                *dst.add(p * NR + j) = *src.add(j * cs + p);
            }
        }
    }
}

/// Packs a full `6 x kc` panel of A whose rows are contiguous (`src` is `A[i0, p0]`, row `i`
/// starts at `src + i * rs`) into `dst` (`kc` groups of 6), 8 values of `p` at a time through
/// an 8 x 8 transpose. Each group is stored as 8 floats, the last 2 overwritten by the next
/// group, so up to 2 floats past the panel are written (with junk).
///
/// # Safety
/// The CPU has AVX2; `src + i * rs + p` is readable for `i < 6`, `p < kc`; `dst` has room
/// for `kc * MR + 2` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn pack_a_rows(src: *const f32, rs: usize, kc: usize, dst: *mut f32) {
    // SAFETY (whole body): the caller's guarantees bound every offset.
    unsafe {
        let mut p = 0;
        while p + 8 <= kc {
            let row = |i: usize| _mm256_loadu_ps(src.add(i * rs + p));
            let zero = _mm256_setzero_ps();
            let groups = transpose8([row(0), row(1), row(2), row(3), row(4), row(5), zero, zero]);
            for (q, &g) in groups.iter().enumerate() {
                _mm256_storeu_ps(dst.add((p + q) * MR), g);
            }
            p += 8;
        }
        for p in p..kc {
            for i in 0..MR {
                *dst.add(p * MR + i) = *src.add(i * rs + p);
            }
        }
    }
}

/// Packs a full `6 x kc` panel of A whose columns are contiguous (`src` is `A[i0, p0]`, column
/// `p` starts at `src + p * cs`) into `dst` (`kc` groups of 6): one masked 6-lane load per
/// group (the lanes past 6 are neither read nor faulted), stored as 8 floats whose last 2 the
/// next group overwrites, so up to 2 floats past the panel are written (zeros).
///
/// # Safety
/// The CPU has AVX2; `src + i + p * cs` is readable for `i < 6`, `p < kc`; `dst` has room
/// for `kc * MR + 2` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn pack_a_columns(src: *const f32, cs: usize, kc: usize, dst: *mut f32) {
    let six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    // SAFETY (whole body): the caller's guarantees bound every offset; masked-off lanes are
    // not accessed.
    unsafe {
        for p in 0..kc {
            let group = _mm256_maskload_ps(src.add(p * cs), six);
            _mm256_storeu_ps(dst.add(p * MR), group);
        }
    }
}
