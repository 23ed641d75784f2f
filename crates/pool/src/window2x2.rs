//! The fused ReLU + max-pool forward for 2x2 windows at stride 2 (every pool of the study's
//! `deep` network), 16 windows at a time; and the plain max-pool forward of the same windows
//! (where a backward rule records the ReLU apart, as DeepLIFT's rescale rule does).
//!
//! One output row of a plane reads two input rows; a chunk of 16 windows is 32 values of each.
//! The 16 windows go through the four scan steps (top-left, top-right, bottom-left,
//! bottom-right) as plain loops over `[T; 16]` arrays, which the compiler turns into single
//! vector compares and selects inside functions compiled with `#[target_feature(enable =
//! "avx512f,avx2,fma")]` (entered only when the CPU has them; the same code runs unvectorized
//! otherwise). Each lane does exactly the scalar scan's compares in the scalar order, so results
//! are those of the general kernels bit for bit. On x86-64 the AVX2 and AVX-512 tiers run the
//! f32 forward in AVX2 intrinsics instead (`arch/x86_64/forward2x2_avx2.rs`, 8 windows at a
//! time, the same bits), which measured faster than this body on both.
//!
//! The backward of these windows, for f32, is in intrinsics (`arch/x86_64/backward2x2_f32.rs`
//! for AVX-512, `backward2x2_avx2.rs` for AVX2; each input-gradient value written once); a
//! portable vector version written like this forward measured slower than zeroing the plane and
//! scattering, so NEON and the portable tier scatter.

use tensor::cpu::Tier;
use tensor::Float;

use crate::relu_max_pool2d::NO_WINNER;
use crate::Pool2dGeometry;

/// Windows per chunk: the 16 f32 lanes of an AVX-512 register.
const WINDOWS: usize = 16;

/// Input values of one row under a chunk of windows.
const SPAN: usize = 2 * WINDOWS;

/// True when `g` is a 2x2 pooling at stride 2, the windows this module takes.
pub(crate) fn applies(g: &Pool2dGeometry) -> bool {
    g.kernel == 2 && g.stride == 2
}

/// `max_pool2d(relu(x))` of a run of whole consecutive `(H, W)` planes into their outputs and
/// argmax (see [`crate::relu_max_pool2d_forward`]), in the vector code of `tier`'s instructions
/// where it runs the vector kernels.
pub(crate) fn relu_pool_planes<T: Float>(
    tier: Tier,
    g: &Pool2dGeometry,
    planes: &[T],
    out: &mut [T],
    arg: &mut [u32],
) {
    if tier.vector_kernels() {
        crate::arch::relu_pool_planes(tier, g, planes, out, arg);
    } else {
        relu_pool_planes_body(g, planes, out, arg);
    }
}

/// The planes of a run in order, each given the rest of the run (see [`relu_pool_plane_body`]).
#[inline(always)]
pub(crate) fn relu_pool_planes_body<T: Float>(
    g: &Pool2dGeometry,
    planes: &[T],
    out: &mut [T],
    arg: &mut [u32],
) {
    let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
    for p in 0..planes.len() / in_plane {
        let (i, o) = (p * in_plane, p * out_plane);
        relu_pool_plane_body(g, &planes[i..], &mut out[o..], &mut arg[o..]);
    }
}

