//! Streaming animations to GIF with one fixed palette, crash-safe; and numbered PNG frames.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::RgbImage;

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
}

impl GifMovie {
    /// Starts a `width` x `height` movie showing each frame for `delay_cs` hundredths of a second.
    pub fn create(
        path: &Path,
        width: u16,
        height: u16,
        delay_cs: u16,
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
        let palette: Vec<u8> = gif_palette().iter().flatten().copied().collect();
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
        self.indices
            .extend(img.pixels().map(|p| palette_index_of(p.0)));
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
    fn numbered_png_frames() {
        let dir = scratch_dir("frames");
        let p = save_frame_png(&dir, 42, &RgbImage::new(3, 3)).unwrap();
        assert_eq!(p, dir.join("frame_00042.png"));
        assert!(p.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
