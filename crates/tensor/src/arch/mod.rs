//! The one place this crate's `unsafe` lives, each use behind a safe function that checks the
//! CPU and every length: `matrixmultiply`'s raw-pointer GEMM, the narrow AVX2 kernels
//! and the packed-panel GEMM ([`gemm`]), generic slices seen as f32 ([`f32_view`]), and the instantiations of the Adam kernel and
//! LRP-epsilon's quotient per SIMD tier.
#![allow(unsafe_code)]

pub mod f32_view;
pub mod gemm;
pub(crate) mod gemm_narrow;
pub(crate) mod gemm_packed;
pub(crate) mod gemm_packed_kernel;

use crate::adam::{AdamStep, Finite, SgdStep};
use crate::rescale;
use crate::stabilized_ratio;

crate::tiered! {
    /// [`AdamStep::apply`]'s loop on `tier`: every tier the same operations in the same order
    /// on each element (no multiply-add is fused, since Rust never contracts them), so the
    /// same bits.
    pub(crate) fn adam_apply(step: &AdamStep, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) -> Finite {
        avx512 => step.apply_body(p, g, m, v),
        avx2 => step.apply_body(p, g, m, v),
        other => step.apply_body(p, g, m, v),
    }
}

crate::tiered! {
    /// [`SgdStep::apply`]'s loop on `tier`, as [`adam_apply`]: the same bits on every tier.
    pub(crate) fn sgd_apply(step: &SgdStep, p: &mut [f32], g: &[f32], vel: &mut [f32]) -> Finite {
        avx512 => step.apply_body(p, g, vel),
        avx2 => step.apply_body(p, g, vel),
        other => step.apply_body(p, g, vel),
    }
}

crate::tiered! {
    /// [`stabilized_ratio::stabilized_ratio`]'s loop on `tier`: a quotient and selects, exactly
    /// rounded at any width, so the same bits.
    pub(crate) fn stabilized_ratio(g: &[f32], z: &[f32], eps: f32, s: &mut [f32]) {
        avx512 => stabilized_ratio::body(g, z, eps, s),
        avx2 => stabilized_ratio::body(g, z, eps, s),
        other => stabilized_ratio::body(g, z, eps, s),
    }
}

crate::tiered! {
    /// [`stabilized_ratio::scaled_ratio`]'s loop on `tier`: products, a quotient and selects,
    /// exactly rounded at any width, so the same bits.
    pub(crate) fn scaled_ratio(g: &[f32], z: &[f32], d: &[f32], eps: f32, factor: f32, s: &mut [f32]) {
        avx512 => stabilized_ratio::scaled_body(g, z, d, eps, factor, s),
        avx2 => stabilized_ratio::scaled_body(g, z, d, eps, factor, s),
        other => stabilized_ratio::scaled_body(g, z, d, eps, factor, s),
    }
}

crate::tiered! {
    /// [`rescale::relu_rescale`]'s loop on `tier`: differences, a product, a quotient and
    /// selects, each exactly rounded, so the same bits.
    pub(crate) fn relu_rescale(a: &[f32], r: &[f32], g: &[f32], dx: &mut [f32]) {
        avx512 => rescale::relu_body(a, r, g, dx),
        avx2 => rescale::relu_body(a, r, g, dx),
        other => rescale::relu_body(a, r, g, dx),
    }
}

crate::tiered! {
    /// [`rescale::pool_rescale_divide`]'s loop on `tier`, as [`relu_rescale`]: the same bits.
    pub(crate) fn pool_rescale_divide(moved: &[f32], a: &[f32], r: &[f32], dx: &mut [f32]) {
        avx512 => rescale::divide_body(moved, a, r, dx),
        avx2 => rescale::divide_body(moved, a, r, dx),
        other => rescale::divide_body(moved, a, r, dx),
    }
}
