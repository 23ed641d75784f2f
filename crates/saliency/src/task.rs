//! `DataSpec`: which data set a run uses, and loading its train and test sets.

use std::path::PathBuf;

use crate::data::download::ensure_fashion_mnist;
use crate::data::ensure_named_set;
use crate::data::fashion_mnist::load_fashion_mnist;
use crate::data::image_folder::{list_image_folder, ImageFolderOptions};
use crate::data::locate::Found;
use crate::data::split::{interleave_by_class, train_test_split};
use crate::data::{CacheBudget, DataError, Dataset, Images, LoadReport, Selection};

/// Which data, where, and how to split it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataSpec {
    /// `fashion-mnist`, `flowers` or `flowers17`.
    pub name: String,
    /// Folder given with `--data-dir` (else `$SALIENCY_DATA`, `./data`, `/usr/share/datasets`).
    pub data_dir: Option<PathBuf>,
    /// Image folders only: a subset of classes in this order (e.g. a binary pair).
    pub classes: Option<Vec<String>>,
    /// Image folders only: load as gray (1 channel) instead of RGB.
    pub gray: bool,
    /// Image folders only: side length after resizing.
    pub size: usize,
    /// Image folders only: seed of the train/test split.
    pub split_seed: u64,
    /// Image folders only: share of each class held out for testing.
    pub test_fraction: f64,
    /// Download the official files when no full copy is found.
    pub allow_download: bool,
    /// Image folders only: fail on the first unreadable file (else skip it and report it).
    #[serde(default = "default_strict")]
    pub strict: bool,
}

fn default_strict() -> bool {
    true
}

impl DataSpec {
    /// Fashion-MNIST with default settings.
    pub fn fashion_mnist(data_dir: Option<PathBuf>) -> Self {
        Self {
            name: "fashion-mnist".into(),
            data_dir,
            classes: None,
            gray: false,
            size: 256,
            split_seed: 0,
            test_fraction: 0.2,
            allow_download: true,
            strict: true,
        }
    }

    /// Loads (train, test); when the shipped sample stands in for a full copy, says so on
    /// standard error.
    pub fn load(&self) -> Result<(Dataset, Dataset), DataError> {
        let (train, test, found) = self.load_found()?;
        if let Some(note) = &found.note {
            eprintln!("note: {note}");
        }
        Ok((train, test))
    }

    /// Loads (train, test) and says where they were found (full copy or shipped sample).
    pub fn load_found(&self) -> Result<(Dataset, Dataset, Found), DataError> {
        let (train, test, found) = self.select()?;
        Ok((
            decode_noting_skips(train)?,
            decode_noting_skips(test)?,
            found,
        ))
    }

    /// Chooses (train, test) without decoding an image folder's files: the listing and the seeded
    /// split come from the file names alone, so only the images a run finally keeps (after
    /// `--validation` and `--limit-*`) are ever opened, with [`decode_noting_skips`].
    pub fn select(&self) -> Result<(Selection, Selection, Found), DataError> {
        match self.name.as_str() {
            "fashion-mnist" => {
                let found = ensure_fashion_mnist(self.data_dir.as_deref(), self.allow_download)?;
                let (train, test) = load_fashion_mnist(&found.dir)?;
                Ok((
                    Selection::of_dataset(train),
                    Selection::of_dataset(test),
                    found,
                ))
            }
            set => {
                let found = ensure_named_set(self.data_dir.as_deref(), set, self.allow_download)?;
                let opts = ImageFolderOptions {
                    size: self.size,
                    gray: self.gray,
                    classes: self.classes.clone(),
                    // --lenient used to stop here: every bad file failed the run regardless.
                    strict: self.strict,
                    ..ImageFolderOptions::default()
                };
                let listing = list_image_folder(&found.dir, &opts)?;
                let (train_idx, test_idx) =
                    train_test_split(&listing.labels, self.test_fraction, self.split_seed)?;
                // Classes in turn, so the first test images (the figures') show every class.
                let test_idx = interleave_by_class(&test_idx, &listing.labels);
                let (train, test) = Selection::pair_of_listing(
                    listing,
                    &opts,
                    (train_idx, &format!("{set}/train")),
                    (test_idx, &format!("{set}/test")),
                );
                Ok((train, test, found))
            }
        }
    }
}

/// Decodes a selection; files skipped under `--lenient` are counted in a note on standard error.
pub fn decode_noting_skips(selection: Selection) -> Result<Dataset, DataError> {
    let (data, report) = selection.decode()?;
    note_skips(&report, &data.name);
    Ok(data)
}

/// Opens a selection for training or evaluation ([`Selection::open`]: an image folder is checked
/// now and decoded per minibatch through a cache drawing on `budget`); files skipped under
/// `--lenient` are counted in a note on standard error.
pub fn open_noting_skips(
    selection: Selection,
    budget: &std::sync::Arc<CacheBudget>,
) -> Result<Images, DataError> {
    let name = selection.name().to_string();
    let (images, report) = selection.open(budget)?;
    note_skips(&report, &name);
    Ok(images)
}

/// A note on standard error when an image folder's images do not all fit in the cache of
/// `budget`, so that the rest are decoded again every epoch.
pub fn note_uncached(sets: &[&Images], budget: &CacheBudget) {
    let (mut kept, mut total) = (0, 0);
    for set in sets {
        if let Images::Files(files) = set {
            kept += files.cached();
            total += crate::data::ImageSource::count(files);
        }
    }
    if kept < total {
        eprintln!(
            "note: the image cache ({}, a quarter of the memory available) holds {kept} of the \
             {total} images; the others are decoded again every time a minibatch needs them",
            crate::memory::show_bytes(budget.limit() as f64)
        );
    }
}

fn note_skips(report: &LoadReport, name: &str) {
    if let Some((first, reason)) = report.skipped.first() {
        eprintln!(
            "note: --lenient: skipped {} unreadable file(s) of {name}, the first {}: {reason}",
            report.skipped.len(),
            first.display(),
        );
    }
}
