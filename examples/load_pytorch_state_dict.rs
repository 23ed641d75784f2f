//! Loads a `deep` trained in PyTorch from its plain `state_dict` (saved with
//! `safetensors.torch.save_file`, no metadata) and classifies the 16 test images stored beside it.
//! See docs/pytorch.md for the other direction.
//!
//! `cargo run --example load_pytorch_state_dict [-- STATE_DICT.safetensors]`

use std::path::PathBuf;

use saliency::infer::{argmax_rows, predict_probs};
use saliency::model_io::load_state_dict;
use saliency::models::ModelKind;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch");
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| fixtures.join("deep_state_dict.safetensors"));
    let model = load_state_dict(&path, ModelKind::Deep, [1, 28, 28], 10)?;
    println!("loaded {}", path.display());

    // The fixture's 16 test images and their labels.
    let bytes = std::fs::read(fixtures.join("deep_expected.safetensors"))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    let floats = |name: &str| -> Result<Vec<f32>, Box<dyn std::error::Error>> {
        Ok(st
            .tensor(name)?
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let (inputs, labels) = (floats("inputs")?, floats("labels")?);
    let predicted = argmax_rows(&predict_probs(&model, &inputs, 16)?, 10);
    let right = predicted
        .iter()
        .zip(&labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    println!("predicted {predicted:?}");
    println!("{right} of 16 right (PyTorch's accuracy on the whole test set: 50.78 %)");
    Ok(())
}
