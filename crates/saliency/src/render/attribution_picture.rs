//! Attribution maps drawn as Captum's `visualize_image_attr` draws them: a sign choice, outlier
//! clipping, three styles, and a colour bar with the scale under every map.

use image::{Rgb, RgbImage};

use super::colormap::{palette_256, palette_index, ColorMap};
use super::grid::{grid, title_bar, verdict_color, Tile, BLACK, WHITE};
use super::image_ops::{heat_to_rgb, input_to_rgb, overlay, upscale_nearest};
use super::normalize::{percentile_clip, sum_channels, Normalized};

/// Which part of a map is shown (Captum's `sign`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    /// Positive and negative, on a diverging map (blue negative, white zero, red positive).
    All,
    /// Only the positive part.
    Positive,
    /// Only the negative part, shown by its magnitude.
    Negative,
    /// The magnitude |A|.
    Absolute,
}

/// How a map is drawn (Captum's `method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// The map alone.
    HeatMap,
    /// The map over a gray copy of the image, half transparent.
    Blended,
    /// The image times the map's magnitude (not defined for `Sign::All`, as in Captum).
    Masked,
}

/// Settings of [`attribution_picture`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PictureOptions {
    /// Which part of each map is shown.
    pub sign: Sign,
    /// How each map is drawn.
    pub style: Style,
    /// Percent of the attribution mass treated as outliers and clipped (Captum's default 2).
    pub outlier_percent: f32,
}

/// A map prepared for display: Captum's `_normalize_attr` on the channel sum.
///
/// The map (C, H, W) is summed over channels, restricted by `sign`, and divided by the
/// magnitude at which `(100 - outlier_percent)` % of its mass is reached, clipped to [-1, 1]
/// (`Sign::All`) or [0, 1] (the others; the negative part is shown by its magnitude).
pub fn prepare_map(
    map: &[f32],
    c: usize,
    h: usize,
    w: usize,
    sign: Sign,
    outlier_percent: f32,
) -> Normalized {
    let combined = if c == 1 {
        map.to_vec()
    } else {
        sum_channels(map, c, h, w)
    };
    let restricted: Vec<f32> = combined
        .iter()
        .map(|&v| match sign {
            Sign::All => v,
            Sign::Positive => v.max(0.0),
            Sign::Negative => (-v).max(0.0),
            Sign::Absolute => v.abs(),
        })
        .collect();
    percentile_clip(&restricted, outlier_percent / 100.0)
}

/// The colour map each sign is drawn with: the diverging red-blue map for `All`, inferno else.
pub fn sign_colormap(sign: Sign) -> ColorMap {
    match sign {
        Sign::All => ColorMap::RedBlue,
        _ => ColorMap::Inferno,
    }
}

/// One image to draw: its pixels (C, H, W), its map, and its captions.
pub struct PictureItem<'a> {
    /// The input in [0, 1].
    pub pixels: &'a [f32],
    /// The raw map, (map_channels, H, W).
    pub map: &'a [f32],
    /// Channels of the map (1 or the input's).
    pub map_channels: usize,
    /// Caption lines: true class, prediction.
    pub label: String,
    /// Predicted class name and its probability.
    pub prediction: Option<(String, f32)>,
    /// Whether the prediction is right (colours the caption); `None` when the label is unknown.
    pub correct: Option<bool>,
}

/// Height in pixels of the colour bar under each map.
const BAR_HEIGHT: u32 = 8;

/// The picture of every map in a grid, each tile with its colour bar and scale.
pub fn attribution_picture(
    items: &[PictureItem<'_>],
    shape: [usize; 3],
    columns: usize,
    title: &str,
    options: &PictureOptions,
) -> RgbImage {
    let [c, h, w] = shape;
    let upscale = (128 / h.max(1)).max(1) as u32;
    let map = sign_colormap(options.sign);
    let tiles: Vec<Tile> = items
        .iter()
        .map(|it| {
            let norm = prepare_map(
                it.map,
                it.map_channels,
                h,
                w,
                options.sign,
                options.outlier_percent,
            );
            // Positions on the colour map: [-1, 1] -> [0, 1] for the diverging map.
            let t: Vec<f32> = match options.sign {
                Sign::All => norm.values.iter().map(|v| (v + 1.0) / 2.0).collect(),
                _ => norm.values.clone(),
            };
            let input = input_to_rgb(it.pixels, c, h, w);
            let pic = match options.style {
                Style::HeatMap => heat_to_rgb(&t, h, w, map),
                Style::Blended => overlay(&gray(&input), &t, map, 0.5),
                Style::Masked => masked(&input, &norm.values),
            };
            let pic = with_colour_bar(&upscale_nearest(&pic, upscale), map, options.style);
            let mut tile = Tile::new(pic).line(scale_caption(&norm, options.sign), WHITE);
            tile = tile.line(format!("true: {}", it.label), WHITE);
            if let Some((p, conf)) = &it.prediction {
                let colour = it.correct.map_or(WHITE, verdict_color);
                tile = tile.line(format!("pred: {p} {:.0}%", 100.0 * conf), colour);
            }
            tile
        })
        .collect();
    let body = grid(&tiles, columns.clamp(1, items.len().max(1)), 4, BLACK);
    title_bar(&body, title)
}

/// The bar's end labels: `-s 0 +s` for signed maps, `0 .. s` otherwise (s the clip scale).
pub fn scale_caption(norm: &Normalized, sign: Sign) -> String {
    if norm.all_zero {
        return "all zero".into();
    }
    match sign {
        Sign::All => format!("-{0:.1e} .. +{0:.1e}", norm.scale),
        Sign::Negative => format!("0 .. -{:.1e}", norm.scale),
        _ => format!("0 .. {:.1e}", norm.scale),
    }
}

/// The image in gray (Captum blends over the gray image).
fn gray(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        let [r, g, b] = p.0;
        let v = (0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32).round() as u8;
        *p = Rgb([v, v, v]);
    }
    out
}

