//! Integrated gradients without a Riemann sum: exact to round-off for networks that are piecewise
//! linear up to the softmax (convolution, ReLU, max-pool, dense layers, and batch norm and dropout
//! in evaluation mode: every network of the study).
//!
//! Along the straight path x(t) = a' + t (a - a') such a network's logits are piecewise affine in
//! t. A region of the path ends where a ReLU input crosses zero or a max-pool window changes its
//! winner. Inside region r the logits are z(t) = z_r + t dz_r and the input gradient of F is
//! J_r^T grad_z F(z(t)) with the region's constant Jacobian J_r, so
//!
//!   IG = (a - a') * sum_r J_r^T w_r,   w_r = integral over region r of grad_z F(z(t)) dt.
//!
//! `w_r` integrates a smooth function (the softmax's gradient along a line), done by composite
//! Gauss-Legendre quadrature to round-off; `J_r^T w_r` is one backward pass. Completeness then
//! holds to round-off, because sum(IG) = sum_r (F(z(t_r+1)) - F(z(t_r))) telescopes. A Riemann sum
//! instead integrates a function with a jump at every region boundary, so its error falls only as
//! 1/m once the steps are finer than the regions: on a trained `deep` network, with thousands of
//! regions along the path, 64 or even 1024 midpoint steps can miss by tens of percent.
//!
//! Cost: one forward (value and direction) and one backward pass of a single image per region.

use conv::{conv2d_backward_input, conv2d_forward, Conv2dGeometry};
use rayon::prelude::*;
use tensor::{Float, Tensor};

use super::integrated_gradients::{expand_baseline, IgResult};
use super::target::Score;
use super::{check_classes, check_inputs, AttributionError};
use crate::models::{Layer, Model};

/// Settings of [`exact_integrated_gradients`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExactIgOptions {
    /// What F is: the target's probability (default) or its logit.
    pub score: Score,
    /// Give up on an image whose path crosses more regions than this (a guard against a network
    /// whose regions are too fine to walk; the error says so).
    pub max_regions: usize,
}

impl Default for ExactIgOptions {
    fn default() -> Self {
        ExactIgOptions {
            score: Score::Probability,
            max_regions: 1_000_000,
        }
    }
}

/// [`IgResult`] plus the number of linear regions each image's path crossed.
#[derive(Clone, Debug, PartialEq)]
pub struct ExactIgResult<T> {
    /// Attributions, completeness errors (round-off) and F(a) - F(a').
    pub ig: IgResult<T>,
    /// Per image: regions walked (the number of kinks on the path plus one).
    pub regions: Vec<usize>,
}

/// How far past a region's start the walk probes it (as a fraction of the path). A kink missed
/// inside this sliver costs at most (jump of dF/dt) * `PROBE` of the integral.
const PROBE: f64 = 1e-9;

/// Exact integrated gradients along the straight path from `baseline` to each input, with F the
/// score of `classes[n]` for image n. See the module documentation for the method.
///
/// Images are walked in parallel, each on its own in f64, so results do not depend on the thread
/// count. Fails for a layer that is not piecewise linear in evaluation mode (none of the study's).
pub fn exact_integrated_gradients<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    baseline: &super::Baseline<T>,
    options: &ExactIgOptions,
) -> Result<ExactIgResult<T>, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    let baselines = expand_baseline(model, inputs, baseline)?;
    let net = LinearPieces::new(&model.cast::<f64>())?;
    let per = inputs.numel() / n;
    let walks: Vec<Result<Walk, AttributionError>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let a: Vec<f64> = inputs.data()[i * per..(i + 1) * per]
                .iter()
                .map(|v| v.to_f64())
                .collect();
            let b: Vec<f64> = baselines.data()[i * per..(i + 1) * per]
                .iter()
                .map(|v| v.to_f64())
                .collect();
            net.walk(&a, &b, classes[i], options)
        })
        .collect();
    let mut attributions = Vec::with_capacity(n * per);
    let (mut completeness_error, mut delta, mut regions) = (vec![], vec![], vec![]);
    for walk in walks {
        let walk = walk?;
        let total: f64 = walk.attributions.iter().sum();
        attributions.extend(walk.attributions.iter().map(|&v| T::from_f64(v)));
        completeness_error.push((total - walk.delta) as f32);
        delta.push(walk.delta as f32);
        regions.push(walk.regions);
    }
    Ok(ExactIgResult {
        ig: IgResult {
            attributions: Tensor::from_vec(inputs.shape(), attributions)?,
            completeness_error,
            delta,
        },
        regions,
    })
}

/// One image's exact IG.
struct Walk {
    attributions: Vec<f64>,
    delta: f64,
    regions: usize,
}

