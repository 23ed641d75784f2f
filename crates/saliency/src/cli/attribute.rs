//! `saliency attribute`: attribution maps of test images for a checkpoint, as tensors and a picture.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::attribute_method::{compute, Method};
use super::checkpoint_data::{load_with_test_data, parse_indices};
use super::common::DataArgs;
use crate::attribution::{Score, Target};
use crate::checkpoint::{self, Checkpoint, NamedTensor};
use crate::infer::{argmax_rows, predict_probs};
use crate::render::save_png;
use crate::staged_dir::StagedDir;
use crate::study::figures::{attribution_grid, AttributedImage};
use tensor::Tensor;

/// Options of `saliency attribute`.
#[derive(Args, Debug)]
pub struct AttributeArgs {
    /// The checkpoint (model.safetensors of a run).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The attribution method.
    #[arg(long, value_enum, default_value_t = Method::GradientXInput)]
    method: Method,
    /// Class to explain: pred (the predicted class), label (the true class) or a class index.
    #[arg(long, default_value = "pred")]
    target: Target,
    /// Gradient x input: the signed textbook form (dF/da) * a instead of the study's |ds/da| * a.
    #[arg(long)]
    pub(super) signed: bool,
    /// Test images to explain: A..B or a comma list.
    #[arg(long, default_value = "0..16")]
    indices: String,
    /// Integrated gradients: path steps.
    #[arg(long, allow_negative_numbers = true, default_value_t = 50)]
    pub(super) steps: usize,
    /// Explain the probability or the logit (default: probability for the study's methods,
    /// logit, the model's output as in Captum, for the others).
    #[arg(long)]
    pub(super) score: Option<Score>,
    /// Integrated gradients and deeplift: baseline (reference), black or gray (gradient-shap: black).
    #[arg(long, default_value = "black")]
    pub(super) baseline: String,
    /// Occlusion and shapley-sampling: patch side (default 4 for 28x28, 32 for 256x256).
    #[arg(long, allow_negative_numbers = true)]
    pub(super) patch: Option<usize>,
    /// Occlusion: patch stride (default: the patch side).
    #[arg(long, allow_negative_numbers = true)]
    pub(super) stride: Option<usize>,
    /// smoothgrad, vargrad, gradient-shap: noisy samples per image (default 50);
    /// shapley-sampling: random orders per image (default 25). 1 to 10000.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) samples: Option<usize>,
    /// smoothgrad, vargrad: noise standard deviation in input units, above 0 up to 10 (default
    /// 0.15); gradient-shap: from 0 (the default) up to 10.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) sigma: Option<f64>,
    /// Seed of the sampling methods' draws.
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// grad-cam, guided-grad-cam: the conv layer (conv1, conv2, ...; default the last).
    #[arg(long)]
    pub(super) layer: Option<String>,
    /// lrp-epsilon, lrp-gamma, lrp-alpha-beta: the stabilizer eps, >= 0 (default 1e-9, Captum's).
    #[arg(long, allow_negative_numbers = true)]
    pub(super) epsilon: Option<f64>,
    /// lrp-gamma: weight of the positive weights, >= 0 (default 0.25).
    #[arg(long, allow_negative_numbers = true)]
    pub(super) gamma: Option<f64>,
    /// lrp-alpha-beta: weight of positive contributions, >= 0 (default 2).
    #[arg(long, allow_negative_numbers = true)]
    pub(super) alpha: Option<f64>,
    /// lrp-alpha-beta: weight of negative contributions, >= 0 (default 1).
    #[arg(long, allow_negative_numbers = true)]
    pub(super) beta: Option<f64>,
    #[command(flatten)]
    data: DataArgs,
    /// Worker threads, 1 to 1024 (default: all cores); more are refused, as they only add overhead.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) threads: Option<usize>,
    /// Output folder for attributions.safetensors and attributions.png.
    #[arg(long)]
    out: PathBuf,
}

/// Computes the maps and writes them.
pub fn run(args: AttributeArgs) -> anyhow::Result<()> {
    let (model, meta, test) = load_with_test_data(&args.checkpoint, &args.data)?;
    let idx = parse_indices(&args.indices, test.len())?;
    let subset = test.subset(&idx, "selected");
    let [c, h, w] = model.input;
    let inputs = Tensor::from_vec(&[idx.len(), c, h, w], subset.images.clone())?;
    let labels: Vec<usize> = subset.labels.iter().map(|&l| l as usize).collect();
    let classes = args.target.resolve(&model, &inputs, Some(&labels))?;
    let method = args.method;
    let (maps, extra) = compute(method, &args, &model, &inputs, &classes, &idx)?;
    // Written whole or not at all: the picture and tensors go to a stage beside --out first.
    let stage = StagedDir::new(&args.out)
        .with_context(|| format!("--out: cannot write beside {}", args.out.display()))?;
    let per_image = maps.numel() / idx.len();
    for (i, m) in maps.data().chunks_exact(per_image).enumerate() {
        if m.iter().all(|&v| v == 0.0) {
            eprintln!("warning: the {} map of image {} is zero everywhere; it is drawn as zeros (nothing to normalize)", method.name(), idx[i]);
        }
    }
    let probs = predict_probs(&model, inputs.data(), 256)?;
    let preds = argmax_rows(&probs, model.classes);
    let map_channels = maps.shape()[1];
    let per_map = map_channels * h * w;
    let items: Vec<AttributedImage> = (0..idx.len())
        .map(|i| AttributedImage {
            pixels: subset.image(i),
            map: &maps.data()[i * per_map..(i + 1) * per_map],
            map_channels,
            label: meta.class_names[labels[i]].clone(),
            prediction: Some((
                meta.class_names[preds[i]].clone(),
                probs[i * model.classes + preds[i]],
            )),
            correct: preds[i] == labels[i],
        })
        .collect();
    let columns = if idx.len() == 16 {
        4
    } else {
        ((idx.len() as f64).sqrt().ceil() as usize).max(1)
    };
    let picture = attribution_grid(
        &items,
        model.input,
        columns,
        &format!("{} (target {})", method.name(), args.target),
    );
    save_png(&stage.path().join("attributions.png"), &picture)?;
    let tensors = vec![
        NamedTensor {
            name: "attributions".into(),
            shape: maps.shape().to_vec(),
            data: maps.data().to_vec(),
        },
        NamedTensor {
            name: "inputs".into(),
            shape: inputs.shape().to_vec(),
            data: inputs.data().to_vec(),
        },
        NamedTensor {
            name: "targets".into(),
            shape: vec![classes.len()],
            data: classes.iter().map(|&k| k as f32).collect(),
        },
    ];
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert("method".into(), method.name().clone());
    metadata.insert("target".into(), args.target.to_string());
    metadata.insert("checkpoint".into(), args.checkpoint.display().to_string());
    metadata.insert("indices".into(), serde_json::to_string(&idx)?);
    checkpoint::save(
        &stage.path().join("attributions.safetensors"),
        &Checkpoint { tensors, metadata },
    )?;
    stage
        .commit(&["attributions.safetensors"])
        .with_context(|| format!("--out: cannot move the results into {}", args.out.display()))?;
    eprintln!(
        "wrote {0}/attributions.safetensors and {0}/attributions.png ({1} images, {2}{extra})",
        args.out.display(),
        idx.len(),
        method.name()
    );
    Ok(())
}
