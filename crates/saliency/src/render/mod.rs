//! Rendering: heat maps, overlays, captioned grids, GIF movies, PNG files and SVG line plots.
//!
//! Everything works on `image::RgbImage` (8-bit RGB, row-major); inputs and maps come in as planar
//! (C, H, W) `f32` slices as the engine stores them. Pictures record how they were scaled: the
//! normalization functions return the scale, and callers put it in a caption or title bar.

mod attribution_picture;
mod colormap;
mod colour_bar;
mod error;
mod font;
mod frame_palette;
mod grid;
mod image_ops;
mod magnitude_histogram;
mod movie;
mod normalize;
mod png;
mod svg;

pub use attribution_picture::{
    attribution_picture, prepare_map, scale_caption, sign_colormap, PictureItem, PictureOptions,
    Sign, Style,
};
pub use colormap::{color, palette_256, palette_index, ColorMap};
pub use colour_bar::with_colour_bar;
pub use error::RenderError;
pub use font::{
    draw_text, text_height, text_width, ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH, LINE_HEIGHT,
};
pub use frame_palette::FramePalette;
pub use grid::{
    caption_height, cell_size, grid, title_bar, verdict_color, Tile, BLACK, GREEN, RED, TEXT_SCALE,
    WHITE,
};
pub use image_ops::{heat_to_rgb, input_to_rgb, overlay, signed_to_rgb, upscale_nearest};
pub use magnitude_histogram::MagnitudeHistogram;
pub use movie::{dithered_index_of, gif_palette, palette_index_of, save_frame_png, GifMovie};
pub use normalize::{max_normalize, percentile_clip, sum_channels, Normalized};
pub use png::{encode_png, save_png};
pub use svg::{line_plot_svg, xml_escape, Series};
