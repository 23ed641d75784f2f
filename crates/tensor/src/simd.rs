//! Elementwise kernels written with `wide` (8 lanes of f32, 4 of f64), each with a scalar twin.
//!
//! No kernel here uses a fused multiply-add or reorders a sum, so the SIMD and scalar versions
//! round identically and the tests can demand exact equality.

use wide::{f32x8, f64x4, CmpGt};

/// Elementwise kernels an element type provides; implemented for `f32` and `f64`.
pub trait SimdScalar: Sized + Copy {
    /// `dst[i] += src[i]`.
    fn vadd_assign(dst: &mut [Self], src: &[Self]);
    /// `y[i] += alpha * x[i]`.
    fn vaxpy(alpha: Self, x: &[Self], y: &mut [Self]);
    /// `x[i] *= alpha`.
    fn vscale(alpha: Self, x: &mut [Self]);
    /// `out[i] = a[i] * b[i]`.
    fn vmul(a: &[Self], b: &[Self], out: &mut [Self]);
    /// `out[i] = max(x[i], 0)`.
    fn vrelu(x: &[Self], out: &mut [Self]);
    /// `out[i] = if x[i] > 0 { g[i] } else { 0 }`: ReLU's backward.
    fn vrelu_backward(x: &[Self], g: &[Self], out: &mut [Self]);
    /// True when no element is NaN or infinite.
    fn vall_finite(x: &[Self]) -> bool;
}

/// Scalar twins of the SIMD kernels: the reference the tests compare against, and the tails.
pub mod scalar {
    use crate::Float;

    /// `dst[i] += src[i]`.
    pub fn add_assign<T: Float>(dst: &mut [T], src: &[T]) {
        assert_eq!(dst.len(), src.len(), "add_assign lengths");
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
    /// `y[i] += alpha * x[i]`.
    pub fn axpy<T: Float>(alpha: T, x: &[T], y: &mut [T]) {
        assert_eq!(x.len(), y.len(), "axpy lengths");
        for (yi, &xi) in y.iter_mut().zip(x) {
            *yi += alpha * xi;
        }
    }
    /// `x[i] *= alpha`.
    pub fn scale<T: Float>(alpha: T, x: &mut [T]) {
        for xi in x {
            *xi *= alpha;
        }
    }
    /// `out[i] = a[i] * b[i]`.
    pub fn mul<T: Float>(a: &[T], b: &[T], out: &mut [T]) {
        assert!(a.len() == b.len() && a.len() == out.len(), "mul lengths");
        for i in 0..a.len() {
            out[i] = a[i] * b[i];
        }
    }
    /// `out[i] = max(x[i], 0)`.
    pub fn relu<T: Float>(x: &[T], out: &mut [T]) {
        assert_eq!(x.len(), out.len(), "relu lengths");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = if v > T::ZERO { v } else { T::ZERO };
        }
    }
    /// True when no element is NaN or infinite.
    pub fn all_finite<T: Float>(x: &[T]) -> bool {
        x.iter().all(|v| v.is_finite())
    }
    /// `out[i] = if x[i] > 0 { g[i] } else { 0 }`.
    pub fn relu_backward<T: Float>(x: &[T], g: &[T], out: &mut [T]) {
        assert!(
            x.len() == g.len() && x.len() == out.len(),
            "relu_backward lengths"
        );
        for i in 0..x.len() {
            out[i] = if x[i] > T::ZERO { g[i] } else { T::ZERO };
        }
    }
}

