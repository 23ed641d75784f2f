//! `saliency adversary`: adversarial examples and their flip statistics for a checkpoint.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::checkpoint_data::{load_with_test_data, parse_indices};
use super::common::DataArgs;
use crate::adversarial::{
    adversarial_figure, attack_stats, flip_rate_plot, markdown_table, write_summary, AttackConfig,
    Method, Summary, Sweep,
};
use crate::atomic_file::write_atomic;
use crate::render::save_png;
use crate::staged_dir::StagedDir;
use tensor::Tensor;

/// Options of `saliency adversary`.
#[derive(Args, Debug)]
pub struct AdversaryArgs {
    /// The checkpoint (model.safetensors of a run).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Methods, comma-separated: fgsm, iterative-fgsm, normalized-gradient, l2-gradient, random,
    /// random-sign, random-direction.
    #[arg(long, value_delimiter = ',', default_value = "fgsm")]
    method: Vec<String>,
    /// Step size for the pictures (default: each method's study default).
    #[arg(long, allow_negative_numbers = true)]
    epsilon: Option<f64>,
    /// Step sizes for the statistics sweep, comma-separated (default: --epsilon, or around each default).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    epsilons: Vec<f64>,
    /// iterative-fgsm: number of steps of eps/k (the study: 200).
    #[arg(long, allow_negative_numbers = true, default_value_t = 200)]
    steps: usize,
    /// Clip perturbed inputs to [0, 1] (the study does not).
    #[arg(long)]
    clip: bool,
    /// Seed of the random controls.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    seed: u64,
    /// Test images drawn as triptychs: A..B or a comma list.
    #[arg(long, default_value = "0..6")]
    indices: String,
    /// Statistics over only the first N test images (default: the whole test set).
    #[arg(long, allow_negative_numbers = true)]
    limit: Option<usize>,
    #[command(flatten)]
    data: DataArgs,
    /// Worker threads, 1 to 1024 (default: all cores); more are refused, as they only add overhead.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) threads: Option<usize>,
    /// Output folder for summary.json, summary.md, flip_rate.svg and triptych PNGs.
    #[arg(long)]
    out: PathBuf,
    /// Also print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// Runs the attacks, the statistics and the pictures.
pub fn run(args: AdversaryArgs) -> anyhow::Result<()> {
    let methods: Vec<Method> = args
        .method
        .iter()
        .map(|m| m.parse::<Method>())
        .collect::<Result<_, _>>()?;
    for &e in args.epsilon.iter().chain(&args.epsilons) {
        if !(e >= 0.0 && e.is_finite()) {
            bail!("--epsilon/--epsilons: expected a non-negative finite step size, found {e}");
        }
    }
    let (model, meta, test) = load_with_test_data(&args.checkpoint, &args.data)?;
    let idx = parse_indices(&args.indices, test.len())?;
    let data = match args.limit {
        Some(0) => bail!("--limit: expected at least 1, found 0"),
        Some(n) => test.take(n),
        None => test.clone(),
    };
    let config = AttackConfig {
        steps: args.steps,
        clip: args.clip,
        seed: args.seed,
        ..AttackConfig::default()
    };
    config.validate()?;
    let sweeps: Vec<Sweep> = methods
        .iter()
        .map(|&m| {
            if !args.epsilons.is_empty() {
                Sweep::new(m, args.epsilons.clone())
            } else if let Some(e) = args.epsilon {
                Sweep::new(m, vec![e])
            } else {
                Sweep::around_default(m)
            }
        })
        .collect();
    // Written whole or not at all: every file goes to a stage beside --out first.
    let stage = StagedDir::new(&args.out)
        .with_context(|| format!("--out: cannot write beside {}", args.out.display()))?;
    let dir = stage.path();
    let stats = attack_stats(&model, &data, &sweeps, &config, &mut |done, total| {
        eprint!("\r  attacked {done}/{total}")
    })?;
    eprintln!();
    let summary = Summary {
        dataset: data.name.clone(),
        model: args.checkpoint.display().to_string(),
        config: config.clone(),
        results: stats.clone(),
    };
    write_summary(dir, &summary)?;
    let table = markdown_table(&stats);
    write_atomic(&dir.join("summary.md"), table.as_bytes())?;
    write_atomic(
        &dir.join("flip_rate.svg"),
        flip_rate_plot(&stats, &format!("{} on {}", meta.model, data.name)).as_bytes(),
    )?;
    let subset = test.subset(&idx, "selected");
    let [c, h, w] = model.input;
    let inputs = Tensor::from_vec(&[idx.len(), c, h, w], subset.images.clone())?;
    let labels: Vec<usize> = subset.labels.iter().map(|&l| l as usize).collect();
    for &m in &methods {
        let eps = args.epsilon.unwrap_or(m.default_epsilon());
        let fig = adversarial_figure(&model, m, &inputs, &labels, eps, &config, &meta.class_names)?;
        save_png(&dir.join(format!("triptych_{}.png", m.name())), &fig)?;
    }
    stage
        .commit(&["summary.md", "summary.json"])
        .with_context(|| format!("--out: cannot move the results into {}", args.out.display()))?;
    println!("{table}");
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    eprintln!(
        "wrote {0}/summary.json, summary.md, flip_rate.svg and triptych PNGs",
        args.out.display()
    );
    Ok(())
}
