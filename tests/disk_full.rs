//! A full disk leaves every output folder as it was or complete (issue 19: "a killed or
//! disk-full run of any command leaves either its complete previous state or its complete new
//! one").
//!
//! A full disk is simulated without root by a file-size limit: the binary runs under
//! `sh -c 'ulimit -f N; trap "" XFSZ; exec ...'`, so any write past N bytes of one file fails
//! with EFBIG ("File too large") instead of killing the process with SIGXFSZ, as ENOSPC would at
//! that point. For each command the limits are chosen from the sizes of the files an unlimited
//! run writes: zero, and just below each size, so the write of every file fails in turn; a
//! limit above them all must succeed.

mod support;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::*;

/// Runs the binary in `cwd` with files limited to `limit_bytes` (rounded down to the shell's
/// unit), SIGXFSZ ignored.
fn limited<S: AsRef<std::ffi::OsStr>>(
    cwd: &Path,
    unit: u64,
    limit_bytes: u64,
    args: &[S],
) -> Output {
    let script = format!(
        "ulimit -f {}; trap '' XFSZ; exec \"$0\" \"$@\"",
        limit_bytes / unit
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .env_remove("SALIENCY_DATA")
        .output()
        .expect("sh runs")
}

/// The unit of `ulimit -f` in bytes (512 in POSIX shells), measured by writing 3000 bytes under
/// a limit of 1; `None` when `sh` or its `ulimit -f` is missing.
fn ulimit_unit(dir: &Path) -> Option<u64> {
    let probe = dir.join("probe");
    let script = "ulimit -f 1 || exit 3; trap '' XFSZ; head -c 3000 /dev/zero > \"$0\"";
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&probe)
        .output()
        .ok()?;
    if out.status.code() == Some(3) {
        return None;
    }
    let size = std::fs::metadata(&probe).ok()?.len();
    std::fs::remove_file(&probe).ok()?;
    [512, 1024].contains(&size).then_some(size)
}

