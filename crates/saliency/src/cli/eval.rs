//! `saliency eval`: accuracy and loss of a checkpoint on its data set's test split.

use std::path::PathBuf;

use clap::Args;

use super::checkpoint_data::load_with_test_images;
use super::common::DataArgs;
use crate::data::{CacheBudget, Prefix};
use crate::train::evaluate;

/// Options of `saliency eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The checkpoint (model.safetensors of a run).
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Evaluate only the first N test images.
    #[arg(long, allow_negative_numbers = true)]
    limit: Option<usize>,
    /// Print one JSON object (accuracy, loss, n) instead of text.
    #[arg(long)]
    json: bool,
    /// Worker threads, 1 to 1024 (default: all cores); more are refused, as they only add overhead.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) threads: Option<usize>,
}

/// Loads the checkpoint and its data, evaluates, prints.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if args.limit == Some(0) {
        anyhow::bail!("--limit: expected at least 1, found 0");
    }
    // The test split is read a batch at a time (an image folder's files decoded per batch).
    // Each image is read once: the cache only spares decoding it a second time after opening.
    let budget = CacheBudget::from_available_memory();
    let (model, meta, test) = load_with_test_images(&args.checkpoint, &args.data, &budget)?;
    let test = Prefix::new(&test, args.limit.unwrap_or(usize::MAX));
    let ev = evaluate(&model, &test)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "accuracy": ev.accuracy, "loss": ev.loss, "n": ev.n, "model": meta.model.to_string(), "dataset": meta.dataset, "checkpoint": args.checkpoint.display().to_string() })
        );
    } else {
        println!(
            "{}: {} on {} ({} images): accuracy {:.2} %, loss {:.4}",
            args.checkpoint.display(),
            meta.model,
            meta.dataset,
            ev.n,
            100.0 * ev.accuracy,
            ev.loss
        );
    }
    Ok(())
}
