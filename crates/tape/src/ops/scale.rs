//! scale: every element times a constant.

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id and the factor.
pub(crate) struct ScaleOp<T> {
    input: NodeId,
    factor: T,
}

impl<T: Float> Tape<T> {
    /// `factor * x`, elementwise.
    pub fn scale(&mut self, x: NodeId, factor: T) -> Result<NodeId, TapeError> {
        let mut value = self.try_value("scale", x)?.clone();
        T::vscale(factor, value.data_mut());
        Ok(self.push(value, Op::Scale(ScaleOp { input: x, factor }), &[x]))
    }
}

impl<T: Float> ScaleOp<T> {
    pub(crate) fn backward(
        &self,
        _tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        let mut dx = g.clone();
        T::vscale(self.factor, dx.data_mut());
        grads.accumulate(self.input, dx);
        Ok(())
    }
}
