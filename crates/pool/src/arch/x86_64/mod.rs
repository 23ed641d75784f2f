//! The f32 pooling kernels written in AVX-512 intrinsics.

pub(crate) mod backward2x2_f32;
