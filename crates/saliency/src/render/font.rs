//! A built-in 5x7 bitmap font (plus a descender row) for captions, so figures need no system fonts or font crates.

use image::{Rgb, RgbImage};

/// Glyph width in font pixels.
pub const GLYPH_WIDTH: u32 = 5;
/// Glyph cell height in font pixels: capitals and digits fill the top 7 rows (the baseline is row
/// 6), and the 8th row holds the descenders of g, j, p, q and y.
pub const GLYPH_HEIGHT: u32 = 8;
/// Horizontal distance from one glyph to the next, in font pixels (one blank column between).
pub const ADVANCE: u32 = GLYPH_WIDTH + 1;
/// Vertical distance between caption lines, in font pixels (two blank rows under the descenders).
pub const LINE_HEIGHT: u32 = GLYPH_HEIGHT + 2;

/// The classic 5x7 LCD font for ASCII 32..=126, with descenders added: five column bytes per
/// glyph, left to right, bit 0 the top row and bit 7 the descender row.
#[rustfmt::skip]
const GLYPHS: [[u8; 5]; 95] = [
    [0x00, 0x00, 0x00, 0x00, 0x00], // ' '
    [0x00, 0x00, 0x5F, 0x00, 0x00], // !
    [0x00, 0x07, 0x00, 0x07, 0x00], // "
    [0x14, 0x7F, 0x14, 0x7F, 0x14], // #
    [0x24, 0x2A, 0x7F, 0x2A, 0x12], // $
    [0x23, 0x13, 0x08, 0x64, 0x62], // %
    [0x36, 0x49, 0x55, 0x22, 0x50], // &
    [0x00, 0x05, 0x03, 0x00, 0x00], // '
    [0x00, 0x1C, 0x22, 0x41, 0x00], // (
    [0x00, 0x41, 0x22, 0x1C, 0x00], // )
    [0x14, 0x08, 0x3E, 0x08, 0x14], // *
    [0x08, 0x08, 0x3E, 0x08, 0x08], // +
    [0x00, 0x50, 0x30, 0x00, 0x00], // ,
    [0x08, 0x08, 0x08, 0x08, 0x08], // -
    [0x00, 0x60, 0x60, 0x00, 0x00], // .
    [0x20, 0x10, 0x08, 0x04, 0x02], // /
    [0x3E, 0x51, 0x49, 0x45, 0x3E], // 0
    [0x00, 0x42, 0x7F, 0x40, 0x00], // 1
    [0x42, 0x61, 0x51, 0x49, 0x46], // 2
    [0x21, 0x41, 0x45, 0x4B, 0x31], // 3
    [0x18, 0x14, 0x12, 0x7F, 0x10], // 4
    [0x27, 0x45, 0x45, 0x45, 0x39], // 5
    [0x3C, 0x4A, 0x49, 0x49, 0x30], // 6
    [0x01, 0x71, 0x09, 0x05, 0x03], // 7
    [0x36, 0x49, 0x49, 0x49, 0x36], // 8
    [0x06, 0x49, 0x49, 0x29, 0x1E], // 9
    [0x00, 0x36, 0x36, 0x00, 0x00], // :
    [0x00, 0x56, 0x36, 0x00, 0x00], // ;
    [0x08, 0x14, 0x22, 0x41, 0x00], // <
    [0x14, 0x14, 0x14, 0x14, 0x14], // =
    [0x00, 0x41, 0x22, 0x14, 0x08], // >
    [0x02, 0x01, 0x51, 0x09, 0x06], // ?
    [0x32, 0x49, 0x79, 0x41, 0x3E], // @
    [0x7E, 0x11, 0x11, 0x11, 0x7E], // A
    [0x7F, 0x49, 0x49, 0x49, 0x36], // B
    [0x3E, 0x41, 0x41, 0x41, 0x22], // C
    [0x7F, 0x41, 0x41, 0x22, 0x1C], // D
    [0x7F, 0x49, 0x49, 0x49, 0x41], // E
    [0x7F, 0x09, 0x09, 0x09, 0x01], // F
    [0x3E, 0x41, 0x49, 0x49, 0x7A], // G
    [0x7F, 0x08, 0x08, 0x08, 0x7F], // H
    [0x00, 0x41, 0x7F, 0x41, 0x00], // I
    [0x20, 0x40, 0x41, 0x3F, 0x01], // J
    [0x7F, 0x08, 0x14, 0x22, 0x41], // K
    [0x7F, 0x40, 0x40, 0x40, 0x40], // L
    [0x7F, 0x02, 0x0C, 0x02, 0x7F], // M
    [0x7F, 0x04, 0x08, 0x10, 0x7F], // N
    [0x3E, 0x41, 0x41, 0x41, 0x3E], // O
    [0x7F, 0x09, 0x09, 0x09, 0x06], // P
    [0x3E, 0x41, 0x51, 0x21, 0x5E], // Q
    [0x7F, 0x09, 0x19, 0x29, 0x46], // R
    [0x46, 0x49, 0x49, 0x49, 0x31], // S
    [0x01, 0x01, 0x7F, 0x01, 0x01], // T
    [0x3F, 0x40, 0x40, 0x40, 0x3F], // U
    [0x1F, 0x20, 0x40, 0x20, 0x1F], // V
    [0x3F, 0x40, 0x38, 0x40, 0x3F], // W
    [0x63, 0x14, 0x08, 0x14, 0x63], // X
    [0x07, 0x08, 0x70, 0x08, 0x07], // Y
    [0x61, 0x51, 0x49, 0x45, 0x43], // Z
    [0x00, 0x7F, 0x41, 0x41, 0x00], // [
    [0x02, 0x04, 0x08, 0x10, 0x20], // backslash
    [0x00, 0x41, 0x41, 0x7F, 0x00], // ]
    [0x04, 0x02, 0x01, 0x02, 0x04], // ^
    [0x40, 0x40, 0x40, 0x40, 0x40], // _
    [0x00, 0x01, 0x02, 0x04, 0x00], // `
    [0x20, 0x54, 0x54, 0x54, 0x78], // a
    [0x7F, 0x48, 0x44, 0x44, 0x38], // b
    [0x38, 0x44, 0x44, 0x44, 0x20], // c
    [0x38, 0x44, 0x44, 0x48, 0x7F], // d
    [0x38, 0x54, 0x54, 0x54, 0x18], // e
    [0x08, 0x7E, 0x09, 0x01, 0x02], // f
    [0x98, 0xA4, 0xA4, 0xA4, 0x7C], // g
    [0x7F, 0x08, 0x04, 0x04, 0x78], // h
    [0x00, 0x44, 0x7D, 0x40, 0x00], // i
    [0x40, 0x80, 0x80, 0x7D, 0x00], // j
    [0x7F, 0x10, 0x28, 0x44, 0x00], // k
    [0x00, 0x41, 0x7F, 0x40, 0x00], // l
    [0x7C, 0x04, 0x18, 0x04, 0x78], // m
    [0x7C, 0x08, 0x04, 0x04, 0x78], // n
    [0x38, 0x44, 0x44, 0x44, 0x38], // o
    [0xFC, 0x24, 0x24, 0x24, 0x18], // p
    [0x18, 0x24, 0x24, 0x24, 0xFC], // q
    [0x7C, 0x08, 0x04, 0x04, 0x08], // r
    [0x48, 0x54, 0x54, 0x54, 0x20], // s
    [0x04, 0x3F, 0x44, 0x40, 0x20], // t
    [0x3C, 0x40, 0x40, 0x20, 0x7C], // u
    [0x1C, 0x20, 0x40, 0x20, 0x1C], // v
    [0x3C, 0x40, 0x30, 0x40, 0x3C], // w
    [0x44, 0x28, 0x10, 0x28, 0x44], // x
    [0x9C, 0xA0, 0xA0, 0xA0, 0x7C], // y
    [0x44, 0x64, 0x54, 0x4C, 0x44], // z
    [0x00, 0x08, 0x36, 0x41, 0x00], // {
    [0x00, 0x00, 0x7F, 0x00, 0x00], // |
    [0x00, 0x41, 0x36, 0x08, 0x00], // }
    [0x08, 0x04, 0x08, 0x10, 0x08], // ~
];

