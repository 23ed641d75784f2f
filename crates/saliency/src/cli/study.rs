//! `saliency study`: the whole study end to end, into a report.

use std::path::PathBuf;

use clap::Args;

use crate::study::{run_study, Profile, StudyConfig};

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
    #[arg(long, default_value_t = 0)]
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
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(super) threads: Option<usize>,
}

/// Runs the study.
pub fn run(args: StudyArgs) -> anyhow::Result<()> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    run_study(&StudyConfig {
        out: args.out,
        profile: args.profile,
        data_dir: args.data_dir,
        seed: args.seed,
        flowers17: args.flowers17,
        allow_download: !args.no_download,
        strict: args.strict,
        command,
    })
}
