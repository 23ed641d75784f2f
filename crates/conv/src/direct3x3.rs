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

use tensor::cpu::Tier;
use tensor::Float;

use crate::arch;
#[cfg(target_arch = "x86_64")]
use crate::arch::BorderedShape;
use crate::blocks::min_items;
use crate::lanes::{fma_lanes, lanes_at, Lanes, LANES};
use crate::Conv2dGeometry;

/// Output channels per forward tile: one accumulator vector each.
const CHANNEL_BLOCK: usize = 16;

/// Output channels per forward tile where registers are fewer (AVX2's 16, NEON's 32 of a
/// quarter of AVX-512's width): 4 channels of 16 lanes are 8 AVX2 or 16 NEON registers.
const CHANNEL_PART: usize = 4;

/// Lanes per weight-gradient tile where registers are fewer: 9 taps of 8 lanes are 9 AVX2
/// registers (of 16 lanes, 18 would spill).
const WEIGHT_LANES: usize = 8;

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
pub(crate) struct Same {
    pub(crate) n: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    /// Vectors per row, `ceil(W / 16)`.
    pub(crate) vectors: usize,
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
    pub(crate) fn bordered(&self) -> BorderedShape {
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
/// (smaller ones take [`crate::unrolled`]), and a tier that runs the vector kernels (AVX-512,
/// AVX2 + FMA or NEON; the portable tier takes im2col + GEMM). Any channel counts: a last block of fewer than 16 channels is computed one channel at a time.
pub(crate) fn applies(g: &Conv2dGeometry, tier: Tier) -> bool {
    let same = g.kernel == 3 && g.stride == 1 && g.padding == 1;
    let fits = g
        .input_len()
        .checked_add(g.output_len())
        .and_then(|l| l.checked_mul(4))
        .is_some();
    same && g.in_h * g.in_w > 9 && fits && tier.vector_kernels()
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
/// of [`Same::padded_w`], on `tier`.
fn to_bordered<T: Float>(tier: Tier, s: &Same, src: &[T], dst: &mut [T]) {
    dst.par_chunks_mut(s.padded_plane())
        .zip(src.par_chunks(s.h * s.w))
        .with_min_len(min_items(s.padded_plane()))
        .for_each(|(out, input)| arch::bordered_plane(tier, s, input, out));
}

/// One plane `input` into its zero-bordered rows `out` (see [`to_bordered`]).
#[inline(always)]
pub(crate) fn bordered_plane_body<T: Float>(s: &Same, input: &[T], out: &mut [T]) {
    let pw = s.padded_w();
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
}

/// One forward tile: 16 channels' accumulators for the 16 columns from `x0` of row `y` of one
/// image (`image`: its zero-bordered planes), `weights` the block's `(C, 9, 16)` weights.
#[inline(always)]
// The AVX-512 tier's body: other targets run the tiles in parts.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
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
// The AVX-512 tier's body: other targets run the tiles in parts.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
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

/// [`forward_tile`] for the [`CHANNEL_PART`] channels from `first` of the block: the same
/// operations on each channel's accumulator, in the same order.
#[inline(always)]
fn forward_tile_part<T: Float>(
    s: &Same,
    image: &[T],
    weights: &[T],
    (first, bias): (usize, &Lanes<T>),
    y: usize,
    x0: usize,
) -> [Lanes<T>; CHANNEL_PART] {
    let (pw, plane) = (s.padded_w(), s.padded_plane());
    let mut acc: [Lanes<T>; CHANNEL_PART] = std::array::from_fn(|o| [bias[first + o]; LANES]);
    for (ci, w) in weights.chunks_exact(9 * CHANNEL_BLOCK).enumerate() {
        let base = ci * plane + y * pw + x0;
        for_each_tap!(|dy, dx, t| {
            let x = lanes_at(image, base + dy * pw + dx);
            let wt: &[T; CHANNEL_PART] = w[t * CHANNEL_BLOCK + first..][..CHANNEL_PART]
                .try_into()
                .expect("a part of the weights");
            for (a, &wo) in acc.iter_mut().zip(wt) {
                fma_lanes(a, &x, wo);
            }
        });
    }
    acc
}

/// One weight-gradient tile: for input channel `ci` and the `N` output channels from lane
/// `first` of block `block` (the lanes), the 9 taps' sums over every image and pixel of the
/// output gradient (`dyh`, channels last: `(N, H, W, Cout)`) times the input pixel the tap
/// reads (`xb`, the zero-bordered input). Each lane's sum runs in the same order whatever `N`.
#[inline(always)]
fn weight_tile_lanes<T: Float, const N: usize>(
    s: &Same,
    dyh: &[T],
    xb: &[T],
    (ci, block, first): (usize, usize, usize),
    (cout, c): (usize, usize),
) -> [[T; N]; 9] {
    let (pw, plane) = (s.padded_w(), s.padded_plane());
    let mut acc = [[T::ZERO; N]; 9];
    for ni in 0..s.n {
        let x_plane = &xb[(ni * c + ci) * plane..][..plane];
        let dy_image = &dyh[ni * s.h * s.w * cout..][..s.h * s.w * cout];
        for y in 0..s.h {
            for x in 0..s.w {
                let d = lanes_at(dy_image, (y * s.w + x) * cout + block * LANES + first);
                let window = &x_plane[y * pw + x..][..2 * pw + 3];
                for_each_tap!(|dyo, dxo, t| {
                    fma_lanes(&mut acc[t], &d, window[dyo * pw + dxo]);
                });
            }
        }
    }
    acc
}

/// The weight-gradient tile of all 16 lanes at once (AVX-512: 9 accumulator registers).
#[inline(always)]
// The AVX-512 tier's body: other targets run the tiles in parts.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn weight_tile<T: Float>(
    s: &Same,
    dyh: &[T],
    xb: &[T],
    (ci, block): (usize, usize),
    counts: (usize, usize),
) -> [Lanes<T>; 9] {
    weight_tile_lanes::<T, LANES>(s, dyh, xb, (ci, block, 0), counts)
}

/// The weight-gradient tile in parts of [`WEIGHT_LANES`] lanes (fewer registers): the same
/// sums, lane for lane.
#[inline(always)]
pub(crate) fn weight_tile_parts<T: Float>(
    s: &Same,
    dyh: &[T],
    xb: &[T],
    (ci, block): (usize, usize),
    counts: (usize, usize),
) -> [Lanes<T>; 9] {
    let mut acc = [[T::ZERO; LANES]; 9];
    for first in (0..LANES).step_by(WEIGHT_LANES) {
        let part = weight_tile_lanes::<T, WEIGHT_LANES>(s, dyh, xb, (ci, block, first), counts);
        for (whole, part) in acc.iter_mut().zip(&part) {
            whole[first..first + WEIGHT_LANES].copy_from_slice(part);
        }
    }
    acc
}

/// One task of [`same_conv`]: every row of one image's block of output channels (`out_block`,
/// whole `H x W` planes), in tiles of all 16 channels (AVX-512: 16 accumulator registers).
/// Inlined into the function [`arch::same_conv_block`] compiles for the tier; returned by value
/// to a caller outside it, a tile's 256 values went through the stack and were copied one by
/// one, which cost more than the arithmetic for a one-input-channel layer (`deep`'s conv1).
#[inline(always)]
// The AVX-512 tier's body: other targets run the tiles in parts.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn forward_block_body<T: Float>(
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

/// [`forward_block_body`] in tiles of [`CHANNEL_PART`] channels, for tiers with fewer vector
/// registers (AVX2, NEON): every output value is the same sum in the same order.
#[inline(always)]
pub(crate) fn forward_block_parts<T: Float>(
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
            for first in (0..channels).step_by(CHANNEL_PART) {
                let acc = forward_tile_part(s, image, weights, (first, bias), y, x0);
                for (o, lanes) in acc.iter().enumerate().take(channels - first) {
                    let o = first + o;
                    store_row(
                        &mut out_block[o * plane..(o + 1) * plane],
                        at,
                        s.w - x0,
                        lanes,
                    );
                }
            }
        }
    }
}

