//! General matrix multiply: the only `unsafe` in the workspace, behind one checked, safe wrapper.
//!
//! Matrices are described by a slice plus rows, columns and element strides, so a transpose is a
//! swap of strides ([`MatRef::t`]) and never a copy. `matrixmultiply` is used single-threaded: the
//! engine's one level of parallelism is rayon, outside the GEMM.

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

macro_rules! impl_gemm_scalar {
    ($t:ty, $kernel:path) => {
        impl GemmScalar for $t {
            fn gemm_checked(
                alpha: Self,
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                beta: Self,
                c: MatMut<'_, Self>,
            ) {
                check_dims(&a, &b, &c);
                if c.rows == 0 || c.cols == 0 {
                    return;
                }
                // SAFETY: every view was checked on construction to lie inside its slice for all
                // (row, col) pairs it describes, C's strides were checked not to alias, and
                // `check_dims` checked that the three shapes agree, so matrixmultiply reads and
                // writes only inside the borrowed slices. C is borrowed mutably, so it cannot
                // overlap A or B. Strides fit in isize because they index real slices.
                unsafe {
                    $kernel(
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
                        c.data.as_mut_ptr(),
                        c.row_stride as isize,
                        c.col_stride as isize,
                    );
                }
            }
        }
    };
}
impl_gemm_scalar!(f32, matrixmultiply::sgemm);
impl_gemm_scalar!(f64, matrixmultiply::dgemm);

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

/// `C = alpha * A * B + beta * C` for a contiguous row-major C (`c` holds `m x n`), with C's rows
/// split into blocks of `block_rows` computed in parallel.
///
/// Each element of C is computed by the same kernel over the same `k` loop whichever block it
/// falls in, and the blocks depend only on `block_rows`, so the result is bitwise the same for
/// any number of threads.
pub fn gemm_par_rows<T: GemmScalar + Send + Sync>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    block_rows: usize,
) {
    use rayon::prelude::*;
    let (m, n) = (a.rows, b.cols);
    assert_eq!(
        c.len(),
        m * n,
        "gemm_par_rows: C holds {} elements, expected {m}x{n}",
        c.len()
    );
    let block_rows = block_rows.max(1);
    if m <= block_rows || n == 0 {
        return gemm(alpha, a, b, beta, MatMut::row_major(c, m, n));
    }
    c.par_chunks_mut(block_rows * n)
        .enumerate()
        .for_each(|(i, c_block)| {
            let rows = c_block.len() / n;
            gemm(
                alpha,
                a.row_block(i * block_rows, rows),
                b,
                beta,
                MatMut::row_major(c_block, rows, n),
            );
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
            gemm_par_rows(
                1.0,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                0.0,
                &mut par,
                block,
            );
            assert_eq!(par, serial, "block {block}");
        }
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
