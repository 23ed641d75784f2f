//! Fashion-MNIST: finds the four IDX files in a folder and loads them as two `Dataset`s (train, test).

use std::path::{Path, PathBuf};

use crate::data::dataset::Dataset;
use crate::data::error::DataError;
use crate::data::idx::{parse_idx_images, parse_idx_labels, read_idx_file};

/// The ten class names, in label order (Zalando's list).
pub const CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Side of one image in pixels (images are `SIDE` x `SIDE`, one channel).
pub const SIDE: usize = 28;

/// The four file names without the `.gz` suffix: train images, train labels, test images, test labels.
pub const FILE_STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The sub-folder name a data root may hold the files in.
pub const SUBFOLDER: &str = "fashion-mnist";

/// Paths of the four files of one Fashion-MNIST copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FashionMnistFiles {
    /// `train-images-idx3-ubyte[.gz]`.
    pub train_images: PathBuf,
    /// `train-labels-idx1-ubyte[.gz]`.
    pub train_labels: PathBuf,
    /// `t10k-images-idx3-ubyte[.gz]`.
    pub test_images: PathBuf,
    /// `t10k-labels-idx1-ubyte[.gz]`.
    pub test_labels: PathBuf,
}

/// The four files directly inside `dir`, or `None` when any is missing.
///
/// Each file may be raw or gzipped; the raw one wins when both exist because it loads faster
/// and someone made it on purpose.
pub fn files_in(dir: &Path) -> Option<FashionMnistFiles> {
    let find = |stem: &str| {
        [dir.join(stem), dir.join(format!("{stem}.gz"))]
            .into_iter()
            .find(|p| p.is_file())
    };
    Some(FashionMnistFiles {
        train_images: find(FILE_STEMS[0])?,
        train_labels: find(FILE_STEMS[1])?,
        test_images: find(FILE_STEMS[2])?,
        test_labels: find(FILE_STEMS[3])?,
    })
}

/// The folder that holds the four files: `dir` itself, else `dir/fashion-mnist`.
pub fn resolve_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join(SUBFOLDER)]
        .into_iter()
        .find(|d| files_in(d).is_some())
}

/// Loads Fashion-MNIST from `dir` (or `dir/fashion-mnist`) as (train, test).
///
/// Images become shape [1, 28, 28] with pixels / 255; names are `fashion-mnist/train` and
/// `fashion-mnist/test`. Checks that images are 28 x 28, that each images file and its labels
/// file have the same count, and that every label is below 10.
pub fn load_fashion_mnist(dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    let Some(found) = resolve_dir(dir) else {
        return Err(DataError::NotFound {
            what: format!(
                "Fashion-MNIST ({}, each optionally .gz)",
                FILE_STEMS.join(", ")
            ),
            tried: vec![dir.to_path_buf(), dir.join(SUBFOLDER)],
            hint: String::new(),
        });
    };
    let files = files_in(&found).expect("resolve_dir only returns folders holding the files");
    // The two splits are independent; decompressing them side by side halves the wait.
    let (train, test) = rayon::join(
        || {
            load_split(
                &files.train_images,
                &files.train_labels,
                "fashion-mnist/train",
            )
        },
        || load_split(&files.test_images, &files.test_labels, "fashion-mnist/test"),
    );
    Ok((train?, test?))
}

