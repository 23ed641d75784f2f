//! The study's three networks as sequential models, and their forward pass on a tape.

mod alexnet;
pub mod builder;
mod deep;
pub mod init;
pub mod layer;
mod medium;
pub mod spec;
mod table;

use std::fmt;
use std::str::FromStr;

use tape::{BatchNormMode, NodeId, Tape, TapeError};
use tensor::{Float, Tensor};

pub use alexnet::alexnet;
pub use deep::deep;
pub use layer::Layer;
pub use medium::medium;
pub use spec::{build_from_specs, LayerSpec};
pub use table::{layer_table, LayerRow};

/// Which of the study's networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The "deep network" (~180k parameters).
    Deep,
    /// The "AlexNet clone" (>10M parameters).
    Alexnet,
    /// The flower figures' network (a conv used twice).
    Medium,
    /// A network built in code from the layer set: no preset; its checkpoint stores its layers.
    Custom,
}

impl ModelKind {
    /// Every kind, in the order the CLI lists them.
    pub const ALL: [ModelKind; 3] = [ModelKind::Deep, ModelKind::Alexnet, ModelKind::Medium];

    /// Builds this network for inputs (C, H, W) with `classes` outputs, weights drawn from `seed`.
    pub fn build<T: Float>(
        self,
        input: [usize; 3],
        classes: usize,
        seed: u64,
    ) -> Result<Model<T>, ModelError> {
        match self {
            ModelKind::Deep => deep(input, classes, seed),
            ModelKind::Alexnet => alexnet(input, classes, seed),
            ModelKind::Medium => medium(input, classes, seed),
            ModelKind::Custom => Err(ModelError::Geometry {
                model: self,
                input,
                what: "a custom network has no preset: build it with ModelBuilder, or load it \
                       from a checkpoint that stores its layers"
                    .into(),
            }),
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::Deep => "deep",
            ModelKind::Alexnet => "alexnet",
            ModelKind::Medium => "medium",
            ModelKind::Custom => "custom",
        })
    }
}

impl FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "deep" => Ok(ModelKind::Deep),
            "alexnet" => Ok(ModelKind::Alexnet),
            "medium" => Ok(ModelKind::Medium),
            "custom" => Ok(ModelKind::Custom),
            other => Err(format!(
                "unknown model '{other}': expected one of deep, alexnet, medium"
            )),
        }
    }
}

/// Errors building or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The architecture does not fit the input shape.
    #[error("model {model} for input {input:?}: {what}")]
    Geometry {
        model: ModelKind,
        input: [usize; 3],
        what: String,
    },
    /// The batch given to forward has the wrong shape.
    #[error("model {model}: expected a batch of shape (N, {}, {}, {}), found {found:?}", expected[0], expected[1], expected[2])]
    InputShape {
        model: ModelKind,
        expected: [usize; 3],
        found: Vec<usize>,
    },
    /// An op failed.
    #[error(transparent)]
    Tape(#[from] TapeError),
}

/// Name, shape and whether the L2 penalty applies, for one parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamInfo {
    /// PyTorch-style name, e.g. `conv1.weight`.
    pub name: String,
    /// PyTorch layout: conv (out, in, kh, kw), linear (out, in), vectors (n).
    pub shape: Vec<usize>,
    /// True for conv and dense kernels (the study's L2 penalty), false for biases and batch norm.
    pub l2: bool,
}

/// Training or evaluation behaviour for dropout and batch norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Dropout active (masks seeded from `seed`), batch norm uses and updates batch statistics.
    Train { seed: u64 },
    /// Dropout off, batch norm uses its running statistics, nothing is updated.
    Eval,
}

/// New running statistics for one batch-norm layer, produced by a training forward pass.
#[derive(Clone, Debug)]
pub struct RunningUpdate<T> {
    mean_buffer: usize,
    var_buffer: usize,
    momentum: f64,
    batch_mean: Vec<T>,
    batch_var: Vec<T>,
}

