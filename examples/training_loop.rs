//! A training loop written out by hand in about 30 lines: a small CNN built in code, Adam, one
//! pass over 4,096 Fashion-MNIST images (the shipped sample when no full copy is found), then
//! test accuracy. `saliency::train::Trainer` does the same for the study's networks, with
//! checkpoints, resume and hooks.
//!
//! `cargo run --release --example training_loop`

use saliency::data::{ensure_fashion_mnist, load_fashion_mnist};
use saliency::loss::LossKind;
use saliency::models::builder::ModelBuilder;
use saliency::models::init::Init;
use saliency::models::{Mode, ModelKind};
use saliency::train::{evaluate, forward_backward, Optimizer, OptimizerConfig, StepTapes};
use saliency::Tensor;

/// The allocator the `saliency` command uses (`saliency::allocator`): each thread allocates from
/// its own heap, and freed buffers stay mapped for the next step.
#[global_allocator]
static ALLOCATOR: saliency::allocator::MiMalloc = saliency::allocator::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    saliency::allocator::keep_freed_memory();
    let found = ensure_fashion_mnist(None, false)?;
    let (train, test) = load_fashion_mnist(&found.dir)?;
    println!("data: {} copy in {}", found.origin, found.dir.display());
    let mut b = ModelBuilder::new(ModelKind::Deep, [1, 28, 28], 10, Init::GlorotUniform, 0);
    b.conv("conv1", 16, 3, 1, 1)?.relu()?.pool(2, 2)?;
    b.conv("conv2", 32, 3, 1, 1)?.relu()?.pool(2, 2)?;
    b.flatten()?.linear("fc1", 64)?.relu()?.head("fc2")?;
    let mut model = b.build()?;
    let mut optimizer = Optimizer::new(OptimizerConfig::study_adam(), &model.params);
    let mut tapes = StepTapes::new();
    let batch = 32;
    for (step, start) in (0..4096).step_by(batch).enumerate() {
        let images = Tensor::from_vec(
            &[batch, 1, 28, 28],
            train.images[start * 784..(start + batch) * 784].to_vec(),
        )?;
        let labels: Vec<usize> = train.labels[start..start + batch]
            .iter()
            .map(|&l| l as usize)
            .collect();
        let mode = Mode::Train { seed: step as u64 };
        let out = forward_backward(
            &mut model,
            &mut tapes,
            images,
            &labels,
            mode,
            LossKind::CrossEntropy,
        )?;
        let grads = out.grads.ok_or("the loss is not finite")?;
        let check = optimizer.step(&mut model.params, &grads, &model.param_info, 0.0);
        tapes.recycle(grads);
        if let Some(i) = check.non_finite_gradient.or(check.non_finite_parameter) {
            return Err(format!("step {step}: {} is not finite", model.param_info[i].name).into());
        }
        if step % 32 == 0 {
            println!("step {step:3}: loss {:.4}", out.loss);
        }
    }
    let eval = evaluate(&model, &test.take(1000))?;
    println!(
        "test accuracy after 128 steps: {:.1} %",
        100.0 * eval.accuracy
    );
    Ok(())
}
