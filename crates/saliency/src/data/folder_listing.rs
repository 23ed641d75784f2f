//! `FolderListing`: an image folder's files and labels, known from the names alone, and decoding
//! the few a run selects.

use std::path::PathBuf;

use rayon::prelude::*;

use crate::data::dataset::Dataset;
use crate::data::decode::decode_into;
use crate::data::error::DataError;
use crate::data::image_folder::{ImageFolderOptions, LoadReport};

/// The files of an image folder in load order (classes in label order, files sorted within each),
/// made by [`list_image_folder`](super::image_folder::list_image_folder) without opening a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderListing {
    /// The data set's folder.
    pub dir: PathBuf,
    /// Class folder names in label order.
    pub class_names: Vec<String>,
    /// Every image file, in load order.
    pub files: Vec<PathBuf>,
    /// The label of each file (its class folder's index in `class_names`).
    pub labels: Vec<u32>,
}

impl FolderListing {
    /// Number of files listed.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when no file is listed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Decodes the files at `indices`, in that order, into a `Dataset` named `name`; no other file
    /// is opened.
    ///
    /// Strict (`opts.strict`): the first file that does not decode is the error. Lenient: such
    /// files are left out and listed in the report, unless every selected file is, which is an
    /// error naming the folder. The memory the images take is checked first,
    /// so a selection the machine cannot hold is refused rather than aborting the process.
    pub fn decode(
        &self,
        indices: &[usize],
        opts: &ImageFolderOptions,
        name: &str,
    ) -> Result<(Dataset, LoadReport), DataError> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::InvalidArgument {
                name: "indices",
                expected: format!(
                    "indices below {}, the files in {}",
                    self.len(),
                    self.dir.display()
                ),
                found: bad.to_string(),
            });
        }
        let channels = if opts.gray { 1 } else { 3 };
        let too_big = || DataError::InvalidArgument {
            name: "size",
            expected: "an output that fits in memory".into(),
            found: format!(
                "{} images of {channels} x {} x {}",
                indices.len(),
                opts.size,
                opts.size
            ),
        };
        let image_len = channels * opts.size.checked_mul(opts.size).ok_or_else(too_big)?;
        let total = indices.len().checked_mul(image_len).ok_or_else(too_big)?;
        // The selected images are resized into one buffer: refuse one the machine cannot hold,
        // rather than abort on the allocation (10,000 files at 256 x 256 need 7.9 GB). No command
        // decodes a whole split this way any more (they open it, `Selection::open`), so the
        // message names the library's way out rather than one command's options.
        let bytes = total as f64 * 4.0;
        if let Some(available) = crate::memory::available_bytes() {
            if bytes > available as f64 {
                return Err(DataError::InvalidArgument {
                    name: "images",
                    expected: format!(
                        "images that fit in the {} of memory available (decode fewer \
                         at once, or read them a minibatch at a time with Selection::open)",
                        crate::memory::show_bytes(available as f64)
                    ),
                    found: format!(
                        "{} images of {channels} x {} x {} from {}, {}",
                        indices.len(),
                        opts.size,
                        opts.size,
                        self.dir.display(),
                        crate::memory::show_bytes(bytes)
                    ),
                });
            }
        }

        // Each image decodes into its own slot of the output, so the order is fixed by
        // `indices` whatever order the threads finish in.
        let mut images = vec![0f32; total];
        let results: Vec<Result<(), String>> = images
            .par_chunks_mut(image_len)
            .zip(indices.par_iter())
            .map(|(out, &i)| decode_into(&self.files[i], opts, out))
            .collect();

        let mut report = LoadReport::default();
        let mut labels = Vec::with_capacity(indices.len());
        let mut kept = 0;
        for (slot, (&i, result)) in indices.iter().zip(results).enumerate() {
            match result {
                Ok(()) => {
                    // Lenient mode: slide later images down over skipped slots.
                    if kept != slot {
                        images.copy_within(
                            slot * image_len..(slot + 1) * image_len,
                            kept * image_len,
                        );
                    }
                    labels.push(self.labels[i]);
                    kept += 1;
                }
                Err(reason) if opts.strict => {
                    return Err(DataError::Image {
                        path: self.files[i].clone(),
                        reason,
                    })
                }
                Err(reason) => report.skipped.push((self.files[i].clone(), reason)),
            }
        }
        images.truncate(kept * image_len);
        if kept == 0 && !indices.is_empty() {
            return Err(DataError::Folder {
                path: self.dir.clone(),
                expected: "at least one decodable image among the files selected".into(),
                found: format!(
                    "every file skipped, {} of {} selected (see the skipped list)",
                    indices.len(),
                    indices.len()
                ),
            });
        }
        report.loaded = kept;
        let dataset = Dataset {
            name: name.to_string(),
            images,
            labels,
            shape: [channels, opts.size, opts.size],
            class_names: self.class_names.clone(),
        };
        Ok((dataset, report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::image_folder::{list_image_folder, load_image_folder};
    use image::{ImageFormat, RgbImage};
    use std::io::Cursor;

    fn png(value: u8) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        RgbImage::from_fn(3, 2, |x, y| {
            image::Rgb([value, (x * 40) as u8, (y * 90) as u8])
        })
        .write_to(&mut buf, ImageFormat::Png)
        .unwrap();
        buf.into_inner()
    }

    /// `a/` and `b/` with three PNGs each, named so that sorting gives the load order.
    fn folder(tag: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("saliency-listing-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (c, class) in ["a", "b"].iter().enumerate() {
            std::fs::create_dir_all(root.join(class)).unwrap();
            for i in 0..3u8 {
                std::fs::write(
                    root.join(format!("{class}/{i}.png")),
                    png(50 * c as u8 + 10 * i),
                )
                .unwrap();
            }
        }
        root
    }

    fn opts() -> ImageFolderOptions {
        ImageFolderOptions {
            size: 4,
            ..ImageFolderOptions::default()
        }
    }

    #[test]
    fn the_listing_knows_files_and_labels_without_decoding() {
        let root = folder("list");
        // Not images at all: listing never opens a file.
        std::fs::write(root.join("b/1.png"), b"not an image").unwrap();
        let listing = list_image_folder(&root, &opts()).unwrap();
        assert_eq!(listing.class_names, ["a", "b"]);
        assert_eq!(listing.labels, [0, 0, 0, 1, 1, 1]);
        assert!(listing.files[4].ends_with("b/1.png"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn decoding_a_selection_equals_choosing_from_the_whole_load() {
        let root = folder("same");
        let (all, _) = load_image_folder(&root, &opts()).unwrap();
        let listing = list_image_folder(&root, &opts()).unwrap();
        let picked = [4, 0, 5];
        let (some, report) = listing.decode(&picked, &opts(), "some").unwrap();
        assert_eq!(some, all.subset(&picked, "some"));
        assert_eq!((report.loaded, report.skipped.len()), (3, 0));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    #[cfg_attr(not(target_os = "linux"), ignore = "needs Linux (/proc/meminfo)")]
    fn a_selection_beyond_the_memory_is_refused_naming_no_command_option() {
        let root = folder("huge");
        let listing = list_image_folder(&root, &opts()).unwrap();
        // One image at 100,000 x 100,000 is 120 GB of floats: refused before any file is read.
        let huge = ImageFolderOptions {
            size: 100_000,
            ..opts()
        };
        assert!(crate::memory::available_bytes().is_some(), "/proc/meminfo");
        let m = listing.decode(&[0], &huge, "x").unwrap_err().to_string();
        assert!(
            m.contains("memory available") && m.contains("Selection::open"),
            "{m}"
        );
        // It used to suggest --limit-train and --limit-test, which `adversary` lacked.
        assert!(!m.contains("--"), "names a command's option: {m}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn only_selected_files_are_opened_and_a_bad_selected_one_is_named() {
        let root = folder("bad");
        std::fs::write(root.join("a/1.png"), b"not an image").unwrap();
        let listing = list_image_folder(&root, &opts()).unwrap();
        let (ds, _) = listing.decode(&[0, 2, 3], &opts(), "x").unwrap();
        assert_eq!(ds.labels, [0, 0, 1]);
        let m = listing
            .decode(&[3, 1], &opts(), "x")
            .unwrap_err()
            .to_string();
        assert!(m.contains("a/1.png") && m.contains("not an image"), "{m}");
        // Lenient: skipped and reported, even when its class has no other selected file...
        let lenient = ImageFolderOptions {
            strict: false,
            ..opts()
        };
        let (ds, report) = listing.decode(&[1, 0, 3], &lenient, "x").unwrap();
        assert_eq!(
            (ds.labels.as_slice(), report.loaded),
            ([0, 1].as_slice(), 2)
        );
        assert!(report.skipped[0].0.ends_with("a/1.png"));
        let (ds, _) = listing.decode(&[1, 3], &lenient, "x").unwrap();
        assert_eq!(ds.labels, [1]);
        // ...unless nothing selected decodes.
        let m = listing.decode(&[1], &lenient, "x").unwrap_err().to_string();
        assert!(
            m.contains(&root.display().to_string())
                && m.contains("every file skipped, 1 of 1 selected"),
            "{m}"
        );
        let m = listing.decode(&[6], &opts(), "x").unwrap_err().to_string();
        assert!(
            m.contains("indices below 6") && m.contains("found 6"),
            "{m}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
