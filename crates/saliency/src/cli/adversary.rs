//! `saliency adversary`: adversarial examples, their flip statistics and robust accuracy curves
//! for a checkpoint.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use super::checkpoint_data::{load_with_test_images, parse_indices};
use super::common::DataArgs;
use crate::adversarial::{
    adversarial_figure, attack_stats_detailed, flip_rate_plot, markdown_table,
    robust_accuracy_plot, robust_table, write_summary, AttackConfig, CwConfig, DeepFoolConfig,
    Method, PgdConfig, RobustPoint, Summary, Sweep, TargetClass,
};
use crate::atomic_file::write_atomic;
use crate::data::{CacheBudget, ImageSource, Prefix};
use crate::loss::LossKind;
use crate::render::save_png;
use crate::staged_dir::StagedDir;
use tensor::Tensor;

/// `--method` lists every method with its formula in `--help`.
impl ValueEnum for Method {
    fn value_variants<'a>() -> &'a [Self] {
        &Method::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(self.formula()))
    }
}

/// Options of `saliency adversary`.
#[derive(Args, Debug)]
pub struct AdversaryArgs {
    /// The checkpoint (model.safetensors of a run).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Methods, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "fgsm")]
    method: Vec<Method>,
    /// Step size or budget for the pictures (default: each method's default).
    #[arg(long, allow_negative_numbers = true)]
    epsilon: Option<f64>,
    /// Step sizes or budgets for the statistics sweep, comma-separated (default: --epsilon, or
    /// around each default).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    epsilons: Vec<f64>,
    /// Steps of the iterated attacks: iterative-fgsm (default 200, the study's: steps of eps/k)
    /// and pgd, pgd-l2, pgd-targeted (default 20).
    #[arg(long, allow_negative_numbers = true)]
    steps: Option<usize>,
    /// PGD's step size alpha (default 2.5 eps / steps).
    #[arg(long, allow_negative_numbers = true)]
    step_size: Option<f64>,
    /// PGD: start at the input instead of a seeded random point of the eps-ball.
    #[arg(long)]
    no_random_start: bool,
    /// PGD: runs from different seeded random starts; each image keeps the first run that fools
    /// the model (the first run's result otherwise), so more restarts never succeed on fewer
    /// images.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1)]
    restarts: usize,
    /// Target of fgsm-targeted and pgd-targeted: a class number, or least-likely (each image's
    /// least likely class; the default).
    #[arg(long)]
    target_class: Option<TargetClass>,
    /// DeepFool: most linearization steps per image.
    #[arg(long, allow_negative_numbers = true, default_value_t = 50)]
    deepfool_max_iter: usize,
    /// DeepFool: overshoot past the boundary.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.02)]
    overshoot: f64,
    /// Carlini-Wagner: rounds of the binary search over the constant c.
    #[arg(long, allow_negative_numbers = true, default_value_t = 6)]
    cw_binary_steps: usize,
    /// Carlini-Wagner: Adam steps per round.
    #[arg(long, allow_negative_numbers = true, default_value_t = 100)]
    cw_steps: usize,
    /// Carlini-Wagner: Adam's learning rate.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.01)]
    cw_learning_rate: f64,
    /// Carlini-Wagner: the first c of the search.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.1)]
    cw_initial_c: f64,
    /// Carlini-Wagner: confidence kappa (logit margin past the boundary).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    cw_confidence: f64,
    /// The loss the gradient attacks differentiate: the one the model was trained with. Default:
    /// the `loss` in config.json beside the checkpoint, else cross-entropy.
    #[arg(long, value_parser = loss_kind())]
    loss: Option<LossKind>,
    /// Clip perturbed inputs to [0, 1] for the study's attacks (the study does not; the PGD
    /// family, DeepFool and Carlini-Wagner always stay in [0, 1]).
    #[arg(long)]
    clip: bool,
    /// Seed of the random controls and of PGD's random start.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    seed: u64,
    /// Also write robust accuracy curves: accuracy under each attack per eps, success rate and
    /// mean perturbation norm (robust_accuracy.json, .md and .svg).
    #[arg(long)]
    robust_accuracy: bool,
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
    /// Print the results as one JSON document on standard output (tables go to standard error).
    #[arg(long)]
    json: bool,
}

