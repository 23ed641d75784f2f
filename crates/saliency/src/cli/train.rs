//! `saliency train`: trains a model with a progress bar and writes the run folder.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::choices::{one_of, LOSSES, MODELS, OPTIMIZERS};
use super::common::DataArgs;
use crate::attribution::{AttributionMovie, MovieOptions, TrainingIntegratedGradients};
use crate::data::{CacheBudget, ImageSource};
use crate::loss::LossKind;
use crate::models::ModelKind;
use crate::staged_dir::StagedDir;
use crate::task::open_noting_skips;
use crate::train::run_folder::{self, RunLock, RunStatus};
use crate::train::state::STATE_FILE;
use crate::train::{
    AdversarialTraining, Augment, OptimizerConfig, RunRecord, TrainConfig, TrainEvent, Trainer,
    TrainingAttack,
};

/// Options of `saliency train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Network.
    #[arg(long, default_value = "deep", value_parser = one_of::<ModelKind>(MODELS))]
    model: ModelKind,
    /// Epochs (the study: 10 on Fashion-MNIST).
    #[arg(long, allow_negative_numbers = true, default_value_t = 10)]
    epochs: u64,
    /// Minibatch size (default: the study's, 16; 20 for alexnet).
    #[arg(long, allow_negative_numbers = true)]
    batch_size: Option<usize>,
    /// Seed for initialization, shuffling, dropout, augmentation and the flowers split.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    seed: u64,
    /// Optimizer (default: the study's, adam; sgd for alexnet).
    #[arg(long, value_parser = one_of::<String>(OPTIMIZERS))]
    optimizer: Option<String>,
    /// Base learning rate (default: 1e-3 for adam, 0.01 for sgd).
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// SGD per-step decay: lr_t = lr / (1 + decay * t) (default 0.3 as the study's alexnet).
    #[arg(long, allow_negative_numbers = true)]
    decay: Option<f64>,
    /// SGD momentum.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.9)]
    momentum: f64,
    /// Learning-rate changes as EPOCH:LR pairs, e.g. 12:3e-4,18:1e-4 (epochs 0-based).
    #[arg(long, value_delimiter = ',')]
    lr_schedule: Vec<String>,
    /// Loss (double-softmax: the study's PyTorch scripts, softmax applied twice).
    #[arg(long, default_value = "cross-entropy", value_parser = one_of::<LossKind>(LOSSES))]
    loss: LossKind,
    /// L2 penalty factor on kernels (default: 5e-4 for alexnet, 0 otherwise).
    #[arg(long, allow_negative_numbers = true)]
    l2: Option<f64>,
    /// Augmentation: random horizontal flips.
    #[arg(long)]
    hflip: bool,
    /// Augmentation: random shifts of up to this many pixels.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    max_shift: usize,
    /// Train on only the first N training images.
    #[arg(long, allow_negative_numbers = true)]
    limit_train: Option<usize>,
    /// Evaluate on only the first N test images.
    #[arg(long, allow_negative_numbers = true)]
    limit_test: Option<usize>,
    /// Hold out N training images (seeded) and evaluate on them instead of the test set.
    #[arg(long, allow_negative_numbers = true)]
    validation: Option<usize>,
    /// Worker threads, 1 to 1024 (default: all cores); more are refused, as they only add overhead.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) threads: Option<usize>,
    /// Run folder for model.safetensors, state.safetensors, config.json, metrics.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint. Refused if the data, classes, split,
    /// settings or outputs (--movie, --integrate-gradients) differ from the run's, or --epochs is
    /// below the epochs done, unless --force.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// With --resume: continue even if the configuration, data or outputs differ.
    #[arg(long, requires = "resume")]
    force: bool,
    /// Start a new run in --out even if it holds a finished or partial run (whose checkpoints,
    /// config.json, metrics.jsonl and integrated gradients are deleted first). Without it (or
    /// --resume), a folder holding a run is refused.
    #[arg(long)]
    overwrite: bool,
    /// Write the attribution movie (gradient x input of the first test images before every
    /// minibatch update) into this folder as attribution.gif.
    #[arg(long)]
    movie: Option<PathBuf>,
    /// With --movie: one frame every K minibatches (frame 0 is the untrained model).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1)]
    movie_every: u64,
    /// With --movie: also keep every frame as a numbered PNG.
    #[arg(long)]
    movie_png: bool,
    /// Save the gradients of the loss w.r.t. the first 16 test images summed over every model
    /// state during training (the study's proposal) into --out.
    #[arg(long)]
    integrate_gradients: bool,
    /// No progress bar (one line per epoch instead).
    #[arg(long)]
    quiet: bool,
    /// Adversarial training (Madry et al.): replace each minibatch by its PGD examples against
    /// the current model (L-infinity, random start).
    #[arg(long)]
    adversarial: Option<TrainingAttack>,
    /// With --adversarial: the L-infinity budget eps.
    #[arg(
        long,
        allow_negative_numbers = true,
        requires = "adversarial",
        default_value_t = 0.1
    )]
    epsilon: f64,
    /// With --adversarial: PGD steps per minibatch.
    #[arg(
        long,
        allow_negative_numbers = true,
        requires = "adversarial",
        default_value_t = 7
    )]
    steps: usize,
    /// With --adversarial: PGD's step size (default 2.5 eps / steps).
    #[arg(long, allow_negative_numbers = true, requires = "adversarial")]
    step_size: Option<f64>,
    /// With --adversarial: share of each minibatch kept clean (0: all replaced, as Madry et al.).
    #[arg(
        long,
        allow_negative_numbers = true,
        requires = "adversarial",
        default_value_t = 0.0
    )]
    clean_fraction: f64,
}

