//! General matrix multiply: raw-pointer kernels behind one checked, safe wrapper.
//!
//! Matrices are described by a slice plus rows, columns and element strides, so a transpose is a
//! swap of strides ([`MatRef::t`]) and never a copy. Each product runs on one of three kernels
//! ([`GemmKernel`]): the narrow AVX2 kernels for products with few rows, our packed-panel GEMM
//! for large f32 products on the AVX2 and AVX-512 tiers, `matrixmultiply` otherwise. All run
//! single-threaded: the engine's one level of parallelism is rayon, outside the GEMM.

use crate::cpu::Tier;

/// A read-only strided matrix view.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A writable strided matrix view.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// Largest offset a view touches, or `None` for an empty view.
fn last_offset(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        None
    } else {
        Some((rows - 1) * rs + (cols - 1) * cs)
    }
}

/// True when an `outer x inner` grid with these strides never maps two cells to one offset.
fn strides_disjoint(outer: usize, outer_stride: usize, inner: usize, inner_stride: usize) -> bool {
    (inner <= 1 || inner_stride > 0) && (outer <= 1 || outer_stride > (inner - 1) * inner_stride)
}

impl<'a, T> MatRef<'a, T> {
    /// A strided view; panics if the view reaches past the slice (a programming error).
    pub fn new(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        if let Some(last) = last_offset(rows, cols, row_stride, col_stride) {
            assert!(last < data.len(), "MatRef {rows}x{cols} strides ({row_stride},{col_stride}) needs {} elements, slice has {}", last + 1, data.len());
        }
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }
    /// A contiguous row-major `rows x cols` view.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }
    /// The transpose, by swapping strides.
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
    /// Rows `start..start + len` as a view of their own (same strides).
    pub fn row_block(&self, start: usize, len: usize) -> Self {
        assert!(
            start + len <= self.rows,
            "row_block {start}+{len} of {} rows",
            self.rows
        );
        if len == 0 || self.cols == 0 {
            return Self {
                data: &self.data[..0],
                rows: len,
                cols: self.cols,
                row_stride: self.row_stride,
                col_stride: self.col_stride,
            };
        }
        Self::new(
            &self.data[start * self.row_stride..],
            len,
            self.cols,
            self.row_stride,
            self.col_stride,
        )
    }
    /// Columns `start..start + len` as a view of their own (same strides).
    pub fn col_block(&self, start: usize, len: usize) -> Self {
        let transposed = Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        };
        transposed.row_block(start, len).t()
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

impl<'a, T> MatMut<'a, T> {
    /// A strided writable view; panics if it reaches past the slice or if its strides could
    /// alias two elements (a programming error).
    pub fn new(
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        if let Some(last) = last_offset(rows, cols, row_stride, col_stride) {
            assert!(last < data.len(), "MatMut {rows}x{cols} strides ({row_stride},{col_stride}) needs {} elements, slice has {}", last + 1, data.len());
            // Distinct (i, j) must map to distinct offsets, or the GEMM would race with itself.
            let ok = strides_disjoint(rows, row_stride, cols, col_stride)
                || strides_disjoint(cols, col_stride, rows, row_stride);
            assert!(
                ok,
                "MatMut strides ({row_stride},{col_stride}) alias for {rows}x{cols}"
            );
        }
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }
    /// A contiguous row-major `rows x cols` view.
    pub fn row_major(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }
    /// The transpose, by swapping strides.
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

/// Which code computes one product. Chosen once per product ([`GemmScalar::choose`]), so every
/// block of a split C is computed the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmKernel {
    /// `matrixmultiply` (f32 and f64, any strides, any alpha and beta).
    Matrixmultiply,
    /// The unpacked AVX2 kernels for products with at most 64 rows (`gemm_narrow`; f32).
    Narrow,
    /// The packed-panel GEMM (`gemm_packed`; f32) on this tier's micro-kernel. Each element of
    /// C is `c = beta * c + alpha * s_0`, then `c = c + alpha * s_1`, ..: `s_b` sums the
    /// products of `k` block `b` ([`PACKED_KC`] deep) from zero by fused multiply-adds in `k`
    /// order (with `beta == 0` the first step is `c = alpha * s_0`). The same bits on every
    /// tier, block, split and thread count.
    Packed(Tier),
}

/// Element types `matrixmultiply` has a kernel for. Sealed: implemented for `f32` and `f64` here.
pub trait GemmScalar: Sized + Copy + private::Sealed {
    #[doc(hidden)]
    fn gemm_checked(
        alpha: Self,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        beta: Self,
        c: MatMut<'_, Self>,
    );

