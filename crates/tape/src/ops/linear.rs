//! linear: `y = x W^T + b` with PyTorch's weight layout (out, in).

use tensor::{gemm_par, Float, MatRef, Tensor};

use crate::op::Op;
use crate::ops::{lrp_on_parameters, matrix_dims};
use crate::rules::{epsilon_signal, lrp_affine_backward, AffineKernels, AffineRule};
use crate::scratch::BufferPool;
use crate::{Gradients, NodeId, Tape, TapeError};

/// Input, weight and bias ids, and the backward rule.
pub(crate) struct LinearOp {
    input: NodeId,
    weight: NodeId,
    bias: Option<NodeId>,
    rule: AffineRule,
}

/// The dense layer's kernels for an LRP rule: (N, in) x (out, in)^T and back, on the tape's
/// buffer pool.
struct DenseKernels<'a, T> {
    n: usize,
    fin: usize,
    fout: usize,
    buffers: &'a mut BufferPool<T>,
}

impl<T: Float> AffineKernels<T> for DenseKernels<'_, T> {
    fn forward(&mut self, x: &[T], w: &[T], b: Option<&[T]>) -> Vec<T> {
        let mut z = self.buffers.output(self.n * self.fout); // overwritten: beta = 0
        par_gemm(
            MatRef::row_major(x, self.n, self.fin),
            MatRef::row_major(w, self.fout, self.fin).t(),
            &mut z,
        );
        if let Some(b) = b {
            for row in z.chunks_exact_mut(self.fout) {
                T::vadd_assign(row, b);
            }
        }
        z
    }

    fn backward_input(&mut self, w: &[T], s: &[T]) -> Vec<T> {
        let mut dx = self.buffers.output(self.n * self.fin); // overwritten: beta = 0
        par_gemm(
            MatRef::row_major(s, self.n, self.fout),
            MatRef::row_major(w, self.fout, self.fin),
            &mut dx,
        );
        dx
    }

    fn buffer(&mut self, len: usize) -> Vec<T> {
        self.buffers.output(len)
    }

    fn retire(&mut self, buffer: Vec<T>) {
        self.buffers.retire(buffer);
    }
}

/// `out (m x n) = a (m x k) * b (k x n)`, in parallel, overwriting `out` (row-major).
///
/// [`gemm_par`] splits along the longer side of `out`, so a small batch through a wide layer
/// (AlexNet's 2048-wide fc layers at batch 16) is split over the weight's columns and each task
/// packs only its slice of the weights. The split depends only on the shape.
fn par_gemm<T: Float>(a: MatRef<'_, T>, b: MatRef<'_, T>, out: &mut [T]) {
    gemm_par(T::ONE, a, b, T::ZERO, out);
}

impl<T: Float> Tape<T> {
    /// Fully connected layer. `x`: (N, in); `weight`: (out, in); `bias`: (out). Output (N, out).
    pub fn linear(
        &mut self,
        x: NodeId,
        weight: NodeId,
        bias: Option<NodeId>,
    ) -> Result<NodeId, TapeError> {
        let (n, fin) = matrix_dims("linear input", self.try_value("linear", x)?.shape())?;
        let wshape = self.try_value("linear", weight)?.shape().to_vec();
        let fout = match wshape[..] {
            [o, i] if i == fin => o,
            _ => {
                return Err(TapeError::Shape {
                    op: "linear",
                    expected: format!("weight (out, {fin})"),
                    found: wshape,
                })
            }
        };
        if let Some(b) = bias {
            let bshape = self.try_value("linear", b)?.shape();
            if bshape != [fout] {
                return Err(TapeError::Shape {
                    op: "linear",
                    expected: format!("bias ({fout})"),
                    found: bshape.to_vec(),
                });
            }
        }
        // par_gemm overwrites (beta = 0)
        let mut out = self.scratch.buffers.output(n * fout);
        {
            let xv = self.value(x).data();
            let wv = self.value(weight).data();
            // (N, out) = (N, in) x (in, out), W^T by strides.
            par_gemm(
                MatRef::row_major(xv, n, fin),
                MatRef::row_major(wv, fout, fin).t(),
                &mut out,
            );
            if let Some(b) = bias {
                let bv = self.value(b).data();
                for row in out.chunks_exact_mut(fout) {
                    T::vadd_assign(row, bv);
                }
            }
        }
        let value = Tensor::from_vec(&[n, fout], out)?;
        let mut inputs = vec![x, weight];
        inputs.extend(bias);
        Ok(self.push(
            value,
            Op::Linear(LinearOp {
                input: x,
                weight,
                bias,
                rule: self.rules.linear,
            }),
            &inputs,
        ))
    }
}

