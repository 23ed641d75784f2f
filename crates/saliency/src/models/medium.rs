//! `medium`: the network the study's flower figures came from; `conv2` is applied twice.

use tensor::Float;

use super::builder::ModelBuilder;
use super::init::Init;
use super::{Model, ModelError, ModelKind};

/// Builds `medium` for inputs (C, H, W), with PyTorch's default initialization.
pub fn medium<T: Float>(
    input: [usize; 3],
    classes: usize,
    seed: u64,
) -> Result<Model<T>, ModelError> {
    let mut b = ModelBuilder::new(ModelKind::Medium, input, classes, Init::TorchDefault, seed);
    b.conv("conv1", 16, 3, 1, 1)?.relu()?.pool(2, 2)?;
    b.conv("conv2", 16, 3, 1, 1)?.relu()?.pool(2, 2)?;
    b.reuse_conv("conv2")?.relu()?.pool(2, 2)?;
    b.conv("conv3", 32, 3, 1, 1)?.relu()?.pool(2, 2)?;
    b.flatten()?
        .linear("fc1", 512)?
        .relu()?
        .linear("fc2", 50)?
        .relu()?
        .head("fc3")?;
    b.build()
}
