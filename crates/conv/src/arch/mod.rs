//! The one place this crate's `unsafe` lives: each vector kernel's instantiations per SIMD tier
//! (through [`tensor::tiered!`]), and the AVX-512 intrinsics kernels for f32 (`x86_64/`), behind
//! safe functions that take the [`Tier`] and check the CPU and every length.
//!
//! The kernels' bodies are plain Rust over `[T; 16]` arrays, written once in the module of the
//! algorithm they belong to ([`crate::direct3x3`], [`crate::direct2x2`], ...). Each function here
//! says which body each tier runs: AVX-512 the widest tiles (and, for f32, the intrinsics where
//! the compiler's own register allocation was fragile), AVX2 and NEON the same arithmetic in
//! tiles that fit their registers. Every tier does the same fused multiply-adds in the same
//! order for each value, so all of them give the same bits (the tests compare them).
#![allow(unsafe_code)]

// Only the x86-64 tiers' arms name the tier or view f32 buffers.
#[cfg(target_arch = "x86_64")]
use tensor::cpu::Tier;
#[cfg(target_arch = "x86_64")]
use tensor::f32_view::{as_f32, as_f32_mut};
use tensor::Float;

use crate::direct2x2;
use crate::direct3x3::{self, Same};
use crate::lanes::Lanes;

#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::tile3x3_f32::BorderedShape;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::unrolled_f32::PixelTables;

tensor::tiered! {
    /// One image's block of up to 16 output channels of a same 3x3 convolution: see
    /// [`direct3x3::forward_block_body`].
    pub(crate) fn same_conv_block<T: Float>(
        s: &Same,
        c: usize,
        image: &[T],
        weights: &[T],
        bias: &Lanes<T>,
        out_block: &mut [T],
    ) {
        avx512 => match (as_f32(image), as_f32(weights), as_f32(bias), as_f32_mut(out_block)) {
            (Some(image), Some(w), Some(bias), Some(out)) => {
                let bias = bias.try_into().expect("16 biases");
                if s.w <= x86_64::tile3x3_avx2::NARROW {
                    // A map at most 8 wide fills 8 of a 512-bit vector's 16 lanes: the AVX2
                    // tile's 256-bit one does the same FMAs in the same order, so the same bits.
                    // SAFETY: the AVX-512 tier implies AVX2 and FMA (`tensor::cpu`); lengths
                    // checked inside.
                    unsafe {
                        x86_64::tile3x3_avx2::forward_block(s.bordered(), c, image, w, bias, out)
                    }
                } else {
                    // SAFETY: compiled for and entered on a CPU with AVX-512F; lengths checked
                    // inside.
                    unsafe {
                        x86_64::tile3x3_f32::forward_block(s.bordered(), c, image, w, bias, out)
                    }
                }
            }
            _ => direct3x3::forward_block_body(s, image, weights, bias, out_block),
        },
        avx2 => match (as_f32(image), as_f32(weights), as_f32(bias), as_f32_mut(out_block)) {
            (Some(image), Some(w), Some(bias), Some(out)) => {
                let bias = bias.try_into().expect("16 biases");
                // SAFETY: compiled for and entered on a CPU with AVX2 and FMA; lengths checked
                // inside.
                unsafe { x86_64::tile3x3_avx2::forward_block(s.bordered(), c, image, w, bias, out) }
            }
            _ => direct3x3::forward_block_parts(s, image, weights, bias, out_block),
        },
        other => direct3x3::forward_block_parts(s, image, weights, bias, out_block),
    }
}

tensor::tiered! {
    /// One plane into its zero-bordered rows: see [`direct3x3::bordered_plane_body`].
    pub(crate) fn bordered_plane<T: Float>(s: &Same, input: &[T], out: &mut [T]) {
        avx512 => match (as_f32(input), as_f32_mut(out)) {
            (Some(input), Some(out)) => {
                // SAFETY: entered on a CPU with AVX-512F; lengths checked inside.
                unsafe { x86_64::layout_f32::bordered_plane(input, out, s.w, s.vectors) }
            }
            _ => direct3x3::bordered_plane_body(s, input, out),
        },
        avx2 => match (as_f32(input), as_f32_mut(out)) {
            (Some(input), Some(out)) => {
                // SAFETY: entered on a CPU with AVX2; lengths checked inside.
                unsafe { x86_64::layout_avx2::bordered_plane(input, out, s.w, s.vectors) }
            }
            _ => direct3x3::bordered_plane_body(s, input, out),
        },
        other => direct3x3::bordered_plane_body(s, input, out),
    }
}

