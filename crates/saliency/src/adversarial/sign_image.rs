//! The sign image alone: classify eps * sign(g) by itself, without the input it was made for.

use tensor::Tensor;

use super::attack::AttackConfig;
use super::check::{check_batch, check_epsilon, check_inputs_in_unit_range};
use super::fgsm::sign;
use super::gradient::loss_gradient_and_values;
use super::prediction::{predict, Prediction};
use super::AdversarialError;
use crate::models::Model;

/// eps * sign(g), element by element (sign(0) = 0). Its values are -eps, 0 and eps, so it lies
/// outside [0, 1]; it is classified as it is, as the study does.
pub fn sign_image(grad: &Tensor<f32>, eps: f64) -> Result<Tensor<f32>, AdversarialError> {
    check_epsilon("epsilon", eps)?;
    let e = eps as f32;
    Ok(Tensor::from_vec(
        grad.shape(),
        grad.data().iter().map(|&g| e * sign(g)).collect(),
    )?)
}

/// For each image of `inputs` with its true label, the class and confidence the model gives the
/// fast-gradient-sign perturbation eps * sign(g) on its own. The study shows that this noise-like
/// image is often classified, with high confidence, as a class other than the input's.
pub fn classify_sign_image(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Vec<Prediction>, AdversarialError> {
    check_epsilon("epsilon", eps)?;
    check_batch(model, inputs, labels)?;
    check_inputs_in_unit_range(inputs)?;
    let (g, _) = loss_gradient_and_values(model, inputs, labels, config.loss, config.batch)?;
    predict(model, &sign_image(&g, eps)?, config.batch)
}
