//! Resumable steps: each step's result is a JSON file; a step whose file exists is skipped.
//!
//! The file holds the result and the seconds the step took, so a rerun that reuses it reports
//! the original time (it used to report 0.0). Which results may be reused at all is decided by
//! the study's key (see [`super::key`]), checked before any step runs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::atomic_file::write_atomic;

/// One step's file: `{"seconds": ..., "result": ...}`.
#[derive(Serialize, Deserialize)]
struct StepFile<R> {
    /// Wall time of the run that computed the result.
    seconds: f64,
    /// The step's result.
    result: R,
}

/// One step's line in the report.
#[derive(Clone, Debug, PartialEq)]
pub struct StepTiming {
    /// Step name.
    pub name: String,
    /// Seconds the step took when it was computed.
    pub seconds: f64,
    /// Whether this invocation reused an earlier run's result.
    pub reused: bool,
}

/// Runs named steps in a study folder, remembering results in `OUT/steps/NAME.json`.
pub struct StepRunner {
    dir: PathBuf,
    /// Every step run or reused, in order, for the report's facts.
    pub timings: Vec<StepTiming>,
}

impl StepRunner {
    /// A runner writing under `out/steps`.
    pub fn new(out: &Path) -> anyhow::Result<Self> {
        let dir = out.join("steps");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create the output folder", dir.display()))?;
        Ok(Self {
            dir,
            timings: Vec::new(),
        })
    }

    /// The result of step `name`: read from its file when a previous run finished it, otherwise
    /// computed by `f` and saved (atomically, so an interrupted step is simply redone).
    pub fn run<R: Serialize + DeserializeOwned>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let path = self.dir.join(format!("{name}.json"));
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(file) = serde_json::from_slice::<StepFile<R>>(&bytes) {
                super::progress::step_finished(name, file.seconds, true);
                self.timings.push(StepTiming {
                    name: name.into(),
                    seconds: file.seconds,
                    reused: true,
                });
                return Ok(file.result);
            }
        }
        super::progress::step_started(name);
        let t = Instant::now();
        let result = f().with_context(|| format!("study step '{name}'"))?;
        let seconds = t.elapsed().as_secs_f64();
        let file = StepFile { seconds, result };
        write_atomic(&path, serde_json::to_string_pretty(&file)?.as_bytes())?;
        super::progress::step_finished(name, seconds, false);
        self.timings.push(StepTiming {
            name: name.into(),
            seconds,
            reused: false,
        });
        Ok(file.result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_step_keeps_its_original_seconds() {
        let out = std::env::temp_dir().join(format!("saliency-steps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut first = StepRunner::new(&out).unwrap();
        let r: u32 = first
            .run("slow", || {
                std::thread::sleep(std::time::Duration::from_millis(60));
                Ok(7)
            })
            .unwrap();
        assert_eq!(r, 7);
        let took = first.timings[0].seconds;
        assert!(took >= 0.05 && !first.timings[0].reused, "{took}");
        let mut second = StepRunner::new(&out).unwrap();
        let r: u32 = second
            .run("slow", || anyhow::bail!("must not rerun"))
            .unwrap();
        assert_eq!(r, 7);
        assert_eq!(
            second.timings,
            [StepTiming {
                name: "slow".into(),
                seconds: took,
                reused: true
            }]
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
}
