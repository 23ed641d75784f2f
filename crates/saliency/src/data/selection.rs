//! `Selection`: a train or test set chosen by index before its images are decoded, so that a
//! split, `--validation` and `--limit-*` decide which files are ever opened.

use std::sync::Arc;

use crate::data::dataset::Dataset;
use crate::data::error::DataError;
use crate::data::folder_listing::FolderListing;
use crate::data::image_cache::CacheBudget;
use crate::data::image_files::ImageFiles;
use crate::data::image_folder::{ImageFolderOptions, LoadReport};
use crate::data::image_source::Images;

/// Where a selection's images come from.
#[derive(Debug)]
enum Source {
    /// Already in memory (Fashion-MNIST, whose IDX files decode in one pass).
    Decoded(Dataset),
    /// An image folder's files, decoded with these options when the selection is.
    Listed(FolderListing, ImageFolderOptions),
}

/// Images of one source at chosen indices, in order; their labels and classes are known, their
/// pixels are decoded only by [`Selection::decode`].
///
/// `subset` and `take` mirror [`Dataset::subset`] and [`Dataset::take`], so choosing first and
/// decoding after gives the same `Dataset` as decoding everything and choosing after.
#[derive(Clone, Debug)]
pub struct Selection {
    source: Arc<Source>,
    indices: Vec<usize>,
    name: String,
}

impl Selection {
    /// Every image of an in-memory data set.
    pub fn of_dataset(dataset: Dataset) -> Self {
        let indices = (0..dataset.len()).collect();
        let name = dataset.name.clone();
        Selection {
            source: Arc::new(Source::Decoded(dataset)),
            indices,
            name,
        }
    }

    /// A train and a test selection sharing one listing (no copy of its file list).
    pub fn pair_of_listing(
        listing: FolderListing,
        opts: &ImageFolderOptions,
        (train, train_name): (Vec<usize>, &str),
        (test, test_name): (Vec<usize>, &str),
    ) -> (Self, Self) {
        let source = Arc::new(Source::Listed(listing, opts.clone()));
        let make = |indices, name: &str| Selection {
            source: Arc::clone(&source),
            indices,
            name: name.to_string(),
        };
        (make(train, train_name), make(test, test_name))
    }

    /// Number of images selected.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True when nothing is selected.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The name the decoded `Dataset` gets, e.g. `flowers/train`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Class names in label order.
    pub fn class_names(&self) -> &[String] {
        match &*self.source {
            Source::Decoded(d) => &d.class_names,
            Source::Listed(l, _) => &l.class_names,
        }
    }

    /// (C, H, W) of one decoded image.
    pub fn shape(&self) -> [usize; 3] {
        match &*self.source {
            Source::Decoded(d) => d.shape,
            Source::Listed(_, opts) => [if opts.gray { 1 } else { 3 }, opts.size, opts.size],
        }
    }

    /// The label of each selected image, in order.
    pub fn labels(&self) -> Vec<u32> {
        let all = match &*self.source {
            Source::Decoded(d) => &d.labels,
            Source::Listed(l, _) => &l.labels,
        };
        self.indices.iter().map(|&i| all[i]).collect()
    }

    /// The images at `positions` of this selection, in that order, named `name`.
    ///
    /// # Panics
    /// If a position is not below `len()` (as [`Dataset::subset`]).
    pub fn subset(&self, positions: &[usize], name: &str) -> Selection {
        Selection {
            source: Arc::clone(&self.source),
            indices: positions.iter().map(|&p| self.indices[p]).collect(),
            name: name.to_string(),
        }
    }

    /// The first `n` images (all of them when `n >= len`).
    pub fn take(&self, n: usize) -> Selection {
        Selection {
            source: Arc::clone(&self.source),
            indices: self.indices[..n.min(self.len())].to_vec(),
            name: self.name.clone(),
        }
    }

    /// Decodes the selected images (an image folder opens only these files); the report lists
    /// the files skipped in lenient mode.
    pub fn decode(self) -> Result<(Dataset, LoadReport), DataError> {
        match &*self.source {
            Source::Decoded(d) => {
                let whole = self.indices.len() == d.len()
                    && self.indices.iter().enumerate().all(|(k, &i)| k == i);
                let mut out = if whole {
                    d.clone()
                } else {
                    d.subset(&self.indices, &self.name)
                };
                out.name = self.name;
                let report = LoadReport {
                    loaded: out.len(),
                    skipped: Vec::new(),
                };
                Ok((out, report))
            }
            Source::Listed(listing, opts) => listing.decode(&self.indices, opts, &self.name),
        }
    }

    /// The selected images for training or evaluation: an in-memory set as it is, an image
    /// folder's files checked once and then decoded a minibatch at a time through a cache drawing
    /// on `budget` ([`ImageFiles::open`]; the report lists the files skipped in lenient mode).
    /// Reading them gives the same floats, in the same order, as [`Selection::decode`].
    pub fn open(self, budget: &Arc<CacheBudget>) -> Result<(Images, LoadReport), DataError> {
        match &*self.source {
            Source::Decoded(_) => {
                let (dataset, report) = self.decode()?;
                Ok((Images::Dense(dataset), report))
            }
            Source::Listed(listing, opts) => {
                let (files, report) =
                    ImageFiles::open(listing, &self.indices, opts, &self.name, budget)?;
                Ok((Images::Files(files), report))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> Dataset {
        Dataset {
            name: "numbers".into(),
            images: (0..n * 2).map(|v| v as f32).collect(),
            labels: (0..n as u32).map(|i| i % 3).collect(),
            shape: [1, 1, 2],
            class_names: vec!["a".into(), "b".into(), "c".into()],
        }
    }

    #[test]
    fn choosing_then_decoding_equals_decoding_then_choosing() {
        let all = numbered(10);
        let sel = Selection::of_dataset(all.clone());
        let picked = sel.subset(&[7, 2, 5, 9], "some").take(3);
        assert_eq!(picked.labels(), [1, 2, 2]);
        let (decoded, report) = picked.decode().unwrap();
        assert_eq!(decoded, all.subset(&[7, 2, 5, 9], "some").take(3));
        assert_eq!((report.loaded, report.skipped.len()), (3, 0));
        let (whole, _) = sel.decode().unwrap();
        assert_eq!(whole, all);
    }
}
