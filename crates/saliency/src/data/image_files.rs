//! `ImageFiles`: an image folder's selected files, checked once when opened and then decoded a
//! minibatch at a time, in parallel, through an [`ImageCache`]; memory stays bounded by the
//! cache's budget plus the images of one minibatch, however many files the folder holds.

use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::data::decode::{check_file, decode_pixels, to_unit_floats};
use crate::data::error::DataError;
use crate::data::folder_listing::FolderListing;
use crate::data::image_cache::{CacheBudget, ImageCache};
use crate::data::image_folder::{ImageFolderOptions, LoadReport};
use crate::data::image_source::{check_fill, ImageSource};

/// Files checked per round when opening: bounds the pixels in flight before they are cached.
const OPEN_CHUNK: usize = 64;

/// Image files read on demand; see the module documentation.
#[derive(Debug)]
pub struct ImageFiles {
    name: String,
    files: Vec<PathBuf>,
    labels: Vec<u32>,
    class_names: Vec<String>,
    opts: ImageFolderOptions,
    cache: ImageCache,
}

impl ImageFiles {
    /// Opens the files of `listing` at `indices`, in that order, as a set named `name`.
    ///
    /// Every selected file is decoded once here, in parallel, so a bad file is found before a
    /// run starts exactly as a full load finds it: strict (`opts.strict`), the first bad file in
    /// order is the error; lenient, bad files are left out and listed in the report (all of them
    /// bad is an error naming the folder). The decoded images are kept in a cache drawing on
    /// `budget` while it has room; the others are decoded again when a minibatch needs them.
    pub fn open(
        listing: &FolderListing,
        indices: &[usize],
        opts: &ImageFolderOptions,
        name: &str,
        budget: &Arc<CacheBudget>,
    ) -> Result<(Self, LoadReport), DataError> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= listing.len()) {
            return Err(DataError::InvalidArgument {
                name: "indices",
                expected: format!(
                    "indices below {}, the files in {}",
                    listing.len(),
                    listing.dir.display()
                ),
                found: bad.to_string(),
            });
        }
        let channels = if opts.gray { 1 } else { 3 };
        let per = opts
            .size
            .checked_mul(opts.size)
            .and_then(|n| n.checked_mul(channels))
            .ok_or_else(|| DataError::InvalidArgument {
                name: "size",
                expected: "an image side whose pixels fit in memory".into(),
                found: opts.size.to_string(),
            })?;
        let cache = ImageCache::new(indices.len(), Arc::clone(budget));
        let mut report = LoadReport::default();
        let (mut files, mut labels) = (Vec::new(), Vec::new());
        for chunk in indices.chunks(OPEN_CHUNK) {
            // Pixels for the images the cache can still take; a plain check for the others.
            let decoded: Vec<Result<Option<Vec<u8>>, String>> = chunk
                .par_iter()
                .map(|&i| {
                    let path = &listing.files[i];
                    if cache.has_room(per as u64) {
                        let mut pixels = vec![0u8; per];
                        decode_pixels(path, opts, &mut pixels).map(|()| Some(pixels))
                    } else {
                        check_file(path, opts).map(|()| None)
                    }
                })
                .collect();
            for (&i, result) in chunk.iter().zip(decoded) {
                let path = &listing.files[i];
                match result {
                    Ok(pixels) => {
                        if let Some(pixels) = pixels {
                            cache.offer(files.len(), pixels);
                        }
                        files.push(path.clone());
                        labels.push(listing.labels[i]);
                    }
                    Err(reason) if opts.strict => {
                        return Err(DataError::Image {
                            path: path.clone(),
                            reason,
                        })
                    }
                    Err(reason) => report.skipped.push((path.clone(), reason)),
                }
            }
        }
        if files.is_empty() && !indices.is_empty() {
            return Err(DataError::Folder {
                path: listing.dir.clone(),
                expected: "at least one decodable image among the files selected".into(),
                found: format!(
                    "every file skipped, {} of {} selected (see the skipped list)",
                    indices.len(),
                    indices.len()
                ),
            });
        }
        report.loaded = files.len();
        let opened = ImageFiles {
            name: name.to_string(),
            files,
            labels,
            class_names: listing.class_names.clone(),
            opts: opts.clone(),
            cache,
        };
        Ok((opened, report))
    }

    /// Images kept in memory now.
    pub fn cached(&self) -> usize {
        self.cache.kept()
    }

    /// The file of image `position`.
    pub fn file(&self, position: usize) -> &std::path::Path {
        &self.files[position]
    }
}

