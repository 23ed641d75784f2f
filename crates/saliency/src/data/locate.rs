//! Finding data on disk: `--data-dir`, else `$SALIENCY_DATA`, else `./data`, else `/usr/share/datasets`,
//! and, when none of them holds a data set, the real sample shipped in the repository's `data/sample`.
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

/// The shipped sample's folder in the source tree this binary was built from.
const BUILT_SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sample");

/// Whether a data set found on disk is a full copy or the sample shipped with the project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A copy found in a data root (or downloaded): as complete as its source.
    Full,
    /// The real subset in `data/sample` (10,000 + 2,000 Fashion-MNIST images, 200 flower photos).
    Sample,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Full => "full",
            Origin::Sample => "sample",
        })
    }
}

/// A data set's folder and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The folder holding the data set's files.
    pub dir: PathBuf,
    /// Full copy or shipped sample.
    pub origin: Origin,
    /// Why the sample stands in for a full copy (e.g. a failed download), to tell the user.
    pub note: Option<String>,
}

/// The shipped sample's folder: `./data/sample` when run from a checkout, else the one in the
/// source tree this binary was built from; `None` when neither exists (e.g. an installed binary
/// whose source is gone).
pub fn sample_root() -> Option<PathBuf> {
    [PathBuf::from("data/sample"), PathBuf::from(BUILT_SAMPLE)]
        .into_iter()
        .find(|p| p.join("SHA256SUMS").is_file())
}

/// True when `dir` lies inside the shipped sample (so a `--data-dir data/sample` is still
/// reported as the sample, not as a full copy).
pub fn is_sample(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    [PathBuf::from("data/sample"), PathBuf::from(BUILT_SAMPLE)]
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .any(|root| dir.starts_with(root))
}

fn origin_of(dir: &Path) -> Origin {
    if is_sample(dir) {
        Origin::Sample
    } else {
        Origin::Full
    }
}

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
        None => format!(
            "set --data-dir or {DATA_ENV_VAR}, install Debian's dataset-fashion-mnist \
             (apt-get install dataset-fashion-mnist), or allow the download"
        ),
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

/// Fashion-MNIST: a full copy (`find_fashion_mnist`), else, without a `data_dir`, the shipped
/// sample. The error lists every folder tried, the sample's included.
pub fn locate_fashion_mnist(data_dir: Option<&Path>) -> Result<Found, DataError> {
    match find_fashion_mnist(data_dir) {
        Ok(dir) => Ok(Found {
            origin: origin_of(&dir),
            dir,
            note: None,
        }),
        Err(e) => sample_fallback(data_dir, e, |root| {
            fashion_mnist::resolve_dir(root).ok_or(root.join(fashion_mnist::SUBFOLDER))
        }),
    }
}

/// The image data set `name`: a full copy (`find_named_set`), else, without a `data_dir`, the
/// shipped sample's copy when it has one.
pub fn locate_named_set(data_dir: Option<&Path>, name: &str) -> Result<Found, DataError> {
    match find_named_set(data_dir, name) {
        Ok(dir) => Ok(Found {
            origin: origin_of(&dir),
            dir,
            note: None,
        }),
        Err(e @ DataError::InvalidArgument { .. }) => Err(e),
        Err(e) => sample_fallback(data_dir, e, |root| {
            let d = root.join(name);
            if d.is_dir() {
                Ok(d)
            } else {
                Err(d)
            }
        }),
    }
}

/// The sample's copy (`pick` gives its folder, or the folder it looked at) when no `data_dir`
/// was given; otherwise `not_found`, with the sample's folder added to the places tried.
fn sample_fallback(
    data_dir: Option<&Path>,
    not_found: DataError,
    pick: impl Fn(&Path) -> Result<PathBuf, PathBuf>,
) -> Result<Found, DataError> {
    let DataError::NotFound {
        what,
        mut tried,
        hint,
    } = not_found
    else {
        return Err(not_found);
    };
    if data_dir.is_none() {
        match sample_root().map(|r| pick(&r)) {
            Some(Ok(dir)) => {
                return Ok(Found {
                    note: Some(format!(
                        "no full copy of {what} was found (looked in {}); using the sample shipped in {}",
                        tried
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        dir.display()
                    )),
                    dir,
                    origin: Origin::Sample,
                })
            }
            Some(Err(looked)) => tried.push(looked),
            None => tried.push(PathBuf::from("data/sample")),
        }
    }
    Err(DataError::NotFound { what, tried, hint })
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
        hint: match name {
            "flowers" | "flowers17" => format!(
                "`saliency download {name}` fetches it into ./data/{name}; or set --data-dir or \
                 {DATA_ENV_VAR} to a folder holding {name}/<class>/<images>"
            ),
            _ => format!(
                "set --data-dir or {DATA_ENV_VAR} to a folder holding {name}/<class>/<images>"
            ),
        },
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
    }

    #[test]
    #[cfg_attr(
        not(flowers17_data),
        ignore = "needs the Oxford 17 flowers (SALIENCY_DATA/flowers17)"
    )]
    fn finds_flowers17_given_as_the_set_itself() {
        let root = crate::data::test_data_dir();
        assert_eq!(
            find_named_set(Some(&root.join("flowers17")), "flowers17").unwrap(),
            root.join("flowers17")
        );
    }

    #[test]
    fn the_sample_stands_in_only_without_a_data_dir() {
        // Run from the workspace root or not, the sample of the source tree is found.
        let root = sample_root().expect("data/sample is part of the repository");
        assert!(is_sample(&root.join("fashion-mnist")));
        let given = std::env::temp_dir().join("saliency-locate-explicit-none");
        let m = locate_fashion_mnist(Some(&given)).unwrap_err().to_string();
        assert!(
            !m.contains("data/sample"),
            "an explicit --data-dir must not fall back: {m}"
        );
        let found = locate_named_set(Some(&root), "flowers").unwrap();
        assert_eq!(found.origin, Origin::Sample);
        assert_eq!(found.dir, root.join("flowers"));
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
