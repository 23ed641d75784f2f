//! Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019): relevance starts
//! as the target's logit and flows back through every layer by an LRP rule (tape::rules), the
//! input's relevance being x times the signal reaching it.

use tape::RuleSet;
use tensor::{Float, Tensor};

use super::rule_signal::rule_signal;
use super::{check_classes, check_inputs, AttributionError};
use crate::models::Model;

/// Which LRP rules the conv and dense layers use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrpRule {
    /// LRP-epsilon on every layer (Captum's `LRP` default rule; eps 1e-9 there).
    Epsilon {
        /// The stabilizer, >= 0.
        epsilon: f64,
    },
    /// LRP-gamma on conv layers, LRP-epsilon on dense layers.
    Gamma {
        /// Weight of the positive weights, >= 0 (0.25 in Captum and Montavon et al.).
        gamma: f64,
        /// The stabilizer, >= 0.
        epsilon: f64,
    },
    /// LRP-alpha-beta on conv layers, LRP-epsilon on dense layers.
    AlphaBeta {
        /// Weight of the positive contributions, >= 0.
        alpha: f64,
        /// Weight of the negative contributions, >= 0 (alpha - beta = 1 conserves).
        beta: f64,
        /// The stabilizer, >= 0.
        epsilon: f64,
    },
}

impl LrpRule {
    /// The tape's rule set for this choice.
    pub fn rules(self) -> RuleSet {
        match self {
            LrpRule::Epsilon { epsilon } => RuleSet::lrp_epsilon(epsilon),
            LrpRule::Gamma { gamma, epsilon } => RuleSet::lrp_gamma(gamma, epsilon),
            LrpRule::AlphaBeta {
                alpha,
                beta,
                epsilon,
            } => RuleSet::lrp_alpha_beta(alpha, beta, epsilon),
        }
    }

    /// Checks every parameter is finite and non-negative, naming the option otherwise.
    fn validate(self) -> Result<(), AttributionError> {
        let values: Vec<(&'static str, f64)> = match self {
            LrpRule::Epsilon { epsilon } => vec![("epsilon", epsilon)],
            LrpRule::Gamma { gamma, epsilon } => vec![("gamma", gamma), ("epsilon", epsilon)],
            LrpRule::AlphaBeta {
                alpha,
                beta,
                epsilon,
            } => vec![("alpha", alpha), ("beta", beta), ("epsilon", epsilon)],
        };
        for (option, v) in values {
            if !(v.is_finite() && v >= 0.0) {
                return Err(AttributionError::Option {
                    option,
                    expected: "a finite value >= 0".into(),
                    found: v.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// LRP of the logit of `classes[n]` for image n: R = x * (the signal the rules pass back).
/// Shaped like the inputs. Each layer's relevances sum to those of its outputs up to the bias's
/// and the stabilizer's share (docs/derivations.md).
pub fn lrp<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    rule: LrpRule,
) -> Result<Tensor<T>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    rule.validate()?;
    let mut signal = rule_signal(model, inputs, classes, rule.rules())?;
    for (s, &x) in signal.data_mut().iter_mut().zip(inputs.data()) {
        *s *= x;
    }
    Ok(signal)
}
