//! [`crate::unrolled`]'s weight expansion and its adjoint for f32 in AVX-512, when a filter's
//! taps and a map's pixels each fit in one vector (`K*K < 16`, `Q <= 16`: `deep`'s conv4).
//!
//! - unroll: each `Q`-value stretch of `U` (one output pixel, one input channel) is the
//!   channel's taps, followed by a zero, permuted by the pixel's table of which tap each input
//!   pixel reads: one load, one permute and one masked store instead of `Q` indexed copies.
//! - fold: for one output and one input channel, the 9 taps' sums are one vector; each output
//!   pixel's stretch of `dU` is permuted so that lane `t` holds the value tap `t` read there,
//!   and added to the lanes of the taps that read anything.
//!
//! Both move or add the same values in the same order as the scalar code (fold sums each tap
//! over the output pixels in order, from zero), so the results are bit for bit the same.

use std::arch::x86_64::*;

use tensor::cpu::first_lanes;

/// Per output pixel, the lane tables of both kernels, built once per pass (not per task).
pub(crate) struct PixelTables {
    /// Lane `j`: the tap input pixel `j` is read by, or `K*K` (a zero lane) for none.
    tap_of_input: Vec<[i32; 16]>,
    /// Lane `t`: the input pixel tap `t` reads (0 for none), and the mask of taps that read one.
    input_of_tap: Vec<([i32; 16], u16)>,
    /// Channels, input pixels per channel, taps per filter.
    c: usize,
    q: usize,
    kk: usize,
}

impl PixelTables {
    /// The tables for `taps` (each pixel pair's tap, row-major `P x Q`), `c` input channels,
    /// `kk` taps. Requires [`fits`].
    pub(crate) fn new(taps: &[Option<usize>], c: usize, q: usize, kk: usize) -> Self {
        assert!(Self::fits(kk, q) && taps.len().is_multiple_of(q));
        let mut tap_of_input = Vec::new();
        let mut input_of_tap = Vec::new();
        for row in taps.chunks_exact(q) {
            let mut tap_of = [kk as i32; 16];
            let (mut input_of, mut reads) = ([0i32; 16], 0u16);
            for (qi, t) in row.iter().enumerate() {
                if let Some(t) = *t {
                    tap_of[qi] = t as i32;
                    input_of[t] = qi as i32;
                    reads |= 1 << t;
                }
            }
            tap_of_input.push(tap_of);
            input_of_tap.push((input_of, reads));
        }
        Self {
            tap_of_input,
            input_of_tap,
            c,
            q,
            kk,
        }
    }

    /// Output pixels, `P`.
    fn pixels(&self) -> usize {
        self.tap_of_input.len()
    }
}

impl PixelTables {
    /// True when the vector kernels take the geometry's `K*K` taps and `Q` input pixels.
    pub(crate) fn fits(kk: usize, q: usize) -> bool {
        kk < 16 && q <= 16
    }
}

/// Writes `u` ([`crate::unrolled`]'s `U`, `(Cout*P) x (C*Q)`) for the output channels of
/// `weight` (`(outs, C, K*K)`), `u` holding those channels' rows.
///
/// # Safety
/// The CPU must have AVX-512F. The lengths are checked here.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn unroll(weight: &[f32], u: &mut [f32], tables: &PixelTables) {
    let (c, q, kk, p) = (tables.c, tables.q, tables.kk, tables.pixels());
    let outs = weight.len() / (c * kk);
    assert!(weight.len() == outs * c * kk && u.len() == outs * p * c * q);
    let mask = first_lanes(q);
    let (w, d) = (weight.as_ptr(), u.as_mut_ptr());
    for o in 0..outs {
        for ci in 0..c {
            // the filter's kk taps, then zeros
            let filter = _mm512_maskz_loadu_ps(first_lanes(kk), w.add((o * c + ci) * kk));
            for (pi, tap_of) in tables.tap_of_input.iter().enumerate() {
                let read = _mm512_loadu_si512(tap_of.as_ptr().cast());
                let values = _mm512_permutexvar_ps(read, filter);
                _mm512_mask_storeu_ps(d.add(((o * p + pi) * c + ci) * q), mask, values);
            }
        }
    }
}

/// `grad_weight[o, c, t]` (`(outs, C, K*K)`, overwritten) = the sum over the output pixels, in
/// order, of the `du` value (`(outs*P) x (C*Q)`) that tap `t` reads there.
///
/// # Safety
/// The CPU must have AVX-512F. The lengths are checked here.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn fold(du: &[f32], grad_weight: &mut [f32], tables: &PixelTables) {
    let (c, q, kk, p) = (tables.c, tables.q, tables.kk, tables.pixels());
    let outs = grad_weight.len() / (c * kk);
    assert!(grad_weight.len() == outs * c * kk && du.len() == outs * p * c * q);
    let (src, dst) = (du.as_ptr(), grad_weight.as_mut_ptr());
    for o in 0..outs {
        for ci in 0..c {
            let mut sums = _mm512_setzero_ps();
            for (pi, (input_of, reads)) in tables.input_of_tap.iter().enumerate() {
                let stretch = src.add(((o * p + pi) * c + ci) * q);
                let row = _mm512_maskz_loadu_ps(first_lanes(q), stretch);
                let read = _mm512_permutexvar_ps(_mm512_loadu_si512(input_of.as_ptr().cast()), row);
                sums = _mm512_mask_add_ps(sums, *reads, sums, read);
            }
            _mm512_mask_storeu_ps(dst.add((o * c + ci) * kk), first_lanes(kk), sums);
        }
    }
}
