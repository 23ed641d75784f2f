//! max_row: the maximum of each row of an (N, K) matrix; ties go to the first maximum.

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::ops::{matrix_dims, scatter_rows};
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id, its shape and the winning column of each row.
pub(crate) struct MaxRowOp {
    input: NodeId,
    shape: Vec<usize>,
    argmax: Vec<usize>,
}

impl<T: Float> Tape<T> {
    /// Row maxima of (N, K), K >= 1. Output (N). Gradient flows to the first maximal element.
    pub fn max_row(&mut self, x: NodeId) -> Result<NodeId, TapeError> {
        let xv = self.try_value("max_row", x)?;
        let (n, k) = matrix_dims("max_row", xv.shape())?;
        if k == 0 {
            return Err(TapeError::Shape {
                op: "max_row",
                expected: "at least one column".into(),
                found: xv.shape().to_vec(),
            });
        }
        let argmax: Vec<usize> = xv.data().chunks_exact(k).map(argmax_first).collect();
        let value = Tensor::from_vec(
            &[n],
            xv.data()
                .chunks_exact(k)
                .zip(&argmax)
                .map(|(r, &j)| r[j])
                .collect(),
        )?;
        let shape = xv.shape().to_vec();
        Ok(self.push(
            value,
            Op::MaxRow(MaxRowOp {
                input: x,
                shape,
                argmax,
            }),
            &[x],
        ))
    }
}

/// Index of the first maximum (strictly-greater comparison keeps the earliest).
pub fn argmax_first<T: Float>(row: &[T]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate().skip(1) {
        if v > row[best] {
            best = j;
        }
    }
    best
}

impl MaxRowOp {
    pub(crate) fn backward<T: Float>(
        &self,
        _tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        grads.accumulate(
            self.input,
            scatter_rows(&self.shape, &self.argmax, g.data())?,
        );
        Ok(())
    }
}
