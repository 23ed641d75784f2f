//! Training: optimizers, the minibatch loop, evaluation, resumable state.

pub mod adversarial;
pub mod batch;
pub mod config;
mod diagnose;
pub mod evaluate;
pub mod hook;
mod metrics_file;
pub mod optim;
pub mod overwrite;
pub mod record;
pub mod run_folder;
pub mod state;
pub mod step;
pub mod trainer;

pub use adversarial::{AdversarialTraining, TrainingAttack};
pub use config::{Augment, TrainConfig};
pub use evaluate::{evaluate, EvaluateError, Evaluation};
pub use hook::{TrainHook, TrainState};
pub use optim::{Optimizer, OptimizerConfig, UpdateCheck};
pub use record::RunRecord;
pub use step::{forward_backward, StepOutput, StepTapes};
pub use trainer::{BatchProgress, EpochMetrics, TrainError, TrainEvent, Trainer};
