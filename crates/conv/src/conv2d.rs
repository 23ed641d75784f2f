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
//!
//! One shape skips im2col: a 1x1 input with a 1x1 output (the `deep` network's conv5..conv9 on
//! Fashion-MNIST). Only the tap at (padding, padding) reads the input; every other tap reads
//! zero padding, so `C*K*K - C` of the im2col rows are zero. The convolution is then a dense
//! layer on that tap's weights, `y (N, Cout) = x (N, C) * W_tap^T`, and the passes are GEMMs on
//! strided views of `W` with no copies ([`single_tap`]).

use rayon::prelude::*;

use tensor::cpu::Tier;
use tensor::{gemm, gemm_par, Float, MatMut, MatRef};

use crate::arch;
use crate::blocks::{min_items, ColBlocks};
use crate::geometry::assert_len;
use crate::im2col::{col2im_images, im2col_block};
use crate::lanes::LANES;
use crate::path::ConvPath;
use crate::Conv2dGeometry;

/// Columns per GEMM block: wide enough that repacking `W` for every block costs little
/// (about 1/256 of the multiply), narrow enough that a batch splits into many blocks.
const BLOCK_COLS: usize = 256;

/// The most partial weight gradients the weight backward keeps; bounds its workspace at this
/// many weight-sized buffers while leaving enough independent partials to keep the threads busy.
pub(crate) const MAX_WEIGHT_PARTIALS: usize = 16;

/// The offset `ky * K + kx` of the only kernel tap that reads the input, when the input and the
/// output are both 1x1: the window at the one output position covers padded rows and columns
/// `0..K`, where the input pixel sits at `padding` (so it is inside iff `padding < K`). `None`
/// for every other geometry, which takes the im2col path.
pub(crate) fn single_tap(g: &Conv2dGeometry) -> Option<usize> {
    let one_by_one = g.in_h == 1 && g.in_w == 1 && g.out_h == 1 && g.out_w == 1;
    (one_by_one && g.padding < g.kernel).then(|| g.padding * g.kernel + g.padding)
}

/// That tap's weights `W[:, :, p, p]` as a `(Cout, C)` view of the `[Cout, C, K, K]` weight.
fn tap_weights<'a, T>(g: &Conv2dGeometry, weight: &'a [T], tap: usize) -> MatRef<'a, T> {
    let kk = g.kernel * g.kernel;
    MatRef::new(
        &weight[tap..],
        g.out_channels,
        g.in_channels,
        g.col_rows(),
        kk,
    )
}

/// The first `len` elements of `workspace`, growing it if needed. It never shrinks, so a
/// training step that goes from a large layer to a small one and back neither reallocates nor
/// re-zeroes: every pass writes its scratch before reading it.
pub(crate) fn scratch<T: Float>(workspace: &mut Vec<T>, len: usize) -> &mut [T] {
    if workspace.len() < len {
        workspace.resize(len, T::ZERO);
    }
    &mut workspace[..len]
}

/// Panics, naming `op` and the buffer, unless the forward's buffers fit `g`.
pub(crate) fn assert_forward_lens<T>(
    op: &str,
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &[T],
) {
    assert_len(op, "input", g.input_len(), input.len());
    assert_len(op, "weight", g.weight_len(), weight.len());
    if let Some(b) = bias {
        assert_len(op, "bias", g.out_channels, b.len());
    }
    assert_len(op, "output", g.output_len(), output.len());
}

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
    forward_on(
        tensor::cpu::tier(),
        g,
        input,
        weight,
        bias,
        output,
        workspace,
    )
}

/// [`conv2d_forward`] on `tier` (a tier the CPU lacks runs as [`Tier::Portable`] would).
pub(crate) fn forward_on<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    workspace: &mut Vec<T>,
) {
    const OP: &str = "conv2d_forward";
    g.assert_consistent(OP);
    assert_forward_lens(OP, g, input, weight, bias, output);

    crate::path::choose(g, tier).forward(tier, g, input, weight, bias, output, workspace);
}

