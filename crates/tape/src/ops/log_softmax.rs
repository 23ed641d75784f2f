//! log_softmax over the last axis of an (N, K) matrix.

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::ops::{log_sum_exp, matrix_dims};
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id; backward reads the output (log-probabilities).
pub(crate) struct LogSoftmaxOp {
    input: NodeId,
}

impl<T: Float> Tape<T> {
    /// Row-wise `x - log(sum(exp(x)))`, computed stably.
    pub fn log_softmax(&mut self, x: NodeId) -> Result<NodeId, TapeError> {
        let xv = self.try_value("log_softmax", x)?;
        let (_, k) = matrix_dims("log_softmax", xv.shape())?;
        let mut out = vec![T::ZERO; xv.numel()];
        if k > 0 {
            for (o, row) in out.chunks_exact_mut(k).zip(xv.data().chunks_exact(k)) {
                let lse = log_sum_exp(row);
                for (oi, &v) in o.iter_mut().zip(row) {
                    *oi = v - lse;
                }
            }
        }
        let value = Tensor::from_vec(xv.shape(), out)?;
        Ok(self.push(value, Op::LogSoftmax(LogSoftmaxOp { input: x }), &[x]))
    }
}

impl LogSoftmaxOp {
    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        out: NodeId,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        let y = tape.try_value("log_softmax backward", out)?;
        let k = y.shape()[1];
        let mut dx = vec![T::ZERO; y.numel()];
        if k > 0 {
            // dx_i = g_i - softmax_i * sum_j g_j
            for ((d, yr), gr) in dx
                .chunks_exact_mut(k)
                .zip(y.data().chunks_exact(k))
                .zip(g.data().chunks_exact(k))
            {
                let gsum: T = gr.iter().copied().sum();
                for i in 0..k {
                    d[i] = gr[i] - yr[i].exp() * gsum;
                }
            }
        }
        grads.accumulate(self.input, Tensor::from_vec(y.shape(), dx)?);
        Ok(())
    }
}
