//! batch_norm (2-D, per channel): normalize with batch statistics (training) or running ones
//! (evaluation), then scale by gamma and shift by beta. Derivation in docs/derivations.md.

use rayon::prelude::*;
use tensor::{Float, Tensor};

use crate::op::Op;
use crate::{Gradients, NodeId, Tape, TapeError};

/// Which statistics normalize the input.
pub enum BatchNormMode<'a, T> {
    /// Batch statistics; gradient flows through them. The caller updates its running statistics
    /// from [`BatchNormOutput`].
    Train,
    /// Fixed running statistics (mean, variance per channel); nothing is updated.
    Eval {
        /// Running mean per channel.
        running_mean: &'a [T],
        /// Running variance per channel.
        running_var: &'a [T],
    },
}

/// The output node and, in training mode, the batch statistics used.
pub struct BatchNormOutput<T> {
    /// The normalized, scaled and shifted output (same shape as the input).
    pub node: NodeId,
    /// Per-channel batch mean (training mode only).
    pub batch_mean: Option<Vec<T>>,
    /// Per-channel unbiased batch variance (training mode only), for running statistics.
    pub batch_var_unbiased: Option<Vec<T>>,
}

/// Ids, the mean and 1/sqrt(var + eps) used, and whether they came from the batch.
pub(crate) struct BatchNormOp<T> {
    input: NodeId,
    gamma: NodeId,
    beta: NodeId,
    mean: Vec<T>,
    inv_std: Vec<T>,
    train: bool,
}

impl<T: Float> Tape<T> {
    /// Batch normalization of an (N, C, H, W) input with per-channel `gamma` and `beta` (C).
    pub fn batch_norm2d(
        &mut self,
        x: NodeId,
        gamma: NodeId,
        beta: NodeId,
        eps: f64,
        mode: BatchNormMode<'_, T>,
    ) -> Result<BatchNormOutput<T>, TapeError> {
        let [n, c, h, w] = self
            .try_value("batch_norm2d", x)?
            .dims4("batch_norm2d input")?;
        for (name, id) in [("gamma", gamma), ("beta", beta)] {
            let s = self.try_value("batch_norm2d", id)?.shape();
            if s != [c] {
                return Err(TapeError::Shape {
                    op: "batch_norm2d",
                    expected: format!("{name} ({c})"),
                    found: s.to_vec(),
                });
            }
        }
        let plane = h * w;
        let m = n * plane;
        let eps_t = T::from_f64(eps);
        let xv = self.value(x).data();
        let (mean, var_biased, train) = match mode {
            BatchNormMode::Train => {
                if m < 2 {
                    return Err(TapeError::Argument {
                        op: "batch_norm2d",
                        what: format!("training needs at least 2 values per channel, found {m}"),
                    });
                }
                let stats: Vec<(T, T)> = (0..c)
                    .into_par_iter()
                    .map(|ch| channel_stats(xv, n, c, plane, ch))
                    .collect();
                (
                    stats.iter().map(|s| s.0).collect::<Vec<T>>(),
                    stats.iter().map(|s| s.1).collect::<Vec<T>>(),
                    true,
                )
            }
            BatchNormMode::Eval {
                running_mean,
                running_var,
            } => {
                if running_mean.len() != c || running_var.len() != c {
                    return Err(TapeError::Argument {
                        op: "batch_norm2d",
                        what: format!(
                            "running statistics must have {c} channels, found {} and {}",
                            running_mean.len(),
                            running_var.len()
                        ),
                    });
                }
                (running_mean.to_vec(), running_var.to_vec(), false)
            }
        };
        let inv_std: Vec<T> = var_biased
            .iter()
            .map(|&v| T::ONE / (v + eps_t).sqrt())
            .collect();
        let gv = self.value(gamma).data();
        let bv = self.value(beta).data();
        let mut out = vec![T::ZERO; xv.len()];
        out.par_chunks_mut(plane).enumerate().for_each(|(i, o)| {
            let ch = i % c;
            let a = gv[ch] * inv_std[ch];
            let b = bv[ch] - mean[ch] * a;
            for (oy, &xi) in o.iter_mut().zip(&xv[i * plane..(i + 1) * plane]) {
                *oy = xi * a + b;
            }
        });
        let value = Tensor::from_vec(&[n, c, h, w], out)?;
        let unbiased = train.then(|| {
            let f = T::from_usize(m) / T::from_usize(m - 1);
            var_biased.iter().map(|&v| v * f).collect()
        });
        let batch_mean = train.then(|| mean.clone());
        let node = self.push(
            value,
            Op::BatchNorm(BatchNormOp {
                input: x,
                gamma,
                beta,
                mean,
                inv_std,
                train,
            }),
            &[x, gamma, beta],
        );
        Ok(BatchNormOutput {
            node,
            batch_mean,
            batch_var_unbiased: unbiased,
        })
    }
}

