//! The layout copies of [`crate::direct3x3`] for f32 in AVX2: the zero-bordered plane, and the
//! channels-last copy of the weight gradient (an image's planes transposed 8 channels by 8
//! pixels at a time). It only moves values, so its output is
//! bit for bit the scalar loop's; element by element, that loop's stores 16 values apart were
//! a twelfth of a `deep` batch-16 training step on the AVX2 tier.

use std::arch::x86_64::*;

/// One `h x w` plane `src` into `dst`, `h + 2` rows of `pw = 16 * vectors + 2`, as
/// `layout_f32::bordered_plane` does in AVX-512: a zero row, the plane's rows each between a
/// zero and zeros to the row's end, a zero row. Each row is whole 8-lane stores of masked loads
/// (zeros past the plane's row): the generic body's short fills and copies were calls of
/// `memset` and `memmove`, 4 % of a `deep` batch-128 training step on the AVX2 tier.
///
/// # Safety
/// The CPU must have AVX2. The lengths are checked here.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn bordered_plane(src: &[f32], dst: &mut [f32], w: usize, vectors: usize) {
    let pw = 16 * vectors + 2;
    let h = src.len() / w.max(1);
    assert!(src.len() == h * w && dst.len() == (h + 2) * pw && w <= 16 * vectors && w > 0);
    let zero = _mm256_setzero_ps();
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for y in 0..h + 2 {
        let row = d.add(y * pw);
        // lanes 0..8 (lane 0 is the border), then each vector shifted by one; the last store
        // ends at pw - 1, and the row's last value is a border
        _mm256_storeu_ps(row, zero);
        for v in 0..2 * vectors {
            let x0 = 8 * v;
            let valid = if (1..=h).contains(&y) {
                (w - x0.min(w)).min(8)
            } else {
                0
            };
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid as i32), lane);
            // A masked-off lane reads nothing, so the address may pass the plane's end.
            let from = s.wrapping_add((y.max(1) - 1) * w + x0);
            _mm256_storeu_ps(row.add(1 + x0), _mm256_maskload_ps(from, mask));
        }
        *row.add(pw - 1) = 0.0;
    }
}

/// Transposes 8 rows of 8 lanes: lane `j` of row `i` goes to lane `i` of row `j`.
#[inline(always)]
unsafe fn transpose8(r: &mut [__m256; 8]) {
    let t: [__m256; 8] = std::array::from_fn(|i| {
        let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
        if i % 2 == 0 {
            _mm256_unpacklo_ps(a, b)
        } else {
            _mm256_unpackhi_ps(a, b)
        }
    });
    // u[4q + k]: from t[4q..4q + 4], k = 0: lo(t0, t2), 1: hi(t0, t2), 2: lo(t1, t3), 3: hi(t1, t3)
    let mut u = [_mm256_setzero_ps(); 8];
    for q in 0..2 {
        let (t0, t1, t2, t3) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
        u[4 * q] = _mm256_shuffle_ps::<0x44>(t0, t2);
        u[4 * q + 1] = _mm256_shuffle_ps::<0xEE>(t0, t2);
        u[4 * q + 2] = _mm256_shuffle_ps::<0x44>(t1, t3);
        u[4 * q + 3] = _mm256_shuffle_ps::<0xEE>(t1, t3);
    }
    for k in 0..4 {
        r[k] = _mm256_permute2f128_ps::<0x20>(u[k], u[4 + k]);
        r[4 + k] = _mm256_permute2f128_ps::<0x31>(u[k], u[4 + k]);
    }
}

/// One image's `channels` planes of `pixels` values (`src`, NCHW) into `dst`, `pixels` rows of
/// `cpad` channels (`cpad` a multiple of 16, at least `channels`), zero past `channels`.
///
/// # Safety
/// The CPU must have AVX2. The lengths are checked here.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn channels_last_image(
    src: &[f32],
    dst: &mut [f32],
    channels: usize,
    pixels: usize,
    cpad: usize,
) {
    assert!(cpad.is_multiple_of(16) && cpad >= channels && pixels > 0);
    assert!(src.len() == channels * pixels && dst.len() == pixels * cpad);
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for block in 0..cpad / 8 {
        for p0 in (0..pixels).step_by(8) {
            let valid = (pixels - p0).min(8);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid as i32), lane);
            let mut r = [_mm256_setzero_ps(); 8];
            for (i, row) in r.iter_mut().enumerate() {
                let o = 8 * block + i;
                if o < channels {
                    *row = _mm256_maskload_ps(s.add(o * pixels + p0), mask);
                }
            }
            transpose8(&mut r);
            for (j, row) in r.iter().enumerate().take(valid) {
                _mm256_storeu_ps(d.add((p0 + j) * cpad + 8 * block), *row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::cpu::Tier;
    use tensor::testing::require_tier;

    /// Every value lands where the scalar loop puts it, zeros past the channels: channel counts
    /// of whole and partial blocks, pixel counts of whole and partial runs of 8.
    #[test]
    fn the_avx2_copy_is_the_scalar_copy_needs_avx2() {
        const NAME: &str = "the_avx2_copy_is_the_scalar_copy_needs_avx2";
        if !require_tier(Tier::Avx2, NAME) {
            return;
        }
        for (channels, pixels) in [(16usize, 196usize), (9, 49), (32, 9), (1, 784), (20, 5)] {
            let cpad = channels.next_multiple_of(16);
            let src: Vec<f32> = (0..channels * pixels).map(|i| i as f32 + 0.5).collect();
            let mut want = vec![f32::NAN; pixels * cpad];
            crate::direct3x3::channels_last_body(&src, &mut want, channels, pixels, cpad);
            let mut got = vec![f32::NAN; pixels * cpad];
            // SAFETY: the CPU has AVX2 (`require_tier`).
            unsafe { channels_last_image(&src, &mut got, channels, pixels, cpad) };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&got),
                bits(&want),
                "{channels} channels, {pixels} pixels"
            );
        }
    }
}
