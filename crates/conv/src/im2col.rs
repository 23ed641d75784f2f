//! im2col and its adjoint col2im, side by side: the copies that turn a convolution into a GEMM.
//!
//! Row `r = (c * K + ky) * K + kx` of the column matrix is kernel tap (c, ky, kx); column
//! `j = n * OH * OW + oy * OW + ox` is output pixel (n, oy, ox). Entry (r, j) is the input
//! value that tap multiplies at that pixel: `x[n, c, oy*s + ky - p, ox*s + kx - p]`, or zero
//! where that position falls in the padding.

use rayon::prelude::*;

use tensor::Float;

use crate::blocks::{min_items, valid_outputs, ColBlocks};
use crate::geometry::assert_len;
use crate::Conv2dGeometry;

/// Unfolds an NCHW `input` into the column matrix `cols` (`C*K*K` rows, `N*OH*OW` columns,
/// row-major), zero where a window reaches into the padding. Overwrites `cols`.
///
/// Panics if a buffer length does not match the geometry.
pub fn im2col<T: Float>(g: &Conv2dGeometry, input: &[T], cols: &mut [T]) {
    g.assert_consistent("im2col");
    assert_len("im2col", "input", g.input_len(), input.len());
    assert_len("im2col", "cols", g.col_rows() * g.col_cols(), cols.len());
    im2col_blocked(g, input, cols, ColBlocks::plain(g));
}

/// Folds a column matrix back onto the input: the adjoint of [`im2col`]. Every input element
/// receives the sum of the column entries im2col copies it to; entries that im2col fills from
/// the padding are dropped. Overwrites `input_grad` (NCHW).
///
/// Panics if a buffer length does not match the geometry.
pub fn col2im<T: Float>(g: &Conv2dGeometry, cols: &[T], input_grad: &mut [T]) {
    g.assert_consistent("col2im");
    assert_len("col2im", "cols", g.col_rows() * g.col_cols(), cols.len());
    assert_len("col2im", "input_grad", g.input_len(), input_grad.len());
    col2im_blocked(g, cols, ColBlocks::plain(g), input_grad);
}

/// [`im2col`] into a column-blocked matrix; lengths are the caller's to check.
pub(crate) fn im2col_blocked<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    cols: &mut [T],
    blocks: ColBlocks,
) {
    // cols: (C*K*K, N*OH*OW) in column blocks; each piece is one tap's run over whole output rows.
    blocks.par_for_each_segment(cols, g.col_rows(), im2col_segment(g, input));
}

/// Block `b` of [`im2col_blocked`]'s matrix into `block` (that block's `(C*K*K, width)`
/// matrix), on this thread: the convolution forward fills each block right before multiplying
/// it, while it is still in cache.
pub(crate) fn im2col_block<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    block: &mut [T],
    blocks: ColBlocks,
    b: usize,
) {
    blocks.for_each_segment_of_block(b, block, im2col_segment(g, input));
}

/// The im2col fill of one segment: matrix row `r` (tap) over output rows `out_rows`.
fn im2col_segment<'a, T: Float>(
    g: &'a Conv2dGeometry,
    input: &'a [T],
) -> impl Fn(usize, std::ops::Range<usize>, &mut [T]) + Sync + 'a {
    let (k, s, p) = (g.kernel, g.stride, g.padding);
    let (h, w, ow) = (g.in_h, g.in_w, g.out_w);
    move |r, out_rows, segment: &mut [T]| {
        let (c, ky, kx) = (r / (k * k), (r / k) % k, r % k);
        let oy_valid = valid_outputs(g.out_h, h, ky, s, p);
        let ox_valid = valid_outputs(ow, w, kx, s, p);
        for (t, run) in out_rows.zip(segment.chunks_exact_mut(ow)) {
            let (n, oy) = (t / g.out_h, t % g.out_h);
            if !oy_valid.contains(&oy) {
                run.fill(T::ZERO); // the whole output row reads a padding row
                continue;
            }
            let iy = oy * s + ky - p;
            let in_row = &input[((n * g.in_channels + c) * h + iy) * w..][..w];
            run[..ox_valid.start].fill(T::ZERO);
            run[ox_valid.end..].fill(T::ZERO);
            if ox_valid.is_empty() {
                continue;
            }
            let ix0 = ox_valid.start * s + kx - p;
            if s == 1 {
                run[ox_valid.clone()].copy_from_slice(&in_row[ix0..ix0 + ox_valid.len()]);
            } else {
                for (dst, &src) in run[ox_valid.clone()]
                    .iter_mut()
                    .zip(in_row[ix0..].iter().step_by(s))
                {
                    *dst = src;
                }
            }
        }
    }
}

