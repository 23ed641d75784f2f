//! Tests of the checkpoint file format: round trips, interop, corruption, atomic saves.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::PathBuf;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde_json::{json, Value};

use super::format::payload_sha256;
use super::*;

/// A small `deep`-style checkpoint, tensors deliberately not in name order, with values that
/// round-trip only if the bits do (negative zero, subnormal, extremes).
pub(super) fn sample() -> Checkpoint {
    let specials = [
        -0.0,
        f32::MIN_POSITIVE / 8.0,
        f32::MAX,
        f32::MIN,
        1.0e-30,
        -3.5,
    ];
    let tensor = |name: &str, shape: Vec<usize>, seed: f32| {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|i| {
                specials
                    .get(i)
                    .copied()
                    .unwrap_or((i as f32 * 0.37 + seed).sin())
            })
            .collect();
        NamedTensor {
            name: name.to_string(),
            shape,
            data,
        }
    };
    Checkpoint {
        tensors: vec![
            tensor("conv1.weight", vec![16, 1, 3, 3], 0.1),
            tensor("conv1.bias", vec![16], 0.2),
            tensor("fc3.weight", vec![10, 4], 0.3),
            tensor("fc3.bias", vec![10], 0.4),
        ],
        metadata: BTreeMap::from([
            ("model".to_string(), "deep".to_string()),
            ("epoch".to_string(), "3".to_string()),
        ]),
    }
}

/// A fresh folder for one test, so parallel tests never see each other's files.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saliency-ckpt-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Splits a file into its parsed JSON header and its data section.
pub(super) fn split(bytes: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&bytes[8..8 + n]).unwrap(),
        bytes[8 + n..].to_vec(),
    )
}

/// Reassembles a file from a header and a data section, fixing the length prefix.
pub(super) fn join(header: &Value, data: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

/// Recomputes `payload_sha256` the way the writer does, from the header's tensor entries.
fn reseal(header: &mut Value, data: &[u8]) {
    let entries: Vec<(String, Vec<usize>, (usize, usize))> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .map(|(k, v)| {
            let info: safetensors::tensor::TensorInfo = serde_json::from_value(v.clone()).unwrap();
            (k.clone(), info.shape, info.data_offsets)
        })
        .collect();
    let sum = payload_sha256(
        entries
            .iter()
            .map(|(n, s, (a, b))| (n.as_str(), s.as_slice(), &data[*a..*b])),
    );
    header["__metadata__"]["payload_sha256"] = json!(sum);
}

fn err_text(source: &str, bytes: &[u8]) -> String {
    from_bytes(source, bytes)
        .expect_err("expected a rejected checkpoint")
        .to_string()
}

fn assert_contains(msg: &str, needles: &[&str]) {
    for needle in needles {
        assert!(msg.contains(needle), "expected {needle:?} in: {msg}");
    }
}

#[test]
fn round_trip_is_bit_exact_and_keeps_order_and_metadata() {
    let ckpt = sample();
    let bytes = to_bytes(&ckpt).unwrap();
    let back = from_bytes("mem", &bytes).unwrap();
    let names: Vec<&str> = back.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["conv1.weight", "conv1.bias", "fc3.weight", "fc3.bias"]
    );
    for (a, b) in ckpt.tensors.iter().zip(&back.tensors) {
        assert_eq!(a.shape, b.shape, "{}", a.name);
        let bits = |t: &NamedTensor| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(a), bits(b), "{}", a.name);
    }
    // The reserved keys are the writer's business and are stripped again on load.
    assert_eq!(back.metadata, ckpt.metadata);
    assert_eq!(
        to_bytes(&back).unwrap(),
        bytes,
        "serialization is deterministic"
    );
}

#[test]
fn empty_and_zero_sized_tensors_round_trip() {
    let empty = Checkpoint::default();
    assert_eq!(
        from_bytes("mem", &to_bytes(&empty).unwrap()).unwrap(),
        empty
    );
    let mut ckpt = sample();
    ckpt.tensors.insert(
        1,
        NamedTensor {
            name: "z".into(),
            shape: vec![0, 3],
            data: vec![],
        },
    );
    assert_eq!(
        from_bytes("mem", &to_bytes(&ckpt).unwrap())
            .unwrap()
            .get("z")
            .unwrap()
            .shape,
        [0, 3]
    );
}

