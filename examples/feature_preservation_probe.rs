//! Why does the gradient of a trained network follow the image's edges less than an untrained
//! one's? Prints every [`EdgeProbe`] reading of a trained checkpoint's loss gradients next to the
//! same architecture freshly initialized (seeds 0, 1, 2), on the first N test images of the
//! checkpoint's data set. docs/adversarial.md ("Feature preservation") quotes its output.
//!
//! `SALIENCY_DATA=/work/shared/data cargo run --release --example feature_preservation_probe --
//!  MODEL.safetensors [N] [cross-entropy|double-softmax]`
//!
//! [`EdgeProbe`]: saliency::adversarial::EdgeProbe

use std::path::PathBuf;

use saliency::adversarial::{model_edge_probe, AttackConfig, EdgeProbeMeans};
use saliency::load_model;
use saliency::loss::LossKind;
use saliency::task::DataSpec;
use saliency::Tensor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: MODEL.safetensors [N] [LOSS]")?);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(500);
    let loss: LossKind = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(LossKind::CrossEntropy);
    let (model, meta) = load_model(&path)?;
    let spec = if meta.dataset == "fashion-mnist" {
        DataSpec::fashion_mnist(None)
    } else {
        DataSpec {
            name: meta.dataset.clone(),
            data_dir: None,
            classes: None,
            gray: meta.input[0] == 1,
            size: meta.input[1],
            split_seed: 0,
            test_fraction: 0.2,
            allow_download: false,
            strict: true,
        }
    };
    let (_, test) = spec.load()?;
    let test = test.take(n);
    let [c, h, w] = test.shape;
    let x = Tensor::from_vec(&[test.len(), c, h, w], test.images.clone())?;
    let y: Vec<usize> = test.labels.iter().map(|&l| l as usize).collect();
    let config = AttackConfig {
        loss,
        ..AttackConfig::default()
    };
    println!(
        "{} ({} epochs) on {} x {}, loss {loss}",
        path.display(),
        meta.epoch,
        test.len(),
        test.name
    );
    println!(
        "{:<18} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "model",
        "|g|~edge",
        "g~edge",
        "|g|~img",
        "shown~e",
        "shown~img",
        "obj:|g|~e",
        "bg share",
        "bg pixels"
    );
    let row = |name: &str, m: &EdgeProbeMeans| {
        println!(
            "{:<18} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>9.3} {:>9.3} {:>9.3}",
            name,
            m.abs_vs_edges,
            m.signed_vs_edges,
            m.abs_vs_image,
            m.display_vs_edges,
            m.display_vs_colors,
            m.abs_vs_edges_on_object,
            m.background_share,
            m.background_pixels
        )
    };
    row("trained", &model_edge_probe(&model, &x, &y, &config)?);
    for seed in 0..3 {
        let fresh = meta.model.build::<f32>(meta.input, model.classes, seed)?;
        row(
            &format!("untrained seed {seed}"),
            &model_edge_probe(&fresh, &x, &y, &config)?,
        );
    }
    Ok(())
}
