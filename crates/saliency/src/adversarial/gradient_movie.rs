//! `GradientMovie`: a training hook that films the loss gradient of a few test images, drawn as
//! the study draws it (clip(10 g / max(g), 0, 1)), as training goes, into a streaming GIF.

use std::path::{Path, PathBuf};

use image::{imageops, Rgb, RgbImage};
use tensor::Tensor;

use super::feature_preservation::gradient_display;
use super::gradient::loss_gradient_and_values;
use super::AdversarialError;
use crate::data::Dataset;
use crate::loss::LossKind;
use crate::models::Model;
use crate::render::{
    grid, input_to_rgb, title_bar, upscale_nearest, with_colour_bar, ColorMap, GifMovie, Tile,
    BLACK, WHITE,
};
use crate::train::{TrainHook, TrainState};

/// Images filmed by [`GradientMovie::new`]: the first six test images, a 2x3 grid.
pub const MOVIE_IMAGES: usize = 6;
/// Grid columns.
const COLS: usize = 3;
/// Small images are enlarged to at least this many pixels a side, so a frame can be read.
const MIN_TILE: usize = 112;
/// Hundredths of a second per frame.
const DELAY_CS: u16 = 10;

/// Draws, before every `every`-th update (at steps 0, every, 2 every, ...; step 0 is the untrained
/// model), the gradient images of a few fixed images into a GIF written frame by frame.
///
/// The GIF is created with the first frame and renamed into place by `finish`; if training
/// stops early the partial file is removed.
pub struct GradientMovie {
    path: PathBuf,
    inputs: Tensor<f32>,
    labels: Vec<usize>,
    captions: Vec<String>,
    every: u64,
    loss: LossKind,
    movie: Option<GifMovie>,
    frame_size: Option<(u32, u32)>,
    written: usize,
}

impl GradientMovie {
    /// Films the first `MOVIE_IMAGES` images of `data` (captioned with their true class) every
    /// `every` updates into the GIF at `path`, with the gradient of `loss`.
    pub fn new(
        path: &Path,
        data: &Dataset,
        every: u64,
        loss: LossKind,
    ) -> Result<Self, AdversarialError> {
        let n = data.len().min(MOVIE_IMAGES);
        let [c, h, w] = data.shape;
        let inputs = Tensor::from_vec(&[n, c, h, w], data.images[..n * c * h * w].to_vec())?;
        let labels: Vec<usize> = data.labels[..n].iter().map(|&l| l as usize).collect();
        let captions = labels
            .iter()
            .map(|&l| {
                data.class_names
                    .get(l)
                    .cloned()
                    .unwrap_or_else(|| l.to_string())
            })
            .collect();
        Self::with_images(path, inputs, labels, captions, every, loss)
    }

    /// Films the given images (N, C, H, W) with their labels and one caption each.
    pub fn with_images(
        path: &Path,
        inputs: Tensor<f32>,
        labels: Vec<usize>,
        captions: Vec<String>,
        every: u64,
        loss: LossKind,
    ) -> Result<Self, AdversarialError> {
        if every == 0 {
            return Err(AdversarialError::Steps {
                option: "every",
                found: 0,
            });
        }
        let n = inputs.shape().first().copied().unwrap_or(0);
        if inputs.shape().len() != 4 || n == 0 || labels.len() != n || captions.len() != n {
            return Err(AdversarialError::Shape {
                what: "movie images",
                expected: "a non-empty batch (N, C, H, W) with N labels and N captions".into(),
                found: format!(
                    "shape {:?}, {} labels, {} captions",
                    inputs.shape(),
                    labels.len(),
                    captions.len()
                ),
            });
        }
        Ok(GradientMovie {
            path: path.to_path_buf(),
            inputs,
            labels,
            captions,
            every,
            loss,
            movie: None,
            frame_size: None,
            written: 0,
        })
    }

    /// Frames written so far (also after `finish`).
    pub fn frames(&self) -> usize {
        self.written
    }

    /// Where the GIF goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The picture of `model`'s gradients at `step`: a captioned grid under a title that states
    /// the scaling.
    pub fn frame(&self, model: &Model<f32>, step: u64) -> Result<RgbImage, AdversarialError> {
        let (g, _) = loss_gradient_and_values(model, &self.inputs, &self.labels, self.loss, 0)?;
        let shown = gradient_display(&g);
        let [_, c, h, w] = [
            self.inputs.shape()[0],
            self.inputs.shape()[1],
            self.inputs.shape()[2],
            self.inputs.shape()[3],
        ];
        let factor = MIN_TILE.div_ceil(h.max(w).max(1)).max(1) as u32;
        let tiles: Vec<Tile> = shown
            .data()
            .chunks_exact(c * h * w)
            .zip(&self.captions)
            .map(|(img, caption)| {
                // input_to_rgb draws one or three channels; other counts show their first one.
                let pixels = if c == 1 || c == 3 { img } else { &img[..h * w] };
                let channels = if c == 3 { 3 } else { 1 };
                Tile::new(upscale_nearest(
                    &input_to_rgb(pixels, channels, h, w),
                    factor,
                ))
                .line(caption.clone(), WHITE)
            })
            .collect();
        let body = with_colour_bar(
            &grid(&tiles, COLS, 4, BLACK),
            ColorMap::Gray,
            "g <= 0",
            "g >= max g / 10",
        );
        Ok(title_bar(&body, &format!("clip(10g/max g) step {step}")))
    }

    fn push(&mut self, img: RgbImage) -> Result<(), AdversarialError> {
        let (w, h) = *self.frame_size.get_or_insert(img.dimensions());
        // A longer step number could widen the title; every frame keeps the first one's size.
        let img = if img.dimensions() == (w, h) {
            img
        } else {
            let mut canvas = RgbImage::from_pixel(w, h, Rgb(BLACK));
            imageops::replace(&mut canvas, &img, 0, 0);
            canvas
        };
        if self.movie.is_none() {
            let side = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
            self.movie = Some(GifMovie::create(&self.path, side(w), side(h), DELAY_CS)?);
        }
        self.movie
            .as_mut()
            .expect("created above")
            .push_frame(&img)?;
        self.written += 1;
        Ok(())
    }
}

impl TrainHook for GradientMovie {
    fn observe(&mut self, model: &Model<f32>, state: TrainState) -> anyhow::Result<()> {
        if state.step.checked_rem(self.every) == Some(0) {
            let img = self.frame(model, state.step)?;
            self.push(img)?;
        }
        Ok(())
    }

    fn finish(&mut self, _model: &Model<f32>, _state: TrainState) -> anyhow::Result<()> {
        if let Some(movie) = self.movie.take() {
            movie.finish()?;
        }
        Ok(())
    }
}