/// What characters outside ASCII 32..=126 (and control characters) are drawn as: a hollow box.
const MISSING: [u8; 5] = [0x7F, 0x41, 0x41, 0x41, 0x7F];

fn glyph(ch: char) -> &'static [u8; 5] {
    match ch {
        ' '..='~' => &GLYPHS[ch as usize - ' ' as usize],
        _ => &MISSING,
    }
}

/// The width in pixels of `text` drawn at `scale` (no trailing gap after the last glyph).
pub fn text_width(text: &str, scale: u32) -> u32 {
    let n = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    if n == 0 {
        return 0;
    }
    n.saturating_mul(ADVANCE)
        .saturating_sub(1)
        .saturating_mul(scale)
}

/// The height in pixels of one line of text at `scale` (the glyphs only, without line spacing).
pub fn text_height(scale: u32) -> u32 {
    GLYPH_HEIGHT.saturating_mul(scale)
}

/// Draws `text` with its top-left corner at (`x`, `y`), each font pixel a `scale` x `scale` block.
///
/// Everything outside the image is clipped, so any position and any string are safe; characters
/// the font lacks are drawn as a box. A `scale` of 0 draws nothing.
pub fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, color: [u8; 3], scale: u32) {
    let (width, height) = img.dimensions();
    // Positions in u64 so that a far-off start or a huge scale cannot overflow.
    let (scale64, y0) = (scale as u64, y as u64);
    for (index, ch) in text.chars().enumerate() {
        let gx = x as u64 + index as u64 * ADVANCE as u64 * scale64;
        if gx >= width as u64 {
            break; // every later glyph starts further right
        }
        for (col, bits) in glyph(ch).iter().enumerate() {
            for row in 0..GLYPH_HEIGHT as u64 {
                if bits & (1 << row) == 0 {
                    continue;
                }
                let px = gx + col as u64 * scale64;
                let py = y0 + row * scale64;
                fill_clipped(img, px, py, scale64, color, width, height);
            }
        }
    }
}

