//! Data sets: Fashion-MNIST from IDX files, image folders (flowers), splits, locating and downloading.

pub mod dataset;
mod decode;
pub mod download;
pub mod error;
pub mod fashion_mnist;
pub mod idx;
pub mod image_folder;
pub mod locate;
pub mod split;

pub use dataset::Dataset;
pub use decode::decode_image_bytes;
pub use download::{download_fashion_mnist, ensure_fashion_mnist, OFFICIAL_BASE_URL};
pub use error::{DataError, DownloadFailure};
pub use fashion_mnist::{load_fashion_mnist, CLASS_NAMES as FASHION_MNIST_CLASS_NAMES};
pub use idx::{parse_idx_images, parse_idx_labels, read_idx_file, IdxImages};
pub use image_folder::{load_image_folder, ImageFolderOptions, LoadReport};
pub use locate::{data_roots, find_fashion_mnist, find_named_set};
pub use split::train_test_split;

/// The project's real data for tests: `$SALIENCY_DATA` when set (CI points it at `shared/data`),
/// else `shared/data` beside the workspace, else `/work/shared/data`. Tests never skip when it
/// is missing: they fail, because the data is part of the project.
#[cfg(test)]
pub(crate) fn test_data_dir() -> std::path::PathBuf {
    let candidates = [
        std::env::var_os("SALIENCY_DATA").map(std::path::PathBuf::from),
        Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")),
        Some(std::path::PathBuf::from("/work/shared/data")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("fashion-mnist").is_dir())
        .expect("shared data not found: set SALIENCY_DATA to the shared/data folder")
}
