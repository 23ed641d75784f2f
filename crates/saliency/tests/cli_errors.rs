//! The CLI on bad inputs: each case runs the real `saliency` binary on tiny files made in a temp
//! folder and checks it exits non-zero with a message naming the file or flag, what was expected
//! and what was found, without a panic, and without leaving a half-written output file.
//!
//! Items refer to the hardening checklist (1-18, 23, 25). Nothing reaches the network: every
//! run passes `--no-download` and `--data-dir`.

use std::ffi::OsString;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{DynamicImage, ImageFormat, RgbImage};
use saliency::checkpoint::{self, Checkpoint};
use saliency::data::idx::encode_idx_u8;
use saliency::data::{load_image_folder, ImageFolderOptions};
use saliency::model_io::{save_model, ModelMeta};
use saliency::models::{Model, ModelKind};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_saliency");

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// A temp folder removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("saliency-cli-errors-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary in `cwd` with no backtrace variable (a panic would then print its
/// `RUST_BACKTRACE` note, which the checks look for) and no data variable.
fn saliency<S: AsRef<std::ffi::OsStr>>(cwd: &Path, args: &[S]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .env_remove("SALIENCY_DATA")
        .output()
        .expect("the saliency binary runs")
}

/// Checks a refused run: non-zero exit, no panic, and every needle in stderr. Returns stderr.
fn assert_refused(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected a failure, the run succeeded; stderr:\n{stderr}"
    );
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!stderr.contains(bad), "stderr shows a panic ({bad:?}):\n{stderr}");
    }
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
    }
    stderr
}

/// Checks a successful run; returns stderr.
fn assert_ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "expected success; stderr:\n{stderr}");
    stderr
}

/// Every file under `dir` whose name marks an unfinished atomic write (`.NAME.tmp-PID`).
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

/// 28 x 28 pixels for label `label`: a bright row band whose position gives the class, so a
/// network can learn it in a few steps.
fn pixels_for(label: u8, index: usize) -> Vec<u8> {
    (0..28 * 28)
        .map(|p| {
            let (row, col) = (p / 28, p % 28);
            if row / 3 == label as usize % 9 {
                200 + (col % 50) as u8
            } else {
                ((p * 7 + index * 13) % 40) as u8
            }
        })
        .collect()
}

fn images_file(n: usize) -> Vec<u8> {
    let px: Vec<u8> = (0..n).flat_map(|i| pixels_for((i % 10) as u8, i)).collect();
    encode_idx_u8(&[n as u32, 28, 28], &px)
}

fn labels_file(n: usize) -> Vec<u8> {
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    encode_idx_u8(&[n as u32], &labels)
}

/// A tiny valid Fashion-MNIST copy in `dir`: 64 training and 16 test images.
fn write_fashion(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(TRAIN_IMAGES), images_file(64)).unwrap();
    std::fs::write(dir.join(TRAIN_LABELS), labels_file(64)).unwrap();
    std::fs::write(dir.join(TEST_IMAGES), images_file(16)).unwrap();
    std::fs::write(dir.join(TEST_LABELS), labels_file(16)).unwrap();
}

/// `train` on `data` into `out` with `extra` options; unless `extra` sets them: one epoch,
/// batch 16, one thread. Always quiet and without download.
fn train_args(data: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "train".into(),
        "--no-download".into(),
        "--quiet".into(),
        "--data-dir".into(),
        data.into(),
        "--out".into(),
        out.into(),
    ];
    for (flag, value) in [("--epochs", "1"), ("--batch-size", "16"), ("--threads", "1")] {
        if !extra.iter().any(|a| *a == flag || a.starts_with(&format!("{flag}="))) {
            args.extend([OsString::from(flag), OsString::from(value)]);
        }
    }
    args.extend(extra.iter().map(OsString::from));
    args
}

