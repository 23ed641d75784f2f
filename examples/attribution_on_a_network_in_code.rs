//! Gradient x input and integrated gradients on a network built in code (no checkpoint, no data
//! set): a small CNN from the layer builder, three smooth test images, and the completeness check
//! of integrated gradients (the maps add up to F(image) - F(black)).
//!
//! `cargo run --example attribution_on_a_network_in_code`

use saliency::attribution::{gradient_x_input, integrated_gradients, Baseline, IgOptions};
use saliency::models::builder::ModelBuilder;
use saliency::models::init::Init;
use saliency::models::ModelKind;
use saliency::Tensor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // conv(8, 3x3) -> ReLU -> 2x2 max-pool -> conv(16) -> ReLU -> pool -> dense 32 -> ReLU -> 10.
    let mut b = ModelBuilder::new(ModelKind::Deep, [1, 28, 28], 10, Init::GlorotUniform, 7);
    b.conv("conv1", 8, 3, 1, 1)?.relu()?.pool(2, 2)?;
    b.conv("conv2", 16, 3, 1, 1)?.relu()?.pool(2, 2)?;
    b.flatten()?.linear("fc1", 32)?.relu()?.head("fc2")?;
    let model = b.build()?;

    // Three images in [0, 1]: a blob, a ramp, stripes.
    let images = Tensor::<f32>::from_fn(&[3, 1, 28, 28], |i| {
        let (n, y, x) = (i / 784, (i % 784) / 28, i % 28);
        let (yf, xf) = (y as f32 / 27.0, x as f32 / 27.0);
        match n {
            0 => (-((yf - 0.5).powi(2) + (xf - 0.4).powi(2)) * 12.0).exp(),
            1 => 0.5 * (xf + yf),
            _ => 0.5 + 0.5 * (6.0 * xf).sin() * (4.0 * yf).cos(),
        }
    });
    let classes = [3, 3, 3];

    let gxi = gradient_x_input(&model, &images, &classes)?;
    let ig = integrated_gradients(
        &model,
        &images,
        &classes,
        &Baseline::Black,
        &IgOptions::default(),
    )?;
    for n in 0..3 {
        let map = &gxi.data()[n * 784..(n + 1) * 784];
        let sum: f32 = ig.attributions.data()[n * 784..(n + 1) * 784].iter().sum();
        println!(
            "image {n}: max |gradient x input| {:.3e}; IG sums to {sum:.5}, F(a) - F(0) = {:.5} \
             (completeness error {:.2e})",
            map.iter().fold(0.0f32, |m, v| m.max(v.abs())),
            ig.delta[n],
            ig.completeness_error[n]
        );
    }
    Ok(())
}
