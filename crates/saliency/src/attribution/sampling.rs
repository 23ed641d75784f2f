//! Seeded randomness and batched gradients at many points, shared by the sampling methods
//! (SmoothGrad, VarGrad, GradientSHAP, Shapley value sampling).
//!
//! Every draw for image i and sample k comes from its own ChaCha8 stream seeded by
//! (seed, method, i, k), so results depend neither on the batch size nor on the thread count.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tensor::{Float, Tensor};

use super::target::Score;
use super::AttributionError;
use crate::infer::input_gradients;
use crate::models::{mix_seed, Model};

/// The generator of sample `k` of image `image` for the method salted `salt`.
pub(crate) fn sample_rng(seed: u64, salt: u64, image: usize, k: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix_seed(
        mix_seed(mix_seed(seed, salt), image as u64),
        k as u64,
    ))
}

/// A draw in [0, 1) with 53 random bits.
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// One standard normal draw (the ziggurat method: most draws take one word of the stream).
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    super::ziggurat::standard_normal(rng)
}

/// `out[j] = base[j] + sigma * z_j` with `z_j` standard normal draws from the stream
/// (the ziggurat in bulk: see [`super::ziggurat::add_scaled_normals`]).
pub(crate) fn add_normal_noise<T: Float>(
    rng: &mut ChaCha8Rng,
    sigma: f64,
    base: &[T],
    out: &mut [T],
) {
    debug_assert_eq!(out.len(), base.len(), "noise base and output");
    super::ziggurat::add_scaled_normals(rng, sigma, base, out);
}

/// A uniform draw from 0..n (n >= 1), by rejection so every value is equally likely.
pub(crate) fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let n = n as u64;
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let v = rng.next_u64();
        if v < zone {
            return (v % n) as usize;
        }
    }
}

/// A uniformly random permutation of 0..n (Fisher-Yates).
pub(crate) fn permutation(rng: &mut ChaCha8Rng, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        p.swap(i, below(rng, i + 1));
    }
    p
}

/// Checks a sample count against 1..=`MAX_SAMPLES`.
pub(crate) fn check_samples(samples: usize) -> Result<(), AttributionError> {
    if samples == 0 || samples > MAX_SAMPLES {
        return Err(AttributionError::Option {
            option: "samples",
            expected: format!("a number of samples from 1 to {MAX_SAMPLES}"),
            found: samples.to_string(),
        });
    }
    Ok(())
}

/// Checks a noise level: finite and from 0 (or above 0 when `positive`) to `MAX_SIGMA`.
pub(crate) fn check_sigma(sigma: f64, positive: bool) -> Result<(), AttributionError> {
    let ok = sigma.is_finite()
        && sigma <= MAX_SIGMA
        && if positive { sigma > 0.0 } else { sigma >= 0.0 };
    if !ok {
        let low = if positive { "above 0" } else { "from 0" };
        return Err(AttributionError::Option {
            option: "sigma",
            expected: format!(
                "a noise standard deviation {low} up to {MAX_SIGMA} (inputs are in [0, 1])"
            ),
            found: sigma.to_string(),
        });
    }
    Ok(())
}

/// Checks a points-per-pass option.
pub(crate) fn check_batch(batch: usize) -> Result<(), AttributionError> {
    if batch == 0 {
        return Err(AttributionError::Option {
            option: "batch",
            expected: "at least 1 point per pass".into(),
            found: "0".into(),
        });
    }
    Ok(())
}

/// Most samples per image any sampling method accepts.
pub const MAX_SAMPLES: usize = 10_000;

/// Largest noise standard deviation accepted: ten times the input range.
pub const MAX_SIGMA: f64 = 10.0;

/// The gradient of the score of `classes[i]` at `samples` points per image, `batch` points per
/// forward/backward pass, handed to `consume(i, k, gradient)` image-major, k in order.
///
/// `make(i, k, point)` writes sample k of image i (shaped like one input; any values, no range
/// check). Memory is bounded by `batch` points, not by samples x images.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gradients_at_points<T: Float>(
    model: &Model<T>,
    n: usize,
    samples: usize,
    classes: &[usize],
    score: Score,
    batch: usize,
    mut make: impl FnMut(usize, usize, &mut [T]),
    mut consume: impl FnMut(usize, usize, &[T]),
) -> Result<(), AttributionError> {
    let per: usize = model.input.iter().product();
    in_passes(
        model,
        n,
        samples,
        classes,
        score,
        batch,
        |pass, points| {
            points.fill(T::ZERO);
            for (&(i, k), p) in pass.iter().zip(points.chunks_exact_mut(per)) {
                make(i, k, p);
            }
        },
        |pass, grads| {
            for (&(i, k), g) in pass.iter().zip(grads.chunks_exact(per)) {
                consume(i, k, g);
            }
        },
    )
}

