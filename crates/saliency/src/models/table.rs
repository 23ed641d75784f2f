//! The layer table `saliency models` prints: layer, output shape, parameters.

use tensor::Float;

use super::{Layer, Model};

/// One row of a model's layer table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRow {
    /// Layer label, e.g. `conv1 conv 3/1/1`.
    pub layer: String,
    /// Output shape without the batch axis.
    pub output: Vec<usize>,
    /// Parameters (and running statistics) first introduced by this layer; a reused conv adds 0.
    pub params: usize,
}

/// The rows of `model`'s layer table.
pub fn layer_table<T: Float>(model: &Model<T>) -> Vec<LayerRow> {
    let mut shape = model.input.to_vec();
    let mut seen = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for layer in &model.layers {
        shape = layer
            .output_shape(&shape)
            .expect("a built model's shapes fit");
        let indices: Vec<usize> = match layer {
            Layer::Conv { weight, bias, .. } | Layer::Linear { weight, bias, .. } => {
                vec![*weight, *bias]
            }
            Layer::BatchNorm { gamma, beta, .. } => vec![*gamma, *beta],
            _ => vec![],
        };
        let mut params: usize = indices
            .iter()
            .filter(|i| seen.insert(**i))
            .map(|&i| model.params[i].numel())
            .sum();
        if let Layer::BatchNorm { mean, var, .. } = layer {
            params += model.buffers[*mean].numel() + model.buffers[*var].numel();
        }
        rows.push(LayerRow {
            layer: layer.label(),
            output: shape.clone(),
            params,
        });
    }
    rows
}
