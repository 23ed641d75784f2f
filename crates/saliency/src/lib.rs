//! saliency: the study's networks, data, training, attribution and adversarial examples, built
//! on the `tensor`, `conv`, `pool` and `tape` crates.
//!
//! Data layout: images are f32 in [0, 1], NCHW; models hold PyTorch-layout parameters named as
//! in the study (`conv1.weight`, ...). The `saliency` binary is a thin CLI over this library.
//!
//! ```
//! use saliency::{gradient_x_input, integrated_gradients, Baseline, IgOptions, ModelKind, Tensor};
//!
//! // The study's `deep` network (untrained here), one gray 28x28 image, class 3.
//! let model = ModelKind::Deep.build::<f32>([1, 28, 28], 10, 0)?;
//! let image = Tensor::<f32>::from_fn(&[1, 1, 28, 28], |i| (i % 28) as f32 / 27.0);
//! let map = gradient_x_input(&model, &image, &[3])?;
//! assert_eq!(map.shape(), &[1, 1, 28, 28]);
//! let ig = integrated_gradients(&model, &image, &[3], &Baseline::Black, &IgOptions::default())?;
//! // Integrated gradients add up to F(image) - F(black), up to the path integral's error.
//! let sum: f32 = ig.attributions.data().iter().sum();
//! assert!((sum - ig.delta[0]).abs() <= 0.05 * ig.delta[0].abs() + 1e-6);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// No `unsafe` here: the kernels' sits in the kernel crates behind safe functions. The one
// exception is the allocator setting (a call into mimalloc), allowed in its module alone.
#![deny(unsafe_code)]

pub mod adversarial;
#[allow(unsafe_code)]
pub mod allocator;
pub mod atomic_file;
pub mod attribution;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod bench;
pub mod checkpoint;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
pub mod data;
pub mod infer;
pub mod loss;
pub mod memory;
pub mod model_io;
pub mod models;
pub mod render;
mod shards;
pub mod staged_dir;
pub mod study;
pub mod task;
pub mod train;

// The types most programs start from, so a user needs no direct dependency on the engine crates.
pub use attribution::{gradient_x_input, integrated_gradients, Baseline, IgOptions, Score, Target};
pub use data::Dataset;
pub use model_io::{load_model, load_state_dict, save_model, ModelMeta};
pub use models::{Model, ModelKind};
pub use tape::{NodeId, Tape};
pub use tensor::{Float, Tensor};
pub use train::{TrainConfig, Trainer};
