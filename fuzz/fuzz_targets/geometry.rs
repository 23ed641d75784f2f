//! Fuzz target: `Conv2dGeometry::new` and `Pool2dGeometry::new` on arbitrary sizes; small valid
//! geometries then run forward (and backward) on zeros, which must not panic and must give zeros.

#![no_main]

use conv::{conv2d_backward_input, conv2d_forward, Conv2dGeometry};
use libfuzzer_sys::fuzz_target;
use pool::{max_pool2d_backward, max_pool2d_forward, Pool2dGeometry};

/// Largest buffer (elements) a valid geometry may need before the kernels are run on it.
const MAX_ELEMENTS: usize = 1 << 16;

/// Field `i`: the raw usize when bit `i` of `mask` is set (overflow and huge values), else the
/// small byte reduced modulo `cap + 1` (the region where geometries are valid and cheap to run).
fn pick(i: usize, cap: usize, small: &[u8; 8], raw: &[usize; 8], mask: u8) -> usize {
    if mask >> i & 1 == 1 {
        raw[i]
    } else {
        usize::from(small[i]) % (cap + 1)
    }
}

fuzz_target!(|input: ([u8; 8], [usize; 8], u8, bool)| {
    let (small, raw, mask, do_pool) = input;
    // Caps for the small values: batch and channels up to 4, sides up to 40, kernel, stride and
    // padding up to 8; zero is always possible, so the zero-size errors are reached too.
    let caps = [4, 4, 40, 40, 8, 8, 8, 8];
    let f = |i: usize| pick(i, caps[i], &small, &raw, mask);
    if do_pool {
        let Ok(g) = Pool2dGeometry::new(f(0), f(1), f(2), f(3), f(4), f(5)) else {
            return;
        };
        assert!(g.out_h >= 1 && g.out_w >= 1 && g.out_h <= g.in_h && g.out_w <= g.in_w);
        if g.input_len() > MAX_ELEMENTS {
            return;
        }
        let input = vec![0f32; g.input_len()];
        let mut output = vec![1f32; g.output_len()];
        let mut argmax = vec![u32::MAX; g.output_len()];
        max_pool2d_forward(&g, &input, &mut output, &mut argmax);
        assert!(output.iter().all(|&v| v == 0.0));
        assert!(argmax.iter().all(|&a| (a as usize) < g.in_h * g.in_w));
        let mut grad_input = vec![1f32; g.input_len()];
        max_pool2d_backward(&g, &output, &argmax, &mut grad_input);
        assert!(grad_input.iter().all(|&v| v == 0.0));
    } else {
        let Ok(g) = Conv2dGeometry::new(f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7)) else {
            return;
        };
        assert!(g.out_h >= 1 && g.out_w >= 1);
        let single_tap_overflows = g
            .padding
            .checked_mul(g.kernel)
            .and_then(|v| v.checked_add(g.padding))
            .is_none();
        if cfg!(feature = "skip-known-conv-overflow") && single_tap_overflows {
            return;
        }
        let sizes = [
            g.input_len(),
            g.output_len(),
            g.weight_len(),
            g.col_rows() * g.col_cols(),
        ];
        if sizes.iter().any(|&n| n > MAX_ELEMENTS) {
            return;
        }
        let input = vec![0f32; g.input_len()];
        let weight = vec![0f32; g.weight_len()];
        let bias = vec![0f32; g.out_channels];
        let mut output = vec![1f32; g.output_len()];
        let mut workspace = Vec::new();
        conv2d_forward(
            &g,
            &input,
            &weight,
            Some(&bias),
            &mut output,
            &mut workspace,
        );
        assert!(output.iter().all(|&v| v == 0.0));
        let mut grad_input = vec![1f32; g.input_len()];
        conv2d_backward_input(&g, &weight, &output, &mut grad_input, &mut workspace);
        assert!(grad_input.iter().all(|&v| v == 0.0));
    }
});
