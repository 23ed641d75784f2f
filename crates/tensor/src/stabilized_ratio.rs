//! LRP's signals: LRP-epsilon's `s = g z / (z + eps sign z)`, and the gamma and alpha-beta
//! rules' `s = f g z / (d + eps sign d)` with their own denominator `d`: elementwise quotients,
//! compiled once per SIMD tier.
//!
//! Each layer of an LRP-epsilon pass runs it over the layer's whole output before the layer's
//! input-gradient kernel; at the baseline x86-64 width its division cost as much as a third of
//! that kernel (deep, batch 256). A quotient, a product and selects are exactly rounded in any
//! lane width, so every tier gives the same bits.

use crate::cpu::Tier;

/// `s[j] = g[j] z[j] / (z[j] + eps sign z[j])` with sign(0) = 1, and 0 where that denominator
/// is 0 (only possible with `eps` = 0), on `tier` (use [`cpu::tier`](crate::cpu::tier)).
///
/// # Panics
/// When the three slices differ in length (a caller's bug, named in the message).
pub fn stabilized_ratio(tier: Tier, g: &[f32], z: &[f32], eps: f32, s: &mut [f32]) {
    assert!(
        g.len() == z.len() && s.len() == z.len(),
        "stabilized_ratio lengths g {}, z {}, s {}",
        g.len(),
        z.len(),
        s.len()
    );
    if tier.vector_kernels() {
        crate::arch::stabilized_ratio(tier, g, z, eps, s);
    } else {
        body(g, z, eps, s);
    }
}

/// The loop every tier compiles: selects, not branches, so it vectorizes at the tier's width.
#[inline(always)]
pub(crate) fn body(g: &[f32], z: &[f32], eps: f32, s: &mut [f32]) {
    for ((s, &g), &z) in s.iter_mut().zip(g).zip(z) {
        let den = if z >= 0.0 { z + eps } else { z - eps };
        let v = g * z / den;
        *s = if den == 0.0 { 0.0 } else { v };
    }
}

/// `s[j] = factor g[j] z[j] / (d[j] + eps sign d[j])` with sign(0) = 1, and 0 where that
/// denominator is 0 (only possible with `eps` = 0), on `tier`: the signal an LRP rule with its
/// own denominator `d` (gamma: the lifted weights' output; alpha-beta: z+ or z-) sends back.
///
/// # Panics
/// When the four slices differ in length (a caller's bug, named in the message).
pub fn scaled_ratio(
    tier: Tier,
    g: &[f32],
    z: &[f32],
    d: &[f32],
    eps: f32,
    factor: f32,
    s: &mut [f32],
) {
    assert!(
        g.len() == z.len() && d.len() == z.len() && s.len() == z.len(),
        "scaled_ratio lengths g {}, z {}, d {}, s {}",
        g.len(),
        z.len(),
        d.len(),
        s.len()
    );
    if tier.vector_kernels() {
        crate::arch::scaled_ratio(tier, g, z, d, eps, factor, s);
    } else {
        scaled_body(g, z, d, eps, factor, s);
    }
}

