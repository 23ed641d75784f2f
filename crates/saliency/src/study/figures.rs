//! Figures shared by the CLI and the study: attribution grids over their input images.

use image::RgbImage;

use crate::render::{
    grid, input_to_rgb, max_normalize, overlay, sum_channels, title_bar, upscale_nearest,
    verdict_color, ColorMap, Tile, BLACK, WHITE,
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
    title_bar(
        &body,
        &format!("{title}; each map max-normalized (largest scale {max_scale:.2e})"),
    )
}
