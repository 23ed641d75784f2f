//! Property tests: `from_bytes` never panics on hostile bytes, and random checkpoints round-trip.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use super::tests::{join, sample, split};
use super::*;

/// Numbers that stress offset and shape arithmetic: small, arbitrary, and next to `u64::MAX`.
fn awkward_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..64u64,
        any::<u64>(),
        (u64::MAX - 64)..=u64::MAX,
        Just(1 << 32),
        Just(1 << 62)
    ]
}

proptest! {
    #[test]
    fn from_bytes_never_panics_on_random_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = from_bytes("fuzz", &bytes);
    }

    #[test]
    fn from_bytes_never_panics_on_random_headers(
        header in "[{}\\[\\]\":,0-9a-zA-Z_ .-]{0,160}",
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&data);
        let _ = from_bytes("fuzz", &bytes);
    }

    #[test]
    fn from_bytes_never_panics_on_mutated_files(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        header_len in proptest::option::of(awkward_u64()),
    ) {
        let mut bytes = to_bytes(&sample()).unwrap();
        // Random edits rarely land in the 8-byte prefix, so the header length gets its own draw.
        if let Some(len) = header_len {
            bytes[..8].copy_from_slice(&len.to_le_bytes());
        }
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        let _ = from_bytes("fuzz", &bytes);
    }

    #[test]
    fn from_bytes_never_panics_on_mutated_tensor_entries(
        which in 0..4usize,
        start in awkward_u64(),
        end in awkward_u64(),
        shape in proptest::collection::vec(awkward_u64(), 0..4),
        dtype in prop::sample::select(vec!["F32", "F64", "U8", "BOOL", "I64", "F16", "X"]),
        mode in 0..3u8,
    ) {
        let (mut header, data) = split(&to_bytes(&sample()).unwrap());
        let name = ["conv1.weight", "conv1.bias", "fc3.weight", "fc3.bias"][which];
        let real_start = header[name]["data_offsets"][0].as_u64().unwrap();
        // Random offsets almost never pass the crate's contiguity check, so modes 1 and 2 keep the
        // real start and make shape, dtype and range agree: that is how an entry reaches the
        // crate's later arithmetic (an end near u64::MAX on the last tensor overflows there).
        let entry = match mode {
            0 => json!({"dtype": dtype, "shape": shape, "data_offsets": [start, end]}),
            1 => {
                let size = match dtype { "F64" | "I64" => 8, "F32" => 4, "F16" => 2, _ => 1 };
                let nbytes = shape.iter().try_fold(size, |acc: u64, &d| acc.checked_mul(d));
                let end = nbytes.and_then(|n| real_start.checked_add(n)).unwrap_or(end);
                json!({"dtype": dtype, "shape": shape, "data_offsets": [real_start, end]})
            }
            _ => {
                let end = end.max(real_start);
                let shape = [end - real_start];
                json!({"dtype": "U8", "shape": shape, "data_offsets": [real_start, end]})
            }
        };
        header[name] = entry;
        let _ = from_bytes("fuzz", &join(&header, &data));
    }

    #[test]
    fn random_checkpoints_round_trip(
        tensors in proptest::collection::btree_map(
            "[a-z][a-z0-9_.]{0,12}",
            proptest::collection::vec(1..4usize, 0..4)
                .prop_flat_map(|shape| {
                    let n = shape.iter().product::<usize>();
                    (Just(shape), proptest::collection::vec(-1.0e6f32..1.0e6, n))
                }),
            0..5,
        ),
    ) {
        let ckpt = Checkpoint {
            tensors: tensors
                .into_iter()
                .map(|(name, (shape, data))| NamedTensor { name, shape, data })
                .collect(),
            metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
        };
        prop_assert_eq!(from_bytes("mem", &to_bytes(&ckpt).unwrap()).unwrap(), ckpt);
    }
}