/// Runs `train` on a Fashion-MNIST copy in which `file` holds `bytes` instead, expecting a
/// refusal naming the file and each needle, and no output folder.
fn train_with_bad_file(tag: &str, file: &str, bytes: &[u8], needles: &[&str]) -> String {
    let s = Scratch::new(tag);
    let data = s.join("data");
    write_fashion(&data);
    std::fs::write(data.join(file), bytes).unwrap();
    let out = s.join("run");
    let run = saliency(&s.0, &train_args(&data, &out, &[]));
    let path = data.join(file).display().to_string();
    let mut all = vec![path.as_str()];
    all.extend_from_slice(needles);
    let stderr = assert_refused(&run, &all);
    assert!(!out.exists(), "no output folder after a data error");
    stderr
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1-8: IDX files

#[test]
fn item01_idx_shorter_than_its_header() {
    // An images file declares 3 sizes (16 header bytes) but stops after 8.
    train_with_bad_file(
        "short-header",
        TRAIN_IMAGES,
        &[0, 0, 8, 3, 0, 0, 0, 1],
        &["header", "expected 16 bytes", "found a file of 8 bytes"],
    );
    // Not even the 4 magic bytes.
    train_with_bad_file(
        "short-magic",
        TEST_LABELS,
        &[0, 0],
        &["magic", "at least 4 bytes", "2 bytes"],
    );
    // A zero-byte file.
    train_with_bad_file("empty-idx", TRAIN_LABELS, &[], &["at least 4 bytes", "0 bytes"]);
}

#[test]
fn item02_idx_magic_not_zero_and_gzip_named() {
    let mut f = labels_file(64);
    f[0] = 0x12;
    f[1] = 0x34;
    let m = train_with_bad_file(
        "magic",
        TRAIN_LABELS,
        &f,
        &["magic bytes 0-1", "expected 00 00", "found 12 34"],
    );
    assert!(!m.contains("gzip"), "{m}");
    // A gzipped file is decompressed (so `.gz` or not, gzip data loads) ...
    let s = Scratch::new("gz-ok");
    let data = s.join("data");
    write_fashion(&data);
    std::fs::remove_file(data.join(TEST_LABELS)).unwrap();
    std::fs::write(data.join(format!("{TEST_LABELS}.gz")), gzip(&labels_file(16))).unwrap();
    assert_ok(&saliency(&s.0, &train_args(&data, &s.join("run"), &[])));
    // ... but gzip inside gzip is named as such.
    std::fs::write(
        data.join(format!("{TEST_LABELS}.gz")),
        gzip(&gzip(&labels_file(16))),
    )
    .unwrap();
    let out = s.join("run2");
    let run = saliency(&s.0, &train_args(&data, &out, &[]));
    assert_refused(
        &run,
        &[
            &format!("{TEST_LABELS}.gz"),
            "magic bytes 0-1",
            "found 1f 8b",
            "looks like gzip data",
        ],
    );
    assert!(!out.exists());
}

#[test]
fn item03_idx_element_type_not_u8() {
    let mut f = images_file(64);
    f[2] = 0x0D;
    train_with_bad_file(
        "elem-type",
        TRAIN_IMAGES,
        &f,
        &["element type", "expected 0x08 (unsigned byte)", "found 0x0d (f32)"],
    );
}

#[test]
fn item04_idx_wrong_rank_or_swapped_files() {
    // Rank 2 where images need rank 3.
    train_with_bad_file(
        "rank2",
        TRAIN_IMAGES,
        &encode_idx_u8(&[64, 784], &vec![0; 64 * 784]),
        &["number of dimensions", "expected 3 (images file)", "found 2"],
    );
    // Rank 3 where labels need rank 1: an images file in the labels' place.
    train_with_bad_file(
        "rank3-labels",
        TRAIN_LABELS,
        &images_file(64),
        &["expected 1 (labels file)", "found 3", "swapped"],
    );
    // The two files swapped: the images name holds labels.
    let s = Scratch::new("swapped");
    let data = s.join("data");
    write_fashion(&data);
    std::fs::write(data.join(TEST_IMAGES), labels_file(16)).unwrap();
    std::fs::write(data.join(TEST_LABELS), images_file(16)).unwrap();
    let out = s.join("run");
    let run = saliency(&s.0, &train_args(&data, &out, &[]));
    assert_refused(&run, &[TEST_IMAGES, "expected 3 (images file)", "found 1", "swapped"]);
    assert!(!out.exists());
}

#[test]
fn item05_idx_sizes_overflow_or_exceed_the_file() {
    // 4294967295^3 overflows any usize.
    train_with_bad_file(
        "overflow",
        TRAIN_IMAGES,
        &encode_idx_u8(&[u32::MAX, u32::MAX, u32::MAX], &[0; 16]),
        &["sizes", "4294967295 x 4294967295 x 4294967295", "overflows"],
    );
    // Sizes written little-endian: 64 reads as 1073741824 big-endian, beyond the file; the
    // message says the byte order is the likely cause.
    let mut le = vec![0, 0, 8, 3];
    for d in [64u32, 28, 28] {
        le.extend_from_slice(&d.to_le_bytes());
    }
    le.extend_from_slice(&images_file(64)[16..]);
    train_with_bad_file(
        "little-endian",
        TRAIN_IMAGES,
        &le,
        &["sizes", "sizes look little-endian: IDX sizes are big-endian"],
    );
    // Big-endian sizes larger than the file, with no little-endian reading that fits.
    train_with_bad_file(
        "beyond",
        TEST_IMAGES,
        &encode_idx_u8(&[100_000, 28, 28], &vec![0; 16 * 784]),
        &["payload length", "expected 78400000 bytes", "found 12544 bytes"],
    );
}

#[test]
fn item06_idx_payload_shorter_or_longer_than_the_header_says() {
    let mut short = images_file(64);
    short.truncate(short.len() - 100);
    train_with_bad_file(
        "payload-short",
        TRAIN_IMAGES,
        &short,
        &["payload length", "expected 50176 bytes", "found 50076 bytes"],
    );
    let mut long = labels_file(64);
    long.extend_from_slice(&[1, 2, 3]);
    train_with_bad_file(
        "payload-long",
        TRAIN_LABELS,
        &long,
        &["payload length", "expected 64 bytes", "found 67 bytes", "longer than its header says"],
    );
}

#[test]
fn item07_idx_not_28x28_or_counts_differ() {
    train_with_bad_file(
        "27x28",
        TRAIN_IMAGES,
        &encode_idx_u8(&[64, 27, 28], &vec![0; 64 * 27 * 28]),
        &["image size (rows x cols)", "expected 28 x 28", "found 27 x 28"],
    );
    let s = Scratch::new("counts");
    let data = s.join("data");
    write_fashion(&data);
    std::fs::write(data.join(TRAIN_LABELS), labels_file(63)).unwrap();
    let out = s.join("run");
    let run = saliency(&s.0, &train_args(&data, &out, &[]));
    assert_refused(
        &run,
        &[TRAIN_IMAGES, TRAIN_LABELS, "holds 64 images", "holds 63 labels", "expected the same count"],
    );
    assert!(!out.exists());
}

#[test]
fn item08_label_beyond_the_classes() {
    let mut labels: Vec<u8> = (0..16).map(|i| (i % 10) as u8).collect();
    labels[11] = 10;
    train_with_bad_file(
        "label-10",
        TEST_LABELS,
        &encode_idx_u8(&[16], &labels),
        &["label at index 11", "expected a class below 10", "found 10"],
    );
    labels[11] = 255;
    train_with_bad_file("label-255", TEST_LABELS, &encode_idx_u8(&[16], &labels), &["found 255"]);
}

// ---------------------------------------------------------------------------------------------
// 9-12: image folders

fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut c = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut c, ImageFormat::Png)
        .unwrap();
    c.into_inner()
}

