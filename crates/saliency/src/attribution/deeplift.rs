//! DeepLIFT with the rescale rule (Shrikumar et al. 2017), as Captum's `DeepLift`: multipliers
//! (y - y')/(x - x') at every ReLU and max-pool against a reference input, chained like
//! gradients, times (x - x').

use std::borrow::Cow;

use tape::RuleSet;
use tensor::{Float, Tensor};

use super::integrated_gradients::{check_finite, expand_baseline, is_one_image};
use super::rule_signal::{rule_signal_with_references, References};
use super::{check_classes, check_inputs, AttributionError, Baseline, IgResult};
use crate::models::Model;

/// DeepLIFT (rescale) of the logit of `classes[n]` against `reference` (black, gray, or given:
/// (C, H, W), (1, C, H, W) or one per image). The attributions sum to F(x) - F(x') (the
/// summation-to-delta property); the result reports that difference and the residual, as
/// integrated gradients does.
///
/// One reference for every image (black, or one given image) goes through the network once
/// per pass, beside the images; a reference per image (gray, or given per image) doubles each
/// pass. F(x) and F(x') are the logits of that same forward pass.
pub fn deeplift<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    reference: &Baseline<T>,
) -> Result<IgResult<T>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    let per = inputs.numel() / n;
    let layout = match reference {
        Baseline::Black => Layout::Shared(Cow::Owned(vec![T::ZERO; per])),
        Baseline::Given(t) if is_one_image(model, t) => {
            check_finite(t)?;
            Layout::Shared(Cow::Borrowed(t.data()))
        }
        _ => Layout::Paired(expand_baseline(model, inputs, reference)?),
    };
    let (rules, references) = match &layout {
        Layout::Shared(r) => (RuleSet::deeplift_rescale_shared(), References::Shared(r)),
        Layout::Paired(r) => (RuleSet::deeplift_rescale(), References::Paired(r)),
    };
    let out = rule_signal_with_references(model, inputs, classes, rules, references)?;
    let mut m = out.signal;
    for (image, v) in m.data_mut().chunks_exact_mut(per).enumerate() {
        let x = &inputs.data()[image * per..(image + 1) * per];
        let r = match &layout {
            Layout::Shared(r) => r.as_ref(),
            Layout::Paired(r) => &r.data()[image * per..(image + 1) * per],
        };
        for ((v, &x), &r) in v.iter_mut().zip(x).zip(r) {
            *v = T::from_f64(v.to_f64() * (x.to_f64() - r.to_f64()));
        }
    }
    let (f, f0) = (&out.logits, &out.reference_logits);
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

/// How the references go through the network.
enum Layout<'a, T: Clone> {
    /// One image for every input (its values).
    Shared(Cow<'a, [T]>),
    /// One per input, (N, C, H, W).
    Paired(Tensor<T>),
}
