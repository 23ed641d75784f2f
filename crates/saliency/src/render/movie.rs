//! Streaming animations to GIF with one fixed palette, crash-safe; and numbered PNG frames.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::RgbImage;

use super::frame_palette::FramePalette;
use super::png::save_png;
use super::RenderError;

/// Levels per channel of the color cube: 6 x 7 x 6 = 252 colors. Green gets the extra level since
/// the eye tells greens apart best.
const LEVELS: [usize; 3] = [6, 7, 6];
const CUBE: usize = LEVELS[0] * LEVELS[1] * LEVELS[2];
/// Grays added after the cube: the cube's own gray axis only has black and white (51k = 42.5j has
/// no other solutions), and gray Fashion-MNIST inputs fill most frames.
const EXTRA_GRAYS: [u8; 4] = [51, 102, 153, 204];
/// Bits kept per channel when looking a color up: a 32 x 32 x 32 table.
const LUT_BITS: u32 = 5;

/// The one 256-color palette every frame uses: the cube, then the extra grays.
///
/// A fixed palette makes frames exact, deterministic and fast to encode (no per-frame color
/// quantization), at the cost of up to about half a cube step (26 levels) of error per channel.
pub fn gif_palette() -> [[u8; 3]; 256] {
    let mut palette = [[0u8; 3]; 256];
    let level = |i: usize, n: usize| (i as f32 * 255.0 / (n - 1) as f32).round() as u8;
    for (index, entry) in palette.iter_mut().take(CUBE).enumerate() {
        let r = index / (LEVELS[1] * LEVELS[2]);
        let g = (index / LEVELS[2]) % LEVELS[1];
        let b = index % LEVELS[2];
        *entry = [
            level(r, LEVELS[0]),
            level(g, LEVELS[1]),
            level(b, LEVELS[2]),
        ];
    }
    for (entry, &gray) in palette[CUBE..].iter_mut().zip(&EXTRA_GRAYS) {
        *entry = [gray; 3];
    }
    palette
}

/// For each color with the low bits dropped, the index of the nearest palette entry (squared
/// Euclidean distance from the center of that 8 x 8 x 8 block). Built once per process.
fn lookup_table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let palette = gif_palette();
        let side = 1usize << LUT_BITS;
        let half_block = 1i32 << (7 - LUT_BITS);
        let mut table = vec![0u8; side * side * side];
        for (key, slot) in table.iter_mut().enumerate() {
            let center = [
                key >> (2 * LUT_BITS),
                (key >> LUT_BITS) & (side - 1),
                key & (side - 1),
            ]
            .map(|bits| ((bits as i32) << (8 - LUT_BITS)) + half_block);
            let distance =
                |c: &[u8; 3]| -> i32 { (0..3).map(|k| (c[k] as i32 - center[k]).pow(2)).sum() };
            // First minimum wins, so ties resolve the same way every time.
            let mut best = 0;
            for (index, c) in palette.iter().enumerate() {
                if distance(c) < distance(&palette[best]) {
                    best = index;
                }
            }
            *slot = best as u8;
        }
        table
    })
}

/// The palette index a color is drawn with.
pub fn palette_index_of(rgb: [u8; 3]) -> u8 {
    let drop = 8 - LUT_BITS;
    let key = ((rgb[0] as usize >> drop) << (2 * LUT_BITS))
        | ((rgb[1] as usize >> drop) << LUT_BITS)
        | (rgb[2] as usize >> drop);
    lookup_table()[key]
}

/// The 8x8 Bayer threshold matrix (values 0..64) of ordered dithering.
const BAYER_8: [[u8; 8]; 8] = [
    [0, 32, 8, 40, 2, 34, 10, 42],
    [48, 16, 56, 24, 50, 18, 58, 26],
    [12, 44, 4, 36, 14, 46, 6, 38],
    [60, 28, 52, 20, 62, 30, 54, 22],
    [3, 35, 11, 43, 1, 33, 9, 41],
    [51, 19, 59, 27, 49, 17, 57, 25],
    [15, 47, 7, 39, 13, 45, 5, 37],
    [63, 31, 55, 23, 61, 29, 53, 21],
];

