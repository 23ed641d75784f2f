//! The class a targeted attack pushes each image towards: a fixed class, or the class the model
//! finds least likely for that image.

use std::fmt;
use std::str::FromStr;

use tensor::Tensor;

use super::prediction::predict_probs_of;
use super::AdversarialError;
use crate::models::Model;

/// Target of the targeted attacks (`fgsm-targeted`, `pgd-targeted`); the CLI's `--target-class`
/// takes a class number or `least-likely`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetClass {
    /// For each image the class of smallest softmax probability on the clean input (Kurakin et
    /// al. 2017's "least-likely class"; first on ties): the hardest target.
    #[default]
    LeastLikely,
    /// The same class for every image.
    Class(usize),
}

impl TargetClass {
    /// Refuses a class the model does not have; `option` names the setting in the error.
    pub fn check(self, option: &str, classes: usize) -> Result<(), AdversarialError> {
        match self {
            TargetClass::Class(k) if k >= classes => Err(AdversarialError::TargetClass {
                option: option.to_string(),
                class: k,
                classes,
            }),
            _ => Ok(()),
        }
    }

    /// The target of each image of `inputs` (N, C, H, W).
    pub fn resolve(
        self,
        model: &Model<f32>,
        inputs: &Tensor<f32>,
    ) -> Result<Vec<usize>, AdversarialError> {
        self.check("target-class", model.classes)?;
        let n = inputs.shape()[0];
        Ok(match self {
            TargetClass::Class(k) => vec![k; n],
            TargetClass::LeastLikely => {
                let probs = predict_probs_of(model, inputs)?;
                probs
                    .chunks_exact(model.classes)
                    .map(|row| {
                        let mut best = 0;
                        for (j, &p) in row.iter().enumerate() {
                            if p < row[best] {
                                best = j;
                            }
                        }
                        best
                    })
                    .collect()
            }
        })
    }
}

impl fmt::Display for TargetClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetClass::LeastLikely => f.write_str("least-likely"),
            TargetClass::Class(k) => write!(f, "{k}"),
        }
    }
}

impl FromStr for TargetClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "least-likely" {
            return Ok(TargetClass::LeastLikely);
        }
        s.parse::<usize>().map(TargetClass::Class).map_err(|_| {
            format!("expected a class number (0, 1, ...) or least-likely, found '{s}'")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_the_class() {
        assert_eq!("least-likely".parse(), Ok(TargetClass::LeastLikely));
        assert_eq!("3".parse(), Ok(TargetClass::Class(3)));
        assert!("-1".parse::<TargetClass>().unwrap_err().contains("'-1'"));
        let msg = TargetClass::Class(10)
            .check("target-class", 10)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("target-class") && msg.contains("10"), "{msg}");
        assert!(TargetClass::Class(9).check("target-class", 10).is_ok());
    }
}
