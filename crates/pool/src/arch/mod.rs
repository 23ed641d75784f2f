//! The one place this crate's `unsafe` lives: the fused ReLU + 2x2 max-pool's instantiation per
//! SIMD tier (through [`tensor::tiered!`]), its AVX-512 and AVX2 intrinsics forms for f32, and the AVX-512
//! and AVX2 intrinsics backward for f32
//! (`x86_64/`), behind safe functions that take the [`Tier`] and check the CPU and the lengths.
#![allow(unsafe_code)]

use tensor::cpu::Tier;
use tensor::Float;

use crate::window2x2;
use crate::{Pool2dGeometry, Upstream};

#[cfg(target_arch = "x86_64")]
mod x86_64;

/// `max_pool2d(relu(x))` of a run of whole planes on `tier`: f32 on the AVX-512 tier in AVX-512
/// intrinsics (`x86_64::forward2x2_f32`, 16 windows at a time), on the AVX2 tier in AVX2
/// intrinsics (`x86_64::forward2x2_avx2`, 8 windows at a time; both beat the portable body
/// compiled for their tier), else the portable body compiled for the tier. Every tier makes
/// each lane's compares in the scalar scan's order, so all give the same bits.
pub(crate) fn relu_pool_planes<T: Float>(
    tier: Tier,
    g: &Pool2dGeometry,
    planes: &[T],
    out: &mut [T],
    arg: &mut [u32],
) {
    #[cfg(target_arch = "x86_64")]
    if tier.avx2_fma() {
        if let (Some(planes), Some(out)) = (
            tensor::f32_view::as_f32(planes),
            tensor::f32_view::as_f32_mut(out),
        ) {
            if tier.avx512() {
                // SAFETY: `tier.avx512()` checked that the CPU has AVX-512F; lengths checked
                // inside.
                unsafe { x86_64::forward2x2_f32::relu_pool_planes(g, planes, out, arg) };
            } else {
                // SAFETY: `tier.avx2_fma()` checked that the CPU has AVX2; lengths checked
                // inside.
                unsafe { x86_64::forward2x2_avx2::relu_pool_planes(g, planes, out, arg) };
            }
            return;
        }
    }
    relu_pool_planes_tiered(tier, g, planes, out, arg);
}

tensor::tiered! {
    /// [`relu_pool_planes`]' portable body compiled for `tier`: see
    /// [`window2x2::relu_pool_planes_body`].
    fn relu_pool_planes_tiered<T: Float>(
        g: &Pool2dGeometry,
        planes: &[T],
        out: &mut [T],
        arg: &mut [u32],
    ) {
        avx512 => window2x2::relu_pool_planes_body(g, planes, out, arg),
        avx2 => window2x2::relu_pool_planes_body(g, planes, out, arg),
        other => window2x2::relu_pool_planes_body(g, planes, out, arg),
    }
}

/// The plain 2x2 max-pool forward of a run of whole planes on `tier`: f32 on the AVX-512 tier in
/// AVX-512 intrinsics (`x86_64::forward2x2_f32`), else the portable body compiled for the tier.
/// Both make each lane's compares in the scalar scan's order and send a chunk with a NaN to the
/// reference scan, so all tiers give the same bits.
pub(crate) fn pool_planes<T: Float>(
    tier: Tier,
    g: &Pool2dGeometry,
    planes: &[T],
    out: &mut [T],
    arg: &mut [u32],
) {
    #[cfg(target_arch = "x86_64")]
    if tier.avx512() {
        if let (Some(planes), Some(out)) = (
            tensor::f32_view::as_f32(planes),
            tensor::f32_view::as_f32_mut(out),
        ) {
            // SAFETY: `tier.avx512()` checked that the CPU has AVX-512F; lengths checked inside.
            unsafe { x86_64::forward2x2_f32::pool_planes(g, planes, out, arg) };
            return;
        }
    }
    pool_planes_tiered(tier, g, planes, out, arg);
}

tensor::tiered! {
    /// The plain 2x2 max-pool forward of a run of whole planes, the portable body compiled for
    /// `tier`: see [`window2x2::pool_planes_body`] (each lane the scalar scan's compares, so the
    /// same bits on every tier).
    fn pool_planes_tiered<T: Float>(
        g: &Pool2dGeometry,
        planes: &[T],
        out: &mut [T],
        arg: &mut [u32],
    ) {
        avx512 => window2x2::pool_planes_body(g, planes, out, arg),
        avx2 => window2x2::pool_planes_body(g, planes, out, arg),
        other => window2x2::pool_planes_body(g, planes, out, arg),
    }
}

/// The 2x2 max-pool backward of one f32 plane in AVX-512 or AVX2 intrinsics (see
/// `x86_64::backward2x2_f32` and `x86_64::backward2x2_avx2`, the same values in 16 or 8 lanes),
/// each gradient changed as `upstream` says: true when it wrote `grad_in`; false when `tier` runs neither here, or an argmax lies outside
/// its window (the caller then runs the general scatter).
pub(crate) fn backward_plane_2x2_f32(
    tier: Tier,
    g: &Pool2dGeometry,
    grad_out: &[f32],
    arg: &[u32],
    grad_in: &mut [f32],
    upstream: Upstream,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if tier.avx512() {
        // SAFETY: `tier.avx512()` checked that the CPU has AVX-512F; lengths checked inside.
        return unsafe {
            x86_64::backward2x2_f32::backward_plane(g, grad_out, arg, grad_in, upstream)
        };
    }
    #[cfg(target_arch = "x86_64")]
    if tier.avx2_fma() {
        // SAFETY: `tier.avx2_fma()` checked that the CPU has AVX2; lengths checked inside.
        return unsafe {
            x86_64::backward2x2_avx2::backward_plane(g, grad_out, arg, grad_in, upstream)
        };
    }
    let _ = (tier, g, grad_out, arg, grad_in, upstream);
    false
}
