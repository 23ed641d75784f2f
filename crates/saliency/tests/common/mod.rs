//! Shared test helpers: finding the real data sets, smooth test images.

#![allow(dead_code)]

use std::path::PathBuf;

use saliency::data::fashion_mnist::load_fashion_mnist;
use saliency::data::Dataset;
use tensor::{Float, Tensor};

/// The data root `build.rs` chose: a full copy (`$SALIENCY_DATA`, resolved against the workspace
/// root when relative, `./data`, `/usr/share/datasets`), else the sample shipped in `data/sample`.
pub fn data_root() -> PathBuf {
    PathBuf::from(env!("SALIENCY_TEST_DATA"))
}

/// Fashion-MNIST train and test sets from `data_root()` (the shipped sample at least: it is part
/// of the repository, so a failure here is a real error).
pub fn fashion() -> (Dataset, Dataset) {
    let dir = data_root().join("fashion-mnist");
    load_fashion_mnist(&dir)
        .unwrap_or_else(|e| panic!("Fashion-MNIST must be present at {}: {e}", dir.display()))
}

/// Three smooth test patterns in [0, 1] (a blob, a ramp, stripes) of shape (3, 1, 28, 28),
/// computed in f64.
pub fn patterns<T: Float>() -> Tensor<T> {
    Tensor::from_fn(&[3, 1, 28, 28], |idx| {
        let (i, y, x) = (idx / 784, (idx % 784) / 28, idx % 28);
        let (yf, xf) = (y as f64 / 27.0, x as f64 / 27.0);
        T::from_f64(match i {
            0 => (-((yf - 0.5).powi(2) + (xf - 0.4).powi(2)) * 12.0).exp(),
            1 => 0.5 * (xf + yf),
            _ => 0.5 + 0.5 * (6.0 * xf).sin() * (4.0 * yf).cos(),
        })
    })
}
