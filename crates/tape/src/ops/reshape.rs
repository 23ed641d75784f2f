//! reshape / flatten: the same elements under another shape.

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id and its shape, to reshape the gradient back.
pub(crate) struct ReshapeOp {
    input: NodeId,
    input_shape: Vec<usize>,
}

impl<T: Float> Tape<T> {
    /// The same elements, row-major, under `shape` (same element count).
    pub fn reshape(&mut self, x: NodeId, shape: &[usize]) -> Result<NodeId, TapeError> {
        let xv = self.try_value("reshape", x)?;
        let input_shape = xv.shape().to_vec();
        let value = xv.clone().reshape(shape)?;
        Ok(self.push(
            value,
            Op::Reshape(ReshapeOp {
                input: x,
                input_shape,
            }),
            &[x],
        ))
    }

    /// (N, ...) to (N, rest) in C, H, W order, like PyTorch's `x.view(n, -1)`.
    pub fn flatten(&mut self, x: NodeId) -> Result<NodeId, TapeError> {
        let shape = self.try_value("flatten", x)?.shape().to_vec();
        if shape.is_empty() {
            return Err(TapeError::Shape {
                op: "flatten",
                expected: "at least one dimension".into(),
                found: shape,
            });
        }
        let rest: usize = shape[1..].iter().product();
        self.reshape(x, &[shape[0], rest])
    }
}

impl ReshapeOp {
    pub(crate) fn backward<T: Float>(
        &self,
        _tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        grads.accumulate(self.input, g.clone().reshape(&self.input_shape)?);
        Ok(())
    }
}
