//! Decoding one image file for `image_folder`: PNG or JPEG under size limits, behind a panic guard, to (C, H, W) floats.

use std::cell::{Cell, RefCell};
use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;

use image::imageops::FilterType;
use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits};

use crate::data::image_folder::ImageFolderOptions;

/// Reads, decodes and resizes one file into `out` (C, size, size); the error says why not.
pub(crate) fn decode_into(
    path: &Path,
    opts: &ImageFolderOptions,
    out: &mut [f32],
) -> Result<(), String> {
    let mut pixels = vec![0u8; out.len()];
    decode_pixels(path, opts, &mut pixels)?;
    to_unit_floats(&pixels, out);
    Ok(())
}

/// Reads, decodes and resizes one file into `out` as planar (C, size, size) 8-bit pixels: what
/// [`decode_into`] scales to [0, 1], a quarter of its memory, so a cache of these serves the same
/// floats bit for bit.
pub(crate) fn decode_pixels(
    path: &Path,
    opts: &ImageFolderOptions,
    out: &mut [u8],
) -> Result<(), String> {
    let bytes = read_limited(path, opts)?;
    let image = decode_guarded(&bytes, opts, out.len())?;
    write_chw(&image, opts, out);
    Ok(())
}

/// Reads and decodes one file without resizing it: the check that [`decode_pixels`] would
/// succeed, for an image no cache will keep.
pub(crate) fn check_file(path: &Path, opts: &ImageFolderOptions) -> Result<(), String> {
    let bytes = read_limited(path, opts)?;
    let len = pixel_len(opts).unwrap_or(0);
    decode_guarded(&bytes, opts, len).map(drop)
}

/// 8-bit pixels to floats in [0, 1] (`v / 255`, exact and the same on every machine).
pub(crate) fn to_unit_floats(pixels: &[u8], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(pixels) {
        *o = f32::from(v) / 255.0;
    }
}

/// The file's bytes, refused when empty or above `opts.max_file_bytes`.
fn read_limited(path: &Path, opts: &ImageFolderOptions) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("an unreadable file ({e})"))?
        .len();
    if len == 0 {
        return Err("an empty file (zero bytes)".into());
    }
    if len > opts.max_file_bytes {
        return Err(format!(
            "a file too large ({len} bytes; the limit is {} bytes)",
            opts.max_file_bytes
        ));
    }
    std::fs::read(path).map_err(|e| format!("an unreadable file ({e})"))
}

/// Values in one output image: C * size * size, `None` on overflow.
fn pixel_len(opts: &ImageFolderOptions) -> Option<usize> {
    let channels = if opts.gray { 1 } else { 3 };
    opts.size
        .checked_mul(opts.size)
        .and_then(|n| n.checked_mul(channels))
}

/// Checks the output length and decodes `bytes` behind the panic guard.
fn decode_guarded(
    bytes: &[u8],
    opts: &ImageFolderOptions,
    out_len: usize,
) -> Result<DynamicImage, String> {
    let channels = if opts.gray { 1 } else { 3 };
    if opts.size == 0 || pixel_len(opts) != Some(out_len) {
        return Err(format!(
            "a call with an output of {out_len} values for size {} and {channels} channel(s)",
            opts.size
        ));
    }
    if bytes.is_empty() {
        return Err("an empty file (zero bytes)".into());
    }
    // A decoder bug on hostile input must not take the whole load down.
    quietly_catch(|| decode_bytes(bytes, opts)).unwrap_or_else(|message| {
        Err(format!(
            "data that made the decoder panic (corrupt image; {message})"
        ))
    })
}

/// Decodes one image file's content (PNG or JPEG, whatever its name says) under the limits of
/// `opts`, resized to `opts.size` square, into `out` as (C, size, size) floats in [0, 1]; the
/// error says why not. This is what [`load_image_folder`](super::load_image_folder) does with
/// each file once read; it is public so the decoder can be fuzzed.
///
/// A panic inside the image decoder is caught and returned as an error whose text contains
/// "decoder panic", without the panic message reaching stderr.
pub fn decode_image_bytes(
    bytes: &[u8],
    opts: &ImageFolderOptions,
    out: &mut [f32],
) -> Result<(), String> {
    let image = decode_guarded(bytes, opts, out.len())?;
    let mut pixels = vec![0u8; out.len()];
    write_chw(&image, opts, &mut pixels);
    to_unit_floats(&pixels, out);
    Ok(())
}

thread_local! {
    /// True while this thread runs a decoder under [`quietly_catch`].
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// The message of a panic caught by [`quietly_catch`] on this thread.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning a panic into `Err(message)`. The process's panic hook is wrapped once so
/// that a panic on a thread inside `quietly_catch` is recorded instead of printed; panics
/// anywhere else still reach the previous hook unchanged.
fn quietly_catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    static WRAP_HOOK: Once = Once::new();
    WRAP_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                let payload = info.payload();
                let text = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                let place = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                CAUGHT.with(|c| *c.borrow_mut() = Some(format!("{text}{place}")));
            } else {
                previous(info);
            }
        }));
    });
    let was = CATCHING.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    result.map_err(|_| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| "no message".into())
    })
}

