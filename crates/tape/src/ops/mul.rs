//! mul: elementwise product of two tensors of the same shape.

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::ops::same_shape;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The two input ids.
pub(crate) struct MulOp {
    a: NodeId,
    b: NodeId,
}

impl<T: Float> Tape<T> {
    /// `a * b`, elementwise; shapes must match.
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, TapeError> {
        let av = self.try_value("mul", a)?;
        let bv = self.try_value("mul", b)?;
        same_shape("mul", av.shape(), bv.shape())?;
        let mut out = vec![T::ZERO; av.numel()];
        T::vmul(av.data(), bv.data(), &mut out);
        let value = Tensor::from_vec(av.shape(), out)?;
        Ok(self.push(value, Op::Mul(MulOp { a, b }), &[a, b]))
    }
}

impl MulOp {
    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        // d(a*b)/da = b, d(a*b)/db = a.
        for (id, other) in [(self.a, self.b), (self.b, self.a)] {
            if tape.needs_grad(id) {
                let ov = tape.try_value("mul backward", other)?;
                let mut d = vec![T::ZERO; g.numel()];
                T::vmul(g.data(), ov.data(), &mut d);
                grads.accumulate(id, Tensor::from_vec(g.shape(), d)?);
            }
        }
        Ok(())
    }
}
