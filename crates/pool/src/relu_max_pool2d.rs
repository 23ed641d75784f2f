//! ReLU followed by max pooling, as one pass: `max_pool2d(relu(x))` without the ReLU's output.
//!
//! Every convolution of the study's networks that is pooled is followed by ReLU and then the
//! pool. Run apart, the ReLU reads and writes the whole activation once more and its backward
//! once again; fused, the pooling reads `x` and applies the ReLU inside each window.
//!
//! Why the fused values and gradients are bit for bit those of the two ops in sequence:
//! - Values. `relu(v)` is `v` when `v > 0` and `+0` otherwise (a NaN included). The window
//!   maximum of the ReLU'd values, scanned with a strict `>` from the first element, is therefore
//!   the first strictly positive maximum of `x`, or `+0` when no element is positive. The fused
//!   scan starts at `+0` and takes each `v > best`, which yields exactly that.
//! - Gradients. Apart, the pool routes `dy` to the window's first maximum of the ReLU'd values,
//!   and the ReLU backward then keeps it only where `x > 0`. When the window has a positive
//!   element the winner is the same element in both, and it passes the ReLU; when it has none,
//!   the winner holds `x <= 0` and the ReLU drops its gradient. So the fused forward records the
//!   winner only for windows with a positive maximum ([`NO_WINNER`] otherwise), and the backward
//!   scatter-adds the same terms, in the same order, as the two ops did.

use rayon::prelude::*;
use tensor::cpu::Tier;
use tensor::Float;

use crate::max_pool2d::{assert_len, planes_per_task};
use crate::{window2x2, Pool2dGeometry};

/// The argmax of a window with no positive element: its output is `+0` and it passes no
/// gradient. Never a real index: the geometry caps a plane below `u32::MAX` elements.
pub const NO_WINNER: u32 = u32::MAX;

/// `max_pool2d(relu(input))`: writes each window's maximum after ReLU to `output`, and to
/// `argmax` the in-plane index of its winner, or [`NO_WINNER`] when no element is positive.
///
/// Shapes and the argmax convention are those of [`crate::max_pool2d_forward`]; pass the argmax
/// to [`crate::max_pool2d_backward`], which skips [`NO_WINNER`]. Ties go to the first maximum
/// in row-major window order. Planes are independent tasks, so the result is bitwise the same
/// for any number of threads. Panics if a buffer length does not match `g`.
pub fn relu_max_pool2d_forward<T: Float>(
    g: &Pool2dGeometry,
    input: &[T],
    output: &mut [T],
    argmax: &mut [u32],
) {
    let op = "relu_max_pool2d_forward";
    g.assert_consistent(op);
    assert_len(op, "input", input.len(), g.input_len());
    assert_len(op, "output", output.len(), g.output_len());
    assert_len(op, "argmax", argmax.len(), g.output_len());
    let (planes, tier) = (planes_per_task(g), tensor::cpu::tier());
    output
        .par_chunks_mut(planes * g.out_plane())
        .zip(argmax.par_chunks_mut(planes * g.out_plane()))
        .zip(input.par_chunks(planes * g.in_plane()))
        .for_each(|((out, arg), run)| pool_planes(tier, g, run, out, arg));
}

/// [`relu_max_pool2d_forward`] without the argmax, for inference: the same output bit for bit.
pub fn relu_max_pool2d_forward_inference<T: Float>(
    g: &Pool2dGeometry,
    input: &[T],
    output: &mut [T],
) {
    let op = "relu_max_pool2d_forward_inference";
    g.assert_consistent(op);
    assert_len(op, "input", input.len(), g.input_len());
    assert_len(op, "output", output.len(), g.output_len());
    let (planes, tier) = (planes_per_task(g), tensor::cpu::tier());
    output
        .par_chunks_mut(planes * g.out_plane())
        .zip(input.par_chunks(planes * g.in_plane()))
        // One scan to trust: the argmax goes to a per-task scratch run, reused across tasks.
        .for_each_init(Vec::new, |arg, (out, run)| {
            arg.resize(out.len(), 0u32);
            pool_planes(tier, g, run, out, arg);
        });
}

/// Pools a run of whole consecutive `(H, W)` planes into their outputs and argmax.
#[inline(always)]
fn pool_planes<T: Float>(
    tier: Tier,
    g: &Pool2dGeometry,
    run: &[T],
    out: &mut [T],
    arg: &mut [u32],
) {
    if window2x2::applies(g) {
        window2x2::relu_pool_planes(tier, g, run, out, arg);
        return;
    }
    for ((plane, out), arg) in run
        .chunks_exact(g.in_plane())
        .zip(out.chunks_exact_mut(g.out_plane()))
        .zip(arg.chunks_exact_mut(g.out_plane()))
    {
        for oh in 0..g.out_h {
            for ow in 0..g.out_w {
                let (value, index) = window(g, plane, oh, ow);
                out[oh * g.out_w + ow] = value;
                arg[oh * g.out_w + ow] = index;
            }
        }
    }
}

/// The ReLU'd maximum and winner of window `(oh, ow)`, any kernel and stride.
#[inline(always)]
fn window<T: Float>(g: &Pool2dGeometry, plane: &[T], oh: usize, ow: usize) -> (T, u32) {
    let (top, left) = (oh * g.stride, ow * g.stride);
    let (mut best, mut index) = (T::ZERO, NO_WINNER);
    for kh in 0..g.kernel {
        let row_start = (top + kh) * g.in_w + left;
        for (kw, &v) in plane[row_start..row_start + g.kernel].iter().enumerate() {
            // A NaN compares false, as it does in ReLU, which maps it to +0. Selects, not a
            // branch: which element wins is data, and a mispredicted branch per element cost
            // more than the comparison.
            let better = v > best;
            best = if better { v } else { best };
            // Fits: the geometry caps a plane at u32::MAX elements.
            index = if better {
                (row_start + kw) as u32
            } else {
                index
            };
        }
    }
    (best, index)
}
