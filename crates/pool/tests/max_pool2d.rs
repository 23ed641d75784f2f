//! Max-pool kernels against a direct reference, plus hand-derived cases: ties, overlap, floor, NaN.

use pool::{max_pool2d_backward, max_pool2d_forward, max_pool2d_forward_inference, Pool2dGeometry};
use tensor::Float;

/// Direct reference: gathers each window as (in-plane index, value) in row-major order, takes
/// the maximum with `f64::max`, then the argmax as the first position holding that maximum
/// (the documented tie rule); a window holding a NaN yields its first NaN.
fn reference_forward<T: Float>(g: &Pool2dGeometry, x: &[T]) -> (Vec<f64>, Vec<u32>) {
    let (mut out, mut arg) = (Vec::new(), Vec::new());
    for plane in x.chunks(g.in_h * g.in_w) {
        for oh in 0..g.out_h {
            for ow in 0..g.out_w {
                let mut window = Vec::new();
                for r in oh * g.stride..oh * g.stride + g.kernel {
                    for c in ow * g.stride..ow * g.stride + g.kernel {
                        window.push((r * g.in_w + c, plane[r * g.in_w + c].to_f64()));
                    }
                }
                let (i, v) = match window.iter().find(|(_, v)| v.is_nan()) {
                    Some(&nan) => nan,
                    None => {
                        let max = window.iter().fold(f64::NEG_INFINITY, |m, &(_, v)| m.max(v));
                        *window.iter().find(|&&(_, v)| v == max).unwrap()
                    }
                };
                out.push(v);
                arg.push(i as u32);
            }
        }
    }
    (out, arg)
}

/// Values from a few levels only, so many windows hold ties.
fn quantized<T: Float>(n: usize, seed: u64) -> Vec<T> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            T::from_f64(((s >> 33) % 5) as f64 - 2.0)
        })
        .collect()
}

fn forward<T: Float>(g: &Pool2dGeometry, x: &[T]) -> (Vec<T>, Vec<u32>) {
    let mut out = vec![T::from_f64(f64::NAN); g.output_len()];
    let mut arg = vec![u32::MAX; g.output_len()];
    max_pool2d_forward(g, x, &mut out, &mut arg);
    (out, arg)
}

fn geometries() -> Vec<Pool2dGeometry> {
    let sizes = [
        (2, 3, 6, 8, 2, 2),  // the common 2x2 stride 2
        (2, 2, 7, 9, 3, 2),  // AlexNet's overlapping 3x3 stride 2
        (1, 2, 5, 5, 3, 1),  // heavy overlap
        (1, 1, 5, 7, 2, 2),  // odd sizes: last row and column dropped
        (3, 1, 8, 10, 2, 3), // stride > kernel: gaps between windows
        (1, 3, 4, 4, 1, 1),  // identity
        (2, 1, 4, 6, 4, 1),  // kernel == in_h
    ];
    sizes
        .iter()
        .map(|&(n, c, h, w, k, s)| Pool2dGeometry::new(n, c, h, w, k, s).unwrap())
        .collect()
}

fn check_against_reference<T: Float>() {
    for (i, g) in geometries().iter().enumerate() {
        let x: Vec<T> = quantized(g.input_len(), i as u64 + 1);
        let (out, arg) = forward(g, &x);
        let (want_out, want_arg) = reference_forward(g, &x);
        let out: Vec<f64> = out.iter().map(|v| v.to_f64()).collect();
        assert_eq!(out, want_out, "values, {g:?}");
        assert_eq!(arg, want_arg, "argmax, {g:?}");
        let mut inference = vec![T::ZERO; g.output_len()];
        max_pool2d_forward_inference(g, &x, &mut inference);
        let inference: Vec<f64> = inference.iter().map(|v| v.to_f64()).collect();
        assert_eq!(inference, out, "inference, {g:?}");
    }
}

#[test]
fn forward_matches_reference_f64() {
    check_against_reference::<f64>();
}

#[test]
fn forward_matches_reference_f32() {
    check_against_reference::<f32>();
}

