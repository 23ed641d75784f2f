//! Grad-CAM (Selvaraju et al. 2017) as Captum's `LayerGradCam` computes it: a conv layer's
//! channels weighted by the mean gradient of the score over each channel, upsampled to the input.

use tape::Tape;
use tensor::{Float, Tensor};

use super::target::Score;
use super::{check_classes, check_inputs, default_batch, AttributionError};
use crate::models::{Layer, Mode, Model};
use crate::shards::slice_images;

/// Settings of [`grad_cam`].
#[derive(Clone, Debug, PartialEq)]
pub struct GradCamOptions {
    /// The conv layer's name (`conv1`, ... as in the layer table); `None` takes the last one.
    pub layer: Option<String>,
    /// Apply a ReLU to the map (the paper; Captum's `relu_attributions`, off by default there).
    pub relu: bool,
    /// What F is: the target's logit (Captum's convention) or its probability.
    pub score: Score,
}

impl Default for GradCamOptions {
    fn default() -> Self {
        GradCamOptions {
            layer: None,
            relu: false,
            score: Score::Logit,
        }
    }
}

/// The index in `model.layers` of the conv layer named `name` (the last conv layer for `None`),
/// or an error naming the option and listing the model's conv layers.
pub fn conv_layer_index<T: Float>(
    model: &Model<T>,
    name: Option<&str>,
) -> Result<usize, AttributionError> {
    let convs: Vec<(usize, &str)> = model
        .layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| match l {
            Layer::Conv { name, .. } => Some((i, name.as_str())),
            _ => None,
        })
        .collect();
    let names = convs.iter().map(|c| c.1).collect::<Vec<_>>().join(", ");
    let found = match name {
        None => convs.last().copied(),
        Some(want) => convs.iter().copied().find(|c| c.1 == want),
    };
    found.map(|c| c.0).ok_or_else(|| AttributionError::Option {
        option: "layer",
        expected: if names.is_empty() {
            format!("a conv layer, but model {} has none", model.kind)
        } else {
            format!("a conv layer of model {}: {names}", model.kind)
        },
        found: format!("'{}'", name.unwrap_or("")),
    })
}

/// Grad-CAM of every image: L = sum_k alpha_k A_k with alpha_k the mean over the layer's pixels
/// of dF/dA_k, A the conv layer's output (before its ReLU), F the score of `classes[n]`; ReLU'd
/// when `options.relu`; upsampled to the input's (H, W) by nearest neighbour (PyTorch's
/// `interpolate(mode="nearest")`, Captum's default). Shape (N, 1, H, W).
pub fn grad_cam<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    options: &GradCamOptions,
) -> Result<Tensor<T>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    let layer = conv_layer_index(model, options.layer.as_deref())?;
    let [_, h, w] = model.input;
    let batch = default_batch(model.input);
    let mut out = Vec::with_capacity(n * h * w);
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let (cam, [lh, lw]) = layer_cam(
            model,
            &slice_images(inputs, start..end),
            &classes[start..end],
            layer,
            options.score,
        )?;
        for map in cam.chunks_exact(lh * lw) {
            let map: Vec<f64> = if options.relu {
                map.iter().map(|v| v.max(0.0)).collect()
            } else {
                map.to_vec()
            };
            out.extend(
                upsample_nearest(&map, lh, lw, h, w)
                    .into_iter()
                    .map(T::from_f64),
            );
        }
    }
    Ok(Tensor::from_vec(&[n, 1, h, w], out)?)
}

/// The un-upsampled map sum_k alpha_k A_k of each image of `x`, in f64, and its (h, w).
fn layer_cam<T: Float>(
    model: &Model<T>,
    x: &Tensor<T>,
    classes: &[usize],
    layer: usize,
    score: Score,
) -> Result<(Vec<f64>, [usize; 2]), AttributionError> {
    // Up to the layer without recording, then the layer's output as a leaf of a recording tape,
    // so backward reports its gradient.
    let mut front = Tape::no_record();
    let params = model.bind(&mut front, false);
    let xs = front.constant(x.clone());
    let (a, _) = model.forward_layers(&mut front, xs, &params, Mode::Eval, 0..layer + 1)?;
    let activations = front.take_value(a).expect("the last node is kept");
    drop(front);
    let mut back = Tape::new();
    let params = model.bind(&mut back, false);
    let a = back.variable(activations);
    let (logits, _) = model.forward_layers(
        &mut back,
        a,
        &params,
        Mode::Eval,
        layer + 1..model.layers.len(),
    )?;
    let outputs = match score {
        Score::Probability => back.softmax(logits)?,
        Score::Logit => logits,
    };
    let picked = back.select(outputs, classes)?;
    let total = back.sum(picked)?;
    let grads = back.backward(total)?;
    let av = back.value(a);
    let [n, k, lh, lw] = av.dims4("grad-cam layer output")?;
    let g = grads.get_or_zeros(a, av.shape());
    let plane = lh * lw;
    let mut cam = vec![0.0f64; n * plane];
    for i in 0..n {
        for ch in 0..k {
            let off = (i * k + ch) * plane;
            let alpha = g.data()[off..off + plane]
                .iter()
                .map(|v| v.to_f64())
                .sum::<f64>()
                / plane as f64;
            for (c, &v) in cam[i * plane..(i + 1) * plane]
                .iter_mut()
                .zip(&av.data()[off..off + plane])
            {
                *c += alpha * v.to_f64();
            }
        }
    }
    Ok((cam, [lh, lw]))
}

/// Nearest-neighbour resize of an (h, w) map to (oh, ow) as PyTorch's `interpolate(mode=
/// "nearest")`: output pixel (y, x) reads (floor(y h / oh), floor(x w / ow)).
pub(crate) fn upsample_nearest(map: &[f64], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(oh * ow);
    for y in 0..oh {
        let sy = (y * h / oh).min(h - 1);
        for x in 0..ow {
            let sx = (x * w / ow).min(w - 1);
            out.push(map[sy * w + sx]);
        }
    }
    out
}
