//! Reading checkpoint bytes: every structural, dtype, metadata, checksum and finiteness check.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, TensorInfo};
use safetensors::{SafeTensorError, SafeTensors};
use serde::Deserialize;

use super::error::CheckpointError;
use super::format::{
    check_finite, payload_sha256, Checkpoint, NamedTensor, CHECKSUM_KEY, FORMAT_VERSION,
    FORMAT_VERSION_KEY, MAX_HEADER_BYTES,
};

/// Parses and validates checkpoint bytes; `source` is the path or name used in error messages.
///
/// Checks, in order: the length prefix (at most [`MAX_HEADER_BYTES`] and within the file), the
/// JSON header, every tensor's byte range (inside the data section, matching its shape, covering
/// the section), then the safetensors crate's own checks (no gaps or overlaps), dtype F32
/// everywhere, `format_version` equal to [`FORMAT_VERSION`], the payload checksum, and finally
/// that every value is finite. Checksum before finiteness, so a flipped bit that happens to make
/// a NaN is reported as corruption. Never panics, whatever the bytes.
pub fn from_bytes(source: &str, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let header_len = check_length_prefix(source, bytes)?;
    let data = &bytes[8 + header_len..];
    inspect_header(source, &bytes[8..8 + header_len], data.len())?;
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| describe_crate_error(source, e))?;

    let mut infos: Vec<(String, &TensorInfo)> = meta.tensors().into_iter().collect();
    // File order is offset order; empty tensors share an offset, so their names break the tie.
    infos.sort_by(|a, b| {
        a.1.data_offsets
            .cmp(&b.1.data_offsets)
            .then_with(|| a.0.cmp(&b.0))
    });
    if let Some((name, info)) = infos.iter().find(|(_, info)| info.dtype != Dtype::F32) {
        return Err(CheckpointError::WrongDtype {
            path: source.to_string(),
            tensor: name.clone(),
            found: format!("{:?}", info.dtype),
        });
    }
    let (metadata, recorded) = split_metadata(source, meta.metadata().as_ref())?;

    let mut raw: Vec<(&str, &[usize], &[u8])> = Vec::with_capacity(infos.len());
    for (name, info) in &infos {
        let (start, end) = info.data_offsets;
        // Validated above; `get` keeps a future crate change from turning into a panic here.
        let bytes = data
            .get(start..end)
            .ok_or_else(|| CheckpointError::OffsetOutOfRange {
                path: source.to_string(),
                tensor: name.clone(),
                start: start as u64,
                end: end as u64,
                data_len: data.len(),
            })?;
        raw.push((name.as_str(), info.shape.as_slice(), bytes));
    }
    let computed = payload_sha256(raw.iter().copied());
    if computed != recorded {
        return Err(CheckpointError::ChecksumMismatch {
            path: source.to_string(),
            expected: recorded,
            found: computed,
        });
    }

    let mut tensors = Vec::with_capacity(raw.len());
    for (name, shape, bytes) in raw {
        let data: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        check_finite(source, name, &data)?;
        tensors.push(NamedTensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            data,
        });
    }
    Ok(Checkpoint { tensors, metadata })
}

/// A [`CheckpointError::Malformed`] for `path`.
fn malformed(path: &str, expected: impl Into<String>, found: impl Into<String>) -> CheckpointError {
    CheckpointError::Malformed {
        path: path.to_string(),
        expected: expected.into(),
        found: found.into(),
    }
}

/// Reads the 8-byte header length and checks it against the cap and the file size, so nothing
/// later slices past the end or parses a gigabyte of garbage.
pub(super) fn check_length_prefix(path: &str, bytes: &[u8]) -> Result<usize, CheckpointError> {
    let Some(prefix) = bytes.first_chunk::<8>() else {
        let found = format!("a {}-byte file", bytes.len());
        return Err(malformed(
            path,
            "an 8-byte little-endian header length",
            found,
        ));
    };
    let n = u64::from_le_bytes(*prefix);
    if n > MAX_HEADER_BYTES as u64 {
        return Err(CheckpointError::HeaderTooLarge {
            path: path.to_string(),
            found: n,
            max: MAX_HEADER_BYTES,
        });
    }
    let room = bytes.len() - 8;
    if n > room as u64 {
        let expected = format!("a header length of at most {room} (the bytes after the prefix)");
        return Err(malformed(path, expected, format!("header length {n}")));
    }
    Ok(n as usize)
}

/// Mirror of the header the safetensors crate parses, used to report problems with serde's
/// message and the tensor's name rather than the crate's bare error codes.
#[derive(Deserialize)]
struct RawHeader {
    // Keeps `__metadata__` out of the tensor map; its values are taken from the crate's parse.
    #[serde(rename = "__metadata__")]
    _metadata: Option<HashMap<String, String>>,
    #[serde(flatten)]
    tensors: HashMap<String, TensorInfo>,
}

