//! `TrainConfig`: everything that decides a training run's result (saved as `config.json`).

use crate::loss::LossKind;
use crate::models::ModelKind;

use super::adversarial::AdversarialTraining;
use super::optim::OptimizerConfig;

/// Training-side augmentation (off by default, as the study).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Mirror each image left-right with probability 1/2.
    pub hflip: bool,
    /// Shift each image by up to this many pixels in x and y (zero fill).
    pub max_shift: usize,
}

/// The settings of one training run.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Network.
    pub model: ModelKind,
    /// Data set name (`fashion-mnist`, `flowers`, ...), for metadata.
    pub dataset: String,
    /// Epochs to train.
    pub epochs: u64,
    /// Images per minibatch.
    pub batch_size: usize,
    /// Seed for initialization, shuffling, dropout and augmentation.
    pub seed: u64,
    /// Optimizer and its base learning rate.
    pub optimizer: OptimizerConfig,
    /// Learning-rate changes: (first epoch, new base rate), sorted by epoch.
    pub lr_schedule: Vec<(u64, f64)>,
    /// Loss.
    pub loss: LossKind,
    /// L2 penalty factor on kernels (the study's AlexNet: 5e-4); 0 for none.
    pub l2: f64,
    /// Augmentation.
    pub augment: Augment,
    /// Use only the first N training images (after the validation hold-out).
    pub limit_train: Option<usize>,
    /// Evaluate on only the first N test images.
    pub limit_test: Option<usize>,
    /// Hold out this many training images (seeded) as a validation set and evaluate on it
    /// instead of the test set (for choosing settings without touching the test set).
    pub validation: Option<usize>,
    /// Adversarial training: each minibatch replaced by its PGD examples (none by default; left
    /// out of config.json when off, so standard runs' files are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adversarial: Option<AdversarialTraining>,
}

impl TrainConfig {
    /// The study's settings for `model` on Fashion-MNIST (see docs/study.md).
    pub fn study(model: ModelKind) -> Self {
        let (optimizer, batch_size, l2) = match model {
            ModelKind::Alexnet => (OptimizerConfig::study_sgd(), 20, 5e-4),
            _ => (OptimizerConfig::study_adam(), 16, 0.0),
        };
        Self {
            model,
            dataset: "fashion-mnist".into(),
            epochs: 10,
            batch_size,
            seed: 0,
            optimizer,
            lr_schedule: Vec::new(),
            loss: LossKind::CrossEntropy,
            l2,
            augment: Augment::default(),
            limit_train: None,
            limit_test: None,
            validation: None,
            adversarial: None,
        }
    }

    /// The base learning rate in force during `epoch`.
    pub fn lr_for_epoch(&self, epoch: u64) -> f64 {
        self.lr_schedule
            .iter()
            .rfind(|(e, _)| *e <= epoch)
            .map(|(_, lr)| *lr)
            .unwrap_or(self.optimizer.lr())
    }

    /// Checks the settings, naming the bad option.
    pub fn validate(&self) -> Result<(), String> {
        let lr = self.optimizer.lr();
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(format!(
                "--lr: expected a positive finite learning rate, found {lr}"
            ));
        }
        if self.batch_size == 0 {
            return Err("--batch-size: expected at least 1, found 0".into());
        }
        if self.epochs == 0 {
            return Err("--epochs: expected at least 1, found 0".into());
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return Err(format!(
                "--l2: expected a non-negative finite factor, found {}",
                self.l2
            ));
        }
        for (e, lr) in &self.lr_schedule {
            if !(*lr > 0.0 && lr.is_finite()) {
                return Err(format!(
                    "--lr-schedule: expected positive learning rates, found {lr} at epoch {e}"
                ));
            }
        }
        if self.limit_train == Some(0) {
            return Err("--limit-train: expected at least 1, found 0".into());
        }
        if self.limit_test == Some(0) {
            return Err("--limit-test: expected at least 1, found 0".into());
        }
        if let Some(adversarial) = &self.adversarial {
            adversarial.validate()?;
        }
        Ok(())
    }
}