/// A sequential network: layers, parameters (trainable) and buffers (running statistics).
#[derive(Clone, Debug)]
pub struct Model<T> {
    /// Which network.
    pub kind: ModelKind,
    /// Input shape (C, H, W).
    pub input: [usize; 3],
    /// Number of classes.
    pub classes: usize,
    /// The layers in order.
    pub layers: Vec<Layer>,
    /// Parameter values, in `param_info` order.
    pub params: Vec<Tensor<T>>,
    /// Parameter names and shapes.
    pub param_info: Vec<ParamInfo>,
    /// Buffer values (batch-norm running mean and variance).
    pub buffers: Vec<Tensor<T>>,
    /// Buffer names, e.g. `bn1.running_mean`.
    pub buffer_names: Vec<String>,
}

impl<T: Float> Model<T> {
    /// Trainable parameters.
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.numel()).sum()
    }

    /// Parameters plus running statistics (how Keras counts).
    pub fn total_count(&self) -> usize {
        self.param_count() + self.buffers.iter().map(|b| b.numel()).sum::<usize>()
    }

    /// Puts the parameters on `tape`: as variables when their gradient is wanted (training),
    /// else as constants (attribution only needs the input's gradient).
    ///
    /// A built, cast or loaded model's parameters are shared tensors, which the tape holds
    /// without a copy ([`Tape::shared_leaves`]; one set by hand is copied): a copy per shard is
    /// 40 MB per inference call for `alexnet`, and cost `deep`'s batch-16 training step 2-4 %
    /// on the Xeon of docs/performance.md. Writing a parameter while a tape still holds it
    /// copies that parameter first, so a caller about to update the model lets go of the
    /// tapes' shares first (`train::forward_backward` does).
    pub fn bind(&self, tape: &mut Tape<T>, trainable: bool) -> Vec<NodeId> {
        tape.shared_leaves(&self.params, trainable)
    }

    /// Moves the parameters onto `tape` as variables (no copy: alexnet's are 40 MB) and returns
    /// their nodes; the model holds empty tensors until [`Model::take_back`]. Use it through
    /// `train::forward_backward`, which always hands them back, also on errors.
    pub fn lend(&mut self, tape: &mut Tape<T>) -> Vec<NodeId> {
        self.params
            .iter_mut()
            .map(|p| tape.variable(std::mem::replace(p, Tensor::zeros(&[0]))))
            .collect()
    }

    /// Takes the parameters lent by [`Model::lend`] back from `tape`.
    pub fn take_back(&mut self, tape: &mut Tape<T>, ids: &[NodeId]) {
        for (p, &id) in self.params.iter_mut().zip(ids) {
            if let Some(value) = tape.take_value(id) {
                *p = value;
            }
        }
    }

    /// Runs the network on the batch `x` (N, C, H, W) and returns the logits node (N, classes)
    /// and, in training mode, the batch-norm statistics to fold into the running ones.
    ///
    /// On a no-record tape each intermediate value is released once the next layer has read
    /// it, so inference holds about two activations at a time.
    pub fn forward(
        &self,
        tape: &mut Tape<T>,
        x: NodeId,
        params: &[NodeId],
        mode: Mode,
    ) -> Result<(NodeId, Vec<RunningUpdate<T>>), ModelError> {
        let shape = tape.value(x).shape().to_vec();
        if shape.len() != 4 || shape[1..] != self.input {
            return Err(ModelError::InputShape {
                model: self.kind,
                expected: self.input,
                found: shape,
            });
        }
        self.forward_layers(tape, x, params, mode, 0..self.layers.len())
    }

    /// Runs layers `span` only, from the node `x` (whatever shape those layers take), and
    /// returns the last node and the batch-norm updates: [`Model::forward`] is the whole span.
    /// Splitting a pass in two gives a layer's output as a leaf of its own (Grad-CAM
    /// differentiates with respect to a conv layer's output). The caller checks `x`'s shape.
    pub fn forward_layers(
        &self,
        tape: &mut Tape<T>,
        x: NodeId,
        params: &[NodeId],
        mode: Mode,
        span: std::ops::Range<usize>,
    ) -> Result<(NodeId, Vec<RunningUpdate<T>>), ModelError> {
        let mut h = x;
        let mut updates = Vec::new();
        let mut pool_done_by_relu = false;
        let end = span.end.min(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate().take(end).skip(span.start) {
            if std::mem::take(&mut pool_done_by_relu) {
                continue;
            }
            let next = match layer {
                Layer::Conv {
                    weight,
                    bias,
                    stride,
                    padding,
                    ..
                } => tape.conv2d(h, params[*weight], Some(params[*bias]), *stride, *padding)?,
                // A ReLU straight into a max-pool runs as one op: the same values and
                // gradients bit for bit, without the ReLU's full-size activation.
                Layer::Relu => match self.layers.get(i + 1).filter(|_| i + 1 < end) {
                    Some(Layer::MaxPool { kernel, stride }) => {
                        pool_done_by_relu = true;
                        tape.relu_max_pool2d(h, *kernel, *stride)?
                    }
                    _ => tape.relu(h)?,
                },
                Layer::MaxPool { kernel, stride } => tape.max_pool2d(h, *kernel, *stride)?,
                Layer::Flatten => tape.flatten(h)?,
                Layer::Linear { weight, bias, .. } => {
                    tape.linear(h, params[*weight], Some(params[*bias]))?
                }
                Layer::Dropout { p } => match mode {
                    Mode::Train { seed } => tape.dropout(h, *p, mix_seed(seed, i as u64))?,
                    Mode::Eval => h,
                },
                Layer::BatchNorm {
                    gamma,
                    beta,
                    mean,
                    var,
                    eps,
                    momentum,
                    ..
                } => match mode {
                    Mode::Train { .. } => {
                        let out = tape.batch_norm2d(
                            h,
                            params[*gamma],
                            params[*beta],
                            *eps,
                            BatchNormMode::Train,
                        )?;
                        if let (Some(batch_mean), Some(batch_var)) =
                            (out.batch_mean, out.batch_var_unbiased)
                        {
                            updates.push(RunningUpdate {
                                mean_buffer: *mean,
                                var_buffer: *var,
                                momentum: *momentum,
                                batch_mean,
                                batch_var,
                            });
                        }
                        out.node
                    }
                    Mode::Eval => {
                        let mode = BatchNormMode::Eval {
                            running_mean: self.buffers[*mean].data(),
                            running_var: self.buffers[*var].data(),
                        };
                        tape.batch_norm2d(h, params[*gamma], params[*beta], *eps, mode)?
                            .node
                    }
                },
            };
            if !tape.is_recording() && h != x && next != h {
                tape.release(h);
            }
            h = next;
        }
        Ok((h, updates))
    }

    /// Folds batch statistics into the running ones: `r = momentum * r + (1 - momentum) * batch`.
    pub fn apply_running_updates(&mut self, updates: &[RunningUpdate<T>]) {
        for u in updates {
            let m = T::from_f64(u.momentum);
            let one_minus = T::from_f64(1.0 - u.momentum);
            for (r, &b) in self.buffers[u.mean_buffer]
                .data_mut()
                .iter_mut()
                .zip(&u.batch_mean)
            {
                *r = m * *r + one_minus * b;
            }
            for (r, &b) in self.buffers[u.var_buffer]
                .data_mut()
                .iter_mut()
                .zip(&u.batch_var)
            {
                *r = m * *r + one_minus * b;
            }
        }
    }

    /// Every stored tensor with its name: parameters, then buffers (the checkpoint layout).
    pub fn named_tensors(&self) -> Vec<(&str, &Tensor<T>)> {
        let params = self
            .param_info
            .iter()
            .map(|i| i.name.as_str())
            .zip(&self.params);
        let buffers = self
            .buffer_names
            .iter()
            .map(|n| n.as_str())
            .zip(&self.buffers);
        params.chain(buffers).collect()
    }

    /// Converts every parameter and buffer to another float type.
    pub fn cast<U: Float>(&self) -> Model<U> {
        Model {
            kind: self.kind,
            input: self.input,
            classes: self.classes,
            layers: self.layers.clone(),
            params: builder::shared(self.params.iter().map(|p| p.cast()).collect()),
            param_info: self.param_info.clone(),
            buffers: self.buffers.iter().map(|b| b.cast()).collect(),
            buffer_names: self.buffer_names.clone(),
        }
    }
}

/// Derives an independent seed for layer `salt` from a step seed (SplitMix64 finalizer).
pub fn mix_seed(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
