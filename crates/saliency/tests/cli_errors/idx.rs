//! Items 1-8: IDX files that are short, mislabelled, of the wrong element type, rank or size,
//! or hold a label beyond the classes.

use super::*;

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
    train_with_bad_file(
        "empty-idx",
        TRAIN_LABELS,
        &[],
        &["at least 4 bytes", "0 bytes"],
    );
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
    std::fs::write(
        data.join(format!("{TEST_LABELS}.gz")),
        gzip(&labels_file(16)),
    )
    .unwrap();
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
        &[
            "element type",
            "expected 0x08 (unsigned byte)",
            "found 0x0d (f32)",
        ],
    );
}

#[test]
fn item04_idx_wrong_rank_or_swapped_files() {
    // Rank 2 where images need rank 3.
    train_with_bad_file(
        "rank2",
        TRAIN_IMAGES,
        &encode_idx_u8(&[64, 784], &vec![0; 64 * 784]),
        &[
            "number of dimensions",
            "expected 3 (images file)",
            "found 2",
        ],
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
    assert_refused(
        &run,
        &[
            TEST_IMAGES,
            "expected 3 (images file)",
            "found 1",
            "swapped",
        ],
    );
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
        &[
            "sizes",
            "sizes look little-endian: IDX sizes are big-endian",
        ],
    );
    // Big-endian sizes larger than the file, with no little-endian reading that fits.
    train_with_bad_file(
        "beyond",
        TEST_IMAGES,
        &encode_idx_u8(&[100_000, 28, 28], &vec![0; 16 * 784]),
        &[
            "payload length",
            "expected 78400000 bytes",
            "found 12544 bytes",
        ],
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
        &[
            "payload length",
            "expected 50176 bytes",
            "found 50076 bytes",
        ],
    );
    let mut long = labels_file(64);
    long.extend_from_slice(&[1, 2, 3]);
    train_with_bad_file(
        "payload-long",
        TRAIN_LABELS,
        &long,
        &[
            "payload length",
            "expected 64 bytes",
            "found 67 bytes",
            "longer than its header says",
        ],
    );
}

#[test]
fn item07_idx_not_28x28_or_counts_differ() {
    train_with_bad_file(
        "27x28",
        TRAIN_IMAGES,
        &encode_idx_u8(&[64, 27, 28], &vec![0; 64 * 27 * 28]),
        &[
            "image size (rows x cols)",
            "expected 28 x 28",
            "found 27 x 28",
        ],
    );
    let s = Scratch::new("counts");
    let data = s.join("data");
    write_fashion(&data);
    std::fs::write(data.join(TRAIN_LABELS), labels_file(63)).unwrap();
    let out = s.join("run");
    let run = saliency(&s.0, &train_args(&data, &out, &[]));
    assert_refused(
        &run,
        &[
            TRAIN_IMAGES,
            TRAIN_LABELS,
            "holds 64 images",
            "holds 63 labels",
            "expected the same count",
        ],
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
    train_with_bad_file(
        "label-255",
        TEST_LABELS,
        &encode_idx_u8(&[16], &labels),
        &["found 255"],
    );
}
