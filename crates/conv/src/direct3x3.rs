//! Direct 3x3 "same" convolutions (stride 1, padding 1) without im2col, on AVX-512.
//!
//! The `deep` network's conv1..conv3 (28x28, 14x14 and 7x7 maps, 16 output channels) spent a
//! quarter of a training step writing and reading im2col matrices, which hold every input value
//! 9 times. Here the input is copied once into a zero-bordered buffer (each row padded to whole
//! vectors), and the kernels read their 9 taps from it directly, with 16 output columns of one
//! row in each vector:
//!
//! - forward: a tile is one image, 16 output channels, one row and 16 columns: 16 accumulators
//!   (one per channel) each add, for every input channel and tap, the shifted input vector
//!   times that channel's weight (a broadcast from a copy of the weight in blocks of 16 output
//!   channels, which is small); a last block of fewer than 16 channels is done one at a time;
//! - input gradient: the forward applied to the zero-bordered output gradient with the weight
//!   flipped and its channel axes swapped (the adjoint of a same convolution is one); with one
//!   input channel (`deep`'s conv1, for attribution), the output gradient is instead mixed into 9
//!   tap planes and those summed shifted;
//! - weight gradient: with the output gradient copied channels-last, for one input channel and
//!   16 output channels (the lanes), 9 accumulators (one per tap) add, over every image and
//!   pixel, the output-gradient vector times the input value the tap reads there.
//!
//! Every output element is summed by one task in an order fixed by the geometry, so the passes
//! are bitwise the same for any thread count. As in [`crate::direct2x2`], the loops are plain
//! Rust over [`Lanes`], compiled for AVX-512 with the taps spelled out by a macro.

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use tensor::f32_view::{as_f32, as_f32_mut};
use tensor::Float;

use crate::blocks::min_items;
use tensor::cpu::Tier;

use crate::lanes::{fma_lanes, lanes_at, Lanes, LANES};
#[cfg(target_arch = "x86_64")]
use crate::layout_f32::{bordered_plane, channels_last_image};
#[cfg(target_arch = "x86_64")]
use crate::tile3x3_f32::{forward_block, BorderedShape};
use crate::Conv2dGeometry;

/// Output channels per forward tile: one accumulator vector each.
const CHANNEL_BLOCK: usize = 16;

/// Runs `$body` for the 9 taps with `$dy`, `$dx` and `$t = 3 * $dy + $dx` bound to literals, so
/// the loads' offsets are constants.
macro_rules! for_each_tap {
    (|$dy:ident, $dx:ident, $t:ident| $body:block) => {
        for_each_tap!(@expand $dy $dx $t $body;
            (0, 0, 0) (0, 1, 1) (0, 2, 2) (1, 0, 3) (1, 1, 4) (1, 2, 5) (2, 0, 6) (2, 1, 7) (2, 2, 8))
    };
    (@expand $dy:ident $dx:ident $t:ident $body:block; $(($dyv:literal, $dxv:literal, $tv:literal))*) => {
        $({
            let ($dy, $dx, $t): (usize, usize, usize) = ($dyv, $dxv, $tv);
            $body
        })*
    };
}