/// [`col2im`] from a column-blocked matrix; lengths are the caller's to check.
///
/// Parallel over (n, c) input planes. A plane gathers its `K*K` taps' rows in a fixed order
/// (ky, kx, oy, ox), so the sums are the same whatever the thread count.
pub(crate) fn col2im_blocked<T: Float>(
    g: &Conv2dGeometry,
    cols: &[T],
    blocks: ColBlocks,
    input_grad: &mut [T],
) {
    let (k, rows) = (g.kernel, g.col_rows());
    // input_grad: (N, C, H, W), one (H, W) plane per task.
    input_grad
        .par_chunks_mut(g.in_plane())
        .enumerate()
        .with_min_len(min_items(g.in_plane() * k * k))
        .for_each(|(plane_index, plane)| {
            let (n, c) = (plane_index / g.in_channels, plane_index % g.in_channels);
            // (first, step) of each output row of image n, looked up once per plane
            let runs: Vec<(usize, usize)> = (0..g.out_h)
                .map(|oy| blocks.runs_of(rows, n * g.out_h + oy))
                .collect();
            fold_plane(g, c, plane, |r, oy| {
                let (first, step) = runs[oy];
                &cols[first + r * step..][..g.out_w]
            });
        });
}

/// [`col2im`] of the images a column block holds, on this thread: `block` is that block's own
/// `(C*K*K, width)` matrix for whole images `first_image..`, and `input_grad` their NCHW
/// planes. The input gradient folds each block right after its GEMM, while it is in cache.
pub(crate) fn col2im_images<T: Float>(
    g: &Conv2dGeometry,
    block: &[T],
    width: usize,
    input_grad: &mut [T],
) {
    let per_image = g.out_h * g.out_w;
    for (plane_index, plane) in input_grad.chunks_exact_mut(g.in_plane()).enumerate() {
        let (n, c) = (plane_index / g.in_channels, plane_index % g.in_channels);
        fold_plane(g, c, plane, |r, oy| {
            &block[r * width + n * per_image + oy * g.out_w..][..g.out_w]
        });
    }
}