/// Loads one images file and its labels file into a `Dataset` called `name`.
pub fn load_split(
    images_path: &Path,
    labels_path: &Path,
    name: &str,
) -> Result<Dataset, DataError> {
    let images_shown = images_path.display().to_string();
    let labels_shown = labels_path.display().to_string();
    let images = parse_idx_images(&images_shown, &read_idx_file(images_path)?)?;
    let labels = parse_idx_labels(&labels_shown, &read_idx_file(labels_path)?)?;
    if (images.rows, images.cols) != (SIDE, SIDE) {
        return Err(DataError::format(
            &images_shown,
            "image size (rows x cols)",
            format!("{SIDE} x {SIDE}"),
            format!("{} x {}", images.rows, images.cols),
        ));
    }
    // Zero images parse as a valid IDX file; said here, the error names the file instead of a
    // later "no training images".
    if images.count == 0 {
        return Err(DataError::format(
            &images_shown,
            "image count",
            "at least 1 image",
            "0",
        ));
    }
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            image_file: images_path.to_path_buf(),
            images: images.count,
            label_file: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= CLASS_NAMES.len())
    {
        return Err(DataError::format(
            &labels_shown,
            format!("label at index {index}"),
            format!("a class below {}", CLASS_NAMES.len()),
            label.to_string(),
        ));
    }
    Ok(Dataset {
        name: name.to_string(),
        images: images
            .pixels
            .iter()
            .map(|&p| f32::from(p) / 255.0)
            .collect(),
        labels: labels.iter().map(|&l| u32::from(l)).collect(),
        shape: [1, SIDE, SIDE],
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::download::FILES;
    use crate::data::idx::encode_idx_u8;
    use sha2::{Digest, Sha256};

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("saliency-fm-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Writes a tiny raw Fashion-MNIST copy with `n` train and `n` test images into `dir`.
    fn write_tiny(dir: &Path, n: u32, rows: u32, labels: &[u8]) {
        let px = vec![255u8; (n * rows * 28) as usize];
        for split in ["train", "t10k"] {
            std::fs::write(
                dir.join(format!("{split}-images-idx3-ubyte")),
                encode_idx_u8(&[n, rows, 28], &px),
            )
            .unwrap();
            std::fs::write(
                dir.join(format!("{split}-labels-idx1-ubyte")),
                encode_idx_u8(&[labels.len() as u32], labels),
            )
            .unwrap();
        }
    }

    #[test]
    #[cfg_attr(
        not(full_fashion_mnist),
        ignore = "needs the full Fashion-MNIST (set SALIENCY_DATA, or data/fashion-mnist)"
    )]
    fn real_files_load_with_official_counts() {
        let dir = crate::data::test_data_dir().join(SUBFOLDER);
        // The decompressed bytes match the README's sha256, so what we parse is the official data.
        let raw = read_idx_file(&dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(format!("{:x}", Sha256::digest(&raw)), FILES[3].raw_sha256);

        let (train, test) = load_fashion_mnist(dir.parent().unwrap()).unwrap();
        assert_eq!((train.len(), test.len()), (60_000, 10_000));
        assert_eq!(train.shape, [1, 28, 28]);
        assert_eq!(train.images.len(), 60_000 * 784);
        assert_eq!(
            (train.name.as_str(), test.name.as_str()),
            ("fashion-mnist/train", "fashion-mnist/test")
        );
        // Per the data README: 6,000 train and 1,000 test images per class.
        for (set, per_class) in [(&train, 6000), (&test, 1000)] {
            let mut counts = [0usize; 10];
            for &l in &set.labels {
                counts[l as usize] += 1;
            }
            assert_eq!(counts, [per_class; 10], "{}", set.name);
        }
        // First labels as read by Python's gzip module from the same files.
        assert_eq!(train.labels[..10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
        assert_eq!(test.labels[..10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
        // Pixel scaling: the first train image's byte sum is 76247 (Python), max byte 255.
        let sum: f64 = train.image(0).iter().map(|&p| f64::from(p) * 255.0).sum();
        assert!((sum - 76_247.0).abs() < 0.5, "sum {sum}");
        assert_eq!(train.image(0).iter().cloned().fold(0.0f32, f32::max), 1.0);
        assert!(train.images.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert_eq!(train.class_names[9], "Ankle boot");
    }

    #[test]
    fn shipped_sample_is_intact_and_stratified() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample");
        // Every shipped file matches its line in SHA256SUMS.
        let sums = std::fs::read_to_string(sample.join("SHA256SUMS")).unwrap();
        let mut checked = 0;
        for line in sums.lines() {
            let (digest, rel) = line.split_once("  ").unwrap();
            let bytes = std::fs::read(sample.join(rel)).unwrap();
            assert_eq!(format!("{:x}", Sha256::digest(&bytes)), digest, "{rel}");
            checked += 1;
        }
        assert_eq!(
            checked, 205,
            "4 Fashion-MNIST files, 200 photos and LICENSE.txt"
        );
        let (train, test) = load_fashion_mnist(&sample).unwrap();
        for (set, per_class) in [(&train, 1000), (&test, 200)] {
            let mut counts = [0usize; 10];
            for &l in &set.labels {
                counts[l as usize] += 1;
            }
            assert_eq!(counts, [per_class; 10], "{}", set.name);
        }
        // The official files' first images lead the sample too (the cut keeps the files' order).
        assert_eq!(train.labels[..3], [9, 0, 0]);
        assert_eq!(test.labels[..3], [9, 2, 1]);
        let sum: f64 = train.image(0).iter().map(|&p| f64::from(p) * 255.0).sum();
        assert!((sum - 76_247.0).abs() < 0.5, "sum {sum}");
    }

    #[test]
    fn finds_files_in_subfolder_and_prefers_raw() {
        let root = scratch("sub");
        let dir = root.join(SUBFOLDER);
        std::fs::create_dir_all(&dir).unwrap();
        write_tiny(&dir, 2, 28, &[0, 9]);
        assert_eq!(resolve_dir(&root), Some(dir.clone()));
        let (train, test) = load_fashion_mnist(&root).unwrap();
        assert_eq!((train.len(), test.len()), (2, 2));
        assert_eq!(train.labels, vec![0, 9]);
        assert!(train.images.iter().all(|&p| p == 1.0));
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), b"junk").unwrap();
        assert_eq!(
            files_in(&dir).unwrap().train_images,
            dir.join("train-images-idx3-ubyte")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_files_name_both_places() {
        let root = scratch("missing");
        let m = load_fashion_mnist(&root).unwrap_err().to_string();
        assert!(
            m.contains(&root.display().to_string())
                && m.contains("fashion-mnist")
                && m.contains("t10k-labels-idx1-ubyte"),
            "{m}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn wrong_image_size_is_refused() {
        let root = scratch("size");
        write_tiny(&root, 2, 27, &[0, 1]);
        let m = load_fashion_mnist(&root).unwrap_err().to_string();
        assert!(
            m.contains("images-idx3-ubyte") && m.contains("28 x 28") && m.contains("27 x 28"),
            "{m}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let root = scratch("count");
        write_tiny(&root, 2, 28, &[0, 1, 2]);
        let m = load_fashion_mnist(&root).unwrap_err().to_string();
        assert!(
            m.contains("images-idx3-ubyte")
                && m.contains("labels-idx1-ubyte")
                && m.contains("2 images")
                && m.contains("3 labels"),
            "{m}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn label_out_of_range_names_file_and_index() {
        let root = scratch("label");
        write_tiny(&root, 3, 28, &[0, 1, 10]);
        let m = load_fashion_mnist(&root).unwrap_err().to_string();
        assert!(
            m.contains("labels-idx1-ubyte")
                && m.contains("index 2")
                && m.contains("below 10")
                && m.contains("found 10"),
            "{m}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