fn jpeg_bytes(img: &RgbImage) -> Vec<u8> {
    let mut c = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut c, ImageFormat::Jpeg)
        .unwrap();
    c.into_inner()
}

fn noise(side: u32, salt: u32) -> RgbImage {
    RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([
            (x * 7 + y * 13 + salt) as u8,
            (x * y + salt) as u8,
            ((x ^ y) + salt) as u8,
        ])
    })
}

/// `ROOT/flowers/{a,b}/` with five small images each (PNG in a, JPEG in b).
fn write_flowers(root: &Path) -> PathBuf {
    let set = root.join("flowers");
    for class in ["a", "b"] {
        std::fs::create_dir_all(set.join(class)).unwrap();
    }
    for i in 0..5 {
        std::fs::write(set.join(format!("a/{i}.png")), png_bytes(&noise(16, i))).unwrap();
        std::fs::write(set.join(format!("b/{i}.jpg")), jpeg_bytes(&noise(16, 100 + i))).unwrap();
    }
    set
}

/// `train --data flowers` on `root`, expecting a refusal with each needle and no output folder.
fn flowers_refused(root: &Path, extra: &[&str], needles: &[&str]) -> String {
    let out = root.join("run");
    let mut args = train_args(root, &out, &["--data", "flowers"]);
    args.extend(extra.iter().map(OsString::from));
    let stderr = assert_refused(&saliency(root, &args), needles);
    assert!(!out.exists(), "no output folder after a data error");
    stderr
}

/// A valid 1x1 PNG whose header claims `w` x `h` (CRC fixed, so only the size is wrong).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut png = png_bytes(&RgbImage::new(1, 1));
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&png[12..29]);
    png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    png
}

