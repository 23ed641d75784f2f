//! Convolution forward and its three backward passes (input, weight, bias), via im2col and GEMM.
//!
//! With `cols = im2col(x)` (`C*K*K` rows, `N*OH*OW` columns) and `W` viewed as a `(Cout, C*K*K)`
//! matrix, the convolution is one GEMM, `Y2 = W * cols`, where `Y2` is the output with its
//! columns in (n, oy, ox) order: `(Cout, N*OH*OW)`. Differentiating `Y2 = W * cols`:
//!
//! - `dcols = W^T * dY2`, and `dx = col2im(dcols)` because col2im is im2col's adjoint;
//! - `dW = dY2 * cols^T`, a reduction over the `N*OH*OW` columns;
//! - `db[o] = sum of dY2 over row o`.
//!
//! The `(rows, N*OH*OW)` matrices live in the caller's workspace in the column-blocked layout of
//! [`crate::blocks`], one GEMM per block, run in parallel. Block boundaries depend only on the
//! geometry and every sum runs in a fixed order, so all four passes give bitwise the same result
//! for any number of threads.

use rayon::prelude::*;

use tensor::{gemm, Float, MatMut, MatRef};

use crate::blocks::ColBlocks;
use crate::geometry::assert_len;
use crate::im2col::{col2im_blocked, im2col_blocked};
use crate::Conv2dGeometry;

/// Columns per GEMM block: wide enough that repacking `W` for every block costs little
/// (about 1/256 of the multiply), narrow enough that a batch splits into many blocks.
const BLOCK_COLS: usize = 256;

/// The most partial weight gradients the weight backward keeps; bounds its workspace at this
/// many weight-sized buffers while leaving enough independent partials to keep the threads busy.
pub(crate) const MAX_WEIGHT_PARTIALS: usize = 16;

/// `output = conv(input, weight) + bias`, NCHW in and out (`(N, Cout, OH, OW)`). Overwrites
/// `output`. `weight` is `[Cout, C, K, K]`, `bias` (if any) has `Cout` entries. `workspace` is
/// scratch the function resizes as needed; reusing one keeps steady-state training allocation-free.
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_forward<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    workspace: &mut Vec<T>,
) {
    const OP: &str = "conv2d_forward";
    g.assert_consistent(OP);
    assert_len(OP, "input", g.input_len(), input.len());
    assert_len(OP, "weight", g.weight_len(), weight.len());
    if let Some(b) = bias {
        assert_len(OP, "bias", g.out_channels, b.len());
    }
    assert_len(OP, "output", g.output_len(), output.len());

    let (rows, cout, ncols) = (g.col_rows(), g.out_channels, g.col_cols());
    let blocks = ColBlocks::tiled(g, BLOCK_COLS);
    workspace.resize((rows + cout) * ncols, T::ZERO);
    let (cols, y2) = workspace.split_at_mut(rows * ncols);
    // cols: (C*K*K, N*OH*OW), column-blocked
    im2col_blocked(g, input, cols, blocks);
    // y2: (Cout, N*OH*OW), column-blocked; block by block, y2_b = W * cols_b
    let w = MatRef::row_major(weight, cout, rows);
    let width = blocks.full_width();
    y2.par_chunks_mut(width * cout)
        .zip(cols.par_chunks(width * rows))
        .for_each(|(y2_b, cols_b)| {
            let bw = cols_b.len() / rows;
            gemm(
                T::ONE,
                w,
                MatRef::row_major(cols_b, rows, bw),
                T::ZERO,
                MatMut::row_major(y2_b, cout, bw),
            );
        });
    // output: (N, Cout, OH, OW), one (n, o) plane per task, each OW run copied and biased.
    output
        .par_chunks_mut(g.out_plane())
        .enumerate()
        .for_each(|(plane_index, plane)| {
            let (n, o) = (plane_index / cout, plane_index % cout);
            let b = bias.map_or(T::ZERO, |b| b[o]);
            for (oy, dst) in plane.chunks_exact_mut(g.out_w).enumerate() {
                let src = &y2[blocks.run(cout, o, n * g.out_h + oy)..][..g.out_w];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = s + b;
                }
            }
        });
}

/// `grad_input = dL/dx` given `grad_output = dL/dy` (both NCHW). Overwrites `grad_input`.
/// `workspace` as in [`conv2d_forward`].
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_backward_input<T: Float>(
    g: &Conv2dGeometry,
    weight: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    workspace: &mut Vec<T>,
) {
    const OP: &str = "conv2d_backward_input";
    g.assert_consistent(OP);
    assert_len(OP, "weight", g.weight_len(), weight.len());
    assert_len(OP, "grad_output", g.output_len(), grad_output.len());
    assert_len(OP, "grad_input", g.input_len(), grad_input.len());

    let (rows, cout, ncols) = (g.col_rows(), g.out_channels, g.col_cols());
    let blocks = ColBlocks::tiled(g, BLOCK_COLS);
    workspace.resize((cout + rows) * ncols, T::ZERO);
    let (dy2, dcols) = workspace.split_at_mut(cout * ncols);
    // dy2: (Cout, N*OH*OW), column-blocked
    gather_output_columns(g, blocks, grad_output, dy2);
    // dcols: (C*K*K, N*OH*OW), column-blocked; dcols_b = W^T * dy2_b
    let wt = MatRef::row_major(weight, cout, rows).t();
    let width = blocks.full_width();
    dcols
        .par_chunks_mut(width * rows)
        .zip(dy2.par_chunks(width * cout))
        .for_each(|(dcols_b, dy2_b)| {
            let bw = dy2_b.len() / cout;
            gemm(
                T::ONE,
                wt,
                MatRef::row_major(dy2_b, cout, bw),
                T::ZERO,
                MatMut::row_major(dcols_b, rows, bw),
            );
        });
    col2im_blocked(g, dcols, blocks, grad_input);
}