/// Mean and biased variance of one channel over (N, H, W), summed in a fixed order.
fn channel_stats<T: Float>(x: &[T], n: usize, c: usize, plane: usize, ch: usize) -> (T, T) {
    let m = T::from_usize(n * plane);
    let mut sum = T::ZERO;
    for b in 0..n {
        let off = (b * c + ch) * plane;
        sum += x[off..off + plane].iter().copied().sum::<T>();
    }
    let mean = sum / m;
    let mut sq = T::ZERO;
    for b in 0..n {
        let off = (b * c + ch) * plane;
        sq += x[off..off + plane]
            .iter()
            .map(|&v| (v - mean) * (v - mean))
            .sum::<T>();
    }
    (mean, sq / m)
}

impl<T: Float> BatchNormOp<T> {
    pub(crate) fn backward(
        &self,
        tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        let x = tape.try_value("batch_norm2d backward", self.input)?;
        let [n, c, h, w] = x.dims4("batch_norm2d backward")?;
        let plane = h * w;
        let m = T::from_usize(n * plane);
        let (xv, gv) = (x.data(), g.data());
        let gamma = tape.try_value("batch_norm2d backward", self.gamma)?.data();
        // Per channel: dbeta = sum g, dgamma = sum g * xhat (fixed order over n, then pixels).
        let sums: Vec<(T, T)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mut sg, mut sgx) = (T::ZERO, T::ZERO);
                for b in 0..n {
                    let off = (b * c + ch) * plane;
                    for i in off..off + plane {
                        let xhat = (xv[i] - self.mean[ch]) * self.inv_std[ch];
                        sg += gv[i];
                        sgx += gv[i] * xhat;
                    }
                }
                (sg, sgx)
            })
            .collect();
        if tape.needs_grad(self.input) {
            let mut dx = vec![T::ZERO; xv.len()];
            dx.par_chunks_mut(plane).enumerate().for_each(|(p, d)| {
                let ch = p % c;
                let k = gamma[ch] * self.inv_std[ch];
                let (sg, sgx) = sums[ch];
                for (j, dj) in d.iter_mut().enumerate() {
                    let i = p * plane + j;
                    *dj = if self.train {
                        // dx = gamma/sigma * (g - mean(g) - xhat * mean(g * xhat))
                        let xhat = (xv[i] - self.mean[ch]) * self.inv_std[ch];
                        k * (gv[i] - sg / m - xhat * sgx / m)
                    } else {
                        k * gv[i]
                    };
                }
            });
            grads.accumulate(self.input, Tensor::from_vec(x.shape(), dx)?);
        }
        if tape.needs_grad(self.gamma) {
            grads.accumulate(
                self.gamma,
                Tensor::from_vec(&[c], sums.iter().map(|s| s.1).collect())?,
            );
        }
        if tape.needs_grad(self.beta) {
            grads.accumulate(
                self.beta,
                Tensor::from_vec(&[c], sums.iter().map(|s| s.0).collect())?,
            );
        }
        Ok(())
    }
}
