//! The kernel seam: every way this crate computes a convolution is one [`ConvPath`], and
//! [`choose`] picks the path of a (geometry, tier) once, for all of its passes.
//!
//! A path answers everything the passes and the tape need to know about it: whether it applies
//! to a geometry on a tier, what its forward can keep for the backward (and for which pass), and
//! the forward, input-gradient and weight-gradient passes themselves, with and without the kept
//! buffer. The public functions of [`crate::conv2d`] and [`crate::kept`] check their buffers
//! and call the chosen path; none of them matches on paths. The portable reference (im2col +
//! GEMM) is the last entry and applies to every geometry; the naive oracle ([`crate::naive`])
//! stays outside the seam, as the thing every path is tested against.
//!
//! The choice depends only on the geometry and the tier, so the same shapes always take the same
//! path, which keeps every result independent of the thread count.

use tensor::cpu::Tier;
use tensor::Float;

use crate::conv2d::{scratch, Im2col, SingleTap};
use crate::kept::KeptFor;
use crate::{direct2x2, direct3x3, tapwise, unrolled, Conv2dGeometry};

/// One way to compute a convolution's forward and backward passes. Buffers are checked by the
/// caller; `workspace` is grown by the path to what it needs and never shrunk.
pub(crate) trait ConvPath<T: Float>: Sync {
    /// Short name, for tests and messages.
    fn name(&self) -> &'static str;

    /// Whether this path computes convolutions of `g` on `tier`.
    fn applies(&self, g: &Conv2dGeometry, tier: Tier) -> bool;

    /// Which backward pass reads what [`ConvPath::forward_keeping`] keeps; `None` when the
    /// path keeps nothing.
    fn keeps(&self) -> Option<KeptFor> {
        None
    }

    /// Elements [`ConvPath::forward_keeping`] keeps for `g`.
    fn kept_len(&self, _g: &Conv2dGeometry) -> usize {
        0
    }

    /// `output = conv(input, weight) + bias`.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        output: &mut [T],
        workspace: &mut Vec<T>,
    );

    /// [`ConvPath::forward`], also writing into `kept` what the backward can reuse.
    #[allow(clippy::too_many_arguments)]
    fn forward_keeping(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        output: &mut [T],
        workspace: &mut Vec<T>,
        _kept: &mut [T],
    ) {
        self.forward(tier, g, input, weight, bias, output, workspace)
    }

    /// `grad_input = dL/dx` from `grad_output`.
    fn backward_input(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        weight: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
        workspace: &mut Vec<T>,
    );

    /// [`ConvPath::backward_input`], reading what the forward kept.
    #[allow(clippy::too_many_arguments)]
    fn backward_input_kept(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        weight: &[T],
        _kept: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        self.backward_input(tier, g, weight, grad_output, grad_input, workspace)
    }

    /// `grad_weight = dL/dW` from the forward's `input` and `grad_output`.
    fn backward_weight(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        grad_output: &[T],
        grad_weight: &mut [T],
        workspace: &mut Vec<T>,
    );

    /// [`ConvPath::backward_weight`], reading what the forward kept.
    #[allow(clippy::too_many_arguments)]
    fn backward_weight_kept(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        _kept: &[T],
        grad_output: &[T],
        grad_weight: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        self.backward_weight(tier, g, input, grad_output, grad_weight, workspace)
    }
}

/// The path of `g` on `tier`: the first entry of [`paths`] that applies (the last, im2col,
/// always does).
pub(crate) fn choose<T: Float>(g: &Conv2dGeometry, tier: Tier) -> &'static dyn ConvPath<T> {
    paths::<T>()
        .into_iter()
        .find(|p| p.applies(g, tier))
        .expect("im2col applies to every geometry")
}

/// The name of the path every pass of `g` takes on the tier in use (`single-tap`, `direct2x2`,
/// `unrolled`, `direct3x3`, `tapwise` or `im2col`), for benchmarks and logs.
pub fn conv2d_path(g: &Conv2dGeometry) -> &'static str {
    choose::<f32>(g, tensor::cpu::tier()).name()
}

/// Every path, in the order [`choose`] tries them: the most specialised first.
pub(crate) fn paths<T: Float>() -> [&'static dyn ConvPath<T>; 6] {
    [
        &SingleTap, &Direct2x2, &Unrolled, &Direct3x3, &Tapwise, &Im2col,
    ]
}

/// 2x2 maps at small batches: direct vector kernels reading the weight in place.
struct Direct2x2;

impl<T: Float> ConvPath<T> for Direct2x2 {
    fn name(&self) -> &'static str {
        "direct2x2"
    }
    fn applies(&self, g: &Conv2dGeometry, tier: Tier) -> bool {
        direct2x2::applies(g, tier)
    }
    fn forward(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        output: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, direct2x2::workspace_len(g));
        direct2x2::forward(tier, g, input, weight, bias, output, ws)
    }
    fn backward_input(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        weight: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, direct2x2::workspace_len(g));
        direct2x2::backward_input(tier, g, weight, grad_output, grad_input, ws)
    }
    fn backward_weight(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        grad_output: &[T],
        grad_weight: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, direct2x2::workspace_len(g));
        direct2x2::backward_weight(tier, g, input, grad_output, grad_weight, ws)
    }
}

/// Tiny maps: one GEMM on the weight unrolled into a dense matrix `U`, which the forward keeps
/// for the input gradient.
struct Unrolled;

