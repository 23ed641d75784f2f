//! The raw frames of an attribution movie, spilled to a temporary file while training runs and
//! read back in order when the movie is drawn, so a movie drawn on one scale for all its frames
//! holds one frame in memory, not all of them.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::AttributionError;

/// What one frame needs to be drawn later: the step, and per image the prediction, its
/// probability and the map (H x W, channels summed).
#[derive(Clone, Debug, PartialEq)]
pub struct SpilledFrame {
    /// Training step of the frame.
    pub step: u64,
    /// Epoch of the frame.
    pub epoch: u64,
    /// Predicted class per image.
    pub predicted: Vec<usize>,
    /// Probability of the predicted class per image.
    pub confidence: Vec<f32>,
    /// The maps, image after image, `pixels` values each.
    pub maps: Vec<f32>,
}

/// A temporary file of fixed-size frame records (little-endian): step and epoch as u64, then per
/// image the predicted class as u32 and its probability as f32, then the maps as f32.
///
/// The file sits beside the movie (`.NAME.frames.tmp-PID`, inside the CLI's staged folder) and is
/// deleted when the spill is dropped, whether the movie was finished or not.
pub struct FrameSpill {
    path: PathBuf,
    images: usize,
    pixels: usize,
    writer: Option<BufWriter<File>>,
    frames: usize,
}

impl FrameSpill {
    /// A spill beside `movie` for frames of `images` maps of `pixels` values each. The file is
    /// created with the first frame.
    pub fn beside(movie: &Path, images: usize, pixels: usize) -> Self {
        let name = movie
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "movie".into());
        let path = movie.with_file_name(format!(".{name}.frames.tmp-{}", std::process::id()));
        FrameSpill {
            path,
            images,
            pixels,
            writer: None,
            frames: 0,
        }
    }

    /// Frames written so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    fn io_error(&self, source: std::io::Error) -> AttributionError {
        AttributionError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Appends one frame. Its maps must hold `images * pixels` values.
    pub fn push(&mut self, frame: &SpilledFrame) -> Result<(), AttributionError> {
        assert_eq!(frame.maps.len(), self.images * self.pixels, "spilled maps");
        assert_eq!(frame.predicted.len(), self.images, "spilled predictions");
        if self.writer.is_none() {
            // Read back by `replay`, so opened for both.
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&self.path)
                .map_err(|e| self.io_error(e))?;
            self.writer = Some(BufWriter::new(file));
        }
        let mut record = Vec::with_capacity(self.record_bytes());
        record.extend_from_slice(&frame.step.to_le_bytes());
        record.extend_from_slice(&frame.epoch.to_le_bytes());
        for (&class, &p) in frame.predicted.iter().zip(&frame.confidence) {
            record.extend_from_slice(&(class as u32).to_le_bytes());
            record.extend_from_slice(&p.to_le_bytes());
        }
        for v in &frame.maps {
            record.extend_from_slice(&v.to_le_bytes());
        }
        let written = self
            .writer
            .as_mut()
            .expect("created above")
            .write_all(&record);
        written.map_err(|e| self.io_error(e))?;
        self.frames += 1;
        Ok(())
    }

    fn record_bytes(&self) -> usize {
        16 + 8 * self.images + 4 * self.images * self.pixels
    }

    /// Reads the frames back in the order they were pushed, handing each to `each`.
    pub fn replay(
        &mut self,
        mut each: impl FnMut(SpilledFrame) -> Result<(), AttributionError>,
    ) -> Result<(), AttributionError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let mut file = writer.into_inner().map_err(|e| {
            let source = std::io::Error::new(e.error().kind(), e.error().to_string());
            self.io_error(source)
        })?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| self.io_error(e))?;
        let mut reader = BufReader::new(&file);
        let mut record = vec![0u8; self.record_bytes()];
        let word = |b: &[u8], at: usize| -> [u8; 4] { b[at..at + 4].try_into().expect("4 bytes") };
        for _ in 0..self.frames {
            reader
                .read_exact(&mut record)
                .map_err(|e| self.io_error(e))?;
            let long = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().expect("8"));
            let (mut predicted, mut confidence) = (Vec::new(), Vec::new());
            for i in 0..self.images {
                predicted.push(u32::from_le_bytes(word(&record, 16 + 8 * i)) as usize);
                confidence.push(f32::from_le_bytes(word(&record, 20 + 8 * i)));
            }
            let start = 16 + 8 * self.images;
            let maps = (0..self.images * self.pixels)
                .map(|k| f32::from_le_bytes(word(&record, start + 4 * k)))
                .collect();
            each(SpilledFrame {
                step: long(0),
                epoch: long(8),
                predicted,
                confidence,
                maps,
            })?;
        }
        drop(reader);
        // Later frames go after the last one; the file stays for a second replay (or Drop).
        file.seek(SeekFrom::End(0)).map_err(|e| self.io_error(e))?;
        self.writer = Some(BufWriter::new(file));
        Ok(())
    }
}

impl Drop for FrameSpill {
    fn drop(&mut self) {
        // The writer first: dropping it may still write to the file.
        drop(self.writer.take());
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_bit_for_bit_in_order_and_the_file_goes_with_the_spill() {
        let dir = std::env::temp_dir().join(format!("saliency-spill-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let movie = dir.join("m.gif");
        let frame = |k: u64| SpilledFrame {
            step: 10 * k,
            epoch: k / 2,
            predicted: vec![k as usize, 7],
            confidence: vec![0.25, 1.0 / (k as f32 + 3.0)],
            maps: (0..6)
                .map(|i| (i as f32 - 2.5) * 1e-7 * (k + 1) as f32)
                .collect(),
        };
        let mut spill = FrameSpill::beside(&movie, 2, 3);
        for k in 0..3 {
            spill.push(&frame(k)).unwrap();
        }
        let spilled: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(spilled.len(), 1, "one hidden file beside the movie");
        assert!(spilled[0]
            .file_name()
            .to_string_lossy()
            .starts_with(".m.gif.frames.tmp-"));
        for _ in 0..2 {
            let mut back = Vec::new();
            spill
                .replay(|f| {
                    back.push(f);
                    Ok(())
                })
                .unwrap();
            assert_eq!(back, (0..3).map(frame).collect::<Vec<_>>());
        }
        drop(spill);
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "the spill file is gone"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
