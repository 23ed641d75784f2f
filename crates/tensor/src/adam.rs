//! One Adam (or SGD) update of a chunk of f32 parameters: the optimizer's arithmetic as a kernel, so its
//! per-tier instantiations (in `arch`, with the `unsafe` call into them) live in this crate,
//! behind a safe function that checks the lengths and the tier.
//!
//! Every tier does the same operations in the same order on each element (the AVX-512 one in
//! 16 lanes; no multiply-add is fused, since Rust never contracts them, and sqrt and division
//! are correctly rounded), so every tier gives the same bits.
//!
//! Both updates keep their arithmetic out of the subnormal range (below `f32::MIN_POSITIVE`),
//! where an x86 core takes a microcode assist of about a hundred cycles per operation: a
//! gradient component smaller than [`GRADIENT_FLOOR`] counts as zero, and a moment (Adam's `m`
//! and `v`, SGD's velocity) that decays below [`MOMENT_FLOOR`] is stored as zero. Without
//! them, the moments of parameters whose gradients vanish decay into that range and stay
//! there for thousands of steps: on an Intel Xeon (family 6 model 167) such elements made
//! Adam 10 to 17 times slower, a fifth of a `deep` batch-16 training step. Every tier applies
//! the same floors, so the tiers still agree bit for bit.
//!
//! The update also says whether every gradient it read and every parameter it wrote is finite
//! ([`Finite`]): the trainer's checks ride on the update's own pass over the operands instead
//! of two more passes over alexnet's 40 MB of gradients and 40 MB of weights.

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

/// What an update saw: whether every gradient it read and every parameter it wrote is finite
/// (neither infinite nor NaN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a non-finite gradient or parameter is an error the caller must report"]
pub struct Finite {
    /// Every gradient read was finite.
    pub gradients: bool,
    /// Every updated parameter is finite.
    pub parameters: bool,
}

impl Finite {
    /// From the or-ed [`non_finite_flag`]s of the gradients and of the new parameters.
    fn from_flags(bad_gradients: u32, bad_parameters: u32) -> Self {
        Finite {
            gradients: bad_gradients == 0,
            parameters: bad_parameters == 0,
        }
    }
}

/// A gradient component (after the L2 term) smaller than this in magnitude counts as zero:
/// 2^-56, about 1.4e-17. Its square times `1 - beta2` stays normal for `beta2` up to 0.9999,
/// and at the study's settings such a component would move a parameter by about 1e-14 a step.
pub const GRADIENT_FLOOR: f32 = f32::from_bits((127 - 56) << 23);

/// A moment smaller than this in magnitude after an update is stored as zero: 2^-100, about
/// 7.9e-31, far below anything that moves a parameter (`sqrt(v)` is then 8.9e-16, against an
/// `eps` of 1e-7), and far enough above `f32::MIN_POSITIVE` that the next step's products of
/// it stay normal.
pub const MOMENT_FLOOR: f32 = f32::from_bits((127 - 100) << 23);

/// `x`, or zero when its magnitude is below `floor`: a compare and a select, which vectorize.
#[inline(always)]
fn floored(x: f32, floor: f32) -> f32 {
    if x.abs() < floor {
        0.0
    } else {
        x
    }
}

/// The exponent bits of an f32: all set for infinities and NaN, and only for them.
const EXPONENT: u32 = 0x7f80_0000;

/// 1 when `x` is infinite or NaN, else 0: an integer test, so the flag's loop vectorizes
/// (`f32::is_finite` in an `||` chain would not).
#[inline(always)]
pub fn non_finite_flag(x: f32) -> u32 {
    ((x.to_bits() & EXPONENT) == EXPONENT) as u32
}

impl AdamStep {
    /// Updates `p`, `m` and `v` in place from the gradient `g`, on `tier` (a tier the CPU lacks
    /// runs the portable loop), and says whether `g` and the new `p` are finite. Panics if the
    /// four lengths differ.
    pub fn apply(
        &self,
        tier: Tier,
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) -> Finite {
        assert!(
            g.len() == p.len() && m.len() == p.len() && v.len() == p.len(),
            "AdamStep::apply: lengths p {}, g {}, m {}, v {}",
            p.len(),
            g.len(),
            m.len(),
            v.len()
        );
        if tier.vector_kernels() {
            crate::arch::adam_apply(tier, self, p, g, m, v)
        } else {
            self.apply_body(p, g, m, v)
        }
    }