    /// Which kernel computes the whole product `a * b` into a C with column stride `csc` on
    /// the active tier. Decided once per product, so every block of a split C is computed the
    /// same way.
    #[doc(hidden)]
    fn choose(
        alpha: Self,
        a: &MatRef<'_, Self>,
        b: &MatRef<'_, Self>,
        beta: Self,
        csc: usize,
    ) -> GemmKernel;

    /// `C = alpha * A * B + beta * C` into a raw `a.rows x b.cols` C with strides `(rsc, csc)`,
    /// on `kernel`.
    ///
    /// # Safety
    /// Every offset `i * rsc + j * csc` (`i < a.rows`, `j < b.cols`) must lie inside one live
    /// allocation that nothing else reads or writes during the call, distinct `(i, j)` must
    /// map to distinct offsets, and `a.cols == b.rows`. `kernel` must be what
    /// [`GemmScalar::choose`] said for the product this block belongs to (or, for
    /// [`GemmKernel::Packed`], a tier this CPU runs it on).
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        alpha: Self,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        beta: Self,
        c: *mut Self,
        rsc: usize,
        csc: usize,
        kernel: GemmKernel,
    );
}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

fn check_dims<T>(a: &MatRef<'_, T>, b: &MatRef<'_, T>, c: &MatMut<'_, T>) {
    assert!(
        a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
        "gemm: ({}x{}) * ({}x{}) into ({}x{})",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
}

/// A view's pointer and strides, as the f32 kernels take them.
fn strided(v: &MatRef<'_, f32>) -> crate::arch::gemm_narrow::Strided {
    crate::arch::gemm_narrow::Strided {
        ptr: v.data.as_ptr(),
        rs: v.row_stride,
        cs: v.col_stride,
    }
}

/// The f32 choice: a narrow kernel where one fits, the packed GEMM for large products, else
/// `matrixmultiply`.
fn choose_f32(
    alpha: f32,
    a: &MatRef<'_, f32>,
    b: &MatRef<'_, f32>,
    beta: f32,
    csc: usize,
) -> GemmKernel {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let narrow = crate::arch::gemm_narrow::fits(
        m,
        k,
        n,
        alpha,
        (a.row_stride, a.col_stride),
        (b.row_stride, b.col_stride),
        beta,
        csc,
    );
    if narrow {
        GemmKernel::Narrow
    } else if crate::arch::gemm_packed::fits(m, k, n) {
        GemmKernel::Packed(crate::cpu::tier())
    } else {
        GemmKernel::Matrixmultiply
    }
}

/// Runs `kernel` on an f32 product.
///
/// # Safety
/// As [`GemmScalar::gemm_raw`].
#[allow(clippy::too_many_arguments)]
unsafe fn run_f32(
    alpha: f32,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    beta: f32,
    c: *mut f32,
    rsc: usize,
    csc: usize,
    kernel: GemmKernel,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    match kernel {
        // SAFETY: the caller's guarantees; `Narrow` came from `choose_f32`, which checked
        // `gemm_narrow::fits` (CPU and strides) for this product.
        GemmKernel::Narrow => unsafe {
            crate::arch::gemm_narrow::sgemm(m, k, n, strided(&a), strided(&b), beta, c, rsc, csc)
        },
        // SAFETY: the caller's guarantees; `gemm_packed::sgemm` checks the tier itself.
        GemmKernel::Packed(tier) => unsafe {
            crate::arch::gemm_packed::sgemm(
                tier,
                m,
                k,
                n,
                alpha,
                strided(&a),
                strided(&b),
                beta,
                c,
                rsc,
                csc,
            )
        },
        // SAFETY: A and B were checked on construction to lie inside their slices; the caller
        // guarantees the same, and exclusivity, for C. Strides fit in isize because they index
        // real allocations.
        GemmKernel::Matrixmultiply => unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha,
                a.data.as_ptr(),
                a.row_stride as isize,
                a.col_stride as isize,
                b.data.as_ptr(),
                b.row_stride as isize,
                b.col_stride as isize,
                beta,
                c,
                rsc as isize,
                csc as isize,
            )
        },
    }
}

