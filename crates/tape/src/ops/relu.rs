//! relu: `y = max(x, 0)`; backward passes the gradient where `x > 0`, or by the ReLU rule the
//! op was recorded with (guided backpropagation, deconvnet, DeepLIFT's rescale).

use tensor::{Float, Tensor};

use crate::op::Op;
use crate::rules::{epsilon_signal, References, ReluRule};
use crate::scratch::BufferPool;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id (its value decides where gradient passes), the backward rule, and where the
/// rescale rule finds the references.
pub(crate) struct ReluOp {
    input: NodeId,
    rule: ReluRule,
    references: References,
}

impl<T: Float> Tape<T> {
    /// Rectified linear unit, elementwise.
    pub fn relu(&mut self, x: NodeId) -> Result<NodeId, TapeError> {
        let xv = self.try_value("relu", x)?;
        let (n, shape) = (xv.numel(), xv.shape().to_vec());
        let references = self.rules.references;
        if self.rules.relu == ReluRule::Rescale
            && shape.first().and_then(|&n| references.inputs(n)).is_none()
        {
            return Err(TapeError::Argument {
                op: "relu",
                what: format!(
                    "the rescale rule needs {}, found shape {shape:?}",
                    references.layout()
                ),
            });
        }
        let mut out = self.scratch.buffers.output(n);
        // vrelu overwrites every element
        T::vrelu(self.value(x).data(), &mut out);
        let value = Tensor::from_vec(&shape, out)?;
        let op = ReluOp {
            input: x,
            rule: self.rules.relu,
            references,
        };
        Ok(self.push(value, Op::Relu(op), &[x]))
    }
}

impl ReluOp {
    /// True when this ReLU may take over LRP-epsilon's quotient for the affine op feeding it
    /// ([`Tape::lrp_epsilon_handed_over`]): its rule is the plain gradient.
    pub(crate) fn takes_lrp_quotient(&self) -> bool {
        self.rule == ReluRule::Gradient
    }

    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        _out: NodeId,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
        buffers: &mut BufferPool<T>,
    ) -> Result<(), TapeError> {
        let x = tape.try_value("relu backward", self.input)?;
        // every rule below overwrites every element
        let mut dx = buffers.output(x.numel());
        let (xv, gv) = (x.data(), g.data());
        match self.rule {
            ReluRule::Gradient => match tape.lrp_epsilon_handed_over(self.input) {
                // LRP-epsilon's s = g x / (x + eps sign x) for the affine op before, where the
                // ReLU passes gradient (x > 0), else 0: the values of the plain backward then
                // the separate quotient pass, whose 0 x / (x + eps) differs only in a zero's sign.
                Some(epsilon) => {
                    epsilon_signal(gv, xv, epsilon, &mut dx);
                    for (d, &xi) in dx.iter_mut().zip(xv) {
                        *d = if xi > T::ZERO { *d } else { T::ZERO };
                    }
                }
                None => T::vrelu_backward(xv, gv, &mut dx),
            },
            ReluRule::GuidedBackprop => elementwise(xv, gv, &mut dx, |xi, gi| {
                if xi > T::ZERO && gi > T::ZERO {
                    gi
                } else {
                    T::ZERO
                }
            }),
            ReluRule::Deconvnet => elementwise(xv, gv, &mut dx, |_, gi| gi.max(T::ZERO)),
            ReluRule::Rescale => rescale(xv, gv, x.shape()[0], self.references, &mut dx),
        }
        grads.accumulate(self.input, Tensor::from_vec(x.shape(), dx)?);
        Ok(())
    }
}

/// Elements per task of [`elementwise`]: a few tasks per layer, each long enough to pay for
/// itself. Element-wise, so the split never changes a bit.
const RULE_CHUNK: usize = 1 << 15;

/// `dx[i] = rule(x[i], g[i])`, split between the threads.
fn elementwise<T: Float>(x: &[T], g: &[T], dx: &mut [T], rule: impl Fn(T, T) -> T + Sync) {
    use rayon::prelude::*;
    dx.par_chunks_mut(RULE_CHUNK)
        .zip(x.par_chunks(RULE_CHUNK))
        .zip(g.par_chunks(RULE_CHUNK))
        .for_each(|((d, x), g)| {
            for ((d, &xi), &gi) in d.iter_mut().zip(x).zip(g) {
                *d = rule(xi, gi);
            }
        });
}

/// Below this input difference the rescale rule takes the gradient (Captum's 1e-10).
pub(crate) const RESCALE_EPS: f64 = tensor::rescale::RESCALE_EPS;

/// DeepLIFT's rescale multiplier times the inputs' gradient: `x` holds a batch of `n` images,
/// inputs and references laid out as `references` says; the references get zero. Split
/// between the threads by image (element-wise, so the same bits).
fn rescale<T: Float>(x: &[T], g: &[T], n: usize, references: References, dx: &mut [T]) {
    use rayon::prelude::*;
    let per = x.len() / n;
    let inputs = references.inputs(n).expect("checked when recorded");
    let (da, dr) = dx.split_at_mut(inputs * per);
    da.par_chunks_mut(per).enumerate().for_each(|(b, d)| {
        let xa = &x[b * per..(b + 1) * per];
        let r0 = references.of(b, inputs) * per;
        let xr = &x[r0..r0 + per];
        let gi = &g[b * per..(b + 1) * per];
        if let (Some(a), Some(r), Some(g), Some(d)) = (
            tensor::f32_view::as_f32(xa),
            tensor::f32_view::as_f32(xr),
            tensor::f32_view::as_f32(gi),
            tensor::f32_view::as_f32_mut(d),
        ) {
            // f32: the same arithmetic at the CPU's vector width (the same bits).
            tensor::rescale::relu_rescale(tensor::cpu::tier(), a, r, g, d);
            return;
        }
        // In the model's precision, Captum's operations in its order.
        let eps = T::from_f64(RESCALE_EPS);
        for (((d, &a), &r), &gi) in d.iter_mut().zip(xa).zip(xr).zip(gi) {
            let delta_in = a - r;
            *d = if delta_in.abs() < eps {
                if a > T::ZERO {
                    gi
                } else {
                    T::ZERO
                }
            } else {
                let delta_out = a.max(T::ZERO) - r.max(T::ZERO);
                gi * delta_out / delta_in
            };
        }
    });
    dr.iter_mut().for_each(|d| *d = T::ZERO);
}