/// Fills the `size` x `size` block at (`px`, `py`), skipping whatever lies outside the image.
fn fill_clipped(
    img: &mut RgbImage,
    px: u64,
    py: u64,
    size: u64,
    color: [u8; 3],
    width: u32,
    height: u32,
) {
    let x_end = (px + size).min(width as u64);
    let y_end = (py + size).min(height as u64);
    for yy in py..y_end {
        for xx in px..x_end {
            img.put_pixel(xx as u32, yy as u32, Rgb(color));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lit(img: &RgbImage) -> usize {
        img.pixels().filter(|p| p.0 != [0, 0, 0]).count()
    }

    #[test]
    fn draws_a_letter() {
        let mut img = RgbImage::new(20, 20);
        draw_text(&mut img, 1, 1, "A", [255, 255, 255], 1);
        // At scale 1 every set bit of the glyph is one lit pixel.
        let bits: u32 = glyph('A').iter().map(|b| b.count_ones()).sum();
        assert_eq!(lit(&img), bits as usize);
        // All of it inside the glyph box at (1, 1).
        for (x, y, p) in img.enumerate_pixels() {
            if p.0 != [0, 0, 0] {
                assert!(
                    (1..6).contains(&x) && (1..8).contains(&y),
                    "pixel at ({x}, {y})"
                );
            }
        }
        let mut big = RgbImage::new(20, 20);
        draw_text(&mut big, 0, 0, "A", [255, 0, 0], 2);
        assert_eq!(lit(&big), 4 * bits as usize);
    }

    #[test]
    fn every_printable_glyph_but_space_draws_something() {
        for ch in '!'..='~' {
            let mut img = RgbImage::new(8, 8);
            draw_text(&mut img, 0, 0, &ch.to_string(), [9, 9, 9], 1);
            assert!(lit(&img) > 0, "{ch:?} drew nothing");
        }
    }

    #[test]
    fn clips_at_the_edges() {
        // A 4x4 image, text starting at (2, 2): only what falls inside is drawn, no panic.
        let mut img = RgbImage::new(4, 4);
        draw_text(&mut img, 2, 2, "WWWW", [255, 255, 255], 3);
        assert!(lit(&img) > 0);
        draw_text(&mut img, u32::MAX, u32::MAX, "x", [1, 1, 1], u32::MAX);
        let mut empty = RgbImage::new(0, 0);
        draw_text(&mut empty, 0, 0, "abc", [1, 1, 1], 1);
    }

    #[test]
    fn unknown_characters_draw_a_box() {
        let mut a = RgbImage::new(10, 10);
        let mut b = RgbImage::new(10, 10);
        draw_text(&mut a, 0, 0, "é", [255, 255, 255], 1);
        draw_text(&mut b, 0, 0, "\u{1F600}", [255, 255, 255], 1);
        assert_eq!(a, b);
        // Two full columns of 7 and three columns with only the top and bottom pixel.
        assert_eq!(lit(&a), 7 + 7 + 3 * 2);
    }

    #[test]
    fn width_arithmetic() {
        assert_eq!(text_width("", 2), 0);
        assert_eq!(text_width("A", 1), 5);
        // Three glyphs: 3 * 6 - 1 = 17 font pixels.
        assert_eq!(text_width("abc", 2), 34);
        assert_eq!(text_width("é", 1), 5, "counts characters, not bytes");
    }

    proptest! {
        #[test]
        fn never_panics_or_draws_outside(text in ".{0,12}", x in 0u32..40, y in 0u32..40, scale in 0u32..4,
                                         w in 0u32..30, h in 0u32..30) {
            let mut img = RgbImage::new(w, h);
            draw_text(&mut img, x, y, &text, [255, 255, 255], scale);
            // Nothing to the left of or above the start point.
            for (px, py, p) in img.enumerate_pixels() {
                if p.0 != [0, 0, 0] {
                    prop_assert!(px >= x && py >= y);
                    prop_assert!(py < y + text_height(scale));
                }
            }
        }
    }
}
