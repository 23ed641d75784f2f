//! `saliency attribute`: attribution maps of test images for a checkpoint, as tensors and a picture.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use super::attribute_method::{compute, MethodSettings};
use super::checkpoint_data::{load_any, load_with_test_images, parse_indices};
use super::common::DataArgs;
use super::user_images::load_user_images;
use crate::attribution::Method;
use crate::attribution::{Score, Target};
use crate::checkpoint::{self, Checkpoint, NamedTensor};
use crate::data::{CacheBudget, ImageSource};
use crate::infer::{argmax_rows, predict_probs};
use crate::render::{attribution_picture, save_png, PictureItem, PictureOptions, Sign, Style};
use crate::staged_dir::StagedDir;
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
    /// Test images to explain: A..B or a comma list (default 0..16).
    #[arg(long)]
    indices: Option<String>,
    /// Attribute these PNG or JPEG files instead of test images (resized to the model's input).
    #[arg(long, num_args = 1..)]
    image: Vec<PathBuf>,
    /// Which part of each map the picture shows (default: all for signed methods, positive else).
    #[arg(long, value_enum)]
    sign: Option<SignArg>,
    /// How each map is drawn.
    #[arg(long, value_enum, default_value_t = StyleArg::Blended)]
    style: StyleArg,
    /// Percent of each map's attribution mass clipped as outliers before scaling (Captum's 2).
    #[arg(long, allow_negative_numbers = true, default_value_t = 2.0)]
    outlier_percent: f64,
    /// Print one JSON document (per-image sums, targets, predictions, files) on stdout; the
    /// human-readable lines go to stderr.
    #[arg(long)]
    json: bool,
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
    /// Integrated gradients, deeplift, gradient-shap: a reference image (PNG/JPEG of exactly the
    /// model's input size) instead of --baseline.
    #[arg(long)]
    pub(super) reference: Option<PathBuf>,
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

/// Which part of a map the picture shows (Captum's `sign`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SignArg {
    /// Positive and negative on a diverging map (the default for signed methods).
    All,
    /// The positive part (the default for non-negative methods).
    Positive,
    /// The negative part, by its magnitude.
    Negative,
    /// The magnitude.
    Absolute,
}

/// How each map is drawn (Captum's `method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StyleArg {
    /// The map alone.
    HeatMap,
    /// The map over a gray copy of the image.
    Blended,
    /// The image times the map's magnitude (not with --sign all).
    Masked,
}

/// The images to explain, with what is known about them.
struct Batch {
    inputs: Tensor<f32>,
    /// True classes (test images only).
    labels: Option<Vec<usize>>,
    /// How each image is named in messages and the JSON: `test 12` or the file.
    names: Vec<String>,
    /// Test indices (empty for files).
    indices: Vec<usize>,
}

