//! 2-D convolution kernels for the saliency engine: forward, the three backward passes, and a
//! direct-loop reference.
//!
//! One job: convolve. Everything here is a plain function on slices, with no knowledge of any
//! autodiff tape. Data layout: inputs and outputs are contiguous NCHW (`(N, C, H, W)` in,
//! `(N, Cout, OH, OW)` out), weights are PyTorch's `[Cout, C, K, K]`, biases have `Cout`
//! entries. A [`Conv2dGeometry`] (square kernel, one stride and zero padding for both axes) is
//! the one place a convolution can fail; after that, a buffer of the wrong length is a
//! programming error and panics with the buffer named.
//!
//! - [`conv2d_forward`] and [`conv2d_backward_input`], [`conv2d_backward_weight`],
//!   [`conv2d_backward_bias`]: im2col + GEMM, parallel with rayon, bitwise reproducible for
//!   any thread count. They take a caller-owned `workspace` so training need not allocate.
//! - On tiny maps (AlexNet's 2x2 layers) the passes skip im2col and the padding: a sum of
//!   per-tap GEMMs (`tapwise`), or one GEMM on an unrolled dense weight (`unrolled`); 2x2 maps
//!   at small batches take direct SIMD kernels that read the weight in place (`direct2x2`).
//! - Same 3x3 convolutions on larger maps (the `deep` network's) skip im2col: direct SIMD
//!   kernels read the 9 taps from a zero-bordered copy of the input (`direct3x3`). For f32 the
//!   forward tile, the layout copies, the unrolled weight's expansion and fold, and the bias
//!   gradient's sums are AVX-512 intrinsics (`*_f32.rs`), each the same operations in the same
//!   order as the generic code, tested bit for bit against it.
//! - [`conv2d_forward_keeping`] also hands the caller what the backward passes of the same step
//!   would rebuild (the unrolled weight, the bordered input), for [`conv2d_backward_input_kept`]
//!   and [`conv2d_backward_weight_kept`]: same bits, less work.
//! - Every path above sits behind one seam (`path.rs`): a path says whether it applies to a
//!   geometry on a tier, what its forward keeps and for which pass, and runs the passes; the
//!   path of a (geometry, tier) is chosen in one place and [`conv2d_path`] names it.
//! - [`im2col`] / [`col2im`]: the unfold and its adjoint, column `j = n*OH*OW + oy*OW + ox`.
//! - [`naive`]: direct loops, the oracle the tests compare against (public for other crates' tests).

#![warn(missing_docs)]
// `unsafe` lives in `arch` only (intrinsics kernels and the tier instantiations).
#![deny(unsafe_code)]

mod arch;
mod blocks;
mod conv2d;
mod direct2x2;
mod direct3x3;
pub mod error;
mod geometry;
mod im2col;
mod kept;
mod lanes;
pub mod naive;
mod path;
mod tapwise;
#[cfg(test)]
mod test_util;
mod unrolled;

pub use conv2d::{
    conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight, conv2d_forward,
};
pub use error::ConvError;
pub use geometry::Conv2dGeometry;
pub use im2col::{col2im, im2col};
pub use kept::{
    conv2d_backward_input_kept, conv2d_backward_weight_kept, conv2d_forward_keeping,
    conv2d_kept_for, conv2d_kept_len, KeptFor,
};
pub use naive::{
    conv2d_naive_backward_bias, conv2d_naive_backward_input, conv2d_naive_backward_weight,
    conv2d_naive_forward,
};
pub use path::conv2d_path;
