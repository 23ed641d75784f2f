//! Model randomization sanity check (Adebayo et al. 2018): does the map change when the weights
//! it supposedly explains are replaced by random ones?

use tensor::{Float, Tensor};

use super::AttributionError;
use crate::models::{Layer, Model};

/// The result after randomizing one more layer.
#[derive(Clone, Debug, PartialEq)]
pub struct SanityStep {
    /// The layer randomized at this step (all layers above it stay randomized); `none` for the
    /// first entry, the model against itself.
    pub layer: String,
    /// Spearman rank correlation between the original model's map and this model's map
    /// (absolute values, per image, averaged over images). 1 = unchanged ranking.
    pub spearman: f64,
}

/// Cascading randomization from the top: re-draws the output layer (fc3), then fc2, and so on down
/// to conv1, each time keeping the layers above randomized, and reports after each step how well
/// `attribute`'s map of the randomized model still ranks pixels like the original's.
///
/// Re-drawn weights come from `donor`, a fresh model of the same architecture initialized with
/// another seed (see [`fresh_donor`]), so they follow the model's own init scheme. Batch-norm
/// layers are reset to their initial state (gamma 1, beta 0, running statistics 0 and 1).
/// The first entry, `none`, compares the model with itself: it is 1 for a deterministic method.
/// A map that does not depend on the model's weights (e.g. edge detection) would stay near 1
/// throughout; a faithful method drops.
pub fn randomization_sanity_check<T: Float, F>(
    model: &Model<T>,
    donor: &Model<T>,
    inputs: &Tensor<T>,
    attribute: F,
) -> Result<Vec<SanityStep>, AttributionError>
where
    F: Fn(&Model<T>, &Tensor<T>) -> Result<Tensor<T>, AttributionError>,
{
    check_same_layout(model, donor)?;
    let n = inputs.shape().first().copied().unwrap_or(0).max(1);
    let reference = attribute(model, inputs)?;
    let mut steps = vec![SanityStep {
        layer: "none".into(),
        spearman: mean_spearman(&reference, &attribute(model, inputs)?, n),
    }];
    let mut randomized = model.clone();
    for layer in layers_top_down(model) {
        let prefix = format!("{layer}.");
        for (i, info) in model.param_info.iter().enumerate() {
            if info.name.starts_with(&prefix) {
                randomized.params[i] = donor.params[i].clone();
            }
        }
        for (i, name) in model.buffer_names.iter().enumerate() {
            if name.starts_with(&prefix) {
                randomized.buffers[i] = donor.buffers[i].clone();
            }
        }
        let map = attribute(&randomized, inputs)?;
        steps.push(SanityStep {
            spearman: mean_spearman(&reference, &map, n),
            layer,
        });
    }
    Ok(steps)
}

/// A freshly initialized copy of `model`'s architecture drawn from `seed` (the donor of
/// [`randomization_sanity_check`]), checked to have the same parameters.
pub fn fresh_donor<T: Float>(model: &Model<T>, seed: u64) -> Result<Model<T>, AttributionError> {
    let donor = model.kind.build::<T>(model.input, model.classes, seed)?;
    check_same_layout(model, &donor)?;
    Ok(donor)
}

/// Names of the layers with parameters, output layer first; a layer used twice (medium's conv2)
/// appears once.
fn layers_top_down<T>(model: &Model<T>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for layer in model.layers.iter().rev() {
        let name = match layer {
            Layer::Conv { name, .. }
            | Layer::Linear { name, .. }
            | Layer::BatchNorm { name, .. } => name,
            Layer::Relu | Layer::MaxPool { .. } | Layer::Flatten | Layer::Dropout { .. } => {
                continue
            }
        };
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

fn check_same_layout<T: Float>(model: &Model<T>, donor: &Model<T>) -> Result<(), AttributionError> {
    if model.param_info != donor.param_info || model.buffer_names != donor.buffer_names {
        let names = |m: &Model<T>| {
            m.param_info
                .iter()
                .map(|p| format!("{} {:?}", p.name, p.shape))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(AttributionError::Sanity(format!(
            "the donor model's parameters must match the model's: expected [{}], found [{}]",
            names(model),
            names(donor)
        )));
    }
    Ok(())
}

/// Spearman correlation of |a| and |b| for each of the `n` images, averaged.
fn mean_spearman<T: Float>(a: &Tensor<T>, b: &Tensor<T>, n: usize) -> f64 {
    let per = a.numel() / n;
    let abs = |x: &[T]| x.iter().map(|v| v.to_f64().abs()).collect::<Vec<f64>>();
    let total: f64 = a
        .data()
        .chunks_exact(per)
        .zip(b.data().chunks_exact(per))
        .map(|(x, y)| spearman(&abs(x), &abs(y)))
        .sum();
    total / n as f64
}

/// Spearman rank correlation: the Pearson correlation of the ranks, ties given their average
/// rank. When a series is constant the correlation is undefined; we return 1 when both are
/// constant (nothing changed) and 0 when only one is.
///
/// # Panics
/// If the lengths differ.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "spearman: series of different lengths");
    let (ra, rb) = (ranks(a), ranks(b));
    let mean = (a.len() as f64 + 1.0) / 2.0;
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - mean) * (y - mean);
        va += (x - mean) * (x - mean);
        vb += (y - mean) * (y - mean);
    }
    match (va > 0.0, vb > 0.0) {
        (true, true) => cov / (va * vb).sqrt(),
        (false, false) => 1.0,
        _ => 0.0,
    }
}

/// 1-based ranks, ties sharing the mean of their positions.
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut out = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && x[order[end]] == x[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) share rank mean(start+1 ..= end).
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            out[i] = rank;
        }
        start = end;
    }
    out
}
