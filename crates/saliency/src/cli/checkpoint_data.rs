//! Loading a checkpoint together with the test split of the data set it was trained on.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};

use super::common::DataArgs;
use crate::checkpoint::CheckpointError;
use crate::data::FASHION_MNIST_CLASS_NAMES;
use crate::data::{CacheBudget, ImageSource, Images, Selection};
use crate::model_io::{load_model, load_state_dict, ModelIoError, ModelMeta};
use crate::models::Model;

/// The model, its metadata and its data set's test split (same classes, split and color mode),
/// an image folder's split opened for reading a batch at a time
/// ([`crate::data::Selection::open`]), its decoded images cached within `budget`, never decoded
/// whole: for evaluating or attacking every test image, or reading a few, in bounded memory.
///
/// The data set and classes come from the checkpoint. Options that name others are refused, not
/// overridden: `eval --data fashion-mnist` on a flowers model used to evaluate on flowers, and
/// `--classes tulips,roses` on a `roses,tulips` model ran with swapped labels.
pub fn load_with_test_images(
    checkpoint: &Path,
    data: &DataArgs,
    budget: &Arc<CacheBudget>,
) -> anyhow::Result<(Model<f32>, ModelMeta, Images)> {
    let (model, meta, test) = load_with_test_selection(checkpoint, data)?;
    let test = crate::task::open_noting_skips(test, budget)
        .with_context(|| format!("loading the test data for {}", checkpoint.display()))?;
    check_test_set(checkpoint, &meta, &test)?;
    Ok((model, meta, test))
}

/// The checkpoint and the test split of its data set, chosen but not yet decoded.
fn load_with_test_selection(
    checkpoint: &Path,
    data: &DataArgs,
) -> anyhow::Result<(Model<f32>, ModelMeta, Selection)> {
    let (model, meta) = load_any(checkpoint, data)?;
    let shown = checkpoint.display();
    if !["fashion-mnist", "flowers", "flowers17"].contains(&meta.dataset.as_str()) {
        bail!(
            "{shown}: metadata 'dataset': expected fashion-mnist, flowers or flowers17, found '{}'",
            meta.dataset
        );
    }
    if let Some(asked) = data.data.as_deref().filter(|d| *d != meta.dataset) {
        bail!(
            "--data {asked}: {shown} was trained on {}; omit --data (the checkpoint's data set is \
             used) or pass a checkpoint trained on {asked}",
            meta.dataset
        );
    }
    if let Some(asked) = data.classes.as_ref().filter(|c| **c != meta.class_names) {
        bail!(
            "--classes {}: {shown} was trained on the classes {} in this order (labels index the \
             model's outputs); omit --classes or give exactly these",
            asked.join(","),
            meta.class_names.join(",")
        );
    }
    let mut data = data.clone();
    data.data = Some(meta.dataset.clone());
    if meta.dataset != "fashion-mnist" {
        data.classes = Some(meta.class_names.clone());
    }
    data.gray = meta.input[0] == 1 && meta.dataset != "fashion-mnist";
    // Only the test split is decoded: an image folder's training files are never opened.
    let (_, test, found) = data
        .spec(meta.seed)?
        .select()
        .with_context(|| format!("loading the test data for {shown}"))?;
    if let Some(note) = &found.note {
        eprintln!("note: {note}");
    }
    Ok((model, meta, test))
}

/// Refuses a test set the model cannot be evaluated on.
fn check_test_set(
    checkpoint: &Path,
    meta: &ModelMeta,
    test: &dyn ImageSource,
) -> anyhow::Result<()> {
    let shown = checkpoint.display();
    if test.shape() != meta.input {
        bail!(
            "{shown}: the model takes inputs {:?} but the data set gives {:?}",
            meta.input,
            test.shape()
        );
    }
    // A class with one image gives it to training, so a tiny folder can split into no test
    // images; evaluating that printed "(0 images): accuracy 0.00 %".
    if test.count() == 0 {
        bail!(
            "{shown}: the test split of {} is empty (each class needs at least 2 images so one \
             can be held out)",
            test.name()
        );
    }
    // Labels index the model's outputs: a checkpoint for other classes would read past them.
    if test.class_names() != meta.class_names {
        bail!(
            "{shown}: the model's classes are {:?} but {} has classes {:?}",
            meta.class_names,
            test.name(),
            test.class_names()
        );
    }
    Ok(())
}

/// A checkpoint of ours, or, with `--architecture`, a plain PyTorch state_dict taken as trained on
/// `--data` (its metadata made up from the data options: seed, step and epoch 0).
pub fn load_any(checkpoint: &Path, data: &DataArgs) -> anyhow::Result<(Model<f32>, ModelMeta)> {
    let missing_metadata = |e: &ModelIoError| {
        matches!(
            e,
            ModelIoError::Checkpoint(CheckpointError::MissingMetadata { .. })
        )
    };
    match (load_model(checkpoint), data.architecture) {
        (Ok(loaded), _) => Ok(loaded),
        (Err(e), Some(kind)) if missing_metadata(&e) => {
            let set = data.data.as_deref().unwrap_or("fashion-mnist");
            let (input, class_names) = match set {
                "fashion-mnist" => (
                    [1, 28, 28],
                    FASHION_MNIST_CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
                ),
                _ => match &data.classes {
                    Some(c) => ([if data.gray { 1 } else { 3 }, 256, 256], c.clone()),
                    None => bail!(
                        "--architecture with --data {set}: expected --classes naming the \
                         state_dict's classes in output order, found none"
                    ),
                },
            };
            let model = load_state_dict(checkpoint, kind, input, class_names.len())?;
            let meta = ModelMeta {
                model: kind,
                dataset: set.to_string(),
                input,
                class_names,
                seed: 0,
                step: 0,
                epoch: 0,
            };
            Ok((model, meta))
        }
        (Err(e), None) if missing_metadata(&e) => Err(anyhow::anyhow!(
            "{e}\n(a plain PyTorch state_dict? give its architecture with --architecture deep|alexnet|medium)"
        )),
        (Err(e), _) => Err(e.into()),
    }
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
