//! `saliency download`: fetches a full data set from its official address, checked against its
//! pinned checksum, into the data folder.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, ValueEnum};

use crate::data::download::{download_fashion_mnist, download_into_new_folders, OFFICIAL_BASE_URL};
use crate::data::download_archive::{download_archive, FLOWERS17, FLOWER_PHOTOS};

/// A downloadable data set.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Set {
    /// Fashion-MNIST, the four official files (30 MB).
    FashionMnist,
    /// TensorFlow's flower_photos: 3,670 photos of the study's 5 classes (218 MB).
    Flowers,
    /// The Oxford 17 Category Flower Dataset: 1,360 photos (58 MB).
    Flowers17,
}

/// Options of `saliency download`.
#[derive(Args, Debug)]
pub struct DownloadArgs {
    /// The data set.
    #[arg(value_enum)]
    set: Set,
    /// Data root to download into (else ./data); the set lands in its own sub-folder.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
}

/// Downloads the set; an existing flower folder is refused rather than mixed with.
pub fn run(args: DownloadArgs) -> anyhow::Result<()> {
    let root = &args.data_dir;
    let dest = match args.set {
        Set::FashionMnist => {
            let dest = root.join(crate::data::fashion_mnist::SUBFOLDER);
            download_into_new_folders(&dest, |d| download_fashion_mnist(OFFICIAL_BASE_URL, d))?;
            dest
        }
        Set::Flowers | Set::Flowers17 => {
            let archive = if matches!(args.set, Set::Flowers) {
                FLOWER_PHOTOS
            } else {
                FLOWERS17
            };
            let dest = root.join(archive.name);
            if dest.exists() {
                bail!(
                    "{} already exists: remove it to download {} again",
                    dest.display(),
                    archive.name
                );
            }
            download_into_new_folders(&dest, |d| download_archive(&archive, archive.url, d))?;
            dest
        }
    };
    eprintln!("downloaded and verified into {}", dest.display());
    Ok(())
}
