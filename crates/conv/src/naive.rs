//! Direct-loop convolution, forward and backward: the slow, obviously correct oracle for tests.
//!
//! Every function loops over the definition `y[n, o, oy, ox] = b[o] + sum_{c, ky, kx}
//! w[o, c, ky, kx] * x[n, c, oy*s + ky - p, ox*s + kx - p]` (terms reaching into the zero
//! padding dropped) with no im2col, GEMM or threads. Public so other crates' tests can use it.
//! The backward passes are checked against finite differences of the forward below.

use tensor::Float;

use crate::geometry::assert_len;
use crate::Conv2dGeometry;

/// Calls `visit(x_index, w_index, y_index)` for every (input, weight, output) triple the
/// convolution multiplies, in a fixed order. All four passes are this loop with a different body,
/// so they cannot disagree about which terms exist.
fn for_each_term(g: &Conv2dGeometry, mut visit: impl FnMut(usize, usize, usize)) {
    let (c_in, k) = (g.in_channels, g.kernel);
    for n in 0..g.batch {
        for o in 0..g.out_channels {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    let y_index = ((n * g.out_channels + o) * g.out_h + oy) * g.out_w + ox;
                    for c in 0..c_in {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                                let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= g.in_h as isize
                                    || ix >= g.in_w as isize
                                {
                                    continue; // zero padding contributes nothing
                                }
                                let x_index =
                                    ((n * c_in + c) * g.in_h + iy as usize) * g.in_w + ix as usize;
                                let w_index = ((o * c_in + c) * k + ky) * k + kx;
                                visit(x_index, w_index, y_index);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `output = conv(input, weight) + bias`, NCHW in and out. Overwrites `output`.
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_naive_forward<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
) {
    const OP: &str = "conv2d_naive_forward";
    g.assert_consistent(OP);
    assert_len(OP, "input", g.input_len(), input.len());
    assert_len(OP, "weight", g.weight_len(), weight.len());
    assert_len(OP, "output", g.output_len(), output.len());
    let plane = g.out_h * g.out_w;
    match bias {
        Some(b) => {
            assert_len(OP, "bias", g.out_channels, b.len());
            for (i, y) in output.iter_mut().enumerate() {
                *y = b[(i / plane) % g.out_channels];
            }
        }
        None => output.fill(T::ZERO),
    }
    for_each_term(g, |xi, wi, yi| output[yi] += weight[wi] * input[xi]);
}

/// `grad_input[x] = sum over terms of weight * grad_output`: dL/dx for `dL/dy = grad_output`.
/// Overwrites `grad_input`.
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_naive_backward_input<T: Float>(
    g: &Conv2dGeometry,
    weight: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
) {
    const OP: &str = "conv2d_naive_backward_input";
    g.assert_consistent(OP);
    assert_len(OP, "weight", g.weight_len(), weight.len());
    assert_len(OP, "grad_output", g.output_len(), grad_output.len());
    assert_len(OP, "grad_input", g.input_len(), grad_input.len());
    grad_input.fill(T::ZERO);
    for_each_term(g, |xi, wi, yi| {
        grad_input[xi] += weight[wi] * grad_output[yi]
    });
}

/// `grad_weight[w] = sum over terms of input * grad_output`: dL/dw. Overwrites `grad_weight`.
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_naive_backward_weight<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
) {
    const OP: &str = "conv2d_naive_backward_weight";
    g.assert_consistent(OP);
    assert_len(OP, "input", g.input_len(), input.len());
    assert_len(OP, "grad_output", g.output_len(), grad_output.len());
    assert_len(OP, "grad_weight", g.weight_len(), grad_weight.len());
    grad_weight.fill(T::ZERO);
    for_each_term(g, |xi, wi, yi| {
        grad_weight[wi] += input[xi] * grad_output[yi]
    });
}

/// `grad_bias[o] = sum over n, oy, ox of grad_output[n, o, oy, ox]`: dL/db. Overwrites `grad_bias`.
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_naive_backward_bias<T: Float>(
    g: &Conv2dGeometry,
    grad_output: &[T],
    grad_bias: &mut [T],
) {
    const OP: &str = "conv2d_naive_backward_bias";
    g.assert_consistent(OP);
    assert_len(OP, "grad_output", g.output_len(), grad_output.len());
    assert_len(OP, "grad_bias", g.out_channels, grad_bias.len());
    let plane = g.out_h * g.out_w;
    grad_bias.fill(T::ZERO);
    for (i, &gy) in grad_output.iter().enumerate() {
        grad_bias[(i / plane) % g.out_channels] += gy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random_vec;

    /// The scalar `L = <conv(x, w) + b, r>` whose gradient the backward passes compute when
    /// `grad_output = r`.
    fn loss(g: &Conv2dGeometry, x: &[f64], w: &[f64], b: &[f64], r: &[f64]) -> f64 {
        let mut y = vec![0.0; g.output_len()];
        conv2d_naive_forward(g, x, w, Some(b), &mut y);
        y.iter().zip(r).map(|(y, r)| y * r).sum()
    }

    /// Central differences of `loss` with respect to every entry of `param`.
    fn finite_differences(param: &[f64], mut loss_at: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
        // L is linear in each of x, w and b, so the central difference is exact up to rounding
        // for any step; a step of 1e-3 keeps the rounding error near 1e-16 * |L| / 1e-3.
        let h = 1e-3;
        let mut p = param.to_vec();
        (0..p.len())
            .map(|i| {
                let orig = p[i];
                p[i] = orig + h;
                let up = loss_at(&p);
                p[i] = orig - h;
                let down = loss_at(&p);
                p[i] = orig;
                (up - down) / (2.0 * h)
            })
            .collect()
    }

    #[test]
    fn naive_backward_matches_finite_differences() {
        let shapes = [
            // (n, c, h, w, cout, k, s, p)
            (1, 1, 4, 4, 1, 3, 1, 0),
            (2, 2, 5, 4, 3, 3, 1, 1),
            (1, 3, 7, 6, 2, 5, 2, 2),
            (2, 1, 6, 6, 2, 2, 3, 3), // padding > kernel: windows made only of padding
            (1, 2, 3, 3, 2, 1, 1, 0),
        ];
        for (i, &(n, c, h, w, cout, k, s, p)) in shapes.iter().enumerate() {
            let g = Conv2dGeometry::new(n, c, h, w, cout, k, s, p).unwrap();
            let seed = 10 * i as u64;
            let (x, wt) = (
                random_vec(g.input_len(), seed),
                random_vec(g.weight_len(), seed + 1),
            );
            let (b, r) = (
                random_vec(cout, seed + 2),
                random_vec(g.output_len(), seed + 3),
            );

            let mut gx = vec![f64::NAN; x.len()];
            conv2d_naive_backward_input(&g, &wt, &r, &mut gx);
            let fd = finite_differences(&x, |x| loss(&g, x, &wt, &b, &r));
            tensor::testing::assert_close(&format!("dL/dx {g:?}"), &gx, &fd, 1e-9, 1e-9);

            let mut gw = vec![f64::NAN; wt.len()];
            conv2d_naive_backward_weight(&g, &x, &r, &mut gw);
            let fd = finite_differences(&wt, |wt| loss(&g, &x, wt, &b, &r));
            tensor::testing::assert_close(&format!("dL/dw {g:?}"), &gw, &fd, 1e-9, 1e-9);

            let mut gb = vec![f64::NAN; b.len()];
            conv2d_naive_backward_bias(&g, &r, &mut gb);
            let fd = finite_differences(&b, |b| loss(&g, &x, &wt, b, &r));
            tensor::testing::assert_close(&format!("dL/db {g:?}"), &gb, &fd, 1e-9, 1e-9);
        }
    }

    #[test]
    fn naive_forward_matches_a_hand_computed_case() {
        // One 3x3 image, 2x2 kernel of ones, stride 1, padding 1: each output is the sum of the
        // input values its window covers, so the top-left output sees only x[0, 0] and the centre
        // outputs see four values. Bias 0.5 is added everywhere.
        let g = Conv2dGeometry::new(1, 1, 3, 3, 1, 2, 1, 1).unwrap();
        let x: Vec<f64> = (1..=9).map(f64::from).collect(); // [[1,2,3],[4,5,6],[7,8,9]]
        let mut y = vec![0.0; g.output_len()];
        conv2d_naive_forward(&g, &x, &[1.0; 4], Some(&[0.5]), &mut y);
        #[rustfmt::skip]
        let want = [
            1.0,  3.0,  5.0,  3.0,
            5.0, 12.0, 16.0,  9.0,
           11.0, 24.0, 28.0, 15.0,
            7.0, 15.0, 17.0,  9.0,
        ].map(|v| v + 0.5);
        assert_eq!(y, want);
    }
}