/// Caption colors, drawn flat (never dithered) so text stays crisp.
const FLAT_COLORS: [[u8; 3]; 4] = [
    super::grid::GREEN,
    super::grid::RED,
    super::grid::WHITE,
    super::grid::BLACK,
];

/// The palette index of the pixel at (x, y) with ordered dithering: each channel moves by less
/// than half a palette step, by an amount set by the pixel's place in an 8x8 Bayer pattern, before
/// it is rounded to the palette. A smooth ramp then comes out as a fine, fixed pattern whose local
/// average is the ramp, instead of bands a palette step wide; a color on the palette stays itself,
/// and the pattern is the same in every frame (no flicker). Gray pixels are dithered along the
/// palette's gray ladder (steps of 51), so they stay gray; caption colors are not dithered.
pub fn dithered_index_of(rgb: [u8; 3], x: u32, y: u32) -> u8 {
    if FLAT_COLORS.contains(&rgb) {
        return palette_index_of(rgb);
    }
    // In (-1/2, 1/2): the threshold's offset in palette steps.
    let t = (BAYER_8[(y % 8) as usize][(x % 8) as usize] as f32 + 0.5) / 64.0 - 0.5;
    let level = |v: u8, levels: usize| -> usize {
        let step = 255.0 / (levels - 1) as f32;
        ((v as f32 / step + t).round().max(0.0) as usize).min(levels - 1)
    };
    if rgb[0] == rgb[1] && rgb[1] == rgb[2] {
        // Black, the four extra grays, white.
        return match level(rgb[0], 6) {
            0 => 0,
            5 => (CUBE - 1) as u8,
            l => (CUBE + l - 1) as u8,
        };
    }
    let [r, g, b] = [
        level(rgb[0], LEVELS[0]),
        level(rgb[1], LEVELS[1]),
        level(rgb[2], LEVELS[2]),
    ];
    ((r * LEVELS[1] + g) * LEVELS[2] + b) as u8
}

/// An animated GIF written frame by frame as frames arrive, so memory stays bounded however long
/// training runs. It loops forever.
///
/// Frames go to a temp file next to the final path, renamed into place by [`GifMovie::finish`]: an
/// interrupted run never leaves a truncated GIF under the final name. Dropping an unfinished movie
/// deletes the temp file.
pub struct GifMovie {
    path: PathBuf,
    temp_path: PathBuf,
    encoder: Option<gif::Encoder<BufWriter<File>>>,
    width: u16,
    height: u16,
    delay_cs: u16,
    frames: usize,
    /// Reused buffer of palette indices, one per pixel.
    indices: Vec<u8>,
    /// Set once the temp file has been renamed to `path`; until then Drop deletes the temp file.
    finished: bool,
    /// Ordered dithering ([`dithered_index_of`]) on, the default; off maps each pixel to its
    /// nearest palette color.
    dither: bool,
    /// A palette fitted to the movie ([`GifMovie::create_with_palette`]) instead of the fixed
    /// one, with error diffusion.
    fitted: Option<FramePalette>,
}

impl GifMovie {
    /// Starts a `width` x `height` movie showing each frame for `delay_cs` hundredths of a second.
    pub fn create(
        path: &Path,
        width: u16,
        height: u16,
        delay_cs: u16,
    ) -> Result<Self, RenderError> {
        Self::start(path, width, height, delay_cs, None)
    }

    /// Starts a movie whose frames are drawn with `palette` (learned from the movie's own frames
    /// by [`FramePalette::from_frames`]), with error diffusion
    /// ([`FramePalette::diffused_indices`]): small errors where the palette is dense, no bands
    /// where it is sparse.
    pub fn create_with_palette(
        path: &Path,
        width: u16,
        height: u16,
        delay_cs: u16,
        palette: FramePalette,
    ) -> Result<Self, RenderError> {
        Self::start(path, width, height, delay_cs, Some(palette))
    }

