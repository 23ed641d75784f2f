//! The f32 kernels written in AVX-512 (and, for the 3x3 forward tile, AVX2) intrinsics, each the same operations in the same order as
//! the generic body it stands in for (tested bit for bit against it).

pub(crate) mod bias_f32;
pub(crate) mod layout_avx2;
pub(crate) mod layout_f32;
pub(crate) mod tile3x3_avx2;
pub(crate) mod tile3x3_f32;
pub(crate) mod unrolled_f32;
pub(crate) mod weight3x3_avx2;