/// Decodes PNG or JPEG bytes under the size limits of `opts`.
fn decode_bytes(bytes: &[u8], opts: &ImageFolderOptions) -> Result<DynamicImage, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("an unreadable file ({e})"))?;
    match reader.format() {
        None => return Err("a file that is not an image (unknown format)".into()),
        Some(ImageFormat::Jpeg) => check_jpeg_complete(bytes)?,
        Some(_) => {}
    }
    // Limits are checked against the header before the pixel buffer is allocated; this is what
    // refuses a small file that claims a huge image.
    let mut limits = Limits::default();
    limits.max_image_width = Some(opts.max_width);
    limits.max_image_height = Some(opts.max_height);
    limits.max_alloc = Some(opts.max_alloc);
    reader.limits(limits);
    reader.decode().map_err(|e| {
        let kind = match &e {
            ImageError::Limits(_) => "an image too large",
            ImageError::Decoding(_) => "corrupt image data",
            ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                "corrupt image data (cut short)"
            }
            ImageError::Unsupported(_) => "an unsupported image format",
            _ => "an unreadable image",
        };
        format!("{kind} ({e})")
    })
}

/// Refuses a JPEG cut short: the decoder fills missing image data with gray and reports no
/// error, so a truncated download would otherwise load as a half-gray photo.
///
/// Walks the header segments to the first start-of-scan (FF DA) and requires an end-of-image
/// marker (FF D9) after it; inside the scan data an FF byte is always followed by 00 or a restart
/// code, so FF D9 there can only be the real end. Header damage is left to the decoder.
fn check_jpeg_complete(bytes: &[u8]) -> Result<(), String> {
    let mut i = 2; // past the start-of-image marker FF D8
    let scan_start = loop {
        if i + 4 > bytes.len() || bytes[i] != 0xFF {
            return Ok(());
        }
        match bytes[i + 1] {
            0xFF => i += 1,               // fill byte before a marker
            0xDA => break i,              // start of scan
            0x01 | 0xD0..=0xD7 => i += 2, // markers without a length
            _ => i += 2 + usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]])),
        }
    };
    if bytes[scan_start..].windows(2).any(|w| w == [0xFF, 0xD9]) {
        Ok(())
    } else {
        Err(
            "corrupt image data (a truncated JPEG: no end-of-image marker after the scan data)"
                .into(),
        )
    }
}

/// Converts to RGB or luma, resizes to `size` x `size` and writes planar (C, H, W) 8-bit pixels.
///
/// Resizing happens on 8-bit pixels, as PIL and Keras do in the study's scripts.
fn write_chw(image: &DynamicImage, opts: &ImageFolderOptions, out: &mut [u8]) {
    let side = opts.size as u32;
    let hw = opts.size * opts.size;
    if opts.gray {
        let mut g = image.to_luma8();
        if g.dimensions() != (side, side) {
            g = image::imageops::resize(&g, side, side, FilterType::Triangle);
        }
        out.copy_from_slice(g.as_raw());
    } else {
        let mut rgb = image.to_rgb8();
        if rgb.dimensions() != (side, side) {
            rgb = image::imageops::resize(&rgb, side, side, FilterType::Triangle);
        }
        // Interleaved HWC in, planar CHW out.
        for (p, px) in rgb.as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * hw + p] = px[c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_completeness_check() {
        let real = std::fs::read(
            crate::data::test_data_dir()
                .join("flowers/tulips")
                .read_dir()
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
        )
        .unwrap();
        assert_eq!(check_jpeg_complete(&real), Ok(()));
        // Cut inside the scan data: no end marker after the start of scan.
        let m = check_jpeg_complete(&real[..real.len() - 10]).unwrap_err();
        assert!(m.contains("truncated JPEG"), "{m}");
        // Cut inside the header: left to the decoder, which reports it.
        assert_eq!(check_jpeg_complete(&real[..20]), Ok(()));
        let m = decode_bytes(&real[..20], &ImageFolderOptions::default()).unwrap_err();
        assert!(m.contains("corrupt") || m.contains("unreadable"), "{m}");
    }

    #[test]
    fn decoder_panic_becomes_an_error_with_its_message() {
        let r: Result<(), String> = quietly_catch(|| panic!("bad huffman table"));
        let m = r.unwrap_err();
        assert!(
            m.contains("bad huffman table") && m.contains("decode.rs"),
            "{m}"
        );
        assert_eq!(quietly_catch(|| 7), Ok(7));
        assert!(!CATCHING.with(Cell::get), "the flag is reset after a catch");
    }

    #[test]
    fn bytes_api_checks_the_output_length_and_empty_input() {
        let opts = ImageFolderOptions {
            size: 2,
            ..ImageFolderOptions::default()
        };
        let m = decode_image_bytes(b"x", &opts, &mut [0.0; 5]).unwrap_err();
        assert!(m.contains("5 values"), "{m}");
        let m = decode_image_bytes(b"", &opts, &mut [0.0; 12]).unwrap_err();
        assert!(m.contains("zero bytes"), "{m}");
        let m = decode_image_bytes(b"plain text", &opts, &mut [0.0; 12]).unwrap_err();
        assert!(m.contains("not an image"), "{m}");
    }

    #[test]
    fn zero_byte_file_is_named_as_such() {
        let p =
            std::env::temp_dir().join(format!("saliency-decode-empty-{}.png", std::process::id()));
        std::fs::write(&p, b"").unwrap();
        let m = decode_into(&p, &ImageFolderOptions::default(), &mut []).unwrap_err();
        assert!(m.contains("zero bytes"), "{m}");
        std::fs::remove_file(&p).unwrap();
    }
}
