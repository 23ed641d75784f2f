//! Fuzz target: `decode_image_bytes` (the image-folder decoder, under its limits) on arbitrary
//! bytes.
//!
//! The decoder's panic guard turns a panic into an error that says "decoder panic"; this target
//! re-raises it so libFuzzer records the input, because a caught panic is still a decoder bug
//! worth a regression test.

#![no_main]

use libfuzzer_sys::fuzz_target;
use saliency::data::{decode_image_bytes, ImageFolderOptions};

fuzz_target!(|data: &[u8]| {
    // The first byte picks gray or RGB and a small output side; the rest is the file.
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let opts = ImageFolderOptions {
        size: 1 + usize::from(mode >> 1) % 16,
        gray: mode & 1 == 1,
        // Tighter than the defaults so a fuzzed header cannot make each run allocate hundreds
        // of megabytes; the logic checked is the same.
        max_width: 2048,
        max_height: 2048,
        max_alloc: 64 * 1024 * 1024,
        ..ImageFolderOptions::default()
    };
    let channels = if opts.gray { 1 } else { 3 };
    let mut out = vec![f32::NAN; channels * opts.size * opts.size];
    match decode_image_bytes(bytes, &opts, &mut out) {
        Ok(()) => assert!(
            out.iter().all(|v| (0.0..=1.0).contains(v)),
            "decoded pixels must lie in [0, 1]"
        ),
        Err(reason) => assert!(!reason.contains("decoder panic"), "{reason}"),
    }
});
