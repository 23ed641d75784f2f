//! Standard normal draws by the ziggurat method (Marsaglia and Tsang 2000, "The ziggurat method
//! for generating random variables", with Doornik's 2005 fix of taking the layer and the
//! uniform from separate bits).
//!
//! The density's right half is covered by 256 layers of equal area V: a base strip (a rectangle
//! up to R plus the tail beyond it) and 255 rectangles stacked on it. A draw picks a layer and a
//! point in it from one 64-bit word; about 99 % of draws land in the part of a rectangle that
//! lies under the curve and return at once, so a normal costs one generator word and a multiply
//! instead of Box-Muller's logarithm and cosine. The rest are settled exactly by the wedge test
//! or by Marsaglia's tail algorithm, so the draws are exactly N(0, 1) up to the 53-bit
//! uniforms. A draw depends only on the words the generator gives, so a stream seeded per
//! (image, sample) gives the same noise on any thread count.
//!
//! Noise in bulk ([`add_scaled_normals`], SmoothGrad's and VarGrad's) takes each draw's first
//! try from a 32-bit word (a 24-bit uniform), half the stream a 64-bit word costs.

use std::sync::OnceLock;

use rand_chacha::rand_core::RngCore;

/// Layers of the ziggurat (the low 8 bits of a word pick one).
const LAYERS: usize = 256;

/// Where the tail starts: the x of the base strip's rectangle for 256 layers (Marsaglia and
/// Tsang's r).
const R: f64 = 3.654_152_885_361_009;

/// Each layer's area under the unnormalized density exp(-x^2 / 2): R f(R) + the tail's area
/// beyond R, which is sqrt(pi / 2) erfc(R / sqrt 2).
const V: f64 = 0.004_928_673_233_974_658;

/// The layers' edges x[0..=256] (x[0] = V / f(R), the base strip's equivalent width; x[1] = R;
/// x[256] = 0) and the density there, f[i] = exp(-x[i]^2 / 2).
struct Tables {
    x: [f64; LAYERS + 1],
    f: [f64; LAYERS + 1],
}

/// The unnormalized standard normal density.
fn density(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

/// The tables, built once: layer i + 1 starts where layer i's rectangle, of area V, ends.
fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut x = [0.0; LAYERS + 1];
        x[0] = V / density(R);
        x[1] = R;
        for i in 2..LAYERS {
            x[i] = (-2.0 * (V / x[i - 1] + density(x[i - 1])).ln()).sqrt();
        }
        x[LAYERS] = 0.0;
        let f = x.map(density);
        Tables { x, f }
    })
}

/// A uniform draw in [0, 1) with 53 random bits.
fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// One standard normal draw.
pub(crate) fn standard_normal(rng: &mut impl RngCore) -> f64 {
    draw(rng, tables())
}

/// Draws per block of [`add_scaled_normals`]: one fill of the stream per block.
const BLOCK: usize = 256;

/// `out[j] = base[j] + sigma * z_j` with `z_j` standard normal draws, for noise in bulk
/// (SmoothGrad and VarGrad draw one per pixel per noisy copy: 784 per gradient on Fashion-MNIST).
///
/// Each draw's first try takes a 32-bit word from a block of the stream filled at once: its low 8
/// bits pick the layer, its top 24 the uniform (a 2^-23 grid instead of [`standard_normal`]'s
/// 2^-52, finer than f32's spacing near 1). The about 1 % of draws outside their layer's
/// rectangle finish one at a time with full-width words taken from the stream after the block;
/// a draw depends only on the stream, so the noise is reproducible from its seed, and each is an
/// exact ziggurat draw (the rectangle test and the rest see the same word).
pub(crate) fn add_scaled_normals<T: tensor::Float>(
    rng: &mut impl RngCore,
    sigma: f64,
    base: &[T],
    out: &mut [T],
) {
    let t = tables();
    let mut bytes = [0u8; 4 * BLOCK];
    for (o, b) in out.chunks_mut(BLOCK).zip(base.chunks(BLOCK)) {
        let bytes = &mut bytes[..4 * o.len()];
        rng.fill_bytes(bytes);
        for ((o, &b), w) in o.iter_mut().zip(b).zip(bytes.chunks_exact(4)) {
            let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            *o = T::from_f64(b.to_f64() + sigma * draw_from_word(word, rng, t));
        }
    }
}

