//! `ImageSource`: the images training and evaluation read by position, a minibatch at a time,
//! whether held in memory ([`Dataset`]) or decoded from an image folder's files on demand
//! ([`ImageFiles`]); and [`Images`], either of the two.

use crate::data::dataset::Dataset;
use crate::data::error::DataError;
use crate::data::image_files::ImageFiles;

/// Labelled images of one shape, read by position.
pub trait ImageSource: Sync {
    /// Short name for messages, e.g. `flowers/test`.
    fn name(&self) -> &str;
    /// One label per image, each below `class_names().len()`.
    fn labels(&self) -> &[u32];
    /// (C, H, W) of one image.
    fn shape(&self) -> [usize; 3];
    /// Class names in label order.
    fn class_names(&self) -> &[String];
    /// Writes the images at `positions`, in that order, into `out` (`positions.len()` images of
    /// (C, H, W) floats in [0, 1]). Each image lands in its own slot, so the result never depends
    /// on the number of threads.
    fn fill(&self, positions: &[usize], out: &mut [f32]) -> Result<(), DataError>;

    /// Number of images.
    fn count(&self) -> usize {
        self.labels().len()
    }

    /// Elements in one image (C * H * W).
    fn values_per_image(&self) -> usize {
        self.shape().iter().product()
    }

    /// The images at `positions` as an in-memory `Dataset` named `name` (for the few images a
    /// movie or an attribution draws).
    fn to_dataset(&self, positions: &[usize], name: &str) -> Result<Dataset, DataError> {
        let mut images = vec![0.0; positions.len() * self.values_per_image()];
        self.fill(positions, &mut images)?;
        let labels = self.labels();
        Ok(Dataset {
            name: name.to_string(),
            images,
            labels: positions.iter().map(|&p| labels[p]).collect(),
            shape: self.shape(),
            class_names: self.class_names().to_vec(),
        })
    }

    /// The first `n` images (all of them when `n >= count()`) as a `Dataset`.
    fn first_dataset(&self, n: usize) -> Result<Dataset, DataError> {
        let positions: Vec<usize> = (0..n.min(self.count())).collect();
        self.to_dataset(&positions, self.name())
    }
}

/// Refuses positions past `len` and an output of the wrong length, naming `name`.
pub(crate) fn check_fill(
    name: &str,
    len: usize,
    per: usize,
    positions: &[usize],
    out: &[f32],
) -> Result<(), DataError> {
    if let Some(&bad) = positions.iter().find(|&&p| p >= len) {
        return Err(DataError::InvalidArgument {
            name: "positions",
            expected: format!("positions below {len}, the images of {name}"),
            found: bad.to_string(),
        });
    }
    if Some(out.len()) != positions.len().checked_mul(per) {
        return Err(DataError::InvalidArgument {
            name: "out",
            expected: format!(
                "{} values for {} images of {name}",
                positions.len() * per,
                positions.len()
            ),
            found: format!("{} values", out.len()),
        });
    }
    Ok(())
}

impl ImageSource for Dataset {
    fn name(&self) -> &str {
        &self.name
    }

    fn labels(&self) -> &[u32] {
        &self.labels
    }

    fn shape(&self) -> [usize; 3] {
        self.shape
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn fill(&self, positions: &[usize], out: &mut [f32]) -> Result<(), DataError> {
        let per = self.image_len();
        check_fill(&self.name, self.len(), per, positions, out)?;
        for (slot, &p) in out.chunks_exact_mut(per.max(1)).zip(positions) {
            slot.copy_from_slice(self.image(p));
        }
        Ok(())
    }
}

/// The first images of another source (all of them when it has fewer).
pub struct Prefix<'a> {
    source: &'a dyn ImageSource,
    len: usize,
}

impl<'a> Prefix<'a> {
    /// The first `n` images of `source`.
    pub fn new(source: &'a dyn ImageSource, n: usize) -> Self {
        Prefix {
            source,
            len: n.min(source.count()),
        }
    }
}

impl ImageSource for Prefix<'_> {
    fn name(&self) -> &str {
        self.source.name()
    }

    fn labels(&self) -> &[u32] {
        &self.source.labels()[..self.len]
    }

    fn shape(&self) -> [usize; 3] {
        self.source.shape()
    }

    fn class_names(&self) -> &[String] {
        self.source.class_names()
    }

    fn fill(&self, positions: &[usize], out: &mut [f32]) -> Result<(), DataError> {
        check_fill(
            self.name(),
            self.len,
            self.values_per_image(),
            positions,
            out,
        )?;
        self.source.fill(positions, out)
    }
}

/// A run's train or test images: decoded in memory (Fashion-MNIST), or an image folder's files
/// decoded per minibatch through a bounded cache.
#[derive(Debug)]
pub enum Images {
    /// Held in memory.
    Dense(Dataset),
    /// Decoded on demand.
    Files(ImageFiles),
}

impl Images {
    fn inner(&self) -> &dyn ImageSource {
        match self {
            Images::Dense(d) => d,
            Images::Files(f) => f,
        }
    }
}

impl ImageSource for Images {
    fn name(&self) -> &str {
        self.inner().name()
    }

    fn labels(&self) -> &[u32] {
        self.inner().labels()
    }

    fn shape(&self) -> [usize; 3] {
        self.inner().shape()
    }

    fn class_names(&self) -> &[String] {
        self.inner().class_names()
    }

    fn fill(&self, positions: &[usize], out: &mut [f32]) -> Result<(), DataError> {
        self.inner().fill(positions, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dataset_fills_in_the_order_asked_and_refuses_bad_positions() {
        let d = Dataset {
            name: "numbers".into(),
            images: (0..8).map(|v| v as f32).collect(),
            labels: vec![0, 1, 0, 1],
            shape: [1, 1, 2],
            class_names: vec!["a".into(), "b".into()],
        };
        let mut out = [0.0; 4];
        d.fill(&[3, 0], &mut out).unwrap();
        assert_eq!(out, [6.0, 7.0, 0.0, 1.0]);
        let m = d.fill(&[4, 0], &mut out).unwrap_err().to_string();
        assert!(
            m.contains("positions below 4") && m.contains("found 4"),
            "{m}"
        );
        let m = d.fill(&[1], &mut out).unwrap_err().to_string();
        assert!(
            m.contains("2 values for 1 images") && m.contains("found 4 values"),
            "{m}"
        );
        assert_eq!(
            d.to_dataset(&[2, 1], "some").unwrap(),
            d.subset(&[2, 1], "some")
        );
        assert_eq!(
            Images::Dense(d.clone()).first_dataset(3).unwrap(),
            d.take(3)
        );
        let first = Prefix::new(&d, 3);
        assert_eq!((first.count(), first.labels()), (3, &[0, 1, 0][..]));
        assert!(first.fill(&[3], &mut out[..2]).is_err(), "past the prefix");
        assert_eq!(Prefix::new(&d, 9).count(), 4);
    }
}