/// Every file under `dir` (hidden ones too) with its bytes, by path relative to `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.map(|e| e.unwrap()) {
            let path = e.path();
            if path.is_dir() {
                out.insert(path.strip_prefix(root).unwrap().join(""), Vec::new());
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(root).unwrap().to_path_buf(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Two snapshots hold the same files with the same bytes; the message lists names and sizes.
fn assert_same_files(
    found: &BTreeMap<PathBuf, Vec<u8>>,
    expected: &BTreeMap<PathBuf, Vec<u8>>,
    what: &str,
) {
    if found != expected {
        let list = |m: &BTreeMap<PathBuf, Vec<u8>>| {
            m.iter()
                .map(|(p, b)| format!("{} ({} bytes)", p.display(), b.len()))
                .collect::<Vec<_>>()
        };
        panic!(
            "{what}:\n found    {:?}\n expected {:?}",
            list(found),
            list(expected)
        );
    }
}

/// The limits to try for outputs of these sizes: 0, one byte-unit below each size, and one
/// above the largest (which must succeed), deduplicated in units.
fn limits(unit: u64, sizes: &[u64]) -> (Vec<u64>, u64) {
    let mut below: Vec<u64> = std::iter::once(0)
        .chain(sizes.iter().map(|&s| (s - 1) / unit * unit))
        .collect();
    below.sort_unstable();
    below.dedup();
    let above = (sizes.iter().max().unwrap() / unit + 2) * unit;
    (below, above)
}

/// The sizes of the files under `dir` (recursively).
fn sizes(dir: &Path) -> Vec<u64> {
    snapshot(dir)
        .values()
        .map(|b| b.len() as u64)
        .filter(|&n| n > 0)
        .collect()
}

/// A run refused by the limit: exit 1, no crash, the error says "File too large" and names one
/// of `files` (an output larger than the limit).
fn assert_full_disk_error(out: &Output, limit: u64, files: &BTreeMap<PathBuf, Vec<u8>>) {
    let stderr = assert_refused(out, &["File too large"]);
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line (limit {limit}):\n{stderr}"));
    let over: Vec<&str> = files
        .iter()
        .filter(|(_, bytes)| bytes.len() as u64 > limit)
        .filter_map(|(path, _)| path.file_name()?.to_str())
        .collect();
    // The lock file holds a PID of a few bytes: only a limit of 0 stops it.
    let named = over.iter().any(|name| error.contains(name))
        || (limit == 0 && error.contains(".saliency.lock"));
    assert!(
        named,
        "limit {limit}: the error names none of the outputs over the limit {over:?}: {error}"
    );
}

/// No `.NAME.tmp-PID` file or folder anywhere under `dir`.
fn assert_no_temp_leftovers(dir: &Path, limit: u64) {
    let temps: Vec<PathBuf> = snapshot(dir)
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "limit {limit}: temp leftovers {temps:?}");
}

/// The common setup: a tiny Fashion-MNIST copy and the `ulimit -f` unit.
fn setup(tag: &str) -> (Scratch, u64) {
    let s = Scratch::new(tag);
    write_fashion(&s.0);
    let unit = ulimit_unit(&s.0)
        .expect("sh with ulimit -f (a file-size limit simulates the full disk), as on every Unix");
    (s, unit)
}

#[test]
#[cfg_attr(not(unix), ignore = "needs sh with ulimit -f to simulate a full disk")]
fn train_under_a_full_disk_writes_its_first_checkpoint_whole_or_nothing() {
    let (s, unit) = setup("full-train");
    let reference = s.join("reference");
    assert_ok(&saliency(&s.0, &train_args(&s.0, &reference, &[])));
    let files = snapshot(&reference);
    let (below, above) = limits(unit, &sizes(&reference));
    for &limit in &below {
        let out = s.join(&format!("run-{limit}"));
        let run = limited(&s.0, unit, limit, &train_args(&s.0, &out, &[]));
        assert_full_disk_error(&run, limit, &files);
        assert!(
            !out.exists(),
            "limit {limit}: a failed first checkpoint leaves no folder, found {:?}",
            snapshot(&out).keys().collect::<Vec<_>>()
        );
        assert_no_temp_leftovers(&s.0, limit);
    }
    let out = s.join("run-enough");
    assert_ok(&limited(&s.0, unit, above, &train_args(&s.0, &out, &[])));
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        std::fs::read(reference.join("model.safetensors")).unwrap(),
        "the limit itself changes nothing"
    );
}

#[test]
#[cfg_attr(not(unix), ignore = "needs sh with ulimit -f to simulate a full disk")]
fn a_resumed_train_under_a_full_disk_keeps_the_previous_checkpoint_and_resumes_after() {
    let (s, unit) = setup("full-resume");
    let straight = s.join("straight");
    assert_ok(&saliency(
        &s.0,
        &train_args(&s.0, &straight, &["--epochs", "2"]),
    ));
    let first = s.join("first");
    assert_ok(&saliency(&s.0, &train_args(&s.0, &first, &[])));
    let before = snapshot(&first);
    let resume = |out: &Path| train_args(&s.0, out, &["--resume", "--epochs", "2"]);
    let (below, _) = limits(unit, &sizes(&straight));
    for &limit in &below {
        let out = s.join(&format!("run-{limit}"));
        copy_dir(&first, &out);
        let run = limited(&s.0, unit, limit, &resume(&out));
        assert_full_disk_error(&run, limit, &snapshot(&straight));
        assert_same_files(
            &snapshot(&out),
            &before,
            &format!("limit {limit}: the run folder is not its complete previous state"),
        );
        assert_no_temp_leftovers(&s.0, limit);
    }
    // The last folder still resumes, to the result of an uninterrupted run.
    let out = s.join(&format!("run-{}", below.last().unwrap()));
    assert_ok(&saliency(&s.0, &resume(&out)));
    for file in ["model.safetensors", "state.safetensors"] {
        assert_eq!(
            std::fs::read(out.join(file)).unwrap(),
            std::fs::read(straight.join(file)).unwrap(),
            "{file} after the resume"
        );
    }
}

