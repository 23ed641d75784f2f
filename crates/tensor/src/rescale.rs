//! DeepLIFT's rescale rule's elementwise passes over f32 activations, compiled once per SIMD tier.
//!
//! A DeepLIFT pass runs them over every ReLU's input and every max-pool's input. They compute in
//! f32, Captum's operations in Captum's order (`grad_output * delta_out / delta_in`, the
//! differences taken in the model's precision). f64 divisions cost a quarter of a `deep` pass
//! at batch 256, for precision beyond what Captum's f32 definition has. Differences, a product, a quotient and
//! selects are exactly rounded in any lane width (no fused multiply-add), so every tier gives
//! the same bits.

use crate::cpu::Tier;

/// Below this input difference |x - x'| the rescale rule takes the gradient (Captum's 1e-10).
pub const RESCALE_EPS: f64 = 1e-10;

/// The ReLU rescale rule: `dx[j] = g[j] (relu(a[j]) - relu(r[j])) / (a[j] - r[j])`, in f32 from
/// left to right, or the plain gradient (`g[j]` where `a[j] > 0`, else 0) where
/// `|a[j] - r[j]| < RESCALE_EPS`; `a` the inputs' values, `r` their references', on `tier`.
///
/// # Panics
/// When the four slices differ in length (a caller's bug, named in the message).
pub fn relu_rescale(tier: Tier, a: &[f32], r: &[f32], g: &[f32], dx: &mut [f32]) {
    assert!(
        a.len() == r.len() && g.len() == a.len() && dx.len() == a.len(),
        "relu_rescale lengths a {}, r {}, g {}, dx {}",
        a.len(),
        r.len(),
        g.len(),
        dx.len()
    );
    if tier.vector_kernels() {
        crate::arch::relu_rescale(tier, a, r, g, dx);
    } else {
        relu_body(a, r, g, dx);
    }
}

/// The loop every tier compiles: selects, not branches, so it vectorizes at the tier's width.
#[inline(always)]
pub(crate) fn relu_body(a: &[f32], r: &[f32], g: &[f32], dx: &mut [f32]) {
    let eps = RESCALE_EPS as f32;
    for (((d, &a), &r), &g) in dx.iter_mut().zip(a).zip(r).zip(g) {
        let delta_in = a - r;
        let delta_out = a.max(0.0) - r.max(0.0);
        let ratio = g * delta_out / delta_in;
        let plain = if a > 0.0 { g } else { 0.0 };
        *d = if delta_in.abs() < eps { plain } else { ratio };
    }
}

/// The max-pool rescale rule's last step: `dx[j] = moved[j] / (a[j] - r[j])` in f32, where `|a[j] - r[j]| >= RESCALE_EPS` (elsewhere `dx[j]` keeps the plain gradient it
/// holds); `moved` the output differences each input received, on `tier`.
///
/// # Panics
/// When the four slices differ in length (a caller's bug, named in the message).
pub fn pool_rescale_divide(tier: Tier, moved: &[f32], a: &[f32], r: &[f32], dx: &mut [f32]) {
    assert!(
        a.len() == r.len() && moved.len() == a.len() && dx.len() == a.len(),
        "pool_rescale_divide lengths moved {}, a {}, r {}, dx {}",
        moved.len(),
        a.len(),
        r.len(),
        dx.len()
    );
    if tier.vector_kernels() {
        crate::arch::pool_rescale_divide(tier, moved, a, r, dx);
    } else {
        divide_body(moved, a, r, dx);
    }
}

/// [`pool_rescale_divide`]'s loop, as [`relu_body`]: selects, not branches.
#[inline(always)]
pub(crate) fn divide_body(moved: &[f32], a: &[f32], r: &[f32], dx: &mut [f32]) {
    let eps = RESCALE_EPS as f32;
    for (((d, &m), &a), &r) in dx.iter_mut().zip(moved).zip(a).zip(r) {
        let delta_in = a - r;
        let ratio = m / delta_in;
        *d = if delta_in.abs() >= eps { ratio } else { *d };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::require_tier;

    /// 1013 activations (63 vectors of 16 and a tail): pairs equal, within 1e-10, of both signs
    /// and across zero, with a signal of both signs.
    fn operands() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let a: Vec<f32> = (0..1013)
            .map(|i| ((i as f32) * 0.37).sin() * 10f32.powi(i % 5 - 2))
            .collect();
        let r = a
            .iter()
            .enumerate()
            .map(|(i, &v)| match i % 6 {
                0 => v,
                1 => v + 1e-12,
                2 => -v,
                3 => 0.0,
                _ => ((i as f32) * 0.91).cos(),
            })
            .collect();
        let g = (0..1013).map(|i| ((i as f32) * 1.1).cos()).collect();
        (a, r, g)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn the_portable_loops_are_the_definitions() {
        let (a, r, g) = operands();
        let mut dx = vec![f32::NAN; a.len()];
        relu_rescale(Tier::Portable, &a, &r, &g, &mut dx);
        // Captum's `nonlinear` and `maxpool` rules, f32 operations in its order.
        let eps = 1e-10f32;
        for j in 0..a.len() {
            let delta = a[j] - r[j];
            let want = if delta.abs() < eps {
                if a[j] > 0.0 {
                    g[j]
                } else {
                    0.0
                }
            } else {
                g[j] * (a[j].max(0.0) - r[j].max(0.0)) / delta
            };
            assert_eq!(dx[j].to_bits(), want.to_bits(), "relu at {j}");
        }
        let moved: Vec<f32> = g.iter().map(|&v| v * 0.3).collect();
        let mut dx = vec![7.0f32; a.len()];
        pool_rescale_divide(Tier::Portable, &moved, &a, &r, &mut dx);
        for j in 0..a.len() {
            let delta = a[j] - r[j];
            let want = if delta.abs() >= eps {
                moved[j] / delta
            } else {
                7.0
            };
            assert_eq!(dx[j].to_bits(), want.to_bits(), "pool at {j}");
        }
    }

    /// Each vector tier's instantiation against the portable loops, bit for bit; a tier the CPU
    /// lacks prints a SKIPPED line.
    #[test]
    fn every_vector_tier_s_rescale_is_the_portable_one_bit_for_bit() {
        const NAME: &str = "every_vector_tier_s_rescale_is_the_portable_one_bit_for_bit";
        let (a, r, g) = operands();
        let moved: Vec<f32> = g.iter().map(|&v| v * 0.3).collect();
        for tier in [Tier::Avx512, Tier::Avx2, Tier::Neon] {
            if !require_tier(tier, &format!("{NAME} on {tier}")) {
                continue;
            }
            let (mut fast, mut portable) = (vec![f32::NAN; a.len()], vec![f32::NAN; a.len()]);
            relu_rescale(tier, &a, &r, &g, &mut fast);
            relu_rescale(Tier::Portable, &a, &r, &g, &mut portable);
            assert_eq!(bits(&fast), bits(&portable), "relu, {tier}");
            let (mut fast, mut portable) = (g.clone(), g.clone());
            pool_rescale_divide(tier, &moved, &a, &r, &mut fast);
            pool_rescale_divide(Tier::Portable, &moved, &a, &r, &mut portable);
            assert_eq!(bits(&fast), bits(&portable), "pool, {tier}");
        }
    }

    #[test]
    #[should_panic(expected = "relu_rescale lengths a 2, r 1, g 1, dx 1")]
    fn operands_of_different_lengths_panic_with_the_lengths() {
        relu_rescale(Tier::Portable, &[0.0; 2], &[0.0], &[0.0], &mut [0.0]);
    }
}
