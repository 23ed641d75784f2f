//! `saliency bench`: times one workload on synthetic data and prints images per second.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

use tensor::cpu::Tier;

use super::choices::{one_of, MODELS, TIERS, WORKLOADS};
use crate::bench::{run as measure, BenchConfig, Workload};
use crate::models::ModelKind;

/// Options of `saliency bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Workload.
    #[arg(long, value_parser = one_of::<Workload>(&WORKLOADS))]
    workload: Workload,
    /// Network (built for Fashion-MNIST, 1x28x28, 10 classes).
    #[arg(long, default_value = "deep", value_parser = one_of::<ModelKind>(MODELS))]
    model: ModelKind,
    /// Images per call (integrated gradients: images, each with --ig-steps path points).
    #[arg(long, allow_negative_numbers = true)]
    batch_size: usize,
    /// Worker threads, 1 to 1024 (default: all cores); more are refused, as they only add overhead.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) threads: Option<usize>,
    /// Timed rounds; the report gives their median, minimum and maximum.
    #[arg(long, allow_negative_numbers = true, default_value_t = 7)]
    rounds: usize,
    /// Untimed calls before the first round.
    #[arg(long, allow_negative_numbers = true, default_value_t = 3)]
    warmup: usize,
    /// Seconds each round lasts (it makes as many calls as fit, at least one).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.5)]
    round_seconds: f64,
    /// Path points for integrated gradients.
    #[arg(long, allow_negative_numbers = true, default_value_t = 50)]
    ig_steps: usize,
    /// A second workload (same model and batch size) timed in rounds alternating with the
    /// first; the report adds its speed and the median per-round ratio, per gradient.
    #[arg(long, value_parser = one_of::<Workload>(&WORKLOADS))]
    against: Option<Workload>,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
    /// SIMD tier to run (default: SALIENCY_SIMD, else the best this CPU has). A tier the CPU
    /// lacks is an error.
    #[arg(long, value_parser = one_of::<Tier>(TIERS))]
    simd: Option<Tier>,
}

/// Runs the measurement and prints it.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !(args.round_seconds >= 0.0 && args.round_seconds.is_finite()) {
        anyhow::bail!(
            "--round-seconds: expected a non-negative number, found {}",
            args.round_seconds
        );
    }
    if let Some(tier) = args.simd {
        tensor::cpu::set_tier(tier).context("--simd")?;
    }
    let config = BenchConfig {
        rounds: args.rounds,
        warmup: args.warmup,
        round_time: Duration::from_secs_f64(args.round_seconds),
        ig_steps: args.ig_steps,
        against: args.against,
        ..BenchConfig::new(args.workload, args.model, args.batch_size)
    };
    let report = measure(&config)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("serializing the report")?
        );
    } else {
        println!("{report}");
    }
    Ok(())
}
