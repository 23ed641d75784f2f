//! `ModelBuilder`: appends layers while tracking the running shape and drawing weights.

use tensor::{Float, Tensor};

use super::init::{draw_weight_and_bias, Init, UniformSource};
use super::layer::Layer;
use super::{Model, ModelError, ModelKind, ParamInfo};

/// Builds a sequential [`Model`] layer by layer.
pub struct ModelBuilder<T> {
    kind: ModelKind,
    input: [usize; 3],
    classes: usize,
    init: Init,
    src: UniformSource,
    shape: Vec<usize>,
    layers: Vec<Layer>,
    params: Vec<Tensor<T>>,
    param_info: Vec<ParamInfo>,
    buffers: Vec<Tensor<T>>,
    buffer_names: Vec<String>,
}

impl<T: Float> ModelBuilder<T> {
    /// Starts a model of `kind` for inputs (C, H, W) and `classes` outputs.
    pub fn new(kind: ModelKind, input: [usize; 3], classes: usize, init: Init, seed: u64) -> Self {
        Self {
            kind,
            input,
            classes,
            init,
            src: UniformSource::new(seed),
            shape: input.to_vec(),
            layers: Vec::new(),
            params: Vec::new(),
            param_info: Vec::new(),
            buffers: Vec::new(),
            buffer_names: Vec::new(),
        }
    }

    fn push_layer(&mut self, layer: Layer) -> Result<&mut Self, ModelError> {
        self.shape = layer
            .output_shape(&self.shape)
            .map_err(|what| ModelError::Geometry {
                model: self.kind,
                input: self.input,
                what,
            })?;
        self.layers.push(layer);
        Ok(self)
    }

    fn add_param(&mut self, name: String, shape: Vec<usize>, values: Vec<f64>, l2: bool) -> usize {
        self.params.push(
            Tensor::from_vec(&shape, values.into_iter().map(T::from_f64).collect())
                .expect("length from shape"),
        );
        self.param_info.push(ParamInfo { name, shape, l2 });
        self.params.len() - 1
    }

    /// A new 3x3-style convolution named `name` with `out` channels.
    pub fn conv(
        &mut self,
        name: &str,
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<&mut Self, ModelError> {
        let cin = self.shape[0];
        let area = kernel * kernel;
        let (w, b) = draw_weight_and_bias(
            self.init,
            &mut self.src,
            out * cin * area,
            out,
            cin * area,
            out * area,
        );
        let weight = self.add_param(
            format!("{name}.weight"),
            vec![out, cin, kernel, kernel],
            w,
            true,
        );
        let bias = self.add_param(format!("{name}.bias"), vec![out], b, false);
        self.push_layer(Layer::Conv {
            name: name.into(),
            weight,
            bias,
            kernel,
            stride,
            padding,
            out_channels: out,
        })
    }

    /// Applies an existing convolution layer again, with the same weights.
    pub fn reuse_conv(&mut self, name: &str) -> Result<&mut Self, ModelError> {
        let layer = self
            .layers
            .iter()
            .find(|l| matches!(l, Layer::Conv { name: n, .. } if n == name))
            .cloned()
            .ok_or_else(|| ModelError::Geometry {
                model: self.kind,
                input: self.input,
                what: format!("no conv named {name} to reuse"),
            })?;
        self.push_layer(layer)
    }

    /// ReLU.
    pub fn relu(&mut self) -> Result<&mut Self, ModelError> {
        self.push_layer(Layer::Relu)
    }

    /// Max-pool.
    pub fn pool(&mut self, kernel: usize, stride: usize) -> Result<&mut Self, ModelError> {
        self.push_layer(Layer::MaxPool { kernel, stride })
    }

    /// Batch norm (Keras defaults passed in: eps 1e-3, momentum 0.99), gamma 1, beta 0.
    pub fn batch_norm(
        &mut self,
        name: &str,
        eps: f64,
        momentum: f64,
    ) -> Result<&mut Self, ModelError> {
        let c = self.shape[0];
        let gamma = self.add_param(format!("{name}.weight"), vec![c], vec![1.0; c], false);
        let beta = self.add_param(format!("{name}.bias"), vec![c], vec![0.0; c], false);
        self.buffers.push(Tensor::zeros(&[c]));
        self.buffer_names.push(format!("{name}.running_mean"));
        self.buffers.push(Tensor::full(&[c], T::ONE));
        self.buffer_names.push(format!("{name}.running_var"));
        let (mean, var) = (self.buffers.len() - 2, self.buffers.len() - 1);
        self.push_layer(Layer::BatchNorm {
            name: name.into(),
            gamma,
            beta,
            mean,
            var,
            eps,
            momentum,
        })
    }

    /// Flatten.
    pub fn flatten(&mut self) -> Result<&mut Self, ModelError> {
        self.push_layer(Layer::Flatten)
    }

    /// Dropout with probability `p`.
    pub fn dropout(&mut self, p: f64) -> Result<&mut Self, ModelError> {
        self.push_layer(Layer::Dropout { p })
    }

    /// A dense layer named `name` with `out` features.
    pub fn linear(&mut self, name: &str, out: usize) -> Result<&mut Self, ModelError> {
        let fin = self.shape[0];
        let (w, b) = draw_weight_and_bias(self.init, &mut self.src, out * fin, out, fin, out);
        let weight = self.add_param(format!("{name}.weight"), vec![out, fin], w, true);
        let bias = self.add_param(format!("{name}.bias"), vec![out], b, false);
        self.push_layer(Layer::Linear {
            name: name.into(),
            weight,
            bias,
            out_features: out,
        })
    }

    /// The dense output layer with one unit per class.
    pub fn head(&mut self, name: &str) -> Result<&mut Self, ModelError> {
        let classes = self.classes;
        self.linear(name, classes)
    }

    /// Finishes the model; the last layer must produce one value per class.
    pub fn build(self) -> Result<Model<T>, ModelError> {
        if self.shape != [self.classes] {
            return Err(ModelError::Geometry {
                model: self.kind,
                input: self.input,
                what: format!(
                    "ends with shape {:?}, expected [{}]",
                    self.shape, self.classes
                ),
            });
        }
        Ok(Model {
            kind: self.kind,
            input: self.input,
            classes: self.classes,
            layers: self.layers,
            params: shared(self.params),
            param_info: self.param_info,
            buffers: self.buffers,
            buffer_names: self.buffer_names,
        })
    }
}

/// `params` made shared ([`Tensor::make_shared`]): a model's tapes hold them without a copy.
pub(super) fn shared<T: Float>(mut params: Vec<Tensor<T>>) -> Vec<Tensor<T>> {
    params.iter_mut().for_each(Tensor::make_shared);
    params
}
