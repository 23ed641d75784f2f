//! The fast convolution against the naive oracle, across thread counts, and in f32 against f64.

use conv::*;
use proptest::prelude::*;
use tensor::testing::{assert_close, check_close, in_pool};
use tensor::Float;

/// `len` values uniform in [-1, 1), from a splitmix64 stream seeded with `seed`.
fn random_vec<T: Float>(len: usize, seed: u64) -> Vec<T> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            T::from_f64((z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        })
        .collect()
}

/// Everything one convolution and its backward passes read.
struct Problem<T> {
    g: Conv2dGeometry,
    x: Vec<T>,
    w: Vec<T>,
    b: Vec<T>,
    dy: Vec<T>,
}

impl<T: Float> Problem<T> {
    fn new(g: Conv2dGeometry, seed: u64) -> Self {
        Self {
            g,
            x: random_vec(g.input_len(), seed),
            w: random_vec(g.weight_len(), seed ^ 1),
            b: random_vec(g.out_channels, seed ^ 2),
            dy: random_vec(g.output_len(), seed ^ 3),
        }
    }

    /// (y, dx, dw, db) from the fast kernels. Outputs and workspace start as NaN so a kernel
    /// that reads instead of overwriting them shows up.
    fn fast(&self, bias: bool, workspace: &mut Vec<T>) -> [Vec<T>; 4] {
        let g = &self.g;
        let nan = T::from_f64(f64::NAN);
        let (mut y, mut dx) = (vec![nan; g.output_len()], vec![nan; g.input_len()]);
        let (mut dw, mut db) = (vec![nan; g.weight_len()], vec![nan; g.out_channels]);
        conv2d_forward(
            g,
            &self.x,
            &self.w,
            bias.then_some(&self.b[..]),
            &mut y,
            workspace,
        );
        conv2d_backward_input(g, &self.w, &self.dy, &mut dx, workspace);
        conv2d_backward_weight(g, &self.x, &self.dy, &mut dw, workspace);
        conv2d_backward_bias(g, &self.dy, &mut db);
        [y, dx, dw, db]
    }

    /// (y, dx, dw, db) from the direct loops.
    fn naive(&self, bias: bool) -> [Vec<T>; 4] {
        let g = &self.g;
        let (mut y, mut dx) = (vec![T::ZERO; g.output_len()], vec![T::ZERO; g.input_len()]);
        let (mut dw, mut db) = (vec![T::ZERO; g.weight_len()], vec![T::ZERO; g.out_channels]);
        conv2d_naive_forward(g, &self.x, &self.w, bias.then_some(&self.b[..]), &mut y);
        conv2d_naive_backward_input(g, &self.w, &self.dy, &mut dx);
        conv2d_naive_backward_weight(g, &self.x, &self.dy, &mut dw);
        conv2d_naive_backward_bias(g, &self.dy, &mut db);
        [y, dx, dw, db]
    }
}

const NAMES: [&str; 4] = [
    "forward",
    "backward_input",
    "backward_weight",
    "backward_bias",
];

/// Compares the four results of `got` and `want`; the error names the pass and the geometry.
fn check_all<T: Float>(
    g: &Conv2dGeometry,
    got: &[Vec<T>; 4],
    want: &[Vec<T>; 4],
    atol: f64,
    rtol: f64,
) -> Result<(), String> {
    for ((name, got), want) in NAMES.iter().zip(got).zip(want) {
        check_close(&format!("{name} {g:?}"), got, want, atol, rtol)?;
    }
    Ok(())
}

/// Sums of up to a few hundred f64 products of values in [-1, 1): the fast and naive orders
/// differ only by rounding, far below 1e-12 relative (with 1e-12 absolute for cancellations).
const F64_TOL: f64 = 1e-12;

