//! Training-integrated gradients (the study's proposal): the input gradient of the loss summed
//! over every model state seen during training.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tensor::Tensor;

use super::{check_classes, check_inputs, default_batch, AttributionError};
use crate::atomic_file::FileGroup;
use crate::checkpoint::{self, Checkpoint, NamedTensor};
use crate::infer::{input_gradients, Objective};
use crate::loss::LossKind;
use crate::models::Model;
use crate::shards::slice_images;
use crate::train::{TrainHook, TrainState};

/// The file [`TrainingIntegratedGradients`] writes into its folder: staged with the run's last
/// checkpoint ([`TrainHook::stage_final`]), or by [`TrainHook::finish`] for a run without one.
pub const TIG_FILE: &str = "training_integrated_gradients.safetensors";

/// A [`TrainHook`] that accumulates g = sum_n dJ(O(a; theta_n), y)/da for fixed inputs a with
/// labels y, over every model state theta_n after a minibatch update (steps 1, 2, ...; the
/// untrained state at step 0 is skipped, as the study sums "after each minibatch").
///
/// J is the training loss per example (no 1/N factor), in evaluation mode. The sum is kept in
/// f64: over tens of thousands of steps f32 would lose the small late gradients.
pub struct TrainingIntegratedGradients {
    inputs: Tensor<f32>,
    labels: Vec<usize>,
    loss: LossKind,
    sum: Vec<f64>,
    states: u64,
    save_dir: Option<PathBuf>,
    /// Whether the file went into the last checkpoint's group (then `finish` writes nothing).
    staged: bool,
}

impl TrainingIntegratedGradients {
    /// Watches `inputs` (N, C, H, W) in [0, 1] with their `labels`, differentiating `loss`.
    /// With `save_dir`, [`TIG_FILE`] is written there when training ends.
    pub fn new(
        inputs: Tensor<f32>,
        labels: Vec<usize>,
        loss: LossKind,
        save_dir: Option<PathBuf>,
    ) -> Result<Self, AttributionError> {
        let shape = inputs.shape();
        if shape.len() != 4 || shape[0] == 0 {
            return Err(AttributionError::Option {
                option: "inputs",
                expected: "a non-empty batch (N, C, H, W)".into(),
                found: format!("{shape:?}"),
            });
        }
        if labels.len() != shape[0] {
            return Err(AttributionError::Count {
                what: "labels",
                expected: shape[0],
                found: labels.len(),
            });
        }
        let sum = vec![0.0; inputs.numel()];
        Ok(Self {
            inputs,
            labels,
            loss,
            sum,
            states: 0,
            save_dir,
            staged: false,
        })
    }

    /// Adds the loss gradient of `model` at the fixed inputs to the sum (whatever the step).
    pub fn accumulate(&mut self, model: &Model<f32>) -> Result<(), AttributionError> {
        let n = check_inputs(model, &self.inputs)?;
        check_classes(&self.labels, n, model.classes)?;
        let per = self.inputs.numel() / n;
        let batch = default_batch(model.input);
        for start in (0..n).step_by(batch) {
            let end = (start + batch).min(n);
            let objective = Objective::Loss {
                labels: self.labels[start..end].to_vec(),
                kind: self.loss,
            };
            let chunk = slice_images(&self.inputs, start..end);
            let (grad, _) = input_gradients(model, &chunk, &objective)?;
            for (s, &g) in self.sum[start * per..end * per].iter_mut().zip(grad.data()) {
                *s += g as f64;
            }
        }
        self.states += 1;
        Ok(())
    }

    /// The summed gradients (shaped like the inputs) and how many model states were added.
    pub fn result(&self) -> (Tensor<f64>, u64) {
        let sum = Tensor::from_vec(self.inputs.shape(), self.sum.clone()).expect("same shape");
        (sum, self.states)
    }

    /// The fixed inputs.
    pub fn inputs(&self) -> &Tensor<f32> {
        &self.inputs
    }

    /// Writes `gradients` (the sum, as f32), `inputs` and `labels` (as f32) to `dir/`[`TIG_FILE`],
    /// with the number of states and the loss in the metadata. Returns the path.
    pub fn save(&self, dir: &Path, state: TrainState) -> Result<PathBuf, AttributionError> {
        std::fs::create_dir_all(dir).map_err(|source| AttributionError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join(TIG_FILE);
        checkpoint::save(&path, &self.checkpoint(state))?;
        Ok(path)
    }

    /// The file's contents: the sum, the inputs, the labels and the metadata.
    fn checkpoint(&self, state: TrainState) -> Checkpoint {
        let shape = self.inputs.shape().to_vec();
        let tensors = vec![
            NamedTensor {
                name: "gradients".into(),
                shape: shape.clone(),
                data: self.sum.iter().map(|&v| v as f32).collect(),
            },
            NamedTensor {
                name: "inputs".into(),
                shape,
                data: self.inputs.data().to_vec(),
            },
            NamedTensor {
                name: "labels".into(),
                shape: vec![self.labels.len()],
                data: self.labels.iter().map(|&y| y as f32).collect(),
            },
        ];
        let metadata = BTreeMap::from([
            (
                "kind".to_string(),
                "training-integrated-gradients".to_string(),
            ),
            ("states".to_string(), self.states.to_string()),
            ("loss".to_string(), self.loss.to_string()),
            ("step".to_string(), state.step.to_string()),
            ("epoch".to_string(), state.epoch.to_string()),
        ]);
        Checkpoint { tensors, metadata }
    }
}

impl TrainHook for TrainingIntegratedGradients {
    fn observe(&mut self, model: &Model<f32>, state: TrainState) -> anyhow::Result<()> {
        if state.step > 0 {
            self.accumulate(model)?;
        }
        Ok(())
    }

    fn stage_final(&mut self, group: &mut FileGroup, state: TrainState) -> anyhow::Result<()> {
        if let Some(dir) = self.save_dir.clone() {
            checkpoint::stage(group, &dir.join(TIG_FILE), &self.checkpoint(state))?;
            self.staged = true;
        }
        Ok(())
    }

    fn finish(&mut self, _model: &Model<f32>, state: TrainState) -> anyhow::Result<()> {
        // a run without an output folder has no checkpoint to stage with
        if let (Some(dir), false) = (self.save_dir.clone(), self.staged) {
            self.save(&dir, state)?;
        }
        Ok(())
    }
}
