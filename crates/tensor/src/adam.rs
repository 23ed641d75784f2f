//! One Adam update of a chunk of f32 parameters: the optimizer's arithmetic as a kernel, so its
//! per-tier instantiations (in `arch`, with the `unsafe` call into them) live in this crate,
//! behind a safe function that checks the lengths and the tier.
//!
//! Every tier does the same operations in the same order on each element (the AVX-512 one in
//! 16 lanes; no multiply-add is fused, since Rust never contracts them, and sqrt and division
//! are correctly rounded), so every tier gives the same bits.

use crate::cpu::Tier;

/// One Adam step's constants, the bias corrections folded in:
/// `g' = g + decay * p`, `m = b1 * m + (1 - b1) * g'`, `v = b2 * v + (1 - b2) * g'^2`,
/// `p -= step * m / (sqrt(v) * inv_sqrt_c2 + eps)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// First-moment decay.
    pub b1: f32,
    /// Second-moment decay.
    pub b2: f32,
    /// Learning rate over the first moment's bias correction.
    pub step: f32,
    /// One over the square root of the second moment's bias correction.
    pub inv_sqrt_c2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// L2 penalty factor folded into the gradient (0 for none).
    pub decay: f32,
}

impl AdamStep {
    /// Updates `p`, `m` and `v` in place from the gradient `g`, on `tier` (a tier the CPU lacks
    /// runs the portable loop). Panics if the four lengths differ.
    pub fn apply(&self, tier: Tier, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        assert!(
            g.len() == p.len() && m.len() == p.len() && v.len() == p.len(),
            "AdamStep::apply: lengths p {}, g {}, m {}, v {}",
            p.len(),
            g.len(),
            m.len(),
            v.len()
        );
        if tier.vector_kernels() {
            crate::arch::adam_apply(tier, self, p, g, m, v);
        } else {
            self.apply_body(p, g, m, v);
        }
    }

    /// A zip over equal-length slices, so the compiler drops the bounds checks and vectorizes.
    #[inline(always)]
    pub(crate) fn apply_body(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let gj = g + self.decay * *p;
            *m = self.b1 * *m + (1.0 - self.b1) * gj;
            *v = self.b2 * *v + (1.0 - self.b2) * gj * gj;
            *p -= self.step * *m / (v.sqrt() * self.inv_sqrt_c2 + self.eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::require_tier;

    const STEP: AdamStep = AdamStep {
        b1: 0.9,
        b2: 0.999,
        step: 1e-3 / 0.19,
        inv_sqrt_c2: 1.0 / 0.141_067_36,
        eps: 1e-7,
        decay: 2e-4,
    };

    /// `(p, g, m, v)` of 1013 elements (63 vectors of 16 and a tail).
    fn operands() -> [Vec<f32>; 4] {
        let wave = |a: f32| {
            (0..1013)
                .map(|i| ((i as f32) * a).sin())
                .collect::<Vec<f32>>()
        };
        let v: Vec<f32> = wave(0.7).iter().map(|x| x * x).collect();
        [wave(1.1), wave(0.37), wave(0.05), v]
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn the_first_step_from_zero_moments_moves_by_about_the_step_size() {
        let (mut p, g, mut m, mut v) = (
            vec![1.0f32, -1.0],
            [0.5f32, -2.0],
            vec![0.0; 2],
            vec![0.0; 2],
        );
        let first = AdamStep {
            step: 1e-3 / 0.1,
            inv_sqrt_c2: 1.0 / 0.001f32.sqrt(),
            decay: 0.0,
            ..STEP
        };
        first.apply(Tier::Portable, &mut p, &g, &mut m, &mut v);
        // m = 0.1 g, sqrt(v) = sqrt(0.001) |g|: the step is lr * sign(g)
        assert!(
            (p[0] - (1.0 - 1e-3)).abs() < 1e-6 && (p[1] - (-1.0 + 1e-3)).abs() < 1e-6,
            "{p:?}"
        );
    }

    /// Each vector tier's instantiation against the portable loop, bit for bit; a tier the CPU
    /// lacks prints a SKIPPED line.
    #[test]
    fn every_vector_tier_s_update_is_the_portable_one_bit_for_bit() {
        const NAME: &str = "every_vector_tier_s_update_is_the_portable_one_bit_for_bit";
        for tier in [Tier::Avx512, Tier::Avx2, Tier::Neon] {
            if !require_tier(tier, &format!("{NAME} on {tier}")) {
                continue;
            }
            let [p0, g, m0, v0] = operands();
            let (mut p1, mut m1, mut v1) = (p0.clone(), m0.clone(), v0.clone());
            let (mut p2, mut m2, mut v2) = (p0.clone(), m0, v0);
            STEP.apply(tier, &mut p1, &g, &mut m1, &mut v1);
            STEP.apply(Tier::Portable, &mut p2, &g, &mut m2, &mut v2);
            assert_eq!(
                (bits(&p1), bits(&m1), bits(&v1)),
                (bits(&p2), bits(&m2), bits(&v2)),
                "{tier}"
            );
            assert_ne!(bits(&p1), bits(&p0), "the update moved the parameters");
        }
    }

    #[test]
    #[should_panic(expected = "lengths p 2, g 1")]
    fn operands_of_different_lengths_panic_with_the_lengths() {
        let (mut p, mut m, mut v) = (vec![0.0f32; 2], vec![0.0f32; 2], vec![0.0f32; 2]);
        STEP.apply(Tier::Portable, &mut p, &[0.0], &mut m, &mut v);
    }
}
