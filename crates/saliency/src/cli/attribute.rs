//! `saliency attribute`: attribution maps of test images for a checkpoint, as tensors and a picture.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::checkpoint_data::{load_with_test_data, parse_indices};
use super::common::DataArgs;
use crate::attribution::{
    exact_integrated_gradients, gradient_x_input, gradient_x_input_signed, integrated_gradients,
    occlusion, occlusion_x_gradient, Baseline, ExactIgOptions, IgOptions, IgResult,
    OcclusionOptions, Score, Target,
};
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
    /// gradient-x-input, occlusion, occlusion-x-gradient, integrated-gradients (midpoint rule,
    /// --steps) or exact-integrated-gradients (region by region, no steps; piecewise-linear nets).
    #[arg(long, default_value = "gradient-x-input")]
    method: String,
    /// Class to explain: pred (the predicted class), label (the true class) or a class index.
    #[arg(long, default_value = "pred")]
    target: Target,
    /// Gradient x input: the signed textbook form (dF/da) * a instead of the study's |ds/da| * a.
    #[arg(long)]
    signed: bool,
    /// Test images to explain: A..B or a comma list.
    #[arg(long, default_value = "0..16")]
    indices: String,
    /// Integrated gradients: path steps.
    #[arg(long, allow_negative_numbers = true, default_value_t = 50)]
    steps: usize,
    /// Gradient x input (signed) and integrated gradients: explain the probability or the logit.
    #[arg(long, default_value = "probability")]
    score: Score,
    /// Integrated gradients: baseline, black or gray.
    #[arg(long, default_value = "black")]
    baseline: String,
    /// Occlusion: patch side (default 4 for 28x28, 32 for 256x256).
    #[arg(long, allow_negative_numbers = true)]
    patch: Option<usize>,
    /// Occlusion: patch stride (default: the patch side).
    #[arg(long, allow_negative_numbers = true)]
    stride: Option<usize>,
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
    let mut occ = OcclusionOptions::for_input(model.input);
    if let Some(p) = args.patch {
        occ.patch = p;
        occ.stride = p;
    }
    if let Some(s) = args.stride {
        occ.stride = s;
    }
    let mut extra = String::new();
    let maps = match args.method.as_str() {
        "gradient-x-input" if args.signed => gradient_x_input_signed(&model, &inputs, &classes, args.score)?,
        "gradient-x-input" => gradient_x_input(&model, &inputs, &classes)?,
        "occlusion" => occlusion(&model, &inputs, &occ)?,
        "occlusion-x-gradient" => occlusion_x_gradient(&model, &inputs, &occ)?,
        "integrated-gradients" | "exact-integrated-gradients" => {
            let baseline: Baseline<f32> = args.baseline.parse().map_err(|e| anyhow::anyhow!("--baseline: {e}"))?;
            let (r, regions) = if args.method == "integrated-gradients" {
                let options = IgOptions { steps: args.steps, score: args.score, ..IgOptions::default() };
                (integrated_gradients(&model, &inputs, &classes, &baseline, &options)?, None)
            } else {
                let options = ExactIgOptions { score: args.score, ..ExactIgOptions::default() };
                let r = exact_integrated_gradients(&model, &inputs, &classes, &baseline, &options)?;
                (r.ig, Some(r.regions))
            };
            extra = report_completeness(&r, &idx, regions.as_deref());
            r.attributions
        }
        other => bail!("--method: expected gradient-x-input, occlusion, occlusion-x-gradient, integrated-gradients or exact-integrated-gradients, found '{other}'"),
    };
    // Written whole or not at all: the picture and tensors go to a stage beside --out first.
    let stage = StagedDir::new(&args.out)
        .with_context(|| format!("--out: cannot write beside {}", args.out.display()))?;
    let per_image = maps.numel() / idx.len();
    for (i, m) in maps.data().chunks_exact(per_image).enumerate() {
        if m.iter().all(|&v| v == 0.0) {
            eprintln!("warning: the {} map of image {} is zero everywhere; it is drawn as zeros (nothing to normalize)", args.method, idx[i]);
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
        &format!("{} (target {})", args.method, args.target),
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
    metadata.insert("method".into(), args.method.clone());
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
        args.method
    );
    Ok(())
}

/// Prints each image's completeness error (and the regions its path crossed, for the exact
/// method) and returns the summary for the final line.
fn report_completeness(r: &IgResult<f32>, idx: &[usize], regions: Option<&[usize]>) -> String {
    let relative = |e: f32, d: f32| (e.abs() / d.abs().max(1e-12)) as f64;
    for (i, (e, d)) in r.completeness_error.iter().zip(&r.delta).enumerate() {
        let walked = regions.map_or(String::new(), |r| format!(", {} linear regions", r[i]));
        eprintln!(
            "  image {:>5}: F(a) - F(baseline) = {d:+.5}, completeness error {e:+.2e} ({:.3} %){walked}",
            idx[i],
            100.0 * relative(*e, *d)
        );
    }
    let worst = r
        .completeness_error
        .iter()
        .zip(&r.delta)
        .map(|(e, d)| relative(*e, *d))
        .fold(0.0, f64::max);
    format!(
        ", completeness error at most {:.2e} % of F(a) - F(baseline)",
        100.0 * worst
    )
}