/// The portable reference forward: im2col + GEMM, block by block.
fn im2col_forward<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    workspace: &mut Vec<T>,
) {
    let (rows, cout, ncols) = (g.col_rows(), g.out_channels, g.col_cols());
    let blocks = ColBlocks::tiled(g, BLOCK_COLS);
    let workspace = scratch(workspace, (rows + cout) * ncols);
    let (cols, y2) = workspace.split_at_mut(rows * ncols);
    // cols: (C*K*K, N*OH*OW) and y2: (Cout, N*OH*OW), column-blocked. Block by block, in one
    // task each: fill cols_b, then y2_b = W * cols_b while cols_b is still in cache.
    let w = MatRef::row_major(weight, cout, rows);
    let width = blocks.full_width();
    y2.par_chunks_mut(width * cout)
        .zip(cols.par_chunks_mut(width * rows))
        .enumerate()
        .for_each(|(b, (y2_b, cols_b))| {
            im2col_block(g, input, cols_b, blocks, b);
            let bw = cols_b.len() / rows;
            let cols_b = MatRef::row_major(cols_b, rows, bw);
            gemm_par(T::ONE, w, cols_b, T::ZERO, y2_b);
        });
    // output: (N, Cout, OH, OW), one (n, o) plane per task, each OW run copied and biased.
    output
        .par_chunks_mut(g.out_plane())
        .enumerate()
        .with_min_len(min_items(g.out_plane()))
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
    backward_input_on(
        tensor::cpu::tier(),
        g,
        weight,
        grad_output,
        grad_input,
        workspace,
    )
}

/// [`conv2d_backward_input`] on `tier` (a tier the CPU lacks runs as [`Tier::Portable`] would).
pub(crate) fn backward_input_on<T: Float>(
    tier: Tier,
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

    crate::path::choose(g, tier).backward_input(
        tier,
        g,
        weight,
        grad_output,
        grad_input,
        workspace,
    );
}

/// The portable reference input gradient: `W^T * dY2` per block of whole images, folded back
/// by col2im.
fn im2col_backward_input<T: Float>(
    g: &Conv2dGeometry,
    weight: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    workspace: &mut Vec<T>,
) {
    let (rows, cout, ncols) = (g.col_rows(), g.out_channels, g.col_cols());
    // Blocks of whole images (about BLOCK_COLS columns, at least one image), so each block's
    // columns fold back onto its own images' planes and nothing else.
    let images_per_block = (BLOCK_COLS / (g.out_h * g.out_w)).max(1);
    let blocks = ColBlocks::tiled(g, images_per_block * g.out_h * g.out_w);
    let workspace = scratch(workspace, (cout + rows) * ncols);
    let (dy2, dcols) = workspace.split_at_mut(cout * ncols);
    // dy2: (Cout, N*OH*OW) and dcols: (C*K*K, N*OH*OW), column-blocked. Block by block, in
    // one task each: gather dy2_b, dcols_b = W^T * dy2_b, and fold dcols_b onto the block's
    // images (col2im), each step reading what the last one left in cache.
    let wt = MatRef::row_major(weight, cout, rows).t();
    let width = blocks.full_width();
    grad_input
        .par_chunks_mut(images_per_block * g.in_channels * g.in_plane())
        .zip(dcols.par_chunks_mut(width * rows))
        .zip(dy2.par_chunks_mut(width * cout))
        .enumerate()
        .for_each(|(b, ((dx_b, dcols_b), dy2_b))| {
            gather_block(g, grad_output, dy2_b, blocks, b);
            let bw = dy2_b.len() / cout;
            let dy2_m = MatRef::row_major(dy2_b, cout, bw);
            gemm_par(T::ONE, wt, dy2_m, T::ZERO, dcols_b);
            col2im_images(g, dcols_b, bw, dx_b);
        });
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
    backward_weight_on(
        tensor::cpu::tier(),
        g,
        input,
        grad_output,
        grad_weight,
        workspace,
    )
}

/// [`conv2d_backward_weight`] on `tier` (a tier the CPU lacks runs as [`Tier::Portable`] would).
pub(crate) fn backward_weight_on<T: Float>(
    tier: Tier,
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

    crate::path::choose(g, tier).backward_weight(
        tier,
        g,
        input,
        grad_output,
        grad_weight,
        workspace,
    );
}

