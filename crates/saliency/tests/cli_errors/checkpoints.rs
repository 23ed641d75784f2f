//! Items 13-16, through `saliency eval`: checkpoints with a corrupt header or offsets, a wrong
//! checksum, another model's layout, or NaN.

use saliency::checkpoint::{self, Checkpoint};
use sha2::{Digest, Sha256};

use super::*;

/// Splits safetensors bytes into (header JSON, data section).
fn split_safetensors(bytes: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

fn join_safetensors(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let text = serde_json::to_vec(header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(data);
    out
}

/// The checkpoint checksum as documented on `checkpoint::CHECKSUM_KEY`: tensors in name order,
/// each framed by name length, name, rank and dimensions (u64 LE), then its f32 LE bytes.
fn payload_sha256(header: &serde_json::Value, data: &[u8]) -> String {
    let mut entries: Vec<(&String, &serde_json::Value)> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Sha256::new();
    for (name, info) in entries {
        let shape: Vec<u64> = info["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        let off = &info["data_offsets"];
        let (start, end) = (
            off[0].as_u64().unwrap() as usize,
            off[1].as_u64().unwrap() as usize,
        );
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((shape.len() as u64).to_le_bytes());
        for d in shape {
            h.update(d.to_le_bytes());
        }
        h.update(&data[start..end]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn item13_checkpoint_with_corrupt_header_or_offsets() {
    let s = Scratch::new("ckpt-header");
    let good = s.join("good.safetensors");
    write_good_checkpoint(&good);
    let bytes = std::fs::read(&good).unwrap();
    let bad = s.join("bad.safetensors");
    let shown = bad.display().to_string();
    let data = s.join("data");
    write_fashion(&data);
    // The intact file evaluates (the control for everything below).
    assert_ok(&saliency(&s.0, &eval_args(&good, &data)));

    let cases: Vec<(Vec<u8>, Vec<&str>)> = vec![
        // Cut inside the 8-byte length prefix.
        (
            bytes[..5].to_vec(),
            vec![
                "not a valid safetensors file",
                "8-byte little-endian header length",
                "a 5-byte file",
            ],
        ),
        // A length prefix larger than the file.
        (
            {
                let mut b = bytes.clone();
                b[..8].copy_from_slice(&(bytes.len() as u64 * 2).to_le_bytes());
                b
            },
            vec!["header length", "expected a header length of at most"],
        ),
        // A length prefix beyond the header cap.
        (
            {
                let mut b = bytes.clone();
                b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
                b
            },
            vec![
                "header length prefix says 18446744073709551615 bytes",
                "expected at most",
            ],
        ),
        // Garbage where the JSON header should be.
        (
            {
                let mut b = bytes.clone();
                for x in &mut b[8..40] {
                    *x = b'#';
                }
                b
            },
            vec![
                "not a valid safetensors file",
                "a header that does not parse",
            ],
        ),
        // Cut in the data section.
        (
            bytes[..bytes.len() - 1000].to_vec(),
            vec!["data offsets", "expected a range inside the"],
        ),
    ];
    for (content, needles) in cases {
        std::fs::write(&bad, &content).unwrap();
        let mut all = vec![shown.as_str()];
        all.extend(needles);
        assert_refused(&saliency(&s.0, &eval_args(&bad, &data)), &all);
    }

    // Offsets rewritten to point past the data section, header otherwise valid.
    let (mut header, payload) = split_safetensors(&bytes);
    header["conv2.weight"]["data_offsets"] = serde_json::json!([0, 1u64 << 40]);
    std::fs::write(&bad, join_safetensors(&header, &payload)).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[
            &shown,
            "tensor `conv2.weight` declares data offsets [0, 1099511627776)",
        ],
    );
    // Offsets that overlap another tensor's bytes.
    let (mut header, payload) = split_safetensors(&bytes);
    let first = header["conv1.weight"]["data_offsets"].clone();
    let len = first[1].as_u64().unwrap() - first[0].as_u64().unwrap();
    header["conv1.bias"]["data_offsets"] =
        serde_json::json!([first[0], first[0].as_u64().unwrap() + len.min(64)]);
    std::fs::write(&bad, join_safetensors(&header, &payload)).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[&shown, "not a valid safetensors file"],
    );

    // A missing file.
    let gone = s.join("gone.safetensors");
    assert_refused(
        &saliency(&s.0, &eval_args(&gone, &data)),
        &[
            &gone.display().to_string(),
            "cannot read checkpoint",
            "No such file",
        ],
    );
}

#[test]
fn item14_checkpoint_payload_checksum_mismatch() {
    let s = Scratch::new("ckpt-sum");
    let good = s.join("good.safetensors");
    write_good_checkpoint(&good);
    let mut bytes = std::fs::read(&good).unwrap();
    // Flip one bit in the last weight: still a finite float, so only the checksum can tell.
    let at = bytes.len() - 2;
    bytes[at] ^= 0x01;
    let bad = s.join("flipped.safetensors");
    std::fs::write(&bad, &bytes).unwrap();
    let data = s.join("data");
    write_fashion(&data);
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[
            &bad.display().to_string(),
            "payload checksum mismatch",
            "expected sha256",
            "found sha256",
            "corrupt",
        ],
    );
}

#[test]
fn item15_checkpoint_of_another_model_or_shape() {
    let s = Scratch::new("ckpt-other");
    let data = s.join("data");
    write_fashion(&data);
    let good = s.join("good.safetensors");
    write_good_checkpoint(&good);
    let bad = s.join("other.safetensors");
    let shown = bad.display().to_string();

    // A tensor renamed, rewritten with a valid checksum.
    let mut ckpt: Checkpoint = checkpoint::load(&good).unwrap();
    ckpt.tensors[0].name = "features.0.weight".into();
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[
            &shown,
            "(model deep)",
            "do not match the expected layout",
            "missing: `conv1.weight` [16, 1, 3, 3]",
            "unexpected: `features.0.weight`",
        ],
    );

    // A tensor reshaped (same values, other shape).
    let mut ckpt = checkpoint::load(&good).unwrap();
    let t = ckpt
        .tensors
        .iter_mut()
        .find(|t| t.name == "conv1.weight")
        .unwrap();
    t.shape = vec![16, 9];
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[
            &shown,
            "wrong shape: `conv1.weight` expected [16, 1, 3, 3], found [16, 9]",
        ],
    );

    // Another model's name on deep's tensors.
    let mut ckpt = checkpoint::load(&good).unwrap();
    ckpt.metadata.insert("model".into(), "alexnet".into());
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[&shown, "(model alexnet)", "missing: `bn1.bias`"],
    );

    // An unknown model name and a bad input shape in the metadata.
    let mut ckpt = checkpoint::load(&good).unwrap();
    ckpt.metadata.insert("model".into(), "resnet".into());
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[
            &shown,
            "metadata 'model'",
            "expected deep, alexnet, medium or custom",
            "found resnet",
        ],
    );
    let mut ckpt = checkpoint::load(&good).unwrap();
    ckpt.metadata
        .insert("input_shape".into(), "3,100000,100000".into());
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[
            &shown,
            "metadata 'input_shape'",
            "H x W <= 262144",
            "found 3,100000,100000",
        ],
    );
    // Metadata is bounded before the model is built from it: a few bytes claiming a million
    // classes (a 2048 x 1000000 output layer) are refused, not allocated.
    let mut ckpt = checkpoint::load(&good).unwrap();
    let many: Vec<String> = (0..1_000_000).map(|i| i.to_string()).collect();
    ckpt.metadata
        .insert("classes".into(), serde_json::to_string(&many).unwrap());
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[
            &shown,
            "metadata 'classes'",
            "between 2 and 1000 classes",
            "found 1000000 classes",
        ],
    );

    // A consistent deep checkpoint for 2 classes: loads, but Fashion-MNIST has 10 classes, so
    // labels 2..9 would index past the model's outputs.
    let model: Model<f32> = ModelKind::Deep.build([1, 28, 28], 2, 0).unwrap();
    save_model(&bad, &model, &deep_meta(2)).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[
            &shown,
            "the model's classes are [\"T-shirt/top\", \"Trouser\"]",
            "fashion-mnist/test has classes",
        ],
    );

    // A data set name the CLI does not know.
    let mut ckpt = checkpoint::load(&good).unwrap();
    ckpt.metadata.insert("dataset".into(), "cifar10".into());
    checkpoint::save(&bad, &ckpt).unwrap();
    assert_refused(
        &saliency(&s.0, &eval_args(&bad, &data)),
        &[
            &shown,
            "metadata 'dataset'",
            "expected fashion-mnist, flowers or flowers17",
            "found 'cifar10'",
        ],
    );
}

#[test]
fn item16_checkpoint_with_nan_or_inf() {
    let s = Scratch::new("ckpt-nan");
    let data = s.join("data");
    write_fashion(&data);
    let good = s.join("good.safetensors");
    write_good_checkpoint(&good);
    let bytes = std::fs::read(&good).unwrap();
    let bad = s.join("nan.safetensors");
    for (value, shown_value) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        // Patch element 5 of conv2.weight, then recompute the checksum so only the value is wrong.
        let (mut header, mut payload) = split_safetensors(&bytes);
        let start = header["conv2.weight"]["data_offsets"][0].as_u64().unwrap() as usize;
        payload[start + 5 * 4..start + 6 * 4].copy_from_slice(&value.to_le_bytes());
        header["__metadata__"]["payload_sha256"] = payload_sha256(&header, &payload).into();
        std::fs::write(&bad, join_safetensors(&header, &payload)).unwrap();
        assert_refused(
            &saliency(&s.0, &eval_args(&bad, &data)),
            &[
                &bad.display().to_string(),
                &format!("tensor `conv2.weight` holds {shown_value} at flat index 5"),
                "expected only finite values",
            ],
        );
    }
}