/// One draw whose first try is `word` (layer from the low 8 bits, uniform in [-1, 1) from the
/// top 24); the rare rest, and any retry, from `rng`.
#[inline(always)]
fn draw_from_word(word: u32, rng: &mut impl RngCore, t: &Tables) -> f64 {
    let i = (word & 0xff) as usize;
    let u = (word >> 8) as f64 / (1u32 << 23) as f64 - 1.0;
    let x = u * t.x[i];
    if x.abs() < t.x[i + 1] {
        return x;
    }
    match outside_rectangle(rng, t, i, u, x) {
        Some(x) => x,
        None => draw(rng, t),
    }
}

/// One draw: the rectangle test inline, the rare rest out of line.
#[inline(always)]
fn draw(rng: &mut impl RngCore, t: &Tables) -> f64 {
    loop {
        let bits = rng.next_u64();
        let i = (bits & 0xff) as usize;
        // A uniform in [-1, 1) from the top 53 bits (disjoint from the layer's 8).
        let u = (bits >> 11) as f64 / (1u64 << 52) as f64 - 1.0;
        let x = u * t.x[i];
        if x.abs() < t.x[i + 1] {
            // Inside the part of the layer that lies under the curve.
            return x;
        }
        if let Some(x) = outside_rectangle(rng, t, i, u, x) {
            return x;
        }
    }
}

/// The about 1 % of draws outside a layer's rectangle: the tail for the base strip, else the
/// wedge between the rectangle and the curve (accepted under the curve; `None` draws again).
#[cold]
#[inline(never)]
fn outside_rectangle(rng: &mut impl RngCore, t: &Tables, i: usize, u: f64, x: f64) -> Option<f64> {
    if i == 0 {
        return Some(tail(rng, u < 0.0));
    }
    (t.f[i + 1] + (t.f[i] - t.f[i + 1]) * unit(rng) < density(x)).then_some(x)
}

