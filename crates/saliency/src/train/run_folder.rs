//! Run folders owned by one run: a lock file while a command writes the folder, what a folder
//! already holds, and starting over in it.
//!
//! Two `train --out RUN` at once used to interleave their `metrics.jsonl` lines and overwrite
//! each other's checkpoints; a new run into a finished one silently replaced it. The lock makes
//! the second writer fail at once, and [`RunStatus`] lets the caller refuse to reuse a folder
//! that holds a run unless told to resume or overwrite it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::checkpoint;

use super::state::{MODEL_FILE, STATE_FILE};

/// Name of the lock file inside a run folder.
pub const LOCK_FILE: &str = ".saliency.lock";

/// The files that make a folder hold a run (the integrated-gradients file only as an output of
/// one; alone it does not count).
pub(crate) const RUN_FILES: [&str; 4] = [MODEL_FILE, STATE_FILE, "config.json", "metrics.jsonl"];

/// Holds a run folder for one process; dropping it removes the lock file, and the folder too if
/// this lock created it and nothing else was written into it (so a run that fails before its
/// first checkpoint leaves nothing behind).
///
/// The lock is an exclusive `flock` on the lock file, held through the open file: the kernel
/// releases it when the process ends however it ends, so a lock file left by a killed process is
/// simply locked again (no PID liveness guess, no race between two takers). The PID written in
/// the file is for messages only.
#[derive(Debug)]
pub struct RunLock {
    dir: PathBuf,
    created: bool,
    /// The open lock file; closing it releases the lock.
    file: Option<File>,
}

impl RunLock {
    /// Creates `dir` if needed and takes its lock. Refuses, naming the folder and the PID, if
    /// another process holds it; takes over the file a dead process left. Stale hidden temp files
    /// (`.NAME.tmp-PID`, left by a killed writer) are removed, since no one else writes here now.
    pub fn acquire(dir: &Path) -> Result<RunLock, String> {
        let created = !dir.exists();
        fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create the output folder: {e}", dir.display()))?;
        // Dropped on an error below: removes the folder if it was created just now (the lock
        // file is only removed while `file` is held, i.e. when it is ours).
        let mut lock = RunLock {
            dir: dir.to_path_buf(),
            created,
            file: None,
        };
        let path = dir.join(LOCK_FILE);
        let io_error = |e: io::Error| format!("{}: cannot use the lock file: {e}", path.display());
        // A holder that releases and removes the file between our open and our flock leaves us
        // locking a file no longer in the folder; then we try again with the new one.
        for _ in 0..8 {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_error)?;
            // std's exclusive lock (flock on Unix), failing at once instead of waiting.
            if let Err(e) = f.try_lock() {
                if let std::fs::TryLockError::Error(err) = e {
                    return Err(io_error(err));
                }
                let holder = fs::read_to_string(&path).unwrap_or_default();
                return Err(format!(
                    "{}: another saliency process (PID {}) is writing this run folder (lock file \
                     {}); wait for it to finish, or use another --out",
                    dir.display(),
                    holder.trim(),
                    path.display()
                ));
            }
            let same =
                fs::metadata(&path).map(|m| m.ino()).ok() == f.metadata().map(|m| m.ino()).ok();
            if !same {
                continue;
            }
            let mut previous = String::new();
            let _ = f.read_to_string(&mut previous);
            if let Ok(pid) = previous.trim().parse::<u32>() {
                eprintln!(
                    "note: {} was left by process {pid}, which is gone; taking it over",
                    path.display()
                );
            }
            // Ours from here: a failure to write the PID (a full disk) removes the lock file
            // on drop, and with it the folder if it was created just now.
            let f = lock.file.insert(f);
            f.set_len(0).map_err(io_error)?;
            f.seek(SeekFrom::Start(0)).map_err(io_error)?;
            writeln!(f, "{}", std::process::id()).map_err(io_error)?;
            remove_temp_files(dir);
            // A `train --overwrite` killed half-way: keep its new run or put the old one back.
            super::overwrite::settle(dir)?;
            return Ok(lock);
        }
        Err(format!(
            "{}: the lock file keeps being replaced by other processes; try again",
            path.display()
        ))
    }

    /// The locked folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked, so no one can lock this file and then see it vanish
        // unnoticed (the inode check in `acquire` catches that).
        if let Some(f) = self.file.take() {
            let _ = fs::remove_file(self.dir.join(LOCK_FILE));
            drop(f);
        }
        if self.created {
            // Fails (and keeps the folder) unless it is empty.
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

/// Whether process `pid` exists: its `/proc` entry on Linux (any user's process, no `unsafe`
/// call needed). Elsewhere every holder counts as alive, so a lock is never taken from a running
/// process (the error names the lock file to delete by hand).
pub(crate) fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Removes the `.NAME.tmp-PID` files a killed atomic write left in `dir`.
fn remove_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") && e.path().is_file() {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// What a run folder holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// No run files (the folder may be missing, empty, or hold unrelated files).
    Empty,
    /// A state file: `done` of `planned` epochs (equal for a finished run).
    Run {
        /// Epochs completed.
        done: u64,
        /// Epochs the run was asked for.
        planned: u64,
    },
    /// Run files but no readable state (killed before the first checkpoint pair completed, a
    /// full disk between the model and the state, or a deleted or damaged state): nothing to
    /// resume from.
    NoState {
        /// The run files present, for the message.
        files: Vec<String>,
        /// Why the state cannot be used.
        why: String,
    },
}

