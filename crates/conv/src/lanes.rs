//! The vectors the direct kernels ([`crate::direct2x2`], [`crate::direct3x3`]) compute with:
//! `[T; 16]` arrays, one AVX-512 register of f32, handled by plain loops that the compiler turns
//! into single instructions inside functions compiled with `#[target_feature(enable =
//! "avx512f,avx2,fma")]`.

use tensor::Float;

/// Values per vector: the 16 f32 lanes of an AVX-512 register.
pub(crate) const LANES: usize = 16;

/// One vector.
pub(crate) type Lanes<T> = [T; LANES];

/// The vector at `start` (one load: a fixed-size copy, not a gather of bounds-checked lanes).
#[inline(always)]
pub(crate) fn lanes_at<T: Float>(values: &[T], start: usize) -> Lanes<T> {
    let lanes: &Lanes<T> = values[start..start + LANES]
        .try_into()
        .expect("a range of LANES values");
    *lanes
}

/// `acc[l] += x[l] * w` over the lanes, each a fused multiply-add.
#[inline(always)]
pub(crate) fn fma_lanes<T: Float>(acc: &mut Lanes<T>, x: &Lanes<T>, w: T) {
    for (a, &xv) in acc.iter_mut().zip(x) {
        *a = xv.mul_add(w, *a);
    }
}