#[test]
fn ties_pick_the_first_maximum_in_row_major_order() {
    let g = Pool2dGeometry::new(1, 1, 4, 4, 2, 2).unwrap();
    #[rustfmt::skip]
    let x = [
        1.0, 1.0,   0.0, 5.0,
        1.0, 1.0,   5.0, 0.0,

        0.0, 0.0,  -0.0, 0.0,
        0.0, 0.0,   0.0, 0.0f64,
    ];
    let (out, arg) = forward(&g, &x);
    // Top-left window: all equal, so its first element (0, 0) -> 0.
    // Top-right: 5.0 at (0, 3) and (1, 2); (0, 3) comes first -> 3.
    // Bottom-left: all zero -> (2, 0) -> 8. Bottom-right: -0.0 == 0.0, the first (-0.0, at
    // (2, 2) -> 10) wins, and its sign shows which element was taken.
    assert_eq!(arg, [0, 3, 8, 10]);
    assert_eq!(out[..3], [1.0, 5.0, 0.0]);
    assert!(out[3] == 0.0 && out[3].is_sign_negative());
}

#[test]
fn overlapping_windows_kernel_3_stride_2() {
    // x[r, c] = 5r + c increases along rows and columns, so each window's maximum is its
    // bottom-right corner. Windows start at rows/cols {0, 2}; corners at {2, 4}:
    // (2,2) = 12, (2,4) = 14, (4,2) = 22, (4,4) = 24. Row and column 2 are shared.
    let g = Pool2dGeometry::new(1, 1, 5, 5, 3, 2).unwrap();
    let x: Vec<f64> = (0..25).map(|i| i as f64).collect();
    let (out, arg) = forward(&g, &x);
    assert_eq!(out, [12.0, 14.0, 22.0, 24.0]);
    assert_eq!(arg, [12, 14, 22, 24]);
}

#[test]
fn odd_sizes_floor_and_ignore_the_leftover_edge() {
    // 5x7 with 2x2 stride 2: out 2x3 covering rows 0..4 and columns 0..6. Row 4 and column 6
    // hold 100.0, larger than anything else, and must never appear.
    let g = Pool2dGeometry::new(1, 2, 5, 7, 2, 2).unwrap();
    let x: Vec<f64> = (0..g.input_len())
        .map(|i| {
            let (r, c) = (i % 35 / 7, i % 7);
            if r == 4 || c == 6 {
                100.0
            } else {
                (i % 35) as f64
            }
        })
        .collect();
    let (out, arg) = forward(&g, &x);
    // Window (i, j) covers rows 2i..2i+2, cols 2j..2j+2; its maximum is the bottom-right,
    // index 7 * (2i + 1) + 2j + 1 = 8, 10, 12, 22, 24, 26 (the same in both channels).
    let want = [8.0, 10.0, 12.0, 22.0, 24.0, 26.0];
    assert_eq!(out[..6], want);
    assert_eq!(out[6..], want);
    assert_eq!(arg[..6], [8, 10, 12, 22, 24, 26]);
}

#[test]
fn negative_infinity_is_an_ordinary_value() {
    let g = Pool2dGeometry::new(1, 1, 2, 4, 2, 2).unwrap();
    let ninf = f64::NEG_INFINITY;
    let (out, arg) = forward(&g, &[ninf, ninf, ninf, -3.0, ninf, ninf, ninf, ninf]);
    assert_eq!(out, [ninf, -3.0]);
    assert_eq!(arg, [0, 3]);
}

#[test]
fn backward_scatters_and_accumulates_over_overlaps() {
    // 4x4 with 3x3 stride 1: four windows starting at (0,0), (0,1), (1,0), (1,1); each
    // covers (2, 2) = index 10, which holds the unique maximum. All four gradients land
    // there: 1 + 2 + 3 + 4 = 10, and every other input gets 0.
    let g = Pool2dGeometry::new(1, 1, 4, 4, 3, 1).unwrap();
    let mut x = vec![0.0f64; 16];
    x[10] = 7.0;
    let (_, arg) = forward(&g, &x);
    assert_eq!(arg, [10, 10, 10, 10]);
    let mut dx = vec![f64::NAN; 16]; // backward overwrites, whatever was there
    max_pool2d_backward(&g, &[1.0, 2.0, 3.0, 4.0], &arg, &mut dx);
    let mut want = vec![0.0; 16];
    want[10] = 10.0;
    assert_eq!(dx, want);
}

