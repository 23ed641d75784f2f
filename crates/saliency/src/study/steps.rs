//! Resumable steps: each step's result is a JSON file; a step whose file exists is skipped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::{de::DeserializeOwned, Serialize};

use crate::atomic_file::write_atomic;

/// Runs named steps in a study folder, remembering results in `OUT/steps/NAME.json`.
pub struct StepRunner {
    dir: PathBuf,
    /// (name, seconds, skipped) for the report's facts.
    pub timings: Vec<(String, f64, bool)>,
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
            if let Ok(r) = serde_json::from_slice::<R>(&bytes) {
                eprintln!("[{name}] done in an earlier run, skipped");
                self.timings.push((name.into(), 0.0, true));
                return Ok(r);
            }
        }
        eprintln!("[{name}] ...");
        let t = Instant::now();
        let r = f().with_context(|| format!("study step '{name}'"))?;
        write_atomic(&path, serde_json::to_string_pretty(&r)?.as_bytes())?;
        let secs = t.elapsed().as_secs_f64();
        eprintln!("[{name}] done in {secs:.1} s");
        self.timings.push((name.into(), secs, false));
        Ok(r)
    }
}
