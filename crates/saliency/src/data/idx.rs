//! Strict IDX reader (the MNIST file format), raw or gzip, that checks every header field before allocating.
//!
//! Layout: bytes 0-1 are zero, byte 2 is the element type (0x08 = u8), byte 3 the number of
//! dimensions; then one big-endian u32 size per dimension; then the elements, row-major.

use std::io::Read;
use std::path::Path;

use byteorder::{BigEndian, ByteOrder, LittleEndian};
use flate2::read::MultiGzDecoder;

use crate::data::error::DataError;

/// Largest decompressed (or raw) IDX file accepted: 256 MiB, over 5 times Fashion-MNIST's train
/// images (47 MB), so a gzip bomb is refused before it fills memory.
pub const MAX_IDX_BYTES: u64 = 256 * 1024 * 1024;

/// The two bytes every gzip stream starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The element type code for unsigned bytes, the only type this reader accepts.
const TYPE_U8: u8 = 0x08;

/// A parsed rank-3 IDX file: `count` images of `rows` x `cols` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows (height) of one image.
    pub rows: usize,
    /// Columns (width) of one image.
    pub cols: usize,
    /// `count * rows * cols` pixels, row-major (N, H, W).
    pub pixels: Vec<u8>,
}

/// Reads an IDX file from disk, decompressing it when it starts with the gzip magic `1f 8b`.
///
/// Both the file and its decompressed content are capped at [`MAX_IDX_BYTES`].
pub fn read_idx_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| DataError::io("reading", path, e))?;
    if meta.len() > MAX_IDX_BYTES {
        return Err(DataError::format(
            &shown,
            "file size",
            format!("at most {MAX_IDX_BYTES} bytes"),
            format!("{} bytes", meta.len()),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io("reading", path, e))?;
    if bytes.starts_with(&GZIP_MAGIC) {
        gunzip_capped(&shown, &bytes, MAX_IDX_BYTES)
    } else {
        Ok(bytes)
    }
}

/// Decompresses gzip `bytes`, refusing output longer than `cap` bytes.
///
/// `MultiGzDecoder` because a gzip file may hold several members (e.g. after `cat a.gz b.gz`).
pub fn gunzip_capped(source: &str, bytes: &[u8], cap: u64) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    // Read one byte past the cap: if it arrives, the content is too long.
    let mut reader = MultiGzDecoder::new(bytes).take(cap.saturating_add(1));
    reader.read_to_end(&mut out).map_err(|e| {
        DataError::format(
            source,
            "gzip stream",
            "a complete, valid gzip stream",
            format!("a decoding error: {e}"),
        )
    })?;
    if out.len() as u64 > cap {
        return Err(DataError::format_hint(
            source,
            "decompressed size",
            format!("at most {cap} bytes"),
            format!("more than {cap} bytes"),
            "refused as a possible gzip bomb",
        ));
    }
    Ok(out)
}

/// Parses a rank-3 u8 IDX file (images). `source` names the file in errors.
pub fn parse_idx_images(source: &str, bytes: &[u8]) -> Result<IdxImages, DataError> {
    let (dims, payload) = parse_checked(source, bytes, 3)?;
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels: payload.to_vec(),
    })
}

/// Parses a rank-1 u8 IDX file (labels). `source` names the file in errors.
pub fn parse_idx_labels(source: &str, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    let (_dims, payload) = parse_checked(source, bytes, 1)?;
    Ok(payload.to_vec())
}

