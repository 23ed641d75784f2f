//! Writing a checkpoint as safetensors bytes, refusing checkpoints the reader would reject.

use std::collections::{BTreeMap, BTreeSet};

use safetensors::tensor::{Dtype, TensorInfo};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::error::CheckpointError;
use super::format::{
    check_finite, payload_sha256, Checkpoint, CHECKSUM_KEY, FORMAT_VERSION, FORMAT_VERSION_KEY,
    MAX_HEADER_BYTES, METADATA_ENTRY,
};

/// Stands in for a path in errors from [`to_bytes`], which has no file.
const IN_MEMORY: &str = "<in-memory checkpoint>";

/// Serializes to safetensors bytes (dtype F32, little-endian), tensors in the given order; adds
/// metadata keys `format_version` and `payload_sha256`.
///
/// The checksum's framing is documented on [`CHECKSUM_KEY`].
///
/// Fails on a checkpoint that [`from_bytes`](super::from_bytes) would reject or that the format
/// cannot represent: a shape that disagrees with the data length, an empty, duplicate or
/// reserved (`__metadata__`) name, a reserved metadata key, or a NaN/infinite value. Failing here
/// means a diverged run cannot overwrite a good checkpoint with one that will not load.
pub fn to_bytes(ckpt: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    encode(IN_MEMORY, ckpt)
}

/// [`to_bytes`] with `path` named in errors; [`super::save`] passes the destination.
pub(super) fn encode(path: &str, ckpt: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    check_writable(path, ckpt)?;
    // Data section: tensors back to back in the caller's order.
    let total: usize = ckpt.tensors.iter().map(|t| t.data.len() * 4).sum();
    let mut payload = Vec::with_capacity(total);
    let mut entries = Vec::with_capacity(ckpt.tensors.len());
    for t in &ckpt.tensors {
        let start = payload.len();
        for v in &t.data {
            payload.extend_from_slice(&v.to_le_bytes());
        }
        let info = TensorInfo {
            dtype: Dtype::F32,
            shape: t.shape.clone(),
            data_offsets: (start, payload.len()),
        };
        entries.push((t.name.as_str(), info));
    }
    let checksum = payload_sha256(entries.iter().map(|(name, info)| {
        (
            *name,
            info.shape.as_slice(),
            &payload[info.data_offsets.0..info.data_offsets.1],
        )
    }));
    let mut metadata = ckpt.metadata.clone();
    metadata.insert(FORMAT_VERSION_KEY.to_string(), FORMAT_VERSION.to_string());
    metadata.insert(CHECKSUM_KEY.to_string(), checksum);

    let mut header = serde_json::to_vec(&Header {
        metadata: &metadata,
        entries: &entries,
    })
    .map_err(|e| {
        invalid(
            path,
            "the header",
            "a header serializable as JSON",
            e.to_string(),
        )
    })?;
    // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
    header.resize(header.len().next_multiple_of(8), b' ');
    if header.len() > MAX_HEADER_BYTES {
        let expected = format!("a header of at most {MAX_HEADER_BYTES} bytes");
        let found = format!("{} bytes for {} tensors", header.len(), entries.len());
        return Err(invalid(path, "the header", &expected, found));
    }
    let mut out = Vec::with_capacity(8 + header.len() + payload.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The safetensors JSON header with tensors in the caller's order (a `serde_json::Map` would sort
/// them; readers go by offsets, but a header that reads in model order is kinder to humans).
struct Header<'a> {
    metadata: &'a BTreeMap<String, String>,
    entries: &'a [(&'a str, TensorInfo)],
}

impl Serialize for Header<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1 + self.entries.len()))?;
        map.serialize_entry(METADATA_ENTRY, self.metadata)?;
        for (name, info) in self.entries {
            map.serialize_entry(name, info)?;
        }
        map.end()
    }
}

/// Rejects what the reader would reject, naming the first offending tensor or key.
fn check_writable(path: &str, ckpt: &Checkpoint) -> Result<(), CheckpointError> {
    for key in [FORMAT_VERSION_KEY, CHECKSUM_KEY] {
        if let Some(value) = ckpt.metadata.get(key) {
            let item = format!("metadata key `{key}`");
            let expected = "no caller value for a key the writer sets itself";
            return Err(invalid(path, &item, expected, format!("\"{value}\"")));
        }
    }
    let mut seen = BTreeSet::new();
    for t in &ckpt.tensors {
        let item = format!("tensor `{}`", t.name);
        if t.name.is_empty() || t.name == METADATA_ENTRY {
            let expected = "a non-empty name other than __metadata__";
            return Err(invalid(path, &item, expected, format!("{:?}", t.name)));
        }
        if !seen.insert(t.name.as_str()) {
            return Err(invalid(
                path,
                &item,
                "unique tensor names",
                "a second tensor of that name",
            ));
        }
        let numel = t
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if numel != Some(t.data.len()) {
            let expected = match numel {
                Some(n) => format!("{n} values for shape {:?}", t.shape),
                None => format!("a shape whose size fits in usize, not {:?}", t.shape),
            };
            return Err(invalid(
                path,
                &item,
                &expected,
                format!("{} values", t.data.len()),
            ));
        }
        check_finite(path, &t.name, &t.data)?;
    }
    Ok(())
}

/// A [`CheckpointError::InvalidInput`] for `path`.
fn invalid(path: &str, item: &str, expected: &str, found: impl Into<String>) -> CheckpointError {
    CheckpointError::InvalidInput {
        path: path.to_string(),
        item: item.to_string(),
        expected: expected.to_string(),
        found: found.into(),
    }
}