impl ImageSource for ImageFiles {
    fn name(&self) -> &str {
        &self.name
    }

    fn labels(&self) -> &[u32] {
        &self.labels
    }

    fn shape(&self) -> [usize; 3] {
        let channels = if self.opts.gray { 1 } else { 3 };
        [channels, self.opts.size, self.opts.size]
    }

    /// Images not in the cache are read and decoded in parallel, each into its own slot, and
    /// offered to the cache. A file that no longer decodes (changed or deleted since the set was
    /// opened) is an error naming it, lenient or not: leaving it out now would change the
    /// minibatch and every step after it.
    fn fill(&self, positions: &[usize], out: &mut [f32]) -> Result<(), DataError> {
        let per = self.values_per_image();
        check_fill(&self.name, self.count(), per, positions, out)?;
        let results: Vec<Result<(), String>> = out
            .par_chunks_mut(per.max(1))
            .zip(positions.par_iter())
            .map(|(slot, &p)| {
                if let Some(pixels) = self.cache.get(p) {
                    to_unit_floats(pixels, slot);
                    return Ok(());
                }
                let mut pixels = vec![0u8; per];
                decode_pixels(&self.files[p], &self.opts, &mut pixels)?;
                to_unit_floats(&pixels, slot);
                self.cache.offer(p, pixels);
                Ok(())
            })
            .collect();
        // The first failure in minibatch order, whichever thread met it first.
        for (&p, result) in positions.iter().zip(results) {
            if let Err(reason) = result {
                return Err(DataError::Image {
                    path: self.files[p].clone(),
                    reason: format!(
                        "{reason}; the file decoded when the data was opened, so it changed since"
                    ),
                });
            }
        }
        Ok(())
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::image_folder::list_image_folder;
    use image::{ImageFormat, RgbImage};
    use std::io::Cursor;
    use std::path::Path;

    fn png(side: u32, salt: u32) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        RgbImage::from_fn(side, side, |x, y| {
            image::Rgb([
                (x * 37 + salt * 11) as u8,
                (y * 53 + salt * 7) as u8,
                (x * y + salt) as u8,
            ])
        })
        .write_to(&mut buf, ImageFormat::Png)
        .unwrap();
        buf.into_inner()
    }