/// `--loss`: the choices are listed by clap (and in `--help`); the text is parsed by
/// `LossKind`'s own parser.
fn loss_kind() -> impl clap::builder::TypedValueParser<Value = LossKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["cross-entropy", "double-softmax"])
        .try_map(|s| s.parse::<LossKind>())
}

/// What `--json` prints: the summary, with the robust accuracy rows when asked for.
#[derive(serde::Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    robust_accuracy: Option<&'a [RobustPoint]>,
}

/// The loss recorded in the run folder's config.json beside `checkpoint`, if there is one.
fn trained_loss(checkpoint: &Path) -> anyhow::Result<Option<LossKind>> {
    let config = checkpoint
        .parent()
        .unwrap_or(Path::new("."))
        .join("config.json");
    let Ok(text) = std::fs::read_to_string(&config) else {
        return Ok(None);
    };
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON (pass --loss to skip it)", config.display()))?;
    match json.get("loss") {
        None => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .with_context(|| {
                format!(
                    "{}: 'loss' is {v}, expected cross-entropy or double-softmax (pass --loss)",
                    config.display()
                )
            }),
    }
}

impl AdversaryArgs {
    /// The attack settings, each bad option named.
    fn config(&self, loss: LossKind) -> anyhow::Result<AttackConfig> {
        for &e in self.epsilon.iter().chain(&self.epsilons) {
            if !(e >= 0.0 && e.is_finite()) {
                bail!("--epsilon/--epsilons: expected a non-negative finite step size, found {e}");
            }
        }
        if self.steps == Some(0) {
            bail!("--steps: expected at least 1, found 0");
        }
        if self.restarts == 0 {
            bail!("--restarts: expected at least 1 run, found 0");
        }
        if self.restarts > 1 && self.no_random_start {
            bail!(
                "--restarts: expected 1 with --no-random-start (every run would start at the input and be the same run), found {}",
                self.restarts
            );
        }
        if let Some(a) = self.step_size.filter(|a| !(*a >= 0.0 && a.is_finite())) {
            bail!("--step-size: expected a non-negative finite step size, found {a}");
        }
        let counts = [
            ("--deepfool-max-iter", self.deepfool_max_iter),
            ("--cw-binary-steps", self.cw_binary_steps),
            ("--cw-steps", self.cw_steps),
        ];
        for (option, n) in counts {
            if n == 0 {
                bail!("{option}: expected at least 1, found 0");
            }
        }
        let sizes = [
            ("--overshoot", self.overshoot),
            ("--cw-initial-c", self.cw_initial_c),
            ("--cw-confidence", self.cw_confidence),
        ];
        for (option, v) in sizes {
            if !(v >= 0.0 && v.is_finite()) {
                bail!("{option}: expected a non-negative finite number, found {v}");
            }
        }
        if !(self.cw_learning_rate > 0.0 && self.cw_learning_rate.is_finite()) {
            bail!(
                "--cw-learning-rate: expected a positive finite rate, found {}",
                self.cw_learning_rate
            );
        }
        if self.target_class.is_some() && !self.method.iter().any(|m| m.is_targeted()) {
            bail!("--target-class applies to --method fgsm-targeted or pgd-targeted, which were not asked for");
        }
        let defaults = AttackConfig::default();
        let config = AttackConfig {
            loss,
            steps: self.steps.unwrap_or(defaults.steps),
            clip: self.clip,
            seed: self.seed,
            pgd: PgdConfig {
                steps: self.steps.unwrap_or(defaults.pgd.steps),
                step_size: self.step_size,
                random_start: !self.no_random_start,
                restarts: self.restarts,
            },
            target: self.target_class.unwrap_or_default(),
            deepfool: DeepFoolConfig {
                max_iter: self.deepfool_max_iter,
                overshoot: self.overshoot,
            },
            cw: CwConfig {
                binary_steps: self.cw_binary_steps,
                steps: self.cw_steps,
                learning_rate: self.cw_learning_rate,
                initial_c: self.cw_initial_c,
                confidence: self.cw_confidence,
            },
            ..defaults
        };
        config.validate()?;
        Ok(config)
    }
}

