//! `alexnet`: the study's "AlexNet clone": five convs with batch norm and three dense layers.

use tensor::Float;

use super::builder::ModelBuilder;
use super::init::Init;
use super::{Model, ModelError, ModelKind};

/// Keras's batch-norm defaults, which the study's code used.
const BN_EPS: f64 = 1e-3;
const BN_MOMENTUM: f64 = 0.99;

/// Builds `alexnet` for inputs (C, H, W). Fashion-MNIST keeps one pool (after conv1); larger
/// inputs also pool after conv2 and conv5, as the study's flower version.
pub fn alexnet<T: Float>(
    input: [usize; 3],
    classes: usize,
    seed: u64,
) -> Result<Model<T>, ModelError> {
    let small = input[1] <= 28;
    let mut b = ModelBuilder::new(
        ModelKind::Alexnet,
        input,
        classes,
        Init::GlorotUniform,
        seed,
    );
    b.conv("conv1", 96, 11, 4, 0)?
        .relu()?
        .pool(3, 2)?
        .batch_norm("bn1", BN_EPS, BN_MOMENTUM)?;
    b.conv("conv2", 256, 5, 1, 2)?.relu()?;
    if !small {
        b.pool(3, 2)?;
    }
    b.batch_norm("bn2", BN_EPS, BN_MOMENTUM)?;
    b.conv("conv3", 384, 3, 1, 1)?
        .relu()?
        .conv("conv4", 384, 3, 1, 1)?
        .relu()?
        .conv("conv5", 256, 3, 1, 1)?
        .relu()?;
    if !small {
        b.pool(3, 2)?;
    }
    b.flatten()?
        .dropout(0.5)?
        .linear("fc1", 2048)?
        .relu()?
        .dropout(0.5)?
        .linear("fc2", 2048)?
        .relu()?
        .head("fc3")?;
    b.build()
}
