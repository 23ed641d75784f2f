//! Helpers shared by the study's sections: picking images, drawing attribution grids.

use std::path::Path;

use tensor::Tensor;

use crate::data::ImageSource;
use crate::infer::{argmax_rows, predict_probs};
use crate::models::Model;
use crate::render::save_png;

use super::figures::{attribution_grid, AttributedImage};

/// The first `n` images of `data` (all of them when it has fewer) as a batch tensor and their
/// labels: only these are read, so an image folder's split is never decoded whole for them.
pub fn first_images(data: &dyn ImageSource, n: usize) -> anyhow::Result<(Tensor<f32>, Vec<usize>)> {
    let sub = data.first_dataset(n)?;
    let [c, h, w] = sub.shape;
    Ok((
        Tensor::from_vec(&[sub.len(), c, h, w], sub.images)?,
        sub.labels.iter().map(|&l| l as usize).collect(),
    ))
}

/// Draws `maps` over `inputs` as a grid into `out/rel` and returns `rel`.
pub fn save_grid(
    out: &Path,
    rel: &str,
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    maps: &Tensor<f32>,
    names: &[String],
    columns: usize,
    title: &str,
) -> anyhow::Result<String> {
    let n = labels.len();
    let [c, h, w] = model.input;
    let probs = predict_probs(model, inputs.data(), 256)?;
    let preds = argmax_rows(&probs, model.classes);
    let mc = maps.shape()[1];
    let items: Vec<AttributedImage> = (0..n)
        .map(|i| AttributedImage {
            pixels: &inputs.data()[i * c * h * w..(i + 1) * c * h * w],
            map: &maps.data()[i * mc * h * w..(i + 1) * mc * h * w],
            map_channels: mc,
            label: names[labels[i]].clone(),
            prediction: Some((names[preds[i]].clone(), probs[i * model.classes + preds[i]])),
            correct: preds[i] == labels[i],
        })
        .collect();
    let img = attribution_grid(&items, model.input, columns, title);
    let path = out.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    save_png(&path, &img)?;
    Ok(rel.to_string())
}

/// The median of the finite values (NaN when there are none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    v[v.len() / 2]
}
