//! Guided backpropagation (Springenberg et al. 2015), as Captum's `GuidedBackprop`: the
//! gradient of the target's logit with every ReLU passing only positive signal where its input
//! was positive.

use tape::RuleSet;
use tensor::{Float, Tensor};

use super::rule_signal::rule_signal;
use super::{check_classes, check_inputs, AttributionError};
use crate::models::Model;

/// Guided backpropagation of the logit of `classes[n]` for image n. Shaped like the inputs.
pub fn guided_backprop<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
) -> Result<Tensor<T>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    rule_signal(model, inputs, classes, RuleSet::guided_backprop())
}
