//! Saving and loading a trained model: its tensors under PyTorch names plus what built it.

use std::collections::BTreeMap;
use std::path::Path;

use tensor::Tensor;

use crate::checkpoint::{self, Checkpoint, CheckpointError, NamedTensor};
use crate::models::{build_from_specs, LayerSpec, Model, ModelError, ModelKind};

/// Metadata key of the stored layer list (JSON of [`LayerSpec`]s).
pub const LAYERS_KEY: &str = "layers";

/// Most input channels a checkpoint's `input_shape` may name (gray, RGB, RGBA).
pub const MAX_INPUT_CHANNELS: usize = 4;
/// Longest input side a checkpoint's `input_shape` may name.
pub const MAX_INPUT_SIDE: usize = 1024;
/// Most pixels per input (H x W) a checkpoint may name: 4 times the study's 256 x 256 flowers,
/// which bounds the largest model built (AlexNet, about 100M weights) before any check.
pub const MAX_INPUT_PIXELS: usize = 512 * 512;
/// Most classes a checkpoint's `classes` list may hold.
pub const MAX_CLASSES: usize = 1000;

/// What a checkpoint says about the model it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelMeta {
    /// Which network.
    pub model: ModelKind,
    /// Data set name, e.g. `fashion-mnist`.
    pub dataset: String,
    /// Input shape (C, H, W).
    pub input: [usize; 3],
    /// Class names, in label order (their count is the number of outputs).
    pub class_names: Vec<String>,
    /// Seed the run started from.
    pub seed: u64,
    /// Optimizer steps taken.
    pub step: u64,
    /// Completed epochs.
    pub epoch: u64,
}

/// Errors loading a model from a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelIoError {
    /// The file itself is bad.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A metadata entry is missing or unreadable.
    #[error("{path}: metadata '{key}': expected {expected}, found {found}")]
    Metadata {
        path: String,
        key: &'static str,
        expected: String,
        found: String,
    },
    /// The model named in the metadata cannot be built for its input.
    #[error("{path}: {source}")]
    Model { path: String, source: ModelError },
}

impl ModelMeta {
    fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("model".into(), self.model.to_string());
        m.insert("dataset".into(), self.dataset.clone());
        m.insert(
            "input_shape".into(),
            format!("{},{},{}", self.input[0], self.input[1], self.input[2]),
        );
        m.insert(
            "classes".into(),
            serde_json::to_string(&self.class_names).expect("strings serialize"),
        );
        m.insert("seed".into(), self.seed.to_string());
        m.insert("step".into(), self.step.to_string());
        m.insert("epoch".into(), self.epoch.to_string());
        m
    }

    fn from_map(path: &str, m: &BTreeMap<String, String>) -> Result<Self, ModelIoError> {
        let get = |key: &'static str, expected: &str| -> Result<&String, ModelIoError> {
            m.get(key).ok_or_else(|| ModelIoError::Metadata {
                path: path.into(),
                key,
                expected: expected.into(),
                found: "nothing".into(),
            })
        };
        let bad = |key: &'static str, expected: &str, found: &str| ModelIoError::Metadata {
            path: path.into(),
            key,
            expected: expected.into(),
            found: found.into(),
        };
        let model_s = get("model", "deep, alexnet, medium or custom")?;
        let model: ModelKind = model_s
            .parse()
            .map_err(|_| bad("model", "deep, alexnet, medium or custom", model_s))?;
        let shape_s = get("input_shape", "C,H,W")?;
        let dims: Vec<usize> = shape_s
            .split(',')
            .map(|d| d.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|_| bad("input_shape", "C,H,W", shape_s))?;
        let input: [usize; 3] = dims
            .try_into()
            .map_err(|_| bad("input_shape", "three numbers C,H,W", shape_s))?;
        // The model is built from these numbers before its tensors are compared with the file's,
        // so they are bounded first: a few corrupt bytes must not ask for gigabytes of weights.
        let [c, h, w] = input;
        if !(1..=MAX_INPUT_CHANNELS).contains(&c)
            || !(1..=MAX_INPUT_SIDE).contains(&h)
            || !(1..=MAX_INPUT_SIDE).contains(&w)
            || h * w > MAX_INPUT_PIXELS
        {
            let expected = format!(
                "C,H,W with 1 <= C <= {MAX_INPUT_CHANNELS}, 1 <= H, W <= {MAX_INPUT_SIDE} and \
                 H x W <= {MAX_INPUT_PIXELS}"
            );
            return Err(bad("input_shape", &expected, shape_s));
        }
        let classes_s = get("classes", "a JSON list of class names")?;
        let class_names: Vec<String> = serde_json::from_str(classes_s)
            .map_err(|_| bad("classes", "a JSON list of class names", classes_s))?;
        if class_names.len() < 2 || class_names.len() > MAX_CLASSES {
            let found = format!("{} classes", class_names.len());
            return Err(bad(
                "classes",
                &format!("between 2 and {MAX_CLASSES} classes"),
                &found,
            ));
        }
        let num = |key: &'static str| -> Result<u64, ModelIoError> {
            let s = get(key, "a whole number")?;
            s.parse().map_err(|_| bad(key, "a whole number", s))
        };
        Ok(Self {
            model,
            dataset: get("dataset", "a data set name")?.clone(),
            input,
            class_names,
            seed: num("seed")?,
            step: num("step")?,
            epoch: num("epoch")?,
        })
    }
}

/// The model's tensors (parameters then buffers) as checkpoint entries.
pub fn model_tensors(model: &Model<f32>) -> Vec<NamedTensor> {
    model
        .named_tensors()
        .into_iter()
        .map(|(name, t)| NamedTensor {
            name: name.to_string(),
            shape: t.shape().to_vec(),
            data: t.data().to_vec(),
        })
        .collect()
}

