//! The bias gradient's per-channel sum for f32 in AVX-512: the generic code's 16 lane sums are
//! one vector register here, each 16 values one vector add, the same additions in the same
//! order (bit for bit the generic result).

use std::arch::x86_64::*;

/// The sum of channel `o`'s planes of `grad_output` (`(N, channels, plane)`), as
/// [`crate::conv2d_backward_bias`] defines it: 16 lane sums over every image's whole vectors,
/// a tail sum of each image's remaining values, then the lanes in order, then the tail.
///
/// # Safety
/// The CPU must have AVX-512F. The lengths are checked here.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn channel_sum(
    grad_output: &[f32],
    channels: usize,
    plane: usize,
    o: usize,
) -> f32 {
    assert!(o < channels && plane > 0 && grad_output.len().is_multiple_of(channels * plane));
    let batch = grad_output.len() / (channels * plane);
    let whole = plane / 16 * 16;
    let mut lanes = _mm512_setzero_ps();
    let mut tail = 0.0f32;
    for n in 0..batch {
        let values = &grad_output[(n * channels + o) * plane..][..plane];
        let p = values.as_ptr();
        for at in (0..whole).step_by(16) {
            lanes = _mm512_add_ps(lanes, _mm512_loadu_ps(p.add(at)));
        }
        tail += values[whole..].iter().copied().sum::<f32>();
    }
    let mut each = [0.0f32; 16];
    _mm512_storeu_ps(each.as_mut_ptr(), lanes);
    each.iter().fold(0.0, |sum, &l| sum + l) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random_vec;
    use tensor::cpu::Tier;
    use tensor::testing::require_tier;

    /// The generic code's order, on f32.
    fn reference(dy: &[f32], channels: usize, plane: usize, o: usize) -> f32 {
        let mut lanes = [0.0f32; 16];
        let mut tail = 0.0f32;
        for n in 0..dy.len() / (channels * plane) {
            let values = &dy[(n * channels + o) * plane..][..plane];
            let mut chunks = values.chunks_exact(16);
            for chunk in &mut chunks {
                for (l, &v) in lanes.iter_mut().zip(chunk) {
                    *l += v;
                }
            }
            tail += chunks.remainder().iter().copied().sum::<f32>();
        }
        lanes.iter().fold(0.0, |sum, &l| sum + l) + tail
    }

    #[test]
    fn channel_sums_match_the_generic_order_bit_for_bit_needs_avx512() {
        const NAME: &str = "channel_sums_match_the_generic_order_bit_for_bit_needs_avx512";
        if !require_tier(Tier::Avx512, NAME) {
            return;
        }
        for plane in [784, 196, 49, 16, 9, 1] {
            let (n, channels) = (3, 5);
            // magnitudes from 1e-3 to 1e3, so a different order would round differently
            let dy: Vec<f32> = random_vec(n * channels * plane, plane as u64)
                .iter()
                .enumerate()
                .map(|(i, v)| (*v * 10f64.powi(i as i32 % 7 - 3)) as f32)
                .collect();
            for o in 0..channels {
                // SAFETY: the CPU has AVX-512F (`require_tier`).
                let got = unsafe { channel_sum(&dy, channels, plane, o) };
                let want = reference(&dy, channels, plane, o);
                assert_eq!(got.to_bits(), want.to_bits(), "plane {plane}, channel {o}");
            }
        }
    }
}
