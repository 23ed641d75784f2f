//! max_pool2d: the maximum of each window; backward scatters through the stored argmax.

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
        let [n, c, h, w] = self.try_value("max_pool2d", x)?.dims4("max_pool2d input")?;
        let geom = Pool2dGeometry::new(n, c, h, w, kernel, stride)?;
        // both forward kernels write every output
        let mut out = self.scratch.buffers.output(geom.output_len());
        let recording = self.is_recording() && self.needs_grad(x);
        let mut argmax = Vec::new();
        if recording {
            argmax = vec![0u32; geom.output_len()];
            pool::max_pool2d_forward(&geom, self.value(x).data(), &mut out, &mut argmax);
        } else {
            pool::max_pool2d_forward_inference(&geom, self.value(x).data(), &mut out);
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