impl LinearOp {
    /// LRP-epsilon's eps when this layer was recorded under that rule.
    pub(crate) fn epsilon(&self) -> Option<f64> {
        match self.rule {
            AffineRule::Epsilon { epsilon } => Some(epsilon),
            _ => None,
        }
    }

    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        out: NodeId,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
        buffers: &mut BufferPool<T>,
    ) -> Result<(), TapeError> {
        let x = tape.try_value("linear backward", self.input)?;
        let w = tape.try_value("linear backward", self.weight)?;
        let (n, fin) = (x.shape()[0], x.shape()[1]);
        let fout = w.shape()[0];
        let gv = g.data();
        if self.rule != AffineRule::Gradient {
            // An LRP rule passes relevance to the input only: weights have no such gradient.
            if tape.needs_grad(self.weight) || self.bias.is_some_and(|b| tape.needs_grad(b)) {
                return Err(lrp_on_parameters("linear"));
            }
            let z = tape.try_value("linear backward", out)?.data();
            if let AffineRule::Epsilon { epsilon } = self.rule {
                // dx (N, in) = s (N, out) x W (out, in), the plain input gradient's GEMM; s
                // comes from the op this layer feeds when it computed the quotient.
                let handed_over = tape.lrp_epsilon_handed_over(out).is_some();
                let mut s = buffers.output(if handed_over { 0 } else { z.len() });
                if !handed_over {
                    epsilon_signal(gv, z, epsilon, &mut s); // overwrites s
                }
                let signal = if handed_over { gv } else { &s[..] };
                let mut dx = buffers.output(n * fin); // overwritten: beta = 0
                par_gemm(
                    MatRef::row_major(signal, n, fout),
                    MatRef::row_major(w.data(), fout, fin),
                    &mut dx,
                );
                buffers.retire(s);
                grads.accumulate(self.input, Tensor::from_vec(&[n, fin], dx)?);
                return Ok(());
            }
            let b = match self.bias {
                Some(b) => Some(tape.try_value("linear backward", b)?.data()),
                None => None,
            };
            let mut kernels = DenseKernels {
                n,
                fin,
                fout,
                buffers,
            };
            let dx = lrp_affine_backward(self.rule, &mut kernels, x.data(), w.data(), b, z, gv);
            grads.accumulate(self.input, Tensor::from_vec(&[n, fin], dx)?);
            return Ok(());
        }
        if tape.needs_grad(self.input) {
            // dx (N, in) = g (N, out) x W (out, in)
            let mut dx = buffers.output(n * fin); // overwritten: beta = 0
            par_gemm(
                MatRef::row_major(gv, n, fout),
                MatRef::row_major(w.data(), fout, fin),
                &mut dx,
            );
            grads.accumulate(self.input, Tensor::from_vec(&[n, fin], dx)?);
        }
        if tape.needs_grad(self.weight) {
            // dW (out, in) = g^T (out, N) x x (N, in); split over rows or columns of dW, never
            // over N, so each element's sum over the batch runs inside one GEMM call, in one order.
            // overwritten (beta = 0); a step's gradients come back to the pool once applied
            // (`Tape::recycle`)
            let mut dw = buffers.output(fout * fin);
            par_gemm(
                MatRef::row_major(gv, n, fout).t(),
                MatRef::row_major(x.data(), n, fin),
                &mut dw,
            );
            grads.accumulate(self.weight, Tensor::from_vec(&[fout, fin], dw)?);
        }
        if let Some(b) = self.bias.filter(|&b| tape.needs_grad(b)) {
            let mut db = vec![T::ZERO; fout];
            for row in gv.chunks_exact(fout) {
                T::vadd_assign(&mut db, row);
            }
            grads.accumulate(b, Tensor::from_vec(&[fout], db)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_gemm_matches_a_direct_sum_in_both_orientations_and_any_pool() {
        // (m, k, n): more rows than columns and fewer.
        for (m, k, n) in [(70, 9, 5), (5, 9, 70), (3, 4, 33)] {
            let a: Vec<f64> = (0..m * k).map(|i| ((i * 7 % 11) as f64) - 5.0).collect();
            let b: Vec<f64> = (0..k * n).map(|i| ((i * 5 % 13) as f64) * 0.5).collect();
            let run = |threads| {
                let mut out = vec![f64::NAN; m * n];
                tensor::testing::in_pool(threads, || {
                    par_gemm(
                        MatRef::row_major(&a, m, k),
                        MatRef::row_major(&b, k, n),
                        &mut out,
                    )
                });
                out
            };
            let got = run(1);
            for i in 0..m {
                for j in 0..n {
                    // Small integers and halves: every sum is exact.
                    let want: f64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                    assert_eq!(got[i * n + j], want, "m={m} k={k} n={n} ({i}, {j})");
                }
            }
            assert_eq!(run(2), got, "m={m} k={k} n={n}: 1 and 2 threads differ");
        }
    }
}