/// The portable reference weight gradient: `dY2 * cols^T` summed over blocks in a fixed order.
fn im2col_backward_weight<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    workspace: &mut Vec<T>,
) {
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
    let workspace = scratch(workspace, (rows + cout) * ncols + partials_len);
    let (cols, rest) = workspace.split_at_mut(rows * ncols);
    let (dy2, partials) = rest.split_at_mut(cout * ncols);
    // cols: (C*K*K, N*OH*OW) and dy2: (Cout, N*OH*OW), both column-blocked; each group's
    // blocks are filled by the task that multiplies them, right before it does.
    let width = blocks.full_width();
    // Sums dy2_b * cols_b^T over the blocks of group `group` into `acc` (Cout, C*K*K);
    // `cols_g` and `dy2_g` are the group's stretches of the two matrices.
    let group_sum = |group: usize, cols_g: &mut [T], dy2_g: &mut [T], acc: &mut [T]| {
        let first = group * per_group;
        let (mut cols_g, mut dy2_g) = (cols_g, dy2_g);
        for b in first..blocks.count().min(first + per_group) {
            let bw = width.min(ncols - b * width); // only the last block is narrower
            let (cols_b, cols_rest) = cols_g.split_at_mut(rows * bw);
            let (dy2_b, dy2_rest) = dy2_g.split_at_mut(cout * bw);
            (cols_g, dy2_g) = (cols_rest, dy2_rest);
            im2col_block(g, input, cols_b, blocks, b);
            gather_block(g, grad_output, dy2_b, blocks, b);
            let beta = if b == first { T::ZERO } else { T::ONE };
            let dy2_b = MatRef::row_major(dy2_b, cout, bw);
            let cols_bt = MatRef::row_major(cols_b, rows, bw).t();
            gemm_par(T::ONE, dy2_b, cols_bt, beta, acc);
        }
    };
    if groups == 1 {
        group_sum(0, cols, dy2, grad_weight);
        return;
    }
    // partials: (groups, Cout, C*K*K)
    let group_cols = per_group * width;
    cols.par_chunks_mut(group_cols * rows)
        .zip(dy2.par_chunks_mut(group_cols * cout))
        .zip(partials.par_chunks_mut(wlen))
        .enumerate()
        .for_each(|(group, ((cols_g, dy2_g), acc))| group_sum(group, cols_g, dy2_g, acc));
    let mut parts = partials.chunks_exact(wlen);
    grad_weight.copy_from_slice(parts.next().expect("at least two partials"));
    for part in parts {
        T::vadd_assign(grad_weight, part);
    }
}

/// 1x1 in and out: a dense layer on the one tap that reads the input ([`single_tap`]).
pub(crate) struct SingleTap;

impl<T: Float> ConvPath<T> for SingleTap {
    fn name(&self) -> &'static str {
        "single-tap"
    }
    fn applies(&self, g: &Conv2dGeometry, _tier: Tier) -> bool {
        single_tap(g).is_some()
    }
    fn forward(
        &self,
        _tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        output: &mut [T],
        _workspace: &mut Vec<T>,
    ) {
        // output: (N, Cout) = x (N, C) * W_tap^T (C, Cout), then + bias per row
        let tap = single_tap(g).expect("chosen for a single-tap geometry");
        let x = MatRef::row_major(input, g.batch, g.in_channels);
        let w_tap = tap_weights(g, weight, tap);
        gemm_par(T::ONE, x, w_tap.t(), T::ZERO, output);
        if let Some(b) = bias {
            for row in output.chunks_exact_mut(g.out_channels) {
                T::vadd_assign(row, b);
            }
        }
    }
    fn backward_input(
        &self,
        _tier: Tier,
        g: &Conv2dGeometry,
        weight: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
        _workspace: &mut Vec<T>,
    ) {
        // grad_input: (N, C) = dy (N, Cout) * W_tap (Cout, C); the other taps read padding
        let tap = single_tap(g).expect("chosen for a single-tap geometry");
        let dy = MatRef::row_major(grad_output, g.batch, g.out_channels);
        let w_tap = tap_weights(g, weight, tap);
        gemm_par(T::ONE, dy, w_tap, T::ZERO, grad_input);
    }
    fn backward_weight(
        &self,
        _tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        grad_output: &[T],
        grad_weight: &mut [T],
        _workspace: &mut Vec<T>,
    ) {
        // dW[:, :, p, p] (Cout, C) = dy^T (Cout, N) * x (N, C), one GEMM so each element
        // sums the batch in one order; the taps that read only padding get zero.
        let tap = single_tap(g).expect("chosen for a single-tap geometry");
        grad_weight.fill(T::ZERO);
        let (cout, c, kk) = (g.out_channels, g.in_channels, g.kernel * g.kernel);
        let dy_t = MatRef::row_major(grad_output, g.batch, cout).t();
        let x = MatRef::row_major(input, g.batch, c);
        let dw_tap = MatMut::new(&mut grad_weight[tap..], cout, c, g.col_rows(), kk);
        gemm(T::ONE, dy_t, x, T::ZERO, dw_tap);
    }
}

