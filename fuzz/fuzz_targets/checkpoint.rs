//! Fuzz target: checkpoint bytes through `checkpoint::from_bytes` and
//! `model_io::model_from_checkpoint`.
//!
//! Two readings of each input, so both layers are reached:
//! 1. the bytes as a checkpoint file; whatever is accepted must write back to the same checkpoint
//!    and is then turned into a model;
//! 2. the bytes, split at zero bytes, as the values of the model metadata keys of a checkpoint
//!    written with a valid checksum (random mutations of a file almost never keep its checksum,
//!    so without this the metadata checks of `model_from_checkpoint` would rarely run).

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use saliency::checkpoint::{from_bytes, to_bytes, Checkpoint, NamedTensor};
use saliency::model_io::model_from_checkpoint;

const KEYS: [&str; 7] = [
    "model",
    "dataset",
    "input_shape",
    "classes",
    "seed",
    "step",
    "epoch",
];

fuzz_target!(|data: &[u8]| {
    if let Ok(ckpt) = from_bytes("fuzz", data) {
        let bytes = to_bytes(&ckpt).expect("an accepted checkpoint can be written again");
        let again = from_bytes("fuzz-again", &bytes).expect("and read again");
        assert_eq!(again, ckpt);
        let _ = model_from_checkpoint("fuzz", &ckpt);
    }

    let mut metadata = BTreeMap::new();
    for (key, value) in KEYS.iter().zip(data.split(|&b| b == 0)) {
        // A value of exactly "-" leaves the key out, so missing keys are explored too.
        if value != b"-" {
            metadata.insert(key.to_string(), String::from_utf8_lossy(value).into_owned());
        }
    }
    let tensors = vec![NamedTensor {
        name: "conv1.bias".into(),
        shape: vec![2],
        data: vec![0.5, -0.5],
    }];
    let ckpt = Checkpoint { tensors, metadata };
    if let Ok(bytes) = to_bytes(&ckpt) {
        let read = from_bytes("fuzz-meta", &bytes).expect("a written checkpoint reads back");
        assert_eq!(read, ckpt);
        let _ = model_from_checkpoint("fuzz-meta", &read);
    }
});
