//! square_sum: `sum(x^2)`, the L2 penalty's core.

use tensor::parallel::ordered_sum;
use tensor::{Float, Tensor};

use crate::op::Op;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id.
pub(crate) struct SquareSumOp {
    input: NodeId,
}

impl<T: Float> Tape<T> {
    /// The sum of squares of every element. Output shape `[1]`.
    pub fn square_sum(&mut self, x: NodeId) -> Result<NodeId, TapeError> {
        let xv = self.try_value("square_sum", x)?;
        let mut sq = vec![T::ZERO; xv.numel()];
        T::vmul(xv.data(), xv.data(), &mut sq);
        let value = Tensor::scalar(ordered_sum(&sq));
        Ok(self.push(value, Op::SquareSum(SquareSumOp { input: x }), &[x]))
    }
}

impl SquareSumOp {
    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        let x = tape.try_value("square_sum backward", self.input)?;
        let mut dx = x.clone();
        T::vscale(T::from_f64(2.0) * g.data()[0], dx.data_mut());
        grads.accumulate(self.input, dx);
        Ok(())
    }
}
