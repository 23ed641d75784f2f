//! A colour bar under a figure: the colour map from 0 to 1 with what its ends mean, so a reader
//! can tell the scale (and the sign) of a heat map without the caption.

use image::{imageops, Rgb, RgbImage};

use super::colormap::{color, ColorMap};
use super::font::{draw_text, text_width, GLYPH_HEIGHT};
use super::grid::{BLACK, TEXT_SCALE, WHITE};

/// Height of the colour strip itself, in pixels.
const STRIP_HEIGHT: u32 = 14;

/// `img` with a colour bar added beneath, on black: `map` drawn left (t = 0) to right (t = 1)
/// across at most 512 pixels (the image's width when narrower), with `low` under its left end and
/// `high` under its right end. The result is at least as wide as the labels need.
pub fn with_colour_bar(img: &RgbImage, map: ColorMap, low: &str, high: &str) -> RgbImage {
    let margin = 3 * TEXT_SCALE;
    let labels_w = text_width(low, TEXT_SCALE) + text_width(high, TEXT_SCALE) + 4 * margin;
    let width = img.width().max(labels_w);
    let strip_w = width
        .saturating_sub(2 * margin)
        .min(512)
        .max(labels_w - 2 * margin);
    let text_h = GLYPH_HEIGHT * TEXT_SCALE;
    let bar_h = margin + STRIP_HEIGHT + margin + text_h + margin;
    let mut out = RgbImage::from_pixel(width, img.height() + bar_h, Rgb(BLACK));
    imageops::replace(&mut out, img, ((width - img.width()) / 2) as i64, 0);
    let x0 = (width - strip_w) / 2;
    let y0 = img.height() + margin;
    for x in 0..strip_w {
        let t = if strip_w > 1 {
            x as f32 / (strip_w - 1) as f32
        } else {
            0.0
        };
        let c = Rgb(color(map, t));
        for y in y0..y0 + STRIP_HEIGHT {
            out.put_pixel(x0 + x, y, c);
        }
    }
    let ty = y0 + STRIP_HEIGHT + margin;
    draw_text(&mut out, x0, ty, low, WHITE, TEXT_SCALE);
    let hx = (x0 + strip_w).saturating_sub(text_width(high, TEXT_SCALE));
    draw_text(&mut out, hx, ty, high, WHITE, TEXT_SCALE);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_runs_from_the_maps_low_end_to_its_high_end_under_the_image() {
        let img = RgbImage::from_pixel(600, 40, Rgb([9, 9, 9]));
        let out = with_colour_bar(&img, ColorMap::Inferno, "0", "max");
        assert_eq!(out.width(), 600);
        assert!(out.height() > 40 + STRIP_HEIGHT);
        // The image is kept as is above the bar.
        assert!((0..40).all(|y| out.get_pixel(300, y).0 == [9, 9, 9]));
        // The strip: 512 wide, centered, inferno(0) at its left end and inferno(1) at its right.
        let y = 40 + 3 * TEXT_SCALE + STRIP_HEIGHT / 2;
        let x0 = (600 - 512) / 2;
        assert_eq!(out.get_pixel(x0, y).0, color(ColorMap::Inferno, 0.0));
        assert_eq!(out.get_pixel(x0 + 511, y).0, color(ColorMap::Inferno, 1.0));
        assert_eq!(out.get_pixel(x0 - 1, y).0, BLACK);
    }

    #[test]
    fn a_narrow_image_is_widened_to_fit_the_labels() {
        let img = RgbImage::from_pixel(10, 10, Rgb([1, 2, 3]));
        let out = with_colour_bar(&img, ColorMap::Gray, "g <= 0", "g >= max g / 10");
        assert!(out.width() >= text_width("g >= max g / 10", TEXT_SCALE));
        assert_eq!(out.get_pixel((out.width() - 10) / 2, 0).0, [1, 2, 3]);
    }
}
