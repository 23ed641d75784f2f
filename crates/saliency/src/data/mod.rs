//! Data sets: Fashion-MNIST from IDX files, image folders (flowers), splits, locating and downloading.

pub mod dataset;
mod decode;
pub mod download;
#[cfg(feature = "download")]
pub mod download_archive;
pub mod error;
pub mod fashion_mnist;
pub mod folder_listing;
pub mod idx;
pub mod image_cache;
pub mod image_files;
pub mod image_folder;
pub mod image_source;
pub mod locate;
pub mod selection;
pub mod split;
#[cfg(all(test, feature = "download"))]
pub(crate) mod test_server;

pub use dataset::Dataset;
pub use decode::decode_image_bytes;
pub use download::{download_fashion_mnist, ensure_fashion_mnist, OFFICIAL_BASE_URL};
pub use error::{DataError, DownloadFailure};
pub use fashion_mnist::{load_fashion_mnist, CLASS_NAMES as FASHION_MNIST_CLASS_NAMES};
pub use folder_listing::FolderListing;
pub use idx::{parse_idx_images, parse_idx_labels, read_idx_file, IdxImages};
pub use image_cache::CacheBudget;
pub use image_files::ImageFiles;
pub use image_folder::{list_image_folder, load_image_folder, ImageFolderOptions, LoadReport};
pub use image_source::{ImageSource, Images, Prefix};
pub use locate::{data_roots, find_fashion_mnist, find_named_set, Found, Origin};
pub use selection::Selection;

/// The image set `name`: a full copy on disk, else (with `allow_download` and the `download`
/// feature) its official archive fetched into the data folder, else the shipped sample; see
/// `download_archive::ensure_named_set`. Without the feature, only what is on disk.
pub fn ensure_named_set(
    data_dir: Option<&std::path::Path>,
    name: &str,
    allow_download: bool,
) -> Result<Found, DataError> {
    #[cfg(feature = "download")]
    {
        download_archive::ensure_named_set(data_dir, name, allow_download)
    }
    #[cfg(not(feature = "download"))]
    {
        let _ = allow_download;
        locate::locate_named_set(data_dir, name)
    }
}
pub use split::train_test_split;

/// The real data for tests: the folder `build.rs` chose (`$SALIENCY_DATA`, resolved against the
/// workspace root when relative, else `./data` or `/usr/share/datasets` when they hold
/// Fashion-MNIST, else the shipped sample). Tests that need the full sets are ignored by name
/// when `cfg(full_fashion_mnist)` is not set.
#[cfg(test)]
pub(crate) fn test_data_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("SALIENCY_TEST_DATA"))
}
