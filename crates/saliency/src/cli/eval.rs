//! `saliency eval`: accuracy and loss of a checkpoint on its data set's test split.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::common::DataArgs;
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
    #[arg(long)]
    limit: Option<usize>,
    /// Print one JSON object (accuracy, loss, n) instead of text.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(super) threads: Option<usize>,
}

/// Loads the checkpoint and its data, evaluates, prints.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let (model, meta) = super::checkpoint_data::load_any(&args.checkpoint, &args.data)?;
    if !["fashion-mnist", "flowers", "flowers17"].contains(&meta.dataset.as_str()) {
        anyhow::bail!(
            "{}: metadata 'dataset': expected fashion-mnist, flowers or flowers17, found '{}'",
            args.checkpoint.display(),
            meta.dataset
        );
    }
    let mut data = args.data.clone();
    data.data = meta.dataset.clone();
    if meta.dataset != "fashion-mnist" && data.classes.is_none() {
        data.classes = Some(meta.class_names.clone());
    }
    data.gray = meta.input[0] == 1 && meta.dataset != "fashion-mnist";
    let (_, test) = data
        .spec(meta.seed)?
        .load()
        .with_context(|| format!("loading the test data for {}", args.checkpoint.display()))?;
    if test.shape != meta.input {
        anyhow::bail!(
            "{}: the model takes inputs {:?} but the data set gives {:?}",
            args.checkpoint.display(),
            meta.input,
            test.shape
        );
    }
    // Labels index the model's outputs: a checkpoint for other classes would read past them.
    if test.class_names != meta.class_names {
        anyhow::bail!(
            "{}: the model's classes are {:?} but {} has classes {:?}",
            args.checkpoint.display(),
            meta.class_names,
            test.name,
            test.class_names
        );
    }
    let test = match args.limit {
        Some(0) => anyhow::bail!("--limit: expected at least 1, found 0"),
        Some(n) => test.take(n),
        None => test,
    };
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
