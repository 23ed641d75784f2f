//! `AttackConfig` and `attack`: one entry point that applies any [`Method`] to a batch.

use tensor::Tensor;

use super::carlini_wagner::{carlini_wagner_unbounded, CwConfig};
use super::check::{check_batch, check_epsilon, check_inputs_in_unit_range};
use super::deepfool::{deepfool_unbounded, within_l2_budget, DeepFoolConfig};
use super::fgsm::{iterate_sign_steps, sign_step};
use super::gradient::loss_gradient_and_values;
use super::normalized::{l2_gradient_step, normalized_gradient_step, normalized_step_norms};
use super::pgd::{pgd_from, Norm, PgdConfig};
use super::random::{random_direction_from, sign_noise_from, uniform_noise_from};
use super::target::TargetClass;
use super::targeted::fgsm_towards;
use super::{AdversarialError, Method};
use crate::loss::LossKind;
use crate::models::Model;

/// The study's Fashion-MNIST script iterated 200 steps (of 0.001 each).
pub const STUDY_ITERATIVE_STEPS: usize = 200;

/// Settings shared by every attack and control.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttackConfig {
    /// The loss J whose input gradient drives the attacks (the loss the model was trained with).
    pub loss: LossKind,
    /// Clip perturbed inputs to [0, 1] (after every step of the iterated form). Off by default:
    /// the study does not clip; on is the standard practice.
    pub clip: bool,
    /// Steps k of `iterative-fgsm` (each eps / k).
    pub steps: usize,
    /// Seed of the random controls; image i of a data set always gets the same noise.
    pub seed: u64,
    /// Images per forward/backward pass (0 = [`super::GRADIENT_BATCH`]); large images are
    /// further limited by [`super::chunk_size`].
    pub batch: usize,
    /// Projected gradient descent (`pgd`, `pgd-l2`, `pgd-targeted`): steps, step size, start.
    #[serde(default)]
    pub pgd: PgdConfig,
    /// The target of `fgsm-targeted` and `pgd-targeted`.
    #[serde(default)]
    pub target: TargetClass,
    /// DeepFool's iterations and overshoot.
    #[serde(default)]
    pub deepfool: DeepFoolConfig,
    /// Carlini-Wagner's search.
    #[serde(default)]
    pub cw: CwConfig,
}

impl Default for AttackConfig {
    /// The study's settings: cross-entropy, no clipping, 200 iterated steps.
    fn default() -> Self {
        AttackConfig {
            loss: LossKind::CrossEntropy,
            clip: false,
            steps: STUDY_ITERATIVE_STEPS,
            seed: 0,
            batch: 0,
            pgd: PgdConfig::default(),
            target: TargetClass::default(),
            deepfool: DeepFoolConfig::default(),
            cw: CwConfig::default(),
        }
    }
}

impl AttackConfig {
    /// Checks the settings that can be wrong (zero step counts, negative or non-finite sizes),
    /// naming the setting as the CLI spells it.
    pub fn validate(&self) -> Result<(), AdversarialError> {
        let counts = [
            ("steps", self.steps),
            ("pgd steps", self.pgd.steps),
            ("deepfool max-iter", self.deepfool.max_iter),
            ("cw binary-steps", self.cw.binary_steps),
            ("cw steps", self.cw.steps),
        ];
        for (option, found) in counts {
            if found == 0 {
                return Err(AdversarialError::Steps { option, found });
            }
        }
        if self.pgd.restarts == 0 {
            return Err(AdversarialError::Setting {
                option: "restarts",
                expected: "at least 1 run".into(),
                found: "0".into(),
            });
        }
        if self.pgd.restarts > 1 && !self.pgd.random_start {
            // Without a random start every run is the same run.
            return Err(AdversarialError::Setting {
                option: "restarts",
                expected: "1 without the random start (no-random-start makes every run the same)"
                    .into(),
                found: self.pgd.restarts.to_string(),
            });
        }
        if let Some(alpha) = self.pgd.step_size {
            check_epsilon("step-size", alpha)?;
        }
        check_epsilon("deepfool overshoot", self.deepfool.overshoot)?;
        check_epsilon("cw learning-rate", self.cw.learning_rate)?;
        check_epsilon("cw initial-c", self.cw.initial_c)?;
        check_epsilon("cw confidence", self.cw.confidence)?;
        Ok(())
    }
}

