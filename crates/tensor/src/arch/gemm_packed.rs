//! An f32 GEMM with packed panels (BLIS-style), for the large products of `alexnet`.
//!
//! `C (m x n) = alpha * A (m x k) * B (k x n) + beta * C` in five loops around a 6 x 16
//! micro-kernel ([`gemm_packed_kernel`](super::gemm_packed_kernel)):
//!
//! 1. columns of C in blocks of [`NC`];
//! 2. `k` in blocks of [`KC`]: B's `KC x NC` block is packed into `KC x 16` panels (one panel,
//!    16 KiB, stays in L1 while the kernel sweeps down the rows);
//! 3. rows of C in blocks of [`MC`]: A's `MC x KC` block is packed into `6 x KC` panels
//!    (about 120 KiB, in L2);
//! 4. and 5. the panels of B, then of A: one micro-tile each.
//!
//! Packing copies strided or transposed operands into the order the kernel reads, once per
//! block, so the kernel's loads are contiguous whatever the views' strides.
//!
//! **Summation order.** Every element of C is the sum, in `k` order, of its `kc` blocks: each
//! block's products are summed from zero by fused multiply-adds in `k` order, and the blocks are
//! added to C one after another (the first scaled by `beta` with C's old value). The blocks are
//! fixed by `k` and [`KC`] alone, so an element's bits depend only on its row of A, its column
//! of B, `k`, alpha and beta: not on `m`, `n`, how the caller splits C among threads, which tile
//! the element falls in, or the tier (AVX2 and AVX-512 run the same kernel body).

use std::cell::RefCell;

use super::gemm_narrow::Strided;
use super::gemm_packed_kernel::{TileOut, Update, MR, NR};
use crate::cpu::Tier;

/// Depth of one block of `k`: one B panel is `KC x NR` floats (16 KiB), half of L1.
pub(crate) const KC: usize = 256;
/// Rows of C per packed A block (a multiple of [`MR`]): `MC x KC` floats, 120 KiB, in L2.
const MC: usize = 120;
/// Columns of C per packed B block (a multiple of [`NR`]): `KC x NC` floats, 3 MiB, in L3.
const NC: usize = 3072;

/// A compiled micro-kernel.
type Kernel = unsafe fn(usize, *const f32, *const f32, TileOut, Update);

/// A compiled micro-kernel of two neighbouring tiles (two B panels, the same A panel).
type PairKernel = unsafe fn(usize, *const f32, *const f32, *const f32, TileOut, TileOut, Update);

/// The two-tile micro-kernel `tier` runs, if any (AVX-512 only).
fn pair_kernel_for(tier: Tier) -> Option<PairKernel> {
    #[cfg(target_arch = "x86_64")]
    if tier.avx512() {
        return Some(super::gemm_packed_kernel::kernel_avx512_pair);
    }
    let _ = tier;
    None
}

/// The micro-kernel instantiation `tier` runs, or `None` where it runs none (portable, NEON,
/// or a tier the CPU lacks).
fn kernel_for(tier: Tier) -> Option<Kernel> {
    #[cfg(target_arch = "x86_64")]
    {
        use super::gemm_packed_kernel::{kernel_avx2, kernel_avx512};
        if tier.avx512() {
            return Some(kernel_avx512);
        }
        if tier.avx2_fma() {
            return Some(kernel_avx2);
        }
    }
    let _ = tier;
    None
}

/// True when `tier` runs the packed GEMM on this CPU.
pub(crate) fn available(tier: Tier) -> bool {
    kernel_for(tier).is_some()
}

/// Fewest multiply-adds for which the packed GEMM is chosen over `matrixmultiply`.
const MIN_MACS: usize = 1 << 22;
/// Fewest rows, columns and depth: the smallest of `alexnet`'s products where it was measured
/// (conv1's 96 filters, its 121-deep im2col rows, batch 128's 96..128-deep weight gradients).
const MIN_SIDE: usize = 96;

/// True when the active tier runs the packed GEMM and the product is at least [`MIN_SIDE`] on
/// each side and [`MIN_MACS`] in all: `alexnet`'s products at batch 128 and 1000, whatever B's
/// strides. With the kernel's prefetch of C and the row-by-row packing of a row-major B it ran
/// ahead of `matrixmultiply` on 22 of those 28 products and within 10 % on the rest (one thread,
/// `benches/gemm.rs`, docs/architecture.md). The choice does not look at the tier, so both x86
/// tiers compute every product the same way.
pub(crate) fn fits(m: usize, k: usize, n: usize) -> bool {
    m >= MIN_SIDE
        && n >= MIN_SIDE
        && k >= MIN_SIDE
        && m.saturating_mul(k).saturating_mul(n) >= MIN_MACS
        && available(crate::cpu::tier())
}

