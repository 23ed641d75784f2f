//! `Trainer`: the minibatch loop, with evaluation after each epoch, hooks, checkpoints and resume.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use tensor::Tensor;

use crate::atomic_file::FileGroup;
use crate::checkpoint;
use crate::data::{DataError, ImageSource};
use crate::infer::argmax_rows;
use crate::model_io::{model_checkpoint, ModelMeta};
use crate::models::{mix_seed, Mode, Model, ModelError};

use super::adversarial::adversarial_batch;
use super::batch::{augment, epoch_order, gather};
use super::config::TrainConfig;
use super::diagnose::{
    config_differences, first_non_finite_layer, kept_checkpoint, optimizer_kind,
};
use super::evaluate::{evaluate, EvaluateError};
use super::hook::{TrainHook, TrainState};
use super::metrics_file::{metrics_appended, trim_metrics};
use super::optim::Optimizer;
use super::record::{RunRecord, RECORD_KEY};
use super::state::{
    saved_config, state_checkpoint, state_from_checkpoint, Progress, MODEL_FILE, STATE_FILE,
};
use super::step::{forward_backward, StepTapes};

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, 1-based.
    pub epoch: u64,
    /// Updates applied by the end of the epoch.
    pub step: u64,
    /// Mean training loss over the epoch's minibatches (training mode).
    pub train_loss: f64,
    /// Share of training images classified right while training.
    pub train_accuracy: f64,
    /// Loss on the evaluation set (test, or validation when held out).
    pub test_loss: f64,
    /// Accuracy on the evaluation set.
    pub test_accuracy: f64,
    /// Wall time of the epoch, evaluation included.
    pub seconds: f64,
    /// Training throughput.
    pub images_per_second: f64,
}

/// Live figures for a progress bar, sent after every minibatch.
#[derive(Clone, Copy, Debug)]
pub struct BatchProgress {
    /// Epoch in progress, 0-based.
    pub epoch: u64,
    /// Minibatches done in this epoch.
    pub batch: usize,
    /// Minibatches per epoch.
    pub batches: usize,
    /// Running mean loss this epoch.
    pub loss: f64,
    /// Running accuracy this epoch.
    pub accuracy: f64,
    /// Images per second this epoch.
    pub images_per_second: f64,
}

/// What the progress callback is told.
#[derive(Clone, Debug)]
pub enum TrainEvent {
    /// A minibatch was applied.
    Batch(BatchProgress),
    /// An epoch ended and was evaluated.
    Epoch(EpochMetrics),
}

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The loss, a gradient or a parameter became NaN or infinite. Nothing more is written: the
    /// output folder keeps the checkpoint of the last completed epoch (the model in memory may
    /// already hold the bad update).
    #[error("training stopped at step {} (epoch {}, minibatch {}): {what}; last good checkpoint: {kept}", step + 1, epoch + 1, batch + 1)]
    NonFinite {
        /// Updates completed before the failing one (the failing step is `step + 1`, 1-based).
        step: u64,
        /// Epochs completed before the failing one (0-based index of the failing epoch).
        epoch: u64,
        /// 0-based index of the failing minibatch within its epoch.
        batch: usize,
        /// What is not finite, and where it first appears.
        what: String,
        /// Which checkpoint is left on disk.
        kept: String,
    },
    /// The settings are invalid.
    #[error("{0}")]
    Config(String),
    /// A model error (shapes).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Writing a run file failed.
    #[error("{0}")]
    Output(String),
    /// Generating a minibatch's adversarial examples failed.
    #[error("adversarial training: {0}")]
    Adversarial(#[from] crate::adversarial::AdversarialError),
    /// A hook failed.
    #[error("training hook: {0}")]
    Hook(anyhow::Error),
    /// An image could not be read (a file changed or was deleted since the data was opened).
    /// Boxed: a data error is large and rare, and every step returns this type.
    #[error(transparent)]
    Data(Box<DataError>),
}

impl From<DataError> for TrainError {
    fn from(e: DataError) -> Self {
        TrainError::Data(Box::new(e))
    }
}

impl From<EvaluateError> for TrainError {
    fn from(e: EvaluateError) -> Self {
        match e {
            EvaluateError::Model(e) => TrainError::Model(e),
            EvaluateError::Data(e) => TrainError::Data(Box::new(e)),
        }
    }
}

/// A model, its optimizer and where training stands.
pub struct Trainer {
    /// The model being trained.
    pub model: Model<f32>,
    /// Optimizer state.
    pub optimizer: Optimizer,
    /// Settings.
    pub config: TrainConfig,
    /// Class names, for checkpoints.
    pub class_names: Vec<String>,
    /// Updates applied.
    pub step: u64,
    /// Epochs completed.
    pub epoch: u64,
    /// Data split and outputs, saved with the state for `resume` to check.
    pub record: RunRecord,
}

