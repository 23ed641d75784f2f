//! `study.json`: what determines a study folder's step results (profile, seed, data, options,
//! build). A rerun with another key used to skip every step as "done in an earlier run" and
//! report the old run's numbers under the new profile and seed; now it is refused unless
//! `--overwrite`, which clears the old results first.

use std::path::{Path, PathBuf};

use crate::atomic_file::write_atomic;
use crate::data::locate::Origin;

use super::{Profile, StudyConfig};

/// File name of the key inside the study folder.
pub const KEY_FILE: &str = "study.json";

/// What the study writes into its folder, removed by `--overwrite` (the key last, so a kill
/// midway leaves a folder that is still refused rather than half-reused).
const STUDY_OUTPUTS: [&str; 5] = ["steps", "models", "figures", "report.md", "report.html"];

/// One data set the study reads.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataKey {
    /// `fashion-mnist`, `flowers` or `flowers17`.
    pub set: String,
    /// Full copy or shipped sample.
    pub origin: Origin,
    /// Its folder.
    pub dir: PathBuf,
}

/// Everything that determines the step results.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StudyKey {
    /// How much is run.
    pub profile: Profile,
    /// Seed of every model, split and control.
    pub seed: u64,
    /// Whether the 17-class flowers are trained.
    pub flowers17: bool,
    /// The data sets found (a missing one is absent, and its sections skipped).
    pub data: Vec<DataKey>,
    /// The program's version: another build may compute other numbers.
    pub version: String,
}

impl StudyKey {
    /// The key of `cfg` with the data found.
    pub fn new(cfg: &StudyConfig, data: Vec<DataKey>) -> Self {
        StudyKey {
            profile: cfg.profile,
            seed: cfg.seed,
            flowers17: cfg.flowers17,
            data,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// `name: saved A, requested B` for each field that differs.
    fn differences(&self, requested: &StudyKey) -> Vec<String> {
        let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
            (serde_json::to_value(self), serde_json::to_value(requested))
        else {
            return vec!["the settings differ".into()];
        };
        b.iter()
            .filter(|(k, v)| a.get(k.as_str()) != Some(*v))
            .map(|(k, v)| {
                let old = a.get(k.as_str()).unwrap_or(&serde_json::Value::Null);
                format!("{k}: saved {old}, requested {v}")
            })
            .collect()
    }
}

/// Makes `out` hold results of `key` only: a folder with another key (or with step results and
/// no key, from an older version) is refused unless `overwrite`, which deletes the old results.
/// Then writes the key. Call with the folder locked.
pub fn claim(out: &Path, key: &StudyKey, overwrite: bool) -> anyhow::Result<()> {
    let path = out.join(KEY_FILE);
    let saved = match std::fs::read(&path) {
        Ok(bytes) => Some(
            serde_json::from_slice::<StudyKey>(&bytes)
                .map_err(|e| format!("{}: not a study key ({e})", path.display())),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => anyhow::bail!("{}: cannot read: {e}", path.display()),
    };
    let conflict = match saved {
        Some(Ok(old)) if old == *key => None,
        Some(Ok(old)) => Some(format!(
            "its results were computed with another key ({})",
            old.differences(key).join("; ")
        )),
        Some(Err(why)) => Some(why),
        None if out.join("steps").exists() => Some(format!(
            "it holds step results but no {KEY_FILE} saying what they were computed with"
        )),
        None => None,
    };
    if let Some(why) = conflict {
        if !overwrite {
            anyhow::bail!(
                "--out {}: {why}; its finished steps would be reported as this run's. Pass \
                 --overwrite to delete them and start over, or choose another --out",
                out.display()
            );
        }
        super::progress::line(format!(
            "--overwrite: deleting the earlier study's results in {}",
            out.display()
        ));
        for name in STUDY_OUTPUTS {
            let p = out.join(name);
            let result = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => anyhow::bail!("--overwrite: cannot remove {}: {e}", p.display()),
            }
        }
    }
    let json = serde_json::to_string_pretty(key)?;
    write_atomic(&path, json.as_bytes())?;
    Ok(())
}