/// Overwrites one input-channel `c` plane with the sum of its column entries: `run(r, oy)` is
/// matrix row `r`'s `OW`-long run at output row `oy` of the plane's image. Taps in (ky, kx)
/// order, output rows in order, so every layout sums in the same order.
fn fold_plane<'a, T: Float + 'a>(
    g: &Conv2dGeometry,
    c: usize,
    plane: &mut [T],
    run: impl Fn(usize, usize) -> &'a [T],
) {
    let (k, s, p) = (g.kernel, g.stride, g.padding);
    let (w, ow) = (g.in_w, g.out_w);
    plane.fill(T::ZERO);
    for ky in 0..k {
        for kx in 0..k {
            let r = (c * k + ky) * k + kx;
            let ox_valid = valid_outputs(ow, w, kx, s, p);
            if ox_valid.is_empty() {
                continue;
            }
            let ix0 = ox_valid.start * s + kx - p;
            for oy in valid_outputs(g.out_h, g.in_h, ky, s, p) {
                let iy = oy * s + ky - p;
                let run = run(r, oy);
                let dst = &mut plane[iy * w..][..w];
                if s == 1 {
                    // Runs are short (28 floats at most for Fashion-MNIST): an inline
                    // loop the compiler vectorizes beats a call into the SIMD kernel.
                    let dst = &mut dst[ix0..ix0 + ox_valid.len()];
                    for (d, &v) in dst.iter_mut().zip(&run[ox_valid.clone()]) {
                        *d += v;
                    }
                } else {
                    for (d, &v) in dst[ix0..].iter_mut().step_by(s).zip(&run[ox_valid.clone()]) {
                        *d += v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random_vec;

    /// Entry (r, j) straight from the definition in the module docs.
    fn im2col_by_definition(g: &Conv2dGeometry, x: &[f64]) -> Vec<f64> {
        let (k, ohw) = (g.kernel, g.out_h * g.out_w);
        let mut cols = vec![0.0; g.col_rows() * g.col_cols()];
        for r in 0..g.col_rows() {
            let (c, ky, kx) = (r / (k * k), (r / k) % k, r % k);
            for j in 0..g.col_cols() {
                let (n, oy, ox) = (j / ohw, (j % ohw) / g.out_w, j % g.out_w);
                let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                if (0..g.in_h as isize).contains(&iy) && (0..g.in_w as isize).contains(&ix) {
                    let (iy, ix) = (iy as usize, ix as usize);
                    cols[r * g.col_cols() + j] =
                        x[((n * g.in_channels + c) * g.in_h + iy) * g.in_w + ix];
                }
            }
        }
        cols
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn geometries() -> Vec<Conv2dGeometry> {
        let shapes = [
            // (n, c, h, w, k, s, p)
            (1, 1, 5, 5, 3, 1, 0),
            (2, 3, 6, 7, 3, 1, 1),
            (2, 2, 9, 8, 5, 2, 2),
            (1, 2, 12, 11, 11, 4, 0),
            (3, 1, 4, 5, 2, 3, 3), // padding > kernel: whole rows and columns of padding
            (2, 2, 7, 7, 1, 2, 0),
            (1, 1, 1, 1, 3, 1, 1),
        ];
        shapes
            .iter()
            .map(|&(n, c, h, w, k, s, p)| Conv2dGeometry::new(n, c, h, w, 1, k, s, p).unwrap())
            .collect()
    }

    #[test]
    fn im2col_matches_its_definition_in_every_layout() {
        for (i, g) in geometries().iter().enumerate() {
            let x = random_vec(g.input_len(), i as u64);
            let want = im2col_by_definition(g, &x);
            let mut cols = vec![f64::NAN; want.len()];
            im2col(g, &x, &mut cols);
            assert_eq!(cols, want, "{g:?}");
            // A blocked layout holds the same runs at other offsets.
            for target in [1, 2 * g.out_w, 17] {
                let blocks = ColBlocks::tiled(g, target);
                let mut blocked = vec![f64::NAN; want.len()];
                im2col_blocked(g, &x, &mut blocked, blocks);
                let plain = ColBlocks::plain(g);
                for r in 0..g.col_rows() {
                    for t in 0..g.batch * g.out_h {
                        let (a, b) = (
                            blocks.run(g.col_rows(), r, t),
                            plain.run(g.col_rows(), r, t),
                        );
                        assert_eq!(
                            blocked[a..a + g.out_w],
                            want[b..b + g.out_w],
                            "{g:?} {blocks:?} r {r} t {t}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), y> == <x, col2im(y)> for all x, y defines the adjoint.
        for (i, g) in geometries().iter().enumerate() {
            let x = random_vec(g.input_len(), 100 + i as u64);
            let y = random_vec(g.col_rows() * g.col_cols(), 200 + i as u64);
            let mut cols = vec![0.0; y.len()];
            im2col(g, &x, &mut cols);
            let mut back = vec![f64::NAN; x.len()];
            col2im(g, &y, &mut back);
            let (lhs, rhs) = (dot(&cols, &y), dot(&x, &back));
            assert!(
                (lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0),
                "{g:?}: {lhs} vs {rhs}"
            );
            // The blocked layout folds back to the same gradient, bit for bit (same sum order).
            let blocks = ColBlocks::tiled(g, 2 * g.out_w);
            let mut y_blocked = vec![0.0; y.len()];
            let plain = ColBlocks::plain(g);
            for r in 0..g.col_rows() {
                for t in 0..g.batch * g.out_h {
                    let (a, b) = (
                        blocks.run(g.col_rows(), r, t),
                        plain.run(g.col_rows(), r, t),
                    );
                    y_blocked[a..a + g.out_w].copy_from_slice(&y[b..b + g.out_w]);
                }
            }
            let mut back_blocked = vec![f64::NAN; x.len()];
            col2im_blocked(g, &y_blocked, blocks, &mut back_blocked);
            assert_eq!(back_blocked, back, "{g:?}");
        }
    }

    #[test]
    #[should_panic(expected = "im2col: cols has length 3, expected 81")]
    fn wrong_cols_length_panics_with_the_buffer_named() {
        let g = Conv2dGeometry::new(1, 1, 3, 3, 1, 3, 1, 1).unwrap();
        im2col(&g, &[0.0f32; 9], &mut [0.0f32; 3]);
    }
}
