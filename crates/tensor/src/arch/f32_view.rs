//! Generic slices seen as f32, for the kernels written in f32 AVX-512 intrinsics: they take
//! `T = f32` (training and attribution) and leave f64 (gradient checks) to the generic code.

use crate::Float;

/// `values` as f32 when `T` is f32, else `None`.
#[inline(always)]
pub fn as_f32<T: Float>(values: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32, so the slice's pointer and length describe f32 values.
        unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<f32>(), values.len()) }
    })
}

/// [`as_f32`] for a mutable slice.
#[inline(always)]
pub fn as_f32_mut<T: Float>(values: &mut [T]) -> Option<&mut [f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32, so the slice's pointer and length describe f32 values, and the one
        // mutable borrow moves into the result.
        unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<f32>(), values.len()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_slices_are_seen_and_f64_slices_are_not() {
        let mut a = [1.5f32, -2.0];
        assert_eq!(as_f32(&a), Some(&[1.5f32, -2.0][..]));
        as_f32_mut(&mut a).expect("f32")[1] = 4.0;
        assert_eq!(a, [1.5, 4.0]);
        let mut b = [1.5f64];
        assert!(as_f32(&b).is_none() && as_f32_mut(&mut b).is_none());
    }
}
