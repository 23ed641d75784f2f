//! Completeness: how far a map's sum is from the output difference it should add up to.

use tensor::{Float, Tensor};

use super::target::{scores, Score};
use super::{check_classes, check_inputs, AttributionError};
use crate::models::Model;

/// Per image: sum(map) - (F(x) - F(baseline)), with F the `score` of `classes[n]` and one
/// baseline (C, H, W) or (1, C, H, W) for all images. Defined for the methods whose maps add up
/// to that difference (integrated gradients, DeepLIFT, Shapley sampling; GradientSHAP in
/// expectation). Returns (errors, differences).
pub fn completeness_error<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    maps: &Tensor<T>,
    baseline: &Tensor<T>,
    score: Score,
) -> Result<(Vec<f64>, Vec<f64>), AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    let per = inputs.numel() / n;
    if baseline.numel() != per || !maps.numel().is_multiple_of(n) {
        return Err(AttributionError::Shape {
            what: "baseline",
            expected: model.input,
            found: baseline.shape().to_vec(),
        });
    }
    let f = scores(model, inputs, classes, score)?;
    let mut shape = inputs.shape().to_vec();
    shape[0] = 1;
    let b = Tensor::from_vec(&shape, baseline.data().to_vec())?;
    let mut out = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (i, map) in maps.data().chunks_exact(maps.numel() / n).enumerate() {
        let f0 = scores(model, &b, &classes[i..i + 1], score)?[0];
        let total: f64 = map.iter().map(|v| v.to_f64()).sum();
        out.0.push(total - (f[i] - f0));
        out.1.push(f[i] - f0);
    }
    Ok(out)
}
