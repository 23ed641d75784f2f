//! Targeted fast gradient sign (Kurakin et al. 2017): one step down the loss of a chosen target
//! class, a' = a - eps sign(dJ(O(a), t)/da).

use tensor::Tensor;

use super::attack::{attack, AttackConfig};
use super::fgsm::sign_step_signed;
use super::gradient::loss_gradient_and_values;
use super::{AdversarialError, Method};
use crate::models::Model;

/// Targeted FGSM towards `config.target`: a' = a - eps * sign(dJ(O(a), t)/da), clamped to
/// [0, 1] when `config.clip` (as `fgsm`). `labels` are the true labels (checked, not used by the
/// step).
pub fn fgsm_targeted(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    attack(model, Method::FgsmTargeted, inputs, labels, eps, config)
}

/// The step behind [`fgsm_targeted`] for resolved `targets`; arguments are assumed checked.
pub(crate) fn fgsm_towards(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    targets: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    let (g, _) = loss_gradient_and_values(model, inputs, targets, config.loss, config.batch)?;
    sign_step_signed(inputs, &g, -eps, config.clip)
}
