//! Data sets: Fashion-MNIST from IDX files, image folders (flowers), splits, locating and downloading.

pub mod dataset;
mod decode;
pub mod download;
pub mod download_archive;
pub mod error;
pub mod fashion_mnist;
pub mod idx;
pub mod image_folder;
pub mod locate;
pub mod split;
#[cfg(test)]
pub(crate) mod test_server;

pub use dataset::Dataset;
pub use decode::decode_image_bytes;
pub use download::{download_fashion_mnist, ensure_fashion_mnist, OFFICIAL_BASE_URL};
pub use error::{DataError, DownloadFailure};
pub use fashion_mnist::{load_fashion_mnist, CLASS_NAMES as FASHION_MNIST_CLASS_NAMES};
pub use idx::{parse_idx_images, parse_idx_labels, read_idx_file, IdxImages};
pub use image_folder::{load_image_folder, ImageFolderOptions, LoadReport};
pub use locate::{data_roots, find_fashion_mnist, find_named_set};
pub use split::train_test_split;

/// The real data for tests: the folder `build.rs` chose (`$SALIENCY_DATA`, resolved against the
/// workspace root when relative, else `./data` or `/usr/share/datasets` when they hold
/// Fashion-MNIST, else the shipped sample). Tests that need the full sets are ignored by name
/// when `cfg(full_fashion_mnist)` is not set.
#[cfg(test)]
pub(crate) fn test_data_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("SALIENCY_TEST_DATA"))
}
