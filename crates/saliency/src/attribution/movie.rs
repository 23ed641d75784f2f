//! `AttributionMovie`: a training hook that draws gradient x input of fixed test images as the
//! model trains, one frame per observed step, streamed into a GIF (and optionally PNG frames).

use std::path::{Path, PathBuf};

use image::{imageops, Rgb, RgbImage};
use tensor::Tensor;

use super::gradient_x_input::gradient_x_input;
use super::movie_spill::{FrameSpill, SpilledFrame};
use super::{check_inputs, default_batch, AttributionError};
use crate::data::Dataset;
use crate::infer::{argmax_rows, predict_probs};
use crate::models::Model;
use crate::render::{
    grid, input_to_rgb, overlay, save_frame_png, sum_channels, text_width, title_bar,
    upscale_nearest, verdict_color, with_colour_bar, ColorMap, FramePalette, GifMovie,
    MagnitudeHistogram, Tile, ADVANCE, BLACK, TEXT_SCALE, WHITE,
};
use crate::train::{TrainHook, TrainState};

/// Pictures smaller than this many pixels across are enlarged (nearest neighbour) to at least it:
/// a 28x28 image becomes 224x224.
const MIN_TILE_SIDE: usize = 224;
/// Pixels around and between the tiles of a frame.
const GRID_PAD: u32 = 4;
/// The quantile of each image's |map| over the whole movie that the top of the colour map
/// stands for: robust to a few extreme pixels, and the same in every frame.
const SCALE_QUANTILE: f64 = 0.99;
/// Frames, spread from the first to the last, from which the GIF's palette is learned.
const PALETTE_SAMPLES: usize = 4;

/// Settings of an [`AttributionMovie`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovieOptions {
    /// Draw a frame at every `every`-th step (steps 0, every, 2 * every, ...); at least 1.
    pub every: u64,
    /// Also save each frame as `frame_NNNNN.png` in this folder (exact colors, unlike the GIF).
    pub png_dir: Option<PathBuf>,
    /// How long each GIF frame shows, in hundredths of a second.
    pub delay_cs: u16,
    /// Tiles per row; `None` uses the study's layout (4 for small images, 3 for large ones).
    pub columns: Option<usize>,
}

impl Default for MovieOptions {
    fn default() -> Self {
        MovieOptions {
            every: 1,
            png_dir: None,
            delay_cs: 10,
            columns: None,
        }
    }
}

/// The study's movie images for a test set of images (C, H, W): the first 16 in a 4x4 grid for
/// small images (Fashion-MNIST), the first 6 in a 2x3 grid for large ones (flowers).
fn study_layout(shape: [usize; 3]) -> (usize, usize) {
    if shape[1].max(shape[2]) <= 64 {
        (16, 4)
    } else {
        (6, 3)
    }
}

/// Draws gradient x input (the study's |ds/da| * a for the predicted class) of fixed images at
/// every `every`-th observed training step: each image with the stills' inferno overlay (alpha
/// 0.5 on gray, 0.6 on color; RGB maps summed over channels) under a colour bar, captioned with
/// its true class, the prediction with its confidence (green when right, red when wrong) and its
/// scale, under a title with the step.
///
/// Each image keeps one scale for the whole movie: the 99th percentile of its |map| over every
/// frame (values above it get the top colour). A frame is therefore comparable with every other:
/// the untrained model's small, scattered gradients look dim and noisy, the trained model's
/// structure bright. So that the scale is known before the first frame is drawn, the raw maps are
/// spilled to a temporary file beside the GIF as training runs (one frame in memory at a time)
/// and drawn by `finish`, which writes the GIF (and PNG frames) and renames it into place.
pub struct AttributionMovie {
    path: PathBuf,
    images: Tensor<f32>,
    labels: Vec<usize>,
    class_names: Vec<String>,
    options: MovieOptions,
    columns: usize,
    upscale: u32,
    /// Every tile is padded to this width so the layout never moves between frames.
    tile_width: u32,
    /// The raw frames, until `finish` draws them.
    spill: FrameSpill,
    /// Per image, the magnitudes of its map over every frame so far.
    magnitudes: Vec<MagnitudeHistogram>,
    /// Size of the first frame; later frames are drawn onto a canvas of this size.
    frame_size: Option<(u32, u32)>,
    frames: usize,
    last_step: Option<u64>,
}

