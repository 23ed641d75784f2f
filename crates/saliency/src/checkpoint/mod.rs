//! Model checkpoints: named F32 tensors in PyTorch layout, stored as checksummed safetensors files.

mod decode;
mod encode;
mod error;
mod format;
mod layout;
mod plain;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use decode::from_bytes;
pub use encode::to_bytes;
pub use error::CheckpointError;
pub use format::{
    load, save, stage, Checkpoint, NamedTensor, CHECKSUM_KEY, FORMAT_VERSION, FORMAT_VERSION_KEY,
    MAX_HEADER_BYTES,
};
pub use plain::from_any_bytes;
