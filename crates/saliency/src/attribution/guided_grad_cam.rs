//! Guided Grad-CAM (Selvaraju et al. 2017), as Captum's `GuidedGradCam`: guided
//! backpropagation times the ReLU'd Grad-CAM map upsampled to the input, in every channel.

use tensor::{Float, Tensor};

use super::grad_cam::{grad_cam, GradCamOptions};
use super::guided_backprop::guided_backprop;
use super::target::Score;
use super::AttributionError;
use crate::models::Model;

/// Guided Grad-CAM of the logit of `classes[n]` at conv layer `layer` (`None`: the last).
/// Shaped like the inputs.
pub fn guided_grad_cam<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    layer: Option<&str>,
) -> Result<Tensor<T>, AttributionError> {
    let options = GradCamOptions {
        layer: layer.map(str::to_string),
        relu: true,
        score: Score::Logit,
    };
    let cam = grad_cam(model, inputs, classes, &options)?; // (N, 1, H, W)
    let mut guided = guided_backprop(model, inputs, classes)?;
    let plane = model.input[1] * model.input[2];
    let per = model.input[0] * plane;
    for (i, image) in guided.data_mut().chunks_exact_mut(per).enumerate() {
        let map = &cam.data()[i * plane..(i + 1) * plane];
        for channel in image.chunks_exact_mut(plane) {
            for (v, &m) in channel.iter_mut().zip(map) {
                *v *= m;
            }
        }
    }
    Ok(guided)
}