#[test]
fn backward_routes_each_gradient_to_its_plane() {
    // Two planes with 2x2 stride 2 on 2x4: each dy lands at its window's argmax, offset by
    // the plane start (8 elements per plane).
    let g = Pool2dGeometry::new(1, 2, 2, 4, 2, 2).unwrap();
    let x = [
        1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, /* plane 1 */ 0.0, 0.0, 0.0, 0.0, 0.0, 2.0,
        0.0, 4.0,
    ];
    let (_, arg) = forward(&g, &x);
    assert_eq!(arg, [0, 6, 5, 7]);
    let mut dx = vec![9.0; 16];
    max_pool2d_backward(&g, &[0.5, -1.0, 2.0, 3.0], &arg, &mut dx);
    let mut want = vec![0.0; 16];
    (want[0], want[6], want[8 + 5], want[8 + 7]) = (0.5, -1.0, 2.0, 3.0);
    assert_eq!(dx, want);
}

#[test]
fn nan_propagates_to_the_output() {
    let g = Pool2dGeometry::new(1, 1, 2, 8, 2, 2).unwrap();
    // Two NaNs with different payloads tell which one was kept.
    let (nan_a, nan_b) = (
        f64::from_bits(0x7ff8_0000_0000_0001),
        f64::from_bits(0x7ff8_0000_0000_0002),
    );
    #[rustfmt::skip]
    let x = [
        nan_a, 1.0,   9.0, 1.0,   1.0, nan_a,   1.0, 2.0,
        1.0,   9.0,   nan_a, 1.0, nan_b, 1.0,   3.0, 1.0,
    ];
    // Window 0: NaN first. Window 1: NaN after a larger value (9.0) is not dropped.
    // Window 2: two NaNs, the first in row-major order (index 5, payload a) wins.
    // Window 3: no NaN, ordinary maximum 3.0 at (1, 6) = 14.
    let (out, arg) = forward(&g, &x);
    assert_eq!(arg, [0, 10, 5, 14]);
    assert!(
        out[..3].iter().all(|v| v.to_bits() == nan_a.to_bits()),
        "{out:?}"
    );
    assert_eq!(out[3], 3.0);
    let mut inference = vec![0.0; 4];
    max_pool2d_forward_inference(&g, &x, &mut inference);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&inference), bits(&out));

    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let (out32, arg32) = forward(&g, &x32);
    assert_eq!(arg32, arg);
    assert!(out32[..3].iter().all(|v| v.is_nan()) && out32[3] == 3.0);
}

#[test]
#[should_panic(expected = "max_pool2d_forward: output has 3 elements, geometry expects 4")]
fn forward_length_mismatch_names_the_buffer() {
    let g = Pool2dGeometry::new(1, 1, 4, 4, 2, 2).unwrap();
    max_pool2d_forward(&g, &[0.0f32; 16], &mut [0.0; 3], &mut [0; 4]);
}

#[test]
#[should_panic(expected = "max_pool2d_backward: grad_input has 15 elements, geometry expects 16")]
fn backward_length_mismatch_names_the_buffer() {
    let g = Pool2dGeometry::new(1, 1, 4, 4, 2, 2).unwrap();
    max_pool2d_backward(&g, &[0.0f32; 4], &[0; 4], &mut [0.0; 15]);
}

#[test]
#[should_panic(expected = "argmax 16 lies outside its plane of 16 elements")]
fn backward_rejects_an_argmax_outside_the_plane() {
    let g = Pool2dGeometry::new(1, 1, 4, 4, 2, 2).unwrap();
    max_pool2d_backward(&g, &[0.0f32; 4], &[0, 1, 2, 16], &mut [0.0; 16]);
}