impl TrainArgs {
    fn config(&self) -> anyhow::Result<TrainConfig> {
        let mut c = TrainConfig::study(self.model);
        c.dataset = self.data.name().to_string();
        c.epochs = self.epochs;
        c.seed = self.seed;
        if let Some(b) = self.batch_size {
            c.batch_size = b;
        }
        c.optimizer = match self.optimizer.as_deref() {
            None => c.optimizer,
            Some("adam") => OptimizerConfig::study_adam(),
            Some("sgd") => OptimizerConfig::study_sgd(),
            Some(other) => bail!("--optimizer: expected adam or sgd, found '{other}'"),
        };
        if let Some(lr) = self.lr {
            c.optimizer = c.optimizer.with_lr(lr);
        }
        if let OptimizerConfig::Sgd {
            momentum, decay, ..
        } = &mut c.optimizer
        {
            *momentum = self.momentum;
            if let Some(d) = self.decay {
                if !(d >= 0.0 && d.is_finite()) {
                    bail!("--decay: expected a non-negative number, found {d}");
                }
                *decay = d;
            }
        } else if self.decay.is_some() {
            bail!("--decay applies to --optimizer sgd only");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            bail!(
                "--momentum: expected a number in [0, 1), found {}",
                self.momentum
            );
        }
        for pair in &self.lr_schedule {
            let (e, lr) = pair
                .split_once(':')
                .with_context(|| format!("--lr-schedule: expected EPOCH:LR, found '{pair}'"))?;
            let e: u64 = e
                .trim()
                .parse()
                .with_context(|| format!("--lr-schedule: '{e}' is not an epoch number"))?;
            let lr: f64 = lr
                .trim()
                .parse()
                .with_context(|| format!("--lr-schedule: '{lr}' is not a learning rate"))?;
            c.lr_schedule.push((e, lr));
        }
        c.lr_schedule.sort_by_key(|(e, _)| *e);
        c.loss = self.loss;
        if let Some(l2) = self.l2 {
            c.l2 = l2;
        }
        c.augment = Augment {
            hflip: self.hflip,
            max_shift: self.max_shift,
        };
        c.limit_train = self.limit_train;
        c.limit_test = self.limit_test;
        c.validation = self.validation;
        c.adversarial = self.adversarial.map(|attack| AdversarialTraining {
            attack,
            epsilon: self.epsilon,
            steps: self.steps,
            step_size: self.step_size,
            clean_fraction: self.clean_fraction,
        });
        c.validate().map_err(anyhow::Error::msg)?;
        Ok(c)
    }
}

