//! Argument checks shared by the attacks: step sizes, batch shapes, labels and the [0, 1] range.

use tensor::Tensor;

use super::AdversarialError;
use crate::models::Model;

/// How far outside [0, 1] an input may lie before it is refused: data decoded as `pixel / 255`
/// is exact, but inputs that went through resizing or another library may be off by rounding.
pub const INPUT_RANGE_TOLERANCE: f32 = 1e-6;

/// Accepts a step size that is finite and >= 0; `option` names it in the error.
pub fn check_epsilon(option: &str, eps: f64) -> Result<(), AdversarialError> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(AdversarialError::Epsilon {
            option: option.to_string(),
            found: eps,
        })
    }
}

/// Checks that `inputs` is a batch (N, C, H, W) the model takes and that `labels` has one class
/// below `model.classes` per image.
pub fn check_batch(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
) -> Result<(), AdversarialError> {
    let shape = inputs.shape();
    if shape.len() != 4 || shape[1..] != model.input {
        return Err(AdversarialError::Shape {
            what: "inputs",
            expected: format!(
                "a batch of shape (N, {}, {}, {})",
                model.input[0], model.input[1], model.input[2]
            ),
            found: format!("{shape:?}"),
        });
    }
    if labels.len() != shape[0] {
        return Err(AdversarialError::Shape {
            what: "labels",
            expected: format!("{} labels (one per image)", shape[0]),
            found: format!("{} labels", labels.len()),
        });
    }
    check_labels(labels, model.classes)?;
    Ok(())
}

/// Refuses inputs outside [0, 1] by more than [`INPUT_RANGE_TOLERANCE`], and NaN, naming the first
/// offending element. The attacks are defined on images scaled to [0, 1]; anything else is
/// almost always data that was normalized with a mean and deviation by mistake.
pub fn check_inputs_in_unit_range(inputs: &Tensor<f32>) -> Result<(), AdversarialError> {
    check_unit_range_slice(inputs.data(), per_image(inputs))
}

/// [`check_inputs_in_unit_range`] on flat images of `per_image` elements each.
pub(crate) fn check_unit_range_slice(
    data: &[f32],
    per_image: usize,
) -> Result<(), AdversarialError> {
    let lo = -INPUT_RANGE_TOLERANCE;
    let hi = 1.0 + INPUT_RANGE_TOLERANCE;
    match data.iter().position(|&v| !(v >= lo && v <= hi)) {
        None => Ok(()),
        Some(index) => Err(AdversarialError::InputRange {
            index,
            image: index / per_image.max(1),
            value: data[index],
        }),
    }
}

/// Every label must be below `classes`.
pub(crate) fn check_labels(labels: &[usize], classes: usize) -> Result<(), AdversarialError> {
    match labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        None => Ok(()),
        Some((index, &label)) => Err(AdversarialError::Label {
            index,
            label,
            classes,
        }),
    }
}

/// The gradient must have the inputs' shape.
pub(crate) fn check_same_shape(
    what: &'static str,
    inputs: &Tensor<f32>,
    other: &Tensor<f32>,
) -> Result<(), AdversarialError> {
    if inputs.shape() != other.shape() {
        return Err(AdversarialError::Shape {
            what,
            expected: format!("shape {:?} (the inputs' shape)", inputs.shape()),
            found: format!("{:?}", other.shape()),
        });
    }
    Ok(())
}

/// Elements per image of a batch (N, C, H, W); at least 1 so chunking never divides by zero.
pub(crate) fn per_image(t: &Tensor<f32>) -> usize {
    t.shape().iter().skip(1).product::<usize>().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_errors_name_the_option() {
        assert!(check_epsilon("epsilon", 0.0).is_ok());
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            let msg = check_epsilon("epsilons[2]", bad).unwrap_err().to_string();
            assert!(msg.contains("epsilons[2]") && msg.contains(">= 0"), "{msg}");
        }
    }

    #[test]
    fn range_error_names_index_and_value() {
        let t = Tensor::from_vec(&[2, 1, 1, 2], vec![0.0, 1.0 + 5e-7, 0.5, 1.5]).unwrap();
        let msg = check_inputs_in_unit_range(&t).unwrap_err().to_string();
        assert!(
            msg.contains("element 3") && msg.contains("image 1") && msg.contains("1.5"),
            "{msg}"
        );
        let nan = Tensor::from_vec(&[1, 1, 1, 1], vec![f32::NAN]).unwrap();
        assert!(check_inputs_in_unit_range(&nan).is_err());
    }
}
