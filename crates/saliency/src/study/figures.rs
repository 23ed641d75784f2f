//! Figures shared by the CLI and the study: attribution grids over their input images.

use image::RgbImage;

use crate::render::{
    grid, input_to_rgb, max_normalize, overlay, sum_channels, title_bar, upscale_nearest,
    verdict_color, with_colour_bar, ColorMap, Tile, BLACK, WHITE,
};

/// One image with its map and its captions' facts.
pub struct AttributedImage<'a> {
    /// Pixels (C, H, W) in [0, 1].
    pub pixels: &'a [f32],
    /// Attribution map with `map_channels` channels of H x W.
    pub map: &'a [f32],
    /// Channels in `map` (1 or C).
    pub map_channels: usize,
    /// True class name.
    pub label: String,
    /// Predicted class name and its probability.
    pub prediction: Option<(String, f32)>,
    /// Whether the prediction is right (caption color).
    pub correct: bool,
}

/// A grid of inputs with their max-normalized maps as an inferno overlay (alpha 0.5 for gray,
/// 0.6 for color, as the study), captioned with the true class and prediction, titled with how
/// the maps were normalized (each map divided by its own maximum; the scales are listed).
pub fn attribution_grid(
    items: &[AttributedImage<'_>],
    shape: [usize; 3],
    columns: usize,
    title: &str,
) -> RgbImage {
    let [c, h, w] = shape;
    let alpha = if c == 1 { 0.5 } else { 0.6 };
    let upscale = (128 / h.max(1)).max(1) as u32;
    let mut scales = Vec::new();
    let tiles: Vec<Tile> = items
        .iter()
        .map(|it| {
            let heat = if it.map_channels == 1 {
                it.map.to_vec()
            } else {
                sum_channels(it.map, it.map_channels, h, w)
            };
            let norm = max_normalize(&heat);
            scales.push(norm.scale);
            let pic = upscale_nearest(
                &overlay(
                    &input_to_rgb(it.pixels, c, h, w),
                    &norm.values,
                    ColorMap::Inferno,
                    alpha,
                ),
                upscale,
            );
            let mut tile = Tile::new(pic).line(format!("true: {}", it.label), WHITE);
            if let Some((p, conf)) = &it.prediction {
                tile = tile.line(
                    format!("pred: {p} {:.0}%", 100.0 * conf),
                    verdict_color(it.correct),
                );
            }
            tile
        })
        .collect();
    let body = grid(&tiles, columns.clamp(1, items.len().max(1)), 4, BLACK);
    let max_scale = scales.iter().copied().fold(0.0f32, f32::max);
    let body = with_colour_bar(
        &body,
        ColorMap::Inferno,
        "0",
        &format!("the map's maximum (overlay alpha {alpha})"),
    );
    title_bar(
        &body,
        &format!("{title}; each map max-normalized (largest scale {max_scale:.2e})"),
    )
}

/// The study's feature-preservation figure: the gradient images themselves, drawn as the study
/// draws them (clip(10 g / max g, 0, 1) as a gray or RGB picture, nothing under it). One column
/// per image: the input, the trained model's gradient image, the untrained model's.
///
/// `inputs`, `trained` and `untrained` are (N, C, H, W) planar batches flattened, values in
/// [0, 1]; `labels` names each image's class.
pub fn gradient_image_figure(
    inputs: &[f32],
    trained: &[f32],
    untrained: &[f32],
    labels: &[String],
    shape: [usize; 3],
    title: &str,
) -> RgbImage {
    let tiles = gradient_image_tiles(inputs, trained, untrained, labels, shape);
    let body = with_colour_bar(
        &grid(&tiles, labels.len().max(1), 4, BLACK),
        ColorMap::Gray,
        "g <= 0",
        "g >= max(g) / 10 (per channel)",
    );
    title_bar(&body, title)
}

/// The tiles of [`gradient_image_figure`], row by row.
fn gradient_image_tiles(
    inputs: &[f32],
    trained: &[f32],
    untrained: &[f32],
    labels: &[String],
    shape: [usize; 3],
) -> Vec<Tile> {
    let [c, h, w] = shape;
    let per = c * h * w;
    let upscale = (128 / h.max(1)).max(1) as u32;
    let picture = |v: &[f32], i: usize| {
        upscale_nearest(&input_to_rgb(&v[i * per..(i + 1) * per], c, h, w), upscale)
    };
    let mut tiles = Vec::with_capacity(3 * labels.len());
    for (i, label) in labels.iter().enumerate() {
        tiles.push(Tile::new(picture(inputs, i)).line(format!("input: {label}"), WHITE));
    }
    for (name, maps) in [("trained", trained), ("untrained", untrained)] {
        for i in 0..labels.len() {
            tiles.push(Tile::new(picture(maps, i)).line(name, WHITE));
        }
    }
    tiles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gradient_images_are_drawn_alone_without_the_photo_under_them() {
        // One 2x2 gray image: the input is white, the trained gradient image black with one
        // white pixel, the untrained one all black. The photo must not show through either.
        let input = [1.0f32; 4];
        let trained = [1.0, 0.0, 0.0, 0.0];
        let untrained = [0.0f32; 4];
        let tiles = gradient_image_tiles(&input, &trained, &untrained, &["x".into()], [1, 2, 2]);
        assert_eq!(tiles.len(), 3);
        let t = &tiles[1].image;
        assert_eq!(t.dimensions(), (128, 128));
        assert_eq!(t.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(t.get_pixel(127, 127).0, [0, 0, 0]);
        assert!(tiles[2].image.pixels().all(|p| p.0 == [0, 0, 0]));
        assert_eq!(tiles[2].caption[0].0, "untrained");
        let fig =
            gradient_image_figure(&input, &trained, &untrained, &["x".into()], [1, 2, 2], "t");
        assert!(fig.height() > 3 * 128);
    }
}
