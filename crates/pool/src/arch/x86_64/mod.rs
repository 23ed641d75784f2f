//! The f32 pooling kernels written in intrinsics: the 2x2 backward and the fused ReLU + 2x2
//! forward, each in AVX-512 and in AVX2.

pub(crate) mod backward2x2_avx2;
#[cfg(test)]
pub(crate) mod backward2x2_cases;
pub(crate) mod backward2x2_f32;
pub(crate) mod forward2x2_avx2;
pub(crate) mod forward2x2_f32;
