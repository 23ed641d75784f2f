//! The section's pictures: one method's maps of a standard and a robust model on the same images,
//! one above the other, and the loss gradient itself drawn as a picture for several models.

use image::RgbImage;
use tensor::Tensor;

use crate::infer::{argmax_rows, predict_probs};
use crate::models::Model;
use crate::render::{
    grid, input_to_rgb, signed_to_rgb, title_bar, upscale_nearest, with_colour_bar, ColorMap, Tile,
    BLACK, WHITE,
};

use super::super::figures::{attribution_grid, AttributedImage};

/// The maps `top` of model `upper` over the maps `bottom` of model `lower`, both of the images
/// `inputs` (N, C, H, W) with true `labels`: one row per model, each tile captioned with the
/// true class and that model's prediction, drawn as every attribution grid of the study.
#[allow(clippy::too_many_arguments)]
pub fn side_by_side(
    upper: &Model<f32>,
    lower: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    top: &Tensor<f32>,
    bottom: &Tensor<f32>,
    class_names: &[String],
    title: &str,
) -> anyhow::Result<RgbImage> {
    let n = labels.len();
    let [c, h, w] = upper.input;
    let mut items = Vec::with_capacity(2 * n);
    let mut predictions = Vec::with_capacity(2);
    for model in [upper, lower] {
        let probs = predict_probs(model, inputs.data(), 256)?;
        let preds = argmax_rows(&probs, model.classes);
        predictions.push((probs, preds));
    }
    for (maps, (probs, preds), model) in [
        (top, &predictions[0], upper),
        (bottom, &predictions[1], lower),
    ] {
        let mc = maps.shape()[1];
        for i in 0..n {
            items.push(AttributedImage {
                pixels: &inputs.data()[i * c * h * w..(i + 1) * c * h * w],
                map: &maps.data()[i * mc * h * w..(i + 1) * mc * h * w],
                map_channels: mc,
                label: class_names[labels[i]].clone(),
                prediction: Some((
                    class_names[preds[i]].clone(),
                    probs[i * model.classes + preds[i]],
                )),
                correct: preds[i] == labels[i],
            });
        }
    }
    Ok(attribution_grid(&items, upper.input, n, title))
}

/// The largest |v| of each image's values `per` long.
fn largest_magnitudes(values: &[f32], per: usize) -> Vec<f32> {
    values
        .chunks(per.max(1))
        .map(|v| v.iter().fold(0.0f32, |m, x| m.max(x.abs())))
        .collect()
}

/// A picture of each gradient in `rows` (name, (N, C, H, W) flattened) under its input: -g shown
/// as 0.5 + 0.5 (-g) / max|g| per image, so 0 is mid gray, the largest |g| black or white, and
/// brighter means raising the pixel lowers the loss. One column per image.
pub fn gradient_pictures(
    inputs: &[f32],
    rows: &[(&str, &[f32])],
    labels: &[String],
    shape: [usize; 3],
    title: &str,
) -> RgbImage {
    let tiles = gradient_tiles(inputs, rows, labels, shape);
    let body = with_colour_bar(
        &grid(&tiles, labels.len().max(1), 4, BLACK),
        ColorMap::Gray,
        "-g = -max|g|",
        "-g = +max|g|",
    );
    title_bar(&body, title)
}

/// The tiles of [`gradient_pictures`], row by row: the inputs, then each model's gradients.
fn gradient_tiles(
    inputs: &[f32],
    rows: &[(&str, &[f32])],
    labels: &[String],
    shape: [usize; 3],
) -> Vec<Tile> {
    let [c, h, w] = shape;
    let per = c * h * w;
    let upscale = (128 / h.max(1)).max(1) as u32;
    let mut tiles = Vec::with_capacity((rows.len() + 1) * labels.len());
    for (i, label) in labels.iter().enumerate() {
        let picture = input_to_rgb(&inputs[i * per..(i + 1) * per], c, h, w);
        tiles.push(
            Tile::new(upscale_nearest(&picture, upscale)).line(format!("input: {label}"), WHITE),
        );
    }
    for (name, grads) in rows {
        for (i, largest) in largest_magnitudes(grads, per)
            .into_iter()
            .enumerate()
            .take(labels.len())
        {
            let minus: Vec<f32> = grads[i * per..(i + 1) * per].iter().map(|g| -g).collect();
            // A zero gradient has nothing to show: all mid gray.
            let gain = if largest > 0.0 { 0.5 / largest } else { 0.0 };
            let picture = signed_to_rgb(&minus, c, h, w, gain);
            tiles.push(Tile::new(upscale_nearest(&picture, upscale)).line(*name, WHITE));
        }
    }
    tiles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gradient_picture_is_signed_with_zero_mid_gray() {
        // One 1x2 gray image; the gradient -1 at the left pixel, +0.5 at the right: -g is +1
        // (white) and -0.5 (a quarter gray).
        let input = [0.0f32, 1.0];
        let g = [-1.0f32, 0.5];
        let zero = [0.0f32; 2];
        let tiles = gradient_tiles(
            &input,
            &[("robust", &g), ("flat", &zero)],
            &["x".into()],
            [1, 1, 2],
        );
        assert_eq!(tiles.len(), 3);
        let t = &tiles[1].image;
        assert_eq!(t.get_pixel(0, 0).0, [255, 255, 255]);
        let right = t.get_pixel(t.width() - 1, 0).0[0];
        assert!((62..=65).contains(&right), "{right}");
        assert_eq!(tiles[1].caption[0].0, "robust");
        // A zero gradient is all mid gray, never NaN-black.
        assert!(tiles[2]
            .image
            .pixels()
            .all(|p| (127..=128).contains(&p.0[0])));
        let fig = gradient_pictures(&input, &[("robust", &g)], &["x".into()], [1, 1, 2], "t");
        assert!(fig.height() > 2 * tiles[0].image.height());
    }
}
