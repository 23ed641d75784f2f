//! Loading a checkpoint together with the test split of the data set it was trained on.

use std::path::Path;

use anyhow::{bail, Context};

use super::common::DataArgs;
use crate::data::Dataset;
use crate::model_io::{load_model, ModelMeta};
use crate::models::Model;

/// The model, its metadata and its data set's test split (same classes, split and color mode).
pub fn load_with_test_data(
    checkpoint: &Path,
    data: &DataArgs,
) -> anyhow::Result<(Model<f32>, ModelMeta, Dataset)> {
    let (model, meta) = load_model(checkpoint)?;
    let mut data = data.clone();
    data.data = meta.dataset.clone();
    if meta.dataset != "fashion-mnist" && data.classes.is_none() {
        data.classes = Some(meta.class_names.clone());
    }
    data.gray = meta.input[0] == 1 && meta.dataset != "fashion-mnist";
    let (_, test) = data
        .spec(meta.seed)?
        .load()
        .with_context(|| format!("loading the test data for {}", checkpoint.display()))?;
    if test.shape != meta.input {
        bail!(
            "{}: the model takes inputs {:?} but the data set gives {:?}",
            checkpoint.display(),
            meta.input,
            test.shape
        );
    }
    Ok((model, meta, test))
}

/// Parses `--indices`: `A..B` (B excluded), or a comma list `3,7,9`; each must be below `len`.
pub fn parse_indices(spec: &str, len: usize) -> anyhow::Result<Vec<usize>> {
    let parse = |s: &str| -> anyhow::Result<usize> {
        s.trim()
            .parse()
            .with_context(|| format!("--indices: '{s}' is not an image index"))
    };
    let idx: Vec<usize> = if let Some((a, b)) = spec.split_once("..") {
        let (a, b) = (parse(a)?, parse(b)?);
        if a >= b {
            bail!("--indices: expected a non-empty range A..B with A < B, found {spec}");
        }
        (a..b).collect()
    } else {
        spec.split(',').map(parse).collect::<anyhow::Result<_>>()?
    };
    if let Some(&bad) = idx.iter().find(|&&i| i >= len) {
        bail!("--indices: index {bad} is out of range: the test set has {len} images (0..{len})");
    }
    if idx.is_empty() {
        bail!("--indices: expected at least one index");
    }
    Ok(idx)
}
