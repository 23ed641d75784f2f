//! Max pooling for the saliency engine.
//!
//! One job: 2-D max pooling over NCHW tensors, forward and backward, as plain functions on
//! slices (no knowledge of any autodiff tape). Data layout: contiguous row-major NCHW, input
//! `(N, C, H, W)` and output `(N, C, H_out, W_out)`; square windows, no padding, floor mode
//! (`out = (in - kernel) / stride + 1`), with overlapping windows allowed (stride < kernel).
//!
//! The forward stores, for every output, the index of the winning element inside its own
//! (n, c) plane as a `u32`; the backward scatter-adds the output gradient to those indices.
//! Tie rule: the first maximum in row-major window order wins (strictly-greater comparison),
//! and the gradient goes to that element only. A NaN anywhere in a window makes the output
//! NaN, with the argmax at the first NaN. Work is split over (n, c) planes with rayon; each
//! plane is computed by one task in a fixed order, so results are bitwise identical for any
//! thread count.
//!
//! - [`Pool2dGeometry`]: validated sizes; the only place pooling returns an error.
//! - [`max_pool2d_forward`] / [`max_pool2d_backward`]: the training pair. For f32, non-overlapping
//!   2x2 windows (rows of at least 4) go backward through AVX-512 intrinsics that write each
//!   input-gradient value once, bit for bit the scatter's result.
//! - [`max_pool2d_forward_inference`]: the same values without argmax, for no-record mode.
//! - [`relu_max_pool2d_forward`] / [`relu_max_pool2d_forward_inference`]: `max_pool2d(relu(x))`
//!   in one pass, bit for bit the two ops in sequence; its argmax feeds the same backward.

#![warn(missing_docs)]
// `unsafe` lives in `arch` only (intrinsics kernels and the tier instantiations).
#![deny(unsafe_code)]

mod arch;
pub mod error;
pub mod geometry;
pub mod max_pool2d;
pub mod relu_max_pool2d;
mod window2x2;

pub use error::PoolError;
pub use geometry::Pool2dGeometry;
pub use max_pool2d::{
    max_pool2d_backward, max_pool2d_backward_with, max_pool2d_forward,
    max_pool2d_forward_inference, Upstream,
};
pub use relu_max_pool2d::{relu_max_pool2d_forward, relu_max_pool2d_forward_inference, NO_WINNER};