/// A draw from the normal tail beyond R (Marsaglia 1964), negated when `negative`.
fn tail(rng: &mut impl RngCore, negative: bool) -> f64 {
    loop {
        // 1 - u keeps the logarithms' arguments in (0, 1].
        let a = -(1.0 - unit(rng)).ln() / R;
        let b = -(1.0 - unit(rng)).ln();
        if 2.0 * b >= a * a {
            return if negative { -(R + a) } else { R + a };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The standard normal CDF, from erfc (Numerical Recipes' erfcc, relative error < 1.2e-7).
    fn normal_cdf(x: f64) -> f64 {
        let z = x.abs() / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.5 * z);
        let poly = -z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77))))))));
        let erfc = t * poly.exp();
        if x >= 0.0 {
            1.0 - 0.5 * erfc
        } else {
            0.5 * erfc
        }
    }

    fn draws(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| standard_normal(&mut rng)).collect()
    }

    #[test]
    fn the_layers_have_equal_area_and_close_at_the_top() {
        let t = tables();
        for i in 1..LAYERS {
            // Rectangle i spans x[i] wide, from f[i] up to f[i + 1].
            let area = t.x[i] * (t.f[i + 1] - t.f[i]);
            assert!((area - V).abs() < 1e-12 * V, "layer {i}: {area} vs {V}");
        }
        assert!(t.x.windows(2).all(|w| w[0] > w[1]), "edges decrease");
        assert_eq!(t.f[LAYERS], 1.0);
    }

    /// Kolmogorov-Smirnov against the normal CDF: at n = 200,000 the 0.1 % critical distance is
    /// 1.95 / sqrt(n) = 0.0044, far above the CDF approximation's error.
    #[test]
    fn draws_follow_the_normal_distribution() {
        let xs = draws(11, 200_000);
        let n = xs.len() as f64;
        let d = ks_distance(xs.clone());
        assert!(d < 1.95 / n.sqrt(), "KS distance {d}");
        // Moments: mean 0, variance 1, kurtosis 3 (standard errors 0.0022, 0.0032, 0.011).
        let mean = xs.iter().sum::<f64>() / n;
        let m2 = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let m4 = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((m2 - 1.0).abs() < 0.015, "variance {m2}");
        assert!(
            (m4 / (m2 * m2) - 3.0).abs() < 0.06,
            "kurtosis {}",
            m4 / (m2 * m2)
        );
    }

    /// The tail beyond R, drawn by its own algorithm, holds its share 2 (1 - Phi(R)) = 2.58e-4
    /// of the draws, on both sides.
    #[test]
    fn the_tail_beyond_r_has_its_probability_on_both_sides() {
        let n = 2_000_000;
        let xs = draws(5, n);
        let (low, high) = (
            xs.iter().filter(|&&x| x < -R).count(),
            xs.iter().filter(|&&x| x > R).count(),
        );
        let want = n as f64 * (1.0 - normal_cdf(R)); // 258 per side
        for (side, got) in [("low", low), ("high", high)] {
            // 5 standard deviations of a Poisson count.
            assert!(
                (got as f64 - want).abs() < 5.0 * want.sqrt(),
                "{side} tail: {got} draws beyond R, expected {want:.0}"
            );
        }
        assert!(xs.iter().all(|x| x.is_finite()));
    }

    fn noise(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = vec![0.0; n];
        add_scaled_normals(&mut rng, 1.0, &vec![0.0f64; n], &mut out);
        out
    }

    /// Kolmogorov-Smirnov distance of `xs` from the normal CDF.
    fn ks_distance(mut xs: Vec<f64>) -> f64 {
        xs.sort_by(f64::total_cmp);
        let n = xs.len() as f64;
        xs.iter()
            .enumerate()
            .map(|(k, &x)| {
                let c = normal_cdf(x);
                (c - k as f64 / n).abs().max((c - (k + 1) as f64 / n).abs())
            })
            .fold(0.0, f64::max)
    }

    /// The bulk noise (24-bit first tries, full-width rest) is standard normal too: the KS
    /// distance at n = 200,000 below its 0.1 % critical value, the tail beyond R holding its
    /// share on both sides, and mean and variance within 4.5 standard errors.
    #[test]
    fn bulk_noise_follows_the_normal_distribution_tail_included() {
        let n = 2_000_000;
        let xs = noise(12, n);
        assert!(xs.iter().all(|x| x.is_finite()));
        let d = ks_distance(xs[..200_000].to_vec());
        assert!(d < 1.95 / (200_000f64).sqrt(), "KS distance {d}");
        let want = n as f64 * (1.0 - normal_cdf(R));
        for (side, got) in [
            ("low", xs.iter().filter(|&&x| x < -R).count()),
            ("high", xs.iter().filter(|&&x| x > R).count()),
        ] {
            assert!(
                (got as f64 - want).abs() < 5.0 * want.sqrt(),
                "{side} tail: {got} draws beyond R, expected {want:.0}"
            );
        }
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 4.5 / (n as f64).sqrt(), "mean {mean}");
        assert!(
            (var - 1.0).abs() < 4.5 * (2.0 / n as f64).sqrt(),
            "variance {var}"
        );
    }

    /// Noise is base + sigma z in the model's precision, z reproducible from the seed whatever
    /// the length of the call (blocks split the same way).
    #[test]
    fn bulk_noise_scales_shifts_and_repeats_with_its_seed() {
        let z = noise(4, 1000);
        assert_eq!(z, noise(4, 1000));
        assert_ne!(z, noise(5, 1000));
        let base: Vec<f32> = (0..1000).map(|j| j as f32 / 1000.0).collect();
        let mut out = vec![0.0f32; 1000];
        add_scaled_normals(&mut ChaCha8Rng::seed_from_u64(4), 0.15, &base, &mut out);
        for ((o, b), z) in out.iter().zip(&base).zip(&z) {
            assert_eq!(*o, (*b as f64 + 0.15 * z) as f32);
        }
    }

    #[test]
    fn a_seeded_stream_gives_the_same_draws() {
        assert_eq!(draws(3, 1000), draws(3, 1000));
        assert_ne!(draws(3, 1000), draws(4, 1000));
    }
}
