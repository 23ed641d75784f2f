//! softmax over the last axis of an (N, K) matrix.

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::ops::{matrix_dims, softmax_row};
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id; backward reads the output (the probabilities).
pub(crate) struct SoftmaxOp {
    input: NodeId,
}

impl<T: Float> Tape<T> {
    /// Row-wise softmax of (N, K) logits.
    pub fn softmax(&mut self, x: NodeId) -> Result<NodeId, TapeError> {
        let xv = self.try_value("softmax", x)?;
        let (_, k) = matrix_dims("softmax", xv.shape())?;
        let mut out = vec![T::ZERO; xv.numel()];
        if k > 0 {
            for (o, row) in out.chunks_exact_mut(k).zip(xv.data().chunks_exact(k)) {
                softmax_row(row, o);
            }
        }
        let value = Tensor::from_vec(xv.shape(), out)?;
        Ok(self.push(value, Op::Softmax(SoftmaxOp { input: x }), &[x]))
    }
}

impl SoftmaxOp {
    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        out: NodeId,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        let y = tape.try_value("softmax backward", out)?;
        let k = y.shape()[1];
        let mut dx = vec![T::ZERO; y.numel()];
        if k > 0 {
            // dx_i = y_i * (g_i - sum_j g_j y_j)
            for ((d, yr), gr) in dx
                .chunks_exact_mut(k)
                .zip(y.data().chunks_exact(k))
                .zip(g.data().chunks_exact(k))
            {
                let dot: T = yr.iter().zip(gr).map(|(&a, &b)| a * b).sum();
                for i in 0..k {
                    d[i] = yr[i] * (gr[i] - dot);
                }
            }
        }
        grads.accumulate(self.input, Tensor::from_vec(y.shape(), dx)?);
        Ok(())
    }
}