/// One plane, whose slices start at the plane and run on to the end of the run. Chunks read and
/// write whole vectors wherever the slices allow, beyond the chunk's own windows too: the extra
/// lanes compute garbage that lands only on outputs a later chunk of the plane, or a later plane
/// of the run, overwrites (row-major order), and a whole vector moves without the store-to-load
/// stalls of a vector assembled from single values. Only a run's last chunks pad.
#[inline(always)]
fn relu_pool_plane_body<T: Float>(g: &Pool2dGeometry, plane: &[T], out: &mut [T], arg: &mut [u32]) {
    let w = g.in_w;
    for oh in 0..g.out_h {
        // Plain loops only: an iterator adapter here can be compiled as a separate function
        // outside the target features (it happened with `all`), losing the vector code.
        let mut first_window = 0;
        while first_window < g.out_w {
            let n = WINDOWS.min(g.out_w - first_window);
            let start = 2 * oh * w + 2 * first_window;
            let top = read(plane, start, 2 * n, T::ZERO);
            let bottom = read(plane, start + w, 2 * n, T::ZERO);
            // Fits: the geometry caps a plane at u32::MAX elements.
            let (best, index) = relu_max_of_windows(&top, &bottom, start as u32, w as u32);
            let at = oh * g.out_w + first_window;
            write(out, at, n, &best);
            write(arg, at, n, &index);
            first_window += WINDOWS;
        }
    }
}

/// The maximum after ReLU of each of 16 windows and its in-plane index (`NO_WINNER` when no
/// element is positive). `top`/`bottom`: the windows' two rows; `first`: the in-plane index of
/// `top[0]`; `w`: the plane's width.
#[inline(always)]
fn relu_max_of_windows<T: Float>(
    top: &[T; SPAN],
    bottom: &[T; SPAN],
    first: u32,
    w: u32,
) -> ([T; WINDOWS], [u32; WINDOWS]) {
    let mut best = [T::ZERO; WINDOWS];
    let mut index = [NO_WINNER; WINDOWS];
    // the scalar scan's order: strictly greater, so the first of equal maxima stays
    scan_step(&mut best, &mut index, top, 0, first);
    scan_step(&mut best, &mut index, top, 1, first + 1);
    scan_step(&mut best, &mut index, bottom, 0, first + w);
    scan_step(&mut best, &mut index, bottom, 1, first + w + 1);
    (best, index)
}

/// One scan step: element `column` (0 or 1) of each window's pair in `row`, whose first window
/// starts at in-plane index `at`, replaces the running best when strictly greater.
#[inline(always)]
fn scan_step<T: Float>(
    best: &mut [T; WINDOWS],
    index: &mut [u32; WINDOWS],
    row: &[T; SPAN],
    column: usize,
    at: u32,
) {
    for j in 0..WINDOWS {
        let v = row[2 * j + column];
        let better = v > best[j];
        best[j] = if better { v } else { best[j] };
        // wrapping: a lane past the chunk's windows may name a position past the plane (its
        // result is overwritten later); a real window's index is below the plane's size
        index[j] = if better {
            at.wrapping_add(2 * j as u32)
        } else {
            index[j]
        };
    }
}

/// `max_pool2d(x)` with argmax of a run of whole consecutive `(H, W)` planes (see
/// [`crate::max_pool2d_forward`]), in the vector code of `tier`'s instructions where it runs the
/// vector kernels. A chunk of windows holding a NaN takes the reference scan
/// (`max_pool2d::window_max_reference`) window by window, so NaN windows give exactly its result.
///
/// Its chunk loop repeats [`relu_pool_plane_body`]'s rather than sharing it through a closure:
/// routing these loops through an adapter once compiled them outside the target features.
pub(crate) fn pool_planes<T: Float>(
    tier: Tier,
    g: &Pool2dGeometry,
    planes: &[T],
    out: &mut [T],
    arg: &mut [u32],
) {
    if tier.vector_kernels() {
        crate::arch::pool_planes(tier, g, planes, out, arg);
    } else {
        pool_planes_body(g, planes, out, arg);
    }
}

/// The planes of a run in order, each given the rest of the run, as [`relu_pool_planes_body`].
#[inline(always)]
pub(crate) fn pool_planes_body<T: Float>(
    g: &Pool2dGeometry,
    planes: &[T],
    out: &mut [T],
    arg: &mut [u32],
) {
    let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
    for p in 0..planes.len() / in_plane {
        let (i, o) = (p * in_plane, p * out_plane);
        pool_plane_body(g, &planes[i..], &mut out[o..], &mut arg[o..]);
    }
}

