//! Fuzz target: `parse_idx_labels` on arbitrary bytes never panics, and what it accepts is
//! consistent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use saliency::data::idx::parse_idx_labels;

fuzz_target!(|data: &[u8]| {
    if let Ok(labels) = parse_idx_labels("fuzz", data) {
        // Accepted: an 8-byte header whose one size is the number of label bytes after it.
        assert_eq!(data.len(), 8 + labels.len());
        assert_eq!(&data[8..], &labels[..]);
    }
});
