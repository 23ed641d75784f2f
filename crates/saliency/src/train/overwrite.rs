//! `train --overwrite` without a moment where the folder holds neither run: the old run's files
//! are moved aside (into `RUN/.overwritten/`, renames within the folder) instead of deleted, and
//! the old run is deleted only once the new one has a complete checkpoint; a new run that fails
//! before that (a full disk, bad data, NaN in the first epoch) puts the old one back.
//!
//! A kill in between leaves the folder aside; the next command that locks the folder settles it
//! the same way ([`settle`], called by [`super::run_folder::RunLock::acquire`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::run_folder::RUN_FILES;
use super::state::{MODEL_FILE, STATE_FILE};
use crate::attribution::TIG_FILE;

/// The folder, inside the run folder, holding the run being overwritten.
pub const ASIDE_DIR: &str = ".overwritten";

/// Every file of a run, the integrated-gradients output included.
fn run_files() -> impl Iterator<Item = &'static str> {
    RUN_FILES.into_iter().chain([TIG_FILE])
}

/// The old run of a folder being overwritten; settled (see [`settle`]) when dropped.
#[derive(Debug)]
pub struct SetAside {
    dir: PathBuf,
}

impl Drop for SetAside {
    fn drop(&mut self) {
        if let Err(e) = settle(&self.dir) {
            eprintln!("warning: {e}");
        }
    }
}

/// Moves the run files of `dir` into `dir/.overwritten/`, so a new run can start in `dir`.
/// Unrelated files stay. On an error, the files already moved are moved back.
pub fn set_aside(dir: &Path) -> Result<SetAside, String> {
    settle(dir)?;
    let aside = dir.join(ASIDE_DIR);
    fs::create_dir_all(&aside)
        .map_err(|e| format!("--overwrite: cannot create {}: {e}", aside.display()))?;
    let guard = SetAside {
        dir: dir.to_path_buf(),
    };
    for f in run_files() {
        match fs::rename(dir.join(f), aside.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // `guard` moves back what was moved (no new run exists yet).
            Err(e) => {
                return Err(format!(
                    "--overwrite: cannot move {} aside: {e}",
                    dir.join(f).display()
                ))
            }
        }
    }
    Ok(guard)
}

/// Ends an overwrite of `dir`: when the new run has a complete checkpoint (its model and state
/// files; they are written as one group, so both present means both whole) the old run is
/// deleted; otherwise the new run's files are removed and the old run's moved back. Nothing to
/// do when no overwrite is pending.
pub fn settle(dir: &Path) -> Result<(), String> {
    let aside = dir.join(ASIDE_DIR);
    if !aside.is_dir() {
        return Ok(());
    }
    let new_run_complete = dir.join(MODEL_FILE).is_file() && dir.join(STATE_FILE).is_file();
    if new_run_complete {
        return fs::remove_dir_all(&aside).map_err(|e| {
            format!(
                "{}: cannot delete the overwritten run: {e}",
                aside.display()
            )
        });
    }
    for f in run_files() {
        let (new, old) = (dir.join(f), aside.join(f));
        if old.is_file() {
            fs::rename(&old, &new)
                .map_err(|e| format!("cannot move {} back: {e}", old.display()))?;
        } else if new.is_file() {
            fs::remove_file(&new).map_err(|e| format!("cannot remove {}: {e}", new.display()))?;
        }
    }
    fs::remove_dir(&aside).map_err(|e| format!("cannot remove {}: {e}", aside.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("saliency-aside-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        for f in [MODEL_FILE, STATE_FILE, "config.json", "notes.txt"] {
            fs::write(d.join(f), format!("old {f}")).unwrap();
        }
        d
    }

    #[test]
    fn a_new_run_without_a_checkpoint_gives_the_old_one_back() {
        let d = folder("fail");
        let aside = set_aside(&d).unwrap();
        assert!(!d.join(MODEL_FILE).exists(), "moved aside");
        assert_eq!(
            fs::read_to_string(d.join("notes.txt")).unwrap(),
            "old notes.txt"
        );
        // The new run got as far as its config and a model, not the state.
        fs::write(d.join("config.json"), "new").unwrap();
        fs::write(d.join(MODEL_FILE), "new").unwrap();
        drop(aside);
        for f in [MODEL_FILE, STATE_FILE, "config.json"] {
            assert_eq!(fs::read_to_string(d.join(f)).unwrap(), format!("old {f}"));
        }
        assert!(!d.join(ASIDE_DIR).exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_new_checkpoint_deletes_the_old_run_even_after_a_kill() {
        let d = folder("done");
        let aside = set_aside(&d).unwrap();
        // A kill: the guard never runs; the next lock of the folder settles it.
        std::mem::forget(aside);
        fs::write(d.join(MODEL_FILE), "new").unwrap();
        fs::write(d.join(STATE_FILE), "new").unwrap();
        settle(&d).unwrap();
        assert!(!d.join(ASIDE_DIR).exists());
        assert_eq!(fs::read_to_string(d.join(MODEL_FILE)).unwrap(), "new");
        assert!(
            !d.join("config.json").exists(),
            "the old run's files went with it"
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
