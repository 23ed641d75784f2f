//! mean: all elements to their average, in a fixed order.

use tensor::parallel::ordered_sum;
use tensor::{Float, Tensor};

use crate::op::Op;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id and shape.
pub(crate) struct MeanOp {
    input: NodeId,
    shape: Vec<usize>,
}

impl<T: Float> Tape<T> {
    /// The mean of every element. Output shape `[1]`.
    pub fn mean(&mut self, x: NodeId) -> Result<NodeId, TapeError> {
        let xv = self.try_value("mean", x)?;
        if xv.numel() == 0 {
            return Err(TapeError::Shape {
                op: "mean",
                expected: "at least one element".into(),
                found: xv.shape().to_vec(),
            });
        }
        let shape = xv.shape().to_vec();
        let value = Tensor::scalar(ordered_sum(xv.data()) / T::from_usize(xv.numel()));
        Ok(self.push(value, Op::Mean(MeanOp { input: x, shape }), &[x]))
    }
}

impl MeanOp {
    pub(crate) fn backward<T: Float>(
        &self,
        _tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        let n: usize = self.shape.iter().product();
        grads.accumulate(
            self.input,
            Tensor::full(&self.shape, g.data()[0] / T::from_usize(n)),
        );
        Ok(())
    }
}
