//! The vectors the direct kernels ([`crate::direct2x2`], [`crate::direct3x3`]) compute with:
//! `[T; N]` arrays (`N` = 16 for a whole vector, one AVX-512 register of f32), handled by plain
//! loops that the compiler turns into single instructions inside the functions [`crate::arch`]
//! compiles for each tier: one AVX-512 register, two AVX2 registers or four NEON registers per
//! 16 lanes. Each lane is an independent column of the computation, so the lane count of a
//! tier's registers never changes the arithmetic of any one value.

use tensor::Float;

/// Values per vector: the 16 f32 lanes of an AVX-512 register.
pub(crate) const LANES: usize = 16;

/// One vector.
pub(crate) type Lanes<T> = [T; LANES];

/// The `N` values at `start` (one load: a fixed-size copy, not a gather of bounds-checked lanes).
#[inline(always)]
pub(crate) fn lanes_at<T: Float, const N: usize>(values: &[T], start: usize) -> [T; N] {
    let lanes: &[T; N] = values[start..start + N]
        .try_into()
        .expect("a range of N values");
    *lanes
}

/// `acc[l] += x[l] * w` over the lanes, each a fused multiply-add.
#[inline(always)]
pub(crate) fn fma_lanes<T: Float, const N: usize>(acc: &mut [T; N], x: &[T; N], w: T) {
    for (a, &xv) in acc.iter_mut().zip(x) {
        *a = xv.mul_add(w, *a);
    }
}