    /// A zip over equal-length slices, so the compiler drops the bounds checks and vectorizes.
    /// The finiteness flags are or-ed per element, never branched on.
    #[inline(always)]
    pub(crate) fn apply_body(
        &self,
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) -> Finite {
        let (mut bad_g, mut bad_p) = (0u32, 0u32);
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let gj = floored(g + self.decay * *p, GRADIENT_FLOOR);
            *m = floored(self.b1 * *m + (1.0 - self.b1) * gj, MOMENT_FLOOR);
            *v = floored(self.b2 * *v + (1.0 - self.b2) * gj * gj, MOMENT_FLOOR);
            *p -= self.step * *m / (v.sqrt() * self.inv_sqrt_c2 + self.eps);
            bad_g |= non_finite_flag(g);
            bad_p |= non_finite_flag(*p);
        }
        Finite::from_flags(bad_g, bad_p)
    }
}

/// One SGD-with-momentum step's constants: `g' = g + decay * p`, `vel = mu * vel - lr_t * g'`,
/// `p += vel`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    /// This step's learning rate (after the schedule's decay).
    pub lr_t: f32,
    /// Momentum.
    pub mu: f32,
    /// L2 penalty factor folded into the gradient (0 for none).
    pub decay: f32,
}

impl SgdStep {
    /// Updates `p` and `vel` in place from the gradient `g`, on `tier` (a tier the CPU lacks
    /// runs the portable loop), and says whether `g` and the new `p` are finite. Panics if the
    /// three lengths differ.
    pub fn apply(&self, tier: Tier, p: &mut [f32], g: &[f32], vel: &mut [f32]) -> Finite {
        assert!(
            g.len() == p.len() && vel.len() == p.len(),
            "SgdStep::apply: lengths p {}, g {}, vel {}",
            p.len(),
            g.len(),
            vel.len()
        );
        if tier.vector_kernels() {
            crate::arch::sgd_apply(tier, self, p, g, vel)
        } else {
            self.apply_body(p, g, vel)
        }
    }

    /// The loop every tier compiles, as [`AdamStep::apply_body`].
    #[inline(always)]
    pub(crate) fn apply_body(&self, p: &mut [f32], g: &[f32], vel: &mut [f32]) -> Finite {
        let (mut bad_g, mut bad_p) = (0u32, 0u32);
        for ((p, &g), vel) in p.iter_mut().zip(g).zip(vel.iter_mut()) {
            let gj = floored(g + self.decay * *p, GRADIENT_FLOOR);
            *vel = floored(self.mu * *vel - self.lr_t * gj, MOMENT_FLOOR);
            *p += *vel;
            bad_g |= non_finite_flag(g);
            bad_p |= non_finite_flag(*p);
        }
        Finite::from_flags(bad_g, bad_p)
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
        let mut v: Vec<f32> = wave(0.7).iter().map(|x| x * x).collect();
        let (mut g, mut m) = (wave(0.37), wave(0.05));
        // Values around the floors, so every tier's selects are exercised: gradients just
        // below and above GRADIENT_FLOOR, moments that decay across MOMENT_FLOOR.
        for i in (3..1013).step_by(7) {
            g[i] = GRADIENT_FLOOR * if i % 2 == 0 { 0.75 } else { -1.25 };
            m[i] = MOMENT_FLOOR * if i % 3 == 0 { 1.05 } else { -0.5 };
            v[i] = MOMENT_FLOOR * if i % 5 == 0 { 1.0005 } else { 0.9 };
        }
        [wave(1.1), g, m, v]
    }

    /// 0 or at least `floor` in magnitude.
    fn floored_or_zero(x: &[f32], floor: f32) -> bool {
        x.iter().all(|x| *x == 0.0 || x.abs() >= floor)
    }