/// Loads the data, trains, and reports each epoch.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    // The pool was started by `common::on_pool` with --threads, and this runs on it.
    let threads = rayon::current_num_threads();
    let config = args.config()?;
    let spec = args.data.spec(config.seed)?;
    if args.movie_every == 0 {
        bail!("--movie-every: expected at least 1, found 0");
    }
    // Held until the command ends: no other process writes this folder meanwhile, and a run
    // that fails before its first checkpoint removes the folder it created.
    let _lock = RunLock::acquire(&args.out).map_err(anyhow::Error::msg)?;
    let clear_old_run = claim_run_folder(&args, &config)?;
    let started = Instant::now();
    // Chosen by index first (an image folder's split comes from its file names), decoded once
    // `--validation` and the limits have picked the images the run keeps.
    let (mut train, mut test, found) = spec.select().context("loading the data")?;
    if let Some(note) = &found.note {
        eprintln!("note: {note}");
    }
    // One class trains to a meaningless "100 %" and gives a checkpoint eval then refuses.
    if train.class_names().len() < 2 {
        bail!(
            "--data {}: training needs at least 2 classes, found {} ({}); add class folders, or \
             name two or more with --classes",
            config.dataset,
            train.class_names().len(),
            train.class_names().join(",")
        );
    }
    if test.is_empty() {
        bail!(
            "--data {}: the test split is empty (each class needs at least 2 images so one can be \
             held out; found {} images in all)",
            config.dataset,
            train.len()
        );
    }
    if let Some(v) = config.validation {
        if v == 0 || v >= train.len() {
            bail!(
                "--validation: expected between 1 and {} held-out images, found {v}",
                train.len().saturating_sub(1)
            );
        }
        // The held-out images are the last `v` of a seeded permutation; the test set is untouched.
        let order = crate::train::batch::epoch_order(train.len(), config.seed ^ 0x0A11_DA7E, 0);
        let (keep, held) = order.split_at(train.len() - v);
        let (mut keep, mut held) = (keep.to_vec(), held.to_vec());
        keep.sort_unstable();
        held.sort_unstable();
        test = train.subset(&held, "validation");
        train = train.subset(&keep, train.name());
    }
    let [_, height, width] = train.shape();
    let side = height.min(width);
    if config.augment.max_shift >= side {
        bail!(
            "--max-shift: expected fewer pixels than the image side ({side}), found {}",
            config.augment.max_shift
        );
    }
    if let Some(n) = config.limit_train {
        train = train.take(n);
    }
    if let Some(n) = config.limit_test {
        test = test.take(n);
    }
    // An image folder is checked now and decoded a minibatch at a time, its images kept in
    // memory up to a quarter of what is available: a folder of any size trains in bounded memory.
    let budget = CacheBudget::from_available_memory();
    let train = open_noting_skips(train, &budget).context("loading the data")?;
    let test = open_noting_skips(test, &budget).context("loading the data")?;
    crate::task::note_uncached(&[&train, &test], &budget);
    eprintln!(
        "{} on {}: {} training / {} {} images, {} epochs, batch {}, {} thread(s), data loaded in {:.1} s",
        config.model,
        config.dataset,
        train.count(),
        test.count(),
        if config.validation.is_some() { "validation" } else { "test" },
        config.epochs,
        config.batch_size,
        threads,
        started.elapsed().as_secs_f64()
    );
    if let Some(adv) = &config.adversarial {
        eprintln!(
            "adversarial training: each minibatch replaced by PGD-{} (L-infinity eps {}, step {}), {} % kept clean",
            adv.steps,
            adv.epsilon,
            adv.step_size
                .map_or_else(|| "2.5 eps / steps".to_string(), |a| a.to_string()),
            100.0 * adv.clean_fraction
        );
    }
    let record = RunRecord {
        test_fraction: (config.dataset != "fashion-mnist").then_some(spec.test_fraction),
        train_images: train.count(),
        test_images: test.count(),
        movie: args.movie.is_some(),
        integrate_gradients: args.integrate_gradients,
    };
    // Moved aside, not deleted: dropped at the end of this function, it deletes the old run if
    // the new one wrote a checkpoint and puts it back otherwise.
    let _old_run = if clear_old_run {
        Some(crate::train::overwrite::set_aside(&args.out).map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    let mut trainer = if args.resume {
        Trainer::resume(
            config.clone(),
            train.shape(),
            train.class_names().to_vec(),
            &record,
            &args.out,
            args.force,
        )?
    } else {
        let mut t = Trainer::new(config.clone(), train.shape(), train.class_names().to_vec())?;
        t.record = record;
        t
    };
    // The counters are metadata, outside the checkpoint's checksum: a damaged step count used to
    // wrap silently. Without --force the batch size and data are the run's, so every completed
    // epoch took exactly `batches` steps.
    let batches = train.count().div_ceil(config.batch_size) as u64;
    if args.resume && !args.force && Some(trainer.step) != trainer.epoch.checked_mul(batches) {
        bail!(
            "--resume: {}: the metadata says step {} after {} epoch(s), but {} epoch(s) of {batches} \
             minibatches make {} steps; the state is damaged: start again with --overwrite",
            args.out.join(STATE_FILE).display(),
            trainer.step,
            trainer.epoch,
            trainer.epoch,
            trainer.epoch.saturating_mul(batches)
        );
    }
    if trainer.epoch >= config.epochs {
        // Only reached with --force (claim_run_folder refuses fewer epochs than done) or with
        // the epochs the run already finished: training nothing must write nothing.
        eprintln!(
            "{}: {} epoch(s) already done, --epochs {}: nothing to train; nothing was written",
            args.out.display(),
            trainer.epoch,
            config.epochs
        );
        return Ok(());
    }
    // The movie (GIF and --movie-png frames) is drawn into a stage beside its folder and moved
    // in only when training completes: a failed or killed run leaves no partial movie.
    let movie_stage = match &args.movie {
        Some(dir) => Some(
            StagedDir::new(dir)
                .with_context(|| format!("--movie: cannot write beside {}", dir.display()))?,
        ),
        None => None,
    };
    let mut movie = match &movie_stage {
        Some(stage) => {
            let opts = MovieOptions {
                every: args.movie_every,
                png_dir: args.movie_png.then(|| stage.path().join("frames")),
                ..MovieOptions::default()
            };
            // The movie draws at most the first 16 test images: only these are held in memory.
            Some(AttributionMovie::from_dataset(
                &stage.path().join("attribution.gif"),
                &test
                    .first_dataset(16)
                    .context("loading the movie's images")?,
                opts,
            )?)
        }
        None => None,
    };
    let mut integrated = if args.integrate_gradients {
        let n = test.count().min(16);
        let first = test
            .first_dataset(n)
            .context("loading the images for --integrate-gradients")?;
        let [c, h, w] = first.shape;
        let inputs = tensor::Tensor::from_vec(&[n, c, h, w], first.images.clone())?;
        let labels = first.labels.iter().map(|&l| l as usize).collect();
        Some(TrainingIntegratedGradients::new(
            inputs,
            labels,
            config.loss,
            Some(args.out.clone()),
        )?)
    } else {
        None
    };
    let mut hooks: Vec<&mut dyn crate::train::TrainHook> = Vec::new();
    if let Some(m) = movie.as_mut() {
        hooks.push(m);
    }
    if let Some(t) = integrated.as_mut() {
        hooks.push(t);
    }
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(batches)
    };
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut last_epoch = u64::MAX;
    let eval_name = if config.validation.is_some() {
        "validation"
    } else {
        "test"
    };
    let result = trainer.run(&train, &test, Some(&args.out), &mut hooks, &mut |event| match event {
        TrainEvent::Batch(p) => {
            if p.epoch != last_epoch {
                last_epoch = p.epoch;
                bar.reset();
                bar.set_prefix(format!("{}/{}", p.epoch + 1, config.epochs));
            }
            bar.set_position(p.batch as u64);
            bar.set_message(format!("loss {:.4} acc {:.2} % {:.0} img/s", p.loss, 100.0 * p.accuracy, p.images_per_second));
        }
        TrainEvent::Epoch(m) => say(&bar, format!(
            "epoch {:>3}: train loss {:.4} acc {:.2} % | {eval_name} loss {:.4} acc {:.2} % | {:.1} s, {:.0} img/s",
            m.epoch,
            m.train_loss,
            100.0 * m.train_accuracy,
            m.test_loss,
            100.0 * m.test_accuracy,
            m.seconds,
            m.images_per_second
        )),
    });
    bar.finish_and_clear();
    result?;
    drop(hooks);
    drop(movie);
    if let (Some(stage), Some(dir)) = (movie_stage, &args.movie) {
        stage
            .commit(&["attribution.gif"])
            .with_context(|| format!("--movie: cannot move the movie into {}", dir.display()))?;
    }
    eprintln!(
        "wrote {}/model.safetensors, config.json, metrics.jsonl",
        args.out.display()
    );
    Ok(())
}