/// `out` (NCHW, `cout` channels) = the same 3x3 convolution of the zero-bordered `xb` (`c`
/// channels) with `weights` in blocks `(ceil(Cout/16), C, 9, 16)` (zero past `cout`), plus
/// `bias`. One task per image and block of 16 output channels.
fn same_conv<T: Float>(
    tier: Tier,
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
                    arch::same_conv_block(tier, s, c, image, w, &bias, out_block);
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
    tier: Tier,
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
    workspace: &mut [T],
) {
    let (xb, rest) = workspace.split_at_mut(bordered_input_len(g));
    forward_bordering(tier, g, input, weight, bias, output, xb, rest);
}

/// Forward that writes the zero-bordered input into `xb` ([`bordered_input_len`] elements),
/// where the weight gradient can read it again; `workspace` holds the blocked weights.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_bordering<T: Float>(
    tier: Tier,
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
    to_bordered(tier, &s, input, xb);
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
    same_conv(tier, &s, (c, cout), xb, wt, bias, output);
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
    tier: Tier,
    g: &Conv2dGeometry,
    weight: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    workspace: &mut [T],
) {
    let (s, c, cout) = (Same::of(g), g.in_channels, g.out_channels);
    if c == 1 {
        let operands = (weight, grad_output);
        return backward_input_one_channel(tier, &s, cout, operands, grad_input, workspace);
    }
    let (dyb, rest) = workspace.split_at_mut(s.n * cout * s.padded_plane());
    let wt = &mut rest[..padded_channels(c) * cout * 9];
    to_bordered(tier, &s, grad_output, dyb);
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
    same_conv(tier, &s, (cout, c), dyb, wt, None, grad_input);
}