    /// A gradient below GRADIENT_FLOOR moves the moments as a zero one does; a moment that
    /// decays below MOMENT_FLOOR is stored as zero; so no stored moment is ever subnormal, over
    /// thousands of steps of vanishing gradients, on any tier.
    #[test]
    fn tiny_gradients_count_as_zero_and_moments_below_the_floor_are_stored_as_zero() {
        const NAME: &str =
            "tiny_gradients_count_as_zero_and_moments_below_the_floor_are_stored_as_zero";
        let no_decay = AdamStep { decay: 0.0, ..STEP };
        for tier in [Tier::Portable, Tier::Avx512, Tier::Avx2, Tier::Neon] {
            if !require_tier(tier, &format!("{NAME} on {tier}")) {
                continue;
            }
            // From zero moments, a tiny gradient and a zero one leave the same bits behind.
            let below = GRADIENT_FLOOR * 0.999;
            let run = |g: f32| {
                let (mut p, mut m, mut v) = (vec![0.5f32; 19], vec![0.0f32; 19], vec![0.0; 19]);
                let _ = no_decay.apply(tier, &mut p, &[g; 19], &mut m, &mut v);
                (bits(&p), bits(&m), bits(&v))
            };
            assert_eq!(run(below), run(0.0), "{tier}");
            assert_eq!(run(-below), run(0.0), "{tier}");
            assert_ne!(
                run(GRADIENT_FLOOR),
                run(0.0),
                "{tier}: the floor itself counts"
            );
            // Moments of a parameter whose gradient vanished: m decays by 0.9 a step, v by
            // 0.999, and each reaches zero without passing through the subnormal range.
            let (mut p, mut m, mut v) = (vec![0.5f32; 19], vec![1e-3f32; 19], vec![1e-6; 19]);
            let (mut m_zero_at, mut steps) = (None, 0);
            while v[0] != 0.0 {
                let _ = no_decay.apply(tier, &mut p, &[0.0; 19], &mut m, &mut v);
                steps += 1;
                assert!(
                    floored_or_zero(&m, MOMENT_FLOOR),
                    "{tier}: m {:e} at {steps}",
                    m[0]
                );
                assert!(
                    floored_or_zero(&v, MOMENT_FLOOR),
                    "{tier}: v {:e} at {steps}",
                    v[0]
                );
                if m[0] == 0.0 && m_zero_at.is_none() {
                    m_zero_at = Some(steps);
                }
                assert!(steps < 100_000, "{tier}: v never reached zero");
            }
            // 1e-3 * 0.9^k < 2^-100 from k = 593 and 1e-6 * 0.999^k from k = 55,472, give or
            // take the rounding of each step's product.
            let m_zero_at = m_zero_at.expect("m reached zero before v");
            assert!(
                (588..598).contains(&m_zero_at),
                "{tier}: m zero at {m_zero_at}"
            );
            assert!(
                (55_000..56_000).contains(&steps),
                "{tier}: v zero at {steps}"
            );
        }
    }

