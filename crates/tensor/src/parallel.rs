//! Rayon helpers whose results do not depend on the number of threads.
//!
//! Work is split into chunks whose boundaries depend only on the problem size, never on the
//! thread count; a reduction computes one partial per chunk and combines them in index order.

use rayon::prelude::*;

use crate::Float;

/// Sums `f(chunk_index, range)` partial vectors of length `len` over `0..n` in chunks of
/// `chunk` items. Each partial is computed independently (in parallel); partials are added in
/// chunk order, so the result is bitwise the same for any thread count.
pub fn ordered_chunk_sum<T, F>(n: usize, chunk: usize, len: usize, f: F) -> Vec<T>
where
    T: Float,
    F: Fn(std::ops::Range<usize>, &mut [T]) + Sync,
{
    let chunk = chunk.max(1);
    let n_chunks = n.div_ceil(chunk);
    if n_chunks <= 1 {
        let mut out = vec![T::ZERO; len];
        if n > 0 {
            f(0..n, &mut out);
        }
        return out;
    }
    let partials: Vec<Vec<T>> = (0..n_chunks)
        .into_par_iter()
        .map(|c| {
            let mut part = vec![T::ZERO; len];
            f(c * chunk..((c + 1) * chunk).min(n), &mut part);
            part
        })
        .collect();
    let mut iter = partials.into_iter();
    let mut out = iter.next().expect("at least two chunks");
    for p in iter {
        T::vadd_assign(&mut out, &p);
    }
    out
}

/// Sum of a slice in a fixed order (pairs of fixed-size blocks), independent of threads.
pub fn ordered_sum<T: Float>(x: &[T]) -> T {
    const BLOCK: usize = 4096;
    if x.len() <= BLOCK {
        return x.iter().copied().sum();
    }
    let partials: Vec<T> = x
        .par_chunks(BLOCK)
        .map(|c| c.iter().copied().sum())
        .collect();
    partials.into_iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::in_pool;

    #[test]
    fn chunk_sum_is_thread_count_independent() {
        let data: Vec<f32> = (0..10_007)
            .map(|i| ((i as f32) * 0.37).sin() * 1e3)
            .collect();
        let run = || {
            ordered_chunk_sum::<f32, _>(data.len(), 13, 3, |r, out| {
                for i in r {
                    out[i % 3] += data[i];
                }
            })
        };
        let one = in_pool(1, run);
        let two = in_pool(2, run);
        let four = in_pool(4, run);
        assert_eq!(one, two);
        assert_eq!(one, four);
        let expect: f64 = data.iter().map(|&v| v as f64).sum();
        let got: f64 = one.iter().map(|&v| v as f64).sum();
        assert!(
            (expect - got).abs() < 1e-2 * expect.abs().max(1.0),
            "{expect} vs {got}"
        );
    }

    #[test]
    fn ordered_sum_is_thread_count_independent() {
        let data: Vec<f32> = (0..100_003).map(|i| ((i as f32) * 0.11).cos()).collect();
        assert_eq!(
            in_pool(1, || ordered_sum(&data)).to_bits(),
            in_pool(2, || ordered_sum(&data)).to_bits()
        );
    }
}
