//! Items 9-12: image folders with non-images, broken or mislabelled JPEGs, decompression bombs,
//! and missing or empty folders.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbImage};
use saliency::data::{load_image_folder, ImageFolderOptions};

use super::*;

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
        std::fs::write(
            set.join(format!("b/{i}.jpg")),
            jpeg_bytes(&noise(16, 100 + i)),
        )
        .unwrap();
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
    flowers_refused(
        &s.0,
        &[],
        &[
            &shown,
            "expected a decodable PNG or JPEG image",
            "not an image",
        ],
    );
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
    assert!(
        report.skipped[0].1.contains("not an image"),
        "{:?}",
        report.skipped
    );
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
    flowers_refused(
        &s.0,
        &[],
        &[&shown, "expected a decodable PNG or JPEG image"],
    );

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
        &[
            "Fashion-MNIST",
            "not found",
            &gone.display().to_string(),
            &fm,
            "--data-dir",
        ],
    );
    assert!(!out.exists());
    // Image folders.
    let run = saliency(&s.0, &train_args(&gone, &out, &["--data", "flowers"]));
    assert_refused(
        &run,
        &[
            "\"flowers\" not found",
            &gone.join("flowers").display().to_string(),
        ],
    );
    // A data folder with one class folder empty.
    let set = write_flowers(&s.0);
    std::fs::create_dir_all(set.join("c")).unwrap();
    let c = set.join("c").display().to_string();
    flowers_refused(
        &s.0,
        &[],
        &[&c, "at least one image file", "found an empty folder"],
    );
    // No class folders at all.
    let flat = Scratch::new("flat");
    std::fs::create_dir_all(flat.join("flowers")).unwrap();
    std::fs::write(flat.join("flowers/LICENSE.txt"), b"x").unwrap();
    flowers_refused(
        &flat.0,
        &[],
        &["one sub-folder per class", "no sub-folders"],
    );
    // A class asked for that does not exist.
    std::fs::remove_dir_all(set.join("c")).unwrap();
    flowers_refused(
        &s.0,
        &["--classes", "a,tulips"],
        &["a class folder named \"tulips\"", "only the classes a, b"],
    );
}
