//! `DataError`: every way loading, locating or downloading a data set can fail, each naming the file.

use std::fmt::Write as _;
use std::path::PathBuf;

/// An error from the data module.
///
/// Every message names the file or folder (full path, or the URL for downloads), the field or
/// property that is wrong, what was expected and what was found, so a user can fix the data
/// without reading this code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// Reading, writing, creating or renaming a file or folder failed at the OS level.
    #[error("{action} {}: {source}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done, e.g. "reading", "creating folder".
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A file's content does not have the expected format (IDX header, sizes, payload, labels).
    #[error("{file}: {field}: expected {expected}, found {found}{}", hint_suffix(.hint))]
    Format {
        /// The file (full path, or the name a caller gave for an in-memory buffer).
        file: String,
        /// The field or part of the file, e.g. "magic byte 2 (element type)".
        field: String,
        /// What a valid file holds there.
        expected: String,
        /// What this file holds there.
        found: String,
        /// A likely cause, or empty.
        hint: String,
    },

    /// An images file and its labels file disagree on the number of items.
    #[error("{} holds {images} images but {} holds {labels} labels: expected the same count", .image_file.display(), .label_file.display())]
    CountMismatch {
        /// The images file.
        image_file: PathBuf,
        /// Its item count.
        images: usize,
        /// The labels file.
        label_file: PathBuf,
        /// Its item count.
        labels: usize,
    },

    /// An image file could not be used (not an image, corrupt, too large, empty).
    #[error("{}: expected a decodable PNG or JPEG image, found {reason}", .path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },

    /// A folder that should hold a data set is missing, empty or lacks a named class.
    #[error("{}: expected {expected}, found {found}", .path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What it should hold.
        expected: String,
        /// What it holds.
        found: String,
    },

    /// A data set was not found in any of the places searched.
    #[error("{what} not found; looked in:{}{}", list_paths(.tried), hint_suffix(.hint))]
    NotFound {
        /// What was looked for, e.g. "Fashion-MNIST (the four IDX files)".
        what: String,
        /// Every folder checked, in order.
        tried: Vec<PathBuf>,
        /// How to fix it, or empty.
        hint: String,
    },

    /// One or more downloads failed; the good files were kept, the bad ones deleted.
    #[error("download failed for {} file(s):{}{}", .failures.len(), list_failures(.failures), hint_line(.hint))]
    Download {
        /// One entry per failed file.
        failures: Vec<DownloadFailure>,
        /// The other ways to get the data, or empty.
        hint: String,
    },

    /// A caller passed an argument outside its valid range.
    #[error("{name}: expected {expected}, found {found}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// Its valid range.
        expected: String,
        /// The value given.
        found: String,
    },
}

/// Why one downloaded file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadFailure {
    /// The URL fetched.
    pub url: String,
    /// Where the file would have gone (it was deleted, or never created).
    pub path: PathBuf,
    /// What went wrong: HTTP status, transport error, or expected vs found sha256 and length.
    pub reason: String,
}

impl DataError {
    /// An I/O error while doing `action` on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            action,
            source,
        }
    }

    /// A format error without a hint.
    pub fn format(
        file: &str,
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        DataError::Format {
            file: file.to_string(),
            field: field.into(),
            expected: expected.into(),
            found: found.into(),
            hint: String::new(),
        }
    }

    /// A format error with a hint on the likely cause.
    pub fn format_hint(
        file: &str,
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        DataError::Format {
            file: file.to_string(),
            field: field.into(),
            expected: expected.into(),
            found: found.into(),
            hint: hint.into(),
        }
    }
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(" ({hint})")
    }
}

fn hint_line(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("\n{hint}")
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    let mut s = String::new();
    for p in paths {
        let _ = write!(s, "\n  {}", p.display());
    }
    s
}

fn list_failures(failures: &[DownloadFailure]) -> String {
    let mut s = String::new();
    for f in failures {
        let _ = write!(s, "\n  {} -> {}: {}", f.url, f.path.display(), f.reason);
    }
    s
}