/// Writes `model` and `meta` to `path` atomically.
pub fn save_model(
    path: &Path,
    model: &Model<f32>,
    meta: &ModelMeta,
) -> Result<(), CheckpointError> {
    checkpoint::save(path, &model_checkpoint(model, meta))
}

/// The checkpoint [`save_model`] writes: the model's tensors, `meta` and the layer specs.
pub fn model_checkpoint(model: &Model<f32>, meta: &ModelMeta) -> Checkpoint {
    let mut metadata = meta.to_map();
    // The architecture itself, so networks built in code load back (presets rebuild the same).
    metadata.insert(
        LAYERS_KEY.into(),
        serde_json::to_string(&model.layer_specs()).expect("layer specs serialize"),
    );
    Checkpoint {
        tensors: model_tensors(model),
        metadata,
    }
}

/// Rebuilds a model from a checkpoint: reads the metadata, builds that architecture, checks every
/// name and shape, and copies the values in (non-finite values were already refused).
pub fn load_model(path: &Path) -> Result<(Model<f32>, ModelMeta), ModelIoError> {
    let ckpt = checkpoint::load(path)?;
    model_from_checkpoint(&path.display().to_string(), &ckpt)
}

/// Like [`load_model`], from an already-read checkpoint.
pub fn model_from_checkpoint(
    source: &str,
    ckpt: &Checkpoint,
) -> Result<(Model<f32>, ModelMeta), ModelIoError> {
    let meta = ModelMeta::from_map(source, &ckpt.metadata)?;
    // A preset is rebuilt from its own definition (its stored layer list is the same); only a
    // custom network is rebuilt from the list, which it must have.
    let built = match (meta.model, ckpt.metadata.get(LAYERS_KEY)) {
        (ModelKind::Custom, Some(text)) => {
            let specs: Vec<LayerSpec> =
                serde_json::from_str(text).map_err(|e| ModelIoError::Metadata {
                    path: source.into(),
                    key: LAYERS_KEY,
                    expected: "a JSON list of layers (op conv, reuse_conv, relu, max_pool, \
                               batch_norm, flatten, dropout, linear)"
                        .into(),
                    found: format!("text that does not parse: {e}"),
                })?;
            build_from_specs(meta.model, meta.input, meta.class_names.len(), &specs, 0)
        }
        (ModelKind::Custom, None) => {
            return Err(ModelIoError::Metadata {
                path: source.into(),
                key: LAYERS_KEY,
                expected: "the layer list of a custom network".into(),
                found: "no such key".into(),
            })
        }
        (kind, _) => kind.build(meta.input, meta.class_names.len(), 0),
    };
    let mut model: Model<f32> = built.map_err(|e| ModelIoError::Model {
        path: source.into(),
        source: e,
    })?;
    fill_model(source, &mut model, ckpt)?;
    Ok((model, meta))
}

/// Copies a checkpoint's tensors into an existing model after checking names and shapes.
pub fn fill_model(
    source: &str,
    model: &mut Model<f32>,
    ckpt: &Checkpoint,
) -> Result<(), ModelIoError> {
    let expected: Vec<(String, Vec<usize>)> = model
        .named_tensors()
        .iter()
        .map(|(n, t)| (n.to_string(), t.shape().to_vec()))
        .collect();
    let subset = Checkpoint {
        tensors: ckpt
            .tensors
            .iter()
            .filter(|t| !t.name.starts_with("optimizer."))
            .cloned()
            .collect(),
        metadata: BTreeMap::new(),
    };
    subset.check_layout(&format!("{source} (model {})", model.kind), &expected)?;
    let n_params = model.params.len();
    for (i, (name, _)) in expected.iter().enumerate() {
        let t = subset.get(name).expect("layout checked");
        let mut value = Tensor::from_vec(&t.shape, t.data.clone()).expect("layout checked");
        if i < n_params {
            // shared, as a built model's: its tapes hold it without a copy
            value.make_shared();
            model.params[i] = value;
        } else {
            model.buffers[i - n_params] = value;
        }
    }
    Ok(())
}

/// Loads a checkpoint of ours or a plain PyTorch `state_dict` saved with
/// `safetensors.torch.save_file`, for a model built as `kind` with `input` (C, H, W) and
/// `classes` outputs.
///
/// Our checkpoints keep every check (checksum included) and must say they hold `kind`; a plain
/// state_dict needs PyTorch's names (`conv1.weight`, `fc1.bias`, `bn1.running_mean`, ...) and
/// layouts, which are this engine's own, f32 or f64; `num_batches_tracked` is ignored.
pub fn load_state_dict(
    path: &Path,
    kind: ModelKind,
    input: [usize; 3],
    classes: usize,
) -> Result<Model<f32>, ModelIoError> {
    let source = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| CheckpointError::Io {
        path: source.clone(),
        action: "read",
        source: e,
    })?;
    let ckpt = checkpoint::from_any_bytes(&source, &bytes)?;
    if !ckpt.metadata.is_empty() {
        if let Ok(meta) = ModelMeta::from_map(&source, &ckpt.metadata) {
            if meta.model != kind {
                return Err(ModelIoError::Metadata {
                    path: source,
                    key: "model",
                    expected: kind.to_string(),
                    found: meta.model.to_string(),
                });
            }
        }
    }
    let mut model: Model<f32> = kind
        .build(input, classes, 0)
        .map_err(|e| ModelIoError::Model {
            path: source.clone(),
            source: e,
        })?;
    fill_model(&source, &mut model, &ckpt)?;
    Ok(model)
}
