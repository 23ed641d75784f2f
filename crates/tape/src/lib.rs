//! A reverse-mode autodiff tape (a Wengert list) over the tensor, conv and pool kernels.
//!
//! One job: record a forward computation and walk it backwards. Nodes live in a `Vec` in the
//! order they were pushed, which is already a topological order, so backward is a reverse `for`
//! over indices: no sort, no recursion, no reference-counted graph. A [`NodeId`] is an index.
//!
//! Leaves are either *variables* (parameters, or inputs whose gradient is wanted, as in
//! attribution) or *constants*. Backward starts from any one-element node, not only a loss, and
//! returns gradients for every variable. A no-record tape ([`Tape::no_record`]) computes values
//! only: no backward caches, and values can be released as soon as they are consumed.
//!
//! ```
//! use tape::Tape;
//! use tensor::Tensor;
//!
//! // y = sum(relu(x) * x): dy/dx = 2x where x > 0, else 0.
//! let mut tape = Tape::<f64>::new();
//! let x = tape.variable(Tensor::from_vec(&[3], vec![-1.0, 2.0, 3.0])?);
//! let r = tape.relu(x)?;
//! let p = tape.mul(r, x)?;
//! let y = tape.sum(p)?;
//! let grads = tape.backward(y)?;
//! assert_eq!(grads.get(x).unwrap().data(), &[0.0, 4.0, 6.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each op is one file under `ops/`: its record function (a `Tape` method) and its backward a few
//! lines apart. `op.rs` holds the enum that dispatches backward.

#![warn(missing_docs)]
// The tape is safe code: every `unsafe` of the engine sits in the kernel crates, behind checks.
#![forbid(unsafe_code)]

mod error;
pub mod gradcheck;
mod gradients;
mod op;
pub mod ops;
pub mod rules;
mod scratch;
mod tape;

pub use error::TapeError;
pub use gradients::Gradients;
pub use ops::batch_norm::{BatchNormMode, BatchNormOutput};
pub use rules::{AffineRule, PoolRule, References, ReluRule, RuleSet};
pub use tape::{NodeId, Tape};
