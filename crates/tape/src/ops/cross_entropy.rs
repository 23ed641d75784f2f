//! cross_entropy: mean over the batch of `-log softmax(logits)[label]`, fused for stability.

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::ops::{check_labels, log_sum_exp, matrix_dims, softmax_row};
use crate::{Gradients, NodeId, Tape, TapeError};

/// The logits id and the labels.
pub(crate) struct CrossEntropyOp {
    logits: NodeId,
    labels: Vec<usize>,
}

impl<T: Float> Tape<T> {
    /// Cross-entropy of (N, K) logits against `labels` (N, each < K), averaged over N. Output shape `[1]`.
    pub fn cross_entropy(&mut self, logits: NodeId, labels: &[usize]) -> Result<NodeId, TapeError> {
        let xv = self.try_value("cross_entropy", logits)?;
        let (n, k) = matrix_dims("cross_entropy", xv.shape())?;
        check_labels("cross_entropy", labels, n, k)?;
        let mut total = T::ZERO;
        for (row, &y) in xv.data().chunks_exact(k).zip(labels) {
            total += log_sum_exp(row) - row[y];
        }
        let value = Tensor::scalar(total / T::from_usize(n));
        Ok(self.push(
            value,
            Op::CrossEntropy(CrossEntropyOp {
                logits,
                labels: labels.to_vec(),
            }),
            &[logits],
        ))
    }
}

impl CrossEntropyOp {
    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        let x = tape.try_value("cross_entropy backward", self.logits)?;
        let (n, k) = (x.shape()[0], x.shape()[1]);
        let scale = g.data()[0] / T::from_usize(n);
        let mut dx = vec![T::ZERO; n * k];
        // d/dx = (softmax(x) - onehot(y)) / N
        for ((d, row), &y) in dx
            .chunks_exact_mut(k)
            .zip(x.data().chunks_exact(k))
            .zip(&self.labels)
        {
            softmax_row(row, d);
            d[y] -= T::ONE;
            for v in d.iter_mut() {
                *v *= scale;
            }
        }
        grads.accumulate(self.logits, Tensor::from_vec(&[n, k], dx)?);
        Ok(())
    }
}
