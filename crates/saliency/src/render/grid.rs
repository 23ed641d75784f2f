//! Laying captioned tiles out in a grid, and adding a title bar that states how a figure was scaled.

use image::{imageops, Rgb, RgbImage};

use super::font::{draw_text, text_width, ADVANCE, GLYPH_HEIGHT, LINE_HEIGHT};

/// Caption color for a correct prediction. Mid-bright, so it reads on black and on white.
pub const GREEN: [u8; 3] = [30, 170, 30];
/// Caption color for a wrong prediction.
pub const RED: [u8; 3] = [220, 35, 35];
/// Plain text on a dark background.
pub const WHITE: [u8; 3] = [255, 255, 255];
/// Plain text on a light background.
pub const BLACK: [u8; 3] = [0, 0, 0];

/// Font scale of captions and titles: 2 makes the 5x7 font 10x14 pixels, readable at a glance
/// under a 224-pixel tile (a 28x28 image upscaled 8x) or a 256-pixel flower.
pub const TEXT_SCALE: u32 = 2;

/// [`GREEN`] when the prediction was right, [`RED`] when it was wrong.
pub fn verdict_color(correct: bool) -> [u8; 3] {
    if correct {
        GREEN
    } else {
        RED
    }
}

/// One picture of a grid with the caption lines drawn beneath it, each line in its own color.
#[derive(Debug, Clone)]
pub struct Tile {
    /// The picture (already upscaled if it is small).
    pub image: RgbImage,
    /// Caption lines, top to bottom, each with its text color.
    pub caption: Vec<(String, [u8; 3])>,
}

impl Tile {
    /// A tile with no caption.
    pub fn new(image: RgbImage) -> Self {
        Tile {
            image,
            caption: Vec::new(),
        }
    }

    /// Adds one caption line (builder style).
    pub fn line(mut self, text: impl Into<String>, color: [u8; 3]) -> Self {
        self.caption.push((text.into(), color));
        self
    }
}

/// Pixels taken by `lines` caption lines: a small gap under the picture, then one line height each.
pub fn caption_height(lines: usize) -> u32 {
    if lines == 0 {
        return 0;
    }
    let lines = u32::try_from(lines).unwrap_or(u32::MAX);
    TEXT_SCALE.saturating_mul(2u32.saturating_add(LINE_HEIGHT.saturating_mul(lines)))
}

/// The size every cell of a grid of these tiles gets: the widest picture or caption line (plus one
/// character of room), and the tallest picture plus caption.
pub fn cell_size(tiles: &[Tile]) -> (u32, u32) {
    let mut cell = (0u32, 0u32);
    for tile in tiles {
        // One character's room beside each caption line, so neighbouring captions never touch.
        let caption_w = tile
            .caption
            .iter()
            .map(|(text, _)| text_width(text, TEXT_SCALE) + ADVANCE * TEXT_SCALE)
            .max()
            .unwrap_or(0);
        cell.0 = cell.0.max(tile.image.width()).max(caption_w);
        cell.1 = cell
            .1
            .max(tile.image.height() + caption_height(tile.caption.len()));
    }
    cell
}

/// Lays `tiles` out row by row, `cols` to a row, on a `background` with `pad` pixels around and
/// between cells.
///
/// Every cell has the size of [`cell_size`]; pictures are centered at the top of their cell and
/// caption lines centered beneath. The image is `cols * cell_w + (cols + 1) * pad` wide and
/// `rows * cell_h + (rows + 1) * pad` tall with `rows = ceil(n / cols)`, where `cols` is first
/// limited to `1..=n` (so three tiles with `cols = 4` make one row of three). No tiles give an
/// image of just the padding (at least 1x1).
pub fn grid(tiles: &[Tile], cols: usize, pad: u32, background: [u8; 3]) -> RgbImage {
    if tiles.is_empty() {
        let side = pad.saturating_mul(2).max(1);
        return RgbImage::from_pixel(side, side, Rgb(background));
    }
    let cols = cols.clamp(1, tiles.len());
    let rows = tiles.len().div_ceil(cols);
    let (cell_w, cell_h) = cell_size(tiles);
    let width = cols as u32 * cell_w + (cols as u32 + 1) * pad;
    let height = rows as u32 * cell_h + (rows as u32 + 1) * pad;
    let mut out = RgbImage::from_pixel(width, height, Rgb(background));
    for (index, tile) in tiles.iter().enumerate() {
        let (col, row) = ((index % cols) as u32, (index / cols) as u32);
        let cell_x = pad + col * (cell_w + pad);
        let cell_y = pad + row * (cell_h + pad);
        let image_x = cell_x + (cell_w - tile.image.width()) / 2;
        imageops::replace(&mut out, &tile.image, image_x as i64, cell_y as i64);
        let mut line_y = cell_y + tile.image.height() + 2 * TEXT_SCALE;
        for (text, color) in &tile.caption {
            // Lines wider than the cell cannot happen (cell_size counts them); saturate anyway.
            let line_x = cell_x + cell_w.saturating_sub(text_width(text, TEXT_SCALE)) / 2;
            draw_text(&mut out, line_x, line_y, text, *color, TEXT_SCALE);
            line_y += LINE_HEIGHT * TEXT_SCALE;
        }
    }
    out
}

