//! Adversarial examples: the study's fast-gradient-sign and normalized-gradient attacks, their
//! random controls, flip statistics over a data set, feature preservation, and the figures.
//!
//! Everything works on `Model<f32>` and batches `Tensor<f32>` of shape (N, C, H, W) with values in
//! [0, 1], labels as `&[usize]`. Let g = dJ(O(a), y)/da be the gradient of the loss for the true
//! label with respect to the input (see [`loss_gradient`]); every attack is a step built from g,
//! every control a step of matched size built from seeded noise. Formulas: `docs/adversarial.md`.

mod attack;
mod carlini_wagner;
mod check;
mod deepfool;
mod edges;
mod feature_preservation;
mod fgsm;
mod gradient;
mod gradient_movie;
mod margin;
mod normalized;
mod output_change;
mod pgd;
mod pictures;
mod prediction;
mod random;
mod report;
mod robust;
mod sign_image;
mod stats;
mod step;
mod target;
mod targeted;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::models::ModelError;
use crate::render::RenderError;

pub use attack::{attack, AttackConfig, STUDY_ITERATIVE_STEPS};
pub use carlini_wagner::{carlini_wagner_l2, CwConfig};
pub use check::{check_batch, check_epsilon, check_inputs_in_unit_range, INPUT_RANGE_TOLERANCE};
pub use deepfool::{deepfool, DeepFoolConfig};
pub use edges::{luma, pearson, sobel_magnitude, spearman};
pub(crate) use feature_preservation::null_as_nan;
pub use feature_preservation::{
    compare_trained_untrained, edge_correlation, gradient_display, mean_edge_correlation,
    model_edge_correlation, EdgeAgreement, EdgeCorrelation, FeaturePreservation, DISPLAY_GAIN,
};
pub use feature_preservation::{
    edge_probe, mean_edge_probe, model_edge_probe, EdgeProbe, EdgeProbeMeans, BACKGROUND_LUMA,
};
pub use fgsm::{fgsm, iterative_fgsm, sign, sign_step};
pub use gradient::{chunk_size, loss_gradient, loss_gradient_and_values, GRADIENT_BATCH};
pub use gradient_movie::GradientMovie;
pub use normalized::{
    l2_gradient, l2_gradient_step, normalized_gradient, normalized_gradient_step,
    normalized_step_norms, L2_FLOOR,
};
pub use output_change::{output_change, OutputChange};
pub use pgd::{pgd_l2, pgd_linf, pgd_targeted, Norm, PgdConfig, DEFAULT_PGD_STEPS};
pub use pictures::{
    adversarial_figure, flip_rate_plot, nice_gain, triptych_grid, triptych_tiles, Triptych,
};
pub use prediction::{predict, Prediction};
pub use random::{random_direction, sign_noise, uniform_noise, STUDY_RANDOM_EPSILON};
pub use report::{markdown_table, write_summary, Summary, SUMMARY_FILE};
pub use robust::{robust_accuracy_plot, robust_table, RobustPoint};
pub use sign_image::{classify_sign_image, sign_image};
pub use stats::{attack_stats, attack_stats_detailed, AttackStats, Sweep};
pub use target::TargetClass;
pub use targeted::fgsm_targeted;