/// Runs an f64 product (on `matrixmultiply`, the only f64 kernel).
///
/// # Safety
/// As [`GemmScalar::gemm_raw`].
#[allow(clippy::too_many_arguments)]
unsafe fn run_f64(
    alpha: f64,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    beta: f64,
    c: *mut f64,
    rsc: usize,
    csc: usize,
    kernel: GemmKernel,
) {
    assert_eq!(
        kernel,
        GemmKernel::Matrixmultiply,
        "f64 runs matrixmultiply"
    );
    // SAFETY: as in `run_f32`'s matrixmultiply arm.
    unsafe {
        matrixmultiply::dgemm(
            a.rows,
            a.cols,
            b.cols,
            alpha,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c,
            rsc as isize,
            csc as isize,
        )
    }
}

macro_rules! impl_gemm_scalar {
    ($t:ty, $choose:expr, $run:path) => {
        impl GemmScalar for $t {
            fn gemm_checked(
                alpha: Self,
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                beta: Self,
                c: MatMut<'_, Self>,
            ) {
                let kernel = Self::choose(alpha, &a, &b, beta, c.col_stride);
                gemm_on_checked(kernel, alpha, a, b, beta, c)
            }

            fn choose(
                alpha: Self,
                a: &MatRef<'_, Self>,
                b: &MatRef<'_, Self>,
                beta: Self,
                csc: usize,
            ) -> GemmKernel {
                $choose(alpha, a, b, beta, csc)
            }

            unsafe fn gemm_raw(
                alpha: Self,
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                beta: Self,
                c: *mut Self,
                rsc: usize,
                csc: usize,
                kernel: GemmKernel,
            ) {
                assert_eq!(a.cols, b.rows, "gemm: inner dimensions");
                if a.rows == 0 || b.cols == 0 {
                    return;
                }
                // SAFETY: forwarded from the caller.
                unsafe { $run(alpha, a, b, beta, c, rsc, csc, kernel) }
            }
        }
    };
}
impl_gemm_scalar!(f32, choose_f32, run_f32);
impl_gemm_scalar!(
    f64,
    |_: f64, _: &MatRef<'_, f64>, _: &MatRef<'_, f64>, _: f64, _: usize| {
        GemmKernel::Matrixmultiply
    },
    run_f64
);

/// The checked call shared by [`gemm`] and [`gemm_with`].
fn gemm_on_checked<T: GemmScalar>(
    kernel: GemmKernel,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) {
    check_dims(&a, &b, &c);
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    // SAFETY: every view was checked on construction to lie inside its slice for all
    // (row, col) pairs it describes, C's strides were checked not to alias, and `check_dims`
    // checked that the three shapes agree. C is borrowed mutably, so nothing else touches it
    // during the call; the kernel is this product's choice, or was checked by `gemm_with`.
    unsafe {
        T::gemm_raw(
            alpha,
            a,
            b,
            beta,
            c.data.as_mut_ptr(),
            c.row_stride,
            c.col_stride,
            kernel,
        )
    }
}