/// The portable reference: im2col + GEMM, for every geometry.
pub(crate) struct Im2col;

impl<T: Float> ConvPath<T> for Im2col {
    fn name(&self) -> &'static str {
        "im2col"
    }
    fn applies(&self, _g: &Conv2dGeometry, _tier: Tier) -> bool {
        true
    }
    fn forward(
        &self,
        _tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        output: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        im2col_forward(g, input, weight, bias, output, workspace)
    }
    fn backward_input(
        &self,
        _tier: Tier,
        g: &Conv2dGeometry,
        weight: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        im2col_backward_input(g, weight, grad_output, grad_input, workspace)
    }
    fn backward_weight(
        &self,
        _tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        grad_output: &[T],
        grad_weight: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        im2col_backward_weight(g, input, grad_output, grad_weight, workspace)
    }
}

/// `grad_bias[o] = sum of grad_output over n, oy, ox`. Overwrites `grad_bias`.
///
/// Parallel over output channels; each channel sums its planes in order n = 0, 1, ... into 16
/// lane sums and a tail sum, added up in a fixed order, so the result does not depend on the
/// thread count.
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_backward_bias<T: Float>(g: &Conv2dGeometry, grad_output: &[T], grad_bias: &mut [T]) {
    backward_bias_on(tensor::cpu::tier(), g, grad_output, grad_bias)
}

/// [`conv2d_backward_bias`] on `tier` (a tier the CPU lacks runs as [`Tier::Portable`] would).
pub(crate) fn backward_bias_on<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    grad_output: &[T],
    grad_bias: &mut [T],
) {
    const OP: &str = "conv2d_backward_bias";
    g.assert_consistent(OP);
    assert_len(OP, "grad_output", g.output_len(), grad_output.len());
    assert_len(OP, "grad_bias", g.out_channels, grad_bias.len());
    let plane = g.out_plane();
    grad_bias
        .par_iter_mut()
        .enumerate()
        .with_min_len(min_items(g.batch * plane))
        .for_each(|(o, db)| {
            *db = if tier.vector_kernels() {
                arch::bias_channel_sum(tier, grad_output, g.out_channels, plane, o)
            } else {
                channel_sum_body(grad_output, g.out_channels, plane, o)
            }
        });
}

/// The sum of channel `o`'s planes of `grad_output` (`(N, channels, plane)`): 16 running sums,
/// one per lane, over every image's whole vectors, a tail sum of each image's remaining
/// values, then the lanes in order, then the tail. A single running sum is a chain of dependent
/// adds the compiler may not vectorize (it would reorder them).
#[inline(always)]
pub(crate) fn channel_sum_body<T: Float>(
    grad_output: &[T],
    channels: usize,
    plane: usize,
    o: usize,
) -> T {
    let batch = grad_output.len() / (channels * plane);
    let mut lanes = [T::ZERO; LANES];
    let mut tail = T::ZERO;
    for n in 0..batch {
        let start = (n * channels + o) * plane;
        let values = &grad_output[start..start + plane];
        let mut chunks = values.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (l, &v) in lanes.iter_mut().zip(chunk) {
                *l += v;
            }
        }
        tail += chunks.remainder().iter().copied().sum::<T>();
    }
    lanes.iter().fold(T::ZERO, |sum, &l| sum + l) + tail
}

