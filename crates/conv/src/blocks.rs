//! The column-blocked layout the conv kernels keep their `(rows, N*OH*OW)` matrices in.
//!
//! A GEMM over all `N*OH*OW` columns is split into column blocks so rayon can run the blocks in
//! parallel. A column block of a row-major matrix is not contiguous, so each block is stored as
//! its own contiguous row-major matrix: block `b` is a `(rows, width_b)` matrix placed right
//! after block `b - 1`. Blocks hold whole output rows (`OW` columns each; output row `t` is
//! image `n = t / OH`, row `oy = t % OH`), so every `OW`-long run the im2col loops touch lies in
//! one block. With a single block the layout is the plain row-major `(rows, N*OH*OW)` matrix
//! the public [`im2col`](crate::im2col) uses.
//!
//! Block boundaries depend only on the geometry, never on the thread count, so every GEMM and
//! every sum is the same computation whatever the pool size.

use std::ops::Range;

use rayon::prelude::*;

use crate::Conv2dGeometry;

/// Fewest elements a rayon task should touch in the copy-like passes (im2col, col2im, the
/// output permute): below this, scheduling a task costs more than the copy it carries. Only the
/// grouping of independent outputs into tasks depends on it, never any arithmetic.
pub(crate) const TASK_GRAIN: usize = 8 * 1024;

/// Items per rayon task so that each task covers at least [`TASK_GRAIN`] elements, for items of
/// `item_len` elements (for `with_min_len`).
pub(crate) fn min_items(item_len: usize) -> usize {
    TASK_GRAIN.div_ceil(item_len.max(1))
}

/// Where the columns of a `(rows, N*OH*OW)` matrix live; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ColBlocks {
    /// Columns per output row, `OW`.
    out_w: usize,
    /// Output rows of the whole batch, `N * OH`.
    out_rows: usize,
    /// Output rows per block; the last block may hold fewer.
    rows_per_block: usize,
}

impl ColBlocks {
    /// One block: the plain row-major layout.
    pub(crate) fn plain(g: &Conv2dGeometry) -> Self {
        let out_rows = g.batch * g.out_h;
        Self {
            out_w: g.out_w,
            out_rows,
            rows_per_block: out_rows,
        }
    }

    /// Blocks of about `target_cols` columns (at least one output row each).
    pub(crate) fn tiled(g: &Conv2dGeometry, target_cols: usize) -> Self {
        let out_rows = g.batch * g.out_h;
        let rows_per_block = (target_cols / g.out_w).clamp(1, out_rows);
        Self {
            out_w: g.out_w,
            out_rows,
            rows_per_block,
        }
    }

    /// Number of blocks.
    pub(crate) fn count(&self) -> usize {
        self.out_rows.div_ceil(self.rows_per_block)
    }

    /// Columns in a full block; only the last block may be narrower.
    pub(crate) fn full_width(&self) -> usize {
        self.rows_per_block * self.out_w
    }

    /// The output rows block `b` holds.
    fn out_rows_of(&self, b: usize) -> Range<usize> {
        let first = b * self.rows_per_block;
        first..self.out_rows.min(first + self.rows_per_block)
    }

    /// Offset of the `OW`-long run of matrix row `r` at output row `t`, in a matrix of `rows` rows.
    pub(crate) fn run(&self, rows: usize, r: usize, t: usize) -> usize {
        let b = t / self.rows_per_block;
        let out_rows = self.out_rows_of(b);
        let width = out_rows.len() * self.out_w;
        // Every earlier block is full, so block b starts after b full (rows, full_width) matrices.
        b * self.full_width() * rows + r * width + (t - out_rows.start) * self.out_w
    }

    /// Where output row `t`'s runs live in a matrix of `rows` rows: matrix row `r`'s run starts
    /// at `first + r * row_step`. [`ColBlocks::run`] without its division, for loops that visit
    /// one output row's runs for many `r`.
    pub(crate) fn runs_of(&self, rows: usize, t: usize) -> (usize, usize) {
        let b = t / self.rows_per_block;
        let out_rows = self.out_rows_of(b);
        let width = out_rows.len() * self.out_w;
        let first = b * self.full_width() * rows + (t - out_rows.start) * self.out_w;
        (first, width)
    }

    /// Calls `fill(r, out_rows, segment)` on this thread for every matrix row `r` of block `b`,
    /// stored in `block` (the block's own `(rows, width)` matrix); see
    /// [`ColBlocks::par_for_each_segment`].
    pub(crate) fn for_each_segment_of_block<T, F>(&self, b: usize, block: &mut [T], fill: F)
    where
        F: Fn(usize, Range<usize>, &mut [T]),
    {
        let out_rows = self.out_rows_of(b);
        let width = out_rows.len() * self.out_w;
        for (r, segment) in block.chunks_exact_mut(width).enumerate() {
            fill(r, out_rows.clone(), segment);
        }
    }

