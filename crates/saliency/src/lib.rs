//! saliency: the study's networks, data, training, attribution and adversarial examples, built
//! on the `tensor`, `conv`, `pool` and `tape` crates.
//!
//! Data layout: images are f32 in [0, 1], NCHW; models hold PyTorch-layout parameters named as
//! in the study (`conv1.weight`, ...). The `saliency` binary is a thin CLI over this library.

// No `unsafe` here: the kernels' sits in the kernel crates behind safe functions. The one
// exception is the allocator setting (a libc call), allowed in its module alone.
#![deny(unsafe_code)]

pub mod adversarial;
#[allow(unsafe_code)]
pub mod allocator;
pub mod atomic_file;
pub mod attribution;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod infer;
pub mod loss;
pub mod model_io;
pub mod models;
pub mod render;
mod shards;
pub mod study;
pub mod task;
pub mod train;
