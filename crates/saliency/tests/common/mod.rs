//! Shared test helpers: finding the real data sets.

#![allow(dead_code)]

use std::path::PathBuf;

use saliency::data::fashion_mnist::load_fashion_mnist;
use saliency::data::Dataset;

/// `$SALIENCY_DATA`, else the workspace's sibling `shared/data` (where CI puts it).
pub fn data_root() -> PathBuf {
    std::env::var_os("SALIENCY_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// Fashion-MNIST train and test sets (panics with the path if missing: CI must have the data).
pub fn fashion() -> (Dataset, Dataset) {
    let dir = data_root().join("fashion-mnist");
    load_fashion_mnist(&dir)
        .unwrap_or_else(|e| panic!("Fashion-MNIST must be present at {}: {e}", dir.display()))
}
