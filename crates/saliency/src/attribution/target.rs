//! `Target` (which class a map explains) and `Score` (which output of that class is differentiated).

use std::fmt;
use std::str::FromStr;

use tape::Tape;
use tensor::{Float, Tensor};

use super::{check_classes, check_inputs, default_batch, AttributionError};
use crate::infer::{argmax_rows, predict_probs};
use crate::models::{Mode, Model};
use crate::shards::slice_images;

/// Which class each image's attribution explains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Target {
    /// The model's prediction (the study's choice: s = max_k p_k is the predicted class's probability).
    #[default]
    Pred,
    /// The image's true label.
    Label,
    /// One fixed class for every image.
    Class(usize),
}

impl Target {
    /// The class index for every image of `inputs` (N, C, H, W).
    ///
    /// `Pred` runs the model (evaluation mode, first maximum on ties, as `max_row` does); `Label`
    /// needs `labels`, one per image; every class is checked against the model's classes.
    pub fn resolve<T: Float>(
        &self,
        model: &Model<T>,
        inputs: &Tensor<T>,
        labels: Option<&[usize]>,
    ) -> Result<Vec<usize>, AttributionError> {
        let n = check_inputs(model, inputs)?;
        let classes = match *self {
            Target::Pred => {
                let probs = predict_probs(model, inputs.data(), default_batch(model.input))?;
                argmax_rows(&probs, model.classes)
            }
            Target::Label => {
                let labels = labels.ok_or(AttributionError::MissingLabels)?;
                if labels.len() != n {
                    return Err(AttributionError::Count {
                        what: "labels",
                        expected: n,
                        found: labels.len(),
                    });
                }
                labels.to_vec()
            }
            Target::Class(c) => vec![c; n],
        };
        check_classes(&classes, n, model.classes)?;
        Ok(classes)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pred => f.write_str("pred"),
            Target::Label => f.write_str("label"),
            Target::Class(c) => write!(f, "{c}"),
        }
    }
}

impl FromStr for Target {
    type Err = AttributionError;

    /// `pred`, `label`, or a class index such as `3` (checked against the model in `resolve`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "pred" => Ok(Target::Pred),
            "label" => Ok(Target::Label),
            other => {
                other
                    .parse::<usize>()
                    .map(Target::Class)
                    .map_err(|_| AttributionError::Option {
                        option: "target",
                        expected: "pred, label or a class index (0, 1, ...)".into(),
                        found: format!("'{s}'"),
                    })
            }
        }
    }
}

/// Which output of the target class is differentiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Score {
    /// Its softmax probability (the study's default).
    #[default]
    Probability,
    /// Its logit (pre-softmax output): linear models give exact identities with it.
    Logit,
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Score::Probability => "probability",
            Score::Logit => "logit",
        })
    }
}

impl FromStr for Score {
    type Err = AttributionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "probability" | "prob" => Ok(Score::Probability),
            "logit" => Ok(Score::Logit),
            other => Err(AttributionError::Option {
                option: "score",
                expected: "probability or logit".into(),
                found: format!("'{other}'"),
            }),
        }
    }
}

impl Score {
    /// The objective `infer::input_gradients` differentiates for these classes.
    pub(crate) fn objective(self, classes: Vec<usize>) -> crate::infer::Objective {
        match self {
            Score::Probability => crate::infer::Objective::Probability(classes),
            Score::Logit => crate::infer::Objective::Logit(classes),
        }
    }
}

/// F(x_n) = the chosen score of class `classes[n]` for every image of `x` (no gradient), in
/// batches of [`default_batch`] on a no-record tape. The caller has checked shapes and classes.
pub(crate) fn scores<T: Float>(
    model: &Model<T>,
    x: &Tensor<T>,
    classes: &[usize],
    score: Score,
) -> Result<Vec<f64>, AttributionError> {
    let n = x.shape()[0];
    let batch = default_batch(model.input);
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let mut tape = Tape::no_record();
        let params = model.bind(&mut tape, false);
        let xs = tape.constant(slice_images(x, start..end));
        let (logits, _) = model.forward(&mut tape, xs, &params, Mode::Eval)?;
        let outputs = match score {
            Score::Probability => tape.softmax(logits)?,
            Score::Logit => logits,
        };
        let picked = tape.select(outputs, &classes[start..end])?;
        out.extend(tape.value(picked).data().iter().map(|v| v.to_f64()));
    }
    Ok(out)
}
