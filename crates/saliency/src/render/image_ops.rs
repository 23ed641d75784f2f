//! Turning input tensors and heat maps into RGB images: conversion, color mapping, overlay, upscaling.

use image::{Rgb, RgbImage};

use super::colormap::{palette_256, palette_index, ColorMap};

/// A value in [0, 1] (clamped; NaN counts as 0) as a byte.
fn to_byte(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

fn checked_dims(h: usize, w: usize) -> (u32, u32) {
    let h32 = u32::try_from(h).expect("image height fits in u32");
    let w32 = u32::try_from(w).expect("image width fits in u32");
    (h32, w32)
}

/// A planar (C, H, W) input with values in [0, 1] as an RGB image: `c = 1` is gray, `c = 3` is RGB.
/// Values outside [0, 1] (e.g. an unclipped adversarial input) are clamped.
///
/// # Panics
/// If `c` is not 1 or 3, or `pixels.len() != c * h * w`.
pub fn input_to_rgb(pixels: &[f32], c: usize, h: usize, w: usize) -> RgbImage {
    assert!(
        c == 1 || c == 3,
        "input_to_rgb: {c} channels, expected 1 (gray) or 3 (RGB)"
    );
    assert_eq!(
        pixels.len(),
        c * h * w,
        "input_to_rgb: {} values, expected c*h*w = {c}*{h}*{w}",
        pixels.len()
    );
    let (h32, w32) = checked_dims(h, w);
    let plane = h * w;
    RgbImage::from_fn(w32, h32, |x, y| {
        let i = y as usize * w + x as usize;
        if c == 1 {
            let v = to_byte(pixels[i]);
            Rgb([v, v, v])
        } else {
            Rgb([
                to_byte(pixels[i]),
                to_byte(pixels[plane + i]),
                to_byte(pixels[2 * plane + i]),
            ])
        }
    })
}

/// An (H, W) map with values in [0, 1] drawn with `map`.
///
/// # Panics
/// If `values01.len() != h * w`.
pub fn heat_to_rgb(values01: &[f32], h: usize, w: usize, map: ColorMap) -> RgbImage {
    assert_eq!(
        values01.len(),
        h * w,
        "heat_to_rgb: {} values, expected h*w = {h}*{w}",
        values01.len()
    );
    let (h32, w32) = checked_dims(h, w);
    let palette = palette_256(map);
    RgbImage::from_fn(w32, h32, |x, y| {
        Rgb(palette[palette_index(values01[y as usize * w + x as usize])])
    })
}

/// Blends a heat map over an image: `(1 - alpha) * input + alpha * color(heat)`, per channel.
///
/// This is matplotlib's `imshow(heat, alpha=alpha)` over the input, as the study draws it (alpha 0.5
/// over gray inputs, 0.6 over color ones). `alpha` is clamped to [0, 1]: 0 gives the input back, 1
/// gives the heat map alone.
///
/// # Panics
/// If `heat01.len()` is not the number of pixels in `input`.
pub fn overlay(input: &RgbImage, heat01: &[f32], map: ColorMap, alpha: f32) -> RgbImage {
    let (w, h) = input.dimensions();
    assert_eq!(
        heat01.len(),
        w as usize * h as usize,
        "overlay: heat map has {} values, expected {w}x{h} to match the input",
        heat01.len()
    );
    let alpha = if alpha.is_nan() {
        0.0
    } else {
        alpha.clamp(0.0, 1.0)
    };
    let palette = palette_256(map);
    let mut out = input.clone();
    for (pixel, &t) in out.pixels_mut().zip(heat01) {
        let heat = palette[palette_index(t)];
        for (channel, &hc) in pixel.0.iter_mut().zip(&heat) {
            let blended = (1.0 - alpha) * *channel as f32 + alpha * hc as f32;
            *channel = blended.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Enlarges an image by an integer factor, each pixel becoming a `factor` x `factor` block.
///
/// A 28x28 Fashion-MNIST image is too small to read; nearest-neighbour keeps its pixels honest
/// (no smoothing that would invent detail). A factor of 0 is treated as 1.
pub fn upscale_nearest(img: &RgbImage, factor: u32) -> RgbImage {
    let factor = factor.max(1);
    let (w, h) = img.dimensions();
    RgbImage::from_fn(w * factor, h * factor, |x, y| {
        *img.get_pixel(x / factor, y / factor)
    })
}

/// A signed planar (C, H, W) map, such as an adversarial perturbation, as an image: each value is
/// shown as `0.5 + gain * v` (clamped to [0, 1]), so zero is mid gray, positive is brighter and
/// negative darker. Perturbations are tiny (eps = 0.01), so callers pass a brightening `gain` and
/// must state it in the caption (e.g. "perturbation x50").
///
/// # Panics
/// If `c` is not 1 or 3, or `values.len() != c * h * w`.
pub fn signed_to_rgb(values: &[f32], c: usize, h: usize, w: usize, gain: f32) -> RgbImage {
    let shown: Vec<f32> = values.iter().map(|&v| 0.5 + gain * v).collect();
    input_to_rgb(&shown, c, h, w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::colormap::color;

    #[test]
    fn gray_and_rgb_inputs() {
        let gray = input_to_rgb(&[0.0, 1.0, 0.5, 2.0], 1, 2, 2);
        assert_eq!(gray.get_pixel(1, 0).0, [255; 3]);
        assert_eq!(gray.get_pixel(0, 1).0, [128; 3]);
        assert_eq!(gray.get_pixel(1, 1).0, [255; 3], "values above 1 clamp");
        // Planar RGB, 1x2: R plane [1, 0], G plane [0, 1], B plane [0, 0].
        let rgb = input_to_rgb(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0], 3, 1, 2);
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 0, 0]);
        assert_eq!(rgb.get_pixel(1, 0).0, [0, 255, 0]);
    }

    #[test]
    fn overlay_alpha_ends() {
        let input = input_to_rgb(
            &[0.2, 0.9, 0.4, 0.7, 0.1, 0.3, 0.5, 0.6, 0.8, 0.0, 1.0, 0.25],
            3,
            2,
            2,
        );
        let heat = [0.0, 0.3, 0.7, 1.0];
        assert_eq!(overlay(&input, &heat, ColorMap::Inferno, 0.0), input);
        let full = overlay(&input, &heat, ColorMap::Inferno, 1.0);
        assert_eq!(full, heat_to_rgb(&heat, 2, 2, ColorMap::Inferno));
        assert_eq!(full.get_pixel(1, 1).0, color(ColorMap::Inferno, 1.0));
        // Halfway: the mean of the two, e.g. black input under inferno(1).
        let black = RgbImage::new(1, 1);
        let hi = color(ColorMap::Inferno, 1.0);
        let half = overlay(&black, &[1.0], ColorMap::Inferno, 0.5);
        let expected = hi.map(|c| (c as f32 * 0.5).round() as u8);
        assert_eq!(half.get_pixel(0, 0).0, expected);
    }

    #[test]
    fn upscale_repeats_pixels() {
        let img = input_to_rgb(&[0.0, 1.0], 1, 1, 2);
        let big = upscale_nearest(&img, 3);
        assert_eq!(big.dimensions(), (6, 3));
        assert_eq!(big.get_pixel(2, 2).0, [0; 3]);
        assert_eq!(big.get_pixel(3, 0).0, [255; 3]);
        assert_eq!(upscale_nearest(&img, 0), img);
    }

    #[test]
    fn signed_zero_is_mid_gray() {
        let img = signed_to_rgb(&[0.0, 0.01, -0.01], 1, 1, 3, 50.0);
        // 0.5 + 50 * 0.01 = 1.0 and 0.5 - 0.5 = 0.0.
        assert_eq!(img.get_pixel(0, 0).0, [128; 3]);
        assert_eq!(img.get_pixel(1, 0).0, [255; 3]);
        assert_eq!(img.get_pixel(2, 0).0, [0; 3]);
    }
}