impl AttributionMovie {
    /// A movie of `images` (N, C, H, W) in [0, 1], C = 1 or 3, with their `labels` and the data
    /// set's class names, written to `path` (a `.gif`).
    pub fn new(
        path: &Path,
        images: Tensor<f32>,
        labels: Vec<usize>,
        class_names: Vec<String>,
        options: MovieOptions,
    ) -> Result<Self, AttributionError> {
        let shape = images.shape().to_vec();
        if shape.len() != 4 || shape[0] == 0 || !(shape[1] == 1 || shape[1] == 3) {
            return Err(AttributionError::Option {
                option: "images",
                expected: "a non-empty batch (N, C, H, W) with C = 1 (gray) or 3 (RGB)".into(),
                found: format!("{shape:?}"),
            });
        }
        if labels.len() != shape[0] {
            return Err(AttributionError::Count {
                what: "labels",
                expected: shape[0],
                found: labels.len(),
            });
        }
        if options.every == 0 {
            return Err(AttributionError::Option {
                option: "every",
                expected: "a step interval of at least 1".into(),
                found: "0".into(),
            });
        }
        let input = [shape[1], shape[2], shape[3]];
        let columns = options.columns.unwrap_or(study_layout(input).1).max(1);
        let side = shape[2].max(shape[3]);
        let upscale = MIN_TILE_SIDE.div_ceil(side).max(1) as u32;
        // The widest caption any frame can have: the longest class name at 100.0 %. Classes
        // without a name are shown as their index; three digits covers any of ours.
        let mut widest_name = class_names
            .iter()
            .max_by_key(|name| name.chars().count())
            .cloned()
            .unwrap_or_default();
        if widest_name.chars().count() < 3 {
            widest_name = "000".into();
        }
        let caption_width = [
            true_line(&widest_name),
            pred_line(&widest_name, 1.0),
            scale_line(-f32::MAX),
        ]
        .iter()
        .map(|line| text_width(line, TEXT_SCALE) + ADVANCE * TEXT_SCALE)
        .max()
        .unwrap_or(0);
        let tile_width = caption_width.max(shape[3] as u32 * upscale);
        Ok(Self {
            path: path.to_path_buf(),
            spill: FrameSpill::beside(path, shape[0], shape[2] * shape[3]),
            magnitudes: vec![MagnitudeHistogram::new(); shape[0]],
            images,
            labels,
            class_names,
            options,
            columns,
            upscale,
            tile_width,
            frame_size: None,
            frames: 0,
            last_step: None,
        })
    }

    /// The study's movie for a test set: its first 16 images (4x4) when they are small, its
    /// first 6 (2x3) when they are large.
    pub fn from_dataset(
        path: &Path,
        test: &Dataset,
        options: MovieOptions,
    ) -> Result<Self, AttributionError> {
        let (count, _) = study_layout(test.shape);
        let subset = test.take(count);
        let [c, h, w] = test.shape;
        let images = Tensor::from_vec(&[subset.len(), c, h, w], subset.images)?;
        let labels = subset.labels.iter().map(|&y| y as usize).collect();
        Self::new(path, images, labels, subset.class_names, options)
    }

    /// Frames observed so far (all of them are in the GIF once `finish` has run).
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// The step of the last frame observed.
    pub fn last_step(&self) -> Option<u64> {
        self.last_step
    }

    /// Width and height of every frame (known once the frames are drawn, by `finish`).
    pub fn frame_size(&self) -> Option<(u32, u32)> {
        self.frame_size
    }

    /// The display scale of each image: the 99th percentile of its |map| over the frames so far.
    pub fn scales(&self) -> Vec<f32> {
        self.magnitudes
            .iter()
            .map(|h| h.quantile(SCALE_QUANTILE))
            .collect()
    }