/// A layer of the network, prepared for single-image f64 passes.
enum Piece {
    Conv {
        geometry: Conv2dGeometry,
        weight: Vec<f64>,
        bias: Vec<f64>,
    },
    Relu,
    Pool {
        channels: usize,
        in_hw: (usize, usize),
        out_hw: (usize, usize),
        kernel: usize,
        stride: usize,
    },
    /// Evaluation-mode batch norm: y = x * scale[c] + shift[c] over planes of `plane` values.
    Affine {
        scale: Vec<f64>,
        shift: Vec<f64>,
        plane: usize,
    },
    Linear {
        weight: Vec<f64>,
        bias: Vec<f64>,
        inputs: usize,
    },
    /// Flatten and evaluation-mode dropout.
    Identity,
}

/// What a backward pass needs from the forward pass of one region.
enum Record {
    /// Per ReLU unit: on in this region.
    Mask(Vec<bool>),
    /// Per pool output: the winning input index.
    Winners(Vec<usize>),
    None,
}

/// The network as a list of [`Piece`]s.
struct LinearPieces {
    pieces: Vec<Piece>,
    input_len: usize,
}

impl LinearPieces {
    fn new(model: &Model<f64>) -> Result<Self, AttributionError> {
        let mut shape = model.input.to_vec();
        let mut pieces = Vec::with_capacity(model.layers.len());
        for layer in &model.layers {
            let next = layer
                .output_shape(&shape)
                .map_err(|e| AttributionError::Option {
                    option: "model",
                    expected: "a network whose layers fit its input".into(),
                    found: e,
                })?;
            pieces.push(match layer {
                Layer::Conv {
                    weight,
                    bias,
                    kernel,
                    stride,
                    padding,
                    out_channels,
                    ..
                } => Piece::Conv {
                    geometry: Conv2dGeometry::new(
                        1,
                        shape[0],
                        shape[1],
                        shape[2],
                        *out_channels,
                        *kernel,
                        *stride,
                        *padding,
                    )
                    .map_err(|e| AttributionError::Option {
                        option: "model",
                        expected: "a valid convolution".into(),
                        found: e.to_string(),
                    })?,
                    weight: model.params[*weight].data().to_vec(),
                    bias: model.params[*bias].data().to_vec(),
                },
                Layer::Relu => Piece::Relu,
                Layer::MaxPool { kernel, stride } => Piece::Pool {
                    channels: shape[0],
                    in_hw: (shape[1], shape[2]),
                    out_hw: (next[1], next[2]),
                    kernel: *kernel,
                    stride: *stride,
                },
                Layer::BatchNorm {
                    gamma,
                    beta,
                    mean,
                    var,
                    eps,
                    ..
                } => {
                    let (g, b) = (model.params[*gamma].data(), model.params[*beta].data());
                    let (m, v) = (model.buffers[*mean].data(), model.buffers[*var].data());
                    let scale: Vec<f64> =
                        g.iter().zip(v).map(|(g, v)| g / (v + eps).sqrt()).collect();
                    let shift = b
                        .iter()
                        .zip(m)
                        .zip(&scale)
                        .map(|((b, m), s)| b - m * s)
                        .collect();
                    Piece::Affine {
                        scale,
                        shift,
                        plane: shape[1..].iter().product(),
                    }
                }
                Layer::Linear { weight, bias, .. } => Piece::Linear {
                    weight: model.params[*weight].data().to_vec(),
                    bias: model.params[*bias].data().to_vec(),
                    inputs: shape.iter().product(),
                },
                Layer::Flatten | Layer::Dropout { .. } => Piece::Identity,
            });
            shape = next;
        }
        Ok(LinearPieces {
            pieces,
            input_len: model.input.iter().product(),
        })
    }

