//! conv2d: `y = conv(x, w) + b` (kernels in the `conv` crate). The forward keeps what its
//! backward would rebuild (the unrolled weight or the bordered input) on the tape.

use conv::Conv2dGeometry;
use tensor::{Float, Tensor};

use crate::op::Op;
use crate::ops::lrp_on_parameters;
use crate::rules::{epsilon_signal, lrp_affine_backward, AffineKernels, AffineRule};
use crate::scratch::{BufferPool, Scratch};
use crate::{Gradients, NodeId, Tape, TapeError};

/// What conv2d's backward needs: the inputs by id, the geometry, and what the forward kept for
/// the backward (`conv::conv2d_forward_keeping`), as a node of its own.
pub(crate) struct Conv2dOp {
    input: NodeId,
    weight: NodeId,
    bias: Option<NodeId>,
    geom: Conv2dGeometry,
    kept: Option<NodeId>,
    rule: AffineRule,
}

/// The conv layer's kernels for an LRP rule, on the tape's workspace and buffer pool.
struct ConvKernels<'a, T> {
    geom: &'a Conv2dGeometry,
    workspace: &'a mut Vec<T>,
    buffers: &'a mut BufferPool<T>,
}

impl Conv2dOp {
    /// LRP-epsilon's eps when this conv was recorded under that rule.
    pub(crate) fn epsilon(&self) -> Option<f64> {
        match self.rule {
            AffineRule::Epsilon { epsilon } => Some(epsilon),
            _ => None,
        }
    }
}

impl<T: Float> AffineKernels<T> for ConvKernels<'_, T> {
    fn forward(&mut self, x: &[T], w: &[T], b: Option<&[T]>) -> Vec<T> {
        let mut z = self.buffers.output(self.geom.output_len()); // overwritten
        conv::conv2d_forward(self.geom, x, w, b, &mut z, self.workspace);
        z
    }

    fn backward_input(&mut self, w: &[T], s: &[T]) -> Vec<T> {
        let mut dx = self.buffers.output(self.geom.input_len()); // overwritten
        conv::conv2d_backward_input(self.geom, w, s, &mut dx, self.workspace);
        dx
    }

    fn buffer(&mut self, len: usize) -> Vec<T> {
        self.buffers.output(len)
    }

    fn retire(&mut self, buffer: Vec<T>) {
        self.buffers.retire(buffer);
    }
}

impl<T: Float> Tape<T> {
    /// 2-D convolution. `x`: (N, C, H, W); `weight`: (Cout, C, K, K); `bias`: (Cout); square
    /// kernel, the same stride and zero padding on both axes. Output (N, Cout, OH, OW).
    pub fn conv2d(
        &mut self,
        x: NodeId,
        weight: NodeId,
        bias: Option<NodeId>,
        stride: usize,
        padding: usize,
    ) -> Result<NodeId, TapeError> {
        let [n, c, h, w] = self.try_value("conv2d", x)?.dims4("conv2d input")?;
        let wshape = self.try_value("conv2d", weight)?.shape().to_vec();
        let (cout, k) = match wshape[..] {
            [co, ci, kh, kw] if ci == c && kh == kw => (co, kh),
            _ => {
                return Err(TapeError::Shape {
                    op: "conv2d",
                    expected: format!("weight (Cout, {c}, K, K)"),
                    found: wshape,
                });
            }
        };
        if let Some(b) = bias {
            let bshape = self.try_value("conv2d", b)?.shape();
            if bshape != [cout] {
                return Err(TapeError::Shape {
                    op: "conv2d",
                    expected: format!("bias ({cout})"),
                    found: bshape.to_vec(),
                });
            }
        }
        let geom = Conv2dGeometry::new(n, c, h, w, cout, k, stride, padding)?;
        let mut inputs = vec![x, weight];
        inputs.extend(bias);
        // Keep only what the backward will read: the pass that reads it must run (in
        // no-record mode nothing does; attribution freezes the weights, so no weight gradient).
        let kept_len = conv::conv2d_kept_len(&geom);
        let keep = self.is_recording()
            && match conv::conv2d_kept_for(&geom) {
                Some(conv::KeptFor::InputGradient) => self.needs_grad(x),
                Some(conv::KeptFor::WeightGradient) => self.needs_grad(weight),
                None => false,
            };
        // conv2d_forward overwrites the output, and the keeping forward all of `kept`
        let mut out = self.scratch.buffers.output(geom.output_len());
        let mut kept = keep.then(|| self.scratch.buffers.output(kept_len));
        let mut ws = std::mem::take(&mut self.scratch.workspace);
        {
            let xv = self.value(x).data();
            let wv = self.value(weight).data();
            let bv = bias.map(|b| self.value(b).data());
            match kept.as_deref_mut() {
                Some(k) => conv::conv2d_forward_keeping(&geom, xv, wv, bv, &mut out, &mut ws, k),
                None => conv::conv2d_forward(&geom, xv, wv, bv, &mut out, &mut ws),
            }
        }
        self.scratch.workspace = ws;
        let value = Tensor::from_vec(&[n, cout, geom.out_h, geom.out_w], out)?;
        let kept = match kept {
            Some(k) => Some(self.constant(Tensor::from_vec(&[kept_len], k)?)),
            None => None,
        };
        Ok(self.push(
            value,
            Op::Conv2d(Conv2dOp {
                input: x,
                weight,
                bias,
                geom,
                kept,
                rule: self.rules.conv,
            }),
            &inputs,
        ))
    }
}

