//! The fused ReLU + max-pool against the two ops run in sequence, bit for bit: values, argmax
//! routing and gradients, with ties, zeros of both signs, NaN and infinities, at 1 and 2 threads.

use pool::{
    max_pool2d_backward, max_pool2d_forward, relu_max_pool2d_forward,
    relu_max_pool2d_forward_inference, Pool2dGeometry, NO_WINNER,
};
use proptest::prelude::*;
use tensor::testing::in_pool;
use tensor::Float;

/// Values from a few levels, with `-0.0`, `+0.0` and, when `specials`, NaN and infinities, so
/// windows hold ties, all-non-positive windows and the values where ReLU's rule matters.
fn values<T: Float>(n: usize, seed: u64, specials: bool) -> Vec<T> {
    let mut s = seed;
    let levels = [-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 1.0, 2.0];
    let extra = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pick = (s >> 33) as usize;
            if specials && pick.is_multiple_of(13) {
                T::from_f64(extra[(pick / 13) % extra.len()])
            } else {
                T::from_f64(levels[pick % levels.len()])
            }
        })
        .collect()
}

/// `relu` then `max_pool2d` then their backwards, with the crate's own kernels: the reference.
fn in_sequence<T: Float>(g: &Pool2dGeometry, x: &[T], dy: &[T]) -> (Vec<T>, Vec<T>) {
    let r: Vec<T> = x
        .iter()
        .map(|&v| if v > T::ZERO { v } else { T::ZERO })
        .collect();
    let mut y = vec![T::ZERO; g.output_len()];
    let mut arg = vec![0u32; g.output_len()];
    max_pool2d_forward(g, &r, &mut y, &mut arg);
    let dr = scatter_reference(g, dy, &arg);
    let dx = x
        .iter()
        .zip(&dr)
        .map(|(&v, &d)| if v > T::ZERO { d } else { T::ZERO })
        .collect();
    (y, dx)
}

/// The pool's backward written out: zero every plane, then add each `dy` at its winner (skipping
/// `NO_WINNER`), independent of the kernels' own 2x2 path.
fn scatter_reference<T: Float>(g: &Pool2dGeometry, dy: &[T], arg: &[u32]) -> Vec<T> {
    let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
    let mut dx = vec![T::ZERO; g.input_len()];
    for (i, (&d, &a)) in dy.iter().zip(arg).enumerate() {
        if a != NO_WINNER {
            dx[i / out_plane * in_plane + a as usize] += d;
        }
    }
    dx
}

/// The fused forward (both variants) and the shared backward.
fn fused<T: Float>(g: &Pool2dGeometry, x: &[T], dy: &[T]) -> (Vec<T>, Vec<T>, Vec<u32>) {
    let mut y = vec![T::from_f64(f64::NAN); g.output_len()];
    let mut arg = vec![0u32; g.output_len()];
    relu_max_pool2d_forward(g, x, &mut y, &mut arg);
    let mut y_inference = vec![T::from_f64(f64::NAN); g.output_len()];
    relu_max_pool2d_forward_inference(g, x, &mut y_inference);
    assert_eq!(bits(&y), bits(&y_inference), "inference forward differs");
    let mut dx = vec![T::from_f64(f64::NAN); g.input_len()];
    max_pool2d_backward(g, dy, &arg, &mut dx);
    (y, dx, arg)
}

fn bits<T: Float>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

fn check<T: Float>(g: &Pool2dGeometry, seed: u64, specials: bool) {
    let x = values::<T>(g.input_len(), seed, specials);
    let dy = values::<T>(g.output_len(), seed ^ 0x5eed, false);
    let (y_ref, dx_ref) = in_sequence(g, &x, &dy);
    let (y, dx, arg) = fused(g, &x, &dy);
    assert_eq!(bits(&y), bits(&y_ref), "values differ for {g:?}");
    assert_eq!(bits(&dx), bits(&dx_ref), "gradients differ for {g:?}");
    // A window without a positive element has no winner, and only such windows.
    for (&v, &a) in y.iter().zip(&arg) {
        assert_eq!(
            v > T::ZERO,
            a != NO_WINNER,
            "value {} argmax {a}",
            v.to_f64()
        );
    }
}

