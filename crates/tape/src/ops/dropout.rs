//! dropout: zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout).

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tensor::{Float, Tensor};

use crate::op::Op;
use crate::{Gradients, NodeId, Tape, TapeError};

/// The input id and the mask that was applied (0 or 1/(1-p) per element).
pub(crate) struct DropoutOp<T> {
    input: NodeId,
    mask: Vec<T>,
}

impl<T: Float> Tape<T> {
    /// Training-mode dropout with probability `p` in [0, 1), the mask drawn from ChaCha8 seeded
    /// with `seed` (so a run repeats exactly). In evaluation, do not call it: it is the identity.
    pub fn dropout(&mut self, x: NodeId, p: f64, seed: u64) -> Result<NodeId, TapeError> {
        if !(0.0..1.0).contains(&p) {
            return Err(TapeError::Argument {
                op: "dropout",
                what: format!("probability must be in [0, 1), found {p}"),
            });
        }
        let xv = self.try_value("dropout", x)?;
        let keep = T::from_f64(1.0 / (1.0 - p));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // u in [0, 1) from 32 random bits: the element survives when u >= p.
        let mask: Vec<T> = (0..xv.numel())
            .map(|_| {
                if (rng.next_u32() as f64) / 4_294_967_296.0 >= p {
                    keep
                } else {
                    T::ZERO
                }
            })
            .collect();
        let mut out = vec![T::ZERO; xv.numel()];
        T::vmul(xv.data(), &mask, &mut out);
        let value = Tensor::from_vec(xv.shape(), out)?;
        Ok(self.push(value, Op::Dropout(DropoutOp { input: x, mask }), &[x]))
    }
}

impl<T: Float> DropoutOp<T> {
    pub(crate) fn backward(
        &self,
        _tape: &Tape<T>,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
    ) -> Result<(), TapeError> {
        let mut dx = vec![T::ZERO; g.numel()];
        T::vmul(g.data(), &self.mask, &mut dx);
        grads.accumulate(self.input, Tensor::from_vec(g.shape(), dx)?);
        Ok(())
    }
}
