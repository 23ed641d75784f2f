//! Fuzz target: `parse_idx_images` on arbitrary bytes never panics, and what it accepts is
//! consistent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use saliency::data::idx::parse_idx_images;

fuzz_target!(|data: &[u8]| {
    if let Ok(images) = parse_idx_images("fuzz", data) {
        // Accepted: the header's sizes describe exactly the payload that follows it.
        let n = images.count * images.rows * images.cols;
        assert_eq!(images.pixels.len(), n);
        assert_eq!(data.len(), 16 + n);
        assert_eq!(&data[16..], &images.pixels[..]);
    }
});