/// Shapes from the common 2x2 stride 2 (even and odd sides) to overlapping and 1x1 windows;
/// sides up to 40 give 2x2 rows of more than one chunk of 16 windows.
fn geometry() -> impl Strategy<Value = Pool2dGeometry> {
    (
        1..=3usize,
        1..=4usize,
        2..=13usize,
        2..=13usize,
        1..=4usize,
        1..=3usize,
    )
        .prop_filter_map("kernel must fit", |(n, c, h, w, k, s)| {
            Pool2dGeometry::new(n, c, h, w, k, s).ok()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn fused_equals_relu_then_pool_f64(g in geometry(), seed in any::<u64>(), specials in any::<bool>()) {
        check::<f64>(&g, seed, specials);
    }

    #[test]
    fn fused_equals_relu_then_pool_f32(g in geometry(), seed in any::<u64>(), specials in any::<bool>()) {
        check::<f32>(&g, seed, specials);
    }

    #[test]
    fn fused_2x2_equals_relu_then_pool(n in 1..=3usize, c in 1..=3usize, h in 2..=16usize, w in 2..=70usize, seed in any::<u64>()) {
        let g = Pool2dGeometry::new(n, c, h, w, 2, 2).unwrap();
        check::<f32>(&g, seed, true);
    }
}

#[test]
fn a_window_of_non_positive_values_gives_plus_zero_and_no_winner() {
    let g = Pool2dGeometry::new(1, 1, 2, 4, 2, 2).unwrap();
    let x = [-1.0f32, -0.0, 3.0, f32::NAN, 0.0, -5.0, 2.0, 3.0];
    let mut y = [f32::NAN; 2];
    let mut arg = [0u32; 2];
    relu_max_pool2d_forward(&g, &x, &mut y, &mut arg);
    assert_eq!(y[0].to_bits(), 0.0f32.to_bits());
    assert_eq!(arg[0], NO_WINNER);
    // NaN is ReLU'd to zero; the first 3.0 wins the tie with the last.
    assert_eq!((y[1], arg[1]), (3.0, 2));
    let mut dx = [f32::NAN; 8];
    max_pool2d_backward(&g, &[10.0, 20.0], &arg, &mut dx);
    assert_eq!(dx, [0.0, 0.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn an_argmax_outside_its_window_is_routed_as_the_general_scatter_routes_it() {
    // Not what a forward writes, but the backward's contract is the scatter: a 2x2 plane whose
    // second window names an element of the first window.
    let g = Pool2dGeometry::new(1, 1, 2, 4, 2, 2).unwrap();
    let (dy, arg) = ([1.0f32, 2.0], [4u32, 1]);
    let mut dx = [f32::NAN; 8];
    max_pool2d_backward(&g, &dy, &arg, &mut dx);
    assert_eq!(dx.to_vec(), scatter_reference(&g, &dy, &arg));
    assert_eq!(dx, [0.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
}

#[test]
fn the_backward_of_a_negative_zero_gradient_is_plus_zero_everywhere() {
    let g = Pool2dGeometry::new(1, 1, 3, 5, 2, 2).unwrap();
    let (dy, arg) = ([-0.0f32, -0.0], [0u32, 8]);
    let mut dx = [f32::NAN; 15];
    max_pool2d_backward(&g, &dy, &arg, &mut dx);
    // every element written (odd edges included), and +0.0 everywhere, as 0 + (-0) is +0
    assert!(dx.iter().all(|v| v.to_bits() == 0.0f32.to_bits()), "{dx:?}");
}

#[test]
fn results_are_bitwise_identical_with_1_and_2_threads() {
    // Planes enough for several tasks, at the study's first pool and at AlexNet's overlap.
    for g in [
        Pool2dGeometry::new(16, 16, 28, 28, 2, 2).unwrap(),
        Pool2dGeometry::new(8, 8, 13, 13, 3, 2).unwrap(),
    ] {
        let x = values::<f32>(g.input_len(), 7, true);
        let dy = values::<f32>(g.output_len(), 8, false);
        let one = in_pool(1, || fused(&g, &x, &dy));
        let two = in_pool(2, || fused(&g, &x, &dy));
        assert_eq!(bits(&one.0), bits(&two.0));
        assert_eq!(bits(&one.1), bits(&two.1));
        assert_eq!(one.2, two.2);
    }
}

#[test]
#[should_panic(expected = "relu_max_pool2d_forward: argmax has 3 elements, geometry expects 4")]
fn forward_length_mismatch_names_the_buffer() {
    let g = Pool2dGeometry::new(1, 1, 4, 4, 2, 2).unwrap();
    relu_max_pool2d_forward(&g, &[0.0f32; 16], &mut [0.0; 4], &mut [0; 3]);
}
