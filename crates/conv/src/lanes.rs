//! The vectors the direct kernels ([`crate::direct2x2`], [`crate::direct3x3`]) compute with:
//! `[T; 16]` arrays, one AVX-512 register of f32, handled by plain loops that the compiler turns
//! into single instructions inside functions compiled with `#[target_feature(enable =
//! "avx512f,avx2,fma")]`.

use tensor::Float;

/// Values per vector: the 16 f32 lanes of an AVX-512 register.
pub(crate) const LANES: usize = 16;

/// One vector.
pub(crate) type Lanes<T> = [T; LANES];

/// True when the CPU runs the direct kernels' AVX-512 code.
pub(crate) fn simd_available() -> bool {
    tensor::cpu::avx512_available()
}

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

/// `values` as f32, when `T` is f32: the kernels written in f32 intrinsics take this path and
/// the generic code keeps the rest (f64, for gradient checks).
#[inline(always)]
pub(crate) fn as_f32<T: Float>(values: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32, so the slice's pointer and length describe f32 values.
        unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<f32>(), values.len()) }
    })
}

/// [`as_f32`] for a mutable slice.
#[inline(always)]
pub(crate) fn as_f32_mut<T: Float>(values: &mut [T]) -> Option<&mut [f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32, so the slice's pointer and length describe f32 values, borrowed
        // mutably once.
        unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<f32>(), values.len()) }
    })
}
