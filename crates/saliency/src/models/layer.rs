//! `Layer`: one step of a sequential model, referring to parameters and buffers by index.

/// One layer of a sequential network. Parameters and buffers are indices into the model's
/// lists, so one parameter can serve two layers (the `medium` model reuses `conv2`).
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// Square-kernel convolution with bias.
    Conv {
        name: String,
        weight: usize,
        bias: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        out_channels: usize,
    },
    /// Rectified linear unit.
    Relu,
    /// Max-pool, no padding, floor mode.
    MaxPool { kernel: usize, stride: usize },
    /// Per-channel batch normalization with running statistics (buffers `mean`, `var`).
    BatchNorm {
        name: String,
        gamma: usize,
        beta: usize,
        mean: usize,
        var: usize,
        eps: f64,
        momentum: f64,
    },
    /// (N, C, H, W) to (N, C*H*W) in C, H, W order.
    Flatten,
    /// Inverted dropout in training, identity in evaluation.
    Dropout { p: f64 },
    /// Fully connected layer with bias, weight (out, in).
    Linear {
        name: String,
        weight: usize,
        bias: usize,
        out_features: usize,
    },
}

impl Layer {
    /// Name shown in the layer table.
    pub fn label(&self) -> String {
        match self {
            Layer::Conv {
                name,
                kernel,
                stride,
                padding,
                ..
            } => format!("{name} conv {kernel}/{stride}/{padding}"),
            Layer::Relu => "relu".into(),
            Layer::MaxPool { kernel, stride } => format!("pool {kernel}/{stride}"),
            Layer::BatchNorm { name, .. } => format!("{name} batch norm"),
            Layer::Flatten => "flatten".into(),
            Layer::Dropout { p } => format!("dropout {p}"),
            Layer::Linear { name, .. } => format!("{name} dense"),
        }
    }

    /// Output shape (without batch) for an input of shape `input` (C, H, W) or (F).
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let spatial = |what: &str| -> Result<(usize, usize, usize), String> {
            match input {
                [c, h, w] => Ok((*c, *h, *w)),
                _ => Err(format!("{what} needs a (C, H, W) input, found {input:?}")),
            }
        };
        match self {
            Layer::Conv {
                kernel,
                stride,
                padding,
                out_channels,
                name,
                ..
            } => {
                let (_, h, w) = spatial(name)?;
                let out = |x: usize| -> Result<usize, String> {
                    (x + 2 * padding)
                        .checked_sub(*kernel)
                        .map(|v| v / stride + 1)
                        .ok_or_else(|| {
                            format!("{name}: kernel {kernel} larger than padded input {x}")
                        })
                };
                Ok(vec![*out_channels, out(h)?, out(w)?])
            }
            Layer::MaxPool { kernel, stride } => {
                let (c, h, w) = spatial("pool")?;
                let out = |x: usize| {
                    x.checked_sub(*kernel)
                        .map(|v| v / stride + 1)
                        .ok_or_else(|| format!("pool {kernel}: input {x} too small"))
                };
                Ok(vec![c, out(h)?, out(w)?])
            }
            Layer::Flatten => Ok(vec![input.iter().product()]),
            Layer::Linear { out_features, .. } => Ok(vec![*out_features]),
            Layer::Relu | Layer::BatchNorm { .. } | Layer::Dropout { .. } => Ok(input.to_vec()),
        }
    }
}