/// The image times the map's magnitude in [0, 1].
fn masked(img: &RgbImage, values: &[f32]) -> RgbImage {
    let mut out = img.clone();
    for (p, &v) in out.pixels_mut().zip(values) {
        let k = v.abs().clamp(0.0, 1.0);
        for ch in p.0.iter_mut() {
            *ch = (*ch as f32 * k).round() as u8;
        }
    }
    out
}

/// `pic` with a horizontal colour bar under it (the map's palette from its low to its high end;
/// black to white for the masked style, whose brightness is the scale).
fn with_colour_bar(pic: &RgbImage, map: ColorMap, style: Style) -> RgbImage {
    let (w, h) = pic.dimensions();
    let gap = 2;
    let mut out = RgbImage::from_pixel(w, h + gap + BAR_HEIGHT, Rgb(BLACK));
    image::imageops::replace(&mut out, pic, 0, 0);
    let palette = palette_256(map);
    for x in 0..w {
        let t = x as f32 / (w.max(2) - 1) as f32;
        let colour = match style {
            Style::Masked => {
                let v = (t * 255.0).round() as u8;
                [v, v, v]
            }
            _ => palette[palette_index(t)],
        };
        for y in h + gap..h + gap + BAR_HEIGHT {
            out.put_pixel(x, y, Rgb(colour));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_restrict_and_scale_as_captum() {
        let map = [-4.0f32, -1.0, 0.0, 1.0, 2.0];
        let all = prepare_map(&map, 1, 1, 5, Sign::All, 0.0);
        assert_eq!(all.scale, 4.0);
        assert_eq!(all.values, vec![-1.0, -0.25, 0.0, 0.25, 0.5]);
        let pos = prepare_map(&map, 1, 1, 5, Sign::Positive, 0.0);
        assert_eq!(
            (pos.scale, pos.values.clone()),
            (2.0, vec![0.0, 0.0, 0.0, 0.5, 1.0])
        );
        let neg = prepare_map(&map, 1, 1, 5, Sign::Negative, 0.0);
        assert_eq!(
            (neg.scale, neg.values.clone()),
            (4.0, vec![1.0, 0.25, 0.0, 0.0, 0.0])
        );
        let abs = prepare_map(&map, 1, 1, 5, Sign::Absolute, 0.0);
        assert_eq!(abs.values, vec![1.0, 0.25, 0.0, 0.25, 0.5]);
        // 50 % outliers: the mass 8 reaches 4 at |v| = 2, so -4 is clipped to -1 and 2 is 1.
        let clipped = prepare_map(&map, 1, 1, 5, Sign::All, 50.0);
        assert_eq!(clipped.scale, 2.0);
        assert_eq!(clipped.values, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(scale_caption(&all, Sign::All), "-4.0e0 .. +4.0e0");
    }

    #[test]
    fn a_signed_map_shows_its_negative_part_in_blue_with_a_bar() {
        let pixels = [0.5f32; 4];
        let map = [-1.0f32, 0.0, 0.0, 1.0];
        let item = PictureItem {
            pixels: &pixels,
            map: &map,
            map_channels: 1,
            label: "x".into(),
            prediction: None,
            correct: None,
        };
        let options = PictureOptions {
            sign: Sign::All,
            style: Style::HeatMap,
            outlier_percent: 0.0,
        };
        let pic = attribution_picture(&[item], [1, 2, 2], 1, "t", &options);
        // Find the tile: the first pixel whose blue clearly beats red is the negative pixel.
        let blue = pic.pixels().any(|p| p.0[2] > 150 && p.0[0] < 100);
        let red = pic.pixels().any(|p| p.0[0] > 150 && p.0[2] < 100);
        assert!(blue && red, "a signed map needs both colours");
    }
}