    fn start(
        path: &Path,
        width: u16,
        height: u16,
        delay_cs: u16,
        fitted: Option<FramePalette>,
    ) -> Result<Self, RenderError> {
        if width == 0 || height == 0 {
            return Err(RenderError::EmptyMovie {
                path: path.to_path_buf(),
                width,
                height,
            });
        }
        let io_error = |source| RenderError::Io {
            path: path.to_path_buf(),
            source,
        };
        let gif_error = |source| RenderError::Gif {
            path: path.to_path_buf(),
            source,
        };
        let temp_path = temp_path_for(path).map_err(io_error)?;
        let file = File::create(&temp_path).map_err(io_error)?;
        let palette: Vec<u8> = match &fitted {
            Some(p) => p.colors().iter().flatten().copied().collect(),
            None => gif_palette().iter().flatten().copied().collect(),
        };
        let mut movie = GifMovie {
            path: path.to_path_buf(),
            temp_path,
            encoder: None,
            width,
            height,
            delay_cs,
            frames: 0,
            indices: Vec::with_capacity(width as usize * height as usize),
            finished: false,
            dither: true,
            fitted,
        };
        // From here on `movie`'s Drop removes the temp file if anything fails.
        let mut encoder =
            gif::Encoder::new(BufWriter::new(file), width, height, &palette).map_err(gif_error)?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(gif_error)?;
        movie.encoder = Some(encoder);
        Ok(movie)
    }

    /// Turns ordered dithering (on by default, against banding in smooth heat maps) on or off
    /// (nearest palette color per pixel: flat areas exact, ramps in bands).
    pub fn set_dither(&mut self, on: bool) {
        self.dither = on;
    }

