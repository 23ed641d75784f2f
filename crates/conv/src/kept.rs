//! What a forward pass leaves for the backward passes of the same training step.
//!
//! Two paths compute something in the forward that a backward pass would compute again from
//! the same operands:
//!
//! - [`crate::unrolled`] expands the weight into the dense matrix `U`; the input gradient
//!   multiplies by the same `U`.
//! - [`crate::direct3x3`] copies the input into a zero-bordered buffer; the weight gradient
//!   reads the same bordered input.
//!
//! [`conv2d_forward_keeping`] writes that buffer into caller-owned memory (a tape keeps it until
//! the backward), and [`conv2d_backward_input_kept`] / [`conv2d_backward_weight_kept`] read it
//! instead of rebuilding it. The values are the same copies and products as without it, so
//! every result is bit for bit that of [`crate::conv2d_forward`],
//! [`crate::conv2d_backward_input`] and [`crate::conv2d_backward_weight`]. Other paths keep
//! nothing ([`conv2d_kept_len`] is 0).

use tensor::Float;

use tensor::cpu::Tier;

use crate::conv2d::assert_forward_lens;
use crate::geometry::assert_len;
use crate::path::choose;
use crate::Conv2dGeometry;

/// The backward pass that reads what the forward keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptFor {
    /// [`conv2d_backward_input_kept`] (the unrolled weight).
    InputGradient,
    /// [`conv2d_backward_weight_kept`] (the bordered input).
    WeightGradient,
}

/// Which backward pass would read what the forward of `g` keeps; `None` when it keeps nothing.
/// A caller that will not run that pass (an input gradient with frozen weights) need not keep.
pub fn conv2d_kept_for(g: &Conv2dGeometry) -> Option<KeptFor> {
    kept_for_on(tensor::cpu::tier(), g)
}

/// [`conv2d_kept_for`] on `tier`.
pub(crate) fn kept_for_on(tier: Tier, g: &Conv2dGeometry) -> Option<KeptFor> {
    choose::<f32>(g, tier).keeps()
}

/// Elements the forward of `g` keeps for its backward passes; 0 when its path keeps nothing.
pub fn conv2d_kept_len(g: &Conv2dGeometry) -> usize {
    kept_len_on(tensor::cpu::tier(), g)
}

/// [`conv2d_kept_len`] on `tier`.
pub(crate) fn kept_len_on(tier: Tier, g: &Conv2dGeometry) -> usize {
    choose::<f32>(g, tier).kept_len(g)
}

/// [`crate::conv2d_forward`], also writing into `kept` ([`conv2d_kept_len`] elements) what the
/// backward passes of the same input and weight can reuse.
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_forward_keeping<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    workspace: &mut Vec<T>,
    kept: &mut [T],
) {
    forward_keeping_on(
        tensor::cpu::tier(),
        g,
        input,
        weight,
        bias,
        output,
        workspace,
        kept,
    )
}

/// [`conv2d_forward_keeping`] on `tier`.
pub(crate) fn forward_keeping_on<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    workspace: &mut Vec<T>,
    kept: &mut [T],
) {
    const OP: &str = "conv2d_forward_keeping";
    g.assert_consistent(OP);
    assert_len(OP, "kept", kept_len_on(tier, g), kept.len());
    assert_forward_lens(OP, g, input, weight, bias, output);
    choose(g, tier).forward_keeping(tier, g, input, weight, bias, output, workspace, kept);
}

/// [`crate::conv2d_backward_input`], reading `kept` as [`conv2d_forward_keeping`] wrote it for the
/// same geometry and weight.
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_backward_input_kept<T: Float>(
    g: &Conv2dGeometry,
    weight: &[T],
    kept: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    workspace: &mut Vec<T>,
) {
    backward_input_kept_on(
        tensor::cpu::tier(),
        g,
        weight,
        kept,
        grad_output,
        grad_input,
        workspace,
    )
}

