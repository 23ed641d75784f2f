//! `CheckpointError`: every way saving or loading a checkpoint fails, each naming the file.

/// Errors from writing, reading or checking a checkpoint.
///
/// Every message starts with the file path (or the name given as `source`) and says what was
/// expected and what was found, so a user can tell a truncated download from a checkpoint of
/// another model without a debugger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// The checkpoint's path.
        path: String,
        /// What was being done: `read checkpoint` or `write`.
        action: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The header length prefix is larger than this reader accepts.
    #[error(
        "{path}: header length prefix says {found} bytes, expected at most {max} bytes \
         (the cap guards against allocating for a corrupt or hostile file)"
    )]
    HeaderTooLarge {
        /// The checkpoint's path.
        path: String,
        /// The header length read from the first 8 bytes.
        found: u64,
        /// The largest header accepted.
        max: usize,
    },
    /// The bytes are not a well-formed safetensors file (length prefix, JSON header, offsets).
    #[error("{path}: not a valid safetensors file: expected {expected}, found {found}")]
    Malformed {
        /// The checkpoint's path.
        path: String,
        /// What a valid file has at this point.
        expected: String,
        /// What this file has instead.
        found: String,
    },
    /// A tensor's declared byte range lies outside the data section.
    #[error(
        "{path}: tensor `{tensor}` declares data offsets [{start}, {end}), expected a range \
         inside the {data_len}-byte data section"
    )]
    OffsetOutOfRange {
        /// The checkpoint's path.
        path: String,
        /// The tensor whose offsets are wrong.
        tensor: String,
        /// Declared start offset, relative to the data section.
        start: u64,
        /// Declared end offset (exclusive).
        end: u64,
        /// Length of the data section after the header.
        data_len: usize,
    },
    /// A tensor is stored with a dtype other than F32.
    #[error("{path}: tensor `{tensor}` has dtype {found}, expected F32")]
    WrongDtype {
        /// The checkpoint's path.
        path: String,
        /// The offending tensor.
        tensor: String,
        /// The dtype stored in the file.
        found: String,
    },
    /// A metadata key this format requires is absent.
    #[error("{path}: metadata key `{key}` is missing, expected it in __metadata__ ({found})")]
    MissingMetadata {
        /// The checkpoint's path.
        path: String,
        /// The required key.
        key: &'static str,
        /// What the header has instead, e.g. the keys that are present.
        found: String,
    },
    /// The file was written by a different version of this format.
    #[error("{path}: format_version is \"{found}\", expected \"{expected}\"")]
    UnsupportedVersion {
        /// The checkpoint's path.
        path: String,
        /// The version this build reads.
        expected: &'static str,
        /// The version in the file.
        found: String,
    },
    /// The tensor bytes do not hash to the checksum recorded in the metadata.
    #[error(
        "{path}: payload checksum mismatch: expected sha256 {expected} (recorded in the \
         metadata), found sha256 {found} (computed over the tensors); the file is corrupt"
    )]
    ChecksumMismatch {
        /// The checkpoint's path.
        path: String,
        /// The hex digest stored in the metadata.
        expected: String,
        /// The hex digest of the tensors as read.
        found: String,
    },
    /// A tensor holds NaN or an infinity.
    #[error(
        "{path}: tensor `{tensor}` holds {value} at flat index {index}, expected only finite values"
    )]
    NonFinite {
        /// The checkpoint's path.
        path: String,
        /// The offending tensor.
        tensor: String,
        /// Row-major index of the first non-finite element.
        index: usize,
        /// The value found there.
        value: f32,
    },
    /// A checkpoint to be written is inconsistent: shape vs data length, a duplicate or reserved
    /// name, a reserved metadata key, or a value the reader would reject.
    #[error("{path}: cannot write {item}: expected {expected}, found {found}")]
    InvalidInput {
        /// The destination path, or a placeholder for in-memory serialization.
        path: String,
        /// What is wrong, e.g. "tensor `conv1.weight`" or "metadata key `format_version`".
        item: String,
        /// What a writable checkpoint has.
        expected: String,
        /// What this one has.
        found: String,
    },
    /// The checkpoint's tensors are not the ones the model expects.
    #[error("{path}: tensors do not match the expected layout: {details}")]
    LayoutMismatch {
        /// The checkpoint's path or name.
        path: String,
        /// Every missing, unexpected and wrong-shape tensor, in one list.
        details: String,
    },
}