    /// Appends one frame; it must have the size given to [`GifMovie::create`].
    pub fn push_frame(&mut self, img: &RgbImage) -> Result<(), RenderError> {
        if img.dimensions() != (self.width as u32, self.height as u32) {
            return Err(RenderError::FrameSize {
                path: self.path.clone(),
                frame: self.frames,
                expected_width: self.width as u32,
                expected_height: self.height as u32,
                found_width: img.width(),
                found_height: img.height(),
            });
        }
        self.indices.clear();
        if let Some(palette) = self.fitted.as_mut() {
            palette.diffused_indices(img, &mut self.indices);
        } else if self.dither {
            self.indices.extend(
                img.enumerate_pixels()
                    .map(|(x, y, p)| dithered_index_of(p.0, x, y)),
            );
        } else {
            self.indices
                .extend(img.pixels().map(|p| palette_index_of(p.0)));
        }
        let mut frame = gif::Frame::from_indexed_pixels(
            self.width,
            self.height,
            std::mem::take(&mut self.indices),
            None,
        );
        frame.delay = self.delay_cs;
        let encoder = self
            .encoder
            .as_mut()
            .expect("the encoder lives until finish");
        let written = encoder.write_frame(&frame);
        // Take the buffer back for the next frame.
        self.indices = frame.buffer.into_owned();
        written.map_err(|source| RenderError::Gif {
            path: self.path.clone(),
            source,
        })?;
        self.frames += 1;
        Ok(())
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Writes the GIF trailer, syncs, and renames the temp file to the final path. Returns the
    /// number of frames.
    pub fn finish(mut self) -> Result<usize, RenderError> {
        let path = self.path.clone();
        let io_error = |source| RenderError::Io {
            path: path.clone(),
            source,
        };
        let encoder = self.encoder.take().expect("the encoder lives until finish");
        let writer = encoder.into_inner().map_err(io_error)?;
        let file = writer.into_inner().map_err(|e| io_error(e.into_error()))?;
        file.sync_all().map_err(io_error)?;
        drop(file);
        fs::rename(&self.temp_path, &self.path).map_err(io_error)?;
        self.finished = true;
        // Persist the rename; best effort, as not every platform can open a folder.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(self.frames)
    }
}

impl Drop for GifMovie {
    fn drop(&mut self) {
        // `finish` never ran, or failed before the rename: throw the partial file away rather than
        // leave it behind. The encoder goes first, since dropping it writes to the file.
        if !self.finished {
            drop(self.encoder.take());
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// `.<name>.tmp-<pid>` in the same folder, so the final rename stays on one file system.
fn temp_path_for(path: &Path) -> std::io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    Ok(path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Saves `img` as `dir/frame_NNNNN.png` (index zero-padded to 5 digits, so names sort in frame
/// order) and returns that path. An alternative to a GIF when exact colors matter.
pub fn save_frame_png(dir: &Path, index: usize, img: &RgbImage) -> Result<PathBuf, RenderError> {
    let path = dir.join(format!("frame_{index:05}.png"));
    save_png(&path, img)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::colormap::{palette_256, ColorMap};
    use crate::render::FramePalette;
    use image::Rgb;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("saliency-render-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn max_channel_error(a: [u8; 3], b: [u8; 3]) -> u8 {
        (0..3).map(|k| a[k].abs_diff(b[k])).max().unwrap()
    }

    /// Per channel the nearest cube level is at most half the widest step away (255 / 5 / 2 =
    /// 25.5), and looking up by block center instead of the color itself adds at most 4: 29.5.
    /// (Inferno's worst level measures 28.)
    const PALETTE_TOLERANCE: u8 = 30;

    #[test]
    fn palette_has_cube_and_grays() {
        let p = gif_palette();
        assert_eq!(p[0], [0, 0, 0]);
        assert_eq!(p[CUBE - 1], [255, 255, 255]);
        assert_eq!(p[255], [204; 3]);
        // Exact palette colors map to themselves.
        for (i, c) in p.iter().enumerate() {
            assert_eq!(p[palette_index_of(*c) as usize], *c, "palette entry {i}");
        }
    }

    #[test]
    fn inferno_maps_closely() {
        let p = gif_palette();
        let (mut worst, mut worst_at) = (0u8, 0usize);
        for (i, c) in palette_256(ColorMap::Inferno).iter().enumerate() {
            let e = max_channel_error(*c, p[palette_index_of(*c) as usize]);
            if e > worst {
                (worst, worst_at) = (e, i);
            }
        }
        assert!(
            worst <= PALETTE_TOLERANCE,
            "inferno level {worst_at}: channel error {worst} > {PALETTE_TOLERANCE}"
        );
    }

    #[test]
    fn three_frames_decode_back() {
        let dir = scratch_dir("gif");
        let path = dir.join("movie.gif");
        let inferno = palette_256(ColorMap::Inferno);
        let frame = |shift: usize| {
            RgbImage::from_fn(64, 8, |x, _| Rgb(inferno[(x as usize * 4 + shift) % 256]))
        };
        let frames: Vec<RgbImage> = (0..3).map(|k| frame(k * 50)).collect();
        let mut movie = GifMovie::create(&path, 64, 8, 10).unwrap();
        movie.set_dither(false);
        for f in &frames {
            movie.push_frame(f).unwrap();
        }
        assert!(!path.exists(), "the final name appears only on finish");
        assert_eq!(movie.finish().unwrap(), 3);

        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::RGBA);
        let mut decoder = options.read_info(File::open(&path).unwrap()).unwrap();
        let mut decoded = 0;
        while let Some(f) = decoder.read_next_frame().unwrap() {
            assert_eq!((f.width, f.height), (64, 8));
            assert_eq!(f.delay, 10);
            for (i, (got, want)) in f
                .buffer
                .chunks_exact(4)
                .zip(frames[decoded].pixels())
                .enumerate()
            {
                let e = max_channel_error([got[0], got[1], got[2]], want.0);
                assert!(
                    e <= PALETTE_TOLERANCE,
                    "frame {decoded} pixel {i}: {got:?} vs {want:?}"
                );
            }
            decoded += 1;
        }
        assert_eq!(decoded, 3);
        assert_eq!(decoder.repeat(), gif::Repeat::Infinite);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wrong_frame_size_is_an_error_and_dropping_cleans_up() {
        let dir = scratch_dir("gif-drop");
        let path = dir.join("bad.gif");
        let mut movie = GifMovie::create(&path, 4, 4, 5).unwrap();
        movie.push_frame(&RgbImage::new(4, 4)).unwrap();
        let err = movie
            .push_frame(&RgbImage::new(5, 4))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("frame 1")
                && err.contains("4x4")
                && err.contains("5x4")
                && err.contains("bad.gif"),
            "{err}"
        );
        assert_eq!(movie.frames(), 1);
        drop(movie);
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "no temp file and no final file"
        );
        assert!(matches!(
            GifMovie::create(&path, 0, 4, 5),
            Err(RenderError::EmptyMovie { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dithering_keeps_palette_colors_and_averages_a_ramp_without_bands() {
        let p = gif_palette();
        // A palette color, a caption color and every gray stay flat (grays stay gray).
        for (x, y) in [(0, 0), (3, 5), (7, 7)] {
            assert_eq!(
                p[dithered_index_of([51, 85, 102], x, y) as usize],
                [51, 85, 102]
            );
            assert_eq!(dithered_index_of(GREEN_, x, y), palette_index_of(GREEN_));
            for v in 0..=255u8 {
                let c = p[dithered_index_of([v; 3], x, y) as usize];
                assert!(c[0] == c[1] && c[1] == c[2], "gray {v} drawn as {c:?}");
            }
        }
        // Each gray and each inferno color averaged over one 8x8 tile: within 4 levels of the
        // input (nearest-color mapping is off by up to 25, which shows as bands).
        let inferno = palette_256(ColorMap::Inferno);
        let mut worst = 0.0f32;
        for c in (0..=255u8).map(|v| [v; 3]).chain(inferno) {
            for k in 0..3 {
                let mean = (0..64)
                    .map(|i| p[dithered_index_of(c, i % 8, i / 8) as usize][k] as f32)
                    .sum::<f32>()
                    / 64.0;
                worst = worst.max((mean - c[k] as f32).abs());
            }
        }
        assert!(worst <= 4.0, "tile mean off by {worst}");
        let nearest = (0..=255u8)
            .map(|v| (p[palette_index_of([v; 3]) as usize][0] as f32 - v as f32).abs())
            .fold(0.0f32, f32::max);
        assert!(nearest >= 20.0, "nearest-color error {nearest}");
    }

    const GREEN_: [u8; 3] = crate::render::GREEN;

    /// A movie frame's smooth content: a gray ramp (left to right) under an inferno overlay of a
    /// heat ramp (top to bottom) at alpha 0.5, above a strip of the pure inferno ramp.
    fn smooth_frame() -> RgbImage {
        let gray = RgbImage::from_fn(256, 96, |x, _| Rgb([x as u8; 3]));
        let heat: Vec<f32> = (0..96 * 256).map(|i| (i / 256) as f32 / 95.0).collect();
        let mut frame = crate::render::overlay(&gray, &heat, ColorMap::Inferno, 0.5);
        let inferno = palette_256(ColorMap::Inferno);
        let mut out = RgbImage::new(256, 128);
        image::imageops::replace(&mut out, &frame, 0, 0);
        for y in 96..128 {
            for x in 0..256 {
                out.put_pixel(x, y, Rgb(inferno[x as usize]));
            }
        }
        frame = out;
        frame
    }

    /// `frame` through a one-frame GIF, decoded back.
    fn through_gif(frame: &RgbImage, movie: GifMovie, path: &Path) -> RgbImage {
        let mut movie = movie;
        movie.push_frame(frame).unwrap();
        movie.finish().unwrap();
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::RGBA);
        let mut decoder = options.read_info(File::open(path).unwrap()).unwrap();
        let f = decoder.read_next_frame().unwrap().unwrap();
        let rgb = f.buffer.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]);
        RgbImage::from_raw(frame.width(), frame.height(), rgb.collect()).unwrap()
    }

    /// Mean |difference| per channel, the worst difference of 8x8-block means (bands: a block
    /// of a smooth ramp rounded to one colour), and the distinct colours along the middle row of
    /// the inferno strip (256 in the frame).
    fn banding(got: &RgbImage, want: &RgbImage) -> (f64, f64, usize) {
        let sum: u64 = got
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .map(|(&a, &b)| a.abs_diff(b) as u64)
            .sum();
        let mut worst = 0.0f64;
        for (bx, by, k) in
            (0..32).flat_map(|bx| (0..16).flat_map(move |by| (0..3).map(move |k| (bx, by, k))))
        {
            let block = |img: &RgbImage| -> i64 {
                (0..64)
                    .map(|i| img.get_pixel(8 * bx + i % 8, 8 * by + i / 8).0[k] as i64)
                    .sum()
            };
            worst = worst.max((block(got) - block(want)).abs() as f64 / 64.0);
        }
        let mut row: Vec<[u8; 3]> = (0..256).map(|x| got.get_pixel(x, 112).0).collect();
        row.sort();
        row.dedup();
        (sum as f64 / got.as_raw().len() as f64, worst, row.len())
    }

    #[test]
    fn a_palette_learned_from_the_frame_holds_smooth_ramps_without_bands() {
        let dir = scratch_dir("banding");
        let frame = smooth_frame();
        let path = dir.join("b.gif");
        let mut cube = GifMovie::create(&path, 256, 128, 10).unwrap();
        cube.set_dither(false);
        let (cube_mean, cube_block, cube_colours) =
            banding(&through_gif(&frame, cube, &path), &frame);
        let dithered = GifMovie::create(&path, 256, 128, 10).unwrap();
        let (dither_mean, dither_block, _) = banding(&through_gif(&frame, dithered, &path), &frame);
        let palette = FramePalette::from_frames(&[&frame]);
        let learned = GifMovie::create_with_palette(&path, 256, 128, 10, palette).unwrap();
        let learned_img = through_gif(&frame, learned, &path);
        let (mean, block, colours) = banding(&learned_img, &frame);
        if let Ok(keep) = std::env::var("SALIENCY_KEEP_MOVIE") {
            let mut side = RgbImage::new(256 * 4, 128);
            image::imageops::replace(&mut side, &frame, 0, 0);
            image::imageops::replace(&mut side, &learned_img, 256, 0);
            let mut cube = GifMovie::create(&path, 256, 128, 10).unwrap();
            cube.set_dither(false);
            image::imageops::replace(&mut side, &through_gif(&frame, cube, &path), 512, 0);
            let dithered = GifMovie::create(&path, 256, 128, 10).unwrap();
            image::imageops::replace(&mut side, &through_gif(&frame, dithered, &path), 768, 0);
            image::imageops::resize(&side, 2048, 256, image::imageops::FilterType::Nearest)
                .save(format!("{keep}/banding.png"))
                .unwrap();
        }
        eprintln!(
            "cube nearest: mean {cube_mean:.2}, block {cube_block:.2}, {cube_colours} colours; \
             cube dithered: mean {dither_mean:.2}, block {dither_block:.2}; \
             learned: mean {mean:.2}, block {block:.2}, {colours} colours"
        );
        // Measured here: the cube rounds the ramps into wide bands (mean 11.9, worst block 25.9,
        // 19 colours across the 256-step strip) or, dithered, into coarse grain (mean 15.9); the
        // learned palette with error diffusion: mean 5.9, worst block 10.6, 82 colours.
        assert!(
            cube_colours <= 24 && cube_block >= 20.0,
            "{cube_colours} {cube_block}"
        );
        assert!(dither_mean >= 12.0, "{dither_mean}");
        assert!(
            mean <= cube_mean / 2.0 && mean <= dither_mean / 2.0,
            "mean error {mean}"
        );
        assert!(block <= cube_block / 2.0, "worst block {block}");
        assert!(colours >= 3 * cube_colours, "{colours} colours");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn numbered_png_frames() {
        let dir = scratch_dir("frames");
        let p = save_frame_png(&dir, 42, &RgbImage::new(3, 3)).unwrap();
        assert_eq!(p, dir.join("frame_00042.png"));
        assert!(p.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