    /// `a/` and `b/` with `per_class` PNGs each, of different sides (some need no resize).
    fn folder(tag: &str, per_class: u32) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("saliency-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (c, class) in ["a", "b"].iter().enumerate() {
            std::fs::create_dir_all(root.join(class)).unwrap();
            for i in 0..per_class {
                let salt = 20 * c as u32 + i;
                std::fs::write(
                    root.join(format!("{class}/{i:02}.png")),
                    png(3 + salt % 6, salt),
                )
                .unwrap();
            }
        }
        root
    }

    fn opts(strict: bool) -> ImageFolderOptions {
        ImageFolderOptions {
            size: 5,
            strict,
            ..ImageFolderOptions::default()
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Every image of `files` read in `order`, on a pool of `threads`.
    fn read_all(files: &ImageFiles, order: &[usize], threads: usize) -> Vec<f32> {
        let mut out = vec![0.0; order.len() * files.values_per_image()];
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| files.fill(order, &mut out))
            .unwrap();
        out
    }

    #[test]
    fn reading_equals_the_dense_decode_bit_for_bit_with_or_without_a_cache() {
        let root = folder("same", 9);
        let listing = list_image_folder(&root, &opts(true)).unwrap();
        let picked = [17, 3, 0, 8, 12, 5, 9, 1];
        let (dense, _) = listing.decode(&picked, &opts(true), "some").unwrap();
        let per = 3 * 5 * 5;
        // A budget of 0 keeps nothing; 3 images' worth keeps 3; a large one keeps all.
        for (limit, kept) in [(0, 0), (3 * per as u64, 3), (1 << 20, picked.len())] {
            let budget = CacheBudget::new(limit);
            let (files, report) =
                ImageFiles::open(&listing, &picked, &opts(true), "some", &budget).unwrap();
            assert_eq!((report.loaded, report.skipped.len()), (8, 0));
            assert_eq!(files.cached(), kept, "limit {limit}");
            assert!(budget.used() <= limit);
            assert_eq!(files.labels(), dense.labels.as_slice());
            let order = [7, 2, 0, 5, 1, 6, 3, 4];
            let want = bits(&dense.subset(&order, "x").images);
            assert_eq!(bits(&read_all(&files, &order, 1)), want, "limit {limit}");
            assert_eq!(bits(&read_all(&files, &order, 2)), want, "limit {limit}");
            // Opening already kept what fits: reading keeps no more.
            assert_eq!(files.cached(), kept, "limit {limit}");
            assert!(budget.used() <= limit);
            assert_eq!(files.first_dataset(3).unwrap(), dense.take(3));
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn lenient_skips_as_the_dense_decode_does_and_strict_names_the_file() {
        let root = folder("lenient", 4);
        std::fs::write(root.join("a/01.png"), b"not an image").unwrap();
        let listing = list_image_folder(&root, &opts(true)).unwrap();
        let every: Vec<usize> = (0..listing.len()).collect();
        let budget = CacheBudget::new(0);
        let m = ImageFiles::open(&listing, &every, &opts(true), "x", &budget)
            .unwrap_err()
            .to_string();
        assert!(m.contains("a/01.png") && m.contains("not an image"), "{m}");
        let (dense, dense_report) = listing.decode(&every, &opts(false), "x").unwrap();
        let (files, report) =
            ImageFiles::open(&listing, &every, &opts(false), "x", &budget).unwrap();
        assert_eq!(report, dense_report);
        assert_eq!(files.count(), 7);
        assert!(
            files.file(1).ends_with("a/02.png"),
            "later files slide down"
        );
        let all: Vec<usize> = (0..7).collect();
        assert_eq!(bits(&read_all(&files, &all, 2)), bits(&dense.images));
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn remove_and_corrupt(root: &Path) {
        std::fs::remove_file(root.join("b/00.png")).unwrap();
        std::fs::write(root.join("b/01.png"), &png(4, 1)[..30]).unwrap();
    }

    #[test]
    fn a_file_changed_after_opening_is_an_error_naming_it_even_when_lenient() {
        for strict in [true, false] {
            let root = folder(&format!("changed-{strict}"), 2);
            let listing = list_image_folder(&root, &opts(strict)).unwrap();
            let every: Vec<usize> = (0..4).collect();
            let (files, _) =
                ImageFiles::open(&listing, &every, &opts(strict), "x", &CacheBudget::new(0))
                    .unwrap();
            remove_and_corrupt(&root);
            let mut out = vec![0.0; 4 * files.values_per_image()];
            files.fill(&[0, 1], &mut out[..150]).unwrap();
            // Position 3 (b/01.png, corrupt) comes first in the minibatch: named first.
            let m = files.fill(&[3, 2, 0, 1], &mut out).unwrap_err().to_string();
            assert!(
                m.contains("b/01.png") && m.contains("corrupt") && m.contains("changed since"),
                "{m}"
            );
            let m = files.fill(&[2], &mut out[..75]).unwrap_err().to_string();
            assert!(m.contains("b/00.png") && m.contains("unreadable"), "{m}");
            // A cached image is served from memory even after its file is gone.
            let (cached, _) = ImageFiles::open(
                &listing,
                &[0],
                &opts(strict),
                "x",
                &CacheBudget::new(1 << 20),
            )
            .unwrap();
            std::fs::remove_file(root.join("a/00.png")).unwrap();
            cached.fill(&[0], &mut out[..75]).unwrap();
            std::fs::remove_dir_all(&root).unwrap();
        }
    }
}
