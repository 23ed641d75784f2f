//! Messages for a stopped run: where a non-finite value first appears, which checkpoint is
//! kept, and how a saved configuration differs from the requested one.

use std::path::Path;

use tape::Tape;
use tensor::Tensor;

use crate::models::{Mode, Model};

use super::config::TrainConfig;
use super::optim::OptimizerConfig;
use super::state::{MODEL_FILE, STATE_FILE};

/// The settings that differ between a saved and a requested configuration (epochs aside), as
/// `name: saved A, requested B` items.
pub(super) fn config_differences(saved: &TrainConfig, requested: &TrainConfig) -> String {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(saved), serde_json::to_value(requested))
    else {
        return "the settings differ".into();
    };
    let mut items = Vec::new();
    // Settings left out when off (`adversarial`) appear in one of the two only: both are named.
    let only_saved = a
        .keys()
        .filter(|key| !b.contains_key(key.as_str()))
        .map(|key| (key, &serde_json::Value::Null));
    for (key, new) in b
        .iter()
        .chain(only_saved)
        .filter(|(key, _)| key.as_str() != "epochs")
    {
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

pub(super) fn optimizer_kind(o: &OptimizerConfig) -> &'static str {
    match o {
        OptimizerConfig::Adam { .. } => "adam",
        OptimizerConfig::Sgd { .. } => "sgd",
    }
}

/// Where the last good checkpoint is, for the non-finite error: the run folder's files as of
/// `epochs_done` completed epochs (each epoch's files replace the previous ones atomically), or
/// the news that none was written yet.
pub(super) fn kept_checkpoint(out: Option<&Path>, epochs_done: u64) -> String {
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
pub(super) fn first_non_finite_layer(model: &Model<f32>, x: &Tensor<f32>, mode: Mode) -> String {
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
            return format!(
                "the forward pass fails at layer {k} ({})",
                model.layers[k - 1].label()
            );
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