#[test]
fn item09_non_image_file_strict_via_cli_lenient_via_library() {
    let s = Scratch::new("non-image");
    let set = write_flowers(&s.0);
    let notes = set.join("a/notes.txt");
    std::fs::write(&notes, b"a flower list, not a picture").unwrap();
    let shown = notes.display().to_string();
    // Strict (the default): the file is named and the load stops.
    flowers_refused(&s.0, &[], &[&shown, "expected a decodable PNG or JPEG image", "not an image"]);
    // Lenient: skipped and counted. (`--lenient` exists on the CLI, but training on a 256 x 256
    // folder is slow for a test, so the library call it maps to is checked instead.)
    let opts = ImageFolderOptions {
        size: 8,
        strict: false,
        ..ImageFolderOptions::default()
    };
    let (ds, report) = load_image_folder(&set, &opts).unwrap();
    assert_eq!((ds.len(), report.loaded), (10, 10));
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].0, notes);
    assert!(report.skipped[0].1.contains("not an image"), "{:?}", report.skipped);
}

#[test]
fn item10_zero_byte_truncated_and_mislabeled_jpeg() {
    let s = Scratch::new("jpeg");
    let set = write_flowers(&s.0);
    let bad = set.join("b/bad.jpg");
    let shown = bad.display().to_string();

    std::fs::write(&bad, b"").unwrap();
    flowers_refused(&s.0, &[], &[&shown, "zero bytes"]);

    let jpeg = jpeg_bytes(&noise(64, 3));
    std::fs::write(&bad, &jpeg[..jpeg.len() / 2]).unwrap();
    flowers_refused(&s.0, &[], &[&shown, "corrupt image data", "truncated JPEG"]);
    std::fs::write(&bad, &jpeg[..200]).unwrap();
    flowers_refused(&s.0, &[], &[&shown, "expected a decodable PNG or JPEG image"]);

    // Text named .jpg: the content decides, and it is not an image.
    std::fs::write(&bad, b"<html>404 not found</html>").unwrap();
    flowers_refused(&s.0, &[], &[&shown, "not an image"]);

    // Decision: the format comes from the content, not the name, so a PNG named .jpg (and a
    // JPEG named .png) loads like any other image of its real format.
    std::fs::write(&bad, png_bytes(&noise(16, 9))).unwrap();
    std::fs::write(set.join("a/photo.png"), jpeg_bytes(&noise(16, 10))).unwrap();
    let opts = ImageFolderOptions {
        size: 8,
        ..ImageFolderOptions::default()
    };
    let (ds, report) = load_image_folder(&set, &opts).unwrap();
    assert_eq!((ds.len(), report.skipped.len()), (12, 0));
    // A decoder panic on hostile bytes is caught, reported and keeps stderr clean: see the
    // `decoder_panic_becomes_an_error_with_its_message` unit test in data/decode.rs (no input
    // known to panic the PNG or JPEG decoder is available to trigger it here).
}

#[test]
fn item11_decompression_bomb_is_refused() {
    let s = Scratch::new("bomb");
    let set = write_flowers(&s.0);
    let bomb = set.join("a/bomb.png");
    // 100000 x 100000 RGB would be 30 GB; the file is 70 bytes.
    std::fs::write(&bomb, png_claiming(100_000, 100_000)).unwrap();
    let shown = bomb.display().to_string();
    flowers_refused(&s.0, &[], &[&shown, "an image too large"]);
}

#[test]
fn item12_missing_data_folder_and_empty_class_folder() {
    let s = Scratch::new("missing");
    let gone = s.join("no-such-folder");
    // Fashion-MNIST: both places searched are listed, and the hint says only --data-dir was used.
    let out = s.join("run");
    let run = saliency(&s.0, &train_args(&gone, &out, &[]));
    let fm = gone.join("fashion-mnist").display().to_string();
    assert_refused(
        &run,
        &["Fashion-MNIST", "not found", &gone.display().to_string(), &fm, "--data-dir"],
    );
    assert!(!out.exists());
    // Image folders.
    let run = saliency(&s.0, &train_args(&gone, &out, &["--data", "flowers"]));
    assert_refused(&run, &["\"flowers\" not found", &gone.join("flowers").display().to_string()]);
    // A data folder with one class folder empty.
    let set = write_flowers(&s.0);
    std::fs::create_dir_all(set.join("c")).unwrap();
    let c = set.join("c").display().to_string();
    flowers_refused(&s.0, &[], &[&c, "at least one image file", "found an empty folder"]);
    // No class folders at all.
    let flat = Scratch::new("flat");
    std::fs::create_dir_all(flat.join("flowers")).unwrap();
    std::fs::write(flat.join("flowers/LICENSE.txt"), b"x").unwrap();
    flowers_refused(&flat.0, &[], &["one sub-folder per class", "no sub-folders"]);
    // A class asked for that does not exist.
    std::fs::remove_dir_all(set.join("c")).unwrap();
    flowers_refused(
        &s.0,
        &["--classes", "a,tulips"],
        &["a class folder named \"tulips\"", "only the classes a, b"],
    );
}