    /// Walks the path from `b` to `a` region by region.
    fn walk(
        &self,
        a: &[f64],
        b: &[f64],
        class: usize,
        options: &ExactIgOptions,
    ) -> Result<Walk, AttributionError> {
        debug_assert_eq!(a.len(), self.input_len);
        let direction: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
        let mut workspace = Vec::new();
        let mut gradient_sum = vec![0.0; a.len()];
        let score = |z: &[f64]| match options.score {
            Score::Logit => z[class],
            Score::Probability => softmax(z)[class],
        };
        let point =
            |t: f64| -> Vec<f64> { b.iter().zip(&direction).map(|(b, d)| b + t * d).collect() };
        let f_start = score(&self.forward(&point(0.0), &direction, &mut workspace).0);
        let f_end = score(&self.forward(&point(1.0), &direction, &mut workspace).0);
        let (mut t, mut regions) = (0.0f64, 0usize);
        while t < 1.0 {
            regions += 1;
            if regions > options.max_regions {
                return Err(AttributionError::Option {
                    option: "max-regions",
                    expected: format!("a path with at most {} linear regions", options.max_regions),
                    found: format!("more (stopped at t = {t:.6})"),
                });
            }
            let probe = if t + PROBE < 1.0 {
                t + PROBE
            } else {
                0.5 * (t + 1.0)
            };
            let (z, dz, records, step) = self.forward(&point(probe), &direction, &mut workspace);
            let end = (probe + step).min(1.0);
            let w = integrate_score_gradient(&z, &dz, probe, t, end, class, options.score);
            let g = self.backward(&records, w, &mut workspace);
            for (s, g) in gradient_sum.iter_mut().zip(&g) {
                *s += g;
            }
            t = end;
        }
        let attributions = direction
            .iter()
            .zip(&gradient_sum)
            .map(|(d, g)| d * g)
            .collect();
        Ok(Walk {
            attributions,
            delta: f_end - f_start,
            regions,
        })
    }

    /// Forward pass at `x` with the derivative along `dx`: returns the logits, their derivative
    /// along the path, what backward needs, and how far along the path (in t) the first kink ahead
    /// lies (infinity if none).
    fn forward(
        &self,
        x: &[f64],
        dx: &[f64],
        workspace: &mut Vec<f64>,
    ) -> (Vec<f64>, Vec<f64>, Vec<Record>, f64) {
        let (mut v, mut s) = (x.to_vec(), dx.to_vec());
        let mut records = Vec::with_capacity(self.pieces.len());
        let mut next_kink = f64::INFINITY;
        let mut ahead = |dt: f64| {
            if dt > 0.0 && dt < next_kink {
                next_kink = dt;
            }
        };
        for piece in &self.pieces {
            let record = match piece {
                Piece::Conv {
                    geometry,
                    weight,
                    bias,
                } => {
                    let mut out = vec![0.0; geometry.output_len()];
                    conv2d_forward(geometry, &v, weight, Some(bias), &mut out, workspace);
                    let mut out_s = vec![0.0; geometry.output_len()];
                    conv2d_forward(geometry, &s, weight, None, &mut out_s, workspace);
                    (v, s) = (out, out_s);
                    Record::None
                }
                Piece::Relu => {
                    let mut mask = Vec::with_capacity(v.len());
                    for (v, s) in v.iter_mut().zip(s.iter_mut()) {
                        if *s != 0.0 {
                            ahead(-*v / *s);
                        }
                        let on = *v > 0.0 || (*v == 0.0 && *s > 0.0);
                        mask.push(on);
                        if !on {
                            (*v, *s) = (0.0, 0.0);
                        }
                    }
                    Record::Mask(mask)
                }
                Piece::Pool {
                    channels,
                    in_hw: (h, w),
                    out_hw: (oh, ow),
                    kernel,
                    stride,
                } => {
                    let mut winners = Vec::with_capacity(channels * oh * ow);
                    for c in 0..*channels {
                        for y in 0..*oh {
                            for xx in 0..*ow {
                                let window = (0..*kernel).flat_map(|ky| {
                                    (0..*kernel).map(move |kx| {
                                        c * h * w + (y * stride + ky) * w + xx * stride + kx
                                    })
                                });
                                let mut best = c * h * w + y * stride * w + xx * stride;
                                for i in window.clone() {
                                    // Ties: the later element wins only if it is rising faster,
                                    // so the winner is the one that leads just past the probe.
                                    if v[i] > v[best] || (v[i] == v[best] && s[i] > s[best]) {
                                        best = i;
                                    }
                                }
                                for i in window {
                                    if s[i] > s[best] {
                                        ahead((v[best] - v[i]) / (s[i] - s[best]));
                                    }
                                }
                                winners.push(best);
                            }
                        }
                    }
                    v = winners.iter().map(|&i| v[i]).collect();
                    s = winners.iter().map(|&i| s[i]).collect();
                    Record::Winners(winners)
                }
                Piece::Affine {
                    scale,
                    shift,
                    plane,
                } => {
                    for (i, (v, s)) in v.iter_mut().zip(s.iter_mut()).enumerate() {
                        let c = i / plane;
                        *v = *v * scale[c] + shift[c];
                        *s *= scale[c];
                    }
                    Record::None
                }
                Piece::Linear {
                    weight,
                    bias,
                    inputs,
                } => {
                    let row =
                        |r: &[f64], x: &[f64]| r.iter().zip(x).map(|(w, x)| w * x).sum::<f64>();
                    let rows = weight.chunks_exact(*inputs);
                    (v, s) = rows
                        .zip(bias)
                        .map(|(r, b)| (row(r, &v) + b, row(r, &s)))
                        .unzip();
                    Record::None
                }
                Piece::Identity => Record::None,
            };
            records.push(record);
        }
        (v, s, records, next_kink)
    }

