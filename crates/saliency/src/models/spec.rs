//! A network's architecture as data: the layer list stored in a checkpoint's metadata (key
//! `layers`, JSON), so any network built from the layer set saves and loads, not only the
//! study's three presets. Replaying the list through [`ModelBuilder`] rebuilds the same
//! parameters, buffers, names, shapes and L2 flags; the checkpoint then fills in the values.

use serde::{Deserialize, Serialize};
use tensor::Float;

use super::builder::ModelBuilder;
use super::init::Init;
use super::{Layer, Model, ModelError, ModelKind};

/// One layer as stored: what [`ModelBuilder`] needs to add it again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LayerSpec {
    /// A new convolution (weight `[out_channels, in, kernel, kernel]` and bias).
    Conv {
        /// Parameter name prefix, e.g. `conv1`.
        name: String,
        /// Output channels.
        out_channels: usize,
        /// Square kernel side.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on each side.
        padding: usize,
    },
    /// An earlier convolution applied again with the same weights.
    ReuseConv {
        /// The earlier convolution's name.
        name: String,
    },
    /// ReLU.
    Relu,
    /// Max-pool.
    MaxPool {
        /// Window side.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// Batch norm with running statistics.
    BatchNorm {
        /// Parameter name prefix, e.g. `bn1`.
        name: String,
        /// Added to the variance.
        eps: f64,
        /// Keras-style running-average momentum (0.99: mostly the old value).
        momentum: f64,
    },
    /// (N, C, H, W) to (N, C*H*W).
    Flatten,
    /// Inverted dropout.
    Dropout {
        /// Drop probability.
        p: f64,
    },
    /// A dense layer (weight `[out_features, in]` and bias).
    Linear {
        /// Parameter name prefix, e.g. `fc1`.
        name: String,
        /// Output features.
        out_features: usize,
    },
}

impl<T: Float> Model<T> {
    /// The layer list that rebuilds this network's architecture (see [`build_from_specs`]).
    pub fn layer_specs(&self) -> Vec<LayerSpec> {
        let mut seen_weights = Vec::new();
        self.layers
            .iter()
            .map(|layer| match layer {
                Layer::Conv {
                    name,
                    weight,
                    kernel,
                    stride,
                    padding,
                    out_channels,
                    ..
                } => {
                    if seen_weights.contains(weight) {
                        LayerSpec::ReuseConv { name: name.clone() }
                    } else {
                        seen_weights.push(*weight);
                        LayerSpec::Conv {
                            name: name.clone(),
                            out_channels: *out_channels,
                            kernel: *kernel,
                            stride: *stride,
                            padding: *padding,
                        }
                    }
                }
                Layer::Relu => LayerSpec::Relu,
                Layer::MaxPool { kernel, stride } => LayerSpec::MaxPool {
                    kernel: *kernel,
                    stride: *stride,
                },
                Layer::BatchNorm {
                    name,
                    eps,
                    momentum,
                    ..
                } => LayerSpec::BatchNorm {
                    name: name.clone(),
                    eps: *eps,
                    momentum: *momentum,
                },
                Layer::Flatten => LayerSpec::Flatten,
                Layer::Dropout { p } => LayerSpec::Dropout { p: *p },
                Layer::Linear {
                    name, out_features, ..
                } => LayerSpec::Linear {
                    name: name.clone(),
                    out_features: *out_features,
                },
            })
            .collect()
    }
}

/// Builds a network from its layer list for inputs (C, H, W) and `classes` outputs, weights
/// drawn from `seed` (Glorot uniform; a checkpoint overwrites them). `kind` labels the network
/// (a preset's name, or [`ModelKind::Custom`]).
pub fn build_from_specs<T: Float>(
    kind: ModelKind,
    input: [usize; 3],
    classes: usize,
    specs: &[LayerSpec],
    seed: u64,
) -> Result<Model<T>, ModelError> {
    let mut b = ModelBuilder::new(kind, input, classes, Init::GlorotUniform, seed);
    for spec in specs {
        match spec {
            LayerSpec::Conv {
                name,
                out_channels,
                kernel,
                stride,
                padding,
            } => b.conv(name, *out_channels, *kernel, *stride, *padding)?,
            LayerSpec::ReuseConv { name } => b.reuse_conv(name)?,
            LayerSpec::Relu => b.relu()?,
            LayerSpec::MaxPool { kernel, stride } => b.pool(*kernel, *stride)?,
            LayerSpec::BatchNorm {
                name,
                eps,
                momentum,
            } => b.batch_norm(name, *eps, *momentum)?,
            LayerSpec::Flatten => b.flatten()?,
            LayerSpec::Dropout { p } => b.dropout(*p)?,
            LayerSpec::Linear { name, out_features } => b.linear(name, *out_features)?,
        };
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every preset's layer list rebuilds the same architecture: layers, names, shapes, L2.
    #[test]
    fn presets_round_trip_through_their_layer_lists() {
        for kind in ModelKind::ALL {
            for input in [[1, 28, 28], [3, 256, 256]] {
                let m: Model<f32> = kind.build(input, 5, 1).unwrap();
                let specs = m.layer_specs();
                let json = serde_json::to_string(&specs).unwrap();
                let back: Vec<LayerSpec> = serde_json::from_str(&json).unwrap();
                let r: Model<f32> = build_from_specs(kind, input, 5, &back, 2).unwrap();
                assert_eq!(r.layers, m.layers, "{kind} {input:?}");
                assert_eq!(r.param_info, m.param_info, "{kind} {input:?}");
                assert_eq!(r.buffer_names, m.buffer_names, "{kind} {input:?}");
            }
        }
    }
}