tensor::tiered! {
    /// One image's planes into channels-last order: see [`direct3x3::channels_last_body`].
    pub(crate) fn channels_last_image<T: Float>(
        src: &[T],
        dst: &mut [T],
        cout: usize,
        pixels: usize,
        cpad: usize,
    ) {
        avx512 => match (as_f32(src), as_f32_mut(dst)) {
            (Some(src), Some(dst)) => {
                // SAFETY: entered on a CPU with AVX-512F; lengths checked inside.
                unsafe { x86_64::layout_f32::channels_last_image(src, dst, cout, pixels, cpad) }
            }
            _ => direct3x3::channels_last_body(src, dst, cout, pixels, cpad),
        },
        avx2 => match (as_f32(src), as_f32_mut(dst)) {
            (Some(src), Some(dst)) => {
                // SAFETY: entered on a CPU with AVX2; lengths checked inside.
                unsafe { x86_64::layout_avx2::channels_last_image(src, dst, cout, pixels, cpad) }
            }
            _ => direct3x3::channels_last_body(src, dst, cout, pixels, cpad),
        },
        other => direct3x3::channels_last_body(src, dst, cout, pixels, cpad),
    }
}

tensor::tiered! {
    /// The input gradient of a one-input-channel same convolution for one image: see
    /// [`direct3x3::one_channel_image`].
    pub(crate) fn one_channel_image<T: Float>(
        s: &Same,
        cout: usize,
        weight: &[T],
        dy: &[T],
        zb: &mut [T],
        dx: &mut [T],
    ) {
        avx512 => direct3x3::one_channel_image::<T, 16>(s, cout, weight, dy, zb, dx),
        avx2 => direct3x3::one_channel_image::<T, 8>(s, cout, weight, dy, zb, dx),
        other => direct3x3::one_channel_image::<T, 8>(s, cout, weight, dy, zb, dx),
    }
}

tensor::tiered! {
    /// One weight-gradient tile of a same 3x3 convolution: see [`direct3x3::weight_tile`].
    pub(crate) fn weight_tile<T: Float>(
        s: &Same,
        dyh: &[T],
        xb: &[T],
        channels: (usize, usize),
        counts: (usize, usize),
    ) -> [Lanes<T>; 9] {
        avx512 => direct3x3::weight_tile(s, dyh, xb, channels, counts),
        avx2 => match (as_f32(dyh), as_f32(xb)) {
            (Some(dyh), Some(xb)) => {
                // SAFETY: compiled for and entered on a CPU with AVX2 and FMA; lengths checked
                // inside.
                let sums = unsafe {
                    x86_64::weight3x3_avx2::weight_tile(s.bordered(), s.n, (dyh, xb), channels, counts)
                };
                sums.map(|tap| tap.map(|v| T::from_f64(f64::from(v))))
            }
            _ => direct3x3::weight_tile_parts(s, dyh, xb, channels, counts),
        },
        other => direct3x3::weight_tile_parts(s, dyh, xb, channels, counts),
    }
}

/// [`crate::unrolled`]'s weight expansion for f32 in AVX-512 intrinsics. Panics unless `tier`
/// runs AVX-512 on this CPU (the caller checks it first: `unrolled::vector_kernels`).
#[cfg(target_arch = "x86_64")]
pub(crate) fn unroll_f32(tier: Tier, weight: &[f32], u: &mut [f32], tables: &PixelTables) {
    assert!(tier.avx512(), "unroll_f32 needs the AVX-512 tier");
    // SAFETY: the CPU has AVX-512F (checked above); lengths checked inside.
    unsafe { x86_64::unrolled_f32::unroll(weight, u, tables) }
}