/// Computes the maps and writes them.
pub fn run(args: AttributeArgs) -> anyhow::Result<()> {
    let method = args.method;
    let sign = args.sign.unwrap_or(if method.signed(args.signed) {
        SignArg::All
    } else {
        SignArg::Positive
    });
    if sign == SignArg::All && args.style == StyleArg::Masked {
        bail!("--style masked: the masked image shows magnitudes, not signs; pick --sign positive, negative or absolute (as in Captum)");
    }
    if !(args.outlier_percent.is_finite() && (0.0..100.0).contains(&args.outlier_percent)) {
        bail!(
            "--outlier-percent: expected a share of the attribution mass from 0 to below 100, found {}",
            args.outlier_percent
        );
    }
    let (model, meta, batch) = if args.image.is_empty() {
        // Only the picked test images are held, as floats; nothing is cached (they are read once).
        let (model, meta, test) =
            load_with_test_images(&args.checkpoint, &args.data, &CacheBudget::new(0))?;
        let idx = parse_indices(args.indices.as_deref().unwrap_or("0..16"), test.count())?;
        let subset = test.to_dataset(&idx, "selected")?;
        let [c, h, w] = model.input;
        let inputs = Tensor::from_vec(&[idx.len(), c, h, w], subset.images.clone())?;
        let labels = subset.labels.iter().map(|&l| l as usize).collect();
        let names = idx.iter().map(|i| format!("test {i}")).collect();
        let batch = Batch {
            inputs,
            labels: Some(labels),
            names,
            indices: idx,
        };
        (model, meta, batch)
    } else {
        if let Some(spec) = &args.indices {
            bail!("--indices {spec}: picks test images; with --image the files are the images");
        }
        if args.target == Target::Label {
            bail!("--target label: files given with --image have no labels; use pred or a class index");
        }
        let (model, meta) = load_any(&args.checkpoint, &args.data)?;
        let inputs = load_user_images(&args.image, model.input)?;
        let names = args.image.iter().map(|p| p.display().to_string()).collect();
        (
            model,
            meta,
            Batch {
                inputs,
                labels: None,
                names,
                indices: Vec::new(),
            },
        )
    };
    let inputs = &batch.inputs;
    let n = batch.names.len();
    let [_, h, w] = model.input;
    let classes = args
        .target
        .resolve(&model, inputs, batch.labels.as_deref())?;
    let settings = MethodSettings::from(&args);
    let (maps, extra) = compute(method, &settings, &model, inputs, &classes, &batch.names)?;
    // Written whole or not at all: the picture and tensors go to a stage beside --out first.
    let stage = StagedDir::new(&args.out)
        .with_context(|| format!("--out: cannot write beside {}", args.out.display()))?;
    let per_image = maps.numel() / n;
    for (i, m) in maps.data().chunks_exact(per_image).enumerate() {
        if m.iter().all(|&v| v == 0.0) {
            eprintln!("warning: the {} map of {} is zero everywhere; it is drawn as zeros (nothing to normalize)", method.name(), batch.names[i]);
        }
    }
    let probs = predict_probs(&model, inputs.data(), 256)?;
    let preds = argmax_rows(&probs, model.classes);
    let map_channels = maps.shape()[1];
    let per_map = map_channels * h * w;
    let per_input = inputs.numel() / n;
    // The picture shows the first PICTURE_MAX_IMAGES: 10,000 maps drawn in one grid took 3.4 GB
    // of memory for a 25,000-pixel-wide PNG nobody can read; every map is in the tensors.
    let drawn = n.min(PICTURE_MAX_IMAGES);
    let items: Vec<PictureItem> = (0..drawn)
        .map(|i| PictureItem {
            pixels: &inputs.data()[i * per_input..(i + 1) * per_input],
            map: &maps.data()[i * per_map..(i + 1) * per_map],
            map_channels,
            label: match &batch.labels {
                Some(l) => meta.class_names[l[i]].clone(),
                None => file_name(&batch.names[i]),
            },
            prediction: Some((
                meta.class_names[preds[i]].clone(),
                probs[i * model.classes + preds[i]],
            )),
            correct: batch.labels.as_ref().map(|l| preds[i] == l[i]),
        })
        .collect();
    let columns = if drawn == 16 {
        4
    } else {
        ((drawn as f64).sqrt().ceil() as usize).max(1)
    };
    let options = PictureOptions {
        sign: match sign {
            SignArg::All => Sign::All,
            SignArg::Positive => Sign::Positive,
            SignArg::Negative => Sign::Negative,
            SignArg::Absolute => Sign::Absolute,
        },
        style: match args.style {
            StyleArg::HeatMap => Style::HeatMap,
            StyleArg::Blended => Style::Blended,
            StyleArg::Masked => Style::Masked,
        },
        outlier_percent: args.outlier_percent as f32,
    };
    let sign_name = sign
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    let mut title = format!(
        "{} (target {}); sign {sign_name}, each map clipped at its {}% outlier mass",
        method.name(),
        args.target,
        args.outlier_percent
    );
    if drawn < n {
        title.push_str(&format!("; the first {drawn} of {n} images"));
    }
    let picture = attribution_picture(&items, model.input, columns, &title, &options);
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
    metadata.insert("method".into(), method.name().to_string());
    metadata.insert("target".into(), args.target.to_string());
    metadata.insert("checkpoint".into(), args.checkpoint.display().to_string());
    if batch.labels.is_some() {
        metadata.insert("indices".into(), serde_json::to_string(&batch.indices)?);
    } else {
        metadata.insert("images".into(), serde_json::to_string(&batch.names)?);
    }
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
        n,
        method.name()
    );
    if drawn < n {
        eprintln!(
            "note: attributions.png shows the first {drawn} of the {n} maps; all {n} are in attributions.safetensors"
        );
    }
    if args.json {
        let images: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                let m = &maps.data()[i * per_map..(i + 1) * per_map];
                let sum: f64 = m.iter().map(|&v| f64::from(v)).sum();
                let positive: f64 = m.iter().map(|&v| f64::from(v.max(0.0))).sum();
                let negative: f64 = m.iter().map(|&v| f64::from(v.min(0.0))).sum();
                serde_json::json!({
                    "image": batch.names[i],
                    "label": batch.labels.as_ref().map(|l| meta.class_names[l[i]].clone()),
                    "target": classes[i],
                    "target_name": meta.class_names[classes[i]],
                    "predicted": meta.class_names[preds[i]],
                    "confidence": probs[i * model.classes + preds[i]],
                    "sum": sum,
                    "positive_sum": positive,
                    "negative_sum": negative,
                    "max_abs": m.iter().fold(0.0f32, |a, &v| a.max(v.abs())),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "method": method.name(),
            "target": args.target.to_string(),
            "checkpoint": args.checkpoint.display().to_string(),
            "out": args.out.display().to_string(),
            "files": ["attributions.safetensors", "attributions.png"],
            "map_shape": maps.shape(),
            "picture_images": drawn,
            "sign": sign_name,
            "images": images,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}

/// Most maps `attributions.png` draws (a 16 x 16 grid); the tensors hold every map.
const PICTURE_MAX_IMAGES: usize = 256;

/// The last component of a path, for a caption.
fn file_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}
