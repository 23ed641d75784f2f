//! The method-comparison figure: one row per image, its input first, then every method's map of
//! it, each drawn as `saliency attribute` draws it (signed maps on the diverging map, the others
//! on inferno, blended over a gray copy of the image, clipped at 2 % outlier mass).

use image::{Rgb, RgbImage};

use crate::render::{
    grid, input_to_rgb, overlay, prepare_map, scale_caption, sign_colormap, title_bar,
    upscale_nearest, with_colour_bar, ColorMap, Sign, Tile, BLACK, WHITE,
};

/// Percent of each map's attribution mass clipped before scaling (Captum's default).
pub const OUTLIER_PERCENT: f32 = 2.0;

/// One method's maps of every image, (N, map channels, H, W) flattened.
pub struct MethodMaps<'a> {
    /// The method's name (column heading).
    pub name: &'a str,
    /// True when the maps are signed (drawn on the diverging map).
    pub signed: bool,
    /// The maps.
    pub maps: &'a [f32],
    /// Channels per map (1 or the input's).
    pub channels: usize,
}

/// The grid: rows are images (`inputs`, (N, C, H, W) flattened, captioned by `captions`),
/// columns the input and then each method; two colour bars state both scales.
pub fn method_grid(
    inputs: &[f32],
    captions: &[String],
    methods: &[MethodMaps<'_>],
    shape: [usize; 3],
    title: &str,
) -> RgbImage {
    let [c, h, w] = shape;
    let per = c * h * w;
    let upscale = (128 / h.max(1)).max(1) as u32;
    let mut tiles = Vec::with_capacity(captions.len() * (methods.len() + 1));
    for (i, caption) in captions.iter().enumerate() {
        let input = input_to_rgb(&inputs[i * per..(i + 1) * per], c, h, w);
        tiles.push(
            Tile::new(upscale_nearest(&input, upscale))
                .line(caption.clone(), WHITE)
                .line("input", WHITE),
        );
        for m in methods {
            let plane = m.channels * h * w;
            let sign = if m.signed { Sign::All } else { Sign::Positive };
            let norm = prepare_map(
                &m.maps[i * plane..(i + 1) * plane],
                m.channels,
                h,
                w,
                sign,
                OUTLIER_PERCENT,
            );
            let t: Vec<f32> = match sign {
                Sign::All => norm.values.iter().map(|v| (v + 1.0) / 2.0).collect(),
                _ => norm.values.clone(),
            };
            let pic = overlay(&gray(&input), &t, sign_colormap(sign), 0.5);
            tiles.push(
                Tile::new(upscale_nearest(&pic, upscale))
                    .line(m.name, WHITE)
                    .line(scale_caption(&norm, sign), WHITE),
            );
        }
    }
    let body = grid(&tiles, methods.len() + 1, 4, BLACK);
    let body = with_colour_bar(
        &body,
        ColorMap::Inferno,
        "0",
        "non-negative maps: the map's clip scale (under each map)",
    );
    let body = with_colour_bar(
        &body,
        ColorMap::RedBlue,
        "-scale",
        "signed maps: 0 white, +scale red (under each map)",
    );
    title_bar(
        &body,
        &format!(
            "{title}; channels summed, each map clipped at its {OUTLIER_PERCENT}% outlier mass, \
             over a gray copy of the image"
        ),
    )
}

/// A gray copy of an RGB picture (luma), so the colour of the map stands out.
fn gray(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        let [r, g, b] = p.0;
        let v = (0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32).round() as u8;
        *p = Rgb([v, v, v]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_has_a_row_per_image_and_a_column_per_method_plus_the_input() {
        let inputs = [0.5f32; 2 * 4];
        let pos = [1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0];
        let signed = [-1.0f32, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let methods = [
            MethodMaps {
                name: "a",
                signed: false,
                maps: &pos,
                channels: 1,
            },
            MethodMaps {
                name: "b",
                signed: true,
                maps: &signed,
                channels: 1,
            },
        ];
        let six: Vec<MethodMaps> = (0..6)
            .map(|k| MethodMaps {
                name: "m",
                signed: k % 2 == 1,
                maps: if k % 2 == 1 { &signed } else { &pos },
                channels: 1,
            })
            .collect();
        let one = method_grid(&inputs[..4], &["x".into()], &methods[..1], [1, 2, 2], "t");
        let fig = method_grid(&inputs, &["x".into(), "y".into()], &six, [1, 2, 2], "t");
        // Tiles are at least 128 wide and high here: seven columns (4 pixels apart) against
        // two, two rows against one.
        assert!(fig.width() >= 7 * 128 + 6 * 4, "{}", fig.width());
        assert!(fig.width() > one.width(), "{} {}", fig.width(), one.width());
        assert!(fig.height() > one.height() + 128);
    }
}
