//! add: elementwise sum of two tensors of the same shape.

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::ops::same_shape;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The two input ids.
pub(crate) struct AddOp {
    a: NodeId,
    b: NodeId,
}

impl<T: Float> Tape<T> {
    /// `a + b`, elementwise; shapes must match.
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, TapeError> {
        let av = self.try_value("add", a)?;
        let bv = self.try_value("add", b)?;
        same_shape("add", av.shape(), bv.shape())?;
        let mut value = av.clone();
        T::vadd_assign(value.data_mut(), bv.data());
        Ok(self.push(value, Op::Add(AddOp { a, b }), &[a, b]))
    }
}

impl AddOp {
    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        for id in [self.a, self.b] {
            if tape.needs_grad(id) {
                grads.accumulate(id, g.clone());
            }
        }
        Ok(())
    }
}
