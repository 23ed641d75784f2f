//! `deep`: the study's "deep network": nine 3x3 convs and three dense layers (~180k parameters).

use tensor::Float;

use super::builder::ModelBuilder;
use super::init::Init;
use super::{Model, ModelError, ModelKind};

/// Output channels of conv1..conv9.
const CHANNELS: [usize; 9] = [16, 16, 16, 32, 32, 32, 64, 64, 64];

/// Builds `deep` for inputs (C, H, W). 28x28 inputs pool after conv1..conv4 (the study's
/// Fashion-MNIST network); larger inputs pool after every conv but conv5 (its flower network).
pub fn deep<T: Float>(
    input: [usize; 3],
    classes: usize,
    seed: u64,
) -> Result<Model<T>, ModelError> {
    let small = input[1] <= 28;
    let mut b = ModelBuilder::new(ModelKind::Deep, input, classes, Init::GlorotUniform, seed);
    for (i, &out) in CHANNELS.iter().enumerate() {
        b.conv(&format!("conv{}", i + 1), out, 3, 1, 1)?.relu()?;
        let pool_here = if small { i < 4 } else { i != 4 };
        if pool_here {
            b.pool(2, 2)?;
        }
    }
    b.flatten()?
        .linear("fc1", 512)?
        .relu()?
        .linear("fc2", 50)?
        .relu()?
        .head("fc3")?;
    b.build()
}