/// `grad_weight = dL/dW` (`[Cout, C, K, K]`) given the forward `input` and `grad_output`.
/// Overwrites `grad_weight`. `workspace` as in [`conv2d_forward`].
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_backward_weight<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    workspace: &mut Vec<T>,
) {
    const OP: &str = "conv2d_backward_weight";
    g.assert_consistent(OP);
    assert_len(OP, "input", g.input_len(), input.len());
    assert_len(OP, "grad_output", g.output_len(), grad_output.len());
    assert_len(OP, "grad_weight", g.weight_len(), grad_weight.len());

    let (rows, cout, ncols, wlen) = (g.col_rows(), g.out_channels, g.col_cols(), g.weight_len());
    // Each block's GEMM reads and writes a whole (Cout, C*K*K) accumulator, so wider blocks than
    // the other passes' pay off here: about ncols / MAX_WEIGHT_PARTIALS columns each.
    let blocks = ColBlocks::tiled(g, BLOCK_COLS.max(ncols.div_ceil(MAX_WEIGHT_PARTIALS)));
    // dW = sum over blocks of dy2_b * cols_b^T. Consecutive blocks are grouped into at most
    // MAX_WEIGHT_PARTIALS groups (the grouping depends only on the block count); each group's
    // partial is summed block by block, then the partials are added in group order: the scheme
    // of tensor::parallel::ordered_chunk_sum, with the partials kept in the workspace.
    let per_group = blocks.count().div_ceil(MAX_WEIGHT_PARTIALS);
    let groups = blocks.count().div_ceil(per_group);
    let partials_len = if groups > 1 { groups * wlen } else { 0 };
    workspace.resize((rows + cout) * ncols + partials_len, T::ZERO);
    let (cols, rest) = workspace.split_at_mut(rows * ncols);
    let (dy2, partials) = rest.split_at_mut(cout * ncols);
    // cols: (C*K*K, N*OH*OW) and dy2: (Cout, N*OH*OW), both column-blocked
    im2col_blocked(g, input, cols, blocks);
    gather_output_columns(g, blocks, grad_output, dy2);

    let width = blocks.full_width();
    // Sums dy2_b * cols_b^T over the blocks of group `group` into `acc` (Cout, C*K*K).
    let group_sum = |group: usize, acc: &mut [T]| {
        let first = group * per_group;
        for b in first..blocks.count().min(first + per_group) {
            let bw = width.min(ncols - b * width); // only the last block is narrower
            let cols_b = &cols[b * width * rows..][..rows * bw];
            let dy2_b = &dy2[b * width * cout..][..cout * bw];
            let beta = if b == first { T::ZERO } else { T::ONE };
            gemm(
                T::ONE,
                MatRef::row_major(dy2_b, cout, bw),
                MatRef::row_major(cols_b, rows, bw).t(),
                beta,
                MatMut::row_major(acc, cout, rows),
            );
        }
    };
    if groups == 1 {
        group_sum(0, grad_weight);
        return;
    }
    // partials: (groups, Cout, C*K*K)
    partials
        .par_chunks_mut(wlen)
        .enumerate()
        .for_each(|(group, acc)| group_sum(group, acc));
    let mut parts = partials.chunks_exact(wlen);
    grad_weight.copy_from_slice(parts.next().expect("at least two partials"));
    for part in parts {
        T::vadd_assign(grad_weight, part);
    }
}

/// `grad_bias[o] = sum of grad_output over n, oy, ox`. Overwrites `grad_bias`.
///
/// Parallel over output channels; each channel sums its planes in order n = 0, 1, ..., so the
/// result does not depend on the thread count.
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_backward_bias<T: Float>(g: &Conv2dGeometry, grad_output: &[T], grad_bias: &mut [T]) {
    const OP: &str = "conv2d_backward_bias";
    g.assert_consistent(OP);
    assert_len(OP, "grad_output", g.output_len(), grad_output.len());
    assert_len(OP, "grad_bias", g.out_channels, grad_bias.len());
    let plane = g.out_plane();
    grad_bias.par_iter_mut().enumerate().for_each(|(o, db)| {
        let mut sum = T::ZERO;
        for n in 0..g.batch {
            let start = (n * g.out_channels + o) * plane;
            sum += grad_output[start..start + plane].iter().copied().sum::<T>();
        }
        *db = sum;
    });
}

/// Copies NCHW `grad_output` into the column-blocked `(Cout, N*OH*OW)` matrix `dy2`: the
/// inverse of the forward's final permute.
fn gather_output_columns<T: Float>(
    g: &Conv2dGeometry,
    blocks: ColBlocks,
    grad_output: &[T],
    dy2: &mut [T],
) {
    let (cout, ow) = (g.out_channels, g.out_w);
    blocks.par_for_each_segment(dy2, cout, |o, out_rows, segment| {
        for (t, run) in out_rows.zip(segment.chunks_exact_mut(ow)) {
            let (n, oy) = (t / g.out_h, t % g.out_h);
            run.copy_from_slice(&grad_output[((n * cout + o) * g.out_h + oy) * ow..][..ow]);
        }
    });
}