impl Trainer {
    /// A fresh model for inputs (C, H, W) with these classes, initialized from `config.seed`.
    pub fn new(
        config: TrainConfig,
        input: [usize; 3],
        class_names: Vec<String>,
    ) -> Result<Self, TrainError> {
        config.validate().map_err(TrainError::Config)?;
        let model = config.model.build(input, class_names.len(), config.seed)?;
        let optimizer = Optimizer::new(config.optimizer.clone(), &model.params);
        Ok(Self {
            model,
            optimizer,
            config,
            class_names,
            step: 0,
            epoch: 0,
            record: RunRecord::default(),
        })
    }

    /// Continues the run saved in `dir/state.safetensors`. The saved configuration, classes and
    /// `record` (data split, outputs) must equal the requested ones except for the number of
    /// epochs, unless `force` (then the requested ones win); every difference is named.
    pub fn resume(
        config: TrainConfig,
        input: [usize; 3],
        class_names: Vec<String>,
        record: &RunRecord,
        dir: &Path,
        force: bool,
    ) -> Result<Self, TrainError> {
        config.validate().map_err(TrainError::Config)?;
        let path = dir.join(STATE_FILE);
        let source = path.display().to_string();
        let resume_error = |e: &dyn std::fmt::Display| TrainError::Output(format!("--resume: {e}"));
        let ckpt = checkpoint::load(&path).map_err(|e| resume_error(&e))?;
        // The configuration is compared before any tensor is read, so a changed setting is
        // reported as such rather than as the tensor mismatch it may cause.
        let saved = saved_config(&source, &ckpt).map_err(|e| resume_error(&e))?;
        let mut comparable = saved.clone();
        comparable.epochs = config.epochs;
        let mut items = Vec::new();
        if comparable != config {
            items.push(config_differences(&saved, &config));
        }
        // Classes are compared by name and order: the same count in another order would
        // relabel the model's outputs.
        let saved_classes: Option<Vec<String>> = ckpt
            .metadata
            .get("classes")
            .and_then(|c| serde_json::from_str(c).ok());
        if let Some(old) = saved_classes.filter(|old| *old != class_names) {
            items.push(format!(
                "classes (--classes): saved {}, requested {}",
                old.join(","),
                class_names.join(",")
            ));
        }
        let epochs_done = ckpt
            .metadata
            .get("epoch")
            .and_then(|e| e.parse::<u64>().ok())
            .unwrap_or(0);
        // States written before the record existed carry none; their data is checked through
        // the configuration and the classes only.
        if let Some(text) = ckpt.metadata.get(RECORD_KEY) {
            let old: RunRecord = serde_json::from_str(text).map_err(|e| {
                resume_error(&format!(
                    "{source}: metadata '{RECORD_KEY}' does not parse: {e}"
                ))
            })?;
            items.extend(old.differences(record, epochs_done));
        }
        if !items.is_empty() {
            let diff = items.join("; ");
            if !force {
                return Err(TrainError::Config(format!(
                    "--resume: {source} was written with a different configuration ({diff}); \
                     pass --force to continue with the requested one, or --overwrite to start over"
                )));
            }
            let same_optimizer = std::mem::discriminant(&saved.optimizer)
                == std::mem::discriminant(&config.optimizer);
            if saved.model != config.model || !same_optimizer {
                return Err(TrainError::Config(format!(
                    "--resume --force: {source} holds a {} network trained with {}: --force may \
                     change training settings but not the network or the optimizer kind ({diff})",
                    saved.model,
                    optimizer_kind(&saved.optimizer),
                )));
            }
        }
        let mut t = Self::new(config, input, class_names)?;
        t.record = record.clone();
        let (_, progress) = state_from_checkpoint(&source, &ckpt, &mut t.model, &mut t.optimizer)
            .map_err(|e| resume_error(&e))?;
        t.step = progress.step;
        t.epoch = progress.epoch;
        Ok(t)
    }

    fn meta(&self) -> ModelMeta {
        ModelMeta {
            model: self.config.model,
            dataset: self.config.dataset.clone(),
            input: self.model.input,
            class_names: self.class_names.clone(),
            seed: self.config.seed,
            step: self.step,
            epoch: self.epoch,
        }
    }

