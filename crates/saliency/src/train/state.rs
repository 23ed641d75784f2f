//! Resumable training state: parameters, buffers, optimizer moments and counters in one file.

use std::collections::BTreeMap;
use std::path::Path;

use crate::checkpoint::{self, Checkpoint, NamedTensor};
use crate::model_io::{fill_model, model_tensors, ModelIoError};
use crate::models::Model;

use super::config::TrainConfig;
use super::optim::Optimizer;

/// File name of the resumable state inside a run folder.
pub const STATE_FILE: &str = "state.safetensors";
/// File name of the model checkpoint inside a run folder.
pub const MODEL_FILE: &str = "model.safetensors";

/// Counters saved with the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Updates applied.
    pub step: u64,
    /// Epochs completed.
    pub epoch: u64,
}

/// Writes the whole training state atomically.
pub fn save_state(
    path: &Path,
    model: &Model<f32>,
    opt: &Optimizer,
    config: &TrainConfig,
    progress: Progress,
    metadata: BTreeMap<String, String>,
) -> Result<(), checkpoint::CheckpointError> {
    let ckpt = state_checkpoint(model, opt, config, progress, metadata);
    checkpoint::save(path, &ckpt)
}

/// The checkpoint [`save_state`] writes: parameters, buffers, optimizer moments, the
/// configuration and the counters, with `metadata` added.
pub fn state_checkpoint(
    model: &Model<f32>,
    opt: &Optimizer,
    config: &TrainConfig,
    progress: Progress,
    mut metadata: BTreeMap<String, String>,
) -> Checkpoint {
    let mut tensors = model_tensors(model);
    for (i, info) in model.param_info.iter().enumerate() {
        tensors.push(NamedTensor {
            name: format!("optimizer.m.{}", info.name),
            shape: vec![opt.m[i].len()],
            data: opt.m[i].clone(),
        });
        if !opt.v[i].is_empty() {
            tensors.push(NamedTensor {
                name: format!("optimizer.v.{}", info.name),
                shape: vec![opt.v[i].len()],
                data: opt.v[i].clone(),
            });
        }
    }
    metadata.insert(
        "train_config".into(),
        serde_json::to_string(config).expect("config serializes"),
    );
    metadata.insert("optimizer_t".into(), opt.t.to_string());
    metadata.insert("step".into(), progress.step.to_string());
    metadata.insert("epoch".into(), progress.epoch.to_string());
    Checkpoint { tensors, metadata }
}

/// Reads a state file into `model` and `opt` (already built from the same configuration) and
/// returns the saved configuration and counters.
pub fn load_state(
    path: &Path,
    model: &mut Model<f32>,
    opt: &mut Optimizer,
) -> Result<(TrainConfig, Progress), ModelIoError> {
    let source = path.display().to_string();
    let ckpt = checkpoint::load(path)?;
    state_from_checkpoint(&source, &ckpt, model, opt)
}

/// The training configuration recorded in an already-read state checkpoint (`source` names it
/// in errors), so a caller can compare it before building a model for it.
pub fn saved_config(source: &str, ckpt: &Checkpoint) -> Result<TrainConfig, ModelIoError> {
    let text = ckpt
        .metadata
        .get("train_config")
        .ok_or_else(|| ModelIoError::Metadata {
            path: source.to_string(),
            key: "train_config",
            expected: "a training configuration (JSON)".into(),
            found: "nothing".into(),
        })?;
    serde_json::from_str(text).map_err(|e| ModelIoError::Metadata {
        path: source.to_string(),
        key: "train_config",
        expected: "a training configuration (JSON)".into(),
        found: e.to_string(),
    })
}

/// Like [`load_state`], from an already-read checkpoint; `source` names it in errors.
pub fn state_from_checkpoint(
    source: &str,
    ckpt: &Checkpoint,
    model: &mut Model<f32>,
    opt: &mut Optimizer,
) -> Result<(TrainConfig, Progress), ModelIoError> {
    let source = source.to_string();
    fill_model(&source, model, ckpt)?;
    let meta = |key: &'static str| -> Result<&String, ModelIoError> {
        ckpt.metadata
            .get(key)
            .ok_or_else(|| ModelIoError::Metadata {
                path: source.clone(),
                key,
                expected: "present".into(),
                found: "nothing".into(),
            })
    };
    let config = saved_config(&source, ckpt)?;
    let num = |key: &'static str| -> Result<u64, ModelIoError> {
        let s = meta(key)?;
        s.parse().map_err(|_| ModelIoError::Metadata {
            path: source.clone(),
            key,
            expected: "a whole number".into(),
            found: s.clone(),
        })
    };
    opt.t = num("optimizer_t")?;
    for (i, info) in model.param_info.iter().enumerate() {
        for (prefix, slot) in [("m", &mut opt.m[i]), ("v", &mut opt.v[i])] {
            if prefix == "v" && slot.is_empty() {
                continue;
            }
            let name = format!("optimizer.{prefix}.{}", info.name);
            let t = ckpt.get(&name).ok_or_else(|| ModelIoError::Metadata {
                path: source.clone(),
                key: "optimizer",
                expected: format!("tensor {name}"),
                found: "nothing".into(),
            })?;
            if t.data.len() != slot.len() {
                return Err(ModelIoError::Metadata {
                    path: source.clone(),
                    key: "optimizer",
                    expected: format!("{name} with {} values", slot.len()),
                    found: format!("{} values", t.data.len()),
                });
            }
            slot.copy_from_slice(&t.data);
        }
    }
    Ok((
        config,
        Progress {
            step: num("step")?,
            epoch: num("epoch")?,
        },
    ))
}
