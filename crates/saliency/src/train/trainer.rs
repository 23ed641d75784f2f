//! `Trainer`: the minibatch loop, with evaluation after each epoch, hooks, checkpoints and resume.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tape::Tape;
use tensor::Tensor;

use crate::checkpoint;
use crate::data::Dataset;
use crate::infer::argmax_rows;
use crate::loss::mean_loss;
use crate::model_io::{save_model, ModelMeta};
use crate::models::{mix_seed, Mode, Model, ModelError};

use super::batch::{augment, epoch_order, gather};
use super::config::TrainConfig;
use super::evaluate::evaluate;
use super::hook::{TrainHook, TrainState};
use super::optim::{Optimizer, OptimizerConfig};
use super::state::{
    save_state, saved_config, state_from_checkpoint, Progress, MODEL_FILE, STATE_FILE,
};

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
    /// A hook failed.
    #[error("training hook: {0}")]
    Hook(anyhow::Error),
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
        })
    }

    /// Continues the run saved in `dir/state.safetensors`. The saved configuration must equal
    /// `config` except for the number of epochs, unless `force` (then `config` wins).
    pub fn resume(
        config: TrainConfig,
        input: [usize; 3],
        class_names: Vec<String>,
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
        if comparable != config {
            let diff = config_differences(&saved, &config);
            if !force {
                return Err(TrainError::Config(format!(
                    "--resume: {source} was written with a different configuration ({diff}); \
                     pass --force to continue with the requested one"
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

    /// Writes `model.safetensors` and `state.safetensors` into `dir`, atomically.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let meta = self.meta();
        save_model(&dir.join(MODEL_FILE), &self.model, &meta)
            .map_err(|e| TrainError::Output(e.to_string()))?;
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
        save_state(
            &dir.join(STATE_FILE),
            &self.model,
            &self.optimizer,
            &self.config,
            Progress {
                step: self.step,
                epoch: self.epoch,
            },
            md,
        )
        .map_err(|e| TrainError::Output(e.to_string()))
    }

    /// Trains until `config.epochs` epochs are done, evaluating on `eval` after each epoch.
    /// With `out`, writes `config.json` once, and after each epoch appends to `metrics.jsonl`
    /// and replaces the checkpoints (all atomically).
    ///
    /// Crash safety: each file is replaced atomically, in the order `metrics.jsonl`,
    /// `model.safetensors`, `state.safetensors`, so after a kill the state is never ahead of the
    /// other two. At the start, `metrics.jsonl` keeps only the lines of the epochs the state
    /// holds (all of them when resuming normally, none for a fresh run), so a resumed run
    /// redoes an interrupted epoch without a duplicate or missing line. A killed writer may leave
    /// a hidden `.NAME.tmp-PID` file; nothing reads those, and they can be deleted.
    pub fn run(
        &mut self,
        train: &Dataset,
        eval: &Dataset,
        out: Option<&Path>,
        hooks: &mut [&mut dyn TrainHook],
        progress: &mut dyn FnMut(&TrainEvent),
    ) -> Result<Vec<EpochMetrics>, TrainError> {
        let cfg = self.config.clone();
        if train.is_empty() {
            return Err(TrainError::Config("no training images".into()));
        }
        if let Some(dir) = out {
            std::fs::create_dir_all(dir).map_err(|e| {
                TrainError::Output(format!(
                    "{}: cannot create the output folder: {e}",
                    dir.display()
                ))
            })?;
            let json = serde_json::to_string_pretty(&cfg).expect("config serializes");
            crate::atomic_file::write_atomic(&dir.join("config.json"), json.as_bytes())
                .map_err(|e| TrainError::Output(e.to_string()))?;
            trim_metrics(&dir.join("metrics.jsonl"), self.epoch)?;
        }
        if self.step == 0 {
            for h in hooks.iter_mut() {
                h.observe(&self.model, TrainState { step: 0, epoch: 0 })
                    .map_err(TrainError::Hook)?;
            }
        }
        let mut all = Vec::new();
        let n = train.len();
        let batches = n.div_ceil(cfg.batch_size);
        let mut tape = Tape::new();
        while self.epoch < cfg.epochs {
            let started = Instant::now();
            let lr = cfg.lr_for_epoch(self.epoch);
            self.optimizer.config = self.optimizer.config.with_lr(lr);
            let order = epoch_order(n, cfg.seed, self.epoch);
            let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
            for (b, idx) in order.chunks(cfg.batch_size).enumerate() {
                let (mut images, labels) = gather(train, idx);
                augment(
                    &mut images,
                    train.shape,
                    &cfg.augment,
                    mix_seed(cfg.seed, 0xA0_0000_0000 + self.step),
                );
                tape.clear();
                let params = self.model.bind(&mut tape, true);
                let [c, h, w] = train.shape;
                let x = tape.constant(
                    Tensor::from_vec(&[idx.len(), c, h, w], images).expect("gathered length"),
                );
                let (logits, updates) = self.model.forward(
                    &mut tape,
                    x,
                    &params,
                    Mode::Train {
                        seed: mix_seed(cfg.seed, self.step),
                    },
                )?;
                let loss =
                    mean_loss(&mut tape, logits, &labels, cfg.loss).map_err(ModelError::from)?;
                let loss_v = tape.value(loss).data()[0];
                let non_finite = |what: String| TrainError::NonFinite {
                    step: self.step,
                    epoch: self.epoch,
                    batch: b,
                    what,
                    kept: kept_checkpoint(out, self.epoch),
                };
                if !loss_v.is_finite() {
                    let mode = Mode::Train {
                        seed: mix_seed(cfg.seed, self.step),
                    };
                    let culprit = first_non_finite_layer(&self.model, tape.value(x), mode);
                    return Err(non_finite(format!("the loss is not finite ({loss_v}); {culprit}")));
                }
                let grads = tape.backward(loss).map_err(ModelError::from)?;
                let mut g = Vec::with_capacity(params.len());
                for (i, &p) in params.iter().enumerate() {
                    let gi = grads
                        .get(p)
                        .cloned()
                        .unwrap_or_else(|| Tensor::zeros(self.model.params[i].shape()));
                    if !gi.all_finite() {
                        return Err(non_finite(format!(
                            "the gradient of {} is not finite (the first parameter, in model order, with a non-finite gradient)",
                            self.model.param_info[i].name
                        )));
                    }
                    g.push(gi);
                }
                let pred = argmax_rows(tape.value(logits).data(), self.model.classes);
                correct += pred.iter().zip(&labels).filter(|(p, y)| p == y).count();
                seen += labels.len();
                loss_sum += loss_v as f64 * labels.len() as f64;
                self.optimizer
                    .step(&mut self.model.params, &g, &self.model.param_info, cfg.l2);
                self.model.apply_running_updates(&updates);
                if let Some((i, _)) = self
                    .model
                    .params
                    .iter()
                    .enumerate()
                    .find(|(_, p)| !p.all_finite())
                {
                    return Err(non_finite(format!(
                        "parameter {} is not finite after the update",
                        self.model.param_info[i].name
                    )));
                }
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
                append_metrics(&dir.join("metrics.jsonl"), &m)?;
                self.save(dir)?;
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

/// The settings that differ between a saved and a requested configuration (epochs aside), as
/// `name: saved A, requested B` items.
fn config_differences(saved: &TrainConfig, requested: &TrainConfig) -> String {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(saved), serde_json::to_value(requested))
    else {
        return "the settings differ".into();
    };
    let mut items = Vec::new();
    for (key, new) in b.iter().filter(|(key, _)| key.as_str() != "epochs") {
        let old = a.get(key.as_str()).unwrap_or(&serde_json::Value::Null);
        match (old, new) {
            // One level down, so `optimizer.lr` is named rather than the whole optimizer.
            (serde_json::Value::Object(o), serde_json::Value::Object(n)) => {
                for (sub, nv) in n {
                    let ov = o.get(sub.as_str()).unwrap_or(&serde_json::Value::Null);
                    if ov != nv {
                        items.push(format!("{key}.{sub}: saved {ov}, requested {nv}"));
                    }
                }
            }
            _ if old != new => items.push(format!("{key}: saved {old}, requested {new}")),
            _ => {}
        }
    }
    if items.is_empty() {
        "the settings differ".into()
    } else {
        items.join("; ")
    }
}

fn optimizer_kind(o: &OptimizerConfig) -> &'static str {
    match o {
        OptimizerConfig::Adam { .. } => "adam",
        OptimizerConfig::Sgd { .. } => "sgd",
    }
}

/// Where the last good checkpoint is, for the non-finite error: the run folder's files as of
/// `epochs_done` completed epochs (each epoch's files replace the previous ones atomically), or
/// the news that none was written yet.
fn kept_checkpoint(out: Option<&Path>, epochs_done: u64) -> String {
    match out {
        Some(dir) if epochs_done > 0 => format!(
            "{} and {} in {} as of epoch {epochs_done}, left unchanged",
            MODEL_FILE,
            STATE_FILE,
            dir.display()
        ),
        Some(dir) => format!(
            "none (no epoch completed, so no checkpoint was written to {})",
            dir.display()
        ),
        None => "none (no output folder was given)".into(),
    }
}

/// Names the first layer whose output holds a NaN or an infinity on the batch `x`, by running
/// ever longer prefixes of the network on a no-record tape. Only called once the loss is already
/// non-finite, so the repeated forwards cost nothing in a healthy run.
fn first_non_finite_layer(model: &Model<f32>, x: &Tensor<f32>, mode: Mode) -> String {
    if !x.all_finite() {
        return "the input batch itself holds a non-finite value".into();
    }
    let mut prefix = model.clone();
    for k in 1..=model.layers.len() {
        prefix.layers = model.layers[..k].to_vec();
        let mut tape = Tape::no_record();
        let params = prefix.bind(&mut tape, false);
        let input = tape.constant(x.clone());
        let Ok((h, _)) = prefix.forward(&mut tape, input, &params, mode) else {
            return format!("the forward pass fails at layer {k} ({})", model.layers[k - 1].label());
        };
        if !tape.value(h).all_finite() {
            return format!(
                "the first non-finite activation is the output of layer {k} of {} ({})",
                model.layers.len(),
                model.layers[k - 1].label()
            );
        }
    }
    "every layer's output is finite, so the logits overflow the loss".into()
}

/// Drops the lines of `metrics.jsonl` for epochs after `epochs_done` (left by an earlier run in
/// the same folder, or written just before a crash that the state file did not live to record).
/// Lines that do not parse are kept: they are not this function's to judge.
fn trim_metrics(path: &Path, epochs_done: u64) -> Result<(), TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(TrainError::Output(format!(
                "{}: cannot read: {e}",
                path.display()
            )))
        }
    };
    let kept: String = text
        .lines()
        .filter(|line| match serde_json::from_str::<EpochMetrics>(line) {
            Ok(m) => m.epoch <= epochs_done,
            Err(_) => true,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    if kept == text {
        return Ok(());
    }
    crate::atomic_file::write_atomic(path, kept.as_bytes())
        .map_err(|e| TrainError::Output(e.to_string()))
}

/// Appends one JSON line; the whole file is rewritten atomically so a crash never leaves half a line.
fn append_metrics(path: &PathBuf, m: &EpochMetrics) -> Result<(), TrainError> {
    let mut bytes = std::fs::read(path).unwrap_or_default();
    writeln!(
        bytes,
        "{}",
        serde_json::to_string(m).expect("metrics serialize")
    )
    .expect("write to a Vec");
    crate::atomic_file::write_atomic(path, &bytes).map_err(|e| TrainError::Output(e.to_string()))
}