/// Packing buffers, one pair per thread, reused across calls.
struct Buffers {
    a: Vec<f32>,
    b: Vec<f32>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = const { RefCell::new(Buffers { a: Vec::new(), b: Vec::new() }) };
}

/// A 64-byte aligned pointer into `buf`, with at least `len + 16` floats after it (grows `buf`).
fn aligned(buf: &mut Vec<f32>, len: usize) -> *mut f32 {
    if buf.len() < len + 32 {
        buf.resize(len + 32, 0.0);
    }
    let ptr = buf.as_mut_ptr();
    let offset = ptr.align_offset(64).min(16);
    ptr.wrapping_add(offset)
}

/// Packs rows `i0..i0 + mc` and columns `p0..p0 + kc` of A into `6 x kc` panels at `dst`:
/// panel `r` holds, for each `p`, the 6 values of rows `i0 + 6r ..` (zeros past `mc`).
///
/// # Safety
/// The CPU has AVX2 (on x86-64, where this runs); `dst` has room for
/// `mc.div_ceil(MR) * MR * kc + 2` floats; the block lies inside A's view.
unsafe fn pack_a(a: Strided, i0: usize, mc: usize, p0: usize, kc: usize, dst: *mut f32) {
    // SAFETY (whole body): the caller's guarantees bound every offset.
    unsafe {
        for r in 0..mc.div_ceil(MR) {
            let rows = MR.min(mc - r * MR);
            let panel = dst.add(r * MR * kc);
            let src = a.ptr.add((i0 + r * MR) * a.rs + p0 * a.cs);
            if a.cs == 1 && rows == MR && a.rs != 1 {
                // rows of A are contiguous: 8 x 8 transposes
                #[cfg(target_arch = "x86_64")]
                super::gemm_packed_kernel::pack_a_rows(src, a.rs, kc, panel);
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("packed GEMM off x86_64");
            } else if a.rs == 1 && rows == MR {
                // columns of A are contiguous: one masked load per step
                #[cfg(target_arch = "x86_64")]
                super::gemm_packed_kernel::pack_a_columns(src, a.cs, kc, panel);
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("packed GEMM off x86_64");
            } else if a.rs == 1 {
                // columns of A are contiguous: each step reads up to 6 neighbours
                for p in 0..kc {
                    let col = src.add(p * a.cs);
                    let out = panel.add(p * MR);
                    for i in 0..rows {
                        *out.add(i) = *col.add(i);
                    }
                    for i in rows..MR {
                        *out.add(i) = 0.0;
                    }
                }
            } else {
                for i in 0..rows {
                    let row = src.add(i * a.rs);
                    for p in 0..kc {
                        *panel.add(p * MR + i) = *row.add(p * a.cs);
                    }
                }
                for i in rows..MR {
                    for p in 0..kc {
                        *panel.add(p * MR + i) = 0.0;
                    }
                }
            }
        }
    }
}

/// Packs rows `p0..p0 + kc` and columns `j0..j0 + nc` of B into `kc x 16` panels at `dst`:
/// panel `q` holds, for each `p`, the 16 values of columns `j0 + 16q ..` (zeros past `nc`).
///
/// # Safety
/// The CPU has AVX2 (on x86-64, where this runs); `dst` has room for
/// `nc.div_ceil(NR) * NR * kc` floats; the block lies inside B's view.
unsafe fn pack_b(b: Strided, p0: usize, kc: usize, j0: usize, nc: usize, dst: *mut f32) {
    // SAFETY (whole body): the caller's guarantees bound every offset.
    unsafe {
        if b.cs == 1 {
            // Rows of B are contiguous: read each row once, front to back, and deal its 16-wide
            // pieces out to the panels. Panel by panel, each piece came from another row (and
            // page) of a wide B, which slowed the products with few rows of C (a batch-128 input
            // gradient), where packing B is most of the memory traffic.
            let full = nc / NR;
            for p in 0..kc {
                let row = b.ptr.add((p0 + p) * b.rs + j0);
                for q in 0..full {
                    std::ptr::copy_nonoverlapping(
                        row.add(q * NR),
                        dst.add(q * NR * kc + p * NR),
                        NR,
                    );
                }
                let cols = nc - full * NR;
                if cols > 0 {
                    let out = dst.add(full * NR * kc + p * NR);
                    std::ptr::copy_nonoverlapping(row.add(full * NR), out, cols);
                    for j in cols..NR {
                        *out.add(j) = 0.0;
                    }
                }
            }
            return;
        }
        for q in 0..nc.div_ceil(NR) {
            let cols = NR.min(nc - q * NR);
            let panel = dst.add(q * NR * kc);
            let src = b.ptr.add(p0 * b.rs + (j0 + q * NR) * b.cs);
            if b.rs == 1 && cols == NR {
                // columns of B are contiguous: 8 x 8 transposes
                #[cfg(target_arch = "x86_64")]
                super::gemm_packed_kernel::pack_b_columns(src, b.cs, kc, panel);
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("packed GEMM off x86_64");
            } else {
                for j in 0..cols {
                    let col = src.add(j * b.cs);
                    for p in 0..kc {
                        *panel.add(p * NR + j) = *col.add(p * b.rs);
                    }
                }
                for j in cols..NR {
                    for p in 0..kc {
                        *panel.add(p * NR + j) = 0.0;
                    }
                }
            }
        }
    }
}