/// [`scaled_ratio`]'s loop, as [`body`]: selects, not branches.
#[inline(always)]
pub(crate) fn scaled_body(g: &[f32], z: &[f32], d: &[f32], eps: f32, factor: f32, s: &mut [f32]) {
    for (((s, &g), &z), &d) in s.iter_mut().zip(g).zip(z).zip(d) {
        let den = if d >= 0.0 { d + eps } else { d - eps };
        let v = factor * g * z / den;
        *s = if den == 0.0 { 0.0 } else { v };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::require_tier;

    /// 1013 outputs (63 vectors of 16 and a tail) with zeros, signed zeros, both signs and a
    /// range of magnitudes, and a signal of both signs.
    fn operands() -> (Vec<f32>, Vec<f32>) {
        let z = (0..1013)
            .map(|i| match i % 7 {
                0 => 0.0,
                1 => -0.0,
                _ => ((i as f32) * 0.37).sin() * 10f32.powi(i % 5 - 2),
            })
            .collect();
        let g = (0..1013).map(|i| ((i as f32) * 1.1).cos()).collect();
        (g, z)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn the_portable_loop_is_the_definition() {
        let (g, z) = operands();
        let mut s = vec![f32::NAN; z.len()];
        stabilized_ratio(Tier::Portable, &g, &z, 1e-3, &mut s);
        for j in 0..z.len() {
            let den = if z[j] >= 0.0 {
                z[j] + 1e-3
            } else {
                z[j] - 1e-3
            };
            assert_eq!(s[j].to_bits(), (g[j] * z[j] / den).to_bits(), "at {j}");
        }
        // With eps = 0 a zero output carries nothing, and the rest is g itself.
        stabilized_ratio(Tier::Portable, &g, &z, 0.0, &mut s);
        for j in 0..z.len() {
            let want = if z[j] == 0.0 { 0.0 } else { g[j] };
            assert!((s[j] - want).abs() <= 1e-6 * want.abs(), "at {j}: {}", s[j]);
        }
    }

    /// Each vector tier's instantiation against the portable loop, bit for bit, with eps above
    /// 0 and eps = 0; a tier the CPU lacks prints a SKIPPED line.
    #[test]
    fn every_vector_tier_s_ratio_is_the_portable_one_bit_for_bit() {
        const NAME: &str = "every_vector_tier_s_ratio_is_the_portable_one_bit_for_bit";
        for tier in [Tier::Avx512, Tier::Avx2, Tier::Neon] {
            if !require_tier(tier, &format!("{NAME} on {tier}")) {
                continue;
            }
            let (g, z) = operands();
            for eps in [1e-2f32, 1e-9, 0.0] {
                let mut fast = vec![f32::NAN; z.len()];
                let mut portable = vec![f32::NAN; z.len()];
                stabilized_ratio(tier, &g, &z, eps, &mut fast);
                stabilized_ratio(Tier::Portable, &g, &z, eps, &mut portable);
                assert_eq!(bits(&fast), bits(&portable), "{tier}, eps {eps}");
            }
        }
    }

    #[test]
    fn the_portable_scaled_ratio_is_the_definition() {
        let (g, z) = operands();
        let d: Vec<f32> = z.iter().rev().map(|v| v * 1.5).collect();
        let mut s = vec![f32::NAN; z.len()];
        scaled_ratio(Tier::Portable, &g, &z, &d, 1e-3, 2.0, &mut s);
        for j in 0..z.len() {
            let den = if d[j] >= 0.0 {
                d[j] + 1e-3
            } else {
                d[j] - 1e-3
            };
            assert_eq!(
                s[j].to_bits(),
                (2.0 * g[j] * z[j] / den).to_bits(),
                "at {j}"
            );
        }
        // With eps = 0 a zero denominator carries nothing.
        scaled_ratio(Tier::Portable, &g, &z, &d, 0.0, 1.0, &mut s);
        for j in (0..z.len()).filter(|&j| d[j] == 0.0) {
            assert_eq!(s[j], 0.0, "at {j}");
        }
    }

    /// As for the epsilon ratio: each vector tier against the portable loop, bit for bit.
    #[test]
    fn every_vector_tier_s_scaled_ratio_is_the_portable_one_bit_for_bit() {
        const NAME: &str = "every_vector_tier_s_scaled_ratio_is_the_portable_one_bit_for_bit";
        for tier in [Tier::Avx512, Tier::Avx2, Tier::Neon] {
            if !require_tier(tier, &format!("{NAME} on {tier}")) {
                continue;
            }
            let (g, z) = operands();
            let d: Vec<f32> = z.iter().rev().map(|v| v * 1.5).collect();
            for (eps, factor) in [(1e-2f32, 1.0f32), (1e-9, 2.0), (0.0, 0.5)] {
                let mut fast = vec![f32::NAN; z.len()];
                let mut portable = vec![f32::NAN; z.len()];
                scaled_ratio(tier, &g, &z, &d, eps, factor, &mut fast);
                scaled_ratio(Tier::Portable, &g, &z, &d, eps, factor, &mut portable);
                assert_eq!(bits(&fast), bits(&portable), "{tier}, eps {eps}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "stabilized_ratio lengths g 2, z 1, s 1")]
    fn operands_of_different_lengths_panic_with_the_lengths() {
        stabilized_ratio(Tier::Portable, &[0.0; 2], &[0.0], 0.1, &mut [0.0]);
    }
}
