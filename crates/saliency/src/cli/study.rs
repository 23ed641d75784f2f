//! `saliency study`: the whole study end to end, into a report.

use std::path::PathBuf;

use clap::Args;

use crate::study::{progress, run_study, Profile, StudyConfig};

/// Options of `saliency study`.
#[derive(Args, Debug)]
pub struct StudyArgs {
    /// quick (every section, about 2 minutes on 2 cores) or paper (the study's epochs and sizes).
    #[arg(long, default_value = "quick")]
    profile: Profile,
    /// Output folder: report.md, report.html, figures/, models/, steps/ (rerun to resume).
    #[arg(long, default_value = "out/study")]
    out: PathBuf,
    /// Folder holding the data sets (else $SALIENCY_DATA, ./data, /usr/share/datasets, then the
    /// sample shipped in data/sample).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Seed of every model, split and control.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    seed: u64,
    /// Also train deep on the 17-class Oxford flowers.
    #[arg(long)]
    flowers17: bool,
    /// Never download (the paper profile downloads the full Fashion-MNIST when no copy is found;
    /// the quick profile runs on what is on disk, the shipped sample included).
    #[arg(long)]
    no_download: bool,
    /// Fail, instead of skipping a section, when its data is missing (for CI).
    #[arg(long)]
    strict: bool,
    /// --out holds the results of a study with another profile, seed, data, --flowers17 or
    /// version (its study.json says): delete them and start over. Without it such a folder is
    /// refused; a rerun with the same key reuses the finished steps (and their timings).
    #[arg(long)]
    overwrite: bool,
    /// Worker threads, 1 to 1024 (default: all cores); more are refused, as they only add overhead.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) threads: Option<usize>,
}

/// Runs the study.
pub fn run(args: StudyArgs) -> anyhow::Result<()> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let config = StudyConfig {
        out: args.out,
        profile: args.profile,
        data_dir: args.data_dir,
        seed: args.seed,
        flowers17: args.flowers17,
        allow_download: !args.no_download,
        strict: args.strict,
        command,
        overwrite: args.overwrite,
    };
    // A bar on a terminal; on a log, the same lines the library prints.
    let bar = std::sync::Arc::new(super::study_bar::StudyBar::new());
    progress::with_observer(bar, || run_study(&config))
}
