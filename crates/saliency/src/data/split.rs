//! Deterministic, stratified train/test split by seeded per-class shuffles.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::data::error::DataError;

/// The study's default share of each class held out for testing (80 % train / 20 % test).
pub const DEFAULT_TEST_FRACTION: f64 = 0.2;

/// `indices` reordered round-robin over their classes (the first of each class in label order,
/// then the second of each, ...), each class keeping its own order: the same set, but any prefix
/// of it covers the classes evenly. The study's figures show the first few test images, which a
/// sorted stratified split would fill with one class.
pub fn interleave_by_class(indices: &[usize], labels: &[u32]) -> Vec<usize> {
    let classes = indices
        .iter()
        .map(|&i| labels[i] as usize + 1)
        .max()
        .unwrap_or(0);
    let mut queues: Vec<std::collections::VecDeque<usize>> = vec![Default::default(); classes];
    for &i in indices {
        queues[labels[i] as usize].push_back(i);
    }
    let mut out = Vec::with_capacity(indices.len());
    while out.len() < indices.len() {
        for q in queues.iter_mut() {
            if let Some(i) = q.pop_front() {
                out.push(i);
            }
        }
    }
    out
}

/// Splits indices `0..labels.len()` into (train, test), each sorted ascending.
///
/// Stratified: each class's indices are shuffled and `round(n * test_fraction)` of them go to
/// test, clamped to 1..=n-1 when the class has at least two images so both sides see every
/// class (a class of one goes to train). Deterministic: class `c` is shuffled by
/// `ChaCha8Rng::seed_from_u64(seed)` on stream `c` with a hand-written Fisher-Yates over
/// `next_u64`, so the split depends only on (labels, fraction, seed), not on other classes or on
/// the `rand` crate's shuffle, which may change between versions.
pub fn train_test_split(
    labels: &[u32],
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(DataError::InvalidArgument {
            name: "test_fraction",
            expected: "a value strictly between 0 and 1".into(),
            found: test_fraction.to_string(),
        });
    }
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let mut train = Vec::with_capacity(labels.len());
    let mut test = Vec::new();
    for (class, mut indices) in by_class.into_iter().enumerate() {
        let n = indices.len();
        if n == 0 {
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(class as u64);
        shuffle(&mut indices, &mut rng);
        let mut n_test = (n as f64 * test_fraction).round() as usize;
        if n >= 2 {
            n_test = n_test.clamp(1, n - 1);
        } else {
            n_test = 0;
        }
        test.extend_from_slice(&indices[..n_test]);
        train.extend_from_slice(&indices[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

/// Fisher-Yates: for i from the end, swap item i with a uniform pick from 0..=i.
fn shuffle(items: &mut [usize], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = uniform_below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// A uniform integer in 0..bound (bound > 0) without modulo bias.
///
/// Draws below `2^64 mod bound` are rejected, leaving a range whose size is a multiple of
/// `bound`, so `r % bound` is exactly uniform.
fn uniform_below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    let reject_below = bound.wrapping_neg() % bound;
    loop {
        let r = rng.next_u64();
        if r >= reject_below {
            return r % bound;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 5 classes x 40 like the flowers set, then a lopsided class and a singleton.
    fn labels() -> Vec<u32> {
        let mut l: Vec<u32> = (0..200).map(|i| i / 40).collect();
        l.extend([5; 7]);
        l.push(6);
        l
    }

    #[test]
    fn deterministic_for_a_seed_and_different_across_seeds() {
        let l = labels();
        let a = train_test_split(&l, DEFAULT_TEST_FRACTION, 7).unwrap();
        assert_eq!(a, train_test_split(&l, DEFAULT_TEST_FRACTION, 7).unwrap());
        assert_ne!(a, train_test_split(&l, DEFAULT_TEST_FRACTION, 8).unwrap());
    }

    #[test]
    fn stratified_disjoint_sorted_and_complete() {
        let l = labels();
        let (train, test) = train_test_split(&l, 0.2, 0).unwrap();
        assert!(train.windows(2).all(|w| w[0] < w[1]) && test.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..l.len()).collect::<Vec<_>>(),
            "disjoint and covering"
        );
        // Per class: round(40 * 0.2) = 8 test; round(7 * 0.2) = 1; the singleton stays in train.
        let count = |set: &[usize], c: u32| set.iter().filter(|&&i| l[i] == c).count();
        for c in 0..5 {
            assert_eq!((count(&train, c), count(&test, c)), (32, 8), "class {c}");
        }
        assert_eq!((count(&train, 5), count(&test, 5)), (6, 1));
        assert_eq!((count(&train, 6), count(&test, 6)), (1, 0));
    }

    #[test]
    fn a_class_split_ignores_other_classes() {
        // Class 0's test picks are the same whether or not class 1 exists (one stream per class).
        let only0 = vec![0u32; 40];
        let mut both = only0.clone();
        both.extend(vec![1u32; 40]);
        let (_, t0) = train_test_split(&only0, 0.25, 3).unwrap();
        let (_, tb) = train_test_split(&both, 0.25, 3).unwrap();
        assert_eq!(
            t0,
            tb.iter().copied().filter(|&i| i < 40).collect::<Vec<_>>()
        );
    }

    #[test]
    fn fraction_outside_open_unit_interval_is_refused() {
        for f in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            let m = train_test_split(&[0, 1], f, 0).unwrap_err().to_string();
            assert!(
                m.contains("test_fraction") && m.contains("between 0 and 1"),
                "{m}"
            );
        }
    }

    #[test]
    fn uniform_below_covers_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut seen = [0usize; 3];
        for _ in 0..3000 {
            seen[uniform_below(&mut rng, 3) as usize] += 1;
        }
        // Each value ~1000 of 3000; 800 is over 8 standard deviations below.
        assert!(seen.iter().all(|&s| s > 800), "{seen:?}");
    }

    #[test]
    fn interleaving_takes_the_classes_in_turn_and_keeps_the_set() {
        let labels = [0, 0, 0, 1, 1, 2, 2, 2, 2];
        let test = [0, 1, 2, 3, 4, 5, 6, 8];
        let order = interleave_by_class(&test, &labels);
        assert_eq!(order, [0, 3, 5, 1, 4, 6, 2, 8]);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, test);
        assert!(interleave_by_class(&[], &labels).is_empty());
    }
}
