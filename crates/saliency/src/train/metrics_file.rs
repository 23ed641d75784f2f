//! `metrics.jsonl`, one JSON line per epoch: appending a line and trimming lines past the state.

use std::io::Write;
use std::path::Path;

use super::trainer::{EpochMetrics, TrainError};

/// Drops the lines of `metrics.jsonl` for epochs after `epochs_done` (left by an earlier run in
/// the same folder, or written just before a crash that the state file did not live to record).
/// Lines that do not parse are kept: they are not this function's to judge.
pub(super) fn trim_metrics(path: &Path, epochs_done: u64) -> Result<(), TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(TrainError::Output(format!(
                "{}: cannot read: {e}",
                path.display()
            )))
        }
    };
    let kept: String = text
        .lines()
        .filter(|line| match serde_json::from_str::<EpochMetrics>(line) {
            Ok(m) => m.epoch <= epochs_done,
            Err(_) => true,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    if kept == text {
        return Ok(());
    }
    crate::atomic_file::write_atomic(path, kept.as_bytes())
        .map_err(|e| TrainError::Output(e.to_string()))
}

/// The content of `path` with `m`'s line appended; the caller writes it back whole, atomically,
/// so a crash never leaves half a line.
pub(super) fn metrics_appended(path: &Path, m: &EpochMetrics) -> Result<Vec<u8>, TrainError> {
    let mut bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        // Never start the file over because it could not be read: that would drop its lines.
        Err(e) => {
            return Err(TrainError::Output(format!(
                "{}: cannot read: {e}",
                path.display()
            )))
        }
    };
    writeln!(
        bytes,
        "{}",
        serde_json::to_string(m).expect("metrics serialize")
    )
    .expect("write to a Vec");
    Ok(bytes)
}