    /// Writes `model.safetensors` and `state.safetensors` into `dir`, atomically: both are
    /// written whole before either replaces its file.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let mut group = FileGroup::new();
        self.stage_checkpoints(&mut group, dir)?;
        group
            .commit()
            .map_err(|e| TrainError::Output(e.to_string()))
    }

    /// Writes the model and the state into `group`, to replace `dir`'s files at its commit.
    fn stage_checkpoints(&self, group: &mut FileGroup, dir: &Path) -> Result<(), TrainError> {
        let meta = self.meta();
        let output = |e: crate::checkpoint::CheckpointError| TrainError::Output(e.to_string());
        checkpoint::stage(
            group,
            &dir.join(MODEL_FILE),
            &model_checkpoint(&self.model, &meta),
        )
        .map_err(output)?;
        let mut md = BTreeMap::new();
        md.insert("model".into(), meta.model.to_string());
        md.insert("dataset".into(), meta.dataset.clone());
        md.insert(
            "input_shape".into(),
            format!("{},{},{}", meta.input[0], meta.input[1], meta.input[2]),
        );
        md.insert(
            "classes".into(),
            serde_json::to_string(&meta.class_names).expect("strings serialize"),
        );
        md.insert("seed".into(), meta.seed.to_string());
        md.insert(
            RECORD_KEY.into(),
            serde_json::to_string(&self.record).expect("record serializes"),
        );
        let state = state_checkpoint(
            &self.model,
            &self.optimizer,
            &self.config,
            Progress {
                step: self.step,
                epoch: self.epoch,
            },
            md,
        );
        checkpoint::stage(group, &dir.join(STATE_FILE), &state).map_err(output)
    }

    /// Trains until `config.epochs` epochs are done, evaluating on `eval` after each epoch.
    /// Each minibatch's images are read from `train` when it is assembled (an image folder is
    /// decoded then, through its cache), so only one minibatch of floats is held at a time.
    /// With `out`, writes `config.json` with the first epoch's checkpoint, and after each epoch
    /// appends to `metrics.jsonl` and replaces the checkpoints (all atomically).
    ///
    /// Crash safety: all of an epoch's files are written to temp files first (a full disk then
    /// changes nothing), then each is renamed into place, in the order `metrics.jsonl`,
    /// `model.safetensors`, `state.safetensors`, so after a kill the state is never ahead of the
    /// other two. At the start, `metrics.jsonl` keeps only the lines of the epochs the state
    /// holds (all of them when resuming normally, none for a fresh run), so a resumed run
    /// redoes an interrupted epoch without a duplicate or missing line. A killed writer may leave
    /// a hidden `.NAME.tmp-PID` file; nothing reads those, and they can be deleted.
    pub fn run(
        &mut self,
        train: &dyn ImageSource,
        eval: &dyn ImageSource,
        out: Option<&Path>,
        hooks: &mut [&mut dyn TrainHook],
        progress: &mut dyn FnMut(&TrainEvent),
    ) -> Result<Vec<EpochMetrics>, TrainError> {
        let cfg = self.config.clone();
        if train.count() == 0 {
            return Err(TrainError::Config("no training images".into()));
        }
        if let Some(dir) = out {
            std::fs::create_dir_all(dir).map_err(|e| {
                TrainError::Output(format!(
                    "{}: cannot create the output folder: {e}",
                    dir.display()
                ))
            })?;
            trim_metrics(&dir.join("metrics.jsonl"), self.epoch)?;
        }
        if self.step == 0 {
            for h in hooks.iter_mut() {
                h.observe(&self.model, TrainState { step: 0, epoch: 0 })
                    .map_err(TrainError::Hook)?;
            }
        }
        let mut all = Vec::new();
        let n = train.count();
        let shape = train.shape();
        let batches = n.div_ceil(cfg.batch_size);
        let mut tapes = StepTapes::new();
        while self.epoch < cfg.epochs {
            let started = Instant::now();
            let lr = cfg.lr_for_epoch(self.epoch);
            self.optimizer.config = self.optimizer.config.with_lr(lr);
            let order = epoch_order(n, cfg.seed, self.epoch);
            let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
            for (b, idx) in order.chunks(cfg.batch_size).enumerate() {
                let (mut images, labels) = gather(train, idx)?;
                augment(
                    &mut images,
                    shape,
                    &cfg.augment,
                    mix_seed(cfg.seed, 0xA0_0000_0000 + self.step),
                );
                let [c, h, w] = shape;
                let images =
                    Tensor::from_vec(&[idx.len(), c, h, w], images).expect("gathered length");
                let images = match &cfg.adversarial {
                    Some(adv) => adversarial_batch(
                        &self.model,
                        images,
                        &labels,
                        adv,
                        cfg.loss,
                        cfg.seed,
                        self.step,
                    )?,
                    None => images,
                };
                let mode = Mode::Train {
                    seed: mix_seed(cfg.seed, self.step),
                };
                let step_out =
                    forward_backward(&mut self.model, &mut tapes, images, &labels, mode, cfg.loss)?;
                let loss_v = step_out.loss;
                let non_finite = |what: String| TrainError::NonFinite {
                    step: self.step,
                    epoch: self.epoch,
                    batch: b,
                    what,
                    kept: kept_checkpoint(out, self.epoch),
                };
                let Some(g) = step_out.grads else {
                    let culprit = first_non_finite_layer(&self.model, &step_out.images, mode);
                    return Err(non_finite(format!(
                        "the loss is not finite ({loss_v}); {culprit}"
                    )));
                };
                let updates = step_out.updates;
                let pred = argmax_rows(&step_out.logits, self.model.classes);
                correct += pred.iter().zip(&labels).filter(|(p, y)| p == y).count();
                seen += labels.len();
                loss_sum += loss_v as f64 * labels.len() as f64;
                // The update checks the gradients it reads and the parameters it writes; a
                // failed step ends the run, so the model in memory is not kept either way.
                let check =
                    self.optimizer
                        .step(&mut self.model.params, &g, &self.model.param_info, cfg.l2);
                tapes.recycle(g);
                if let Some(i) = check.non_finite_gradient {
                    return Err(non_finite(format!(
                        "the gradient of {} is not finite (the first parameter, in model \
                         order, with a non-finite gradient)",
                        self.model.param_info[i].name
                    )));
                }
                if let Some(i) = check.non_finite_parameter {
                    return Err(non_finite(format!(
                        "parameter {} is not finite after the update",
                        self.model.param_info[i].name
                    )));
                }
                self.model.apply_running_updates(&updates);
                self.step += 1;
                for h in hooks.iter_mut() {
                    h.observe(
                        &self.model,
                        TrainState {
                            step: self.step,
                            epoch: self.epoch,
                        },
                    )
                    .map_err(TrainError::Hook)?;
                }
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                progress(&TrainEvent::Batch(BatchProgress {
                    epoch: self.epoch,
                    batch: b + 1,
                    batches,
                    loss: loss_sum / seen as f64,
                    accuracy: correct as f64 / seen as f64,
                    images_per_second: seen as f64 / secs,
                }));
            }
            let train_secs = started.elapsed().as_secs_f64().max(1e-9);
            let ev = evaluate(&self.model, eval)?;
            self.epoch += 1;
            let m = EpochMetrics {
                epoch: self.epoch,
                step: self.step,
                train_loss: loss_sum / seen as f64,
                train_accuracy: correct as f64 / seen as f64,
                test_loss: ev.loss,
                test_accuracy: ev.accuracy,
                seconds: started.elapsed().as_secs_f64(),
                images_per_second: seen as f64 / train_secs,
            };
            if let Some(dir) = out {
                // Every file of this checkpoint is written whole before the first is moved in:
                // a full disk leaves the previous checkpoint (or, before the first, nothing).
                let mut group = FileGroup::new();
                let output = |e: std::io::Error| TrainError::Output(e.to_string());
                if all.is_empty() {
                    // Written with the first checkpoint of this invocation, not before: a run
                    // that stops before its first epoch leaves no file claiming a run exists,
                    // and a resume with nothing to train leaves the old one as it was. It records
                    // the SIMD tier the kernels took (tiers may round differently:
                    // docs/architecture.md).
                    let mut json = serde_json::to_value(&cfg).expect("config serializes");
                    json["simd"] = tensor::cpu::tier().name().into();
                    let json = serde_json::to_string_pretty(&json).expect("config serializes");
                    group
                        .stage(&dir.join("config.json"), json.as_bytes())
                        .map_err(output)?;
                }
                if self.epoch == cfg.epochs {
                    // the hooks' files (integrated gradients) land with the last checkpoint or
                    // not at all; staged first, so a crash between renames leaves the previous
                    // state, which a resume with those outputs refuses
                    let state = TrainState {
                        step: self.step,
                        epoch: self.epoch,
                    };
                    for h in hooks.iter_mut() {
                        h.stage_final(&mut group, state).map_err(TrainError::Hook)?;
                    }
                }
                let metrics = dir.join("metrics.jsonl");
                group
                    .stage(&metrics, &metrics_appended(&metrics, &m)?)
                    .map_err(output)?;
                self.stage_checkpoints(&mut group, dir)?;
                group.commit().map_err(output)?;
            }
            progress(&TrainEvent::Epoch(m.clone()));
            all.push(m);
        }
        for h in hooks.iter_mut() {
            h.finish(
                &self.model,
                TrainState {
                    step: self.step,
                    epoch: self.epoch,
                },
            )
            .map_err(TrainError::Hook)?;
        }
        Ok(all)
    }
}