/// [`conv2d_backward_input_kept`] on `tier`.
pub(crate) fn backward_input_kept_on<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    weight: &[T],
    kept: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    workspace: &mut Vec<T>,
) {
    const OP: &str = "conv2d_backward_input_kept";
    g.assert_consistent(OP);
    assert_len(OP, "kept", kept_len_on(tier, g), kept.len());
    assert_len(OP, "weight", g.weight_len(), weight.len());
    assert_len(OP, "grad_output", g.output_len(), grad_output.len());
    assert_len(OP, "grad_input", g.input_len(), grad_input.len());
    choose(g, tier).backward_input_kept(tier, g, weight, kept, grad_output, grad_input, workspace);
}

/// [`crate::conv2d_backward_weight`], reading `kept` as [`conv2d_forward_keeping`] wrote it for the
/// same geometry and input.
///
/// Panics if a buffer length does not match the geometry.
pub fn conv2d_backward_weight_kept<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    kept: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    workspace: &mut Vec<T>,
) {
    backward_weight_kept_on(
        tensor::cpu::tier(),
        g,
        input,
        kept,
        grad_output,
        grad_weight,
        workspace,
    )
}

/// [`conv2d_backward_weight_kept`] on `tier`.
pub(crate) fn backward_weight_kept_on<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    input: &[T],
    kept: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    workspace: &mut Vec<T>,
) {
    const OP: &str = "conv2d_backward_weight_kept";
    g.assert_consistent(OP);
    assert_len(OP, "kept", kept_len_on(tier, g), kept.len());
    assert_len(OP, "input", g.input_len(), input.len());
    assert_len(OP, "grad_output", g.output_len(), grad_output.len());
    assert_len(OP, "grad_weight", g.weight_len(), grad_weight.len());
    choose(g, tier).backward_weight_kept(tier, g, input, kept, grad_output, grad_weight, workspace);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::{backward_input_on, backward_weight_on, forward_on};
    use crate::test_util::random_vec;
    use tensor::cpu::supported_tiers;
    use tensor::testing::require_tier;

    /// Every pass with a kept buffer against the same pass without one, bit for bit, on `tier`.
    fn same_bits_on<T: Float + std::fmt::Debug>(
        tier: Tier,
        g: &Conv2dGeometry,
        to_t: fn(f64) -> T,
    ) {
        let v = |len, seed| -> Vec<T> { random_vec(len, seed).into_iter().map(to_t).collect() };
        let (x, w, b, dy) = (
            v(g.input_len(), 1),
            v(g.weight_len(), 2),
            v(g.out_channels, 3),
            v(g.output_len(), 4),
        );
        let mut ws = Vec::new();
        let mut y = vec![T::ZERO; g.output_len()];
        forward_on(tier, g, &x, &w, Some(&b), &mut y, &mut ws);
        let mut kept = vec![T::ZERO; kept_len_on(tier, g)];
        let mut y_kept = vec![T::ZERO; g.output_len()];
        forward_keeping_on(tier, g, &x, &w, Some(&b), &mut y_kept, &mut ws, &mut kept);
        assert_eq!(y, y_kept, "forward {tier}");

        let mut dx = vec![T::ZERO; g.input_len()];
        backward_input_on(tier, g, &w, &dy, &mut dx, &mut ws);
        let mut dx_kept = vec![T::ZERO; g.input_len()];
        backward_input_kept_on(tier, g, &w, &kept, &dy, &mut dx_kept, &mut ws);
        assert_eq!(dx, dx_kept, "input gradient {tier}");

        let mut dw = vec![T::ZERO; g.weight_len()];
        backward_weight_on(tier, g, &x, &dy, &mut dw, &mut ws);
        let mut dw_kept = vec![T::ZERO; g.weight_len()];
        backward_weight_kept_on(tier, g, &x, &kept, &dy, &mut dw_kept, &mut ws);
        assert_eq!(dw, dw_kept, "weight gradient {tier}");
    }

    /// `deep`'s conv1 (28x28, one input channel), conv3 (7x7), conv4 (3x3: unrolled), a 1x1
    /// map, a 2x2 map, a strided and a 5x5 convolution (nothing kept).
    const GEOMETRIES: [[usize; 8]; 7] = [
        [3, 1, 28, 28, 16, 3, 1, 1],
        [2, 16, 7, 7, 16, 3, 1, 1],
        [4, 16, 3, 3, 32, 3, 1, 1],
        [3, 32, 1, 1, 64, 3, 1, 1],
        [5, 8, 2, 2, 12, 3, 1, 1],
        [2, 3, 9, 9, 5, 3, 2, 1],
        [2, 3, 8, 8, 4, 5, 1, 2],
    ];

    fn geometry([n, c, h, w, co, k, s, p]: [usize; 8]) -> Conv2dGeometry {
        Conv2dGeometry::new(n, c, h, w, co, k, s, p).expect("valid geometry")
    }

    #[test]
    fn kept_passes_give_the_same_bits_f32() {
        for (tier, dims) in supported_tiers()
            .into_iter()
            .flat_map(|t| GEOMETRIES.map(|d| (t, d)))
        {
            same_bits_on::<f32>(tier, &geometry(dims), |v| v as f32);
        }
    }

    #[test]
    fn kept_passes_give_the_same_bits_f64() {
        for (tier, dims) in supported_tiers()
            .into_iter()
            .flat_map(|t| GEOMETRIES.map(|d| (t, d)))
        {
            same_bits_on::<f64>(tier, &geometry(dims), |v| v);
        }
    }

    #[test]
    fn the_unrolled_and_bordered_paths_keep_something_and_others_nothing() {
        assert_eq!(conv2d_kept_len(&geometry(GEOMETRIES[2])), 16 * 9 * 32 * 9);
        assert_eq!(
            conv2d_kept_for(&geometry(GEOMETRIES[2])),
            Some(KeptFor::InputGradient)
        );
        assert_eq!(conv2d_kept_for(&geometry(GEOMETRIES[3])), None);
        // the portable tier takes im2col for deep's conv1: nothing to keep
        let conv1 = geometry(GEOMETRIES[0]);
        assert_eq!(kept_for_on(Tier::Portable, &conv1), None);
        assert_eq!(kept_len_on(Tier::Portable, &conv1), 0);
        assert_eq!(conv2d_kept_len(&geometry(GEOMETRIES[3])), 0);
        assert_eq!(conv2d_kept_len(&geometry(GEOMETRIES[6])), 0);
    }

    #[test]
    #[cfg_attr(
        not(target_arch = "x86_64"),
        ignore = "needs avx512: not an x86-64 target"
    )]
    fn the_avx512_tier_keeps_the_bordered_input_needs_avx512() {
        const NAME: &str = "the_avx512_tier_keeps_the_bordered_input_needs_avx512";
        if !require_tier(Tier::Avx512, NAME) {
            return;
        }
        let conv1 = geometry(GEOMETRIES[0]);
        assert!(kept_len_on(Tier::Avx512, &conv1) > 3 * 28 * 28);
        let bordered = kept_for_on(Tier::Avx512, &conv1);
        assert_eq!(bordered, Some(KeptFor::WeightGradient));
    }

    /// The kept passes on the AVX-512 tier (the direct 3x3 and unrolled f32 kernels) against
    /// the same tier's plain passes, bit for bit, where the process's tier may be another.
    #[test]
    #[cfg_attr(
        not(target_arch = "x86_64"),
        ignore = "needs avx512: not an x86-64 target"
    )]
    fn kept_passes_give_the_same_bits_on_the_avx512_tier_needs_avx512() {
        const NAME: &str = "kept_passes_give_the_same_bits_on_the_avx512_tier_needs_avx512";
        if !require_tier(Tier::Avx512, NAME) {
            return;
        }
        for dims in GEOMETRIES {
            same_bits_on::<f32>(Tier::Avx512, &geometry(dims), |v| v as f32);
        }
    }

    #[test]
    #[should_panic(expected = "kept has length")]
    fn a_kept_buffer_of_the_wrong_length_panics_with_its_name() {
        let g = geometry(GEOMETRIES[2]);
        let (x, w) = (vec![0.0f32; g.input_len()], vec![0.0f32; g.weight_len()]);
        let mut y = vec![0.0f32; g.output_len()];
        let mut kept = vec![0.0f32; conv2d_kept_len(&g) - 1];
        conv2d_forward_keeping(&g, &x, &w, None, &mut y, &mut Vec::new(), &mut kept);
    }
}