/// Runs the attacks, the statistics and the pictures.
pub fn run(args: AdversaryArgs) -> anyhow::Result<()> {
    let methods = args.method.clone();
    // Options are checked before anything is loaded; the loss comes from the run when not given.
    args.config(args.loss.unwrap_or(LossKind::CrossEntropy))?;
    let loss = match args.loss {
        Some(l) => l,
        None => trained_loss(&args.checkpoint)?.unwrap_or(LossKind::CrossEntropy),
    };
    let config = args.config(loss)?;
    // An image folder's split is read a chunk of the attacks at a time, its decoded images cached
    // while a quarter of the available memory has room: never the whole split as floats at once.
    let budget = CacheBudget::from_available_memory();
    let (model, meta, test) = load_with_test_images(&args.checkpoint, &args.data, &budget)?;
    if let Some(TargetClass::Class(k)) = args.target_class {
        if k >= model.classes {
            bail!(
                "--target-class: expected a class below {} ({} has classes {}) or least-likely, found {k}",
                model.classes,
                args.checkpoint.display(),
                meta.class_names.join(",")
            );
        }
    }
    let idx = parse_indices(&args.indices, test.count())?;
    let data = match args.limit {
        Some(0) => bail!("--limit: expected at least 1, found 0"),
        Some(n) => Prefix::new(&test, n),
        None => Prefix::new(&test, test.count()),
    };
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
    // Drawn on standard error, and hidden by indicatif when that is not a terminal.
    let bar = ProgressBar::new(data.count() as u64);
    bar.set_style(
        ProgressStyle::with_template("attacked [{bar:30}] {pos}/{len} images {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let points = attack_stats_detailed(&model, &data, &sweeps, &config, &mut |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    let stats: Vec<_> = points.iter().map(|p| p.stats.clone()).collect();
    let summary = Summary {
        dataset: data.name().to_string(),
        model: args.checkpoint.display().to_string(),
        config: config.clone(),
        results: stats.clone(),
    };
    write_summary(dir, &summary)?;
    let table = markdown_table(&stats);
    write_atomic(&dir.join("summary.md"), table.as_bytes())?;
    let title = format!("{} on {}", meta.model, data.name());
    write_atomic(
        &dir.join("flip_rate.svg"),
        flip_rate_plot(&stats, &title).as_bytes(),
    )?;
    let robust = args.robust_accuracy.then_some(points.as_slice());
    let robust_text = robust.map(robust_table);
    if let (Some(points), Some(text)) = (robust, &robust_text) {
        let doc = Output {
            summary: &summary,
            robust_accuracy: Some(points),
        };
        let mut json = serde_json::to_string_pretty(&doc)?;
        json.push('\n');
        write_atomic(&dir.join("robust_accuracy.json"), json.as_bytes())?;
        write_atomic(&dir.join("robust_accuracy.md"), text.as_bytes())?;
        write_atomic(
            &dir.join("robust_accuracy.svg"),
            robust_accuracy_plot(points, &format!("robust accuracy: {title}")).as_bytes(),
        )?;
    }
    let subset = test.to_dataset(&idx, "selected")?;
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
    // Human text goes to standard error with --json, so standard output is one JSON document.
    let human = format!(
        "{table}{}",
        robust_text
            .map(|t| format!("\nrobust accuracy\n\n{t}"))
            .unwrap_or_default()
    );
    if args.json {
        eprintln!("{human}");
        let doc = Output {
            summary: &summary,
            robust_accuracy: robust,
        };
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        println!("{human}");
    }
    eprintln!(
        "wrote {0}/summary.json, summary.md, flip_rate.svg{1} and triptych PNGs (loss {loss})",
        args.out.display(),
        if args.robust_accuracy {
            ", robust_accuracy.json, .md, .svg"
        } else {
            ""
        }
    );
    Ok(())
}
