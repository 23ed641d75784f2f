//! sum: all elements to one, in a fixed order.

use tensor::parallel::ordered_sum;
use tensor::{Float, Tensor};

use crate::op::Op;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id and shape.
pub(crate) struct SumOp {
    input: NodeId,
    shape: Vec<usize>,
}

impl<T: Float> Tape<T> {
    /// The sum of every element. Output shape `[1]`.
    pub fn sum(&mut self, x: NodeId) -> Result<NodeId, TapeError> {
        let xv = self.try_value("sum", x)?;
        let shape = xv.shape().to_vec();
        let value = Tensor::scalar(ordered_sum(xv.data()));
        Ok(self.push(value, Op::Sum(SumOp { input: x, shape }), &[x]))
    }
}

impl SumOp {
    pub(crate) fn backward<T: Float>(
        &self,
        _tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        grads.accumulate(self.input, Tensor::full(&self.shape, g.data()[0]));
        Ok(())
    }
}
