//! Training losses: cross-entropy on logits (default) and the study's PyTorch `double-softmax`.

use std::fmt;
use std::str::FromStr;

use tape::{NodeId, Tape, TapeError};
use tensor::Float;

/// Which loss a model is trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Negative log-likelihood of softmax(logits): the proper loss.
    CrossEntropy,
    /// Cross-entropy applied to softmax *probabilities* (softmax twice), as the study's PyTorch
    /// scripts did; offered so their figures can be matched.
    DoubleSoftmax,
}

impl fmt::Display for LossKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossKind::CrossEntropy => "cross-entropy",
            LossKind::DoubleSoftmax => "double-softmax",
        })
    }
}

impl FromStr for LossKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cross-entropy" => Ok(LossKind::CrossEntropy),
            "double-softmax" => Ok(LossKind::DoubleSoftmax),
            other => Err(format!(
                "unknown loss '{other}': expected cross-entropy or double-softmax"
            )),
        }
    }
}

/// Mean loss over the batch: (N, K) logits against labels. Output shape `[1]`.
pub fn mean_loss<T: Float>(
    tape: &mut Tape<T>,
    logits: NodeId,
    labels: &[usize],
    kind: LossKind,
) -> Result<NodeId, TapeError> {
    match kind {
        LossKind::CrossEntropy => tape.cross_entropy(logits, labels),
        LossKind::DoubleSoftmax => {
            let p = tape.softmax(logits)?;
            tape.cross_entropy(p, labels)
        }
    }
}

/// Summed per-example loss `sum_n J(x_n, y_n)`, so the gradient with respect to each input is
/// that input's own loss gradient (no 1/N factor). Output shape `[1]`.
pub fn summed_loss<T: Float>(
    tape: &mut Tape<T>,
    logits: NodeId,
    labels: &[usize],
    kind: LossKind,
) -> Result<NodeId, TapeError> {
    let n = labels.len();
    let mean = mean_loss(tape, logits, labels, kind)?;
    tape.scale(mean, T::from_usize(n))
}