#[test]
fn named_geometries_match_naive() {
    let shapes = [
        // (n, c, h, w, cout, k, s, p)
        (2, 3, 8, 8, 4, 3, 1, 1),    // 3x3/1/1
        (1, 3, 27, 27, 4, 11, 4, 0), // 11x11/4/0, AlexNet conv1 in miniature
        (2, 2, 9, 9, 3, 5, 1, 2),    // 5x5/1/2
        (4, 2, 20, 20, 3, 3, 1, 1),  // 7 GEMM blocks: several weight partials
        (1, 1, 20, 300, 2, 3, 1, 1), // rows wider than a block; 20 weight blocks summed in pairs
        (2, 3, 6, 6, 2, 6, 1, 0),    // kernel covers the whole input: 1x1 output
        (1, 2, 2, 2, 2, 3, 2, 3),    // padding >= kernel: windows made only of padding
        (3, 2, 5, 7, 4, 1, 1, 0),    // pointwise 1x1
        (2, 1, 13, 11, 2, 4, 3, 0),  // stride that skips trailing input
    ];
    let mut workspace = Vec::new();
    for (i, &(n, c, h, w, cout, k, s, p)) in shapes.iter().enumerate() {
        let g = Conv2dGeometry::new(n, c, h, w, cout, k, s, p).unwrap();
        let problem = Problem::<f64>::new(g, i as u64);
        for bias in [true, false] {
            // One workspace for all sizes: left over from a bigger or smaller problem.
            let got = problem.fast(bias, &mut workspace);
            if let Err(msg) = check_all(&g, &got, &problem.naive(bias), F64_TOL, F64_TOL) {
                panic!("{msg}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn fast_matches_naive_on_random_geometries(
        (n, c, cout) in (1usize..=3, 1usize..=4, 1usize..=4),
        (h, w) in (3usize..=12, 3usize..=12),
        (k, s, p) in (1usize..=5, 1usize..=3, 0usize..=2),
        seed in any::<u64>(),
        bias in any::<bool>(),
        stale in 0usize..2000,
    ) {
        let g = Conv2dGeometry::new(n, c, h, w, cout, k, s, p);
        prop_assume!(g.is_ok());
        let g = g.unwrap();
        let problem = Problem::<f64>::new(g, seed);
        // A workspace with stale NaNs of a random length: the kernels must only write before reading.
        let mut workspace = vec![f64::NAN; stale];
        let got = problem.fast(bias, &mut workspace);
        check_all(&g, &got, &problem.naive(bias), F64_TOL, F64_TOL).map_err(TestCaseError::fail)?;
    }
}

#[test]
fn results_are_bitwise_identical_for_any_thread_count() {
    // 16 images of 16x28x28: 12544 columns, 50 GEMM blocks, and 16 weight partials.
    let cases = [(16, 16, 28, 28, 16, 3, 1, 1), (4, 3, 33, 31, 8, 5, 2, 2)];
    for (n, c, h, w, cout, k, s, p) in cases {
        let g = Conv2dGeometry::new(n, c, h, w, cout, k, s, p).unwrap();
        let problem = Problem::<f32>::new(g, 7);
        let bits = |threads| {
            let results = in_pool(threads, || problem.fast(true, &mut Vec::new()));
            results.map(|r| r.iter().map(|v| v.to_bits()).collect::<Vec<u32>>())
        };
        let one = bits(1);
        for threads in [2, 3] {
            let other = bits(threads);
            for ((name, a), b) in NAMES.iter().zip(&one).zip(&other) {
                assert!(
                    a == b,
                    "{name} {g:?}: 1 thread and {threads} threads differ"
                );
            }
        }
    }
}

#[test]
fn f32_agrees_with_f64() {
    let shapes = [
        (2, 3, 12, 12, 4, 3, 1, 1),
        (1, 4, 23, 23, 8, 11, 4, 0),
        (3, 8, 9, 9, 6, 5, 1, 2),
    ];
    for (i, &(n, c, h, w, cout, k, s, p)) in shapes.iter().enumerate() {
        let g = Conv2dGeometry::new(n, c, h, w, cout, k, s, p).unwrap();
        // The f64 problem holds the same (f32-representable) values, so only the arithmetic
        // precision differs.
        let narrow = Problem::<f32>::new(g, 40 + i as u64);
        let wide = Problem::<f64> {
            g,
            x: widen(&narrow.x),
            w: widen(&narrow.w),
            b: widen(&narrow.b),
            dy: widen(&narrow.dy),
        };
        let got = narrow.fast(true, &mut Vec::new()).map(|r| widen(&r));
        let want = wide.fast(true, &mut Vec::new());
        for ((name, got), want) in NAMES.iter().zip(&got).zip(&want) {
            assert_close(&format!("f32 {name} {g:?}"), got, want, 1e-4, 1e-3);
        }
    }
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[test]
#[should_panic(expected = "conv2d_forward: bias has length 3, expected 2")]
fn wrong_bias_length_panics_with_the_buffer_named() {
    let g = Conv2dGeometry::new(1, 1, 4, 4, 2, 3, 1, 1).unwrap();
    let mut y = vec![0.0f32; g.output_len()];
    conv2d_forward(
        &g,
        &[0.0; 16],
        &[0.0; 18],
        Some(&[0.0; 3]),
        &mut y,
        &mut Vec::new(),
    );
}
