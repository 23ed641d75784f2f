//! Inputs found by the fuzz targets in `fuzz/` (see fuzz/README.md), kept as regression tests.

use conv::{conv2d_backward_input, conv2d_forward, Conv2dGeometry};

/// fuzz/geometry, 2026-11-28: a valid geometry with a huge padding and stride (one 1x1 output
/// whose window sees only padding) made `conv2d_forward` panic with "attempt to multiply with
/// overflow" in conv/src/conv2d.rs `single_tap`: `bool::then_some(g.padding * g.kernel + ...)`
/// evaluates its argument for every geometry, not only the 1x1 ones it is meant for (debug
/// builds panic; release builds wrap and discard the value). Fix: `then(|| ...)`.
#[test]
fn conv_forward_with_huge_padding_does_not_overflow() {
    let g = Conv2dGeometry::new(
        4,
        3,
        14,
        37,
        6,
        6,
        13_889_313_184_910_721_216,
        5_044_031_582_654_955_520,
    )
    .expect("the geometry is valid: the kernel fits in the padded input");
    assert_eq!((g.out_h, g.out_w), (1, 1));
    let input = vec![1f32; g.input_len()];
    let weight = vec![1f32; g.weight_len()];
    let bias = vec![0.5f32; g.out_channels];
    let mut output = vec![f32::NAN; g.output_len()];
    let mut workspace = Vec::new();
    conv2d_forward(
        &g,
        &input,
        &weight,
        Some(&bias),
        &mut output,
        &mut workspace,
    );
    // The only window lies wholly in the zero padding, so every output is the bias.
    assert!(output.iter().all(|&v| v == 0.5), "{output:?}");
    let mut grad_input = vec![f32::NAN; g.input_len()];
    conv2d_backward_input(&g, &weight, &output, &mut grad_input, &mut workspace);
    assert!(grad_input.iter().all(|&v| v == 0.0));
}
