//! Dense tensors for the saliency engine.
//!
//! One job: hold numbers and run the few kernels everything else is built from.
//! Data layout: a [`Tensor`] is a contiguous, row-major buffer with a runtime shape; images are
//! NCHW (batch, channel, height, width). Element types are `f32` (training) and `f64`
//! (gradient checks), unified by the small [`Float`] trait.
//!
//! - [`gemm`](mod@gemm): a checked wrapper over `matrixmultiply` (raw pointers, `unsafe`), with its own
//!   AVX2 kernels for products with a narrow side (`gemm_narrow`) and a packed-panel GEMM for
//!   large products with a transposed B (`gemm_packed`).
//! - [`f32_view`]: generic slices seen as f32, for the kernels written in f32 intrinsics.
//! - [`adam`]: the Adam update of a chunk of f32 parameters, its AVX-512 form behind a safe call.
//! - [`cpu`]: the SIMD tier, and the run-time checks for the instruction sets of the
//!   `#[target_feature]` kernels.
//! - [`stabilized_ratio`](mod@stabilized_ratio): LRP-epsilon's elementwise quotient, per SIMD tier.
//! - [`rescale`]: DeepLIFT's rescale rule's elementwise passes, per SIMD tier.
//! - [`tiered!`]: one kernel body compiled once per SIMD tier, behind one safe function.
//! - [`simd`]: elementwise kernels written with `wide`, each with a scalar twin.
//! - [`parallel`]: rayon helpers whose reductions combine fixed-size chunks in index order, so
//!   results are bitwise identical whatever the thread count.

#![warn(missing_docs)]
// `unsafe` lives in `arch` only (GEMM's raw pointers, intrinsics, the f32 view, the tier
// instantiations); every other module is safe Rust.
#![deny(unsafe_code)]

pub mod adam;
mod arch;
mod buffer;
pub mod cpu;
pub mod error;
pub mod float;
pub mod parallel;
pub mod rescale;
pub mod simd;
pub mod stabilized_ratio;
mod tensor;
pub mod testing;
mod tiered;

pub use arch::{f32_view, gemm};
pub use error::TensorError;
pub use float::Float;
pub use gemm::{
    gemm, gemm_par, gemm_par_split, gemm_with, packed_available, GemmKernel, GemmSplit, MatMut,
    MatRef,
};
pub use tensor::Tensor;