/// Checks the whole header against `bytes` and returns the sizes and the payload slice.
///
/// Nothing is allocated here: the caller copies `payload`, whose length is then known to equal
/// the product of the sizes.
fn parse_checked<'a>(
    source: &str,
    bytes: &'a [u8],
    want_ndims: usize,
) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let kind = if want_ndims == 3 { "images" } else { "labels" };
    if bytes.len() < 4 {
        return Err(DataError::format(
            source,
            "header (magic number)",
            "at least 4 bytes",
            format!("a file of {} bytes", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        // Only reachable for gzip data when the caller skipped `read_idx_file`'s
        // decompression or the file was gzipped twice.
        let hint = if bytes[..2] == GZIP_MAGIC {
            "looks like gzip data: decompress it first (or it is gzipped twice)"
        } else {
            ""
        };
        return Err(DataError::format_hint(
            source,
            "magic bytes 0-1",
            "00 00",
            format!("{:02x} {:02x}", bytes[0], bytes[1]),
            hint,
        ));
    }
    if bytes[2] != TYPE_U8 {
        return Err(DataError::format(
            source,
            "magic byte 2 (element type)",
            "0x08 (unsigned byte)",
            format!("0x{:02x} ({})", bytes[2], type_name(bytes[2])),
        ));
    }
    let ndims = bytes[3] as usize;
    if ndims != want_ndims {
        // An images file has 3 dimensions, a labels file 1: the other count means the two were swapped.
        let hint = match (want_ndims, ndims) {
            (3, 1) => "this looks like a labels file: were the images and labels files swapped?",
            (1, 3) => "this looks like an images file: were the images and labels files swapped?",
            _ => "",
        };
        return Err(DataError::format_hint(
            source,
            "magic byte 3 (number of dimensions)",
            format!("{want_ndims} ({kind} file)"),
            ndims.to_string(),
            hint,
        ));
    }
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(DataError::format(
            source,
            "header",
            format!("{header_len} bytes (magic and {ndims} sizes)"),
            format!("a file of {} bytes", bytes.len()),
        ));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|d| BigEndian::read_u32(&bytes[4 + 4 * d..8 + 4 * d]) as usize)
        .collect();
    let payload = &bytes[header_len..];
    let shown_dims = dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" x ");
    let Some(need) = checked_product(&dims) else {
        return Err(DataError::format_hint(
            source,
            "sizes",
            "a product that fits in memory",
            format!("{shown_dims}, whose product overflows"),
            little_endian_hint(bytes, ndims, payload.len()),
        ));
    };
    if need > payload.len() {
        return Err(DataError::format_hint(
            source,
            "payload length",
            format!("{need} bytes (sizes {shown_dims})"),
            format!("{} bytes", payload.len()),
            little_endian_hint(bytes, ndims, payload.len()),
        ));
    }
    if need < payload.len() {
        return Err(DataError::format_hint(
            source,
            "payload length",
            format!("{need} bytes (sizes {shown_dims})"),
            format!("{} bytes", payload.len()),
            "the file is longer than its header says: trailing data or a wrong header",
        ));
    }
    Ok((dims, payload))
}

/// The product of `dims`, or `None` on overflow.
fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// A hint when the sizes read little-endian would fit the payload: the writer used the wrong byte order.
fn little_endian_hint(bytes: &[u8], ndims: usize, payload_len: usize) -> &'static str {
    let le: Vec<usize> = (0..ndims)
        .map(|d| LittleEndian::read_u32(&bytes[4 + 4 * d..8 + 4 * d]) as usize)
        .collect();
    match checked_product(&le) {
        Some(n) if n <= payload_len => "sizes look little-endian: IDX sizes are big-endian",
        _ => "",
    }
}

/// The IDX name of an element type code, for error messages.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "not an IDX type",
    }
}

