//! Options shared by several subcommands: data selection and thread count.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::choices::{one_of, DATA_SETS, MODELS};
use crate::task::DataSpec;

/// Which data set and where to find it.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Data set (default: fashion-mnist). For a checkpoint's commands (eval, attribute,
    /// adversary) the checkpoint's data set is used and another is refused.
    #[arg(long, value_parser = one_of::<String>(DATA_SETS))]
    pub data: Option<String>,
    /// Folder holding the data sets (else $SALIENCY_DATA, ./data, /usr/share/datasets, then the
    /// sample shipped in data/sample).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Image folders: use only these classes, comma-separated (e.g. a binary pair: roses,tulips).
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<String>>,
    /// Image folders: load as gray instead of RGB.
    #[arg(long)]
    pub gray: bool,
    /// Image folders: share of each class held out as the test split.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Never download Fashion-MNIST: with no full copy on disk, use the shipped sample.
    #[arg(long)]
    pub no_download: bool,
    /// Image folders: skip (and count) files that are not readable images instead of failing.
    #[arg(long)]
    pub lenient: bool,
    /// The architecture of a plain PyTorch state_dict given as --checkpoint (no metadata); it is
    /// taken as trained on --data (with --classes for image folders).
    #[arg(long, value_parser = one_of::<crate::models::ModelKind>(MODELS))]
    pub architecture: Option<crate::models::ModelKind>,
}

impl DataArgs {
    /// The data set's name: --data, else fashion-mnist.
    pub fn name(&self) -> &str {
        self.data.as_deref().unwrap_or("fashion-mnist")
    }

    /// The data specification, checked.
    pub fn spec(&self, split_seed: u64) -> anyhow::Result<DataSpec> {
        let name = self.name();
        if !["fashion-mnist", "flowers", "flowers17"].contains(&name) {
            bail!("--data: expected fashion-mnist, flowers or flowers17, found '{name}'");
        }
        if name == "fashion-mnist" && (self.classes.is_some() || self.gray) {
            bail!("--classes and --gray apply to image folders (flowers, flowers17), not fashion-mnist");
        }
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            bail!(
                "--test-fraction: expected a number between 0 and 1, found {}",
                self.test_fraction
            );
        }
        Ok(DataSpec {
            name: name.to_string(),
            data_dir: self.data_dir.clone(),
            classes: self.classes.clone(),
            gray: self.gray,
            size: 256,
            split_seed,
            test_fraction: self.test_fraction,
            allow_download: !self.no_download,
            strict: !self.lenient,
        })
    }
}

/// Most worker threads `--threads` accepts.
pub const MAX_THREADS: usize = 1024;

/// Sets the number of worker threads for the whole process (0 is refused).
fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if let Some(t) = threads {
        if t == 0 {
            bail!("--threads: expected at least 1, found 0");
        }
        // Thousands of threads on a few cores stall in the pool's spin-and-yield (10000 made no
        // progress in 120 s); no machine this program targets has more than 1024 cores.
        if t > MAX_THREADS {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            bail!(
                "--threads: expected between 1 and {MAX_THREADS} (this machine has {cores} core(s)), \
                 found {t}"
            );
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .context("--threads: could not start the thread pool")?;
    }
    Ok(())
}

/// Starts the global pool (`--threads`, else one thread per core) and runs `command` on one of
/// its workers. Run from the main thread, a command's serial stretches would compete for the
/// cores with the pool's idle workers, which spin and yield for a while before they sleep: on this
/// 2-core machine that cost a `deep` batch-16 training step about a quarter of its speed.
pub fn on_pool<R: Send>(
    threads: Option<usize>,
    command: impl FnOnce() -> anyhow::Result<R> + Send,
) -> anyhow::Result<R> {
    set_threads(threads)?;
    rayon::scope(|_| command())
}
