//! DeepLIFT with the rescale rule (Shrikumar et al. 2017), as Captum's `DeepLift`: multipliers
//! (y - y')/(x - x') at every ReLU and max-pool against a reference input, chained like
//! gradients, times (x - x').

use tape::RuleSet;
use tensor::{Float, Tensor};

use super::integrated_gradients::expand_baseline;
use super::rule_signal::rule_signal;
use super::target::{scores, Score};
use super::{check_classes, check_inputs, AttributionError, Baseline, IgResult};
use crate::models::Model;

/// DeepLIFT (rescale) of the logit of `classes[n]` against `reference` (black, gray, or given:
/// (C, H, W), (1, C, H, W) or one per image). The attributions sum to F(x) - F(x') (the
/// summation-to-delta property); the result reports that difference and the residual, as
/// integrated gradients does.
pub fn deeplift<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    reference: &Baseline<T>,
) -> Result<IgResult<T>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    let refs = expand_baseline(model, inputs, reference)?;
    let mut m = rule_signal(
        model,
        inputs,
        classes,
        RuleSet::deeplift_rescale(),
        Some(&refs),
    )?;
    for ((v, &x), &r) in m.data_mut().iter_mut().zip(inputs.data()).zip(refs.data()) {
        *v = T::from_f64(v.to_f64() * (x.to_f64() - r.to_f64()));
    }
    let f = scores(model, inputs, classes, Score::Logit)?;
    let f0 = scores(model, &refs, classes, Score::Logit)?;
    let per = inputs.numel() / n;
    let (mut delta, mut error) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (i, image) in m.data().chunks_exact(per).enumerate() {
        let total: f64 = image.iter().map(|v| v.to_f64()).sum();
        delta.push((f[i] - f0[i]) as f32);
        error.push((total - (f[i] - f0[i])) as f32);
    }
    Ok(IgResult {
        attributions: m,
        completeness_error: error,
        delta,
    })
}