// One implementation per lane type. Each kernel walks whole vectors, then hands the tail to
// the scalar twin, so both paths are exercised by every odd length.
macro_rules! impl_simd_scalar {
    ($t:ty, $v:ty, $lanes:expr) => {
        impl SimdScalar for $t {
            fn vadd_assign(dst: &mut [Self], src: &[Self]) {
                assert_eq!(dst.len(), src.len(), "add_assign lengths");
                let split = dst.len() / $lanes * $lanes;
                for (d, s) in dst[..split]
                    .chunks_exact_mut($lanes)
                    .zip(src[..split].chunks_exact($lanes))
                {
                    let r = load::<$t, $v, $lanes>(d) + load::<$t, $v, $lanes>(s);
                    d.copy_from_slice(&r.to_array());
                }
                scalar::add_assign(&mut dst[split..], &src[split..]);
            }
            fn vaxpy(alpha: Self, x: &[Self], y: &mut [Self]) {
                assert_eq!(x.len(), y.len(), "axpy lengths");
                let split = x.len() / $lanes * $lanes;
                let a = <$v>::splat(alpha);
                for (yc, xc) in y[..split]
                    .chunks_exact_mut($lanes)
                    .zip(x[..split].chunks_exact($lanes))
                {
                    let r = load::<$t, $v, $lanes>(yc) + a * load::<$t, $v, $lanes>(xc);
                    yc.copy_from_slice(&r.to_array());
                }
                scalar::axpy(alpha, &x[split..], &mut y[split..]);
            }
            fn vscale(alpha: Self, x: &mut [Self]) {
                let split = x.len() / $lanes * $lanes;
                let a = <$v>::splat(alpha);
                for c in x[..split].chunks_exact_mut($lanes) {
                    let r = load::<$t, $v, $lanes>(c) * a;
                    c.copy_from_slice(&r.to_array());
                }
                scalar::scale(alpha, &mut x[split..]);
            }
            fn vmul(a: &[Self], b: &[Self], out: &mut [Self]) {
                assert!(a.len() == b.len() && a.len() == out.len(), "mul lengths");
                let split = a.len() / $lanes * $lanes;
                for ((o, ac), bc) in out[..split]
                    .chunks_exact_mut($lanes)
                    .zip(a[..split].chunks_exact($lanes))
                    .zip(b[..split].chunks_exact($lanes))
                {
                    let r = load::<$t, $v, $lanes>(ac) * load::<$t, $v, $lanes>(bc);
                    o.copy_from_slice(&r.to_array());
                }
                scalar::mul(&a[split..], &b[split..], &mut out[split..]);
            }
            fn vrelu(x: &[Self], out: &mut [Self]) {
                assert_eq!(x.len(), out.len(), "relu lengths");
                let split = x.len() / $lanes * $lanes;
                let zero = <$v>::splat(0.0);
                for (o, xc) in out[..split]
                    .chunks_exact_mut($lanes)
                    .zip(x[..split].chunks_exact($lanes))
                {
                    let v = load::<$t, $v, $lanes>(xc);
                    let r = v.cmp_gt(zero).blend(v, zero);
                    o.copy_from_slice(&r.to_array());
                }
                scalar::relu(&x[split..], &mut out[split..]);
            }
            fn vrelu_backward(x: &[Self], g: &[Self], out: &mut [Self]) {
                assert!(
                    x.len() == g.len() && x.len() == out.len(),
                    "relu_backward lengths"
                );
                let split = x.len() / $lanes * $lanes;
                let zero = <$v>::splat(0.0);
                for ((o, xc), gc) in out[..split]
                    .chunks_exact_mut($lanes)
                    .zip(x[..split].chunks_exact($lanes))
                    .zip(g[..split].chunks_exact($lanes))
                {
                    let mask = load::<$t, $v, $lanes>(xc).cmp_gt(zero);
                    let r = mask.blend(load::<$t, $v, $lanes>(gc), zero);
                    o.copy_from_slice(&r.to_array());
                }
                scalar::relu_backward(&x[split..], &g[split..], &mut out[split..]);
            }
            fn vall_finite(x: &[Self]) -> bool {
                let split = x.len() / $lanes * $lanes;
                // every lane's flag, and-ed over the vectors: no branch per value
                let mut finite = <$v>::splat(0.0).is_finite();
                for c in x[..split].chunks_exact($lanes) {
                    finite &= load::<$t, $v, $lanes>(c).is_finite();
                }
                finite.all() && scalar::all_finite(&x[split..])
            }
        }
    };
}

/// Loads one full vector from a chunk of exactly `N` elements.
#[inline(always)]
fn load<T: Copy, V: From<[T; N]>, const N: usize>(chunk: &[T]) -> V {
    let arr: [T; N] = chunk.try_into().expect("chunk of exactly one vector");
    V::from(arr)
}

impl_simd_scalar!(f32, f32x8, 8);
impl_simd_scalar!(f64, f64x4, 4);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Float;

    fn values<T: Float>(n: usize, seed: u64) -> Vec<T> {
        // A small LCG gives signed values with a mix of magnitudes, including exact zeros.
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i % 7 == 3 {
                    T::ZERO
                } else {
                    T::from_f64(((s >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 2.0)
                }
            })
            .collect()
    }

    fn lengths() -> Vec<usize> {
        let mut v: Vec<usize> = (0..=17).collect();
        v.extend([31, 33, 63, 65, 127, 1001]);
        v
    }

    fn check_all<T: Float + SimdScalar>() {
        for n in lengths() {
            let x: Vec<T> = values(n, 1);
            let y: Vec<T> = values(n, 2);
            let alpha = T::from_f64(-0.375);

            let (mut a, mut b) = (y.clone(), y.clone());
            T::vadd_assign(&mut a, &x);
            scalar::add_assign(&mut b, &x);
            assert_eq!(a, b, "add_assign n={n}");

            let (mut a, mut b) = (y.clone(), y.clone());
            T::vaxpy(alpha, &x, &mut a);
            scalar::axpy(alpha, &x, &mut b);
            assert_eq!(a, b, "axpy n={n}");

            let (mut a, mut b) = (x.clone(), x.clone());
            T::vscale(alpha, &mut a);
            scalar::scale(alpha, &mut b);
            assert_eq!(a, b, "scale n={n}");

            let (mut a, mut b) = (vec![T::ZERO; n], vec![T::ZERO; n]);
            T::vmul(&x, &y, &mut a);
            scalar::mul(&x, &y, &mut b);
            assert_eq!(a, b, "mul n={n}");

            T::vrelu(&x, &mut a);
            scalar::relu(&x, &mut b);
            assert_eq!(a, b, "relu n={n}");
            assert!(a.iter().all(|&v| v >= T::ZERO));

            T::vrelu_backward(&x, &y, &mut a);
            scalar::relu_backward(&x, &y, &mut b);
            assert_eq!(a, b, "relu_backward n={n}");

            assert!(T::vall_finite(&x), "all_finite n={n}");
            for at in 0..n {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    let mut z = x.clone();
                    z[at] = T::from_f64(bad);
                    assert!(!T::vall_finite(&z), "all_finite n={n}: {bad} at {at}");
                    assert!(!scalar::all_finite(&z));
                }
            }
        }
    }

    #[test]
    fn f32_kernels_match_scalar_twins() {
        check_all::<f32>();
    }

    #[test]
    fn f64_kernels_match_scalar_twins() {
        check_all::<f64>();
    }
}
