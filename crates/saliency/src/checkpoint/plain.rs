//! Reading a plain safetensors `state_dict`, as PyTorch's `safetensors.torch.save_file` writes it:
//! no metadata, f32 or f64 tensors, and integer bookkeeping (`num_batches_tracked`) beside them.
//!
//! A file that carries this format's metadata (`format_version`) is one of ours and gets every
//! check of [`from_bytes`](super::from_bytes), its checksum included; a plain file has no checksum
//! to verify, so only its structure, dtypes and finiteness are checked.

use std::collections::BTreeMap;

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

use super::decode::{check_length_prefix, inspect_header};
use super::error::CheckpointError;
use super::format::{check_finite, Checkpoint, NamedTensor, FORMAT_VERSION_KEY};

/// PyTorch's batch-norm step counters: integers this engine has no use for (its batch norm uses
/// a fixed momentum), skipped on load.
const SKIPPED_SUFFIX: &str = "num_batches_tracked";

/// Parses our checkpoints and plain PyTorch state_dicts alike; `source` names the file in errors.
///
/// Plain files: F32 tensors are taken as they are, F64 tensors rounded to f32 (to nearest), and
/// `*.num_batches_tracked` integers skipped; any other dtype is refused with the tensor's name.
/// The metadata, if any, is kept (without a checksum to check).
pub fn from_any_bytes(source: &str, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let header_len = check_length_prefix(source, bytes)?;
    inspect_header(
        source,
        &bytes[8..8 + header_len],
        bytes.len() - 8 - header_len,
    )?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| CheckpointError::Malformed {
        path: source.to_string(),
        expected: "a safetensors file".into(),
        found: e.to_string(),
    })?;
    let metadata: BTreeMap<String, String> = meta
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if metadata.contains_key(FORMAT_VERSION_KEY) {
        return super::from_bytes(source, bytes);
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Malformed {
        path: source.to_string(),
        expected: "a safetensors file".into(),
        found: e.to_string(),
    })?;
    let mut views = st.tensors();
    // File order, as our own reader keeps it.
    views.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
    let mut tensors = Vec::with_capacity(views.len());
    for (name, view) in views {
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|b| {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            _ if name.ends_with(SKIPPED_SUFFIX) => continue,
            other => {
                return Err(CheckpointError::WrongDtype {
                    path: source.to_string(),
                    tensor: name,
                    found: format!("{other:?} (expected F32 or F64)"),
                })
            }
        };
        check_finite(source, &name, &data)?;
        tensors.push(NamedTensor {
            shape: view.shape().to_vec(),
            name,
            data,
        });
    }
    Ok(Checkpoint { tensors, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn plain(entries: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(String, TensorView)> = entries
            .iter()
            .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, &None).unwrap()
    }

    #[test]
    fn plain_f32_f64_and_counters() {
        let f32s: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let f64s: Vec<u8> = [0.1f64, 3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = plain(&[
            ("a.weight", Dtype::F32, vec![2], f32s),
            ("b.weight", Dtype::F64, vec![1, 2], f64s),
            (
                "bn.num_batches_tracked",
                Dtype::I64,
                vec![],
                7i64.to_le_bytes().to_vec(),
            ),
        ]);
        let ck = from_any_bytes("x", &bytes).unwrap();
        let mut names: Vec<&str> = ck.tensors.iter().map(|t| t.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["a.weight", "b.weight"], "the counter is skipped");
        assert_eq!(ck.get("a.weight").unwrap().data, [1.5, -2.0]);
        let b = ck.get("b.weight").unwrap();
        assert_eq!(b.data, [0.1f64 as f32, 3.0]);
        assert_eq!(b.shape, [1, 2]);
        assert!(ck.metadata.is_empty());
    }

    #[test]
    fn other_integers_and_non_finite_values_are_refused_by_name() {
        let bytes = plain(&[("steps", Dtype::I64, vec![], 7i64.to_le_bytes().to_vec())]);
        let m = from_any_bytes("f.safetensors", &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("steps") && m.contains("I64") && m.contains("f.safetensors"),
            "{m}"
        );
        let nan: Vec<u8> = f32::NAN.to_le_bytes().to_vec();
        let bytes = plain(&[("w", Dtype::F32, vec![1], nan)]);
        let m = from_any_bytes("g", &bytes).unwrap_err().to_string();
        assert!(m.contains('w') && m.contains('g'), "{m}");
    }

    #[test]
    fn our_own_files_keep_their_checksum_check() {
        let ck = Checkpoint {
            tensors: vec![NamedTensor {
                name: "w".into(),
                shape: vec![2],
                data: vec![1.0, 2.0],
            }],
            metadata: BTreeMap::from([("model".to_string(), "deep".to_string())]),
        };
        let mut bytes = super::super::to_bytes(&ck).unwrap();
        assert_eq!(from_any_bytes("ours", &bytes).unwrap(), ck);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let m = from_any_bytes("ours", &bytes).unwrap_err().to_string();
        assert!(m.contains("ours"), "{m}");
        assert!(matches!(
            from_any_bytes("ours", &bytes),
            Err(CheckpointError::ChecksumMismatch { .. })
        ));
    }
}