// ---------------------------------------------------------------------------------------------
// 13-16: checkpoints, through `saliency eval --checkpoint`

fn class_names(n: usize) -> Vec<String> {
    saliency::data::FASHION_MNIST_CLASS_NAMES[..n]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn deep_meta(classes: usize) -> ModelMeta {
    ModelMeta {
        model: ModelKind::Deep,
        dataset: "fashion-mnist".into(),
        input: [1, 28, 28],
        class_names: class_names(classes),
        seed: 0,
        step: 0,
        epoch: 1,
    }
}

/// A valid deep checkpoint for Fashion-MNIST at `path`.
fn write_good_checkpoint(path: &Path) {
    let model: Model<f32> = ModelKind::Deep.build([1, 28, 28], 10, 0).unwrap();
    save_model(path, &model, &deep_meta(10)).unwrap();
}

fn eval_args(ckpt: &Path, data: &Path) -> Vec<OsString> {
    vec![
        "eval".into(),
        "--checkpoint".into(),
        ckpt.into(),
        "--data-dir".into(),
        data.into(),
        "--no-download".into(),
        "--threads".into(),
        "1".into(),
    ]
}

/// Splits safetensors bytes into (header JSON, data section).
fn split_safetensors(bytes: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

fn join_safetensors(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let text = serde_json::to_vec(header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(data);
    out
}

/// The checkpoint checksum as documented on `checkpoint::CHECKSUM_KEY`: tensors in name order,
/// each framed by name length, name, rank and dimensions (u64 LE), then its f32 LE bytes.
fn payload_sha256(header: &serde_json::Value, data: &[u8]) -> String {
    let mut entries: Vec<(&String, &serde_json::Value)> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Sha256::new();
    for (name, info) in entries {
        let shape: Vec<u64> = info["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
        let off = &info["data_offsets"];
        let (start, end) = (off[0].as_u64().unwrap() as usize, off[1].as_u64().unwrap() as usize);
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((shape.len() as u64).to_le_bytes());
        for d in shape {
            h.update(d.to_le_bytes());
        }
        h.update(&data[start..end]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn item13_checkpoint_with_corrupt_header_or_offsets() {
    let s = Scratch::new("ckpt-header");
    let good = s.join("good.safetensors");
    write_good_checkpoint(&good);
    let bytes = std::fs::read(&good).unwrap();
    let bad = s.join("bad.safetensors");
    let shown = bad.display().to_string();
    let data = s.join("data");
    write_fashion(&data);
    // The intact file evaluates (the control for everything below).
    assert_ok(&saliency(&s.0, &eval_args(&good, &data)));

    let cases: Vec<(Vec<u8>, Vec<&str>)> = vec![
        // Cut inside the 8-byte length prefix.
        (bytes[..5].to_vec(), vec!["not a valid safetensors file", "8-byte little-endian header length", "a 5-byte file"]),
        // A length prefix larger than the file.
        (
            {
                let mut b = bytes.clone();
                b[..8].copy_from_slice(&(bytes.len() as u64 * 2).to_le_bytes());
                b
            },
            vec!["header length", "expected a header length of at most"],
        ),
        // A length prefix beyond the header cap.
        (
            {
                let mut b = bytes.clone();
                b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
                b
            },
            vec!["header length prefix says 18446744073709551615 bytes", "expected at most"],
        ),
        // Garbage where the JSON header should be.
        (
            {
                let mut b = bytes.clone();
                for x in &mut b[8..40] {
                    *x = b'#';
                }
                b
            },
            vec!["not a valid safetensors file", "a header that does not parse"],
        ),
        // Cut in the data section.
        (bytes[..bytes.len() - 1000].to_vec(), vec!["data offsets", "expected a range inside the"]),
    ];
    for (content, needles) in cases {
        std::fs::write(&bad, &content).unwrap();
        let mut all = vec![shown.as_str()];
        all.extend(needles);
        assert_refused(&saliency(&s.0, &eval_args(&bad, &data)), &all);
    }

    // Offsets rewritten to point past the data section, header otherwise valid.
    let (mut header, payload) = split_safetensors(&bytes);
    header["conv2.weight"]["data_offsets"] = serde_json::json!([0, 1u64 << 40]);
    std::fs::write(&bad, join_safetensors(&header, &payload)).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[&shown, "tensor `conv2.weight` declares data offsets [0, 1099511627776)"],
    );
    // Offsets that overlap another tensor's bytes.
    let (mut header, payload) = split_safetensors(&bytes);
    let first = header["conv1.weight"]["data_offsets"].clone();
    let len = first[1].as_u64().unwrap() - first[0].as_u64().unwrap();
    header["conv1.bias"]["data_offsets"] = serde_json::json!([first[0], first[0].as_u64().unwrap() + len.min(64)]);
    std::fs::write(&bad, join_safetensors(&header, &payload)).unwrap();
    assert_refused(&saliency(&s.0, &eval_args(&bad, &data)), &[&shown, "not a valid safetensors file"]);

    // A missing file.
    let gone = s.join("gone.safetensors");
    assert_refused(
        &saliency(&s.0, &eval_args(&gone, &data)),
        &[&gone.display().to_string(), "cannot read checkpoint", "No such file"],
    );
}

#[test]
fn item14_checkpoint_payload_checksum_mismatch() {
    let s = Scratch::new("ckpt-sum");
    let good = s.join("good.safetensors");
    write_good_checkpoint(&good);
    let mut bytes = std::fs::read(&good).unwrap();
    // Flip one bit in the last weight: still a finite float, so only the checksum can tell.
    let at = bytes.len() - 2;
    bytes[at] ^= 0x01;
    let bad = s.join("flipped.safetensors");
    std::fs::write(&bad, &bytes).unwrap();
    let data = s.join("data");
    write_fashion(&data);
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[&bad.display().to_string(), "payload checksum mismatch", "expected sha256", "found sha256", "corrupt"],
    );
}

#[test]
fn item15_checkpoint_of_another_model_or_shape() {
    let s = Scratch::new("ckpt-other");
    let data = s.join("data");
    write_fashion(&data);
    let good = s.join("good.safetensors");
    write_good_checkpoint(&good);
    let bad = s.join("other.safetensors");
    let shown = bad.display().to_string();

    // A tensor renamed, rewritten with a valid checksum.
    let mut ckpt: Checkpoint = checkpoint::load(&good).unwrap();
    ckpt.tensors[0].name = "features.0.weight".into();
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[&shown, "(model deep)", "do not match the expected layout", "missing: `conv1.weight` [16, 1, 3, 3]", "unexpected: `features.0.weight`"],
    );

    // A tensor reshaped (same values, other shape).
    let mut ckpt = checkpoint::load(&good).unwrap();
    let t = ckpt.tensors.iter_mut().find(|t| t.name == "conv1.weight").unwrap();
    t.shape = vec![16, 9];
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[&shown, "wrong shape: `conv1.weight` expected [16, 1, 3, 3], found [16, 9]"],
    );

    // Another model's name on deep's tensors.
    let mut ckpt = checkpoint::load(&good).unwrap();
    ckpt.metadata.insert("model".into(), "alexnet".into());
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(&saliency(&s.0, &eval_args(&bad, &data)), &[&shown, "(model alexnet)", "missing: `bn1.bias`"]);

    // An unknown model name and a bad input shape in the metadata.
    let mut ckpt = checkpoint::load(&good).unwrap();
    ckpt.metadata.insert("model".into(), "resnet".into());
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[&shown, "metadata 'model'", "expected deep, alexnet or medium", "found resnet"],
    );
    let mut ckpt = checkpoint::load(&good).unwrap();
    ckpt.metadata.insert("input_shape".into(), "3,100000,100000".into());
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[&shown, "metadata 'input_shape'", "H x W <= 262144", "found 3,100000,100000"],
    );

    // A consistent deep checkpoint for 2 classes: loads, but Fashion-MNIST has 10 classes, so
    // labels 2..9 would index past the model's outputs.
    let model: Model<f32> = ModelKind::Deep.build([1, 28, 28], 2, 0).unwrap();
    save_model(&bad, &model, &deep_meta(2)).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[&shown, "the model's classes are [\"T-shirt/top\", \"Trouser\"]", "fashion-mnist/test has classes"],
    );

    // A data set name the CLI does not know.
    let mut ckpt = checkpoint::load(&good).unwrap();
    ckpt.metadata.insert("dataset".into(), "cifar10".into());
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[&shown, "metadata 'dataset'", "expected fashion-mnist, flowers or flowers17", "found 'cifar10'"],
    );
}