impl Conv2dOp {
    /// What the forward kept for the backward, if anything.
    fn kept_value<'t, T: Float>(&self, tape: &'t Tape<T>) -> Result<Option<&'t [T]>, TapeError> {
        Ok(match self.kept {
            Some(k) => Some(tape.try_value("conv2d backward", k)?.data()),
            None => None,
        })
    }

    /// The input gradient for output gradient `g` on the layer's path, reading what the
    /// forward kept when it kept the unrolled weight.
    fn input_gradient<T: Float>(
        &self,
        w: &[T],
        kept: Option<&[T]>,
        g: &[T],
        buffers: &mut BufferPool<T>,
        ws: &mut Vec<T>,
    ) -> Vec<T> {
        let geom = &self.geom;
        // the backward kernels overwrite their outputs
        let mut dx = buffers.output(geom.input_len());
        match kept {
            Some(k) => conv::conv2d_backward_input_kept(geom, w, k, g, &mut dx, ws),
            None => conv::conv2d_backward_input(geom, w, g, &mut dx, ws),
        }
        dx
    }

    /// The geometry of `images` of this op's batch.
    fn images(&self, images: usize) -> Result<Conv2dGeometry, TapeError> {
        let g = &self.geom;
        Ok(Conv2dGeometry::new(
            images,
            g.in_channels,
            g.in_h,
            g.in_w,
            g.out_channels,
            g.kernel,
            g.stride,
            g.padding,
        )?)
    }

    /// Images per block of LRP-epsilon's blocked backward, when it applies: a block's signal
    /// stays in cache between its two passes (written, then read by the input-gradient kernel)
    /// instead of streaming the whole batch's through memory twice more than the plain
    /// backward does. Only on a path that keeps nothing for the input gradient and that a block
    /// takes as the whole batch does (each image's gradient is then the same either way). The
    /// block depends on the geometry alone, never on the thread count.
    fn signal_blocks(&self, kept_for_input: bool) -> Result<Option<usize>, TapeError> {
        /// Output elements per block: 256 KiB of f32, well inside a core's L2.
        const BLOCK_OUTPUTS: usize = 1 << 16;
        let g = &self.geom;
        let per_image = g.output_len() / g.batch.max(1);
        let block = (BLOCK_OUTPUTS / per_image.max(1)).max(1);
        if kept_for_input || block >= g.batch {
            return Ok(None);
        }
        let path = conv::conv2d_path(g);
        let last = g.batch % block;
        let same_path = conv::conv2d_path(&self.images(block)?) == path
            && (last == 0 || conv::conv2d_path(&self.images(last)?) == path);
        Ok(same_path.then_some(block))
    }

    /// LRP-epsilon's input signal `block` images at a time: per block, s = the stabilized
    /// signal ([`epsilon_signal`]) and then its input gradient.
    #[allow(clippy::too_many_arguments)]
    fn epsilon_in_blocks<T: Float>(
        &self,
        block: usize,
        w: &[T],
        g: &[T],
        z: &[T],
        epsilon: f64,
        buffers: &mut BufferPool<T>,
        ws: &mut Vec<T>,
    ) -> Result<Vec<T>, TapeError> {
        let geom = &self.geom;
        let (out_per, in_per) = (
            geom.output_len() / geom.batch,
            geom.input_len() / geom.batch,
        );
        let mut dx = buffers.output(geom.input_len()); // every block overwrites its part
        let mut s = buffers.output(block * out_per); // overwritten per block
        for (start, dx_block) in (0..geom.batch)
            .step_by(block)
            .zip(dx.chunks_mut(block * in_per))
        {
            let images = block.min(geom.batch - start);
            let sub = self.images(images)?;
            let outputs = start * out_per..(start + images) * out_per;
            let s_block = &mut s[..images * out_per];
            epsilon_signal(&g[outputs.clone()], &z[outputs], epsilon, s_block);
            conv::conv2d_backward_input(&sub, w, s_block, dx_block, ws);
        }
        buffers.retire(s);
        Ok(dx)
    }

    pub(crate) fn backward<T: Float>(
        &self,
        tape: &Tape<T>,
        out: NodeId,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
        scratch: &mut Scratch<T>,
    ) -> Result<(), TapeError> {
        let Scratch {
            workspace: ws,
            buffers,
            ..
        } = scratch;
        let geom = &self.geom;
        let x = tape.try_value("conv2d backward", self.input)?;
        let w = tape.try_value("conv2d backward", self.weight)?;
        if self.rule != AffineRule::Gradient {
            // An LRP rule passes relevance to the input only: weights have no such gradient.
            if tape.needs_grad(self.weight) || self.bias.is_some_and(|b| tape.needs_grad(b)) {
                return Err(lrp_on_parameters("conv2d"));
            }
            let z = tape.try_value("conv2d backward", out)?.data();
            if let AffineRule::Epsilon { epsilon } = self.rule {
                // W^T s on the layer's own input-gradient path (kept buffer included).
                let kept = self.kept_value(tape)?;
                if tape.lrp_epsilon_handed_over(out).is_some() {
                    // The op this conv feeds already sent s, not g.
                    let dx = self.input_gradient(w.data(), kept, g.data(), buffers, ws);
                    grads.accumulate(self.input, Tensor::from_vec(x.shape(), dx)?);
                    return Ok(());
                }
                let dx = match self.signal_blocks(kept.is_some())? {
                    Some(block) => {
                        self.epsilon_in_blocks(block, w.data(), g.data(), z, epsilon, buffers, ws)?
                    }
                    None => {
                        let mut s = buffers.output(z.len()); // overwritten
                        epsilon_signal(g.data(), z, epsilon, &mut s);
                        let dx = self.input_gradient(w.data(), kept, &s, buffers, ws);
                        buffers.retire(s);
                        dx
                    }
                };
                grads.accumulate(self.input, Tensor::from_vec(x.shape(), dx)?);
                return Ok(());
            }
            let b = match self.bias {
                Some(b) => Some(tape.try_value("conv2d backward", b)?.data()),
                None => None,
            };
            let mut kernels = ConvKernels {
                geom,
                workspace: ws,
                buffers,
            };
            let dx =
                lrp_affine_backward(self.rule, &mut kernels, x.data(), w.data(), b, z, g.data());
            grads.accumulate(self.input, Tensor::from_vec(x.shape(), dx)?);
            return Ok(());
        }
        let kept = self.kept_value(tape)?;
        if tape.needs_grad(self.input) {
            let dx = self.input_gradient(w.data(), kept, g.data(), buffers, ws);
            grads.accumulate(self.input, Tensor::from_vec(x.shape(), dx)?);
        }
        if tape.needs_grad(self.weight) {
            // overwritten by the kernel; a step's gradients come back to the pool once
            // applied (`Tape::recycle`)
            let mut dw = buffers.output(geom.weight_len());
            match kept {
                Some(k) => {
                    conv::conv2d_backward_weight_kept(geom, x.data(), k, g.data(), &mut dw, ws)
                }
                None => conv::conv2d_backward_weight(geom, x.data(), g.data(), &mut dw, ws),
            }
            grads.accumulate(self.weight, Tensor::from_vec(w.shape(), dw)?);
        }
        if let Some(b) = self.bias.filter(|&b| tape.needs_grad(b)) {
            let mut db = buffers.output(geom.out_channels); // overwritten
            conv::conv2d_backward_bias(geom, g.data(), &mut db);
            grads.accumulate(b, Tensor::from_vec(&[geom.out_channels], db)?);
        }
        Ok(())
    }
}