/// [`gemm`] on an explicit f32 kernel: [`GemmKernel::Matrixmultiply`] or
/// [`GemmKernel::Packed`] (tests and benches compare them; the engine calls [`gemm`]).
///
/// Panics if the kernel cannot run here: `Narrow` (its stride and size conditions are the
/// dispatcher's), or `Packed` on a tier this CPU lacks or that has no packed micro-kernel.
pub fn gemm_with(
    kernel: GemmKernel,
    alpha: f32,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    beta: f32,
    c: MatMut<'_, f32>,
) {
    match kernel {
        GemmKernel::Matrixmultiply => {}
        GemmKernel::Narrow => panic!("gemm_with: the narrow kernels are chosen by `gemm` only"),
        GemmKernel::Packed(tier) => assert!(
            packed_available(tier),
            "gemm_with: no packed GEMM on tier {tier} here"
        ),
    }
    gemm_on_checked(kernel, alpha, a, b, beta, c)
}

/// Depth of the packed GEMM's blocks of `k`: each element of C sums its products in blocks of
/// this many (see [`GemmKernel::Packed`] and docs/architecture.md).
pub const PACKED_KC: usize = crate::arch::gemm_packed::KC;

/// True when [`GemmKernel::Packed`] runs on `tier` on this CPU (AVX2 + FMA or AVX-512).
pub fn packed_available(tier: Tier) -> bool {
    crate::arch::gemm_packed::available(tier)
}

/// `C = alpha * A * B + beta * C`. With `beta == 0`, C's old contents are ignored (even NaN).
///
/// Panics if the shapes disagree: shapes reaching here were validated by the caller.
pub fn gemm<T: GemmScalar>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) {
    T::gemm_checked(alpha, a, b, beta, c)
}

/// How [`gemm_par`] divides one product among rayon tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmSplit {
    /// One call on the current thread.
    Serial,
    /// Blocks of this many rows of C; every task packs all of B.
    Rows(usize),
    /// Stripes of this many columns of C; every task packs all of A.
    Cols(usize),
}

/// Multiply-adds below which [`gemm_par`] runs one call: about 0.1 ms of arithmetic, far more
/// than a rayon split costs.
const PAR_MIN_MACS: usize = 2 << 20;
/// Multiply-adds a task should carry at least.
const PAR_TASK_MACS: usize = 2 << 20;
/// Most tasks one product is split into: several per core, so a core slowed by other work
/// does not hold up the rest, while each task stays large.
const PAR_MAX_TASKS: usize = 8;
/// Fewest rows (or columns) of C per task. Each task repacks the whole other operand, which
/// costs about `1 / extent` of the task's arithmetic in memory traffic; splitting into 16-row
/// blocks made packing as slow as the multiply itself on AlexNet's layers.
const PAR_MIN_EXTENT: usize = 128;
/// Block sizes are whole multiples of the widest micro-kernel tile (16 x 16 with AVX-512), so
/// only the last block has a partial tile.
const TILE: usize = 16;

impl GemmSplit {
    /// The split for an `(m x k) * (k x n)` product: along the longer side of C, in blocks of
    /// at least `PAR_MIN_EXTENT`. A function of the shape only (never of the thread count).
    pub fn for_shape(m: usize, k: usize, n: usize) -> Self {
        let macs = m.saturating_mul(k).saturating_mul(n);
        if macs < PAR_MIN_MACS {
            return Self::Serial;
        }
        let longer = m.max(n);
        // A big product still gets two tasks when its longer side is short: leaving a core
        // idle costs more than the extra packing.
        let tasks = (macs / PAR_TASK_MACS)
            .min(PAR_MAX_TASKS)
            .min((longer / PAR_MIN_EXTENT).max(2))
            .min(longer / TILE);
        if tasks < 2 {
            return Self::Serial;
        }
        let block = longer.div_ceil(tasks).next_multiple_of(TILE);
        if m >= n {
            Self::Rows(block)
        } else {
            Self::Cols(block)
        }
    }
}

/// A pointer to C that rayon tasks may share: each task writes its own disjoint column stripe.
struct SharedC<T>(*mut T);
// SAFETY: the pointer is only used by `gemm_par`, whose tasks write disjoint elements of a C
// that is mutably borrowed for the whole parallel call.
unsafe impl<T: Send> Send for SharedC<T> {}
unsafe impl<T: Send> Sync for SharedC<T> {}
impl<T> SharedC<T> {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper, not the field).
    fn get(&self) -> *mut T {
        self.0
    }
}

