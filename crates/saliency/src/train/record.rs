//! `RunRecord`: what a run was trained on and writes beside its checkpoints, beyond
//! [`TrainConfig`](super::TrainConfig), kept in the state file so `--resume` can refuse to
//! continue a run on other data or with outputs it cannot continue exactly.

/// Metadata key of the record in `state.safetensors`.
pub const RECORD_KEY: &str = "run_record";

/// The data split and the outputs of a run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    /// Image folders: the share of each class held out as the test split (`None` for data sets
    /// with a fixed split).
    pub test_fraction: Option<f64>,
    /// Training images (after any hold-out and limit): another count means other data.
    pub train_images: usize,
    /// Evaluation images.
    pub test_images: usize,
    /// Whether the run writes an attribution movie.
    pub movie: bool,
    /// Whether the run writes training-integrated gradients.
    pub integrate_gradients: bool,
}

impl RunRecord {
    /// The differences that make `requested` unable to continue a run recorded as `self`, as
    /// `name: saved A, requested B` items (and the reason for outputs that cover a whole run).
    pub fn differences(&self, requested: &RunRecord, epochs_done: u64) -> Vec<String> {
        let mut items = Vec::new();
        let show = |f: Option<f64>| f.map_or("none".to_string(), |f| f.to_string());
        if self.test_fraction != requested.test_fraction {
            items.push(format!(
                "test fraction (--test-fraction): saved {}, requested {}",
                show(self.test_fraction),
                show(requested.test_fraction)
            ));
        }
        if self.train_images != requested.train_images {
            items.push(format!(
                "training images: saved {}, requested {} (other data, --limit-train or --validation)",
                self.train_images, requested.train_images
            ));
        }
        if self.test_images != requested.test_images {
            items.push(format!(
                "evaluation images: saved {}, requested {}",
                self.test_images, requested.test_images
            ));
        }
        // These outputs sum or draw every step from the first: a resumed run has lost the steps
        // before the interruption (they lived in the killed process), so it cannot continue them.
        if self.movie || requested.movie {
            items.push(format!(
                "--movie: the attribution movie covers every step of a run and cannot be continued \
                 after {epochs_done} epoch(s) (saved {}, requested {})",
                self.movie, requested.movie
            ));
        }
        if self.integrate_gradients || requested.integrate_gradients {
            items.push(format!(
                "--integrate-gradients: the sum covers every step of a run and cannot be \
                 continued after {epochs_done} epoch(s) (saved {}, requested {})",
                self.integrate_gradients, requested.integrate_gradients
            ));
        }
        items
    }
}
