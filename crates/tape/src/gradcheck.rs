//! Gradient checks against central finite differences in f64.
//!
//! The output `y` of the graph under test is projected with fixed random weights,
//! `L = sum(r * y)`, so the upstream gradient reaching the op is not all ones and a backward that
//! mixes up elements is caught.

use tensor::testing::check_close;
use tensor::Tensor;

use crate::{NodeId, Tape, TapeError};

/// Builds the graph under test from its input nodes and returns its output node.
pub type Build<'a> = dyn Fn(&mut Tape<f64>, &[NodeId]) -> Result<NodeId, TapeError> + 'a;

/// Deterministic pseudo-random values in [-1, 1) (SplitMix64), for projections and directions.
pub fn random_values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// `L = sum(r * y)` for the graph built on `inputs`, plus the tape and input ids.
fn projected(
    build: &Build<'_>,
    inputs: &[Tensor<f64>],
    seed: u64,
) -> Result<(Tape<f64>, Vec<NodeId>, NodeId), TapeError> {
    let mut tape = Tape::new();
    let ids: Vec<NodeId> = inputs.iter().map(|t| tape.variable(t.clone())).collect();
    let y = build(&mut tape, &ids)?;
    let shape = tape.value(y).shape().to_vec();
    let r = tape.constant(Tensor::from_vec(
        &shape,
        random_values(shape.iter().product(), seed),
    )?);
    let ry = tape.mul(y, r)?;
    let loss = tape.sum(ry)?;
    Ok((tape, ids, loss))
}

fn loss_value(build: &Build<'_>, inputs: &[Tensor<f64>], seed: u64) -> Result<f64, TapeError> {
    let (tape, _, loss) = projected(build, inputs, seed)?;
    Ok(tape.value(loss).data()[0])
}

/// Compares the tape's gradient of every input with central differences of step `h`
/// (`|analytic - numeric| <= atol + rtol * |numeric|`). The error names the input and its
/// worst element, with both values.
pub fn check_gradients(
    build: &Build<'_>,
    inputs: &[Tensor<f64>],
    seed: u64,
    h: f64,
    atol: f64,
    rtol: f64,
) -> Result<(), String> {
    let (mut tape, ids, loss) = projected(build, inputs, seed).map_err(|e| e.to_string())?;
    let grads = tape.backward(loss).map_err(|e| e.to_string())?;
    for (k, input) in inputs.iter().enumerate() {
        let analytic = grads.get_or_zeros(ids[k], input.shape());
        let mut numeric = vec![0.0; input.numel()];
        let mut probe = inputs.to_vec();
        for (i, num) in numeric.iter_mut().enumerate() {
            let orig = input.data()[i];
            probe[k].data_mut()[i] = orig + h;
            let plus = loss_value(build, &probe, seed).map_err(|e| e.to_string())?;
            probe[k].data_mut()[i] = orig - h;
            let minus = loss_value(build, &probe, seed).map_err(|e| e.to_string())?;
            probe[k].data_mut()[i] = orig;
            *num = (plus - minus) / (2.0 * h);
        }
        check_close(
            &format!("gradient of input {k} (shape {:?})", input.shape()),
            analytic.data(),
            &numeric,
            atol,
            rtol,
        )?;
    }
    Ok(())
}

/// Directional check for graphs too large to perturb element by element: for a random
/// unit direction `v` over all inputs, `(L(x + h v) - L(x - h v)) / 2h` against `<grad L, v>`.
/// Returns `(analytic, numeric)`.
pub fn directional_derivative(
    build: &Build<'_>,
    inputs: &[Tensor<f64>],
    seed: u64,
    h: f64,
) -> Result<(f64, f64), String> {
    let (mut tape, ids, loss) = projected(build, inputs, seed).map_err(|e| e.to_string())?;
    let grads = tape.backward(loss).map_err(|e| e.to_string())?;
    let mut dirs: Vec<Vec<f64>> = inputs
        .iter()
        .enumerate()
        .map(|(k, t)| random_values(t.numel(), seed ^ (0xD1 + k as u64)))
        .collect();
    // A unit direction: with millions of inputs a raw random direction would move the point so
    // far that ReLU kinks fall inside the step.
    let norm = dirs.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    if norm > 0.0 {
        dirs.iter_mut().flatten().for_each(|v| *v /= norm);
    }
    let mut analytic = 0.0;
    for (k, input) in inputs.iter().enumerate() {
        let g = grads.get_or_zeros(ids[k], input.shape());
        analytic += g
            .data()
            .iter()
            .zip(&dirs[k])
            .map(|(a, b)| a * b)
            .sum::<f64>();
    }
    let shifted = |sign: f64| -> Vec<Tensor<f64>> {
        inputs
            .iter()
            .zip(&dirs)
            .map(|(t, d)| Tensor::from_fn(t.shape(), |i| t.data()[i] + sign * h * d[i]))
            .collect()
    };
    let plus = loss_value(build, &shifted(1.0), seed).map_err(|e| e.to_string())?;
    let minus = loss_value(build, &shifted(-1.0), seed).map_err(|e| e.to_string())?;
    Ok((analytic, (plus - minus) / (2.0 * h)))
}
