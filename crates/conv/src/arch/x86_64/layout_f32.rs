//! The layout copies of [`crate::direct3x3`] for f32, in AVX-512 intrinsics: a plane into its
//! zero-bordered rows, and an image's planes into channels-last order.
//!
//! Both only move values (no arithmetic), so their output is bit for bit the scalar loops'.
//! Written element by element, they were a tenth of a `deep` batch-16 training step: one
//! load and one store per value, and the channels-last copy's stores 16 values apart.

use std::arch::x86_64::*;

use tensor::cpu::first_lanes;

/// One `h x w` plane `src` into `dst`, `h + 2` rows of `pw = 16 * vectors + 2`: a zero row, the
/// plane's rows each between a zero and zeros to the row's end, a zero row.
///
/// # Safety
/// The CPU must have AVX-512F. The lengths are checked here.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn bordered_plane(src: &[f32], dst: &mut [f32], w: usize, vectors: usize) {
    let pw = 16 * vectors + 2;
    let h = src.len() / w;
    assert!(src.len() == h * w && dst.len() == (h + 2) * pw && w <= 16 * vectors && w > 0);
    let zero = _mm512_setzero_ps();
    dst[..pw].fill(0.0);
    dst[(h + 1) * pw..].fill(0.0);
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for y in 0..h {
        let row = d.add((y + 1) * pw);
        // lanes 0..16 of the row, then each vector shifted by one: lane 0 is the border, and
        // the masked loads read zeros past the plane's row
        _mm512_storeu_ps(row, zero);
        for v in 0..vectors {
            let x0 = 16 * v;
            let values =
                _mm512_maskz_loadu_ps(first_lanes((w - x0.min(w)).min(16)), s.add(y * w + x0));
            _mm512_storeu_ps(row.add(1 + x0), values);
        }
        *row.add(pw - 1) = 0.0;
    }
}

/// Transposes 16 rows of 16 lanes: lane `j` of row `i` goes to lane `i` of row `j`.
#[inline(always)]
unsafe fn transpose16(r: &mut [__m512; 16]) {
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for q in 0..4 {
        let (a, b, c, d) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
        let pd = |x: __m512| _mm512_castps_pd(x);
        r[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a), pd(c)));
        r[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a), pd(c)));
        r[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(b), pd(d)));
        r[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(b), pd(d)));
    }
    for half in 0..2 {
        for j in 0..4 {
            let (a, b) = (r[8 * half + j], r[8 * half + 4 + j]);
            t[8 * half + j] = _mm512_shuffle_f32x4::<0x88>(a, b);
            t[8 * half + 4 + j] = _mm512_shuffle_f32x4::<0xdd>(a, b);
        }
    }
    for j in 0..8 {
        r[j] = _mm512_shuffle_f32x4::<0x88>(t[j], t[8 + j]);
        r[8 + j] = _mm512_shuffle_f32x4::<0xdd>(t[j], t[8 + j]);
    }
}

/// One image's `channels` planes of `pixels` values (`src`, NCHW) into `dst`, `pixels` rows of
/// `cpad` channels (`cpad` a multiple of 16, at least `channels`), zero past `channels`.
///
/// # Safety
/// The CPU must have AVX-512F. The lengths are checked here.
#[target_feature(enable = "avx512f")]
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
    for block in 0..cpad / 16 {
        for p0 in (0..pixels).step_by(16) {
            let valid = (pixels - p0).min(16);
            let mask = first_lanes(valid);
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, row) in r.iter_mut().enumerate() {
                let o = 16 * block + i;
                if o < channels {
                    *row = _mm512_maskz_loadu_ps(mask, s.add(o * pixels + p0));
                }
            }
            transpose16(&mut r);
            for (j, row) in r.iter().enumerate().take(valid) {
                _mm512_storeu_ps(d.add((p0 + j) * cpad + 16 * block), *row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::cpu::Tier;
    use tensor::testing::require_tier;

    /// A bordered-plane copy: `(src, dst, w, vectors)`.
    type BorderedCopy = dyn Fn(&[f32], &mut [f32], usize, usize);

    /// `kernel` (a bordered-plane copy) puts every value where the definition does, on planes
    /// of one to three vectors a row, full and partial.
    pub(crate) fn bordered_plane_cases(kernel: &BorderedCopy) {
        for (h, w) in [
            (28usize, 28usize),
            (14, 14),
            (7, 7),
            (3, 17),
            (2, 16),
            (1, 1),
            (5, 33),
            (4, 8),
            (6, 9),
        ] {
            let vectors = w.div_ceil(16);
            let pw = 16 * vectors + 2;
            let src: Vec<f32> = (0..h * w).map(|i| i as f32 + 0.5).collect();
            let mut dst = vec![f32::NAN; (h + 2) * pw];
            kernel(&src, &mut dst, w, vectors);
            for y in 0..h + 2 {
                for x in 0..pw {
                    let want = if (1..=h).contains(&y) && (1..=w).contains(&x) {
                        src[(y - 1) * w + x - 1]
                    } else {
                        0.0
                    };
                    assert_eq!(
                        dst[y * pw + x].to_bits(),
                        want.to_bits(),
                        "{h}x{w} at ({y}, {x})"
                    );
                }
            }
        }
    }

    #[test]
    fn bordered_plane_matches_the_definition_needs_avx512() {
        if require_tier(
            Tier::Avx512,
            "bordered_plane_matches_the_definition_needs_avx512",
        ) {
            // SAFETY: the CPU has AVX-512F (`require_tier`).
            bordered_plane_cases(&|src, dst, w, v| unsafe { bordered_plane(src, dst, w, v) });
        }
    }

    #[test]
    fn the_avx2_bordered_plane_matches_the_definition_needs_avx2() {
        if require_tier(
            Tier::Avx2,
            "the_avx2_bordered_plane_matches_the_definition_needs_avx2",
        ) {
            // SAFETY: the CPU has AVX2 (`require_tier`).
            bordered_plane_cases(&|src, dst, w, v| unsafe {
                super::super::layout_avx2::bordered_plane(src, dst, w, v)
            });
        }
    }

    #[test]
    fn channels_last_matches_the_definition_needs_avx512() {
        if !require_tier(
            Tier::Avx512,
            "channels_last_matches_the_definition_needs_avx512",
        ) {
            return;
        }
        for (channels, pixels) in [
            (16usize, 784usize),
            (16, 196),
            (16, 49),
            (32, 9),
            (9, 17),
            (40, 1),
        ] {
            let cpad = channels.next_multiple_of(16);
            let src: Vec<f32> = (0..channels * pixels).map(|i| i as f32 - 7.25).collect();
            let mut dst = vec![f32::NAN; pixels * cpad];
            // SAFETY: the CPU has AVX-512F (`require_tier`).
            unsafe { channels_last_image(&src, &mut dst, channels, pixels, cpad) };
            for p in 0..pixels {
                for o in 0..cpad {
                    let want = if o < channels {
                        src[o * pixels + p]
                    } else {
                        0.0
                    };
                    assert_eq!(
                        dst[p * cpad + o].to_bits(),
                        want.to_bits(),
                        "{channels}x{pixels}: pixel {p}, channel {o}"
                    );
                }
            }
        }
    }
}