/// `C = alpha * A * B + beta * C` for an `m x k` A and a `k x n` B, on `tier`'s micro-kernel,
/// in the order the module docs give. With `beta == 0`, C's old contents are ignored.
///
/// Panics if `tier` runs no packed kernel on this CPU (see [`available`]).
///
/// # Safety
/// Every element of the `m x k` A and `k x n` B views lies inside a live allocation; every
/// offset `i * rsc + j * csc` (`i < m`, `j < n`) lies inside one live allocation that nothing
/// else touches during the call, and distinct `(i, j)` map to distinct offsets.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    tier: Tier,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Strided,
    b: Strided,
    beta: f32,
    c: *mut f32,
    rsc: usize,
    csc: usize,
) {
    let kernel = kernel_for(tier).expect("packed GEMM on a tier that runs it");
    let pair_kernel = pair_kernel_for(tier);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        let upd = Update {
            alpha,
            beta,
            first: true,
        };
        for i in 0..m {
            for j in 0..n {
                // SAFETY: (i, j) is inside C (the caller's guarantee).
                unsafe {
                    let cp = c.add(i * rsc + j * csc);
                    *cp = upd.apply(|| *cp, 0.0);
                }
            }
        }
        return;
    }
    BUFFERS.with(|cell| {
        // A nested call on this thread (none exists today) would get buffers of its own.
        let mut own = None;
        let mut borrowed = cell.try_borrow_mut().ok();
        let bufs = match borrowed.as_deref_mut() {
            Some(b) => b,
            None => own.insert(Buffers {
                a: Vec::new(),
                b: Vec::new(),
            }),
        };
        let a_pack = aligned(&mut bufs.a, (MC + MR) * KC);
        let b_pack = aligned(&mut bufs.b, KC * NC.min(n.next_multiple_of(NR)));
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                // SAFETY: the B block is inside B's view and b_pack holds KC x NC (or n
                // rounded up to NR) floats.
                unsafe { pack_b(b, pc, kc, jc, nc, b_pack) };
                // rows in equal blocks of at most MC (whole tiles), so no block is a sliver
                let mc_step = m.div_ceil(m.div_ceil(MC)).next_multiple_of(MR);
                for ic in (0..m).step_by(mc_step) {
                    let mc = mc_step.min(m - ic);
                    // SAFETY: the A block is inside A's view; a_pack holds MC x KC floats.
                    unsafe { pack_a(a, ic, mc, pc, kc, a_pack) };
                    let upd = Update {
                        alpha,
                        beta,
                        first: pc == 0,
                    };
                    let tile = |ir: usize, jr: usize| TileOut {
                        c: c.wrapping_add((ic + ir) * rsc + (jc + jr) * csc),
                        rsc,
                        csc,
                        rows: MR.min(mc - ir),
                        cols: NR.min(nc - jr),
                    };
                    // Two panels of B at a time where the tier has a two-tile kernel and two
                    // remain (the same bits as one at a time).
                    let step = if pair_kernel.is_some() { 2 * NR } else { NR };
                    for jr in (0..nc).step_by(step) {
                        for ir in (0..mc).step_by(MR) {
                            let a_panel = a_pack.wrapping_add(ir * kc);
                            // SAFETY: the panels were packed above with kc steps each; the
                            // tiles' rows x cols elements are inside C (the caller's
                            // guarantee), and `kernel_for` and `pair_kernel_for` checked the
                            // CPU.
                            unsafe {
                                match pair_kernel {
                                    Some(pair) if jr + NR < nc => pair(
                                        kc,
                                        a_panel,
                                        b_pack.add(jr * kc),
                                        b_pack.add((jr + NR) * kc),
                                        tile(ir, jr),
                                        tile(ir, jr + NR),
                                        upd,
                                    ),
                                    _ => {
                                        kernel(kc, a_panel, b_pack.add(jr * kc), tile(ir, jr), upd)
                                    }
                                }
                            };
                        }
                    }
                }
            }
        }
    });
}
