//! `saliency evaluate-attribution`: which map to trust. Per method, on test images: deletion and
//! insertion areas, infidelity, max-sensitivity, the completeness error where defined, and
//! optionally the randomization sanity check; written as JSON and a table.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use tensor::Tensor;

use super::attribute_method::MethodSettings;
use super::checkpoint_data::{load_with_test_images, parse_indices};
use super::common::DataArgs;
use crate::attribution::evaluation::mean;
use crate::attribution::{
    evaluate_method, fresh_donor, CurveOptions, EvaluationOptions, InfidelityOptions, Method,
    Replacement, Score, SensitivityOptions, Target,
};
use crate::data::{CacheBudget, ImageSource};
use crate::staged_dir::StagedDir;

/// What removed pixels become in the deletion and insertion curves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReplacementArg {
    /// Zero.
    Black,
    /// The image blurred (Gaussian, sigma = max(1, side / 14) pixels).
    Blur,
    /// The image's mean per channel.
    Mean,
}

/// Options of `saliency evaluate-attribution`.
#[derive(Args, Debug)]
pub struct EvaluateAttributionArgs {
    /// The checkpoint (model.safetensors of a run).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Methods to compare, comma-separated (default: every method).
    #[arg(long, value_enum, value_delimiter = ',')]
    methods: Vec<Method>,
    /// Class to explain: pred, label or a class index.
    #[arg(long, default_value = "pred")]
    target: Target,
    /// Test images: A..B or a comma list.
    #[arg(long, default_value = "0..16")]
    indices: String,
    /// Deletion and insertion: what removed pixels become.
    #[arg(long, value_enum, default_value_t = ReplacementArg::Black)]
    replacement: ReplacementArg,
    /// Deletion and insertion: points on each curve after the start, 1 to the pixel count.
    #[arg(long, allow_negative_numbers = true, default_value_t = 20)]
    curve_steps: usize,
    /// Infidelity and max-sensitivity: perturbations per image, 1 to 10000 (Captum's 10).
    #[arg(long, allow_negative_numbers = true, default_value_t = 10)]
    perturbations: usize,
    /// Infidelity: standard deviation of the Gaussian perturbations, above 0 up to 10.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.1)]
    noise: f64,
    /// Max-sensitivity: perturbations uniform in [-radius, radius], above 0 up to 1 (Captum's 0.02).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.02)]
    radius: f64,
    /// Sampling methods: samples per image (default: each method's own).
    #[arg(long, allow_negative_numbers = true)]
    samples: Option<usize>,
    /// Seed of every random draw (methods and metrics).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also run the cascading randomization sanity check (one attribution per layer per method).
    #[arg(long)]
    sanity: bool,
    #[command(flatten)]
    data: DataArgs,
    /// Worker threads, 1 to 1024 (default: all cores).
    #[arg(long, allow_negative_numbers = true)]
    pub(super) threads: Option<usize>,
    /// Output folder for evaluation.json and evaluation.md.
    #[arg(long)]
    out: PathBuf,
    /// Print the JSON document on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

/// Runs every metric for every method and writes the results.
pub fn run(args: EvaluateAttributionArgs) -> anyhow::Result<()> {
    if !(args.noise.is_finite() && args.noise > 0.0 && args.noise <= 10.0) {
        bail!(
            "--noise: expected a standard deviation above 0 up to 10, found {}",
            args.noise
        );
    }
    if !(args.radius.is_finite() && args.radius > 0.0 && args.radius <= 1.0) {
        bail!(
            "--radius: expected a radius above 0 up to 1, found {}",
            args.radius
        );
    }
    if args.perturbations == 0 || args.perturbations > 10_000 {
        bail!(
            "--perturbations: expected 1 to 10000, found {}",
            args.perturbations
        );
    }
    // Only the picked test images are held, as floats; nothing is cached (they are read once).
    let (model, _meta, test) =
        load_with_test_images(&args.checkpoint, &args.data, &CacheBudget::new(0))?;
    let [c, h, w] = model.input;
    if args.curve_steps == 0 || args.curve_steps > h * w {
        bail!(
            "--curve-steps: expected 1 to the {} pixels, found {}",
            h * w,
            args.curve_steps
        );
    }
    let idx = parse_indices(&args.indices, test.count())?;
    let subset = test.to_dataset(&idx, "selected")?;
    let inputs = Tensor::from_vec(&[idx.len(), c, h, w], subset.images.clone())?;
    let labels: Vec<usize> = subset.labels.iter().map(|&l| l as usize).collect();
    let classes = args.target.resolve(&model, &inputs, Some(&labels))?;
    let methods = if args.methods.is_empty() {
        Method::ALL.to_vec()
    } else {
        args.methods.clone()
    };
    let settings = MethodSettings {
        samples: args.samples,
        seed: args.seed,
        quiet: true,
        ..MethodSettings::default()
    };
    let replacement = match args.replacement {
        ReplacementArg::Black => Replacement::Black,
        ReplacementArg::Blur => Replacement::Blur,
        ReplacementArg::Mean => Replacement::Mean,
    };
    let donor = if args.sanity {
        Some(fresh_donor(&model, args.seed ^ 0x5A5A)?)
    } else {
        None
    };
    let stage = StagedDir::new(&args.out)
        .with_context(|| format!("--out: cannot write beside {}", args.out.display()))?;
    let metrics = EvaluationOptions {
        curves: CurveOptions {
            steps: args.curve_steps,
            replacement,
        },
        infidelity: InfidelityOptions {
            samples: args.perturbations,
            sigma: args.noise,
            seed: args.seed,
        },
        sensitivity: SensitivityOptions {
            samples: args.perturbations,
            radius: args.radius,
            seed: args.seed,
        },
    };
    let mut rows = Vec::new();
    // One step per method, on standard error; indicatif hides it when that is not a terminal,
    // and the lines below still reach a log.
    let bar = indicatif::ProgressBar::new(methods.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "evaluated [{bar:30}] {pos}/{len} methods {elapsed} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    for &method in &methods {
        let started = Instant::now();
        bar.set_message(method.name());
        bar.suspend(|| eprintln!("evaluating {} ...", method.name()));
        let options = settings.options(method, &model)?;
        let e = evaluate_method(
            method,
            &options,
            &model,
            &inputs,
            &classes,
            &metrics,
            donor.as_ref(),
        )?;
        let (curves, infid, sens) = (&e.curves, &e.infidelity, &e.max_sensitivity);
        let completeness = e
            .completeness
            .map(|c| (c.mean_abs_error, c.mean_relative_error, c.score));
        let sanity = e.sanity;
        let seconds = started.elapsed().as_secs_f64();
        rows.push(serde_json::json!({
            "method": method.name(),
            "deletion_area": mean(&curves.deletion_area),
            "insertion_area": mean(&curves.insertion_area),
            "infidelity": mean(infid),
            "max_sensitivity": mean(sens),
            "completeness": completeness.map(|(abs, rel, score)| serde_json::json!({
                "mean_abs_error": abs, "mean_relative_error": rel, "score": score.to_string(),
                "baseline": "black",
            })),
            "sanity": sanity.as_ref().map(|steps| steps.iter().map(|s| serde_json::json!({
                "randomized_down_to": s.layer, "spearman": s.spearman,
            })).collect::<Vec<_>>()),
            "per_image": {
                "deletion_area": curves.deletion_area,
                "insertion_area": curves.insertion_area,
                "infidelity": infid,
                "max_sensitivity": sens,
                "deletion_curve": curves.deletion,
                "insertion_curve": curves.insertion,
            },
            "seconds": seconds,
        }));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let doc = serde_json::json!({
        "checkpoint": args.checkpoint.display().to_string(),
        "target": args.target.to_string(),
        "images": idx,
        "settings": {
            "replacement": format!("{replacement:?}").to_lowercase(),
            "curve_steps": args.curve_steps,
            "curve_score": Score::Probability.to_string(),
            "infidelity": {"perturbations": args.perturbations, "noise_sigma": args.noise,
                           "score": "logit", "normalize": true},
            "max_sensitivity": {"perturbations": args.perturbations, "radius": args.radius,
                                "norm": "frobenius, relative to the map's"},
            "seed": args.seed,
        },
        "methods": rows,
    });
    let table = table(&doc);
    std::fs::write(stage.path().join("evaluation.md"), &table)?;
    std::fs::write(
        stage.path().join("evaluation.json"),
        serde_json::to_string_pretty(&doc)?,
    )?;
    stage
        .commit(&["evaluation.json"])
        .with_context(|| format!("--out: cannot move the results into {}", args.out.display()))?;
    if args.json {
        eprint!("{table}");
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{table}");
    }
    eprintln!(
        "wrote {0}/evaluation.json and {0}/evaluation.md",
        args.out.display()
    );
    Ok(())
}

/// The markdown table of the means.
fn table(doc: &serde_json::Value) -> String {
    let mut s = String::from(
        "| method | deletion area (lower) | insertion area (higher) | infidelity (lower) | \
         max-sensitivity (lower) | completeness error | sanity: Spearman, all layers random | \
         seconds |\n|---|---|---|---|---|---|---|---|\n",
    );
    let num = |v: &serde_json::Value| v.as_f64().map_or("-".into(), |x| format!("{x:.4}"));
    for row in doc["methods"].as_array().into_iter().flatten() {
        let completeness = match row["completeness"].get("mean_relative_error") {
            Some(v) => format!(
                "{:.2e} ({})",
                v.as_f64().unwrap_or(f64::NAN),
                row["completeness"]["score"].as_str().unwrap_or("")
            ),
            None => "-".into(),
        };
        let sanity = row["sanity"]
            .as_array()
            .and_then(|s| s.last())
            .map_or("-".into(), |s| num(&s["spearman"]));
        s.push_str(&format!(
            "| {} | {} | {} | {:.3e} | {} | {} | {} | {:.1} |\n",
            row["method"].as_str().unwrap_or(""),
            num(&row["deletion_area"]),
            num(&row["insertion_area"]),
            row["infidelity"].as_f64().unwrap_or(f64::NAN),
            num(&row["max_sensitivity"]),
            completeness,
            sanity,
            row["seconds"].as_f64().unwrap_or(0.0),
        ));
    }
    s
}