/// Copies block `b` of the column-blocked `(Cout, N*OH*OW)` matrix of NCHW `grad_output` into
/// `block` (that block's `(Cout, width)` matrix), on this thread: the inverse of the forward's
/// final permute, one block at a time.
fn gather_block<T: Float>(
    g: &Conv2dGeometry,
    grad_output: &[T],
    block: &mut [T],
    blocks: ColBlocks,
    b: usize,
) {
    let (cout, ow) = (g.out_channels, g.out_w);
    blocks.for_each_segment_of_block(b, block, |o, out_rows, segment| {
        for (t, run) in out_rows.zip(segment.chunks_exact_mut(ow)) {
            let (n, oy) = (t / g.out_h, t % g.out_h);
            run.copy_from_slice(&grad_output[((n * cout + o) * g.out_h + oy) * ow..][..ow]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naive::*;
    use crate::path::choose;
    use crate::test_util::random_vec;
    use crate::{direct2x2, direct3x3, tapwise, unrolled};
    use tensor::cpu::supported_tiers;
    use tensor::testing::{assert_close, in_pool, require_tier};

    /// The operands of one pass, `(x, w, b, dy)`.
    type Operands<'a> = (&'a [f64], &'a [f64], &'a [f64], &'a [f64]);

    /// (y, dx, dw, db) from the fast kernels on `tier`, outputs and workspace pre-filled with NaN.
    fn fast(tier: Tier, g: &Conv2dGeometry, (x, w, b, dy): Operands) -> [Vec<f64>; 4] {
        let nan = f64::NAN;
        let mut ws = vec![nan; 7];
        let (mut y, mut dx) = (vec![nan; g.output_len()], vec![nan; g.input_len()]);
        let (mut dw, mut db) = (vec![nan; g.weight_len()], vec![nan; g.out_channels]);
        forward_on(tier, g, x, w, Some(b), &mut y, &mut ws);
        backward_input_on(tier, g, w, dy, &mut dx, &mut ws);
        backward_weight_on(tier, g, x, dy, &mut dw, &mut ws);
        backward_bias_on(tier, g, dy, &mut db);
        [y, dx, dw, db]
    }

    /// (y, dx, dw, db) from the naive oracle.
    fn naive(g: &Conv2dGeometry, x: &[f64], w: &[f64], b: &[f64], dy: &[f64]) -> [Vec<f64>; 4] {
        let mut y = vec![0.0; g.output_len()];
        conv2d_naive_forward(g, x, w, Some(b), &mut y);
        let mut dx = vec![0.0; g.input_len()];
        conv2d_naive_backward_input(g, w, dy, &mut dx);
        let mut dw = vec![0.0; g.weight_len()];
        conv2d_naive_backward_weight(g, x, dy, &mut dw);
        let mut db = vec![0.0; g.out_channels];
        conv2d_naive_backward_bias(g, dy, &mut db);
        [y, dx, dw, db]
    }

    /// Random inputs for `g` from `seed`: on every tier this CPU runs, the fast passes on 1
    /// thread match the naive oracle (all four), and 2 and 3 threads give the same bits.
    fn check_against_naive_on_any_pool(g: &Conv2dGeometry, seed: u64) {
        for tier in supported_tiers() {
            check_tier_against_naive_on_any_pool(tier, g, seed);
        }
    }

    /// [`check_against_naive_on_any_pool`] on one tier.
    fn check_tier_against_naive_on_any_pool(tier: Tier, g: &Conv2dGeometry, seed: u64) {
        let x = random_vec(g.input_len(), seed);
        let w = random_vec(g.weight_len(), seed + 1);
        let b = random_vec(g.out_channels, seed + 2);
        let dy = random_vec(g.output_len(), seed + 3);
        let run = |threads| in_pool(threads, || fast(tier, g, (&x, &w, &b, &dy)));
        let one = run(1);
        let [want_y, want_dx, want_dw, want_db] = naive(g, &x, &w, &b, &dy);
        let [y, dx, dw, db] = &one;
        assert_close(&format!("y {g:?} {tier}"), y, &want_y, 1e-12, 1e-12);
        assert_close(&format!("dx {g:?} {tier}"), dx, &want_dx, 1e-12, 1e-12);
        assert_close(&format!("dw {g:?} {tier}"), dw, &want_dw, 1e-12, 1e-12);
        assert_close(&format!("db {g:?} {tier}"), db, &want_db, 1e-12, 1e-12);
        for threads in [2, 3] {
            assert!(
                run(threads) == one,
                "{g:?} {tier}: 1 and {threads} threads differ"
            );
        }
    }

    /// The bias gradient's sums are the same additions in the same order on every tier (the
    /// AVX-512 one in f32 intrinsics), so the bits agree with the portable tier's.
    #[test]
    #[cfg_attr(
        not(target_arch = "x86_64"),
        ignore = "needs avx512: not an x86-64 target"
    )]
    fn bias_sums_on_the_avx512_tier_have_the_portable_bits_needs_avx512() {
        const NAME: &str = "bias_sums_on_the_avx512_tier_have_the_portable_bits_needs_avx512";
        if !require_tier(Tier::Avx512, NAME) {
            return;
        }
        for (side, seed) in [(28, 1), (14, 2), (7, 3), (4, 4), (3, 5), (1, 6)] {
            let g = Conv2dGeometry::new(5, 2, side, side, 6, 3, 1, 1).unwrap();
            // magnitudes from 1e-3 to 1e3, so a different order would round differently
            let dy: Vec<f32> = random_vec(g.output_len(), seed)
                .iter()
                .enumerate()
                .map(|(i, v)| (v * 10f64.powi(i as i32 % 7 - 3)) as f32)
                .collect();
            let (mut fast, mut portable) = (vec![f32::NAN; 6], vec![f32::NAN; 6]);
            backward_bias_on(Tier::Avx512, &g, &dy, &mut fast);
            backward_bias_on(Tier::Portable, &g, &dy, &mut portable);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&portable), "side {side}");
        }
    }

    #[test]
    fn single_tap_layers_match_naive_on_any_pool() {
        // 1x1 maps: deep's conv5 shape (3/1/1), a 5x5 kernel with padding 2, padding 0 with a
        // 1x1 kernel, and 200 images (several parallel row blocks). Padding >= kernel has no
        // tap on the input and takes the im2col path; it must agree all the same.
        let shapes = [
            (16, 32, 1, 32, 3, 1, 1),
            (3, 4, 1, 5, 5, 1, 2),
            (2, 3, 1, 2, 1, 1, 0),
            (200, 6, 1, 7, 3, 1, 1),
            (2, 2, 1, 3, 2, 1, 2),
        ];
        for (i, &(n, c, side, cout, k, s, p)) in shapes.iter().enumerate() {
            let g = Conv2dGeometry::new(n, c, side, side, cout, k, s, p).unwrap();
            check_against_naive_on_any_pool(&g, 10 * i as u64);
        }
    }

    #[test]
    fn split_gemms_match_naive_on_any_pool() {
        // A 4x4 map without padding (one column block of 64; more input pixels than taps so
        // not the unrolled path, no padding so neither the tap path nor a same convolution),
        // big enough that every pass splits its one GEMM: the forward and input gradient over
        // rows, the weight gradient over columns.
        let g = Conv2dGeometry::new(16, 64, 4, 4, 320, 3, 1, 0).unwrap();
        let (rows, cout, ncols) = (g.col_rows(), g.out_channels, g.col_cols());
        use tensor::GemmSplit;
        assert!(!tapwise::applies(&g) && !unrolled::applies(&g));
        assert!(!direct3x3::applies(&g, Tier::Avx512));
        assert!(matches!(
            GemmSplit::for_shape(cout, rows, ncols),
            GemmSplit::Rows(_)
        ));
        assert!(matches!(
            GemmSplit::for_shape(rows, cout, ncols),
            GemmSplit::Rows(_)
        ));
        assert!(matches!(
            GemmSplit::for_shape(cout, ncols, rows),
            GemmSplit::Cols(_)
        ));
        check_against_naive_on_any_pool(&g, 5);
    }

    #[test]
    fn unrolled_path_matches_naive_on_any_pool() {
        // (n, c, side, cout, k, s, p): AlexNet's conv3 and conv2 (5x5 kernel, taps reading only
        // padding) on 2x2 maps at batches above the direct kernels', deep's conv4 on its 3x3 map
        // (corner pairs with no tap), stride 2 from 3x3 to 2x2, no padding (3x3 to 1x1), and one
        // image with a 2x2 kernel (2x2 to 3x3).
        let shapes = [
            (66, 6, 2, 7, 3, 1, 1),
            (70, 4, 2, 5, 5, 1, 2),
            (9, 5, 3, 8, 3, 1, 1),
            (3, 3, 3, 4, 3, 2, 1),
            (2, 4, 3, 6, 3, 1, 0),
            (1, 70, 2, 3, 2, 1, 1),
        ];
        for (i, &(n, c, side, cout, k, s, p)) in shapes.iter().enumerate() {
            let g = Conv2dGeometry::new(n, c, side, side, cout, k, s, p).unwrap();
            assert!(
                unrolled::applies(&g) && !direct2x2::applies(&g, Tier::Avx512),
                "{g:?}"
            );
            check_against_naive_on_any_pool(&g, 70 + 10 * i as u64);
        }
        // 4x4 maps with a 3x3 kernel: U would multiply more than im2col (16 > 9 input pixels)
        let g = Conv2dGeometry::new(4, 3, 4, 4, 4, 3, 1, 1).unwrap();
        assert!(!unrolled::applies(&g));
    }

    /// (n, c, cout, k, p) on 2x2 maps: AlexNet's conv3 and conv2 shapes shrunk, one image
    /// (15 padded lanes), 17 channels (a partial channel vector in the weight gradient) over
    /// 40 images (3 image vectors, the last partial), and the largest batch the path takes.
    const DIRECT_2X2: [(usize, usize, usize, usize, usize); 5] = [
        (16, 6, 7, 3, 1),
        (16, 4, 5, 5, 2),
        (1, 20, 3, 3, 1),
        (40, 17, 9, 3, 1),
        (64, 3, 2, 3, 1),
    ];

    /// On every tier this CPU has: the AVX-512 one takes the direct kernels (see the
    /// `..._needs_avx512` test below), the others the unrolled GEMMs.
    #[test]
    fn direct_2x2_kernels_match_naive_on_any_pool() {
        for (i, &(n, c, cout, k, p)) in DIRECT_2X2.iter().enumerate() {
            let g = Conv2dGeometry::new(n, c, 2, 2, cout, k, 1, p).unwrap();
            check_against_naive_on_any_pool(&g, 130 + 10 * i as u64);
        }
        let over = Conv2dGeometry::new(65, 3, 2, 2, 2, 3, 1, 1).unwrap();
        assert!(
            !direct2x2::applies(&over, Tier::Avx512),
            "65 images take the unrolled GEMMs"
        );
    }

    /// The tier switch picks the path: the AVX-512 tier takes the direct kernels for the
    /// shapes of the direct tests, the portable tier never (so the shapes' runs on every tier
    /// above really compare two algorithms with the oracle).
    #[test]
    #[cfg_attr(
        not(target_arch = "x86_64"),
        ignore = "needs avx512: not an x86-64 target"
    )]
    fn the_avx512_tier_takes_the_direct_kernels_needs_avx512() {
        const NAME: &str = "the_avx512_tier_takes_the_direct_kernels_needs_avx512";
        if !require_tier(Tier::Avx512, NAME) {
            return;
        }
        let mut geometries: Vec<Conv2dGeometry> = DIRECT_2X2
            .iter()
            .map(|&(n, c, cout, k, p)| Conv2dGeometry::new(n, c, 2, 2, cout, k, 1, p).unwrap())
            .collect();
        geometries.extend(
            DIRECT_3X3
                .iter()
                .map(|&(n, c, h, w, cout)| Conv2dGeometry::new(n, c, h, w, cout, 3, 1, 1).unwrap()),
        );
        for g in geometries {
            let fast = choose::<f32>(&g, Tier::Avx512).name();
            let portable = choose::<f32>(&g, Tier::Portable).name();
            assert!(
                ["direct2x2", "direct3x3"].contains(&fast)
                    && ["unrolled", "tapwise", "im2col"].contains(&portable),
                "{g:?}: {fast} on AVX-512, {portable} on portable"
            );
        }
    }

    /// (n, c, h, w, cout): deep's conv1 (one input channel: the input gradient is a forward
    /// with one output channel), conv2 and conv3, 17 columns (two vectors per row, the second
    /// with one column) and 5 channels, and a non-square map.
    const DIRECT_3X3: [(usize, usize, usize, usize, usize); 5] = [
        (2, 1, 28, 28, 16),
        (3, 16, 14, 14, 16),
        (2, 16, 7, 7, 32),
        (1, 5, 17, 17, 16),
        (2, 32, 4, 5, 16),
    ];

    /// On every tier this CPU has (the AVX-512 one takes the direct kernels).
    #[test]
    fn direct_3x3_kernels_match_naive_on_any_pool() {
        for (i, &(n, c, h, w, cout)) in DIRECT_3X3.iter().enumerate() {
            let g = Conv2dGeometry::new(n, c, h, w, cout, 3, 1, 1).unwrap();
            check_against_naive_on_any_pool(&g, 200 + 10 * i as u64);
        }
        // channel counts that are not whole blocks of 16: the last block's channels one by one
        // (and one input channel with 5 outputs: the input gradient's own one-channel path)
        for (i, &(c, cout)) in [(16, 20), (3, 1), (33, 7), (1, 5)].iter().enumerate() {
            let g = Conv2dGeometry::new(2, c, 6, 5, cout, 3, 1, 1).unwrap();
            check_against_naive_on_any_pool(&g, 260 + 10 * i as u64);
        }
    }

    /// The f32 passes on `g` against the naive f64 ones on the same (f32-rounded) inputs, on
    /// every tier this CPU has: the f64 tests run the same generic kernels, this checks their
    /// f32 instantiation (and the f32 intrinsics kernels).
    fn check_f32_against_f64_oracle(g: &Conv2dGeometry) {
        for tier in supported_tiers() {
            check_f32_tier_against_f64_oracle(tier, g);
        }
    }

    fn check_f32_tier_against_f64_oracle(tier: Tier, g: &Conv2dGeometry) {
        let f32s = |v: Vec<f64>| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let f64s = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
        let (xf, wf) = (
            f32s(random_vec(g.input_len(), 1)),
            f32s(random_vec(g.weight_len(), 2)),
        );
        let (bf, dyf) = (
            f32s(random_vec(g.out_channels, 3)),
            f32s(random_vec(g.output_len(), 4)),
        );
        let mut ws = Vec::new();
        let (mut y, mut dx, mut dw) = (
            vec![0f32; g.output_len()],
            vec![0f32; g.input_len()],
            vec![0f32; g.weight_len()],
        );
        forward_on(tier, g, &xf, &wf, Some(&bf), &mut y, &mut ws);
        backward_input_on(tier, g, &wf, &dyf, &mut dx, &mut ws);
        backward_weight_on(tier, g, &xf, &dyf, &mut dw, &mut ws);
        let (x, w, b, dy) = (f64s(&xf), f64s(&wf), f64s(&bf), f64s(&dyf));
        let [want_y, want_dx, want_dw, _] = naive(g, &x, &w, &b, &dy);
        // sums of at most a few thousand terms of size up to 1, rounded in f32
        assert_close(&format!("y {g:?} {tier}"), &f64s(&y), &want_y, 1e-4, 1e-4);
        assert_close(
            &format!("dx {g:?} {tier}"),
            &f64s(&dx),
            &want_dx,
            1e-4,
            1e-4,
        );
        assert_close(
            &format!("dw {g:?} {tier}"),
            &f64s(&dw),
            &want_dw,
            5e-4,
            1e-4,
        );
    }

    #[test]
    fn direct_kernels_in_f32_match_the_f64_oracle() {
        // AlexNet's conv4 shape shrunk (2x2, 16 images), deep's conv2 (14x14, 16 channels in
        // and out), a 17-column map (two vectors per row), and deep's conv1 and a 17-column
        // map with one input channel (the one-channel input gradient)
        for g in [
            Conv2dGeometry::new(16, 48, 2, 2, 40, 3, 1, 1).unwrap(),
            Conv2dGeometry::new(4, 16, 14, 14, 16, 3, 1, 1).unwrap(),
            Conv2dGeometry::new(2, 16, 9, 17, 32, 3, 1, 1).unwrap(),
            Conv2dGeometry::new(3, 1, 28, 28, 16, 3, 1, 1).unwrap(),
            Conv2dGeometry::new(2, 1, 5, 17, 3, 3, 1, 1).unwrap(),
        ] {
            check_f32_against_f64_oracle(&g);
        }
    }

    #[test]
    fn tap_path_matches_naive_on_any_pool() {
        // (n, c, side, cout, k, p): maps with more input pixels than kernel taps, which the
        // unrolled path leaves to this one, and not same 3x3 convolutions (the direct kernels'
        // on the AVX-512 tier; this path serves 4x4 maps elsewhere): a 2x2 kernel on 3x3 maps
        // (a non-square count of channels, 33 images), and a 1x1 kernel with padding 1 on a
        // 2x2 map (border outputs read only padding).
        let shapes = [
            (40, 3, 3, 4, 2, 1),
            (33, 4, 3, 6, 2, 1),
            (32, 5, 2, 3, 1, 1),
        ];
        for (i, &(n, c, side, cout, k, p)) in shapes.iter().enumerate() {
            let g = Conv2dGeometry::new(n, c, side, side, cout, k, 1, p).unwrap();
            let direct = direct3x3::applies(&g, Tier::Avx512);
            let taken = tapwise::applies(&g) && !unrolled::applies(&g) && !direct;
            assert!(taken, "{g:?}");
            check_against_naive_on_any_pool(&g, 40 + 10 * i as u64);
        }
    }
}
