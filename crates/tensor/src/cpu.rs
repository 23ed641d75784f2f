//! What the CPU can run, detected once at run time (then cached by `std`).
//!
//! The build targets plain x86-64, so wide vector code lives in functions compiled with
//! `#[target_feature]`, entered only after these checks say the CPU has the instructions.

/// True when the CPU has AVX-512F, AVX2 and FMA: the direct convolution and pooling kernels.
pub fn avx512_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when the CPU has AVX2 and FMA: the narrow GEMM kernels.
pub fn avx2_fma_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The AVX-512 mask of the first `n` of 16 lanes (`n <= 16`): a row's valid values in the f32
/// intrinsics kernels' masked loads and stores.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn first_lanes(n: usize) -> std::arch::x86_64::__mmask16 {
    debug_assert!(n <= 16);
    ((1u32 << n) - 1) as std::arch::x86_64::__mmask16
}