/// Runs `$body` for the 16 channels of a block with `$o` bound to a literal: as a loop, the
/// compiler vectorized across the channels (with gathers and scatters) instead of the lanes.
macro_rules! for_each_channel {
    (|$o:ident| $body:block) => {
        for_each_channel!(@expand $o $body; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    };
    (@expand $o:ident $body:block; $($ov:literal)*) => {
        $({
            let $o: usize = $ov;
            $body
        })*
    };
}

/// The shape of a same convolution's operands on this path.
#[derive(Clone, Copy)]
struct Same {
    n: usize,
    h: usize,
    w: usize,
    /// Vectors per row, `ceil(W / 16)`.
    vectors: usize,
}

impl Same {
    fn of(g: &Conv2dGeometry) -> Self {
        Self {
            n: g.batch,
            h: g.in_h,
            w: g.in_w,
            vectors: g.in_w.div_ceil(LANES),
        }
    }

    /// Row length of the zero-bordered buffer: a border column, whole vectors, and the border
    /// column after them (the shifted loads of the last vector reach it).
    fn padded_w(&self) -> usize {
        self.vectors * LANES + 2
    }

    /// One channel's zero-bordered plane: `(H + 2) x padded_w`.
    fn padded_plane(&self) -> usize {
        (self.h + 2) * self.padded_w()
    }

    /// The shape in the f32 kernels' terms.
    #[cfg(target_arch = "x86_64")]
    fn bordered(&self) -> BorderedShape {
        BorderedShape {
            h: self.h,
            w: self.w,
            vectors: self.vectors,
            pw: self.padded_w(),
            pplane: self.padded_plane(),
        }
    }
}

/// True when the convolution takes this path: a same 3x3 convolution on a map larger than 3x3
/// (smaller ones take [`crate::unrolled`]), and a tier that runs AVX-512 (AVX-512F, AVX2, FMA).
/// Any channel counts: a last block of fewer than 16 channels is computed one channel at a time.
pub(crate) fn applies(g: &Conv2dGeometry, tier: Tier) -> bool {
    let same = g.kernel == 3 && g.stride == 1 && g.padding == 1;
    let fits = g
        .input_len()
        .checked_add(g.output_len())
        .and_then(|l| l.checked_mul(4))
        .is_some();
    same && g.in_h * g.in_w > 9 && fits && tier.avx512()
}

/// `channels` rounded up to whole blocks of 16.
fn padded_channels(channels: usize) -> usize {
    channels.next_multiple_of(CHANNEL_BLOCK)
}

/// Workspace elements any pass needs: a zero-bordered activation and a weight-sized copy, or
/// the weight gradient's zero-bordered input and channels-last output gradient.
pub(crate) fn workspace_len(g: &Conv2dGeometry) -> usize {
    let s = Same::of(g);
    let (c, cout) = (g.in_channels, g.out_channels);
    let blocked_weight = padded_channels(c.max(cout)) * c.max(cout) * 9;
    let bordered = s.n * c.max(cout) * s.padded_plane() + blocked_weight;
    let weight_pass = s.n * (c * s.padded_plane() + s.h * s.w * padded_channels(cout));
    let one_channel_input = s.n * 9 * s.padded_plane();
    bordered.max(weight_pass).max(one_channel_input)
}

/// NCHW `src` (`channels` planes of `H x W` per image) into `dst` with a zero border and rows
/// of [`Same::padded_w`].
fn to_bordered<T: Float>(s: &Same, src: &[T], dst: &mut [T]) {
    let (pw, plane) = (s.padded_w(), s.h * s.w);
    dst.par_chunks_mut(s.padded_plane())
        .zip(src.par_chunks(plane))
        .with_min_len(min_items(s.padded_plane()))
        .for_each(|(out, input)| {
            #[cfg(target_arch = "x86_64")]
            if let (Some(input), Some(out)) = (as_f32(input), as_f32_mut(out)) {
                // SAFETY: the direct kernels run only where the CPU has AVX-512F (`applies`).
                return unsafe { bordered_plane(input, out, s.w, s.vectors) };
            }
            out[..pw].fill(T::ZERO);
            out[(s.h + 1) * pw..].fill(T::ZERO);
            for (row, src_row) in out[pw..].chunks_exact_mut(pw).zip(input.chunks_exact(s.w)) {
                // element by element, as in `same_conv`'s stores: rows are short
                row[0] = T::ZERO;
                for (d, &v) in row[1..=s.w].iter_mut().zip(src_row) {
                    *d = v;
                }
                for d in &mut row[s.w + 1..] {
                    *d = T::ZERO;
                }
            }
        });
}

/// One forward tile: 16 channels' accumulators for the 16 columns from `x0` of row `y` of one
/// image (`image`: its zero-bordered planes), `weights` the block's `(C, 9, 16)` weights.
#[inline(always)]
fn forward_tile<T: Float>(
    s: &Same,
    image: &[T],
    weights: &[T],
    bias: &Lanes<T>,
    y: usize,
    x0: usize,
) -> [Lanes<T>; CHANNEL_BLOCK] {
    let (pw, plane) = (s.padded_w(), s.padded_plane());
    let mut acc: [Lanes<T>; CHANNEL_BLOCK] = std::array::from_fn(|o| [bias[o]; LANES]);
    for (ci, w) in weights.chunks_exact(9 * CHANNEL_BLOCK).enumerate() {
        let base = ci * plane + y * pw + x0;
        for_each_tap!(|dy, dx, t| {
            let x = lanes_at(image, base + dy * pw + dx);
            let wt: &[T; CHANNEL_BLOCK] = w[t * CHANNEL_BLOCK..][..CHANNEL_BLOCK]
                .try_into()
                .expect("a block of weights");
            for_each_channel!(|o| {
                fma_lanes(&mut acc[o], &x, wt[o]);
            });
        });
    }
    acc
}

/// [`forward_tile`] for channel `o` of the block alone (a last block of fewer than 16).
#[inline(always)]
fn forward_tile_one<T: Float>(
    s: &Same,
    image: &[T],
    weights: &[T],
    (o, bias): (usize, T),
    y: usize,
    x0: usize,
) -> Lanes<T> {
    let (pw, plane) = (s.padded_w(), s.padded_plane());
    let mut acc = [bias; LANES];
    for (ci, w) in weights.chunks_exact(9 * CHANNEL_BLOCK).enumerate() {
        let base = ci * plane + y * pw + x0;
        for_each_tap!(|dy, dx, t| {
            let x = lanes_at(image, base + dy * pw + dx);
            fma_lanes(&mut acc, &x, w[t * CHANNEL_BLOCK + o]);
        });
    }
    acc
}

/// One weight-gradient tile: for input channel `ci` and the 16 output channels of block
/// `block` (the lanes), the 9 taps' sums over every image and pixel of the output gradient
/// (`dyh`, channels last: `(N, H, W, Cout)`) times the input pixel the tap reads (`xb`, the
/// zero-bordered input).
#[inline(always)]
fn weight_tile<T: Float>(
    s: &Same,
    dyh: &[T],
    xb: &[T],
    (ci, block): (usize, usize),
    (cout, c): (usize, usize),
) -> [Lanes<T>; 9] {
    let (pw, plane) = (s.padded_w(), s.padded_plane());
    let mut acc = [[T::ZERO; LANES]; 9];
    for ni in 0..s.n {
        let x_plane = &xb[(ni * c + ci) * plane..][..plane];
        let dy_image = &dyh[ni * s.h * s.w * cout..][..s.h * s.w * cout];
        for y in 0..s.h {
            for x in 0..s.w {
                let d = lanes_at(dy_image, (y * s.w + x) * cout + block * LANES);
                let window = &x_plane[y * pw + x..][..2 * pw + 3];
                for_each_tap!(|dyo, dxo, t| {
                    fma_lanes(&mut acc[t], &d, window[dyo * pw + dxo]);
                });
            }
        }
    }
    acc
}

/// One task of [`same_conv`]: every row of one image's block of output channels (`out_block`,
/// whole `H x W` planes), tiles and stores both in AVX-512 code. Returned by value to a caller
/// outside it, a tile's 256 values went through the stack and were copied one by one, which cost
/// more than the arithmetic for a one-input-channel layer (`deep`'s conv1).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn forward_block_simd<T: Float>(
    s: &Same,
    image: &[T],
    weights: &[T],
    bias: &Lanes<T>,
    out_block: &mut [T],
) {
    forward_block_body(s, image, weights, bias, out_block)
}