/// [`gradients_at_points`] with the points of a pass made in parallel, and each pass's
/// gradients handed over at once: `consume(pass, gradients)` gets the pass's (image, sample)
/// pairs, image-major and k in order, and their gradients in the same order.
///
/// `make(i, k, point)` must write every element of the point and depend on (i, k) only (say,
/// through [`sample_rng`]), which is what keeps the points the same on any thread count.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gradients_at_points_par<T: Float>(
    model: &Model<T>,
    n: usize,
    samples: usize,
    classes: &[usize],
    score: Score,
    batch: usize,
    make: impl Fn(usize, usize, &mut [T]) + Sync,
    consume: impl FnMut(&[(usize, usize)], &[T]),
) -> Result<(), AttributionError> {
    use rayon::prelude::*;
    let per: usize = model.input.iter().product();
    in_passes(
        model,
        n,
        samples,
        classes,
        score,
        batch,
        |pass, points| {
            points
                .par_chunks_mut(per)
                .zip(pass.par_iter())
                .for_each(|(p, &(i, k))| make(i, k, p))
        },
        consume,
    )
}

/// The passes of [`gradients_at_points`]: `fill(pass, points)` writes the pass's points (its
/// buffer, reused from pass to pass, holds the last pass's values), `take(pass, gradients)`
/// reads their gradients.
#[allow(clippy::too_many_arguments)]
fn in_passes<T: Float>(
    model: &Model<T>,
    n: usize,
    samples: usize,
    classes: &[usize],
    score: Score,
    batch: usize,
    mut fill: impl FnMut(&[(usize, usize)], &mut [T]),
    mut take: impl FnMut(&[(usize, usize)], &[T]),
) -> Result<(), AttributionError> {
    let [c, h, w] = model.input;
    let per = c * h * w;
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| (0..samples).map(move |k| (i, k)))
        .collect();
    let mut points = Vec::with_capacity(batch.min(pairs.len()) * per);
    for pass in pairs.chunks(batch) {
        // Only the last pass can be shorter; `fill` overwrites what stays.
        points.resize(pass.len() * per, T::ZERO);
        fill(pass, &mut points);
        let x = Tensor::from_vec(&[pass.len(), c, h, w], std::mem::take(&mut points))?;
        let point_classes = pass.iter().map(|&(i, _)| classes[i]).collect();
        let (grad, _) = input_gradients(model, &x, &score.objective(point_classes))?;
        take(pass, grad.data());
        points = x.into_vec();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_permutations_and_streams_are_reproducible() {
        let mut a = sample_rng(7, 1, 3, 2);
        let mut b = sample_rng(7, 1, 3, 2);
        let p = permutation(&mut a, 50);
        assert_eq!(p, permutation(&mut b, 50));
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(p, (0..50).collect::<Vec<_>>(), "50 items left in order");
        // Another image's stream differs.
        assert_ne!(permutation(&mut sample_rng(7, 1, 4, 2), 50), p);
    }

    /// Memory is bounded by `batch` points per pass, not by samples x images: every point of a
    /// pass is made before any gradient of it is consumed, so the points made and not yet
    /// consumed never exceed one pass.
    #[test]
    fn a_pass_holds_at_most_batch_points() {
        let model = crate::models::ModelKind::Deep
            .build::<f32>([1, 28, 28], 10, 0)
            .unwrap();
        let (n, samples, batch) = (3, 7, 4);
        let pending = std::cell::Cell::new(0usize);
        let (mut most, mut made, mut seen) = (0usize, Vec::new(), Vec::new());
        gradients_at_points(
            &model,
            n,
            samples,
            &[0, 1, 2],
            Score::Logit,
            batch,
            |i, k, p| {
                pending.set(pending.get() + 1);
                most = most.max(pending.get());
                made.push((i, k));
                p.iter_mut().for_each(|v| *v = 0.5);
            },
            |i, k, g| {
                pending.set(pending.get() - 1);
                assert_eq!(g.len(), 784);
                seen.push((i, k));
            },
        )
        .unwrap();
        assert_eq!(most, batch, "{n} x {samples} points, {batch} per pass");
        assert_eq!(made.len(), n * samples);
        assert_eq!(made, seen);
    }

    #[test]
    fn normal_draws_have_unit_variance() {
        let mut rng = sample_rng(1, 2, 0, 0);
        let xs: Vec<f64> = (0..20_000).map(|_| normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        // Standard errors: 0.007 for the mean, 0.01 for the variance; 4 of them.
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.04, "variance {var}");
    }

    #[test]
    fn options_out_of_range_name_the_option() {
        assert!(check_samples(0)
            .unwrap_err()
            .to_string()
            .contains("option samples"));
        assert!(check_samples(MAX_SAMPLES + 1).is_err());
        assert!(check_sigma(0.0, true)
            .unwrap_err()
            .to_string()
            .contains("option sigma"));
        assert!(check_sigma(0.0, false).is_ok());
        assert!(check_sigma(f64::NAN, false).is_err());
        assert!(check_sigma(11.0, false).is_err());
    }
}
