//! Max-pool backward against finite differences and the adjoint identity, and thread-count independence.

use pool::{max_pool2d_backward, max_pool2d_forward, max_pool2d_forward_inference, Pool2dGeometry};
use proptest::prelude::*;
use tensor::testing::{check_close, in_pool};

/// A small deterministic generator (splitmix64), so a proptest seed fixes every value.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [-1, 1).
    fn signed(&mut self) -> f64 {
        2.0 * self.unit() - 1.0
    }
}

/// Distinct inputs, far from ties: a random permutation of 0..n scaled by `GAP`, plus noise
/// below `GAP / 10`, so any two values differ by at least 0.9 * GAP.
const GAP: f64 = 0.1;

fn distinct_values(n: usize, rng: &mut Rng) -> Vec<f64> {
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        perm.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    perm.iter()
        .map(|&p| p as f64 * GAP + rng.unit() * GAP / 10.0)
        .collect()
}

/// Finite-difference step: a perturbation of at most STEP (directions are in [-1, 1]) cannot
/// reorder values 0.9 * GAP apart, so every window keeps its winner and the pooling is exactly
/// linear over the stencil; central differences are then exact up to rounding.
const STEP: f64 = 1e-3;

fn forward(g: &Pool2dGeometry, x: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; g.output_len()];
    max_pool2d_forward_inference(g, x, &mut out);
    out
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn backward(g: &Pool2dGeometry, x: &[f64], dy: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; g.output_len()];
    let mut arg = vec![0u32; g.output_len()];
    max_pool2d_forward(g, x, &mut out, &mut arg);
    let mut dx = vec![f64::NAN; g.input_len()];
    max_pool2d_backward(g, dy, &arg, &mut dx);
    dx
}

/// Shapes from the brief's ranges; combinations where the kernel does not fit are filtered out.
fn geometry() -> impl Strategy<Value = Pool2dGeometry> {
    (
        1..=3usize,
        1..=4usize,
        3..=12usize,
        3..=12usize,
        1..=4usize,
        1..=3usize,
    )
        .prop_filter_map("kernel must fit", |(n, c, h, w, k, s)| {
            Pool2dGeometry::new(n, c, h, w, k, s).ok()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Projects the output with random weights w, L(x) = <w, pool(x)>, so dL/dy = w, and
    /// compares backward(w) with central differences of L in every input coordinate.
    #[test]
    fn backward_matches_central_differences(g in geometry(), seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let mut x = distinct_values(g.input_len(), &mut rng);
        let w: Vec<f64> = (0..g.output_len()).map(|_| rng.signed()).collect();
        let analytic = backward(&g, &x, &w);
        let mut numeric = vec![0.0; x.len()];
        for i in 0..x.len() {
            let x0 = x[i];
            x[i] = x0 + STEP;
            let plus = dot(&w, &forward(&g, &x));
            x[i] = x0 - STEP;
            let minus = dot(&w, &forward(&g, &x));
            x[i] = x0;
            numeric[i] = (plus - minus) / (2.0 * STEP);
        }
        // Rounding: L is a sum of terms up to n * GAP ~ 170, so each difference carries
        // ~1e-13 of error, ~1e-10 after dividing by 2 * STEP. 1e-7 leaves a wide margin while
        // any routing mistake is off by at least the smallest weight used.
        check_close("dx vs central differences", &analytic, &numeric, 1e-7, 1e-7).map_err(TestCaseError::fail)?;
    }

    /// <J dx, dy> = <dx, J^T dy>, with J dx from central differences of the forward along
    /// dx (independent of the argmax) and J^T dy from the backward.
    #[test]
    fn backward_is_the_adjoint_of_the_linearization(g in geometry(), seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let x = distinct_values(g.input_len(), &mut rng);
        let dx: Vec<f64> = (0..x.len()).map(|_| rng.signed()).collect();
        let dy: Vec<f64> = (0..g.output_len()).map(|_| rng.signed()).collect();
        let shifted = |sign: f64| -> Vec<f64> { x.iter().zip(&dx).map(|(v, d)| v + sign * STEP * d).collect() };
        let (plus, minus) = (forward(&g, &shifted(1.0)), forward(&g, &shifted(-1.0)));
        let jdx: Vec<f64> = plus.iter().zip(&minus).map(|(p, m)| (p - m) / (2.0 * STEP)).collect();
        let lhs = dot(&jdx, &dy);
        let rhs = dot(&dx, &backward(&g, &x, &dy));
        check_close("<J dx, dy> vs <dx, J^T dy>", &[lhs], &[rhs], 1e-7, 1e-7).map_err(TestCaseError::fail)?;
    }
}

/// Runs forward, inference and backward, returning every result as bits.
fn run_all(g: &Pool2dGeometry, x: &[f32], dy: &[f32]) -> (Vec<u32>, Vec<u32>, Vec<u32>, Vec<u32>) {
    let mut out = vec![0.0f32; g.output_len()];
    let mut arg = vec![0u32; g.output_len()];
    max_pool2d_forward(g, x, &mut out, &mut arg);
    let mut inference = vec![0.0f32; g.output_len()];
    max_pool2d_forward_inference(g, x, &mut inference);
    let mut dx = vec![0.0f32; g.input_len()];
    max_pool2d_backward(g, dy, &arg, &mut dx);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    (bits(&out), arg, bits(&inference), bits(&dx))
}

#[test]
fn results_are_bitwise_identical_with_1_and_2_threads() {
    // Overlapping windows (3x3 stride 2) so the backward accumulates, values from a few levels
    // so ties are common, and a NaN.
    let g = Pool2dGeometry::new(3, 5, 31, 27, 3, 2).unwrap();
    let mut rng = Rng(7);
    let mut x: Vec<f32> = (0..g.input_len())
        .map(|_| (rng.next_u64() % 7) as f32 - 3.0)
        .collect();
    x[1000] = f32::NAN;
    let dy: Vec<f32> = (0..g.output_len()).map(|_| rng.signed() as f32).collect();
    let one = in_pool(1, || run_all(&g, &x, &dy));
    let two = in_pool(2, || run_all(&g, &x, &dy));
    assert!(one == two, "results differ between 1 and 2 threads");
}