/// Reads what `dir` holds; only the state's metadata is interpreted.
pub fn inspect(dir: &Path) -> RunStatus {
    let files: Vec<String> = RUN_FILES
        .iter()
        .filter(|f| dir.join(f).exists())
        .map(|f| f.to_string())
        .collect();
    if files.is_empty() {
        return RunStatus::Empty;
    }
    let state = dir.join(STATE_FILE);
    if !state.exists() {
        return RunStatus::NoState {
            files,
            why: format!("there is no {STATE_FILE}"),
        };
    }
    let progress = checkpoint::load(&state)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            let num = |k: &str| c.metadata.get(k).and_then(|v| v.parse::<u64>().ok());
            let planned = super::state::saved_config(&state.display().to_string(), &c)
                .map(|cfg| cfg.epochs)
                .map_err(|e| e.to_string())?;
            let done = num("epoch").ok_or_else(|| "its 'epoch' metadata is missing".to_string())?;
            Ok((done, planned))
        });
    match progress {
        Ok((done, planned)) => RunStatus::Run { done, planned },
        Err(why) => RunStatus::NoState { files, why },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("saliency-runlock-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_held_lock_refuses_and_a_stale_one_is_taken_over() {
        let d = scratch("held");
        let first = RunLock::acquire(&d).unwrap();
        let err = RunLock::acquire(&d).unwrap_err();
        assert!(
            err.contains(&format!("PID {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains(&d.display().to_string()), "{err}");
        drop(first);
        // The folder was created by the lock and is empty again: it is gone.
        assert!(!d.exists());
        // A lock of a process that cannot exist (PID beyond the kernel's maximum).
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(LOCK_FILE), "2147483646\n").unwrap();
        fs::write(d.join(".model.safetensors.tmp-2147483646"), b"half").unwrap();
        let lock = RunLock::acquire(&d).unwrap();
        let pid: u32 = fs::read_to_string(d.join(LOCK_FILE))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(pid, std::process::id());
        assert!(!d.join(".model.safetensors.tmp-2147483646").exists());
        drop(lock);
        // Not created by the lock: the (now empty) folder stays.
        assert!(d.is_dir() && !d.join(LOCK_FILE).exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn status_of_missing_partial_and_stateless_folders() {
        let d = scratch("status");
        assert_eq!(inspect(&d), RunStatus::Empty);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("notes.txt"), "mine").unwrap();
        assert_eq!(inspect(&d), RunStatus::Empty);
        fs::write(d.join(MODEL_FILE), "x").unwrap();
        match inspect(&d) {
            RunStatus::NoState { files, why } => {
                assert_eq!(files, [MODEL_FILE]);
                assert!(why.contains(STATE_FILE), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // An overwrite moves the run aside: the folder counts as empty for the new run.
        let aside = super::super::overwrite::set_aside(&d).unwrap();
        assert_eq!(inspect(&d), RunStatus::Empty);
        drop(aside);
        assert!(d.join("notes.txt").exists());
        fs::remove_dir_all(&d).unwrap();
    }
}