/// Applies `method` with step size `eps` to `inputs` (N, C, H, W, values in [0, 1]) with their
/// true `labels`, and returns the perturbed batch.
///
/// Image i of `inputs` draws its noise (for the controls) from `config.seed` and i, so a batch
/// gives the same result as the images one by one.
pub fn attack(
    model: &Model<f32>,
    method: Method,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    check_epsilon("epsilon", eps)?;
    config.validate()?;
    check_batch(model, inputs, labels)?;
    check_inputs_in_unit_range(inputs)?;
    if method.is_targeted() {
        config.target.check("target-class", model.classes)?;
    }
    let grad = if method.needs_gradient() {
        Some(loss_gradient_and_values(model, inputs, labels, config.loss, config.batch)?.0)
    } else {
        None
    };
    perturb(model, method, inputs, labels, grad.as_ref(), eps, config, 0)
}

/// Applies `method` given the loss gradient at the clean inputs (when the method needs it), so
/// a sweep over many eps computes it once. `first_image` is the index of `inputs`' first image in
/// the whole data set (it seeds the noise). Arguments are assumed checked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn perturb(
    model: &Model<f32>,
    method: Method,
    inputs: &Tensor<f32>,
    labels: &[usize],
    grad: Option<&Tensor<f32>>,
    eps: f64,
    config: &AttackConfig,
    first_image: usize,
) -> Result<Tensor<f32>, AdversarialError> {
    // Compute the gradient here only when the caller did not pass it.
    let computed;
    let grad = match grad {
        Some(g) => Some(g),
        None if method.needs_gradient() => {
            computed =
                loss_gradient_and_values(model, inputs, labels, config.loss, config.batch)?.0;
            Some(&computed)
        }
        None => None,
    };
    let need = || grad.expect("needs_gradient() methods have a gradient");
    Ok(match method {
        Method::Fgsm => sign_step(inputs, need(), eps, config.clip)?,
        Method::IterativeFgsm => iterate_sign_steps(model, inputs, labels, eps, config)?,
        Method::NormalizedGradient => normalized_gradient_step(inputs, need(), eps, config.clip)?,
        Method::L2Gradient => l2_gradient_step(inputs, need(), eps, config.clip)?,
        Method::Random => uniform_noise_from(inputs, eps, config.seed, config.clip, first_image),
        Method::RandomSign => sign_noise_from(inputs, eps, config.seed, config.clip, first_image),
        Method::RandomDirection => {
            let norms = normalized_step_norms(need(), eps);
            random_direction_from(inputs, &norms, config.seed, config.clip, first_image)?
        }
        Method::Pgd => pgd_from(
            model,
            inputs,
            labels,
            Norm::LInf,
            false,
            eps,
            config,
            first_image,
        )?,
        Method::PgdL2 => pgd_from(
            model,
            inputs,
            labels,
            Norm::L2,
            false,
            eps,
            config,
            first_image,
        )?,
        Method::FgsmTargeted => {
            let targets = config.target.resolve(model, inputs)?;
            fgsm_towards(model, inputs, &targets, eps, config)?
        }
        Method::PgdTargeted => {
            let targets = config.target.resolve(model, inputs)?;
            pgd_from(
                model,
                inputs,
                &targets,
                Norm::LInf,
                true,
                eps,
                config,
                first_image,
            )?
        }
        Method::DeepFool | Method::CwL2 => {
            let adversarial = minimal_perturbation(model, method, inputs, labels, config)?;
            within_l2_budget(inputs, &adversarial, eps)
        }
    })
}

/// The unbounded result of a minimal-perturbation attack (`deepfool`, `cw-l2`); a sweep over eps
/// computes it once and applies each budget with `within_l2_budget`.
pub(crate) fn minimal_perturbation(
    model: &Model<f32>,
    method: Method,
    inputs: &Tensor<f32>,
    labels: &[usize],
    config: &AttackConfig,
) -> Result<Tensor<f32>, AdversarialError> {
    match method {
        Method::DeepFool => deepfool_unbounded(model, inputs, labels, config),
        Method::CwL2 => carlini_wagner_unbounded(model, inputs, labels, config),
        _ => unreachable!("only the minimal-perturbation attacks"),
    }
}