/// One plane of [`pool_planes_body`], whose slices run on to the end of the run (the same
/// whole-vector reads and writes as [`relu_pool_plane_body`]).
#[inline(always)]
fn pool_plane_body<T: Float>(g: &Pool2dGeometry, plane: &[T], out: &mut [T], arg: &mut [u32]) {
    let w = g.in_w;
    for oh in 0..g.out_h {
        let mut first_window = 0;
        while first_window < g.out_w {
            let n = WINDOWS.min(g.out_w - first_window);
            let start = 2 * oh * w + 2 * first_window;
            let top = read(plane, start, 2 * n, T::ZERO);
            let bottom = read(plane, start + w, 2 * n, T::ZERO);
            let at = oh * g.out_w + first_window;
            // Any NaN among the values read (the chunk's or the lanes past it): the chunk's
            // windows take the reference scan, one by one.
            let mut nan = false;
            for j in 0..SPAN {
                nan |= top[j] != top[j] || bottom[j] != bottom[j];
            }
            if nan {
                for k in 0..n {
                    let (value, index) =
                        crate::max_pool2d::window_max_reference(g, plane, oh, first_window + k);
                    out[at + k] = value;
                    arg[at + k] = index as u32;
                }
            } else {
                // Fits: the geometry caps a plane at u32::MAX elements.
                let (best, index) = max_of_windows(&top, &bottom, start as u32, w as u32);
                write(out, at, n, &best);
                write(arg, at, n, &index);
            }
            first_window += WINDOWS;
        }
    }
}

/// The maximum of each of 16 windows without NaN and its in-plane index: the top-left element,
/// then the scalar scan's strict `>` over the other three (the first of equal maxima stays).
#[inline(always)]
fn max_of_windows<T: Float>(
    top: &[T; SPAN],
    bottom: &[T; SPAN],
    first: u32,
    w: u32,
) -> ([T; WINDOWS], [u32; WINDOWS]) {
    let mut best = [T::ZERO; WINDOWS];
    let mut index = [0u32; WINDOWS];
    for j in 0..WINDOWS {
        best[j] = top[2 * j];
        index[j] = first.wrapping_add(2 * j as u32);
    }
    scan_step(&mut best, &mut index, top, 1, first + 1);
    scan_step(&mut best, &mut index, bottom, 0, first + w);
    scan_step(&mut best, &mut index, bottom, 1, first + w + 1);
    (best, index)
}

/// The `N` values of `values` from `start`, or, where fewer remain, the `count` there and
/// `fill` after them.
#[inline(always)]
fn read<V: Copy, const N: usize>(values: &[V], start: usize, count: usize, fill: V) -> [V; N] {
    match values.get(start..start + N) {
        Some(whole) => *<&[V; N]>::try_from(whole).expect("a range of N values"),
        None => padded(&values[start..start + count], fill),
    }
}

/// Writes all of `src` at `start` of `values` or, where fewer than `N` remain, its first `count`.
#[inline(always)]
fn write<V: Copy, const N: usize>(values: &mut [V], start: usize, count: usize, src: &[V; N]) {
    match values.get_mut(start..start + N) {
        Some(whole) => *<&mut [V; N]>::try_from(whole).expect("a range of N values") = *src,
        None => copy_prefix(&mut values[start..start + count], src),
    }
}

/// `values` (at most `N` of them) at the start of an array of `N`, `fill` after them: a whole
/// chunk is one fixed-size copy, a short last chunk a short loop.
#[inline(always)]
fn padded<V: Copy, const N: usize>(values: &[V], fill: V) -> [V; N] {
    if let Ok(whole) = <&[V; N]>::try_from(values) {
        return *whole;
    }
    let mut padded = [fill; N];
    for (d, &s) in padded.iter_mut().zip(values) {
        *d = s;
    }
    padded
}

