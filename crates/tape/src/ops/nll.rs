//! nll: mean over the batch of `-input[label]` (negative log-likelihood of log-probabilities).

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::ops::{check_labels, matrix_dims};
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id and the labels.
pub(crate) struct NllOp {
    input: NodeId,
    labels: Vec<usize>,
}

impl<T: Float> Tape<T> {
    /// `-mean_n input[n, labels[n]]` for (N, K) log-probabilities. Output shape `[1]`.
    pub fn nll(&mut self, logp: NodeId, labels: &[usize]) -> Result<NodeId, TapeError> {
        let xv = self.try_value("nll", logp)?;
        let (n, k) = matrix_dims("nll", xv.shape())?;
        check_labels("nll", labels, n, k)?;
        let total: T = xv
            .data()
            .chunks_exact(k)
            .zip(labels)
            .map(|(row, &y)| row[y])
            .sum();
        let value = Tensor::scalar(-total / T::from_usize(n));
        Ok(self.push(
            value,
            Op::Nll(NllOp {
                input: logp,
                labels: labels.to_vec(),
            }),
            &[logp],
        ))
    }
}

impl NllOp {
    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        let shape = tape.try_value("nll backward", self.input)?.shape().to_vec();
        let (n, k) = (shape[0], shape[1]);
        let mut dx = vec![T::ZERO; n * k];
        let v = -g.data()[0] / T::from_usize(n);
        for (row, &y) in self.labels.iter().enumerate() {
            dx[row * k + y] = v;
        }
        grads.accumulate(self.input, Tensor::from_vec(&shape, dx)?);
        Ok(())
    }
}