/// Checks that `--out` may be used as asked: a folder holding a run needs --resume or
/// --overwrite, and --resume needs a state to continue from and at least as many epochs as were
/// done (unless --force). Returns whether the old run must be cleared (--overwrite), which the
/// caller does only once the data has loaded, so a refused new run keeps the old one. Called
/// with the folder locked.
fn claim_run_folder(args: &TrainArgs, config: &TrainConfig) -> anyhow::Result<bool> {
    let out = args.out.display();
    match (run_folder::inspect(&args.out), args.resume) {
        (RunStatus::Empty, false) => {}
        (RunStatus::Empty, true) => bail!(
            "--resume: {out} holds no run to resume (no {STATE_FILE}); start one without --resume"
        ),
        (RunStatus::NoState { files, why }, true) => bail!(
            "--resume: {out} cannot be resumed: {why} (it holds {}), so the run stopped before its \
             first checkpoint was complete or its state was lost; start it again with --overwrite \
             instead of --resume",
            files.join(", ")
        ),
        (RunStatus::Run { done, planned }, true) => {
            if config.epochs < done && !args.force {
                bail!(
                    "--epochs {}: {out} has already trained {done} epoch(s) (of {planned} planned); \
                     pass --epochs {} or more to continue it; nothing was written",
                    config.epochs,
                    done + 1
                );
            }
        }
        (RunStatus::Run { .. } | RunStatus::NoState { .. }, false) if args.overwrite => {
            return Ok(true);
        }
        (RunStatus::Run { done, planned }, false) => {
            bail!(
            "--out: {out} already holds a {} run ({done} of {planned} epochs); pass --resume to \
             continue it or --overwrite to replace it",
            if done >= planned { "finished" } else { "partial" }
        )
        }
        (RunStatus::NoState { files, .. }, false) => bail!(
            "--out: {out} already holds files of a run that never completed a checkpoint ({}); \
             pass --overwrite to replace them",
            files.join(", ")
        ),
    }
    Ok(false)
}

/// Prints above the progress bar, or plainly when the bar is hidden (`--quiet`, no terminal).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}
