//! Deconvnet (Zeiler and Fergus 2014), as Captum's `Deconvolution`: the gradient of the target's
//! logit with every ReLU passing the positive part of its upstream signal, whatever its input.

use tape::RuleSet;
use tensor::{Float, Tensor};

use super::rule_signal::rule_signal;
use super::{check_classes, check_inputs, AttributionError};
use crate::models::Model;

/// Deconvnet of the logit of `classes[n]` for image n. Shaped like the inputs.
pub fn deconvnet<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
) -> Result<Tensor<T>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    rule_signal(model, inputs, classes, RuleSet::deconvnet())
}