/// The input gradient of a convolution with one input channel (`deep`'s conv1, for attribution):
/// the generic path would border all `Cout` planes of the output gradient to produce one plane.
/// Instead, per image, the output gradient is first mixed into one plane per tap,
/// `Z_t = sum over o of W[o][0][t] * dY_o` (read once, in place, 9 accumulators per vector),
/// and then `dX[y][x] = sum over t = (dy, dx) of Z_t[y + 1 - dy][x + 1 - dx]` from the
/// zero-bordered `Z` planes. One task per image; each value is summed in a fixed order.
fn backward_input_one_channel<T: Float>(
    tier: Tier,
    s: &Same,
    cout: usize,
    (weight, grad_output): (&[T], &[T]),
    grad_input: &mut [T],
    workspace: &mut [T],
) {
    let (plane, zplanes) = (s.h * s.w, 9 * s.padded_plane());
    let z = &mut workspace[..s.n * zplanes];
    z.par_chunks_mut(zplanes)
        .zip(grad_output.par_chunks(cout * plane))
        .zip(grad_input.par_chunks_mut(plane))
        .for_each(|((zb, dy), dx)| arch::one_channel_image(tier, s, cout, weight, dy, zb, dx));
}

/// [`backward_input_one_channel`] for one image: `dy` its `Cout` planes, `zb` the 9 bordered
/// `Z` planes (scratch), `dx` its input-gradient plane. `P` lanes at a time make the tap sums:
/// 9 accumulators of 16 lanes are 9 AVX-512 registers, but 18 of AVX2's 16, which spilled
/// (AVX2 and NEON take 8). Each lane's sum is the same whatever `P`.
#[inline(always)]
pub(crate) fn one_channel_image<T: Float, const P: usize>(
    s: &Same,
    cout: usize,
    weight: &[T],
    dy: &[T],
    zb: &mut [T],
    dx: &mut [T],
) {
    let (pw, pplane, plane) = (s.padded_w(), s.padded_plane(), s.h * s.w);
    // The borders of the 9 planes: rows 0 and h + 1, columns 0 and pw - 1. The stores below
    // write every other value (zeros past a row's end), so no fill of the whole planes.
    for z in zb[..9 * pplane].chunks_exact_mut(pplane) {
        zero_row(&mut z[..pw]);
        zero_row(&mut z[(s.h + 1) * pw..]);
        for row in z[pw..(s.h + 1) * pw].chunks_exact_mut(pw) {
            row[0] = T::ZERO;
            row[pw - 1] = T::ZERO;
        }
    }
    for y in 0..s.h {
        for x0 in (0..s.vectors * LANES).step_by(P) {
            let valid = P.min(s.w.saturating_sub(x0));
            let mut acc = [[T::ZERO; P]; 9];
            if valid > 0 {
                for (o, filter) in weight.chunks_exact(9).enumerate().take(cout) {
                    // lanes past `valid` (the next row's values) are stored as zeros below
                    let at = o * plane + y * s.w + x0;
                    let d: [T; P] = if at + P <= dy.len() {
                        lanes_at(dy, at)
                    } else {
                        let mut d = [T::ZERO; P];
                        d[..valid].copy_from_slice(&dy[at..at + valid]);
                        d
                    };
                    for_each_tap!(|ty, tx, t| {
                        let _ = (ty, tx);
                        fma_lanes(&mut acc[t], &d, filter[t]);
                    });
                }
            }
            for (t, lanes) in acc.iter().enumerate() {
                let at = t * pplane + (y + 1) * pw + 1 + x0;
                let dst: &mut [T; P] = (&mut zb[at..at + P]).try_into().expect("P values");
                for (j, (d, &v)) in dst.iter_mut().zip(lanes).enumerate() {
                    *d = if j < valid { v } else { T::ZERO };
                }
            }
        }
    }
    for y in 0..s.h {
        for v in 0..s.vectors {
            let x0 = v * LANES;
            let mut acc = [T::ZERO; LANES];
            for_each_tap!(|ty, tx, t| {
                let z: Lanes<T> = lanes_at(zb, t * pplane + (y + 2 - ty) * pw + x0 + 2 - tx);
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

/// Zeros a bordered row in fixed-size pieces: a plain fill of a short slice is a call of
/// `memset`, which cost more than the stores.
#[inline(always)]
fn zero_row<T: Float>(row: &mut [T]) {
    let mut pieces = row.chunks_exact_mut(8);
    for piece in &mut pieces {
        let piece: &mut [T; 8] = piece.try_into().expect("8 values");
        *piece = [T::ZERO; 8];
    }
    for d in pieces.into_remainder() {
        *d = T::ZERO;
    }
}

/// Weight gradient; see [`crate::conv2d_backward_weight`].
pub(crate) fn backward_weight<T: Float>(
    tier: Tier,
    g: &Conv2dGeometry,
    input: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    workspace: &mut [T],
) {
    let (xb, rest) = workspace.split_at_mut(bordered_input_len(g));
    to_bordered(tier, &Same::of(g), input, xb);
    backward_weight_bordered(tier, g, xb, grad_output, grad_weight, rest);
}

/// Weight gradient from the zero-bordered input `xb` that [`forward_bordering`] wrote;
/// `workspace` holds the channels-last output gradient.
pub(crate) fn backward_weight_bordered<T: Float>(
    tier: Tier,
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
        .for_each(|(dst, src)| arch::channels_last_image(tier, src, dst, cout, pixels, cpad));
    let dyh = &*dyh;
    // one task per (input channel, block of 16 output channels); dW[o][ci][t] for its 16 o
    let blocks = cpad / LANES;
    let sums: Vec<[Lanes<T>; 9]> = (0..c * blocks)
        .into_par_iter()
        .map(|task| {
            let channels = (task / blocks, task % blocks);
            arch::weight_tile(tier, &s, dyh, xb, channels, (cpad, c))
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

/// One image's `Cout` planes `src` (`pixels` values each) into channels-last `dst`
/// (`pixels` rows of `cpad` values, zero past `Cout`); see [`backward_weight_bordered`].
#[inline(always)]
pub(crate) fn channels_last_body<T: Float>(
    src: &[T],
    dst: &mut [T],
    cout: usize,
    pixels: usize,
    cpad: usize,
) {
    if cpad > cout {
        dst.fill(T::ZERO);
    }
    // plane by plane: contiguous reads, writes 16 apart within a buffer that stays in cache
    for (o, plane) in src.chunks_exact(pixels).enumerate().take(cout) {
        for (d, &v) in dst[o..].iter_mut().step_by(cpad).zip(plane) {
            *d = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random_vec;

    /// `(n, c, h, w, channels)` of a block test.
    type BlockShape = (usize, usize, usize, usize, usize);

    /// The geometries of the block tests `(n, c, h, w, channels)`: full and partial channel
    /// blocks (16, 9, 5, 1), rows of one, two and three vectors (full and partial), one and
    /// several input channels, and maps at most 8 wide (AVX2's narrow tiles: 1, 2, an odd and an
    /// even number of rows, a full 8-lane row).
    const BLOCKS: [BlockShape; 11] = [
        (1, 1, 28, 28, 16),
        (2, 16, 14, 14, 16),
        (1, 16, 7, 7, 9),
        (1, 3, 33, 33, 16),
        (1, 2, 16, 16, 1),
        (1, 4, 5, 5, 5),
        (1, 3, 1, 8, 16),
        (1, 2, 2, 6, 13),
        (1, 5, 9, 8, 16),
        (1, 16, 4, 3, 7),
        (1, 1, 6, 1, 16),
    ];

    /// One block on `tier` through [`arch::same_conv_block`], and the plain generic body (no
    /// target features: each `mul_add` the correctly rounded fused operation) on the same
    /// operands, output pre-filled with NaN.
    fn block_on<T: Float>(tier: Tier, (n, c, h, w, channels): BlockShape) -> [Vec<T>; 2] {
        let g = Conv2dGeometry::new(n, c, h, w, channels, 3, 1, 1).expect("geometry");
        let s = Same::of(&g);
        let f =
            |len, seed| -> Vec<T> { random_vec(len, seed).into_iter().map(T::from_f64).collect() };
        let image = f(c * s.padded_plane(), 1);
        let weights = f(c * 9 * CHANNEL_BLOCK, 2);
        let bias: Lanes<T> = f(CHANNEL_BLOCK, 3).try_into().expect("16 values");
        let plane = h * w;
        let mut plain = vec![T::from_f64(f64::NAN); channels * plane];
        let mut tiered = plain.clone();
        forward_block_body(&s, &image, &weights, &bias, &mut plain);
        arch::same_conv_block(tier, &s, c, &image, &weights, &bias, &mut tiered);
        [plain, tiered]
    }

    fn bits<T: Float>(v: &[T]) -> Vec<u64> {
        v.iter().map(|x| x.to_f64().to_bits()).collect()
    }

    /// On every vector tier this CPU runs (AVX-512 with its f32 intrinsics tile, AVX2 and NEON
    /// with 4-channel tiles), a block is the plain generic block bit for bit, in f32 and f64;
    /// a tier the CPU lacks prints a SKIPPED line.
    #[test]
    fn every_tier_s_forward_block_is_the_plain_block_bit_for_bit() {
        const NAME: &str = "every_tier_s_forward_block_is_the_plain_block_bit_for_bit";
        for tier in [Tier::Avx512, Tier::Avx2, Tier::Neon] {
            if !tensor::testing::require_tier(tier, &format!("{NAME} on {tier}")) {
                continue;
            }
            for shape in BLOCKS {
                let [plain, tiered] = block_on::<f32>(tier, shape);
                assert_eq!(bits(&plain), bits(&tiered), "f32 on {tier}, {shape:?}");
                assert!(tiered.iter().all(|v| v.is_finite()), "every output written");
                let [plain, tiered] = block_on::<f64>(tier, shape);
                assert_eq!(bits(&plain), bits(&tiered), "f64 on {tier}, {shape:?}");
            }
        }
    }

    /// The one-input-channel input gradient of one image on `tier`, and the plain generic body
    /// in 16 lanes, on the same operands, with the scratch planes and the output pre-filled
    /// with NaN (so a value the body forgets to write shows).
    fn one_channel_on<T: Float>(tier: Tier, (h, w, cout): (usize, usize, usize)) -> [Vec<T>; 2] {
        let g = Conv2dGeometry::new(1, 1, h, w, cout, 3, 1, 1).expect("geometry");
        let s = Same::of(&g);
        let f =
            |len, seed| -> Vec<T> { random_vec(len, seed).into_iter().map(T::from_f64).collect() };
        let (weight, dy) = (f(cout * 9, 8), f(cout * h * w, 9));
        let nan = T::from_f64(f64::NAN);
        let run = |on_tier: bool| {
            let (mut zb, mut dx) = (vec![nan; 9 * s.padded_plane()], vec![nan; h * w]);
            if on_tier {
                arch::one_channel_image(tier, &s, cout, &weight, &dy, &mut zb, &mut dx);
            } else {
                one_channel_image::<T, 16>(&s, cout, &weight, &dy, &mut zb, &mut dx);
            }
            dx
        };
        [run(false), run(true)]
    }

    /// On every tier this CPU runs (8-lane parts on AVX2 and NEON), the one-input-channel
    /// input gradient is the plain 16-lane body bit for bit, in f32 and f64, with every value
    /// written whatever the scratch held.
    #[test]
    fn every_tier_s_one_channel_input_gradient_is_the_plain_body_bit_for_bit() {
        const NAME: &str = "every_tier_s_one_channel_input_gradient_is_the_plain_body_bit_for_bit";
        for tier in [Tier::Avx512, Tier::Avx2, Tier::Neon, Tier::Portable] {
            if !tensor::testing::require_tier(tier, &format!("{NAME} on {tier}")) {
                continue;
            }
            for shape in [
                (28, 28, 16),
                (14, 14, 5),
                (7, 7, 1),
                (3, 17, 16),
                (5, 8, 3),
                (2, 33, 2),
            ] {
                let [plain, tiered] = one_channel_on::<f32>(tier, shape);
                assert_eq!(bits(&plain), bits(&tiered), "f32 on {tier}, {shape:?}");
                assert!(plain.iter().all(|v| v.is_finite()), "every value written");
                let [plain, tiered] = one_channel_on::<f64>(tier, shape);
                assert_eq!(bits(&plain), bits(&tiered), "f64 on {tier}, {shape:?}");
            }
        }
    }

    /// The weight-gradient tile in 8-lane parts (AVX2, NEON) is the 16-lane tile bit for bit.
    #[test]
    fn the_weight_tile_in_parts_is_the_whole_tile_bit_for_bit() {
        for (n, c, side, cout) in [(2, 3, 14, 16), (1, 2, 7, 32), (3, 1, 5, 16)] {
            let g = Conv2dGeometry::new(n, c, side, side, cout, 3, 1, 1).expect("geometry");
            let s = Same::of(&g);
            let xb: Vec<f64> = random_vec(n * c * s.padded_plane(), 4);
            let dyh: Vec<f64> = random_vec(n * side * side * cout, 5);
            for ci in 0..c {
                for block in 0..cout / LANES {
                    let whole = weight_tile(&s, &dyh, &xb, (ci, block), (cout, c));
                    let parts = weight_tile_parts(&s, &dyh, &xb, (ci, block), (cout, c));
                    let flat = |a: &[Lanes<f64>; 9]| {
                        a.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>()
                    };
                    assert_eq!(flat(&whole), flat(&parts), "{n} {c} {side} {cout} ci {ci}");
                }
            }
        }
    }

    /// On every vector tier this CPU runs, the weight-gradient tile (AVX2's in intrinsics) is the
    /// plain generic tile bit for bit, in f32.
    #[test]
    fn every_tier_s_weight_tile_is_the_plain_tile_bit_for_bit() {
        const NAME: &str = "every_tier_s_weight_tile_is_the_plain_tile_bit_for_bit";
        for tier in [Tier::Avx512, Tier::Avx2, Tier::Neon] {
            if !tensor::testing::require_tier(tier, &format!("{NAME} on {tier}")) {
                continue;
            }
            for (n, c, side, cout) in [(2, 3, 14, 16), (1, 2, 7, 32), (3, 1, 5, 16), (1, 1, 17, 16)]
            {
                let g = Conv2dGeometry::new(n, c, side, side, cout, 3, 1, 1).expect("geometry");
                let s = Same::of(&g);
                let f = |len, seed| -> Vec<f32> {
                    random_vec(len, seed)
                        .into_iter()
                        .map(|v| v as f32)
                        .collect()
                };
                let (xb, dyh) = (f(n * c * s.padded_plane(), 6), f(n * side * side * cout, 7));
                for ci in 0..c {
                    for block in 0..cout / LANES {
                        let plain = weight_tile(&s, &dyh, &xb, (ci, block), (cout, c));
                        let tiered = arch::weight_tile(tier, &s, &dyh, &xb, (ci, block), (cout, c));
                        let flat = |a: &[Lanes<f32>; 9]| {
                            a.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>()
                        };
                        assert_eq!(
                            flat(&plain),
                            flat(&tiered),
                            "{tier}: {n} {c} {side} {cout} ci {ci}"
                        );
                    }
                }
            }
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
