//! Training: optimizers, the minibatch loop, evaluation, resumable state.

pub mod hook;

pub use hook::{TrainHook, TrainState};