/// Adds a bar with `title` above `img`, e.g. to state the normalization of every map below it
/// ("gradient x input, max-normalized (scale 3.2e-2)").
///
/// The bar takes the color of the image's top-left pixel (the grid background) and white or black
/// text, whichever contrasts. If the title is wider than the image, the result is widened and the
/// image centered.
pub fn title_bar(img: &RgbImage, title: &str) -> RgbImage {
    let background = if img.width() > 0 && img.height() > 0 {
        img.get_pixel(0, 0).0
    } else {
        BLACK
    };
    // Rec. 601 luma, the usual quick test of "is this a light color".
    let luma =
        0.299 * background[0] as f32 + 0.587 * background[1] as f32 + 0.114 * background[2] as f32;
    let text_color = if luma < 128.0 { WHITE } else { BLACK };
    let margin = 3 * TEXT_SCALE;
    let bar_height = GLYPH_HEIGHT * TEXT_SCALE + 2 * margin;
    let width = img.width().max(text_width(title, TEXT_SCALE) + 2 * margin);
    let mut out = RgbImage::from_pixel(width, img.height() + bar_height, Rgb(background));
    draw_text(&mut out, margin, margin, title, text_color, TEXT_SCALE);
    imageops::replace(
        &mut out,
        img,
        ((width - img.width()) / 2) as i64,
        bar_height as i64,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(w: u32, h: u32, lines: &[&str]) -> Tile {
        let mut t = Tile::new(RgbImage::from_pixel(w, h, Rgb([200, 100, 50])));
        for l in lines {
            t = t.line(*l, WHITE);
        }
        t
    }

    #[test]
    fn grid_size_arithmetic() {
        // Five tiles, three to a row: two rows. Cells are the largest tile (30 wide, 20 + 1 caption
        // line tall); "abc" at scale 2 is 34 pixels wide plus 12 of room, wider than any picture.
        let tiles = vec![
            tile(30, 20, &["abc"]),
            tile(10, 10, &[]),
            tile(10, 10, &[]),
            tile(10, 10, &[]),
            tile(10, 10, &[]),
        ];
        let (cell_w, cell_h) = cell_size(&tiles);
        assert_eq!(cell_w, 34 + ADVANCE * TEXT_SCALE);
        assert_eq!(cell_h, 20 + TEXT_SCALE * (2 + LINE_HEIGHT));
        let g = grid(&tiles, 3, 4, BLACK);
        assert_eq!(g.dimensions(), (3 * cell_w + 4 * 4, 2 * cell_h + 3 * 4));
        // cols is limited to the number of tiles.
        let g = grid(&tiles[..2], 4, 1, BLACK);
        assert_eq!(g.dimensions(), (2 * cell_w + 3, cell_h + 2));
        assert_eq!(grid(&[], 3, 0, BLACK).dimensions(), (1, 1));
    }

    #[test]
    fn tiles_land_in_their_cells() {
        let tiles = vec![tile(10, 10, &[]), tile(10, 10, &[]), tile(10, 10, &[])];
        let g = grid(&tiles, 2, 2, BLACK);
        // Second row, first cell starts at (2, 2 + 10 + 2).
        assert_eq!(g.get_pixel(2, 14).0, [200, 100, 50]);
        assert_eq!(g.get_pixel(1, 14).0, BLACK);
        // The empty fourth cell stays background.
        assert_eq!(g.get_pixel(18, 18).0, BLACK);
    }

    #[test]
    fn title_bar_adds_height_and_contrasting_text() {
        let img = RgbImage::from_pixel(40, 10, Rgb(WHITE));
        let titled = title_bar(&img, "a very long title that is wide");
        let bar = GLYPH_HEIGHT * TEXT_SCALE + 6 * TEXT_SCALE;
        assert_eq!(titled.height(), 10 + bar);
        assert!(titled.width() > 40);
        // White background, so the title is black.
        assert!(titled.pixels().any(|p| p.0 == BLACK));
    }
}
