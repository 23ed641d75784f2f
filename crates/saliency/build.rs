//! Tells the tests where the data is, as the program would find it.
//!
//! Cargo runs each test binary in its crate's folder, so a relative `$SALIENCY_DATA` (as the README
//! writes it) is resolved here against the workspace root, and the chosen folder is baked in as
//! `SALIENCY_TEST_DATA`: the first of `$SALIENCY_DATA`, `<workspace>/data` and
//! `/usr/share/datasets` that holds Fashion-MNIST, else the sample shipped in `data/sample`.
//!
//! Tests that need more than the sample are compiled with `#[ignore = "needs ..."]` unless the
//! cfgs below say the data is there, so a missing data set shows in the test summary by name as
//! an ignored test (never a silent pass). The build script reruns when `SALIENCY_DATA` changes.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SALIENCY_DATA");
    println!("cargo::rustc-check-cfg=cfg(full_fashion_mnist)");
    println!("cargo::rustc-check-cfg=cfg(flowers17_data)");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.join("../..");
    let mut roots = Vec::new();
    if let Some(env) = std::env::var_os("SALIENCY_DATA").filter(|e| !e.is_empty()) {
        let p = PathBuf::from(env);
        roots.push(if p.is_absolute() {
            p
        } else {
            workspace.join(p)
        });
    }
    roots.push(workspace.join("data"));
    roots.push(PathBuf::from("/usr/share/datasets"));
    let sample = workspace.join("data/sample");
    let full = roots.iter().find(|r| full_fashion_mnist(r));
    let root = full.cloned().unwrap_or_else(|| sample.clone());
    let root = root.canonicalize().unwrap_or(root);
    println!("cargo:rustc-env=SALIENCY_TEST_DATA={}", root.display());
    if full.is_some() {
        println!("cargo:rustc-cfg=full_fashion_mnist");
    }
    if roots.iter().any(|r| r.join("flowers17").is_dir()) {
        println!("cargo:rustc-cfg=flowers17_data");
    }
}

/// True when `root/fashion-mnist` holds the official training images (all 60,000: the `.gz`
/// is over 26 MB, the sample's under 5 MB).
fn full_fashion_mnist(root: &Path) -> bool {
    let dir = root.join("fashion-mnist");
    let size = |name: &str| {
        std::fs::metadata(dir.join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    size("train-images-idx3-ubyte.gz") > 20_000_000 || size("train-images-idx3-ubyte") > 40_000_000
}
