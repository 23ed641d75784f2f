//! Output folders written whole or not at all: files are written into a hidden temporary folder
//! beside the target and moved into place only when every one of them is complete.
//!
//! A full disk during `attribute` used to leave `attributions.png` without its `.safetensors`,
//! and `adversary` left `summary.*` without the pictures. With a stage, a failure leaves the
//! target as it was (the stage is removed); a kill leaves only the hidden stage, which the next
//! run of the same command does not read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A temporary folder whose files become the target folder's on [`commit`](Self::commit).
#[derive(Debug)]
pub struct StagedDir {
    target: PathBuf,
    stage: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Creates the stage `.NAME.tmp-PID` beside `target` (creating `target`'s parent if needed).
    pub fn new(target: &Path) -> io::Result<Self> {
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a folder name", target.display()),
            )
        })?;
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stage = parent.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        remove_dead_stages(&parent, &name.to_string_lossy());
        let _ = fs::remove_dir_all(&stage);
        fs::create_dir_all(&stage).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", stage.display()))
        })?;
        Ok(StagedDir {
            target: target.to_path_buf(),
            stage,
            committed: false,
        })
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        &self.stage
    }

    /// Moves the stage's files into the target. A missing or empty target is replaced by the
    /// stage in one rename; otherwise each file is renamed into it (each atomically), with the
    /// files named in `last` moved at the end, so a reader that checks those sees a complete set.
    pub fn commit(mut self, last: &[&str]) -> io::Result<()> {
        let empty = match fs::read_dir(&self.target) {
            Ok(mut rd) => rd.next().is_none(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{}: cannot read: {e}", self.target.display()),
                ))
            }
        };
        let moved = |from: &Path, to: &Path| {
            fs::rename(from, to).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("moving {} to {}: {e}", from.display(), to.display()),
                )
            })
        };
        if empty {
            moved(&self.stage, &self.target)?;
        } else {
            let mut names: Vec<_> = fs::read_dir(&self.stage)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect();
            // Sorted, then the `last` names at the end, in the order given.
            names.sort();
            let rank = |n: &std::ffi::OsStr| last.iter().position(|l| n == *l);
            names.sort_by_key(|n| rank(n));
            for n in names {
                let to = self.target.join(&n);
                if to.is_dir() && self.stage.join(&n).is_dir() {
                    fs::remove_dir_all(&to)?;
                }
                moved(&self.stage.join(&n), &to)?;
            }
            fs::remove_dir(&self.stage)?;
        }
        if let Ok(d) = fs::File::open(self.target.parent().unwrap_or(Path::new("."))) {
            let _ = d.sync_all();
        }
        self.committed = true;
        Ok(())
    }
}

/// Removes the stages of `name` in `parent` whose process is gone (killed before it could commit
/// or clean up), so they do not pile up.
fn remove_dead_stages(parent: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let prefix = format!(".{name}.tmp-");
    for e in entries.filter_map(|e| e.ok()) {
        let file_name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !crate::train::run_folder::pid_alive(pid) && e.path().is_dir() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.stage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("saliency-staged-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn commit_moves_everything_and_a_dropped_stage_leaves_nothing() {
        let d = scratch("commit");
        let target = d.join("out");
        // Dropped without commit: neither the target nor the stage remains.
        {
            let s = StagedDir::new(&target).unwrap();
            fs::write(s.path().join("a.png"), b"a").unwrap();
        }
        assert!(fs::read_dir(&d).unwrap().next().is_none());
        // Into a missing target: one rename.
        let s = StagedDir::new(&target).unwrap();
        fs::write(s.path().join("a.png"), b"a").unwrap();
        fs::write(s.path().join("a.safetensors"), b"b").unwrap();
        s.commit(&["a.safetensors"]).unwrap();
        assert_eq!(fs::read(target.join("a.png")).unwrap(), b"a");
        // Into a folder holding other files: they stay, ours are replaced.
        fs::write(target.join("mine.txt"), b"keep").unwrap();
        let s = StagedDir::new(&target).unwrap();
        fs::write(s.path().join("a.png"), b"new").unwrap();
        s.commit(&[]).unwrap();
        assert_eq!(fs::read(target.join("a.png")).unwrap(), b"new");
        assert_eq!(fs::read(target.join("mine.txt")).unwrap(), b"keep");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out"]);
        // The stage of a process that is gone is removed by the next stage of the same target.
        let dead = d.join(".out.tmp-2147483646");
        fs::create_dir_all(&dead).unwrap();
        fs::write(dead.join("a.png"), b"half").unwrap();
        let s = StagedDir::new(&target).unwrap();
        assert!(!dead.exists());
        drop(s);
        fs::remove_dir_all(&d).unwrap();
    }
}