#[test]
fn item16_checkpoint_with_nan_or_inf() {
    let s = Scratch::new("ckpt-nan");
    let data = s.join("data");
    write_fashion(&data);
    let good = s.join("good.safetensors");
    write_good_checkpoint(&good);
    let bytes = std::fs::read(&good).unwrap();
    let bad = s.join("nan.safetensors");
    for (value, shown_value) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf"), (f32::NEG_INFINITY, "-inf")] {
        // Patch element 5 of conv2.weight, then recompute the checksum so only the value is wrong.
        let (mut header, mut payload) = split_safetensors(&bytes);
        let start = header["conv2.weight"]["data_offsets"][0].as_u64().unwrap() as usize;
        payload[start + 5 * 4..start + 6 * 4].copy_from_slice(&value.to_le_bytes());
        header["__metadata__"]["payload_sha256"] = payload_sha256(&header, &payload).into();
        std::fs::write(&bad, join_safetensors(&header, &payload)).unwrap();
        assert_refused(
            &saliency(&s.0, &eval_args(&bad, &data)),
            &[
                &bad.display().to_string(),
                &format!("tensor `conv2.weight` holds {shown_value} at flat index 5"),
                "expected only finite values",
            ],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 17, 18, 23, 25: training options and the run folder

#[test]
fn item17_resume_with_a_different_configuration_needs_force() {
    let s = Scratch::new("resume");
    let data = s.join("data");
    write_fashion(&data);
    let out = s.join("run");
    assert_ok(&saliency(&s.0, &train_args(&data, &out, &[])));
    let state_before = std::fs::read(out.join("state.safetensors")).unwrap();

    // Another learning rate: refused, naming the setting, both values and --force.
    let run = saliency(&s.0, &train_args(&data, &out, &["--resume", "--epochs", "2", "--lr", "0.01"]));
    assert_refused(
        &run,
        &[
            "--resume",
            &out.join("state.safetensors").display().to_string(),
            "different configuration",
            "optimizer.lr: saved 0.001, requested 0.01",
            "--force",
        ],
    );
    assert_eq!(std::fs::read(out.join("state.safetensors")).unwrap(), state_before, "a refused resume writes nothing");

    // --force cannot turn a deep run into an alexnet one.
    let run = saliency(
        &s.0,
        &train_args(&data, &out, &["--resume", "--force", "--epochs", "2", "--model", "alexnet"]),
    );
    assert_refused(&run, &["--resume --force", "holds a deep network", "model: saved \"deep\", requested \"alexnet\""]);

    // With --force, another learning rate continues from epoch 1 and completes epoch 2.
    let run = saliency(&s.0, &train_args(&data, &out, &["--resume", "--force", "--epochs", "2", "--lr", "0.0005"]));
    let stderr = assert_ok(&run);
    assert!(stderr.contains("epoch   2:") && !stderr.contains("epoch   1:"), "{stderr}");
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "{metrics}");

    // Without a state file there is nothing to resume.
    let empty = s.join("empty-run");
    let run = saliency(&s.0, &train_args(&data, &empty, &["--resume"]));
    assert_refused(&run, &["--resume", &empty.join("state.safetensors").display().to_string(), "No such file"]);
}

#[test]
fn item18_nonsense_options_are_refused() {
    let s = Scratch::new("options");
    let data = s.join("data");
    write_fashion(&data);
    let out = s.join("run");
    let cases: &[(&[&str], &[&str])] = &[
        (&["--lr", "0"], &["--lr", "expected a positive finite learning rate", "found 0"]),
        (&["--lr=-0.1"], &["--lr", "found -0.1"]),
        (&["--lr", "NaN"], &["--lr", "found NaN"]),
        (&["--lr", "inf"], &["--lr", "found inf"]),
        (&["--lr", "fast"], &["--lr", "fast"]),
        (&["--batch-size", "0"], &["--batch-size", "expected at least 1, found 0"]),
        (&["--epochs", "0"], &["--epochs", "expected at least 1, found 0"]),
        (&["--threads", "0"], &["--threads", "expected at least 1, found 0"]),
        (&["--model", "resnet"], &["--model", "unknown model 'resnet'", "deep, alexnet, medium"]),
        (&["--data", "cifar10"], &["--data", "expected fashion-mnist, flowers or flowers17", "found 'cifar10'"]),
        (&["--optimizer", "rmsprop"], &["--optimizer", "expected adam or sgd", "found 'rmsprop'"]),
        (&["--momentum", "1.5", "--optimizer", "sgd"], &["--momentum", "found 1.5"]),
        (&["--decay", "0.1"], &["--decay applies to --optimizer sgd only"]),
        (&["--l2=-1"], &["--l2", "found -1"]),
        (&["--lr-schedule", "3"], &["--lr-schedule", "expected EPOCH:LR", "found '3'"]),
        (&["--lr-schedule", "2:0"], &["--lr-schedule", "expected positive learning rates"]),
        (&["--limit-train", "0"], &["--limit-train", "expected at least 1, found 0"]),
        (&["--test-fraction", "1.5"], &["--test-fraction", "found 1.5"]),
        (&["--max-shift", "18446744073709551615"], &["--max-shift", "fewer pixels than the image side (28)"]),
        (&["--validation", "64"], &["--validation", "between 1 and 63", "found 64"]),
        (&["--classes", "a,b"], &["--classes and --gray apply to image folders"]),
    ];
    for (extra, needles) in cases {
        let run = saliency(&s.0, &train_args(&data, &out, extra));
        let stderr = assert_refused(&run, needles);
        assert!(!out.exists(), "{extra:?} left an output folder; stderr:\n{stderr}");
    }
    // Other subcommands check their options too.
    let ckpt = s.join("model.safetensors");
    write_good_checkpoint(&ckpt);
    let mut args = eval_args(&ckpt, &data);
    args.extend(["--limit".into(), "0".into()]);
    assert_refused(&saliency(&s.0, &args), &["--limit", "expected at least 1, found 0"]);
    let mut args = eval_args(&ckpt, &data);
    args[7] = "0".into();
    assert_refused(&saliency(&s.0, &args), &["--threads", "expected at least 1, found 0"]);
    assert_refused(&saliency(&s.0, &["models", "--model", "vgg"]), &["--model", "unknown model 'vgg'"]);
}

#[test]
fn item23_non_finite_loss_stops_and_keeps_the_last_good_checkpoint() {
    let s = Scratch::new("nan-loss");
    let data = s.join("data");
    write_fashion(&data);

    // From scratch with lr 1e30: stops in the first epoch, names the step and the layer, and
    // writes no checkpoint (only config.json, complete).
    let out = s.join("fresh");
    let run = saliency(&s.0, &train_args(&data, &out, &["--lr", "1e30"]));
    let stderr = assert_refused(&run, &["training stopped at step", "(epoch 1, minibatch", "is not finite", "no checkpoint was written"]);
    assert!(
        stderr.contains("the output of layer") || stderr.contains("the gradient of") || stderr.contains("parameter"),
        "the message names where the non-finite value appeared: {stderr}"
    );
    assert!(!out.join("model.safetensors").exists() && !out.join("state.safetensors").exists());
    assert!(temp_files(&out).is_empty(), "{:?}", temp_files(&out));

    // After a good first epoch, a resumed run with lr 1e30 stops and leaves epoch 1's files.
    let out = s.join("resumed");
    assert_ok(&saliency(&s.0, &train_args(&data, &out, &[])));
    let model_before = std::fs::read(out.join("model.safetensors")).unwrap();
    let state_before = std::fs::read(out.join("state.safetensors")).unwrap();
    let run = saliency(&s.0, &train_args(&data, &out, &["--resume", "--force", "--epochs", "3", "--lr", "1e30"]));
    assert_refused(&run, &["training stopped at step", "(epoch 2,", "is not finite", "as of epoch 1, left unchanged"]);
    assert_eq!(std::fs::read(out.join("model.safetensors")).unwrap(), model_before);
    assert_eq!(std::fs::read(out.join("state.safetensors")).unwrap(), state_before);
    assert!(temp_files(&out).is_empty(), "{:?}", temp_files(&out));
    // ... and that checkpoint still evaluates.
    assert_ok(&saliency(&s.0, &eval_args(&out.join("model.safetensors"), &data)));
}

#[test]
fn item25_output_folder_that_cannot_be_written() {
    let s = Scratch::new("unwritable");
    let data = s.join("data");
    write_fashion(&data);
    // Tests run as root, for whom permission bits do not block writes; a path whose parent is a
    // regular file cannot be created by anyone.
    let file = s.join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let out = file.join("run");
    let run = saliency(&s.0, &train_args(&data, &out, &[]));
    assert_refused(&run, &[&out.display().to_string(), "cannot create the output folder", "Not a directory"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"not a folder");
    // --out naming an existing regular file.
    let run = saliency(&s.0, &train_args(&data, &file, &[]));
    assert_refused(&run, &[&file.display().to_string(), "cannot create the output folder"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"not a folder");
}