/// Errors of the adversarial module. Each names the option or value at fault, what was expected
/// and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdversarialError {
    /// A step size is negative, NaN or infinite.
    #[error("{option}: expected a finite number >= 0, found {found}")]
    Epsilon {
        /// The option, e.g. `epsilon` or `epsilons[3]`.
        option: String,
        /// The value given.
        found: f64,
    },
    /// An iteration count is zero.
    #[error("{option}: expected at least 1 step, found {found}")]
    Steps {
        /// The option, e.g. `steps`.
        option: &'static str,
        /// The value given.
        found: usize,
    },
    /// A setting that cannot be used as given (or with another one).
    #[error("{option}: expected {expected}, found {found}")]
    Setting {
        /// The option, e.g. `restarts`.
        option: &'static str,
        /// What would be accepted.
        expected: String,
        /// What was given.
        found: String,
    },
    /// A target class the model does not have.
    #[error("{option}: expected a class below {classes} (the model's classes) or least-likely, found {class}")]
    TargetClass {
        /// The option, e.g. `target-class`.
        option: String,
        /// The class given.
        class: usize,
        /// Number of classes of the model.
        classes: usize,
    },
    /// A method name that is not one of ours.
    #[error(
        "unknown adversarial method {found:?}: expected one of {}",
        Method::names()
    )]
    UnknownMethod {
        /// The text given.
        found: String,
    },
    /// An input value lies outside [0, 1] by more than [`INPUT_RANGE_TOLERANCE`] (or is NaN).
    #[error(
        "inputs: element {index} (image {image}) is {value}, expected a value in [0, 1] (tolerance 1e-6)"
    )]
    InputRange {
        /// Flat index into the batch.
        index: usize,
        /// The image it belongs to.
        image: usize,
        /// The value found.
        value: f32,
    },
    /// A label is not below the number of classes.
    #[error(
        "labels: label {label} at index {index} is out of range, expected a class below {classes}"
    )]
    Label {
        /// Position in the label list.
        index: usize,
        /// The label found.
        label: usize,
        /// Number of classes of the model.
        classes: usize,
    },
    /// A batch, gradient, label list or image list does not have the expected shape or length.
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// What was checked, e.g. `labels` or `gradient`.
        what: &'static str,
        /// The shape or length expected.
        expected: String,
        /// The shape or length found.
        found: String,
    },
    /// Reading the images of a data set failed (an image file changed since it was opened).
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The model failed to run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Drawing or saving a figure failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Writing a file failed.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
}

impl From<tape::TapeError> for AdversarialError {
    fn from(e: tape::TapeError) -> Self {
        AdversarialError::Model(ModelError::Tape(e))
    }
}

impl From<tensor::TensorError> for AdversarialError {
    fn from(e: tensor::TensorError) -> Self {
        AdversarialError::Model(ModelError::Tape(tape::TapeError::from(e)))
    }
}

/// How an input is perturbed: the study's attacks, and the random controls they are compared
/// against.
///
/// The CLI names are `fgsm`, `iterative-fgsm`, `normalized-gradient`, `l2-gradient`, `random`
/// (the study's uniform-noise control), the two norm-matched controls `random-sign` (matches
/// `fgsm`) and `random-direction` (matches `normalized-gradient`), and the stronger attacks of
/// the later literature: `pgd`, `pgd-l2`, `fgsm-targeted`, `pgd-targeted`, `deepfool`, `cw-l2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// a' = a + eps * sign(g).
    Fgsm,
    /// k steps of a <- a + (eps / k) * sign(g), the gradient retaken at each step.
    IterativeFgsm,
    /// The study's a' = a + eps * g / max(g), max the signed maximum over the image.
    NormalizedGradient,
    /// The standard a' = a + eps * g / max(||g||_2, floor).
    L2Gradient,
    /// The study's control: a' = a + eps * n / max(n), n ~ U[0, 1) per element.
    Random,
    /// Zero-mean sign noise of the size of the fast-gradient-sign step: a' = a + eps * s,
    /// s = +-1 with equal odds.
    RandomSign,
    /// A uniformly random direction with the L2 norm of the normalized-gradient step at the same
    /// eps (so it needs the gradient, only for its norm).
    RandomDirection,
    /// Projected gradient descent under L-infinity (Madry et al. 2018): random start, k steps
    /// alpha sign(g), each projected onto the eps-ball and clipped to [0, 1].
    Pgd,
    /// Projected gradient descent under L2: steps alpha g / ||g||_2, L2-ball projection.
    PgdL2,
    /// One sign step down the loss of a target class: a - eps sign(dJ(a, t)/da).
    FgsmTargeted,
    /// PGD under L-infinity down the loss of a target class.
    PgdTargeted,
    /// DeepFool (Moosavi-Dezfooli et al. 2016): minimal L2 step to the linearized nearest
    /// boundary, iterated; kept if its L2 norm is at most eps.
    #[serde(rename = "deepfool")]
    DeepFool,
    /// Carlini-Wagner L2 (2017): minimal L2 perturbation by optimization with a binary search
    /// over the constant; kept if its L2 norm is at most eps.
    CwL2,
}