/// Checks the header parses, every tensor's byte range lies inside the data section and matches
/// its shape, and the tensors end where the data section does. The range check must come before
/// the crate's validation: an end offset near `usize::MAX` makes its `end + 8 + n` overflow,
/// which panics in debug builds (safetensors 0.4.5).
pub(super) fn inspect_header(
    path: &str,
    header: &[u8],
    data_len: usize,
) -> Result<(), CheckpointError> {
    let text = std::str::from_utf8(header).map_err(|e| {
        malformed(
            path,
            "a UTF-8 JSON header",
            format!("invalid UTF-8 at header byte {}", e.valid_up_to()),
        )
    })?;
    let parsed: RawHeader = serde_json::from_str(text).map_err(|e| {
        let expected =
            "a JSON object of {dtype, shape, data_offsets} entries and string __metadata__";
        malformed(path, expected, format!("a header that does not parse: {e}"))
    })?;
    let mut tensors: Vec<_> = parsed.tensors.iter().collect();
    tensors.sort_by(|a, b| {
        a.1.data_offsets
            .cmp(&b.1.data_offsets)
            .then_with(|| a.0.cmp(b.0))
    });
    for (name, info) in tensors {
        let (start, end) = info.data_offsets;
        if start > end || end > data_len {
            return Err(CheckpointError::OffsetOutOfRange {
                path: path.to_string(),
                tensor: name.clone(),
                start: start as u64,
                end: end as u64,
                data_len,
            });
        }
        let nbytes = info
            .shape
            .iter()
            .try_fold(info.dtype.size(), |acc, &d| acc.checked_mul(d));
        if nbytes != Some(end - start) {
            let expected = match nbytes {
                Some(n) => format!(
                    "tensor `{name}` to span {n} bytes ({:?} x {:?})",
                    info.shape, info.dtype
                ),
                None => format!("tensor `{name}` to have a shape whose size fits in usize"),
            };
            let found = format!("shape {:?} with data_offsets [{start}, {end})", info.shape);
            return Err(malformed(path, expected, found));
        }
    }
    // The data section must be exactly the tensors; a short or long header length shows up here.
    let covered = parsed
        .tensors
        .values()
        .map(|info| info.data_offsets.1)
        .max()
        .unwrap_or(0);
    if covered != data_len {
        let expected = format!("tensors covering the whole {data_len}-byte data section");
        return Err(malformed(
            path,
            expected,
            format!("tensors ending at byte {covered}"),
        ));
    }
    Ok(())
}

/// Splits the header metadata into the caller's keys and the recorded checksum, checking the
/// reserved keys are present and the version is ours.
fn split_metadata(
    path: &str,
    metadata: Option<&HashMap<String, String>>,
) -> Result<(BTreeMap<String, String>, String), CheckpointError> {
    let Some(metadata) = metadata else {
        return Err(CheckpointError::MissingMetadata {
            path: path.to_string(),
            key: FORMAT_VERSION_KEY,
            found: "no __metadata__ entry at all".to_string(),
        });
    };
    let mut user: BTreeMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let missing = |key: &'static str, user: &BTreeMap<String, String>| {
        let keys: Vec<&str> = user.keys().map(String::as_str).collect();
        CheckpointError::MissingMetadata {
            path: path.to_string(),
            key,
            found: format!("keys {keys:?}"),
        }
    };
    let version = user
        .remove(FORMAT_VERSION_KEY)
        .ok_or_else(|| missing(FORMAT_VERSION_KEY, &user))?;
    if version != FORMAT_VERSION {
        return Err(CheckpointError::UnsupportedVersion {
            path: path.to_string(),
            expected: FORMAT_VERSION,
            found: version,
        });
    }
    let checksum = user
        .remove(CHECKSUM_KEY)
        .ok_or_else(|| missing(CHECKSUM_KEY, &user))?;
    Ok((user, checksum))
}

/// Turns the safetensors crate's bare error codes into expected/found messages. Most cases are
/// caught earlier by [`check_length_prefix`] and [`inspect_header`]; this is the backstop.
fn describe_crate_error(path: &str, e: SafeTensorError) -> CheckpointError {
    let (expected, found) = match e {
        SafeTensorError::InvalidHeader => (
            "a UTF-8 JSON header".to_string(),
            "invalid UTF-8".to_string(),
        ),
        SafeTensorError::InvalidHeaderStart => (
            "a header starting with '{'".to_string(),
            "another byte".to_string(),
        ),
        SafeTensorError::InvalidHeaderDeserialization => (
            "a JSON header of tensor entries and string __metadata__".to_string(),
            "a header the safetensors crate cannot parse".to_string(),
        ),
        SafeTensorError::HeaderTooLarge => (
            format!("a header of at most {MAX_HEADER_BYTES} bytes"),
            "a larger one".to_string(),
        ),
        SafeTensorError::HeaderTooSmall => ("at least 8 bytes".to_string(), "fewer".to_string()),
        SafeTensorError::InvalidHeaderLength => (
            "a header length within the file".to_string(),
            "one past its end".to_string(),
        ),
        SafeTensorError::InvalidOffset(name) => (
            "tensors stored back to back from offset 0, each starting where the previous ends"
                .to_string(),
            format!("tensor `{name}` starting elsewhere (a gap or an overlap)"),
        ),
        SafeTensorError::TensorInvalidInfo => (
            "every tensor's byte range equal to its shape times its dtype size".to_string(),
            "a tensor whose range disagrees".to_string(),
        ),
        SafeTensorError::MetadataIncompleteBuffer => (
            "the data section to end exactly where the last tensor ends".to_string(),
            "trailing bytes after the last tensor".to_string(),
        ),
        SafeTensorError::ValidationOverflow => (
            "shapes whose byte size fits in usize".to_string(),
            "an overflowing shape".to_string(),
        ),
        SafeTensorError::TensorNotFound(name) => {
            ("a listed tensor".to_string(), format!("no tensor `{name}`"))
        }
        SafeTensorError::InvalidTensorView(dtype, shape, n) => {
            (format!("{shape:?} x {dtype:?} bytes"), format!("{n} bytes"))
        }
        SafeTensorError::IoError(e) => ("readable bytes".to_string(), e.to_string()),
        SafeTensorError::JsonError(e) => ("a valid JSON header".to_string(), e.to_string()),
    };
    malformed(path, expected, found)
}