    /// The raw frame for `model` at `state`: predictions and channel-summed maps.
    fn capture(
        &self,
        model: &Model<f32>,
        state: TrainState,
    ) -> Result<SpilledFrame, AttributionError> {
        let n = check_inputs(model, &self.images)?;
        let [c, h, w] = model.input;
        let probs = predict_probs(model, self.images.data(), default_batch(model.input))?;
        let predicted = argmax_rows(&probs, model.classes);
        let maps = gradient_x_input(model, &self.images, &predicted)?;
        let per = c * h * w;
        let mut summed = Vec::with_capacity(n * h * w);
        for map in maps.data().chunks_exact(per) {
            if c == 1 {
                summed.extend_from_slice(map);
            } else {
                summed.extend(sum_channels(map, c, h, w));
            }
        }
        let confidence = (0..n)
            .map(|i| probs[i * model.classes + predicted[i]])
            .collect();
        Ok(SpilledFrame {
            step: state.step,
            epoch: state.epoch,
            predicted,
            confidence,
            maps: summed,
        })
    }

    /// Draws a captured frame with one scale per image.
    fn draw(&self, frame: &SpilledFrame, scales: &[f32]) -> RgbImage {
        let shape = self.images.shape();
        let [c, h, w] = [shape[1], shape[2], shape[3]];
        let per = c * h * w;
        let alpha = if c == 1 { 0.5 } else { 0.6 };
        let mut tiles = Vec::with_capacity(scales.len());
        for (i, &scale) in scales.iter().enumerate() {
            let map = &frame.maps[i * h * w..(i + 1) * h * w];
            let heat: Vec<f32> = map
                .iter()
                .map(|&v| {
                    if scale > 0.0 && v.is_finite() {
                        (v.abs() / scale).min(1.0)
                    } else {
                        0.0
                    }
                })
                .collect();
            let pixels = &self.images.data()[i * per..(i + 1) * per];
            let picture = overlay(
                &input_to_rgb(pixels, c, h, w),
                &heat,
                ColorMap::Inferno,
                alpha,
            );
            let picture = pad_width(&upscale_nearest(&picture, self.upscale), self.tile_width);
            let (pred, label) = (frame.predicted[i], self.labels[i]);
            tiles.push(
                Tile::new(picture)
                    .line(true_line(&class_name(&self.class_names, label)), WHITE)
                    .line(
                        pred_line(&class_name(&self.class_names, pred), frame.confidence[i]),
                        verdict_color(pred == label),
                    )
                    .line(scale_line(scale), WHITE),
            );
        }
        let body = grid(&tiles, self.columns, GRID_PAD, BLACK);
        let body = with_colour_bar(
            &body,
            ColorMap::Inferno,
            "0",
            &format!("p99 of the image's map over the movie (alpha {alpha})"),
        );
        let title = format!(
            "gradient x input |ds/da| a, step {}, epoch {}",
            frame.step, frame.epoch
        );
        title_bar(&body, &title)
    }

    /// [`Self::draw`] on a canvas of the first frame's size (recorded in `size`): a later frame
    /// can only differ in size if its title outgrew the grid.
    fn draw_sized(
        &self,
        frame: &SpilledFrame,
        scales: &[f32],
        size: &mut Option<(u32, u32)>,
    ) -> RgbImage {
        let drawn = self.draw(frame, scales);
        let (width, height) = *size.get_or_insert(drawn.dimensions());
        fit_canvas(drawn, width, height)
    }

    /// Computes one frame's maps and spills them until `finish`.
    fn write_frame(
        &mut self,
        model: &Model<f32>,
        state: TrainState,
    ) -> Result<(), AttributionError> {
        let frame = self.capture(model, state)?;
        let pixels = frame.maps.len() / self.magnitudes.len();
        for (histogram, map) in self.magnitudes.iter_mut().zip(frame.maps.chunks(pixels)) {
            histogram.add(map);
        }
        self.spill.push(&frame)?;
        self.frames += 1;
        self.last_step = Some(state.step);
        Ok(())
    }

