//! A differentiable function of your own on the tape, checked against central differences in
//! f64, as every op of the engine is. Here `squared_relu(x) = relu(x)^2`, composed of the tape's
//! `relu` and `mul`; a new primitive (its own kernel and backward rule) is added inside the
//! `tape` crate instead (docs/adding-an-op.md), and checked with the same `check_gradients`.
//!
//! `cargo run --example custom_op_with_gradient_check`

use tape::gradcheck::{check_gradients, random_values};
use tape::{NodeId, Tape, TapeError};
use tensor::Tensor;

/// relu(x)^2, elementwise: its gradient 2 relu(x) comes from the tape's own rules.
fn squared_relu(tape: &mut Tape<f64>, x: NodeId) -> Result<NodeId, TapeError> {
    let r = tape.relu(x)?;
    tape.mul(r, r)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Values kept away from the kink at 0, where a central difference straddles two slopes.
    let values: Vec<f64> = random_values(24, 3)
        .into_iter()
        .map(|v| if v.abs() < 0.05 { v + 0.1 } else { v })
        .collect();
    let x = Tensor::from_vec(&[2, 3, 4], values)?;
    let build = |tape: &mut Tape<f64>, ids: &[NodeId]| squared_relu(tape, ids[0]);
    check_gradients(&build, &[x], 11, 1e-6, 1e-8, 1e-6)?;
    println!("squared_relu: the tape's gradient matches central differences (h = 1e-6)");
    Ok(())
}