impl<T: Float> ConvPath<T> for Unrolled {
    fn name(&self) -> &'static str {
        "unrolled"
    }
    fn applies(&self, g: &Conv2dGeometry, _tier: Tier) -> bool {
        unrolled::applies(g)
    }
    fn keeps(&self) -> Option<KeptFor> {
        Some(KeptFor::InputGradient)
    }
    fn kept_len(&self, g: &Conv2dGeometry) -> usize {
        unrolled::workspace_len(g)
    }
    fn forward(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        output: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, unrolled::workspace_len(g));
        unrolled::forward(tier, g, input, weight, bias, output, ws)
    }
    fn forward_keeping(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        output: &mut [T],
        _workspace: &mut Vec<T>,
        kept: &mut [T],
    ) {
        unrolled::unroll(tier, g, weight, kept);
        unrolled::forward_unrolled(g, input, kept, bias, output);
    }
    fn backward_input(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        weight: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, unrolled::workspace_len(g));
        unrolled::backward_input(tier, g, weight, grad_output, grad_input, ws)
    }
    fn backward_input_kept(
        &self,
        _tier: Tier,
        g: &Conv2dGeometry,
        _weight: &[T],
        kept: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
        _workspace: &mut Vec<T>,
    ) {
        unrolled::backward_input_unrolled(g, kept, grad_output, grad_input)
    }
    fn backward_weight(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        grad_output: &[T],
        grad_weight: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, unrolled::workspace_len(g));
        unrolled::backward_weight(tier, g, input, grad_output, grad_weight, ws)
    }
}

/// Same 3x3 convolutions on larger maps: direct vector kernels on a zero-bordered copy of the
/// input, which the forward keeps for the weight gradient.
struct Direct3x3;

impl<T: Float> ConvPath<T> for Direct3x3 {
    fn name(&self) -> &'static str {
        "direct3x3"
    }
    fn applies(&self, g: &Conv2dGeometry, tier: Tier) -> bool {
        direct3x3::applies(g, tier)
    }
    fn keeps(&self) -> Option<KeptFor> {
        Some(KeptFor::WeightGradient)
    }
    fn kept_len(&self, g: &Conv2dGeometry) -> usize {
        direct3x3::bordered_input_len(g)
    }
    fn forward(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        output: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, direct3x3::workspace_len(g));
        direct3x3::forward(tier, g, input, weight, bias, output, ws)
    }
    fn forward_keeping(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        output: &mut [T],
        workspace: &mut Vec<T>,
        kept: &mut [T],
    ) {
        let ws = scratch(workspace, direct3x3::workspace_len(g));
        direct3x3::forward_bordering(tier, g, input, weight, bias, output, kept, ws)
    }
    fn backward_input(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        weight: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, direct3x3::workspace_len(g));
        direct3x3::backward_input(tier, g, weight, grad_output, grad_input, ws)
    }
    fn backward_weight(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        grad_output: &[T],
        grad_weight: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, direct3x3::workspace_len(g));
        direct3x3::backward_weight(tier, g, input, grad_output, grad_weight, ws)
    }
    fn backward_weight_kept(
        &self,
        tier: Tier,
        g: &Conv2dGeometry,
        _input: &[T],
        kept: &[T],
        grad_output: &[T],
        grad_weight: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, direct3x3::workspace_len(g));
        direct3x3::backward_weight_bordered(tier, g, kept, grad_output, grad_weight, ws)
    }
}

/// Small padded maps at large batches: a sum of per-tap GEMMs that skips the padding.
struct Tapwise;

impl<T: Float> ConvPath<T> for Tapwise {
    fn name(&self) -> &'static str {
        "tapwise"
    }
    fn applies(&self, g: &Conv2dGeometry, _tier: Tier) -> bool {
        tapwise::applies(g)
    }
    fn forward(
        &self,
        _tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        output: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, tapwise::workspace_len(g));
        tapwise::forward(g, input, weight, bias, output, ws)
    }
    fn backward_input(
        &self,
        _tier: Tier,
        g: &Conv2dGeometry,
        weight: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, tapwise::workspace_len(g));
        tapwise::backward_input(g, weight, grad_output, grad_input, ws)
    }
    fn backward_weight(
        &self,
        _tier: Tier,
        g: &Conv2dGeometry,
        input: &[T],
        grad_output: &[T],
        grad_weight: &mut [T],
        workspace: &mut Vec<T>,
    ) {
        let ws = scratch(workspace, tapwise::workspace_len(g));
        tapwise::backward_weight(g, input, grad_output, grad_weight, ws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_geometry_has_exactly_the_path_choose_names_and_im2col_is_last() {
        let g = |n, c, h, cout, k, pad| Conv2dGeometry::new(n, c, h, h, cout, k, 1, pad).unwrap();
        let names = |g: &Conv2dGeometry, tier| choose::<f32>(g, tier).name();
        assert_eq!(names(&g(4, 8, 1, 8, 3, 1), Tier::Portable), "single-tap");
        assert_eq!(names(&g(4, 8, 28, 16, 5, 0), Tier::Portable), "im2col");
        assert_eq!(paths::<f64>()[5].name(), "im2col");
        // The kept buffer follows the path: only unrolled and direct3x3 keep anything.
        for p in paths::<f32>() {
            let keeps = p.keeps().is_some();
            assert_eq!(
                keeps,
                ["unrolled", "direct3x3"].contains(&p.name()),
                "{}",
                p.name()
            );
        }
    }
}