#[test]
fn plain_safetensors_crate_reads_the_file() {
    let dir = scratch_dir("interop");
    let path = dir.join("deep.safetensors");
    let ckpt = sample();
    save(&path, &ckpt).unwrap();
    let bytes = fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let w = st.tensor("conv1.weight").unwrap();
    assert_eq!(w.dtype(), Dtype::F32);
    assert_eq!(w.shape(), [16, 1, 3, 3]);
    let expected: Vec<u8> = ckpt.tensors[0]
        .data
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(w.data(), expected.as_slice());
    let mut names: Vec<&String> = st.names();
    names.sort();
    assert_eq!(
        names,
        ["conv1.bias", "conv1.weight", "fc3.bias", "fc3.weight"]
    );
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().as_ref().unwrap();
    assert_eq!(meta["format_version"], FORMAT_VERSION);
    assert_eq!(meta["model"], "deep");
    assert_eq!(meta["payload_sha256"].len(), 64);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupted_header_json_names_the_file() {
    let dir = scratch_dir("corrupt-json");
    let path = dir.join("deep.safetensors");
    save(&path, &sample()).unwrap();
    let good = fs::read(&path).unwrap();
    let shown = path.display().to_string();
    // Break the JSON in three places: the opening brace, a key's quote, and a colon.
    for (i, target) in [b'{', b'"', b':'].into_iter().enumerate() {
        let mut bad = good.clone();
        let at = 8 + good[8..].iter().position(|&b| b == target).unwrap();
        bad[at] = b'#';
        fs::write(&path, &bad).unwrap();
        let msg = load(&path).unwrap_err().to_string();
        assert_contains(
            &msg,
            &[&shown, "not a valid safetensors file", "does not parse"],
        );
        assert!(!msg.is_empty(), "case {i}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wrong_header_lengths_are_rejected() {
    let good = to_bytes(&sample()).unwrap();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap());
    let with_len = |len: u64| {
        let mut b = good.clone();
        b[..8].copy_from_slice(&len.to_le_bytes());
        b
    };
    // Padding is under 8 spaces, so 8 short always cuts the JSON; one short may only drop a
    // space, leaving a data section one byte longer than the tensors.
    assert_contains(
        &err_text("f.safetensors", &with_len(n - 8)),
        &["f.safetensors", "does not parse"],
    );
    let long_data = format!(
        "covering the whole {}-byte data section",
        good.len() as u64 - 8 - (n - 1)
    );
    let msg = err_text("f.safetensors", &with_len(n - 1));
    assert!(
        msg.contains("does not parse") || msg.contains(&long_data),
        "{msg}"
    );
    // Eight too many swallow the first data bytes (raw f32s) into the header.
    assert_contains(
        &err_text("f.safetensors", &with_len(n + 8)),
        &["f.safetensors", "header"],
    );
    let past_end = good.len() as u64;
    assert_contains(
        &err_text("f.safetensors", &with_len(past_end)),
        &["f.safetensors", &format!("header length {past_end}")],
    );
    for huge in [u64::MAX, 1 << 40, MAX_HEADER_BYTES as u64 + 1] {
        let msg = err_text("f.safetensors", &with_len(huge));
        assert_contains(
            &msg,
            &[
                "f.safetensors",
                &huge.to_string(),
                "at most 100000000 bytes",
            ],
        );
    }
    assert_contains(
        &err_text("f.safetensors", &good[..5]),
        &["f.safetensors", "a 5-byte file"],
    );
}

#[test]
fn non_utf8_header_is_rejected() {
    let mut bad = to_bytes(&sample()).unwrap();
    let at = 8 + bad[8..].windows(5).position(|w| w == b"conv1").unwrap();
    bad[at] = 0xff;
    assert_contains(
        &err_text("f", &bad),
        &["UTF-8", &format!("header byte {}", at - 8)],
    );
}

#[test]
fn offsets_out_of_range_overlapping_or_overflowing_are_rejected() {
    let (header, data) = split(&to_bytes(&sample()).unwrap());
    let mut h = header.clone();
    h["fc3.bias"]["data_offsets"][1] = json!(data.len() + 4);
    let msg = err_text("f", &join(&h, &data));
    assert_contains(
        &msg,
        &[
            "tensor `fc3.bias`",
            &format!("inside the {}-byte data section", data.len()),
        ],
    );

    // An end offset near usize::MAX with a matching shape: the crate's own `end + 8 + n` would
    // overflow (a panic in debug builds) if our range check did not come first.
    let huge = json!({"a": {"dtype": "U8", "shape": [u64::MAX], "data_offsets": [0, u64::MAX]}});
    assert_contains(
        &err_text("f", &join(&huge, &[0; 8])),
        &["tensor `a`", "18446744073709551615"],
    );

    // Two 16-byte tensors that overlap by 8 bytes, and two with a gap: the crate's check.
    let entry =
        |start: usize| json!({"dtype": "F32", "shape": [4], "data_offsets": [start, start + 16]});
    let overlap = json!({"a": entry(0), "b": entry(8)});
    assert_contains(
        &err_text("f", &join(&overlap, &[0; 24])),
        &["gap or an overlap", "`b`"],
    );
    let gap = json!({"a": entry(0), "b": entry(20)});
    assert_contains(
        &err_text("f", &join(&gap, &[0; 36])),
        &["gap or an overlap", "`b`"],
    );

    // A range that disagrees with the shape, and trailing bytes after the last tensor.
    let mut h = header;
    h["fc3.bias"]["shape"] = json!([9]);
    assert_contains(
        &err_text("f", &join(&h, &data)),
        &["tensor `fc3.bias` to span 36 bytes"],
    );
    let mut trailing = to_bytes(&sample()).unwrap();
    trailing.extend_from_slice(&[0; 4]);
    let covered = format!(
        "covering the whole {}-byte data section, found tensors ending at byte {}",
        data.len() + 4,
        data.len()
    );
    assert_contains(&err_text("f", &trailing), &[&covered]);
}

#[test]
fn flipped_payload_byte_fails_the_checksum() {
    let good = to_bytes(&sample()).unwrap();
    let (header, _) = split(&good);
    let recorded = header["__metadata__"]["payload_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bad = good.clone();
    let last = bad.len() - 4; // the low mantissa byte of fc3.bias's last value: stays finite
    bad[last] ^= 0x01;
    let msg = err_text("deep.safetensors", &bad);
    assert_contains(
        &msg,
        &[
            "deep.safetensors",
            "checksum",
            &format!("expected sha256 {recorded}"),
        ],
    );
    let found = msg
        .split("found sha256 ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(found.len() == 64 && found != recorded, "{msg}");
}

#[test]
fn renamed_tensor_fails_the_checksum() {
    let (mut header, data) = split(&to_bytes(&sample()).unwrap());
    let entry = header.as_object_mut().unwrap().remove("fc3.bias").unwrap();
    header["fc3.b"] = entry;
    assert_contains(&err_text("f", &join(&header, &data)), &["checksum"]);
}

#[test]
fn nan_and_inf_name_the_tensor_and_index() {
    let (mut header, mut data) = split(&to_bytes(&sample()).unwrap());
    let start = header["fc3.weight"]["data_offsets"][0].as_u64().unwrap() as usize;
    for (value, shown) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let index = 5;
        data[start + 4 * index..start + 4 * index + 4].copy_from_slice(&value.to_le_bytes());
        reseal(&mut header, &data);
        let msg = err_text("deep.safetensors", &join(&header, &data));
        assert_contains(
            &msg,
            &[
                "deep.safetensors",
                "tensor `fc3.weight`",
                &format!("holds {shown} at flat index 5"),
            ],
        );
    }
}

#[test]
fn f64_tensor_is_rejected() {
    let values: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F64, vec![2], &values).unwrap();
    let meta = HashMap::from([("format_version".to_string(), FORMAT_VERSION.to_string())]);
    let bytes = safetensors::serialize([("fc3.bias", view)], &Some(meta)).unwrap();
    assert_contains(
        &err_text("f", &bytes),
        &["tensor `fc3.bias`", "dtype F64", "expected F32"],
    );
}

#[test]
fn missing_or_wrong_metadata_is_rejected() {
    let values: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let write = |meta: Option<HashMap<String, String>>| {
        let view = TensorView::new(Dtype::F32, vec![2], &values).unwrap();
        safetensors::serialize([("fc3.bias", view)], &meta).unwrap()
    };
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_contains(
        &err_text("f", &write(None)),
        &["`format_version` is missing", "no __metadata__"],
    );
    let no_version = write(Some(HashMap::from([pair("payload_sha256", "00")])));
    assert_contains(
        &err_text("f", &no_version),
        &["`format_version` is missing", "payload_sha256"],
    );
    let no_sum = write(Some(HashMap::from([pair(
        "format_version",
        FORMAT_VERSION,
    )])));
    assert_contains(&err_text("f", &no_sum), &["`payload_sha256` is missing"]);
    let future = write(Some(HashMap::from([
        pair("format_version", "2"),
        pair("payload_sha256", "00"),
    ])));
    assert_contains(
        &err_text("f", &future),
        &["format_version is \"2\", expected \"1\""],
    );
}

#[test]
fn to_bytes_refuses_what_from_bytes_would_reject() {
    // Each case breaks one rule; `fn` pointers since none of the edits capture anything.
    type Edit = fn(&mut Checkpoint);
    let cases: [(Edit, &str); 6] = [
        (
            |c| c.tensors[0].data.truncate(143),
            "expected 144 values for shape [16, 1, 3, 3], found 143",
        ),
        (
            |c| c.tensors[1].name = "conv1.weight".into(),
            "unique tensor names",
        ),
        (|c| c.tensors[1].name = String::new(), "a non-empty name"),
        (
            |c| c.tensors[1].name = "__metadata__".into(),
            "other than __metadata__",
        ),
        (
            |c| {
                c.metadata.insert("payload_sha256".into(), "x".into());
            },
            "metadata key `payload_sha256`",
        ),
        (
            |c| c.tensors[2].data[7] = f32::NAN,
            "tensor `fc3.weight` holds NaN at flat index 7",
        ),
    ];
    for (edit, needle) in cases {
        let mut ckpt = sample();
        edit(&mut ckpt);
        let msg = to_bytes(&ckpt).unwrap_err().to_string();
        assert_contains(&msg, &["<in-memory checkpoint>", needle]);
    }
}

#[test]
fn save_replaces_the_old_file_and_leaves_no_temp() {
    let dir = scratch_dir("atomic");
    let path = dir.join("deep.safetensors");
    let old = sample();
    save(&path, &old).unwrap();
    let mut new = sample();
    new.tensors[0].data[0] = 42.0;
    new.metadata.insert("epoch".into(), "4".into());
    save(&path, &new).unwrap();
    assert_eq!(load(&path).unwrap(), new);
    let files: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["deep.safetensors"], "a temp file was left behind");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn save_into_missing_folder_fails_without_a_partial_file() {
    let dir = scratch_dir("missing-folder");
    let path = dir.join("no-such-folder").join("deep.safetensors");
    let msg = save(&path, &sample()).unwrap_err().to_string();
    assert_contains(
        &msg,
        &[&path.display().to_string(), "cannot write", "No such file"],
    );
    // Said once, and not called a checkpoint (attribution files are written here too).
    assert_eq!(msg.matches(&path.display().to_string()).count(), 1, "{msg}");
    assert!(!msg.contains("checkpoint"), "{msg}");
    assert!(!path.exists() && !path.parent().unwrap().exists());
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        0,
        "something was written beside the folder"
    );
    let msg = load(&path).unwrap_err().to_string();
    assert_contains(&msg, &[&path.display().to_string(), "cannot read"]);
    fs::remove_dir_all(&dir).unwrap();
}
