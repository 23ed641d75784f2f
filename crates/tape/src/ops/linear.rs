//! linear: `y = x W^T + b` with PyTorch's weight layout (out, in).

use tensor::{gemm_par_rows, Float, MatRef, Tensor};

use crate::op::Op;
use crate::ops::matrix_dims;
use crate::{Gradients, NodeId, Tape, TapeError};

/// Input, weight and bias ids.
pub(crate) struct LinearOp {
    input: NodeId,
    weight: NodeId,
    bias: Option<NodeId>,
}

/// Rows per parallel GEMM block: a function of the row count only, so the split (and therefore
/// every rounding) is the same whatever the thread count.
fn block_rows(m: usize) -> usize {
    m.div_ceil(4).max(8)
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
        let mut out = vec![T::ZERO; n * fout];
        {
            let xv = self.value(x).data();
            let wv = self.value(weight).data();
            // (N, out) = (N, in) x (in, out), W^T by strides.
            gemm_par_rows(
                T::ONE,
                MatRef::row_major(xv, n, fin),
                MatRef::row_major(wv, fout, fin).t(),
                T::ZERO,
                &mut out,
                block_rows(n),
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
            }),
            &inputs,
        ))
    }
}

impl LinearOp {
    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        let x = tape.try_value("linear backward", self.input)?;
        let w = tape.try_value("linear backward", self.weight)?;
        let (n, fin) = (x.shape()[0], x.shape()[1]);
        let fout = w.shape()[0];
        let gv = g.data();
        if tape.needs_grad(self.input) {
            // dx (N, in) = g (N, out) x W (out, in)
            let mut dx = vec![T::ZERO; n * fin];
            gemm_par_rows(
                T::ONE,
                MatRef::row_major(gv, n, fout),
                MatRef::row_major(w.data(), fout, fin),
                T::ZERO,
                &mut dx,
                block_rows(n),
            );
            grads.accumulate(self.input, Tensor::from_vec(&[n, fin], dx)?);
        }
        if tape.needs_grad(self.weight) {
            // dW (out, in) = g^T (out, N) x x (N, in); split over output rows, so each element's
            // sum over the batch runs inside one GEMM call, in one order.
            let mut dw = vec![T::ZERO; fout * fin];
            gemm_par_rows(
                T::ONE,
                MatRef::row_major(gv, n, fout).t(),
                MatRef::row_major(x.data(), n, fin),
                T::ZERO,
                &mut dw,
                block_rows(fout),
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