/// Builds an IDX file of u8 elements (used by tests and tools that write small fixtures).
pub fn encode_idx_u8(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, TYPE_U8, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err_text<T: std::fmt::Debug>(r: Result<T, DataError>) -> String {
        r.expect_err("expected an error").to_string()
    }

    fn assert_has(msg: &str, parts: &[&str]) {
        for p in parts {
            assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
        }
    }

    #[test]
    fn round_trip_small_images_and_labels() {
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let file = encode_idx_u8(&[2, 3, 4], &pixels);
        let img = parse_idx_images("x", &file).unwrap();
        assert_eq!((img.count, img.rows, img.cols), (2, 3, 4));
        assert_eq!(img.pixels, pixels);
        let labels = parse_idx_labels("y", &encode_idx_u8(&[3], &[7, 0, 9])).unwrap();
        assert_eq!(labels, vec![7, 0, 9]);
        // Zero images is a valid, empty file.
        assert_eq!(
            parse_idx_images("z", &encode_idx_u8(&[0, 28, 28], &[]))
                .unwrap()
                .count,
            0
        );
    }

    #[test]
    fn shorter_than_magic() {
        let m = err_text(parse_idx_images("/d/short", &[0, 0]));
        assert_has(&m, &["/d/short", "magic", "at least 4 bytes", "2 bytes"]);
    }

    #[test]
    fn shorter_than_header() {
        let m = err_text(parse_idx_images("/d/f", &[0, 0, 8, 3, 0, 0, 0, 1]));
        assert_has(&m, &["/d/f", "header", "16 bytes", "8 bytes"]);
        let m = err_text(parse_idx_labels("/d/l", &[0, 0, 8, 1, 0]));
        assert_has(&m, &["/d/l", "header", "8 bytes", "5 bytes"]);
    }

    #[test]
    fn nonzero_magic_and_gzip_hint() {
        let m = err_text(parse_idx_labels("/d/l", &[0x12, 0x34, 8, 1, 0, 0, 0, 0]));
        assert_has(&m, &["/d/l", "magic bytes 0-1", "00 00", "12 34"]);
        assert!(!m.contains("gzip"), "{m}");
        let m = err_text(parse_idx_labels("/d/l.gz", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]));
        assert_has(&m, &["/d/l.gz", "1f 8b", "looks like gzip data"]);
    }

    #[test]
    fn element_type_must_be_u8() {
        let mut f = encode_idx_u8(&[1], &[0]);
        f[2] = 0x0D;
        let m = err_text(parse_idx_labels("/d/f32", &f));
        assert_has(&m, &["/d/f32", "element type", "0x08", "0x0d", "f32"]);
    }

    #[test]
    fn swapped_images_and_labels_are_named() {
        let labels = encode_idx_u8(&[2], &[1, 2]);
        let m = err_text(parse_idx_images("/d/train-labels", &labels));
        assert_has(
            &m,
            &[
                "/d/train-labels",
                "number of dimensions",
                "expected 3",
                "found 1",
                "swapped",
            ],
        );
        let images = encode_idx_u8(&[1, 2, 2], &[0; 4]);
        let m = err_text(parse_idx_labels("/d/train-images", &images));
        assert_has(&m, &["/d/train-images", "expected 1", "found 3", "swapped"]);
        let rank2 = encode_idx_u8(&[2, 2], &[0; 4]);
        let m = err_text(parse_idx_images("/d/r2", &rank2));
        assert!(!m.contains("swapped"), "{m}");
    }

    #[test]
    fn size_product_overflow() {
        let f = encode_idx_u8(&[u32::MAX, u32::MAX, u32::MAX], &[0; 4]);
        let m = err_text(parse_idx_images("/d/big", &f));
        assert_has(&m, &["/d/big", "sizes", "overflows", "4294967295"]);
    }

    #[test]
    fn sizes_beyond_file_with_little_endian_hint() {
        // Two 2x3 images written with little-endian sizes: big-endian they read 2^25 x 3*2^24 x ...
        let mut f = vec![0, 0, 8, 3];
        for d in [2u32, 2, 3] {
            f.extend_from_slice(&d.to_le_bytes());
        }
        f.extend_from_slice(&[0; 12]);
        let m = err_text(parse_idx_images("/d/le", &f));
        assert_has(&m, &["/d/le", "sizes look little-endian"]);
        let mut f = vec![0, 0, 8, 1];
        f.extend_from_slice(&5u32.to_le_bytes());
        f.extend_from_slice(&[0; 5]);
        let m = err_text(parse_idx_labels("/d/le-labels", &f));
        assert_has(
            &m,
            &[
                "/d/le-labels",
                "payload length",
                "83886080 bytes",
                "found 5 bytes",
                "sizes look little-endian",
            ],
        );
        // Big-endian sizes too large for the file, with no little-endian reading that fits.
        let f = encode_idx_u8(&[1000, 28, 28], &[0; 100]);
        let m = err_text(parse_idx_images("/d/trunc", &f));
        assert_has(
            &m,
            &[
                "/d/trunc",
                "payload length",
                "784000 bytes",
                "found 100 bytes",
            ],
        );
        assert!(!m.contains("little-endian"), "{m}");
    }

    #[test]
    fn payload_shorter_or_longer_than_header() {
        let f = encode_idx_u8(&[5], &[1, 2, 3]);
        let m = err_text(parse_idx_labels("/d/short", &f));
        assert_has(
            &m,
            &[
                "/d/short",
                "payload length",
                "expected 5 bytes",
                "found 3 bytes",
            ],
        );
        let f = encode_idx_u8(&[2], &[1, 2, 3]);
        let m = err_text(parse_idx_labels("/d/long", &f));
        assert_has(
            &m,
            &[
                "/d/long",
                "payload length",
                "expected 2 bytes",
                "found 3 bytes",
                "longer",
            ],
        );
    }

    #[test]
    fn gzip_round_trip_and_bomb_cap() {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let raw = encode_idx_u8(&[4], &[1, 2, 3, 4]);
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&raw).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip_capped("g", &gz, 1024).unwrap(), raw);
        // A stream whose output exceeds the cap is refused, whatever its compressed size.
        let m = err_text(gunzip_capped("/d/bomb.gz", &gz, 5));
        assert_has(
            &m,
            &[
                "/d/bomb.gz",
                "decompressed size",
                "at most 5 bytes",
                "gzip bomb",
            ],
        );
        let m = err_text(gunzip_capped("/d/cut.gz", &gz[..gz.len() - 6], 1024));
        assert_has(&m, &["/d/cut.gz", "gzip stream"]);
    }

    #[test]
    fn read_idx_file_plain_and_gz_and_missing() {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("saliency-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = encode_idx_u8(&[3], &[1, 2, 3]);
        std::fs::write(dir.join("l"), &raw).unwrap();
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&raw).unwrap();
        std::fs::write(dir.join("l.gz"), enc.finish().unwrap()).unwrap();
        assert_eq!(read_idx_file(&dir.join("l")).unwrap(), raw);
        assert_eq!(read_idx_file(&dir.join("l.gz")).unwrap(), raw);
        let missing = dir.join("nope");
        let m = err_text(read_idx_file(&missing));
        assert_has(&m, &[&missing.display().to_string(), "reading"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_idx_images("p", &bytes);
            let _ = parse_idx_labels("p", &bytes);
        }

        #[test]
        fn never_panics_on_mutated_headers(
            muts in proptest::collection::vec((0usize..16, any::<u8>()), 1..6),
            cut in 0usize..40,
        ) {
            let mut f = encode_idx_u8(&[2, 3, 4], &[7; 24]);
            for (i, v) in muts {
                f[i] = v;
            }
            f.truncate(f.len().saturating_sub(cut));
            let r = parse_idx_images("p", &f);
            // Whatever was accepted is self-consistent.
            if let Ok(img) = r {
                prop_assert_eq!(img.pixels.len(), img.count * img.rows * img.cols);
            }
            let mut l = encode_idx_u8(&[5], &[1; 5]);
            for (a, b) in l.iter_mut().zip(f.iter()).take(8) {
                *a ^= b;
            }
            if let Ok(v) = parse_idx_labels("p", &l) {
                prop_assert_eq!(v.len() + 8, l.len());
            }
        }
    }
}