    /// Calls `fill(r, out_rows, segment)` in parallel for every block and matrix row `r` of a
    /// `rows`-row matrix stored in `buf`. `segment` is row `r`'s contiguous stretch inside the
    /// block: `OW` entries for each output row in `out_rows`, in order.
    pub(crate) fn par_for_each_segment<T, F>(&self, buf: &mut [T], rows: usize, fill: F)
    where
        T: Send,
        F: Fn(usize, Range<usize>, &mut [T]) + Sync,
    {
        assert_eq!(
            buf.len(),
            rows * self.out_rows * self.out_w,
            "blocked matrix length"
        );
        let block_len = self.full_width() * rows;
        buf.par_chunks_mut(block_len)
            .enumerate()
            .with_min_len(min_items(block_len))
            .for_each(|(b, block)| {
                let out_rows = self.out_rows_of(b);
                let width = out_rows.len() * self.out_w;
                block
                    .par_chunks_mut(width)
                    .enumerate()
                    .with_min_len(min_items(width))
                    .for_each(|(r, segment)| fill(r, out_rows.clone(), segment));
            });
    }
}

/// The output positions `o` in `0..out_len` whose input position `o * stride + tap - padding`
/// lies inside `0..in_len`; the positions outside read the zero padding.
///
/// Used for both axes: `tap` is `ky` (or `kx`), the offset of the kernel tap inside the window.
/// The valid positions are contiguous because the input position grows with `o`.
pub(crate) fn valid_outputs(
    out_len: usize,
    in_len: usize,
    tap: usize,
    stride: usize,
    padding: usize,
) -> Range<usize> {
    // o * stride + tap >= padding  <=>  o >= ceil((padding - tap) / stride)
    let lo = padding.saturating_sub(tap).div_ceil(stride).min(out_len);
    // o * stride + tap - padding < in_len  <=>  o * stride < in_len + padding - tap
    let hi = (in_len + padding)
        .saturating_sub(tap)
        .div_ceil(stride)
        .min(out_len);
    lo..hi.max(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_outputs_match_a_direct_scan() {
        for out_len in 1..6 {
            for in_len in 1..6 {
                for tap in 0..5 {
                    for stride in 1..4 {
                        for padding in 0..4 {
                            let inside = |o: usize| {
                                let i = (o * stride + tap) as isize - padding as isize;
                                (0..in_len as isize).contains(&i)
                            };
                            let want: Vec<usize> = (0..out_len).filter(|&o| inside(o)).collect();
                            let got: Vec<usize> =
                                valid_outputs(out_len, in_len, tap, stride, padding).collect();
                            assert_eq!(got, want, "out {out_len} in {in_len} tap {tap} stride {stride} padding {padding}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn runs_tile_the_buffer_exactly_once() {
        // 2 images of 5x3 outputs = 10 output rows of 3 columns; blocks of 10, 2 and 3 output rows
        // (the last holding 1), and a target wider than the matrix.
        let g = Conv2dGeometry::new(2, 1, 5, 3, 1, 1, 1, 0).unwrap();
        for blocks in [
            ColBlocks::plain(&g),
            ColBlocks::tiled(&g, 7),
            ColBlocks::tiled(&g, 9),
            ColBlocks::tiled(&g, 1000),
        ] {
            let rows = 3;
            let mut seen = vec![0u32; rows * g.col_cols()];
            for r in 0..rows {
                for t in 0..g.batch * g.out_h {
                    let at = blocks.run(rows, r, t);
                    seen[at..at + g.out_w].iter_mut().for_each(|s| *s += 1);
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{blocks:?}: {seen:?}");
            for r in 0..rows {
                for t in 0..g.batch * g.out_h {
                    let (first, step) = blocks.runs_of(rows, t);
                    assert_eq!(
                        first + r * step,
                        blocks.run(rows, r, t),
                        "{blocks:?} r {r} t {t}"
                    );
                }
            }
            // par_for_each_segment hands out the same runs: record (r, t) at each position.
            let mut tags = vec![(usize::MAX, usize::MAX); seen.len()];
            blocks.par_for_each_segment(&mut tags, rows, |r, out_rows, seg| {
                for (i, t) in out_rows.enumerate() {
                    seg[i * g.out_w..(i + 1) * g.out_w].fill((r, t));
                }
            });
            for r in 0..rows {
                for t in 0..g.batch * g.out_h {
                    let at = blocks.run(rows, r, t);
                    assert!(
                        tags[at..at + g.out_w].iter().all(|&x| x == (r, t)),
                        "{blocks:?} r {r} t {t}"
                    );
                }
            }
        }
    }
}