    /// J^T w for the region whose forward pass left `records`.
    fn backward(&self, records: &[Record], w: Vec<f64>, workspace: &mut Vec<f64>) -> Vec<f64> {
        let mut g = w;
        for (piece, record) in self.pieces.iter().zip(records).rev() {
            match (piece, record) {
                (
                    Piece::Conv {
                        geometry, weight, ..
                    },
                    _,
                ) => {
                    let mut gi = vec![0.0; geometry.input_len()];
                    conv2d_backward_input(geometry, weight, &g, &mut gi, workspace);
                    g = gi;
                }
                (Piece::Relu, Record::Mask(mask)) => {
                    for (g, &on) in g.iter_mut().zip(mask) {
                        if !on {
                            *g = 0.0;
                        }
                    }
                }
                (
                    Piece::Pool {
                        channels,
                        in_hw: (h, w),
                        ..
                    },
                    Record::Winners(winners),
                ) => {
                    let mut gi = vec![0.0; channels * h * w];
                    for (&i, &gv) in winners.iter().zip(&g) {
                        gi[i] += gv;
                    }
                    g = gi;
                }
                (Piece::Affine { scale, plane, .. }, _) => {
                    for (i, g) in g.iter_mut().enumerate() {
                        *g *= scale[i / plane];
                    }
                }
                (Piece::Linear { weight, inputs, .. }, _) => {
                    let mut gi = vec![0.0; *inputs];
                    for (r, &gv) in weight.chunks_exact(*inputs).zip(&g) {
                        for (x, &wv) in gi.iter_mut().zip(r) {
                            *x += gv * wv;
                        }
                    }
                    g = gi;
                }
                _ => {}
            }
        }
        g
    }
}

/// Numerically stable softmax.
fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// Nodes and weights of the 8-point Gauss-Legendre rule on [-1, 1] (exact for polynomials of
/// degree 15).
const GAUSS_8: [(f64, f64); 8] = [
    (-0.960_289_856_497_536_2, 0.101_228_536_290_376_26),
    (-0.796_666_477_413_626_7, 0.222_381_034_453_374_47),
    (-0.525_532_409_916_329, 0.313_706_645_877_887_3),
    (-0.183_434_642_495_649_8, 0.362_683_783_378_362),
    (0.183_434_642_495_649_8, 0.362_683_783_378_362),
    (0.525_532_409_916_329, 0.313_706_645_877_887_3),
    (0.796_666_477_413_626_7, 0.222_381_034_453_374_47),
    (0.960_289_856_497_536_2, 0.101_228_536_290_376_26),
];

/// Largest change of any logit over one Gauss-Legendre panel: the softmax's gradient is analytic
/// with derivatives of order one per unit of logit, so 8 nodes over a quarter unit reach round-off.
const PANEL_LOGIT_CHANGE: f64 = 0.25;

/// integral over t in [start, end] of grad_z F(z0 + (t - t0) dz), for F the probability or the
/// logit of `class`.
fn integrate_score_gradient(
    z0: &[f64],
    dz: &[f64],
    t0: f64,
    start: f64,
    end: f64,
    class: usize,
    score: Score,
) -> Vec<f64> {
    let len = end - start;
    let mut w = vec![0.0; z0.len()];
    if len <= 0.0 {
        return w;
    }
    if score == Score::Logit {
        w[class] = len;
        return w;
    }
    let speed = dz.iter().fold(0.0f64, |m, d| m.max(d.abs()));
    let panels = ((len * speed / PANEL_LOGIT_CHANGE).ceil() as usize).clamp(1, 1 << 20);
    let h = len / panels as f64;
    let mut z = vec![0.0; z0.len()];
    for p in 0..panels {
        let mid = start + (p as f64 + 0.5) * h;
        for &(node, weight) in &GAUSS_8 {
            let t = mid + 0.5 * h * node;
            for ((z, z0), d) in z.iter_mut().zip(z0).zip(dz) {
                *z = z0 + (t - t0) * d;
            }
            // d p_c / d z_k = p_c (delta_ck - p_k)
            let probs = softmax(&z);
            let pc = probs[class];
            for (k, (w, pk)) in w.iter_mut().zip(&probs).enumerate() {
                let delta = if k == class { 1.0 } else { 0.0 };
                *w += 0.5 * h * weight * pc * (delta - pk);
            }
        }
    }
    w
}
