//! max_pool2d: the maximum of each window; backward scatters through the stored argmax.
//! relu_max_pool2d: the same pooling of `relu(x)` in one pass, for a ReLU straight into a pool.
//!
//! The fused op's values and gradients are bit for bit those of [`Tape::relu`] then
//! [`Tape::max_pool2d`] (the argument is in `pool::relu_max_pool2d`); it skips the ReLU's
//! full-size output and its backward pass. Both record a `MaxPool2dOp`: the backward is the
//! same scatter, and a window the fused forward found without a positive value
//! (`pool::NO_WINNER`) passes no gradient.

use pool::Pool2dGeometry;
use tensor::{Float, Tensor};

use crate::op::Op;
use crate::scratch::BufferPool;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id, geometry and the winning index of every output element.
pub(crate) struct MaxPool2dOp {
    input: NodeId,
    geom: Pool2dGeometry,
    argmax: Vec<u32>,
}

impl<T: Float> Tape<T> {
    /// Max-pool over `kernel x kernel` windows every `stride` pixels, no padding (floor mode).
    /// Ties go to the first maximum in row-major window order.
    pub fn max_pool2d(
        &mut self,
        x: NodeId,
        kernel: usize,
        stride: usize,
    ) -> Result<NodeId, TapeError> {
        self.record_pool(x, kernel, stride, false)
    }

    /// ReLU, then max-pool over `kernel x kernel` windows every `stride` pixels (no padding,
    /// floor mode), as one op. Ties go to the first maximum in row-major window order.
    pub fn relu_max_pool2d(
        &mut self,
        x: NodeId,
        kernel: usize,
        stride: usize,
    ) -> Result<NodeId, TapeError> {
        self.record_pool(x, kernel, stride, true)
    }

    /// Records `max_pool2d(x)`, or `max_pool2d(relu(x))` when `relu`.
    fn record_pool(
        &mut self,
        x: NodeId,
        kernel: usize,
        stride: usize,
        relu: bool,
    ) -> Result<NodeId, TapeError> {
        let (op, what) = if relu {
            ("relu_max_pool2d", "relu_max_pool2d input")
        } else {
            ("max_pool2d", "max_pool2d input")
        };
        let [n, c, h, w] = self.try_value(op, x)?.dims4(what)?;
        let geom = Pool2dGeometry::new(n, c, h, w, kernel, stride)?;
        // every forward kernel writes every output
        let mut out = self.scratch.buffers.output(geom.output_len());
        let recording = self.is_recording() && self.needs_grad(x);
        // every forward writes every argmax; a retired buffer needs no zeroing
        let mut argmax = if recording {
            self.scratch.argmax(geom.output_len())
        } else {
            Vec::new()
        };
        let input = self.value(x).data();
        match (recording, relu) {
            (true, false) => pool::max_pool2d_forward(&geom, input, &mut out, &mut argmax),
            (true, true) => pool::relu_max_pool2d_forward(&geom, input, &mut out, &mut argmax),
            (false, false) => pool::max_pool2d_forward_inference(&geom, input, &mut out),
            (false, true) => pool::relu_max_pool2d_forward_inference(&geom, input, &mut out),
        }
        let value = Tensor::from_vec(&[n, c, geom.out_h, geom.out_w], out)?;
        Ok(self.push(
            value,
            Op::MaxPool2d(MaxPool2dOp {
                input: x,
                geom,
                argmax,
            }),
            &[x],
        ))
    }
}

impl MaxPool2dOp {
    /// The argmax buffer, for reuse once the op is done.
    pub(crate) fn into_argmax(self) -> Vec<u32> {
        self.argmax
    }

    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
        buffers: &mut BufferPool<T>,
    ) -> Result<(), TapeError> {
        // max_pool2d_backward zeroes each plane before scattering into it
        let mut dx = buffers.output(self.geom.input_len());
        pool::max_pool2d_backward(&self.geom, g.data(), &self.argmax, &mut dx);
        let shape = tape
            .try_value("max_pool2d backward", self.input)?
            .shape()
            .to_vec();
        grads.accumulate(self.input, Tensor::from_vec(&shape, dx)?);
        Ok(())
    }
}