    /// Draws every frame on the movie's scales into the GIF (and the PNG frames), writes the
    /// trailer and renames the GIF into place; returns the number of frames. Nothing is written
    /// when no frame was observed; a second call writes nothing and returns 0.
    pub fn close(&mut self) -> Result<usize, AttributionError> {
        if self.spill.frames() == 0 {
            return Ok(0);
        }
        let scales = self.scales();
        let mut spill = std::mem::replace(
            &mut self.spill,
            FrameSpill::beside(&self.path, self.labels.len(), 0),
        );
        // First pass: a few frames spread over the movie teach the palette its colours.
        let total = spill.frames();
        let samples = total.min(PALETTE_SAMPLES);
        let wanted: Vec<usize> = (0..samples)
            .map(|j| {
                if samples > 1 {
                    j * (total - 1) / (samples - 1)
                } else {
                    0
                }
            })
            .collect();
        let mut frame_size = self.frame_size;
        let mut sampled = Vec::with_capacity(samples);
        let mut index = 0;
        spill.replay(|frame| {
            if wanted.contains(&index) {
                sampled.push(self.draw_sized(&frame, &scales, &mut frame_size));
            }
            index += 1;
            Ok(())
        })?;
        let palette = FramePalette::from_frames(&sampled.iter().collect::<Vec<_>>());
        drop(sampled);
        let (width, height) = frame_size.expect("at least one frame was drawn");
        let side = |v: u32| {
            u16::try_from(v).map_err(|_| AttributionError::Option {
                option: "images",
                expected: "a frame of at most 65535 pixels per side (GIF limit)".into(),
                found: format!("{width}x{height}"),
            })
        };
        let mut gif = GifMovie::create_with_palette(
            &self.path,
            side(width)?,
            side(height)?,
            self.options.delay_cs,
            palette,
        )?;
        // Second pass: every frame into the GIF (and the PNG folder).
        let mut index = 0;
        spill.replay(|frame| {
            let drawn = self.draw_sized(&frame, &scales, &mut frame_size);
            gif.push_frame(&drawn)?;
            if let Some(dir) = &self.options.png_dir {
                std::fs::create_dir_all(dir).map_err(|source| AttributionError::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
                save_frame_png(dir, index, &drawn)?;
            }
            index += 1;
            Ok(())
        })?;
        drop(spill);
        self.frame_size = frame_size;
        Ok(gif.finish()?)
    }
}

impl TrainHook for AttributionMovie {
    fn observe(&mut self, model: &Model<f32>, state: TrainState) -> anyhow::Result<()> {
        if state.step.is_multiple_of(self.options.every) {
            self.write_frame(model, state)?;
        }
        Ok(())
    }

    fn finish(&mut self, _model: &Model<f32>, _state: TrainState) -> anyhow::Result<()> {
        self.close()?;
        Ok(())
    }
}

/// A class's name, or its index when the data set has no name for it.
fn class_name(names: &[String], class: usize) -> String {
    names
        .get(class)
        .cloned()
        .unwrap_or_else(|| class.to_string())
}

fn true_line(name: &str) -> String {
    format!("true: {name}")
}

fn pred_line(name: &str, confidence: f32) -> String {
    format!("pred: {name} {:.1}%", 100.0 * confidence)
}

fn scale_line(scale: f32) -> String {
    format!("scale {scale:.1e}")
}

/// Centers `img` on a black strip `width` pixels wide (no change if it is already that wide).
fn pad_width(img: &RgbImage, width: u32) -> RgbImage {
    if img.width() >= width {
        return img.clone();
    }
    let mut out = RgbImage::from_pixel(width, img.height(), Rgb(BLACK));
    imageops::replace(&mut out, img, ((width - img.width()) / 2) as i64, 0);
    out
}

/// `img` on a black canvas of exactly `width` x `height` (cropped on the right and bottom).
fn fit_canvas(img: RgbImage, width: u32, height: u32) -> RgbImage {
    if img.dimensions() == (width, height) {
        return img;
    }
    let mut out = RgbImage::from_pixel(width, height, Rgb(BLACK));
    imageops::replace(&mut out, &img, 0, 0);
    out
}