/// Copies the first `dst.len()` values of `src` into `dst`, without a `memcpy` call for the
/// short rows here.
#[inline(always)]
fn copy_prefix<V: Copy, const N: usize>(dst: &mut [V], src: &[V; N]) {
    if let Ok(whole) = <&mut [V; N]>::try_from(&mut *dst) {
        *whole = *src;
        return;
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::testing::require_tier;

    /// The portable tier's body against each vector tier's instantiation (the same loops
    /// compiled for AVX-512, AVX2 or NEON), bit for bit; a tier the CPU lacks prints a SKIPPED
    /// line.
    #[test]
    fn every_vector_tier_matches_the_portable_kernels_bit_for_bit() {
        const NAME: &str = "every_vector_tier_matches_the_portable_kernels_bit_for_bit";
        for tier in [Tier::Avx512, Tier::Avx2, Tier::Neon] {
            if require_tier(tier, &format!("{NAME} on {tier}")) {
                check_tier(tier);
            }
        }
    }

    fn check_tier(tier: Tier) {
        for (h, w) in [(28, 28), (7, 7), (5, 40), (2, 2), (3, 5), (14, 17)] {
            let g = Pool2dGeometry::new(2, 2, h, w, 2, 2).unwrap();
            // ties, negatives, signed zeros and NaN, none in step with the windows
            let x: Vec<f32> = (0..g.input_len())
                .map(|i| match i % 37 {
                    5 => f32::NAN,
                    11 => -0.0,
                    _ => ((i * 7919 % 23) as f32 - 11.0) / 4.0,
                })
                .collect();
            let (mut out, mut arg) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
            let (mut out_p, mut arg_p) = (out.clone(), arg.clone());
            relu_pool_planes(tier, &g, &x, &mut out, &mut arg);
            relu_pool_planes(Tier::Portable, &g, &x, &mut out_p, &mut arg_p);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!((bits(&out), &arg), (bits(&out_p), &arg_p), "{tier} {h}x{w}");
            pool_planes(tier, &g, &x, &mut out, &mut arg);
            pool_planes(Tier::Portable, &g, &x, &mut out_p, &mut arg_p);
            assert_eq!(
                (bits(&out), &arg),
                (bits(&out_p), &arg_p),
                "plain, {tier} {h}x{w}"
            );
        }
    }

    /// The plain pool's body against the reference scan of every window, bit for bit: ties,
    /// signed zeros, negatives, and NaN windows (which take the scan), at shapes with partial
    /// chunks and odd sides.
    #[test]
    fn the_plain_pool_body_is_the_reference_scan() {
        for (h, w) in [(28, 28), (7, 7), (5, 40), (2, 2), (3, 5), (14, 17), (4, 70)] {
            let g = Pool2dGeometry::new(3, 2, h, w, 2, 2).unwrap();
            for nan_every in [0, 37, 301] {
                let x: Vec<f32> = (0..g.input_len())
                    .map(|i| match i % 41 {
                        _ if nan_every > 0 && i % nan_every == 5 => f32::NAN,
                        11 => -0.0,
                        12 => 0.0,
                        _ => ((i * 7919 % 23) as f32 - 11.0) / 4.0,
                    })
                    .collect();
                let (mut out, mut arg) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
                pool_planes(Tier::Portable, &g, &x, &mut out, &mut arg);
                for p in 0..6 {
                    let plane = &x[p * h * w..(p + 1) * h * w];
                    for oh in 0..g.out_h {
                        for ow in 0..g.out_w {
                            let (v, i) = crate::max_pool2d::window_max_reference(&g, plane, oh, ow);
                            let o = p * g.out_h * g.out_w + oh * g.out_w + ow;
                            assert_eq!(
                                (out[o].to_bits(), arg[o]),
                                (v.to_bits(), i as u32),
                                "{h}x{w} NaN every {nan_every}, plane {p} window ({oh}, {ow})"
                            );
                        }
                    }
                }
            }
        }
    }
}