/// [`crate::unrolled`]'s fold (the expansion's adjoint) for f32 in AVX-512 intrinsics. Panics
/// unless `tier` runs AVX-512 on this CPU (the caller checks it first).
#[cfg(target_arch = "x86_64")]
pub(crate) fn fold_f32(tier: Tier, du: &[f32], grad_weight: &mut [f32], tables: &PixelTables) {
    assert!(tier.avx512(), "fold_f32 needs the AVX-512 tier");
    // SAFETY: the CPU has AVX-512F (checked above); lengths checked inside.
    unsafe { x86_64::unrolled_f32::fold(du, grad_weight, tables) }
}

tensor::tiered! {
    /// The bias gradient of output channel `o`: see [`crate::conv2d::channel_sum_body`].
    pub(crate) fn bias_channel_sum<T: Float>(
        grad_output: &[T],
        channels: usize,
        plane: usize,
        o: usize,
    ) -> T {
        avx512 => match as_f32(grad_output) {
            Some(dy) => {
                // SAFETY: entered on a CPU with AVX-512F; lengths checked inside.
                let sum = unsafe { x86_64::bias_f32::channel_sum(dy, channels, plane, o) };
                T::from_f64(f64::from(sum))
            }
            None => crate::conv2d::channel_sum_body(grad_output, channels, plane, o),
        },
        avx2 => crate::conv2d::channel_sum_body(grad_output, channels, plane, o),
        other => crate::conv2d::channel_sum_body(grad_output, channels, plane, o),
    }
}

tensor::tiered! {
    /// One forward tile of [`crate::direct2x2`] (a `k` x `k` kernel, 3 or 5): see
    /// [`direct2x2::forward_tile`].
    pub(crate) fn tile2x2_forward<T: Float>(
        k: usize,
        xt_block: &[T],
        filter: &[T],
        bias: T,
        first: usize,
    ) -> [Lanes<T>; 4] {
        avx512 => tile2x2_forward_body(k, xt_block, filter, bias, first),
        avx2 => tile2x2_forward_body(k, xt_block, filter, bias, first),
        other => tile2x2_forward_body(k, xt_block, filter, bias, first),
    }
}

#[inline(always)]
fn tile2x2_forward_body<T: Float>(
    k: usize,
    xt_block: &[T],
    filter: &[T],
    bias: T,
    first: usize,
) -> [Lanes<T>; 4] {
    match k {
        3 => direct2x2::forward_tile::<T, 3>(xt_block, filter, bias, first),
        _ => direct2x2::forward_tile::<T, 5>(xt_block, filter, bias, first),
    }
}

tensor::tiered! {
    /// One input-gradient tile of [`crate::direct2x2`]: see [`direct2x2::input_tile`].
    pub(crate) fn tile2x2_input<T: Float>(
        k: usize,
        dyt_block: &[T],
        weight: &[T],
        channels: (usize, usize),
        first: usize,
    ) -> [Lanes<T>; 4] {
        avx512 => tile2x2_input_body(k, dyt_block, weight, channels, first),
        avx2 => tile2x2_input_body(k, dyt_block, weight, channels, first),
        other => tile2x2_input_body(k, dyt_block, weight, channels, first),
    }
}

#[inline(always)]
fn tile2x2_input_body<T: Float>(
    k: usize,
    dyt_block: &[T],
    weight: &[T],
    (in_channels, c): (usize, usize),
    first: usize,
) -> [Lanes<T>; 4] {
    match k {
        3 => direct2x2::input_tile::<T, 3>(dyt_block, weight, in_channels, c, first),
        _ => direct2x2::input_tile::<T, 5>(dyt_block, weight, in_channels, c, first),
    }
}

tensor::tiered! {
    /// One weight-gradient tile of [`crate::direct2x2`]: see [`direct2x2::weight_tile`].
    pub(crate) fn tile2x2_weight<T: Float>(
        xc: &[T],
        channels: (usize, usize),
        grad_output: &[T],
        outs: (usize, usize),
    ) -> [Lanes<T>; 9] {
        avx512 => direct2x2::weight_tile(xc, channels.0, channels.1, grad_output, outs.0, outs.1),
        avx2 => direct2x2::weight_tile(xc, channels.0, channels.1, grad_output, outs.0, outs.1),
        other => direct2x2::weight_tile(xc, channels.0, channels.1, grad_output, outs.0, outs.1),
    }
}