impl Method {
    /// Every method, attacks first, in the order the CLI lists them.
    pub const ALL: [Method; 13] = [
        Method::Fgsm,
        Method::IterativeFgsm,
        Method::NormalizedGradient,
        Method::L2Gradient,
        Method::Random,
        Method::RandomSign,
        Method::RandomDirection,
        Method::Pgd,
        Method::PgdL2,
        Method::FgsmTargeted,
        Method::PgdTargeted,
        Method::DeepFool,
        Method::CwL2,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Fgsm => "fgsm",
            Method::IterativeFgsm => "iterative-fgsm",
            Method::NormalizedGradient => "normalized-gradient",
            Method::L2Gradient => "l2-gradient",
            Method::Random => "random",
            Method::RandomSign => "random-sign",
            Method::RandomDirection => "random-direction",
            Method::Pgd => "pgd",
            Method::PgdL2 => "pgd-l2",
            Method::FgsmTargeted => "fgsm-targeted",
            Method::PgdTargeted => "pgd-targeted",
            Method::DeepFool => "deepfool",
            Method::CwL2 => "cw-l2",
        }
    }

    /// All CLI names, joined for messages.
    pub fn names() -> String {
        Method::ALL
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// True for the random controls (they do not look at the gradient's direction).
    pub fn is_control(self) -> bool {
        matches!(
            self,
            Method::Random | Method::RandomSign | Method::RandomDirection
        )
    }

    /// The attack a control is matched to, if any.
    pub fn matched_attack(self) -> Option<Method> {
        match self {
            Method::RandomSign => Some(Method::Fgsm),
            Method::RandomDirection => Some(Method::NormalizedGradient),
            _ => None,
        }
    }

    /// True when the perturbation needs the loss gradient at the clean input.
    pub fn needs_gradient(self) -> bool {
        matches!(
            self,
            Method::Fgsm
                | Method::NormalizedGradient
                | Method::L2Gradient
                | Method::RandomDirection
        )
    }

    /// The study's default step size (the L2 forms have none in the study: 1.0 is ours).
    pub fn default_epsilon(self) -> f64 {
        match self {
            Method::Fgsm | Method::RandomSign => 0.01,
            // The study's Fashion-MNIST script: 200 steps of 0.001.
            Method::IterativeFgsm => 0.2,
            Method::NormalizedGradient | Method::RandomDirection => 0.15,
            Method::L2Gradient => 1.0,
            Method::Random => STUDY_RANDOM_EPSILON,
            // Issue 23's robustness target on Fashion-MNIST.
            Method::Pgd | Method::FgsmTargeted | Method::PgdTargeted => 0.1,
            // L2 budgets, as l2-gradient's.
            Method::PgdL2 | Method::DeepFool | Method::CwL2 => 1.0,
        }
    }

    /// A short description with the formula, for captions and reports.
    pub fn formula(self) -> &'static str {
        match self {
            Method::Fgsm => "a + eps sign(g)",
            Method::IterativeFgsm => "k steps of a + (eps/k) sign(g)",
            Method::NormalizedGradient => "a + eps g / max(g)",
            Method::L2Gradient => "a + eps g / ||g||2",
            Method::Random => "a + eps n / max(n), n ~ U[0,1)",
            Method::RandomSign => "a + eps s, s = +-1",
            Method::RandomDirection => "a + r d / ||d||2, r = ||eps g / max(g)||2",
            Method::Pgd => "k steps x + alpha sign(g), projected to ||x - a||inf <= eps",
            Method::PgdL2 => "k steps x + alpha g / ||g||2, projected to ||x - a||2 <= eps",
            Method::FgsmTargeted => "a - eps sign(g_t), g_t the gradient of the target's loss",
            Method::PgdTargeted => "k steps x - alpha sign(g_t), projected to ||x - a||inf <= eps",
            Method::DeepFool => "minimal step to the linearized nearest boundary, if ||r||2 <= eps",
            Method::CwL2 => "argmin ||d||2^2 + c max(Z_y - max Z_j, -k), if ||d||2 <= eps",
        }
    }

    /// True for the attacks that push towards a target class.
    pub fn is_targeted(self) -> bool {
        matches!(self, Method::FgsmTargeted | Method::PgdTargeted)
    }

    /// The norm in which eps is the perturbation's size: L2 for the L2 forms; L-infinity for the
    /// sign forms, the study's g / max(g) (its largest element moves by eps) and the controls.
    pub fn norm(self) -> Norm {
        match self {
            Method::L2Gradient | Method::PgdL2 | Method::DeepFool | Method::CwL2 => Norm::L2,
            _ => Norm::LInf,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = AdversarialError;
    fn from_str(s: &str) -> Result<Self, AdversarialError> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| AdversarialError::UnknownMethod {
                found: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
        }
        let err = "fgm".parse::<Method>().unwrap_err().to_string();
        assert!(
            err.contains("\"fgm\"") && err.contains("iterative-fgsm"),
            "{err}"
        );
    }
}
