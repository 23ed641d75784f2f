//! Image-folder data sets (one sub-folder per class): listed by file name, then the chosen files
//! decoded under limits and resized to a square `Dataset`.

use std::path::{Path, PathBuf};

use crate::data::dataset::Dataset;
use crate::data::error::DataError;
pub use crate::data::folder_listing::FolderListing;

/// How to load an image folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFolderOptions {
    /// Output side: every image is resized to `size` x `size` (default 256, the study's flowers input).
    pub size: usize,
    /// One luma channel instead of three RGB channels.
    pub gray: bool,
    /// Stop at the first bad file (default); when false, skip it and list it in the `LoadReport`.
    pub strict: bool,
    /// Class folders to use, in label order (e.g. `["roses", "dandelion"]` for a binary task);
    /// `None` uses every class folder in sorted order.
    pub classes: Option<Vec<String>>,
    /// Largest image width accepted, checked from the header before decoding.
    pub max_width: u32,
    /// Largest image height accepted, checked from the header before decoding.
    pub max_height: u32,
    /// Largest allocation the decoder may make for one image, in bytes.
    pub max_alloc: u64,
    /// Largest file read, in bytes.
    pub max_file_bytes: u64,
}

impl Default for ImageFolderOptions {
    fn default() -> Self {
        ImageFolderOptions {
            size: 256,
            gray: false,
            strict: true,
            classes: None,
            // Generous for photos (flower photos are at most 500 px) yet refuses decompression
            // bombs whose headers claim gigapixel sizes.
            max_width: 10_000,
            max_height: 10_000,
            max_alloc: 512 * 1024 * 1024,
            max_file_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What a load did: how many images were loaded and which files were skipped (lenient mode).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Images in the returned `Dataset`.
    pub loaded: usize,
    /// Files skipped in lenient mode, each with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Loads `dir/<class>/<image>` into a `Dataset` of shape [C, size, size] (C = 3, or 1 when gray).
///
/// Classes are the sub-folders in sorted order (or `opts.classes` in the order given); files at
/// the top level (e.g. `LICENSE.txt`), names starting with `.` and nested folders are ignored.
/// Files within a class are taken in sorted order, so the output never depends on the file
/// system or on the number of threads. Pixels are resized with bilinear filtering without keeping
/// the aspect ratio and scaled to [0, 1]. The dataset is named after `dir`'s last component.
///
/// This decodes every file, and (lenient) refuses a class folder none of whose files decode;
/// [`list_image_folder`] and [`FolderListing::decode`] decode only a
/// chosen few.
pub fn load_image_folder(
    dir: &Path,
    opts: &ImageFolderOptions,
) -> Result<(Dataset, LoadReport), DataError> {
    let listing = list_image_folder(dir, opts)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let every: Vec<usize> = (0..listing.len()).collect();
    let (dataset, report) = listing.decode(&every, opts, &name)?;
    for (label, class) in dataset.class_names.iter().enumerate() {
        if !dataset.labels.contains(&(label as u32)) {
            return Err(DataError::Folder {
                path: dir.join(class),
                expected: "at least one decodable image in the class folder".into(),
                found: "every file skipped (see the skipped list)".into(),
            });
        }
    }
    Ok((dataset, report))
}

/// Lists `dir/<class>/<image>` without opening a file: the classes and files that
/// [`load_image_folder`] would load, in the same order, each file labelled by its folder.
///
/// A train/test split and any limits can then be chosen from the labels alone, and only the
/// chosen files decoded.
pub fn list_image_folder(
    dir: &Path,
    opts: &ImageFolderOptions,
) -> Result<FolderListing, DataError> {
    if opts.size == 0 {
        return Err(DataError::InvalidArgument {
            name: "size",
            expected: "at least 1".into(),
            found: "0".into(),
        });
    }
    let classes = select_classes(dir, opts.classes.as_deref())?;
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        let names = sorted_entries(&class_dir, false)?;
        if names.is_empty() {
            return Err(DataError::Folder {
                path: class_dir,
                expected: "at least one image file in the class folder".into(),
                found: "an empty folder".into(),
            });
        }
        labels.extend(std::iter::repeat_n(label as u32, names.len()));
        files.extend(names.into_iter().map(|f| class_dir.join(f)));
    }
    Ok(FolderListing {
        dir: dir.to_path_buf(),
        class_names: classes,
        files,
        labels,
    })
}

/// The class folder names to use, in label order.
fn select_classes(dir: &Path, wanted: Option<&[String]>) -> Result<Vec<String>, DataError> {
    let available = sorted_entries(dir, true)?;
    if available.is_empty() {
        return Err(DataError::Folder {
            path: dir.to_path_buf(),
            expected: "one sub-folder per class".into(),
            found: "no sub-folders".into(),
        });
    }
    let Some(wanted) = wanted else {
        return Ok(available);
    };
    if wanted.is_empty() {
        return Err(DataError::InvalidArgument {
            name: "classes",
            expected: "at least one class name".into(),
            found: "an empty list".into(),
        });
    }
    for (i, class) in wanted.iter().enumerate() {
        if wanted[..i].contains(class) {
            return Err(DataError::InvalidArgument {
                name: "classes",
                expected: "distinct class names".into(),
                found: format!("{class:?} twice"),
            });
        }
        if !available.contains(class) {
            return Err(DataError::Folder {
                path: dir.to_path_buf(),
                expected: format!("a class folder named {class:?}"),
                found: format!("only the classes {}", available.join(", ")),
            });
        }
    }
    Ok(wanted.to_vec())
}

/// The sorted names of the sub-folders (`dirs`) or files (`!dirs`) of `dir`, skipping names
/// that start with `.` (e.g. `.DS_Store`) or are not valid UTF-8.
fn sorted_entries(dir: &Path, dirs: bool) -> Result<Vec<String>, DataError> {
    let read = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::Folder {
            path: dir.to_path_buf(),
            expected: "an existing folder with one sub-folder per class".into(),
            found: "no such folder".into(),
        },
        _ => DataError::io("listing folder", dir, e),
    })?;
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| DataError::io("listing folder", dir, e))?;
        // Skipping such a name silently dropped a class or its images without a word.
        let name = entry
            .file_name()
            .into_string()
            .map_err(|raw| DataError::Folder {
                path: entry.path(),
                expected:
                    "a file or folder name in UTF-8 (rename it, or move it out of the data set)"
                        .into(),
                found: format!("the name {:?}", raw.to_string_lossy()),
            })?;
        if name.starts_with('.') {
            continue;
        }
        // `metadata` follows symlinks, so a linked class folder or image counts.
        let is_dir = match std::fs::metadata(entry.path()) {
            Ok(m) => m.is_dir(),
            Err(_) => false,
        };
        if is_dir == dirs {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, RgbImage};
    use std::io::Cursor;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("saliency-imf-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn png_bytes(img: &RgbImage) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, ImageFormat::Png).unwrap();
        buf.into_inner()
    }

    /// A folder `a/`, `b/` with one 2x2 PNG each, plus whatever `extra` files (class, name, bytes).
    fn tiny_folder(tag: &str, extra: &[(&str, &str, &[u8])]) -> PathBuf {
        let root = scratch(tag);
        for (class, value) in [("a", 10u8), ("b", 200)] {
            std::fs::create_dir_all(root.join(class)).unwrap();
            std::fs::write(
                root.join(class).join("img.png"),
                png_bytes(&RgbImage::from_pixel(2, 2, image::Rgb([value; 3]))),
            )
            .unwrap();
        }
        for (class, name, bytes) in extra {
            std::fs::write(root.join(class).join(name), bytes).unwrap();
        }
        root
    }

    fn opts(size: usize) -> ImageFolderOptions {
        ImageFolderOptions {
            size,
            ..ImageFolderOptions::default()
        }
    }

    fn strict_error(root: &Path) -> String {
        load_image_folder(root, &opts(2)).unwrap_err().to_string()
    }

    #[test]
    fn real_flowers_five_classes() {
        let dir = crate::data::test_data_dir().join("flowers");
        let (ds, report) = load_image_folder(&dir, &ImageFolderOptions::default()).unwrap();
        assert_eq!(
            ds.class_names,
            ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
        );
        assert_eq!(
            (ds.len(), report.loaded, report.skipped.len()),
            (200, 200, 0)
        );
        assert_eq!(ds.shape, [3, 256, 256]);
        assert_eq!(ds.images.len(), 200 * 3 * 256 * 256);
        for class in 0..5u32 {
            assert_eq!(ds.labels.iter().filter(|&&l| l == class).count(), 40);
        }
        assert!(
            ds.labels.windows(2).all(|w| w[0] <= w[1]),
            "class folders load in order"
        );
        assert!(ds.images.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert!(ds.images.iter().any(|&p| p > 0.5), "not all dark");
        assert_eq!(ds.name, "flowers");
    }

    #[test]
    fn real_flowers_binary_pair_gray() {
        let dir = crate::data::test_data_dir().join("flowers");
        let pair = ImageFolderOptions {
            size: 32,
            gray: true,
            classes: Some(vec!["roses".into(), "dandelion".into()]),
            ..Default::default()
        };
        let (ds, _) = load_image_folder(&dir, &pair).unwrap();
        assert_eq!((ds.len(), ds.shape), (80, [1, 32, 32]));
        assert_eq!(ds.class_names, ["roses", "dandelion"]);
        assert!(ds.labels[..40].iter().all(|&l| l == 0) && ds.labels[40..].iter().all(|&l| l == 1));
        // Label 0 holds the roses: the same pixels as loading roses alone.
        let roses = ImageFolderOptions {
            classes: Some(vec!["roses".into()]),
            ..pair.clone()
        };
        let (alone, _) = load_image_folder(&dir, &roses).unwrap();
        assert_eq!(alone.images[..], ds.images[..40 * 32 * 32]);
        let missing = ImageFolderOptions {
            classes: Some(vec!["roses".into(), "orchid".into()]),
            ..pair
        };
        let m = load_image_folder(&dir, &missing).unwrap_err().to_string();
        assert!(
            m.contains("\"orchid\"") && m.contains("daisy, dandelion, roses, sunflowers, tulips"),
            "{m}"
        );
    }

    #[test]
    fn layout_is_planar_chw_in_unit_range() {
        let root = scratch("layout");
        std::fs::create_dir_all(root.join("only")).unwrap();
        // 2x1 image: left pixel (255, 0, 51), right pixel (0, 102, 255); size 2 resizes 2x1 -> 2x2.
        let img = RgbImage::from_fn(2, 1, |x, _| {
            if x == 0 {
                image::Rgb([255, 0, 51])
            } else {
                image::Rgb([0, 102, 255])
            }
        });
        std::fs::write(root.join("only").join("x.png"), png_bytes(&img)).unwrap();
        let sq = RgbImage::from_fn(2, 2, |x, y| {
            image::Rgb([(x * 255) as u8, (y * 255) as u8, 0])
        });
        std::fs::write(root.join("only").join("y.png"), png_bytes(&sq)).unwrap();
        let (ds, _) = load_image_folder(&root, &opts(2)).unwrap();
        // y.png needs no resize: channel 0 is x, channel 1 is y, channel 2 is zero.
        assert_eq!(
            ds.image(1),
            [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        );
        // x.png stretched vertically keeps each column's color.
        assert_eq!(
            ds.image(0),
            [1.0, 0.0, 1.0, 0.0, 0.0, 0.4, 0.0, 0.4, 0.2, 1.0, 0.2, 1.0]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn non_image_strict_error_and_lenient_skip() {
        let root = tiny_folder(
            "text",
            &[("a", "notes.txt", b"just some text, not an image")],
        );
        let m = strict_error(&root);
        assert!(
            m.contains("a/notes.txt") && m.contains("not an image"),
            "{m}"
        );
        let lenient = ImageFolderOptions {
            strict: false,
            ..opts(2)
        };
        let (ds, report) = load_image_folder(&root, &lenient).unwrap();
        assert_eq!((ds.len(), report.loaded), (2, 2));
        assert_eq!(report.skipped.len(), 1);
        assert!(report.skipped[0].0.ends_with("a/notes.txt"));
        assert_eq!(ds.labels, [0, 1]);
        assert_eq!(ds.image(1)[0], 200.0 / 255.0, "b's image slid into slot 1");
        // A class whose every file is skipped leaves nothing to learn from: an error even when lenient.
        std::fs::remove_file(root.join("a/img.png")).unwrap();
        let m = load_image_folder(&root, &lenient).unwrap_err().to_string();
        assert!(
            m.contains(&root.join("a").display().to_string()) && m.contains("every file skipped"),
            "{m}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn zero_byte_and_truncated_jpegs() {
        let real = std::fs::read(
            crate::data::test_data_dir().join("flowers/daisy/102841525_bd6628ae3c.jpg"),
        )
        .unwrap();
        let root = tiny_folder("jpeg", &[("b", "empty.jpg", b"")]);
        let m = strict_error(&root);
        assert!(m.contains("b/empty.jpg") && m.contains("zero bytes"), "{m}");
        std::fs::remove_file(root.join("b/empty.jpg")).unwrap();
        std::fs::write(root.join("b/cut.jpg"), &real[..real.len() / 2]).unwrap();
        let m = strict_error(&root);
        assert!(m.contains("b/cut.jpg") && m.contains("corrupt"), "{m}");
        std::fs::write(root.join("b/cut.jpg"), &real[..300]).unwrap();
        let m = strict_error(&root);
        assert!(m.contains("b/cut.jpg") && m.contains("corrupt"), "{m}");
        std::fs::remove_file(root.join("b/cut.jpg")).unwrap();
        let noise = RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 7 + y * 13) as u8, (x * y) as u8, (x ^ y) as u8])
        });
        let png = png_bytes(&noise);
        std::fs::write(root.join("b/cut.png"), &png[..png.len() / 2]).unwrap();
        let m = strict_error(&root);
        assert!(m.contains("b/cut.png") && m.contains("corrupt"), "{m}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A valid 1x1 PNG whose IHDR is patched to claim `w` x `h` (with a correct CRC).
    fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut png = png_bytes(&RgbImage::new(1, 1));
        // Signature (8) + chunk length (4) + "IHDR" (4), then width and height; the CRC over
        // type and 13 data bytes sits at 29..33.
        png[16..20].copy_from_slice(&w.to_be_bytes());
        png[20..24].copy_from_slice(&h.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&png[12..29]);
        png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        png
    }

    #[test]
    fn decompression_bomb_is_refused() {
        let root = tiny_folder(
            "bomb",
            &[("a", "bomb.png", &png_claiming(100_000, 100_000))],
        );
        let m = strict_error(&root);
        assert!(m.contains("a/bomb.png") && m.contains("too large"), "{m}");
        // Within the side limits but over the allocation limit: 5000 x 5000 RGB is 75 MB.
        std::fs::write(root.join("a/bomb.png"), png_claiming(5000, 5000)).unwrap();
        let small_alloc = ImageFolderOptions {
            max_alloc: 1 << 20,
            ..opts(2)
        };
        let m = load_image_folder(&root, &small_alloc)
            .unwrap_err()
            .to_string();
        assert!(m.contains("a/bomb.png") && m.contains("too large"), "{m}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_and_empty_folders() {
        let gone = std::env::temp_dir().join("saliency-no-such-folder-xyz");
        let m = strict_error(&gone);
        assert!(
            m.contains("saliency-no-such-folder-xyz") && m.contains("no such folder"),
            "{m}"
        );
        let root = tiny_folder("empty", &[]);
        std::fs::create_dir_all(root.join("c")).unwrap();
        let m = strict_error(&root);
        assert!(
            m.contains(&root.join("c").display().to_string()) && m.contains("empty folder"),
            "{m}"
        );
        let flat = scratch("flat");
        std::fs::write(flat.join("LICENSE.txt"), b"x").unwrap();
        let m = strict_error(&flat);
        assert!(m.contains("no sub-folders"), "{m}");
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&flat).unwrap();
    }
}
