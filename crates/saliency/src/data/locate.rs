//! Finding data on disk: `--data-dir`, else `$SALIENCY_DATA`, else `./data`, else `/usr/share/datasets`.
//!
//! `SALIENCY_DATA` is the one environment variable the project reads (see docs/style.md).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::data::error::DataError;
use crate::data::fashion_mnist;

/// The environment variable naming a data root.
pub const DATA_ENV_VAR: &str = "SALIENCY_DATA";

/// Where Debian's `dataset-*` packages install data sets.
pub const SYSTEM_DATA_DIR: &str = "/usr/share/datasets";

/// The data roots to search, in order.
///
/// With `data_dir` given, only that folder: an explicit choice must not silently fall back to
/// another copy. Otherwise `$SALIENCY_DATA` (when set and non-empty), `./data`, `/usr/share/datasets`.
pub fn data_roots(data_dir: Option<&Path>) -> Vec<PathBuf> {
    roots_from(data_dir, std::env::var_os(DATA_ENV_VAR))
}

/// `data_roots` with the environment passed in, so tests need not change the process's environment.
fn roots_from(data_dir: Option<&Path>, env: Option<OsString>) -> Vec<PathBuf> {
    if let Some(d) = data_dir {
        return vec![d.to_path_buf()];
    }
    let mut roots = Vec::new();
    if let Some(e) = env.filter(|e| !e.is_empty()) {
        roots.push(PathBuf::from(e));
    }
    roots.push(PathBuf::from("data"));
    roots.push(PathBuf::from(SYSTEM_DATA_DIR));
    roots
}

/// The folder holding the four Fashion-MNIST files: the first data root that holds them directly
/// or in its `fashion-mnist/` sub-folder.
///
/// The error lists every folder tried.
pub fn find_fashion_mnist(data_dir: Option<&Path>) -> Result<PathBuf, DataError> {
    let roots = data_roots(data_dir);
    let mut tried = Vec::new();
    for root in &roots {
        for candidate in [root.clone(), root.join(fashion_mnist::SUBFOLDER)] {
            if fashion_mnist::files_in(&candidate).is_some() {
                return Ok(candidate);
            }
            tried.push(candidate);
        }
    }
    let hint = match data_dir {
        Some(d) => format!(
            "--data-dir {} was given, so no other place was searched",
            d.display()
        ),
        None => format!("set --data-dir or {DATA_ENV_VAR}, or allow the download"),
    };
    Err(DataError::NotFound {
        what: format!(
            "Fashion-MNIST ({}, each optionally .gz)",
            fashion_mnist::FILE_STEMS.join(", ")
        ),
        tried,
        hint,
    })
}

/// The folder of the image data set `name` (e.g. `flowers`, `flowers17`): `<root>/<name>` for the
/// first data root that has it, or the root itself when it is a folder called `name`.
pub fn find_named_set(data_dir: Option<&Path>, name: &str) -> Result<PathBuf, DataError> {
    // A name is one path component; anything else could escape the data roots.
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
        return Err(DataError::InvalidArgument {
            name: "data set name",
            expected: "a plain folder name such as flowers".into(),
            found: format!("{name:?}"),
        });
    }
    let mut tried = Vec::new();
    for root in data_roots(data_dir) {
        if root.file_name() == Some(std::ffi::OsStr::new(name)) && root.is_dir() {
            return Ok(root);
        }
        let candidate = root.join(name);
        if candidate.is_dir() {
            return Ok(candidate);
        }
        tried.push(candidate);
    }
    Err(DataError::NotFound {
        what: format!("data set {name:?}"),
        tried,
        hint: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_order_and_explicit_dir_wins() {
        let env = Some(OsString::from("/srv/d"));
        assert_eq!(
            roots_from(None, env.clone()),
            [
                PathBuf::from("/srv/d"),
                PathBuf::from("data"),
                PathBuf::from("/usr/share/datasets")
            ]
        );
        assert_eq!(
            roots_from(None, Some(OsString::new())),
            [PathBuf::from("data"), PathBuf::from("/usr/share/datasets")]
        );
        assert_eq!(
            roots_from(Some(Path::new("/x")), env),
            [PathBuf::from("/x")]
        );
    }

    #[test]
    fn finds_real_data_under_a_given_root() {
        let root = crate::data::test_data_dir();
        assert_eq!(
            find_fashion_mnist(Some(&root)).unwrap(),
            root.join("fashion-mnist")
        );
        assert_eq!(
            find_fashion_mnist(Some(&root.join("fashion-mnist"))).unwrap(),
            root.join("fashion-mnist")
        );
        assert_eq!(
            find_named_set(Some(&root), "flowers").unwrap(),
            root.join("flowers")
        );
        assert_eq!(
            find_named_set(Some(&root.join("flowers17")), "flowers17").unwrap(),
            root.join("flowers17")
        );
    }

    #[test]
    fn missing_data_dir_error_lists_places() {
        let d = std::env::temp_dir().join("saliency-locate-nothing-here");
        let m = find_fashion_mnist(Some(&d)).unwrap_err().to_string();
        assert!(
            m.contains(&d.display().to_string())
                && m.contains(&d.join("fashion-mnist").display().to_string()),
            "{m}"
        );
        assert!(m.contains("--data-dir"), "{m}");
        let m = find_named_set(Some(&d), "flowers").unwrap_err().to_string();
        assert!(m.contains(&d.join("flowers").display().to_string()), "{m}");
        assert!(find_named_set(None, "../etc").is_err());
    }
}