    /// SGD's velocity obeys the same floors.
    #[test]
    fn a_decaying_sgd_velocity_is_stored_as_zero_below_the_floor() {
        let sgd = SgdStep {
            lr_t: 0.01,
            mu: 0.9,
            decay: 0.0,
        };
        let (mut p, mut vel) = (vec![0.5f32; 3], vec![1e-3f32; 3]);
        let mut steps = 0;
        while vel[0] != 0.0 {
            let _ = sgd.apply(Tier::Portable, &mut p, &[GRADIENT_FLOOR * 0.5; 3], &mut vel);
            steps += 1;
            assert!(
                floored_or_zero(&vel, MOMENT_FLOOR),
                "vel {:e} at {steps}",
                vel[0]
            );
        }
        // 1e-3 * 0.9^k < 2^-100 from k = 593, give or take rounding: the gradients below
        // the floor added nothing.
        assert!((588..598).contains(&steps), "velocity zero at {steps}");
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
        let finite = first.apply(Tier::Portable, &mut p, &g, &mut m, &mut v);
        assert!(finite.gradients && finite.parameters);
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
            let _ = STEP.apply(tier, &mut p1, &g, &mut m1, &mut v1);
            let _ = STEP.apply(Tier::Portable, &mut p2, &g, &mut m2, &mut v2);
            assert_eq!(
                (bits(&p1), bits(&m1), bits(&v1)),
                (bits(&p2), bits(&m2), bits(&v2)),
                "{tier}"
            );
            assert_ne!(bits(&p1), bits(&p0), "the update moved the parameters");
        }
    }

    /// SGD's vector tiers against its portable loop, bit for bit, flags included.
    #[test]
    fn every_vector_tier_s_sgd_update_is_the_portable_one_bit_for_bit() {
        const NAME: &str = "every_vector_tier_s_sgd_update_is_the_portable_one_bit_for_bit";
        let sgd = SgdStep {
            lr_t: 0.01 / 1.3,
            mu: 0.9,
            decay: 1e-3,
        };
        for tier in [Tier::Avx512, Tier::Avx2, Tier::Neon] {
            if !require_tier(tier, &format!("{NAME} on {tier}")) {
                continue;
            }
            let [p0, mut g, vel0, _] = operands();
            g[700] = f32::NAN;
            let (mut p1, mut vel1) = (p0.clone(), vel0.clone());
            let (mut p2, mut vel2) = (p0.clone(), vel0);
            let fast = sgd.apply(tier, &mut p1, &g, &mut vel1);
            let portable = sgd.apply(Tier::Portable, &mut p2, &g, &mut vel2);
            assert_eq!(fast, portable, "{tier}");
            assert!(
                !fast.gradients && !fast.parameters,
                "{tier}: the NaN at 700"
            );
            assert_eq!((bits(&p1), bits(&vel1)), (bits(&p2), bits(&vel2)), "{tier}");
            assert_ne!(bits(&p1), bits(&p0), "the update moved the parameters");
        }
    }

    #[test]
    #[should_panic(expected = "lengths p 2, g 1")]
    fn operands_of_different_lengths_panic_with_the_lengths() {
        let (mut p, mut m, mut v) = (vec![0.0f32; 2], vec![0.0f32; 2], vec![0.0f32; 2]);
        let _ = STEP.apply(Tier::Portable, &mut p, &[0.0], &mut m, &mut v);
    }

    /// A NaN or infinite gradient anywhere in a chunk, at any lane or in the tail, is reported
    /// on every tier, and so is a parameter that is not finite after the update.
    #[test]
    fn every_tier_reports_a_non_finite_gradient_or_parameter_wherever_it_sits() {
        const NAME: &str = "every_tier_reports_a_non_finite_gradient_or_parameter_wherever_it_sits";
        for tier in [Tier::Portable, Tier::Avx512, Tier::Avx2, Tier::Neon] {
            if !require_tier(tier, &format!("{NAME} on {tier}")) {
                continue;
            }
            let [p0, g0, m0, v0] = operands();
            let run = |p: &mut Vec<f32>, g: &[f32]| {
                let (mut m, mut v) = (m0.clone(), v0.clone());
                STEP.apply(tier, p, g, &mut m, &mut v)
            };
            let all_finite = Finite {
                gradients: true,
                parameters: true,
            };
            assert_eq!(run(&mut p0.clone(), &g0), all_finite, "{tier}");
            for at in [0, 5, 15, 16, 500, 1007, 1012] {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut g = g0.clone();
                    g[at] = bad;
                    let found = run(&mut p0.clone(), &g);
                    assert!(!found.gradients, "{tier}: gradient {bad} at {at} unseen");
                    assert!(!found.parameters, "{tier}: parameter at {at} went {bad}");
                }
                // Finite gradients, but a parameter already infinite stays so.
                let mut p = p0.clone();
                p[at] = f32::INFINITY;
                let found = run(&mut p, &g0);
                assert!(found.gradients, "{tier}: all gradients are finite");
                assert!(!found.parameters, "{tier}: parameter {} at {at}", p[at]);
            }
        }
    }
}
