//! Looking tensors up by name and checking a checkpoint holds exactly a model's parameters.

use std::collections::BTreeMap;

use super::error::CheckpointError;
use super::format::{Checkpoint, NamedTensor};

impl Checkpoint {
    /// Checks the checkpoint holds exactly these names with these shapes.
    ///
    /// Missing, unexpected, duplicated and wrong-shape tensors are all reported in one
    /// [`CheckpointError::LayoutMismatch`], so a user loading the wrong model's file sees the
    /// whole difference at once. `source` (the path, and the model if the caller adds it) starts
    /// the message.
    pub fn check_layout(
        &self,
        source: &str,
        expected: &[(String, Vec<usize>)],
    ) -> Result<(), CheckpointError> {
        let wanted: BTreeMap<&str, &[usize]> = expected
            .iter()
            .map(|(name, shape)| (name.as_str(), shape.as_slice()))
            .collect();
        let mut found: BTreeMap<&str, &[usize]> = BTreeMap::new();
        let mut duplicated = Vec::new();
        for t in &self.tensors {
            if found.insert(t.name.as_str(), t.shape.as_slice()).is_some() {
                duplicated.push(format!("`{}`", t.name));
            }
        }

        let mut missing = Vec::new();
        let mut wrong_shape = Vec::new();
        for (&name, &shape) in &wanted {
            match found.get(name) {
                None => missing.push(format!("`{name}` {shape:?}")),
                Some(&have) if have != shape => {
                    wrong_shape.push(format!("`{name}` expected {shape:?}, found {have:?}"))
                }
                Some(_) => {}
            }
        }
        let unexpected: Vec<String> = found
            .iter()
            .filter(|(name, _)| !wanted.contains_key(*name))
            .map(|(name, shape)| format!("`{name}` {shape:?}"))
            .collect();

        let mut parts = Vec::new();
        for (label, items) in [
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong_shape),
            ("duplicated", duplicated),
        ] {
            if !items.is_empty() {
                parts.push(format!("{label}: {}", items.join(", ")));
            }
        }
        if parts.is_empty() {
            return Ok(());
        }
        Err(CheckpointError::LayoutMismatch {
            path: source.to_string(),
            details: format!(
                "expected {} tensors, found {}; {}",
                expected.len(),
                self.tensors.len(),
                parts.join("; ")
            ),
        })
    }

    /// The tensor called `name`, if present.
    pub fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, shape: &[usize]) -> NamedTensor {
        let n = shape.iter().product();
        NamedTensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            data: vec![0.0; n],
        }
    }

    fn layout(items: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
        items
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_vec()))
            .collect()
    }

    #[test]
    fn exact_layout_passes_in_any_order() {
        let ckpt = Checkpoint {
            tensors: vec![
                tensor("conv1.bias", &[16]),
                tensor("conv1.weight", &[16, 1, 3, 3]),
            ],
            ..Default::default()
        };
        let expected = layout(&[("conv1.weight", &[16, 1, 3, 3]), ("conv1.bias", &[16])]);
        ckpt.check_layout("deep.safetensors", &expected).unwrap();
        assert_eq!(
            ckpt.get("conv1.bias").map(|t| t.shape.clone()),
            Some(vec![16])
        );
        assert!(ckpt.get("conv2.bias").is_none());
    }

    #[test]
    fn every_difference_is_listed_in_one_message() {
        let ckpt = Checkpoint {
            tensors: vec![
                tensor("conv1.weight", &[16, 3, 3, 3]),
                tensor("fc9.bias", &[7]),
                tensor("fc3.bias", &[10]),
            ],
            ..Default::default()
        };
        let expected = layout(&[
            ("conv1.weight", &[16, 1, 3, 3]),
            ("conv1.bias", &[16]),
            ("fc3.bias", &[10]),
        ]);
        let msg = ckpt
            .check_layout("runs/deep.safetensors", &expected)
            .unwrap_err()
            .to_string();
        for needle in [
            "runs/deep.safetensors",
            "missing: `conv1.bias` [16]",
            "unexpected: `fc9.bias` [7]",
            "wrong shape: `conv1.weight` expected [16, 1, 3, 3], found [16, 3, 3, 3]",
        ] {
            assert!(msg.contains(needle), "missing {needle:?} in: {msg}");
        }
        assert!(
            !msg.contains("fc3.bias"),
            "a matching tensor was reported: {msg}"
        );
    }

    #[test]
    fn duplicate_names_are_reported() {
        let ckpt = Checkpoint {
            tensors: vec![tensor("fc3.bias", &[10]), tensor("fc3.bias", &[10])],
            ..Default::default()
        };
        let err = ckpt
            .check_layout("x", &layout(&[("fc3.bias", &[10])]))
            .unwrap_err();
        assert!(err.to_string().contains("duplicated: `fc3.bias`"), "{err}");
    }
}
