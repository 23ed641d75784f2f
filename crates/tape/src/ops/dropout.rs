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
        let mask = dropout_mask(xv.numel(), p, keep, seed);
        let mut out = vec![T::ZERO; xv.numel()];
        T::vmul(xv.data(), &mask, &mut out);
        let value = Tensor::from_vec(xv.shape(), out)?;
        Ok(self.push(value, Op::Dropout(DropoutOp { input: x, mask }), &[x]))
    }
}

/// Words of the stream per bulk fill of [`dropout_mask`].
const MASK_WORDS: usize = 1024;

/// The mask of `n` elements: `keep` where u >= p, else 0, u in [0, 1) from the next 32-bit
/// word of ChaCha8 seeded with `seed`, in order. The words come a block at a time (the same
/// words, in the same order, as one `next_u32` per element): one at a time, the mask took as
/// long as alexnet's two dense layers' dropout on a batch of 16, serially.
fn dropout_mask<T: Float>(n: usize, p: f64, keep: T, seed: u64) -> Vec<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut mask = vec![T::ZERO; n];
    let mut bytes = [0u8; 4 * MASK_WORDS];
    for m in mask.chunks_mut(MASK_WORDS) {
        let bytes = &mut bytes[..4 * m.len()];
        rng.fill_bytes(bytes);
        for (m, w) in m.iter_mut().zip(bytes.chunks_exact(4)) {
            // u in [0, 1) from 32 random bits: the element survives when u >= p.
            let u = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as f64 / 4_294_967_296.0;
            *m = if u >= p { keep } else { T::ZERO };
        }
    }
    mask
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The bulk mask is the mask of one `next_u32` per element, across block boundaries, and
    /// keeps about 1 - p of the elements.
    #[test]
    fn the_bulk_mask_is_the_word_by_word_mask() {
        for (n, p, seed) in [(1, 0.5, 1), (1023, 0.3, 2), (1024, 0.5, 3), (5000, 0.9, 4)] {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let want: Vec<f32> = (0..n)
                .map(|_| {
                    if (rng.next_u32() as f64) / 4_294_967_296.0 >= p {
                        2.0
                    } else {
                        0.0
                    }
                })
                .collect();
            let got = dropout_mask(n, p, 2.0f32, seed);
            assert_eq!(got, want, "n {n}, p {p}");
        }
        let mask = dropout_mask(100_000, 0.25, 1.0f64, 9);
        let kept = mask.iter().filter(|&&m| m == 1.0).count() as f64 / 1e5;
        // standard error 0.0014
        assert!((kept - 0.75).abs() < 0.007, "kept {kept}");
    }
}