/// [`forward_block_simd`]'s loops, for any target: inlined into it on x86-64.
#[inline(always)]
fn forward_block_body<T: Float>(
    s: &Same,
    image: &[T],
    weights: &[T],
    bias: &Lanes<T>,
    out_block: &mut [T],
) {
    let plane = s.h * s.w;
    let channels = out_block.len() / plane;
    for y in 0..s.h {
        for v in 0..s.vectors {
            let x0 = v * LANES;
            let at = y * s.w + x0;
            if channels == CHANNEL_BLOCK {
                let acc = forward_tile(s, image, weights, bias, y, x0);
                for (o, lanes) in acc.iter().enumerate() {
                    store_row(
                        &mut out_block[o * plane..(o + 1) * plane],
                        at,
                        s.w - x0,
                        lanes,
                    );
                }
            } else {
                for (o, &b) in bias.iter().enumerate().take(channels) {
                    let lanes = forward_tile_one(s, image, weights, (o, b), y, x0);
                    store_row(
                        &mut out_block[o * plane..(o + 1) * plane],
                        at,
                        s.w - x0,
                        &lanes,
                    );
                }
            }
        }
    }
}

/// Writes a tile row's values for columns `at..` of one output `plane` (`rest`: the columns
/// left in the row, the first `min(rest, 16)` lanes being valid). Where the plane has room, all
/// 16 lanes go in one store: the extra ones land on the next rows' first columns, which their
/// own tiles write later (rows go in order within a task); the plane's last row stores only its
/// valid values, one by one (a `copy_from_slice` of 7 or 14 values is a `memmove` call).
#[inline(always)]
fn store_row<T: Float>(plane: &mut [T], at: usize, rest: usize, lanes: &Lanes<T>) {
    if let Some(whole) = plane.get_mut(at..at + LANES) {
        *<&mut Lanes<T>>::try_from(whole).expect("a range of LANES values") = *lanes;
    } else {
        for (d, &v) in plane[at..at + rest.min(LANES)].iter_mut().zip(lanes) {
            *d = v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn weight_tile_simd<T: Float>(
    s: &Same,
    dyh: &[T],
    xb: &[T],
    channels: (usize, usize),
    counts: (usize, usize),
) -> [Lanes<T>; 9] {
    weight_tile(s, dyh, xb, channels, counts)
}

/// `out` (NCHW, `cout` channels) = the same 3x3 convolution of the zero-bordered `xb` (`c`
/// channels) with `weights` in blocks `(ceil(Cout/16), C, 9, 16)` (zero past `cout`), plus
/// `bias`. One task per image and block of 16 output channels.
fn same_conv<T: Float>(
    s: &Same,
    (c, cout): (usize, usize),
    xb: &[T],
    weights: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    let plane = s.h * s.w;
    let bias_of = |o: usize| bias.map_or(T::ZERO, |b| b[o]);
    out.par_chunks_mut(cout * plane)
        .enumerate()
        .for_each(|(ni, image_out)| {
            let image = &xb[ni * c * s.padded_plane()..][..c * s.padded_plane()];
            image_out
                .par_chunks_mut(CHANNEL_BLOCK * plane)
                .enumerate()
                .for_each(|(block, out_block)| {
                    let w = &weights[block * c * 9 * CHANNEL_BLOCK..][..c * 9 * CHANNEL_BLOCK];
                    let first = block * CHANNEL_BLOCK;
                    let channels = out_block.len() / plane;
                    let bias: Lanes<T> = std::array::from_fn(|o| {
                        if o < channels {
                            bias_of(first + o)
                        } else {
                            T::ZERO
                        }
                    });
                    #[cfg(target_arch = "x86_64")]
                    {
                        let f32_operands = (as_f32(image), as_f32(w), as_f32(&bias));
                        match (f32_operands, as_f32_mut(out_block)) {
                            ((Some(image), Some(w), Some(bias)), Some(out_block)) => {
                                let bias = bias.try_into().expect("16 biases");
                                // SAFETY: `applies` checked that the CPU has AVX-512F.
                                unsafe {
                                    forward_block(s.bordered(), c, image, w, bias, out_block)
                                };
                            }
                            // SAFETY: `applies` checked that the CPU has AVX-512F, AVX2 and FMA.
                            _ => unsafe { forward_block_simd(s, image, w, &bias, out_block) },
                        }
                    }
                    // Off x86-64 `applies` is false; were the path taken, the same loops
                    // would run as is.
                    #[cfg(not(target_arch = "x86_64"))]
                    forward_block_body(s, image, w, &bias, out_block);
                });
        });
}

/// Elements of the zero-bordered input: what [`forward_bordering`] leaves for
/// [`backward_weight_bordered`].
pub(crate) fn bordered_input_len(g: &Conv2dGeometry) -> usize {
    g.batch * g.in_channels * Same::of(g).padded_plane()
}

/// Forward; see [`crate::conv2d_forward`]. `workspace` holds [`workspace_len`] elements.
pub(crate) fn forward<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    workspace: &mut [T],
) {
    let (xb, rest) = workspace.split_at_mut(bordered_input_len(g));
    forward_bordering(g, input, weight, bias, output, xb, rest);
}

/// Forward that writes the zero-bordered input into `xb` ([`bordered_input_len`] elements),
/// where the weight gradient can read it again; `workspace` holds the blocked weights.
pub(crate) fn forward_bordering<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    xb: &mut [T],
    workspace: &mut [T],
) {
    let (s, c, cout) = (Same::of(g), g.in_channels, g.out_channels);
    let wt = &mut workspace[..padded_channels(cout) * c * 9];
    to_bordered(&s, input, xb);
    // wt: (ceil(Cout/16), C, 9, 16), wt[block][ci][t][o] = W[block * 16 + o][ci][t], zero past Cout
    wt.par_chunks_mut(c * 9 * CHANNEL_BLOCK)
        .enumerate()
        .for_each(|(block, dst)| {
            let block_weights = |ci: usize, t: usize, o: usize| {
                let o = block * CHANNEL_BLOCK + o;
                if o < cout {
                    weight[(o * c + ci) * 9 + t]
                } else {
                    T::ZERO
                }
            };
            fill_blocked(dst, block_weights);
        });
    same_conv(&s, (c, cout), xb, wt, bias, output);
}

/// Fills one block of blocked weights, `(rows, 9, 16)`, with `value(row, tap, lane)` in
/// order: nested loops, where an index split by division and remainder per element cost
/// more than the copy (1.4 % of a `deep` batch-16 step).
fn fill_blocked<T: Float>(dst: &mut [T], value: impl Fn(usize, usize, usize) -> T) {
    for (row, taps) in dst.chunks_exact_mut(9 * CHANNEL_BLOCK).enumerate() {
        for (t, lanes) in taps.chunks_exact_mut(CHANNEL_BLOCK).enumerate() {
            for (lane, d) in lanes.iter_mut().enumerate() {
                *d = value(row, t, lane);
            }
        }
    }
}

/// Input gradient; see [`crate::conv2d_backward_input`]: the forward of the output gradient
/// with `W'[c][o][t] = W[o][c][8 - t]`.
pub(crate) fn backward_input<T: Float>(
    g: &Conv2dGeometry,
    weight: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    workspace: &mut [T],
) {
    let (s, c, cout) = (Same::of(g), g.in_channels, g.out_channels);
    if c == 1 {
        return backward_input_one_channel(&s, cout, weight, grad_output, grad_input, workspace);
    }
    let (dyb, rest) = workspace.split_at_mut(s.n * cout * s.padded_plane());
    let wt = &mut rest[..padded_channels(c) * cout * 9];
    to_bordered(&s, grad_output, dyb);
    // wt: (ceil(C/16), Cout, 9, 16), wt[block][o][t][i] = W[o][block * 16 + i][8 - t], zero past C
    wt.par_chunks_mut(cout * 9 * CHANNEL_BLOCK)
        .enumerate()
        .for_each(|(block, dst)| {
            let block_weights = |o: usize, t: usize, i: usize| {
                let i = block * CHANNEL_BLOCK + i;
                if i < c {
                    weight[(o * c + i) * 9 + (8 - t)]
                } else {
                    T::ZERO
                }
            };
            fill_blocked(dst, block_weights);
        });
    same_conv(&s, (cout, c), dyb, wt, None, grad_input);
}

/// The input gradient of a convolution with one input channel (`deep`'s conv1, for attribution):
/// the generic path would border all `Cout` planes of the output gradient to produce one plane.
/// Instead, per image, the output gradient is first mixed into one plane per tap,
/// `Z_t = sum over o of W[o][0][t] * dY_o` (read once, in place, 9 accumulators per vector),
/// and then `dX[y][x] = sum over t = (dy, dx) of Z_t[y + 1 - dy][x + 1 - dx]` from the
/// zero-bordered `Z` planes. One task per image; each value is summed in a fixed order.
fn backward_input_one_channel<T: Float>(
    s: &Same,
    cout: usize,
    weight: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    workspace: &mut [T],
) {
    let (plane, zplanes) = (s.h * s.w, 9 * s.padded_plane());
    let z = &mut workspace[..s.n * zplanes];
    z.par_chunks_mut(zplanes)
        .zip(grad_output.par_chunks(cout * plane))
        .zip(grad_input.par_chunks_mut(plane))
        .for_each(|((zb, dy), dx)| {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `applies` checked that the CPU has AVX-512F, AVX2 and FMA.
            unsafe {
                one_channel_image_simd(s, cout, weight, dy, zb, dx)
            };
            #[cfg(not(target_arch = "x86_64"))]
            one_channel_image(s, cout, weight, dy, zb, dx);
        });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn one_channel_image_simd<T: Float>(
    s: &Same,
    cout: usize,
    weight: &[T],
    dy: &[T],
    zb: &mut [T],
    dx: &mut [T],
) {
    one_channel_image(s, cout, weight, dy, zb, dx)
}

/// [`backward_input_one_channel`] for one image: `dy` its `Cout` planes, `zb` the 9 bordered
/// `Z` planes (scratch), `dx` its input-gradient plane.
#[inline(always)]
fn one_channel_image<T: Float>(
    s: &Same,
    cout: usize,
    weight: &[T],
    dy: &[T],
    zb: &mut [T],
    dx: &mut [T],
) {
    let (pw, pplane, plane) = (s.padded_w(), s.padded_plane(), s.h * s.w);
    zb.fill(T::ZERO);
    for y in 0..s.h {
        for v in 0..s.vectors {
            let x0 = v * LANES;
            let valid = LANES.min(s.w - x0);
            let mut acc = [[T::ZERO; LANES]; 9];
            for (o, filter) in weight.chunks_exact(9).enumerate().take(cout) {
                // lanes past `valid` (the next row's values) only reach lanes never stored
                let at = o * plane + y * s.w + x0;
                let d = if at + LANES <= dy.len() {
                    lanes_at(dy, at)
                } else {
                    let mut d = [T::ZERO; LANES];
                    d[..valid].copy_from_slice(&dy[at..at + valid]);
                    d
                };
                for_each_tap!(|ty, tx, t| {
                    let _ = (ty, tx);
                    fma_lanes(&mut acc[t], &d, filter[t]);
                });
            }
            for (t, lanes) in acc.iter().enumerate() {
                let at = t * pplane + (y + 1) * pw + 1 + x0;
                for (d, &v) in zb[at..at + valid].iter_mut().zip(lanes) {
                    *d = v;
                }
            }
        }
    }
    for y in 0..s.h {
        for v in 0..s.vectors {
            let x0 = v * LANES;
            let mut acc = [T::ZERO; LANES];
            for_each_tap!(|ty, tx, t| {
                let z = lanes_at(zb, t * pplane + (y + 2 - ty) * pw + x0 + 2 - tx);
                for (a, &zv) in acc.iter_mut().zip(&z) {
                    *a += zv;
                }
            });
            let valid = LANES.min(s.w - x0);
            for (d, &v) in dx[y * s.w + x0..][..valid].iter_mut().zip(&acc) {
                *d = v;
            }
        }
    }
}

/// Weight gradient; see [`crate::conv2d_backward_weight`].
pub(crate) fn backward_weight<T: Float>(
    g: &Conv2dGeometry,
    input: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    workspace: &mut [T],
) {
    let (xb, rest) = workspace.split_at_mut(bordered_input_len(g));
    to_bordered(&Same::of(g), input, xb);
    backward_weight_bordered(g, xb, grad_output, grad_weight, rest);
}

/// Weight gradient from the zero-bordered input `xb` that [`forward_bordering`] wrote;
/// `workspace` holds the channels-last output gradient.
pub(crate) fn backward_weight_bordered<T: Float>(
    g: &Conv2dGeometry,
    xb: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    workspace: &mut [T],
) {
    let (s, c, cout) = (Same::of(g), g.in_channels, g.out_channels);
    let cpad = padded_channels(cout);
    let pixels = s.h * s.w;
    let dyh = &mut workspace[..s.n * pixels * cpad];
    // dyh: the output gradient channels last, (N, H, W, ceil(Cout/16) * 16), zero past Cout
    dyh.par_chunks_mut(pixels * cpad)
        .zip(grad_output.par_chunks(cout * pixels))
        .for_each(|(dst, src)| {
            #[cfg(target_arch = "x86_64")]
            if let (Some(src), Some(dst)) = (as_f32(src), as_f32_mut(dst)) {
                // SAFETY: the direct kernels run only where the CPU has AVX-512F (`applies`).
                return unsafe { channels_last_image(src, dst, cout, pixels, cpad) };
            }
            if cpad > cout {
                dst.fill(T::ZERO);
            }
            // plane by plane: contiguous reads, writes 16 apart within a buffer that stays in cache
            for (o, plane) in src.chunks_exact(pixels).enumerate() {
                for (d, &v) in dst[o..].iter_mut().step_by(cpad).zip(plane) {
                    *d = v;
                }
            }
        });
    let dyh = &*dyh;
    // one task per (input channel, block of 16 output channels); dW[o][ci][t] for its 16 o
    let blocks = cpad / LANES;
    let sums: Vec<[Lanes<T>; 9]> = (0..c * blocks)
        .into_par_iter()
        .map(|task| {
            let channels = (task / blocks, task % blocks);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `applies` checked that the CPU has AVX-512F, AVX2 and FMA.
            return unsafe { weight_tile_simd(&s, dyh, xb, channels, (cpad, c)) };
            #[cfg(not(target_arch = "x86_64"))]
            weight_tile(&s, dyh, xb, channels, (cpad, c))
        })
        .collect();
    grad_weight
        .par_chunks_mut(c * 9)
        .enumerate()
        .for_each(|(o, filter)| {
            let (block, lane) = (o / LANES, o % LANES);
            for (ci, taps) in filter.chunks_exact_mut(9).enumerate() {
                let acc = &sums[ci * blocks + block];
                for (t, d) in taps.iter_mut().enumerate() {
                    *d = acc[t][lane];
                }
            }
        });
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "x86_64")]
    use super::*;
    #[cfg(target_arch = "x86_64")]
    use crate::test_util::random_vec;

    /// The f32 intrinsics tile against the generic tile on f32, bit for bit: full and partial
    /// channel blocks, rows of one, two and three vectors (full and partial), one and several
    /// input channels.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_f32_intrinsics_block_matches_the_generic_block_bit_for_bit_needs_avx512() {
        const NAME: &str =
            "the_f32_intrinsics_block_matches_the_generic_block_bit_for_bit_needs_avx512";
        if !tensor::testing::require_tier(Tier::Avx512, NAME) {
            return;
        }
        for (n, c, side, channels) in [
            (1, 1, 28, 16),
            (2, 16, 14, 16),
            (1, 16, 7, 9),
            (1, 3, 33, 16),
            (1, 2, 16, 1),
        ] {
            let g = Conv2dGeometry::new(n, c, side, side, channels, 3, 1, 1).expect("geometry");
            let s = Same::of(&g);
            let f = |len, seed| -> Vec<f32> {
                random_vec(len, seed)
                    .into_iter()
                    .map(|v| v as f32)
                    .collect()
            };
            let image = f(c * s.padded_plane(), 1);
            let weights = f(c * 9 * CHANNEL_BLOCK, 2);
            let bias: [f32; CHANNEL_BLOCK] = f(CHANNEL_BLOCK, 3).try_into().expect("16 values");
            let plane = side * side;
            let mut generic = vec![f32::NAN; channels * plane];
            let mut intrinsics = vec![f32::NAN; channels * plane];
            // SAFETY: the CPU has AVX-512F, AVX2 and FMA (`require_tier`).
            unsafe {
                forward_block_simd(&s, &image, &weights, &bias, &mut generic);
                forward_block(s.bordered(), c, &image, &weights, &bias, &mut intrinsics);
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&generic),
                bits(&intrinsics),
                "c {c}, side {side}, channels {channels}"
            );
            assert!(
                intrinsics.iter().all(|v| v.is_finite()),
                "every output written"
            );
        }
    }

    #[test]
    fn the_tap_macro_lists_the_9_taps_in_order() {
        let mut listed = Vec::new();
        for_each_tap!(|dy, dx, t| {
            listed.push((dy, dx, t));
        });
        let want: Vec<_> = (0..9).map(|t| (t / 3, t % 3, t)).collect();
        assert_eq!(listed, want);
    }
}
