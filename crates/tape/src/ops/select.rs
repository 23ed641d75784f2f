//! select: one chosen element of each row (a target class's output).

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::ops::{check_labels, matrix_dims, scatter_rows};
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id, its shape and the chosen column of each row.
pub(crate) struct SelectOp {
    input: NodeId,
    shape: Vec<usize>,
    indices: Vec<usize>,
}

impl<T: Float> Tape<T> {
    /// `x[n, indices[n]]` for every row of (N, K). Output (N).
    pub fn select(&mut self, x: NodeId, indices: &[usize]) -> Result<NodeId, TapeError> {
        let xv = self.try_value("select", x)?;
        let (n, k) = matrix_dims("select", xv.shape())?;
        check_labels("select", indices, n, k)?;
        let value = Tensor::from_vec(
            &[n],
            xv.data()
                .chunks_exact(k)
                .zip(indices)
                .map(|(r, &j)| r[j])
                .collect(),
        )?;
        let shape = xv.shape().to_vec();
        Ok(self.push(
            value,
            Op::Select(SelectOp {
                input: x,
                shape,
                indices: indices.to_vec(),
            }),
            &[x],
        ))
    }
}

impl SelectOp {
    pub(crate) fn backward<T: Float>(
        &self,
        _tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        grads.accumulate(
            self.input,
            scatter_rows(&self.shape, &self.indices, g.data())?,
        );
        Ok(())
    }
}
