//! Crash-safe file writing: temp file in the same folder, fsync, rename, fsync the folder.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` so that a reader (or a crash) sees either the old file or the whole
/// new one, never a half-written file.
///
/// The temp file sits in the same folder as `path` because `rename` is only atomic within one
/// file system. Errors name the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut group = FileGroup::new();
    group.stage(path, bytes)?;
    group.commit()
}

/// Files replaced together: each is written whole to a hidden temp file beside its target and
/// fsynced by [`stage`](FileGroup::stage), and only [`commit`](FileGroup::commit) renames them
/// into place, in the order staged.
///
/// A write that fails (a full disk, a file-size limit) therefore leaves every target as it was:
/// all the bytes are on disk before the first rename, and a rename needs no space. Dropping a
/// group without committing removes its temp files. A crash between two renames leaves the
/// earlier targets new and the later ones old, so callers stage in the order that is safe to
/// stop in (a run's state last).
#[derive(Debug, Default)]
pub struct FileGroup {
    /// (temp file, target) of each staged file, in commit order.
    staged: Vec<(PathBuf, PathBuf)>,
}

impl FileGroup {
    /// An empty group.
    pub fn new() -> Self {
        FileGroup::default()
    }

    /// Writes `bytes` to a temp file beside `path` and fsyncs it; `path` is not touched until
    /// `commit`. The error names `path` and removes the temp file.
    pub fn stage(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = temp_path(path)?;
        let result: io::Result<()> = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io::Error::new(
                e.kind(),
                format!("writing {}: {e}", path.display()),
            ));
        }
        self.staged.push((tmp, path.to_path_buf()));
        Ok(())
    }

    /// Renames every staged file onto its target, in the order staged, then fsyncs their
    /// folders. A failed rename stops there, naming the target; the temp files not yet moved are
    /// removed.
    pub fn commit(mut self) -> io::Result<()> {
        let staged = std::mem::take(&mut self.staged);
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (k, (tmp, target)) in staged.iter().enumerate() {
            if let Err(e) = fs::rename(tmp, target) {
                for (later, _) in &staged[k..] {
                    let _ = fs::remove_file(later);
                }
                return Err(io::Error::new(
                    e.kind(),
                    format!("writing {}: {e}", target.display()),
                ));
            }
            let dir = parent_of(target);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        // Persist the renames themselves; not every platform can open a folder, so this is best
        // effort.
        for dir in dirs {
            if let Ok(d) = File::open(&dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for FileGroup {
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// The folder holding `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.NAME.tmp-PID` beside `path`: hidden, and recognised by the run lock's clean-up of files a
/// killed writer left.
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    Ok(parent_of(path).join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("saliency-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.txt");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_group_moves_in_only_on_commit_and_a_dropped_one_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("saliency-group-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.txt"), dir.join("b.txt"));
        write_atomic(&a, b"old a").unwrap();
        let mut group = FileGroup::new();
        group.stage(&a, b"new a").unwrap();
        group.stage(&b, b"new b").unwrap();
        assert_eq!(
            fs::read(&a).unwrap(),
            b"old a",
            "nothing moves before commit"
        );
        assert!(!b.exists());
        drop(group);
        assert_eq!(fs::read(&a).unwrap(), b"old a");
        let names = |d: &Path| -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names(&dir),
            ["a.txt"],
            "a dropped group leaves no temp file"
        );
        let mut group = FileGroup::new();
        group.stage(&a, b"new a").unwrap();
        group.stage(&b, b"new b").unwrap();
        group.commit().unwrap();
        assert_eq!(
            (fs::read(&a).unwrap(), fs::read(&b).unwrap()),
            (b"new a".to_vec(), b"new b".to_vec())
        );
        assert_eq!(names(&dir), ["a.txt", "b.txt"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_folder_names_the_path() {
        let err = write_atomic(Path::new("/nonexistent-dir-saliency/x.bin"), b"x").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-dir-saliency/x.bin"),
            "{err}"
        );
    }
}