/// `C = alpha * A * B + beta * C` for a contiguous row-major C (`c` holds `m x n`), split into
/// rayon tasks by [`GemmSplit::for_shape`].
///
/// With `alpha = 1` and `beta` 0 or 1 (the only values the engine uses), the result is bitwise
/// the same as one serial call, for any split and any thread count: every element of C is
/// summed by the same kernel with the same `k` blocking whichever block or stripe it falls in
/// (matrixmultiply blocks `k` by a constant and never splits it). Other `alpha` or `beta` can
/// round differently in the last bit where a split moves an element between a full
/// micro-kernel tile and a partial one (matrixmultiply scales the two in different orders).
pub fn gemm_par<T: GemmScalar + Send + Sync>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
) {
    gemm_par_split(
        alpha,
        a,
        b,
        beta,
        c,
        GemmSplit::for_shape(a.rows, a.cols, b.cols),
    )
}

/// [`gemm_par`] with an explicit split (tests and benches compare splits).
pub fn gemm_par_split<T: GemmScalar + Send + Sync>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    split: GemmSplit,
) {
    use rayon::prelude::*;
    let (m, n) = (a.rows, b.cols);
    assert_eq!(
        c.len(),
        m * n,
        "gemm_par: C holds {} elements, expected {m}x{n}",
        c.len()
    );
    assert_eq!(
        a.cols, b.rows,
        "gemm_par: ({m}x{}) * ({}x{n})",
        a.cols, b.rows
    );
    let (block, by_rows) = match split {
        GemmSplit::Serial => return gemm(alpha, a, b, beta, MatMut::row_major(c, m, n)),
        GemmSplit::Rows(block) => (block.max(1), true),
        GemmSplit::Cols(block) => (block.max(1), false),
    };
    // One kernel choice for the whole product, so every block computes its elements the same way.
    let kernel = T::choose(alpha, &a, &b, beta, 1);
    let extent = if by_rows { m } else { n };
    let shared = SharedC(c.as_mut_ptr());
    (0..extent.div_ceil(block)).into_par_iter().for_each(|s| {
        let first = s * block;
        let len = block.min(extent - first);
        // Block `s`: rows first..first + len of C (with those rows of A), or columns
        // first..first + len (with those columns of B).
        let (a_s, b_s, offset) = if by_rows {
            (a.row_block(first, len), b, first * n)
        } else {
            (a, b.col_block(first, len), first)
        };
        // SAFETY: block `s` covers offsets i * n + j of the row-major m x n C for its rows (or
        // columns) only: all inside `c` (checked above) and disjoint from every other block's;
        // `c` is mutably borrowed for this call. A's and B's blocks were checked on construction.
        unsafe {
            T::gemm_raw(
                alpha,
                a_s,
                b_s,
                beta,
                shared.get().add(offset),
                n,
                1,
                kernel,
            )
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_at_awkward_sizes() {
        let sizes = [
            (0, 3, 2),
            (1, 1, 1),
            (3, 0, 4),
            (5, 7, 3),
            (17, 257, 9),
            (12, 11, 13),
        ];
        for &(m, k, n) in &sizes {
            let a: Vec<f64> = (0..m * k).map(|i| ((i * 7 % 11) as f64) - 5.0).collect();
            let b: Vec<f64> = (0..k * n).map(|i| ((i * 5 % 13) as f64) * 0.5).collect();
            let want = naive(&a, &b, m, k, n);
            let mut c = vec![f64::NAN; m * n];
            gemm(
                1.0,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                0.0,
                MatMut::row_major(&mut c, m, n),
            );
            assert_eq!(c, want, "m={m} k={k} n={n}");
        }
    }

    #[test]
    fn transpose_views_need_no_copy() {
        // A^T stored row-major as (k x m); C^T written by swapping C's strides.
        let (m, k, n) = (4, 3, 5);
        let a: Vec<f64> = (0..m * k).map(|i| i as f64).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64).sin()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut at = vec![0.0; k * m];
        for i in 0..m {
            for p in 0..k {
                at[p * m + i] = a[i * k + p];
            }
        }
        let mut ct = vec![0.0; n * m];
        gemm(
            1.0,
            MatRef::row_major(&at, k, m).t(),
            MatRef::row_major(&b, k, n),
            0.0,
            MatMut::row_major(&mut ct, n, m).t(),
        );
        for i in 0..m {
            for j in 0..n {
                assert!((ct[j * m + i] - want[i * n + j]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn parallel_rows_match_serial_bitwise() {
        let (m, k, n) = (37, 29, 23);
        let a: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.731).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i as f32) * 0.377).cos()).collect();
        let mut serial = vec![0.0f32; m * n];
        gemm(
            1.0,
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            0.0,
            MatMut::row_major(&mut serial, m, n),
        );
        for block in [1, 4, 8, 36, 100] {
            let mut par = vec![0.0f32; m * n];
            gemm_par_split(
                1.0,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                0.0,
                &mut par,
                GemmSplit::Rows(block),
            );
            assert_eq!(par, serial, "block {block}");
        }
    }

    #[test]
    fn every_split_matches_serial_bitwise() {
        for &(m, k, n) in &[(37, 29, 23), (5, 300, 700), (300, 17, 9), (1, 1, 1)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.731).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i as f32) * 0.377).cos()).collect();
            let c0: Vec<f32> = (0..m * n).map(|i| ((i as f32) * 0.1).cos()).collect();
            let (av, bv) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
            for beta in [0.0, 1.0] {
                let mut serial = c0.clone();
                gemm(1.0, av, bv, beta, MatMut::row_major(&mut serial, m, n));
                let splits = [
                    GemmSplit::Rows(1),
                    GemmSplit::Rows(16),
                    GemmSplit::Cols(1),
                    GemmSplit::Cols(7),
                    GemmSplit::Cols(16),
                    GemmSplit::Cols(n + 5),
                    GemmSplit::for_shape(m, k, n),
                ];
                for split in splits {
                    for threads in [1, 2, 3] {
                        let mut par = c0.clone();
                        crate::testing::in_pool(threads, || {
                            gemm_par_split(1.0, av, bv, beta, &mut par, split)
                        });
                        assert_eq!(
                            par, serial,
                            "{m}x{k}x{n} beta {beta} {split:?} {threads} threads"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn splits_follow_the_longer_side_in_whole_tiles() {
        assert_eq!(GemmSplit::for_shape(16, 144, 256), GemmSplit::Serial);
        // AlexNet conv2's weight gradient at batch 128: 256 x 256 x 2400, split by columns.
        let split = GemmSplit::for_shape(256, 256, 2400);
        assert_eq!(split, GemmSplit::Cols(304));
        assert_eq!(GemmSplit::for_shape(2400, 256, 256), GemmSplit::Rows(304));
        // thinner than PAR_MIN_EXTENT only to use the second core
        assert_eq!(GemmSplit::for_shape(200, 10_000, 200), GemmSplit::Rows(112));
        assert_eq!(GemmSplit::for_shape(2000, 10_000, 20), GemmSplit::Rows(256));
        assert_eq!(GemmSplit::for_shape(20, 100_000, 20), GemmSplit::Serial);
    }

    #[test]
    fn beta_accumulates() {
        let a = [1.0f32, 2.0];
        let b = [3.0f32, 4.0];
        let mut c = [10.0f32];
        gemm(
            1.0,
            MatRef::row_major(&a, 1, 2),
            MatRef::row_major(&b, 2, 1),
            1.0,
            MatMut::row_major(&mut c, 1, 1),
        );
        assert_eq!(c[0], 10.0 + 3.0 + 8.0);
    }

    #[test]
    #[should_panic(expected = "gemm")]
    fn mismatched_shapes_panic() {
        let a = [0.0f32; 6];
        let mut c = [0.0f32; 4];
        gemm(
            1.0,
            MatRef::row_major(&a, 2, 3),
            MatRef::row_major(&a, 2, 3),
            0.0,
            MatMut::row_major(&mut c, 2, 2),
        );
    }
}
