//! `TrainHook`: code that watches the model as training goes (attribution movies, gradients
//! integrated over training).

use crate::atomic_file::FileGroup;
use crate::models::Model;

/// Where training stands when a hook is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainState {
    /// Optimizer updates applied so far (0 = the untrained model).
    pub step: u64,
    /// Epoch in progress (0-based), or the number of epochs done when training ends.
    pub epoch: u64,
}

/// Observes the model during training.
///
/// `observe` is called once before the first update (step 0, the untrained model) and then after
/// every minibatch update, so the state seen at step k is the model before update k + 1.
/// An error stops training and is reported.
pub trait TrainHook {
    /// Sees the model after `state.step` updates.
    fn observe(&mut self, model: &Model<f32>, state: TrainState) -> anyhow::Result<()>;
    /// Stages the files the hook writes beside the run into the last epoch's checkpoint group,
    /// so they land with that checkpoint or not at all (a full disk there leaves the previous
    /// checkpoint and none of them). Called once, after the last minibatch of a run that has an
    /// output folder, before [`finish`](TrainHook::finish).
    fn stage_final(&mut self, _group: &mut FileGroup, _state: TrainState) -> anyhow::Result<()> {
        Ok(())
    }
    /// Called once when training ends normally (write files here that are not staged with the
    /// last checkpoint).
    fn finish(&mut self, _model: &Model<f32>, _state: TrainState) -> anyhow::Result<()> {
        Ok(())
    }
}
