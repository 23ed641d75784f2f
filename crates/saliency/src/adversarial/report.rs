//! Reporting flip statistics: `summary.json` (written atomically) and a markdown table.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::attack::AttackConfig;
use super::stats::AttackStats;
use super::{AdversarialError, Method};

/// The file name [`write_summary`] writes in its folder.
pub const SUMMARY_FILE: &str = "summary.json";

/// Everything needed to read a set of statistics later: what was attacked, with which settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// The data set, e.g. `fashion-mnist/test`.
    pub dataset: String,
    /// The model, e.g. its checkpoint path or kind.
    pub model: String,
    /// The attack settings (loss, clipping, iterated steps, seed).
    pub config: AttackConfig,
    /// One row per (method, eps).
    pub results: Vec<AttackStats>,
}

/// Writes `summary` as pretty JSON to `dir/summary.json`, atomically (a reader never sees half a
/// file), creating `dir` if needed. Returns the path written.
pub fn write_summary(dir: &Path, summary: &Summary) -> Result<PathBuf, AdversarialError> {
    let path = dir.join(SUMMARY_FILE);
    let io = |source| AdversarialError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut json = serde_json::to_string_pretty(summary).expect("plain data serializes");
    json.push('\n');
    crate::atomic_file::write_atomic(&path, json.as_bytes()).map_err(io)?;
    Ok(path)
}

/// A markdown table of the rows, one per (method, eps), shares in percent.
///
/// Read it as: `flipped` is how often the attack changes the model's decision; compare an attack
/// with its control at the same eps (`random-sign` for `fgsm`, `random-direction` for
/// `normalized-gradient`): a large gap means the gradient direction, not the size of the change,
/// does the damage. `conf. after` staying high while `accuracy` falls means confident mistakes.
pub fn markdown_table(stats: &[AttackStats]) -> String {
    let mut out = String::new();
    out.push_str(
        "| method | eps | n | flipped | accuracy before | accuracy under attack | conf. before | conf. after |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for s in stats {
        let control = match s.method.parse::<Method>() {
            Ok(m) if m.is_control() => " (control)",
            _ => "",
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {}{} | {} | {} | {:.1} % | {:.1} % | {:.1} % | {:.3} | {:.3} |",
            s.method,
            control,
            s.epsilon,
            s.n,
            100.0 * s.flipped_fraction,
            100.0 * s.accuracy_before,
            100.0 * s.accuracy,
            s.mean_confidence_before,
            s.mean_confidence_after
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, eps: f64, flipped: f64) -> AttackStats {
        AttackStats {
            method: method.into(),
            epsilon: eps,
            n: 200,
            flipped_fraction: flipped,
            accuracy_before: 0.9,
            accuracy: 0.4,
            mean_confidence_before: 0.95,
            mean_confidence_after: 0.8,
        }
    }

    #[test]
    fn table_has_one_line_per_row_and_marks_controls() {
        let t = markdown_table(&[row("fgsm", 0.01, 0.5), row("random-sign", 0.01, 0.02)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[2],
            "| fgsm | 0.01 | 200 | 50.0 % | 90.0 % | 40.0 % | 0.950 | 0.800 |"
        );
        assert!(
            lines[3].starts_with("| random-sign (control) | 0.01 |"),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn summary_round_trips_through_the_file() {
        let dir = std::env::temp_dir().join(format!("saliency-adv-summary-{}", std::process::id()));
        let summary = Summary {
            dataset: "toy".into(),
            model: "deep".into(),
            config: AttackConfig::default(),
            results: vec![row("fgsm", 0.01, 0.5)],
        };
        let path = write_summary(&dir, &summary).unwrap();
        let back: Summary = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, summary);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
