//! Adding a perturbation to a batch: a' = a + delta, optionally clipped to [0, 1].

use rayon::prelude::*;
use tensor::Tensor;

/// Elements per parallel task; the split depends only on the size, and each element is computed
/// on its own, so the result is the same for any thread count.
const PAR_CHUNK: usize = 1 << 14;

/// a' = a + delta element by element, then clamped to [0, 1] when `clip`.
///
/// Where delta is exactly zero the input is kept bit for bit (adding +0.0 to -0.0 would flip its
/// sign bit), so a zero step or a zero gradient changes nothing unless clipping is on; with
/// clipping every output lies in [0, 1].
pub(crate) fn apply_delta(inputs: &Tensor<f32>, delta: &[f32], clip: bool) -> Tensor<f32> {
    debug_assert_eq!(inputs.numel(), delta.len());
    let mut out = inputs.clone();
    out.data_mut()
        .par_chunks_mut(PAR_CHUNK)
        .zip(delta.par_chunks(PAR_CHUNK))
        .for_each(|(xs, ds)| {
            for (x, &d) in xs.iter_mut().zip(ds) {
                if d != 0.0 {
                    *x += d;
                }
                if clip {
                    *x = x.clamp(0.0, 1.0);
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_delta_keeps_bits_and_clip_bounds() {
        let a = Tensor::from_vec(&[1, 1, 1, 3], vec![-0.0, 0.5, 1.0]).unwrap();
        let same = apply_delta(&a, &[0.0, -0.0, 0.0], false);
        let bits = |t: &Tensor<f32>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&same), bits(&a));
        let clipped = apply_delta(&a, &[-1.0, 0.25, 0.5], true);
        assert_eq!(clipped.data(), &[0.0, 0.75, 1.0]);
    }
}
