//! The checkpoint types, format constants, payload checksum, and saving and loading files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::decode::from_bytes;
use super::encode::encode;
use super::error::CheckpointError;
use crate::atomic_file::FileGroup;

/// The version written to, and required in, the `format_version` metadata key.
pub const FORMAT_VERSION: &str = "1";
/// Metadata key holding [`FORMAT_VERSION`].
pub const FORMAT_VERSION_KEY: &str = "format_version";
/// Metadata key holding the payload checksum: the hex sha256 over the tensors in name-sorted
/// order, each contributing its name length (u64 LE), name bytes, rank (u64 LE), each dimension
/// (u64 LE) and its data as little-endian f32 bytes. The prefixes frame each tensor
/// unambiguously, so a renamed or reshaped tensor changes the digest just as a changed value does.
pub const CHECKSUM_KEY: &str = "payload_sha256";
/// Largest JSON header accepted, in bytes: the same cap the safetensors crate applies. A real
/// header is a few kilobytes; the cap stops a corrupt length prefix from driving a huge parse.
pub const MAX_HEADER_BYTES: usize = 100_000_000;

/// The safetensors key that holds string metadata rather than a tensor.
pub(super) const METADATA_ENTRY: &str = "__metadata__";

/// One named parameter or buffer, row-major, in PyTorch's layout (e.g. `conv1.weight` is
/// `[out, in, kh, kw]`).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// PyTorch-style name, e.g. `conv1.weight` or `bn1.running_var`.
    pub name: String,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
}

/// A model's tensors plus free-form string metadata (model name, data set, epoch, ...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Tensors in file order.
    pub tensors: Vec<NamedTensor>,
    /// Caller metadata. The reserved keys [`FORMAT_VERSION_KEY`] and [`CHECKSUM_KEY`] are added
    /// by [`to_bytes`](super::to_bytes) and removed again by [`from_bytes`], so they never
    /// appear here.
    pub metadata: BTreeMap<String, String>,
}

/// Writes the checkpoint to `path` atomically: a reader or a crash sees the old file or the
/// whole new one. Errors name `path`.
pub fn save(path: &Path, ckpt: &Checkpoint) -> Result<(), CheckpointError> {
    let mut group = FileGroup::new();
    stage(&mut group, path, ckpt)?;
    group
        .commit()
        .map_err(|source| write_error(&path.display().to_string(), source))
}

/// Encodes the checkpoint and writes it beside `path` in `group`; `path` itself is replaced when
/// the group is committed, together with the group's other files. Errors name `path`.
pub fn stage(group: &mut FileGroup, path: &Path, ckpt: &Checkpoint) -> Result<(), CheckpointError> {
    let shown = path.display().to_string();
    let bytes = encode(&shown, ckpt)?;
    group
        .stage(path, &bytes)
        .map_err(|source| write_error(&shown, source))
}

/// A write error naming `shown` once.
fn write_error(shown: &str, source: std::io::Error) -> CheckpointError {
    // The file group's message already starts with "writing PATH: "; said once here, and not
    // called a "checkpoint" (attribution and gradient files are written here too).
    let text = source.to_string();
    let text = text
        .strip_prefix(&format!("writing {shown}: "))
        .unwrap_or(&text)
        .to_string();
    CheckpointError::Io {
        path: shown.to_string(),
        action: "write",
        source: std::io::Error::new(source.kind(), text),
    }
}

/// Reads and validates the checkpoint at `path` (see [`from_bytes`]).
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: shown.clone(),
        action: "read checkpoint",
        source,
    })?;
    from_bytes(&shown, &bytes)
}

/// Hex sha256 of the tensors in name order, framed as documented on [`CHECKSUM_KEY`].
pub(super) fn payload_sha256<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a [usize], &'a [u8])>,
) -> String {
    let mut sorted: Vec<_> = tensors.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (name, shape, bytes) in sorted {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((shape.len() as u64).to_le_bytes());
        for &d in shape {
            hasher.update((d as u64).to_le_bytes());
        }
        hasher.update(bytes);
    }
    let mut hex = String::with_capacity(64);
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The first NaN or infinity in `data`, reported with the tensor, its flat index and value.
pub(super) fn check_finite(path: &str, tensor: &str, data: &[f32]) -> Result<(), CheckpointError> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(CheckpointError::NonFinite {
            path: path.to_string(),
            tensor: tensor.to_string(),
            index,
            value: data[index],
        }),
    }
}
