//! relu_max_pool2d: `max_pool2d(relu(x))` in one pass, for a ReLU directly followed by a pool.
//!
//! The values and gradients are bit for bit those of [`Tape::relu`] then [`Tape::max_pool2d`]
//! (the argument is in `pool::relu_max_pool2d`); the fused op skips the ReLU's full-size output
//! and its backward pass, and the tape no longer holds that activation.

use pool::Pool2dGeometry;
use tensor::{Float, Tensor};

use crate::op::Op;
use crate::scratch::BufferPool;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id, geometry and the winner of every window (`pool::NO_WINNER` for a window with
/// no positive element, which passes no gradient).
pub(crate) struct ReluMaxPool2dOp {
    input: NodeId,
    geom: Pool2dGeometry,
    argmax: Vec<u32>,
}

impl<T: Float> Tape<T> {
    /// ReLU, then max-pool over `kernel x kernel` windows every `stride` pixels (no padding,
    /// floor mode), as one op. Ties go to the first maximum in row-major window order.
    pub fn relu_max_pool2d(
        &mut self,
        x: NodeId,
        kernel: usize,
        stride: usize,
    ) -> Result<NodeId, TapeError> {
        let [n, c, h, w] = self
            .try_value("relu_max_pool2d", x)?
            .dims4("relu_max_pool2d input")?;
        let geom = Pool2dGeometry::new(n, c, h, w, kernel, stride)?;
        // both forward kernels write every output
        let mut out = self.scratch.buffers.output(geom.output_len());
        let recording = self.is_recording() && self.needs_grad(x);
        let mut argmax = Vec::new();
        if recording {
            argmax = vec![0u32; geom.output_len()];
            pool::relu_max_pool2d_forward(&geom, self.value(x).data(), &mut out, &mut argmax);
        } else {
            pool::relu_max_pool2d_forward_inference(&geom, self.value(x).data(), &mut out);
        }
        let value = Tensor::from_vec(&[n, c, geom.out_h, geom.out_w], out)?;
        Ok(self.push(
            value,
            Op::ReluMaxPool2d(ReluMaxPool2dOp {
                input: x,
                geom,
                argmax,
            }),
            &[x],
        ))
    }
}

impl ReluMaxPool2dOp {
    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
        buffers: &mut BufferPool<T>,
    ) -> Result<(), TapeError> {
        // max_pool2d_backward zeroes each plane, then scatters to the winners it is given
        let mut dx = buffers.output(self.geom.input_len());
        pool::max_pool2d_backward(&self.geom, g.data(), &self.argmax, &mut dx);
        let shape = tape
            .try_value("relu_max_pool2d backward", self.input)?
            .shape()
            .to_vec();
        grads.accumulate(self.input, Tensor::from_vec(&shape, dx)?);
        Ok(())
    }
}
