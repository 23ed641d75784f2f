//! relu: `y = max(x, 0)`; backward passes the gradient where `x > 0`.

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::scratch::BufferPool;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id (its value decides where gradient passes).
pub(crate) struct ReluOp {
    input: NodeId,
}

impl<T: Float> Tape<T> {
    /// Rectified linear unit, elementwise.
    pub fn relu(&mut self, x: NodeId) -> Result<NodeId, TapeError> {
        let xv = self.try_value("relu", x)?;
        let (n, shape) = (xv.numel(), xv.shape().to_vec());
        let mut out = self.scratch.buffers.output(n);
        // vrelu overwrites every element
        T::vrelu(self.value(x).data(), &mut out);
        let value = Tensor::from_vec(&shape, out)?;
        Ok(self.push(value, Op::Relu(ReluOp { input: x }), &[x]))
    }
}

impl ReluOp {
    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
        buffers: &mut BufferPool<T>,
    ) -> Result<(), TapeError> {
        let x = tape.try_value("relu backward", self.input)?;
        // vrelu_backward overwrites every element
        let mut dx = buffers.output(x.numel());
        T::vrelu_backward(x.data(), g.data(), &mut dx);
        grads.accumulate(self.input, Tensor::from_vec(x.shape(), dx)?);
        Ok(())
    }
}
