//! max_pool2d: the maximum of each window; backward scatters through the stored argmax.
//! relu_max_pool2d: the same pooling of `relu(x)` in one pass, for a ReLU straight into a pool.
//!
//! The fused op's values and gradients are bit for bit those of [`Tape::relu`] then
//! [`Tape::max_pool2d`] (the argument is in `pool::relu_max_pool2d`); it skips the ReLU's
//! full-size output and its backward pass. Both record a `MaxPool2dOp`: the backward is the
//! same scatter, and a window the fused forward found without a positive value
//! (`pool::NO_WINNER`) passes no gradient (under deconvnet's rule, to its first element).

use pool::Pool2dGeometry;
use tensor::{Float, Tensor};

use crate::op::Op;
use crate::ops::relu::RESCALE_EPS;
use crate::rules::{epsilon_signal, PoolRule, References, ReluRule};
use crate::scratch::BufferPool;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id, geometry, the winning index of every output element, the backward rule (and
/// where the rescale rule finds the references), and the ReLU rule of a fused ReLU + pool kept
/// fused under guided backpropagation's or deconvnet's rule (None otherwise).
pub(crate) struct MaxPool2dOp {
    input: NodeId,
    geom: Pool2dGeometry,
    argmax: Vec<u32>,
    rule: PoolRule,
    references: References,
    signed_relu: Option<ReluRule>,
}

impl<T: Float> Tape<T> {
    /// Max-pool over `kernel x kernel` windows every `stride` pixels, no padding (floor mode).
    /// Ties go to the first maximum in row-major window order.
    pub fn max_pool2d(
        &mut self,
        x: NodeId,
        kernel: usize,
        stride: usize,
    ) -> Result<NodeId, TapeError> {
        self.record_pool(x, kernel, stride, false)
    }

    /// ReLU, then max-pool over `kernel x kernel` windows every `stride` pixels (no padding,
    /// floor mode), as one op. Ties go to the first maximum in row-major window order.
    pub fn relu_max_pool2d(
        &mut self,
        x: NodeId,
        kernel: usize,
        stride: usize,
    ) -> Result<NodeId, TapeError> {
        self.record_pool(x, kernel, stride, true)
    }

    /// Records `max_pool2d(x)`, or `max_pool2d(relu(x))` when `relu`.
    fn record_pool(
        &mut self,
        x: NodeId,
        kernel: usize,
        stride: usize,
        relu: bool,
    ) -> Result<NodeId, TapeError> {
        // Guided backpropagation's ReLU passes max(g, 0) where x > 0. Where windows do not
        // overlap, each input gets at most one window's gradient, and a fused window's winner
        // is positive, so the fused op gives the same values by passing max(g, 0) of the pooled
        // gradient: the fused forward and one backward instead of two full-size passes each.
        // Deconvnet's ReLU passes max(g, 0) whatever x: the same, except that a window with no
        // positive value (whose ReLU outputs are all zero, won by the first) sends it to the
        // window's first element.
        let signed_relu = (relu
            && matches!(
                self.rules.relu,
                ReluRule::GuidedBackprop | ReluRule::Deconvnet
            )
            && self.rules.max_pool == PoolRule::Gradient
            && stride >= kernel)
            .then_some(self.rules.relu);
        if relu && !self.rules.fuses_relu_pool() && signed_relu.is_none() {
            // A backward rule applies to each op on its own: record the two.
            let r = self.relu(x)?;
            return self.record_pool(r, kernel, stride, false);
        }
        let (op, what) = if relu {
            ("relu_max_pool2d", "relu_max_pool2d input")
        } else {
            ("max_pool2d", "max_pool2d input")
        };
        let [n, c, h, w] = self.try_value(op, x)?.dims4(what)?;
        let references = self.rules.references;
        if self.rules.max_pool == PoolRule::Rescale && references.inputs(n).is_none() {
            return Err(TapeError::Argument {
                op,
                what: format!(
                    "the rescale rule needs {}, found {n} images",
                    references.layout()
                ),
            });
        }
        let geom = Pool2dGeometry::new(n, c, h, w, kernel, stride)?;
        // every forward kernel writes every output
        let mut out = self.scratch.buffers.output(geom.output_len());
        let recording = self.is_recording() && self.needs_grad(x);
        // every forward writes every argmax; a retired buffer needs no zeroing
        let mut argmax = if recording {
            self.scratch.argmax(geom.output_len())
        } else {
            Vec::new()
        };
        let input = self.value(x).data();
        match (recording, relu) {
            (true, false) => pool::max_pool2d_forward(&geom, input, &mut out, &mut argmax),
            (true, true) => pool::relu_max_pool2d_forward(&geom, input, &mut out, &mut argmax),
            (false, false) => pool::max_pool2d_forward_inference(&geom, input, &mut out),
            (false, true) => pool::relu_max_pool2d_forward_inference(&geom, input, &mut out),
        }
        let value = Tensor::from_vec(&[n, c, geom.out_h, geom.out_w], out)?;
        Ok(self.push(
            value,
            Op::MaxPool2d(MaxPool2dOp {
                input: x,
                geom,
                argmax,
                rule: self.rules.max_pool,
                references,
                signed_relu,
            }),
            &[x],
        ))
    }
}

impl MaxPool2dOp {
    /// True when this pool may take over LRP-epsilon's quotient for the conv feeding it
    /// ([`Tape::lrp_epsilon_handed_over`]): plain backward, and windows that do not overlap,
    /// so each input gets at most one window's gradient and the quotient of that one value is
    /// the quotient of the input's whole gradient.
    pub(crate) fn takes_lrp_quotient(&self) -> bool {
        self.rule == PoolRule::Gradient && self.geom.stride >= self.geom.kernel
    }

    /// The backward with LRP-epsilon's quotient s = g z / (z + eps sign z) for the conv output z
    /// this pool reads: only a window's winner gets gradient, and there z is the window's
    /// output y (bit for bit, also after the fused ReLU), so s is the quotient of the pooled
    /// gradient and output, a quarter of z's size for 2x2 windows, scattered like a gradient.
    /// Where no gradient arrives s is 0, as the separate pass gives for every finite z but -0
    /// (its 0 z / (z + eps) is then -0, a sign no sum can see unless every term is zero).
    fn backward_with_lrp_quotient<T: Float>(
        &self,
        y: &[T],
        g: &[T],
        epsilon: f64,
        buffers: &mut BufferPool<T>,
        dx: &mut [T],
    ) {
        let mut s = buffers.output(g.len()); // overwritten
        epsilon_signal(g, y, epsilon, &mut s);
        pool::max_pool2d_backward(&self.geom, &s, &self.argmax, dx);
        buffers.retire(s);
    }

    /// DeepLIFT's rescale for max-pool (Captum's `maxpool` rule), overwriting `dx`, which holds
    /// the plain gradient: the batch holds the inputs then as many references. Output o's
    /// difference y - y' goes as max(y, y') - y' to the input's winner and y - max(y, y') to the
    /// reference's winner, each position's sum divided by its x - x' (the plain gradient stays
    /// where |x - x'| < 1e-10); the references get zero.
    fn rescale<T: Float>(&self, x: &[T], y: &[T], g: &[T], dx: &mut [T]) {
        use rayon::prelude::*;
        let (in_plane, out_plane) = (
            self.geom.in_h * self.geom.in_w,
            self.geom.out_h * self.geom.out_w,
        );
        let (in_image, out_image) = (
            self.geom.channels * in_plane,
            self.geom.channels * out_plane,
        );
        let n = self.geom.batch;
        let inputs = self.references.inputs(n).expect("checked when recorded");
        let (dx_inputs, dx_references) = dx.split_at_mut(inputs * in_image);
        // Image by image, split between the threads: each image's sums are its own.
        dx_inputs
            .par_chunks_mut(in_image)
            .enumerate()
            .for_each_init(
                || vec![T::ZERO; in_image],
                |moved, (b, dx)| {
                    moved.iter_mut().for_each(|m| *m = T::ZERO);
                    let r = self.references.of(b, inputs);
                    // Plane by plane, in output order (the same sums in the same order).
                    let (o0, r0) = (b * out_image, r * out_image);
                    for (c, moved) in moved.chunks_exact_mut(in_plane).enumerate() {
                        let at = c * out_plane;
                        let outputs = o0 + at..o0 + at + out_plane;
                        let references = r0 + at..r0 + at + out_plane;
                        for ((((&ya, &yr), &gv), &win), &win_ref) in y[outputs.clone()]
                            .iter()
                            .zip(&y[references.clone()])
                            .zip(&g[outputs.clone()])
                            .zip(&self.argmax[outputs])
                            .zip(&self.argmax[references])
                        {
                            // In the model's precision, as Captum's unpooled sums.
                            let top = ya.max(yr);
                            // Both winners' places in this input plane.
                            moved[win as usize] += gv * (top - yr);
                            moved[win_ref as usize] += gv * (ya - top);
                        }
                    }
                    let (xa, xr) = (
                        &x[b * in_image..(b + 1) * in_image],
                        &x[r * in_image..(r + 1) * in_image],
                    );
                    let moved_f32 = tensor::f32_view::as_f32(moved.as_slice());
                    if let (Some(m), Some(a), Some(rv), Some(d)) = (
                        moved_f32,
                        tensor::f32_view::as_f32(xa),
                        tensor::f32_view::as_f32(xr),
                        tensor::f32_view::as_f32_mut(dx),
                    ) {
                        // f32: the same division at the CPU's vector width (the same bits).
                        tensor::rescale::pool_rescale_divide(tensor::cpu::tier(), m, a, rv, d);
                        return;
                    }
                    let eps = T::from_f64(RESCALE_EPS);
                    for (((d, &m), &a), &rv) in dx.iter_mut().zip(moved.iter()).zip(xa).zip(xr) {
                        let delta_in = a - rv;
                        if delta_in.abs() >= eps {
                            *d = m / delta_in;
                        }
                    }
                },
            );
        dx_references.iter_mut().for_each(|d| *d = T::ZERO);
    }

    /// The argmax buffer, for reuse once the op is done.
    pub(crate) fn into_argmax(self) -> Vec<u32> {
        self.argmax
    }

    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        out: NodeId,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
        buffers: &mut BufferPool<T>,
    ) -> Result<(), TapeError> {
        // max_pool2d_backward zeroes each plane before scattering into it
        let mut dx = buffers.output(self.geom.input_len());
        if let Some(epsilon) = tape.lrp_epsilon_handed_over(self.input) {
            let y = tape.try_value("max_pool2d backward", out)?.data();
            self.backward_with_lrp_quotient(y, g.data(), epsilon, buffers, &mut dx);
        } else if let Some(relu_rule) = self.signed_relu {
            let upstream = match relu_rule {
                ReluRule::Deconvnet => pool::Upstream::PositiveNoWinnerToFirst,
                _ => pool::Upstream::Positive,
            };
            pool::max_pool2d_backward_with(&self.geom, g.data(), &self.argmax, &mut dx, upstream);
        } else {
            pool::max_pool2d_backward(&self.geom, g.data(), &self.argmax, &mut dx);
        }
        if self.rule == PoolRule::Rescale {
            let x = tape.try_value("max_pool2d backward", self.input)?.data();
            let y = tape.try_value("max_pool2d backward", out)?.data();
            self.rescale(x, y, g.data(), &mut dx);
        }
        let shape = tape
            .try_value("max_pool2d backward", self.input)?
            .shape()
            .to_vec();
        grads.accumulate(self.input, Tensor::from_vec(&shape, dx)?);
        Ok(())
    }
}
