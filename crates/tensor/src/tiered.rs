//! [`tiered!`](crate::tiered): one kernel body, compiled once per SIMD tier, behind one safe
//! function that picks the instantiation the [`Tier`](crate::cpu::Tier) and the CPU allow.
//!
//! The kernels are plain Rust over fixed-size arrays, written once. What makes them vector code
//! is the instruction set they are compiled for: inside a `#[target_feature(enable =
//! "avx512f,avx2,fma")]` function a `[f32; 16]` is one register, inside an `avx2,fma` one two
//! registers. On aarch64 NEON is the baseline, so the body compiled as is is the NEON
//! instantiation. Calling a `#[target_feature]` function is `unsafe` (the CPU must have the
//! features); the macro puts that call, and its one check, in the safe function it defines, and
//! crates invoke it only in their `arch` module, the one place their `unsafe` lives.

/// Defines `$vis fn $name<..>(tier: Tier, args..) -> R` that runs `avx512 => expr` compiled
/// for AVX-512F + AVX2 + FMA when `tier.avx512()`, `avx2 => expr` compiled for AVX2 + FMA when
/// `tier.avx2_fma()`, and `other => expr` (plain code: NEON on aarch64, baseline elsewhere)
/// otherwise. The expressions use the arguments by name.
///
/// ```
/// tensor::tiered! {
///     /// Sum of squares.
///     pub fn square_sum(x: &[f32]) -> f32 {
///         avx512 => x.iter().map(|v| v * v).sum(),
///         avx2 => x.iter().map(|v| v * v).sum(),
///         other => x.iter().map(|v| v * v).sum(),
///     }
/// }
/// assert_eq!(square_sum(tensor::cpu::tier(), &[1.0, 2.0]), 5.0);
/// ```
#[macro_export]
macro_rules! tiered {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident $(<$($gen:ident : $bound:path),* $(,)?>)? ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? {
            avx512 => $avx512:expr,
            avx2 => $avx2:expr,
            other => $other:expr $(,)?
        }
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name $(<$($gen: $bound),*>)? (tier: $crate::cpu::Tier, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn on_avx512 $(<$($gen: $bound),*>)? ($($arg: $ty),*) $(-> $ret)? { $avx512 }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn on_avx2 $(<$($gen: $bound),*>)? ($($arg: $ty),*) $(-> $ret)? { $avx2 }
                if tier.avx512() {
                    // SAFETY: `Tier::avx512` checked that this CPU has AVX-512F, AVX2 and FMA.
                    return unsafe { on_avx512 $(::<$($gen),*>)? ($($arg),*) };
                }
                if tier.avx2_fma() {
                    // SAFETY: `Tier::avx2_fma` checked that this CPU has AVX2 and FMA.
                    return unsafe { on_avx2 $(::<$($gen),*>)? ($($arg),*) };
                }
            }
            let _ = tier;
            $other
        }
    };
}