#[test]
#[cfg_attr(not(unix), ignore = "needs sh with ulimit -f to simulate a full disk")]
fn an_overwrite_under_a_full_disk_keeps_the_old_run_until_the_new_one_has_a_checkpoint() {
    let (s, unit) = setup("full-overwrite");
    let old = s.join("old");
    assert_ok(&saliency(&s.0, &train_args(&s.0, &old, &[])));
    let before = snapshot(&old);
    // The new run differs from the old one (another seed), so a mix of the two would show.
    let overwrite = |out: &Path| train_args(&s.0, out, &["--overwrite", "--seed", "9"]);
    let fresh = s.join("fresh");
    assert_ok(&saliency(&s.0, &train_args(&s.0, &fresh, &["--seed", "9"])));
    let (below, above) = limits(unit, &sizes(&fresh));
    for &limit in &below {
        let out = s.join(&format!("run-{limit}"));
        copy_dir(&old, &out);
        let run = limited(&s.0, unit, limit, &overwrite(&out));
        assert_full_disk_error(&run, limit, &snapshot(&fresh));
        assert_same_files(
            &snapshot(&out),
            &before,
            &format!("limit {limit}: a failed overwrite must leave the old run whole"),
        );
        assert!(!out.join(".overwritten").exists(), "limit {limit}");
        assert_no_temp_leftovers(&s.0, limit);
    }
    // With room, the overwrite replaces the old run by the new one, and nothing is left aside.
    let out = s.join("run-enough");
    copy_dir(&old, &out);
    assert_ok(&limited(&s.0, unit, above, &overwrite(&out)));
    assert!(!out.join(".overwritten").exists());
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        std::fs::read(fresh.join("model.safetensors")).unwrap()
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().map(|e| e.unwrap()) {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// `attribute` or `adversary` on a checkpoint of the tiny data, into `out`, on `indices`.
fn result_args(
    command: &str,
    ckpt: &Path,
    data: &Path,
    indices: &str,
    out: &Path,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        command.into(),
        "--checkpoint".into(),
        ckpt.into(),
        "--indices".into(),
        indices.into(),
        "--data-dir".into(),
        data.into(),
        "--no-download".into(),
        "--threads".into(),
        "1".into(),
        "--out".into(),
        out.into(),
    ];
    if command == "adversary" {
        args.extend(["--limit".into(), "4".into()]);
    }
    args
}

/// For `attribute` and `adversary`: a fresh output folder is complete or absent, and a folder
/// holding an earlier result keeps exactly that result.
fn results_under_a_full_disk(command: &str) {
    let (s, unit) = setup(&format!("full-{command}"));
    let run = s.join("run");
    assert_ok(&saliency(&s.0, &train_args(&s.0, &run, &[])));
    let ckpt = run.join("model.safetensors");
    let reference = s.join("reference");
    assert_ok(&saliency(
        &s.0,
        &result_args(command, &ckpt, &s.0, "0..2", &reference),
    ));
    let files = snapshot(&reference);
    let earlier = s.join("earlier");
    assert_ok(&saliency(
        &s.0,
        &result_args(command, &ckpt, &s.0, "2..4", &earlier),
    ));
    let before = snapshot(&earlier);
    let (below, above) = limits(unit, &sizes(&reference));
    for &limit in &below {
        let fresh = s.join(&format!("fresh-{limit}"));
        let args = result_args(command, &ckpt, &s.0, "0..2", &fresh);
        assert_full_disk_error(&limited(&s.0, unit, limit, &args), limit, &files);
        assert!(
            !fresh.exists() || snapshot(&fresh).is_empty(),
            "{command}, limit {limit}: partial results {:?}",
            snapshot(&fresh).keys().collect::<Vec<_>>()
        );
        let args = result_args(command, &ckpt, &s.0, "0..2", &earlier);
        assert_full_disk_error(&limited(&s.0, unit, limit, &args), limit, &files);
        assert_same_files(
            &snapshot(&earlier),
            &before,
            &format!("{command}, limit {limit}: the earlier results were not kept whole"),
        );
        assert_no_temp_leftovers(&s.0, limit);
    }
    let enough = s.join("enough");
    let args = result_args(command, &ckpt, &s.0, "0..2", &enough);
    assert_ok(&limited(&s.0, unit, above, &args));
    assert_same_files(
        &snapshot(&enough),
        &files,
        "the limit itself changes nothing",
    );
}

#[test]
#[cfg_attr(not(unix), ignore = "needs sh with ulimit -f to simulate a full disk")]
fn attribute_under_a_full_disk_writes_its_results_whole_or_not_at_all() {
    results_under_a_full_disk("attribute");
}

#[test]
#[cfg_attr(not(unix), ignore = "needs sh with ulimit -f to simulate a full disk")]
fn adversary_under_a_full_disk_writes_its_results_whole_or_not_at_all() {
    results_under_a_full_disk("adversary");
}

/// The study in its tiny profile: a full disk stops it with an error naming the file; every file
/// it leaves is whole (byte-identical to an unlimited run's, the step records apart, which hold
/// timings), no temp file is left, and a rerun finishes the study with the same models.
#[test]
#[cfg_attr(not(unix), ignore = "needs sh with ulimit -f to simulate a full disk")]
fn the_study_under_a_full_disk_leaves_whole_files_and_finishes_on_a_rerun() {
    let (s, unit) = setup("full-study");
    let data = env!("SALIENCY_TEST_DATA");
    let study = |out: &str| -> Vec<String> {
        [
            "study",
            "--profile",
            "tiny",
            "--out",
            out,
            "--data-dir",
            data,
        ]
        .iter()
        .chain(&["--no-download", "--threads", "2"])
        .map(|a| a.to_string())
        .collect()
    };
    assert_ok(&saliency(&s.0, &study("reference")));
    let reference = snapshot(&s.join("reference"));
    // The step records, the training metrics and the report hold wall times; the key holds
    // the folder's name.
    let timed = |p: &Path| {
        p.starts_with("steps")
            || p.starts_with("study.json")
            || p.starts_with("report.")
            || p.ends_with("metrics.jsonl")
    };
    let mut sizes: Vec<u64> = reference.values().map(|b| b.len() as u64).collect();
    sizes.sort_unstable();
    // No file at all; the median file, stopping early; the largest, stopping late.
    let limits = [
        0,
        (sizes[sizes.len() / 2] - 1) / unit * unit,
        (sizes[sizes.len() - 1] - 1) / unit * unit,
    ];
    for limit in limits {
        let name = format!("limited-{limit}");
        let out = s.join(&name);
        assert_full_disk_error(
            &limited(&s.0, unit, limit, &study(&name)),
            limit,
            &reference,
        );
        assert_no_temp_leftovers(&s.0, limit);
        for (path, bytes) in snapshot(&out) {
            if path.as_os_str().to_string_lossy().ends_with('/') {
                continue;
            }
            if timed(&path) {
                // Whole JSON (a .jsonl file: whole lines of it).
                let text = String::from_utf8(bytes).unwrap();
                let docs: Vec<&str> = match path.extension().and_then(|e| e.to_str()) {
                    Some("json") => vec![&text],
                    Some("jsonl") => text.lines().collect(),
                    _ => vec![],
                };
                for doc in docs {
                    serde_json::from_str::<serde_json::Value>(doc).unwrap_or_else(|e| {
                        panic!("limit {limit}: {} is not whole JSON: {e}", path.display())
                    });
                }
                continue;
            }
            assert!(
                reference.get(&path) == Some(&bytes),
                "limit {limit}: {} is not the file an unlimited run writes ({} bytes)",
                path.display(),
                bytes.len()
            );
        }
    }
    let last = format!("limited-{}", limits[2]);
    assert_ok(&saliency(&s.0, &study(&last)));
    let finished = snapshot(&s.join(&last));
    for (path, bytes) in &reference {
        if path.starts_with("models") && !timed(path) {
            assert!(
                finished.get(path) == Some(bytes),
                "{} differs after the rerun",
                path.display()
            );
        }
    }
}
