//! Backward rules: how the ops recorded under a [`RuleSet`] pass their gradient back.
//!
//! The plain rule is the chain rule. The others turn backward into the propagation of an
//! attribution method (guided backpropagation, deconvnet, LRP, DeepLIFT's rescale rule) without
//! touching the models: a rule set is chosen on the tape ([`Tape::set_rules`](crate::Tape::set_rules))
//! and every op recorded while it is in effect keeps its rule. Each op's rule is implemented in
//! that op's file (`ops/relu.rs`, `ops/linear.rs`, `ops/conv2d.rs`, `ops/max_pool2d.rs`); this
//! file holds the rule types and the LRP arithmetic linear and conv share. Formulas and papers:
//! docs/derivations.md, "Backward rules".
//!
//! LRP runs in the "gradient x input" form: the signal that flows is c with R = a * c for every
//! activation a (R its relevance), so ReLU and max-pool keep their plain backward and the input
//! relevance is `x * (backward signal at x)` when the output is seeded with 1 at the target
//! logit (output relevance R = logit).

use tensor::Float;

/// The backward rule of ReLU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReluRule {
    /// dx = g where x > 0.
    #[default]
    Gradient,
    /// Guided backpropagation (Springenberg et al. 2015): dx = g where x > 0 and g > 0.
    GuidedBackprop,
    /// Deconvnet (Zeiler and Fergus 2014): dx = max(g, 0), whatever x.
    Deconvnet,
    /// DeepLIFT's rescale rule (Shrikumar et al. 2017) against each input's reference in the
    /// batch ([`References`]): dx = g (relu(x) - relu(x')) / (x - x') (the plain gradient where
    /// |x - x'| < 1e-10); the references get no gradient.
    Rescale,
}

/// Where DeepLIFT's rescale rule finds each input's reference in the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum References {
    /// The batch's second half: of 2m images, image m + i is input i's reference.
    #[default]
    Paired,
    /// The batch's last image is every input's reference: of m + 1 images, the first m are
    /// inputs. One reference (black, or one given image) then costs one image's pass, not m.
    Shared,
}

impl References {
    /// How many of a batch of `n` images are inputs, or None when `n` cannot hold inputs and
    /// their references in this layout (odd, or fewer than two images).
    pub fn inputs(self, n: usize) -> Option<usize> {
        match self {
            References::Paired => (n >= 2 && n.is_multiple_of(2)).then_some(n / 2),
            References::Shared => (n >= 2).then_some(n - 1),
        }
    }

    /// The index of input image `b`'s reference in a batch whose first `inputs` images are the
    /// inputs.
    pub fn of(self, b: usize, inputs: usize) -> usize {
        match self {
            References::Paired => inputs + b,
            References::Shared => inputs,
        }
    }

    /// What a batch in this layout holds, for error messages.
    pub(crate) fn layout(self) -> &'static str {
        match self {
            References::Paired => "a batch of inputs then as many references",
            References::Shared => "a batch of inputs then one reference",
        }
    }
}

/// The backward rule of the affine ops (linear and conv2d).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum AffineRule {
    /// The chain rule.
    #[default]
    Gradient,
    /// LRP-epsilon: R_i = sum_j x_i w_ji R_j / (z_j + eps sign(z_j)), sign(0) = 1.
    Epsilon {
        /// The stabilizer eps (Captum's default is 1e-9).
        epsilon: f64,
    },
    /// LRP-gamma: the epsilon rule with w + gamma w+ and b + gamma b+ in place of w and b.
    Gamma {
        /// Weight of the positive part.
        gamma: f64,
        /// Stabilizer of the denominator.
        epsilon: f64,
    },
    /// LRP-alpha-beta: R_i = sum_j (alpha (x_i w_ji)+ / z+_j - beta (x_i w_ji)- / z-_j) R_j,
    /// biases left out of z+ and z-.
    AlphaBeta {
        /// Weight of the positive contributions.
        alpha: f64,
        /// Weight of the negative contributions (alpha - beta = 1 conserves relevance).
        beta: f64,
        /// Stabilizer of the denominators.
        epsilon: f64,
    },
}

/// The backward rule of max-pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PoolRule {
    /// The gradient goes to each window's maximum.
    #[default]
    Gradient,
    /// DeepLIFT's rescale for max-pool as Captum computes it, against each input's reference in
    /// the batch ([`References`]): each window's output difference y - y' is split into
    /// max(y, y') - y' at the input's maximum and y - max(y, y') at the reference's maximum,
    /// and divided by x - x' there (the plain gradient where |x - x'| < 1e-10).
    Rescale,
}

/// The rules in effect while recording: one per kind of op. Ops not listed (batch norm,
/// reshape, softmax, ...) always use the chain rule.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct RuleSet {
    /// ReLU (and the ReLU half of a fused ReLU + max-pool, which is recorded as two ops when
    /// any rule here is not the gradient, except guided backpropagation over windows that do
    /// not overlap).
    pub relu: ReluRule,
    /// Conv layers.
    pub conv: AffineRule,
    /// Dense layers.
    pub linear: AffineRule,
    /// Max-pool.
    pub max_pool: PoolRule,
    /// Where the rescale rules find the references (unused by the other rules).
    pub references: References,
}

impl RuleSet {
    /// Plain gradients everywhere.
    pub fn gradient() -> Self {
        Self::default()
    }

    /// Guided backpropagation.
    pub fn guided_backprop() -> Self {
        RuleSet {
            relu: ReluRule::GuidedBackprop,
            ..Self::default()
        }
    }

    /// Deconvnet.
    pub fn deconvnet() -> Self {
        RuleSet {
            relu: ReluRule::Deconvnet,
            ..Self::default()
        }
    }

    /// LRP-epsilon on every conv and dense layer.
    pub fn lrp_epsilon(epsilon: f64) -> Self {
        let rule = AffineRule::Epsilon { epsilon };
        RuleSet {
            conv: rule,
            linear: rule,
            ..Self::default()
        }
    }

    /// LRP-gamma on conv layers, LRP-epsilon on dense layers.
    pub fn lrp_gamma(gamma: f64, epsilon: f64) -> Self {
        RuleSet {
            conv: AffineRule::Gamma { gamma, epsilon },
            linear: AffineRule::Epsilon { epsilon },
            ..Self::default()
        }
    }

    /// LRP-alpha-beta on conv layers, LRP-epsilon on dense layers.
    pub fn lrp_alpha_beta(alpha: f64, beta: f64, epsilon: f64) -> Self {
        RuleSet {
            conv: AffineRule::AlphaBeta {
                alpha,
                beta,
                epsilon,
            },
            linear: AffineRule::Epsilon { epsilon },
            ..Self::default()
        }
    }

    /// DeepLIFT's rescale rule; the batch's second half holds the references.
    pub fn deeplift_rescale() -> Self {
        RuleSet {
            relu: ReluRule::Rescale,
            max_pool: PoolRule::Rescale,
            ..Self::default()
        }
    }

    /// DeepLIFT's rescale rule; the batch's last image is every input's reference.
    pub fn deeplift_rescale_shared() -> Self {
        RuleSet {
            references: References::Shared,
            ..Self::deeplift_rescale()
        }
    }

    /// True when a ReLU straight into a max-pool may run as one fused op (plain rules for both).
    pub(crate) fn fuses_relu_pool(&self) -> bool {
        self.relu == ReluRule::Gradient && self.max_pool == PoolRule::Gradient
    }
}

impl<T: Float> crate::Tape<T> {
    /// LRP-epsilon's eps when the quotient s = g z / (z + eps sign z) of affine node `z` (conv
    /// or dense, recorded under the epsilon rule) is computed by the op that reads `z`, in its
    /// backward: when that op is `z`'s only consumer and can (a ReLU with the plain rule, whose
    /// backward reads z anyway, or a max-pool whose windows do not overlap, see
    /// [`MaxPool2dOp::takes_lrp_quotient`]). The affine op then takes its output gradient as s.
    /// Both ops ask, so they agree on who does it.
    ///
    /// The separate pass would read z and g again from memory after the consumer wrote g: it
    /// was the one cost an LRP-epsilon gradient had over a plain one.
    ///
    /// [`MaxPool2dOp::takes_lrp_quotient`]: crate::ops::max_pool2d::MaxPool2dOp::takes_lrp_quotient
    pub(crate) fn lrp_epsilon_handed_over(&self, z: crate::NodeId) -> Option<f64> {
        use crate::op::Op;
        let node = &self.nodes[z.0];
        let epsilon = match &node.op {
            Op::Conv2d(conv) => conv.epsilon()?,
            Op::Linear(linear) => linear.epsilon()?,
            _ => return None,
        };
        if node.consumers != 1 {
            return None;
        }
        match &self.nodes[node.last_consumer].op {
            Op::MaxPool2d(pool) if pool.takes_lrp_quotient() => Some(epsilon),
            Op::Relu(relu) if relu.takes_lrp_quotient() => Some(epsilon),
            _ => None,
        }
    }
}

/// z + eps sign(z) with sign(0) = 1 (Captum's stabilizer).
#[inline(always)]
fn stabilize(z: f64, eps: f64) -> f64 {
    // A select, not a branch, so the loops over it vectorize.
    z + if z >= 0.0 { eps } else { -eps }
}

/// `factor * g z / (d + eps sign(d))` in f64, rounded once to T: the signal an LRP rule sends
/// into an affine op's linear part for output signal `g`, output `z` and denominator `d`
/// (for f64; f32 runs the same formula in f32 at the CPU's vector width,
/// `tensor::stabilized_ratio::scaled_ratio`).
/// Only with eps = 0: a zero denominator carries no relevance (R = z g is zero when z is, and a
/// zero z+ or z- has only zero terms).
#[inline(always)]
fn rule_signal_at<T: Float>(g: T, z: T, d: T, eps: f64, factor: f64) -> T {
    let den = stabilize(d.to_f64(), eps);
    let s = factor * g.to_f64() * z.to_f64() / den;
    // A select, not a branch, so the loops over it vectorize.
    T::from_f64(if den == 0.0 { 0.0 } else { s })
}

/// Elements per task of [`epsilon_signal`]: a few tasks per layer, each long enough to pay for
/// itself. Element-wise, so the split never changes a bit.
const SIGNAL_CHUNK: usize = 1 << 15;

/// LRP-epsilon's signal into an affine op's linear part, written into `s`: s_j = g_j z_j /
/// (z_j + eps sign(z_j)), z the op's output (bias included) and g the signal at it, so that
/// z_j g_j, the output's relevance, is split over the inputs in proportion to x_i w_ji. The
/// input's signal is then the op's ordinary input gradient with `s` as the output gradient
/// (W^T s), which is why the ops run their own input-gradient kernels on it.
///
/// Computed in T, unlike the other rules' f64 (the same bits for f64; for f32 within an ulp or
/// two of the f64 quotient rounded once), so that it runs as wide as the element type allows:
/// this is every LRP-epsilon layer's only pass besides the input gradient itself.
pub(crate) fn epsilon_signal<T: Float>(g: &[T], z: &[T], epsilon: f64, s: &mut [T]) {
    use rayon::prelude::*;
    assert!(
        g.len() == z.len() && s.len() == z.len(),
        "one signal per output"
    );
    let eps = T::from_f64(epsilon);
    if let (Some(g), Some(z), Some(s)) = (
        tensor::f32_view::as_f32(g),
        tensor::f32_view::as_f32(z),
        tensor::f32_view::as_f32_mut(s),
    ) {
        // f32: the same loop compiled at the CPU's vector width (the same bits on every tier).
        let (tier, eps) = (tensor::cpu::tier(), epsilon as f32);
        s.par_chunks_mut(SIGNAL_CHUNK)
            .zip(g.par_chunks(SIGNAL_CHUNK))
            .zip(z.par_chunks(SIGNAL_CHUNK))
            .for_each(|((s, g), z)| tensor::stabilized_ratio::stabilized_ratio(tier, g, z, eps, s));
        return;
    }
    s.par_chunks_mut(SIGNAL_CHUNK)
        .zip(g.par_chunks(SIGNAL_CHUNK))
        .zip(z.par_chunks(SIGNAL_CHUNK))
        .for_each(|((s, g), z)| {
            for ((s, &g), &z) in s.iter_mut().zip(g).zip(z) {
                // z + eps sign(z), sign(0) = 1; selects, not branches, so the loop vectorizes.
                let den = if z >= T::ZERO { z + eps } else { z - eps };
                let v = g * z / den;
                // Only with eps = 0: a zero z carries no relevance.
                *s = if den == T::ZERO { T::ZERO } else { v };
            }
        });
}

/// The two kernels an LRP rule needs from an affine op: its forward with given weights (and
/// bias), and the input-gradient pass of its linear part.
pub(crate) trait AffineKernels<T> {
    /// z = x * w (+ b), shaped like the op's output.
    fn forward(&mut self, x: &[T], w: &[T], b: Option<&[T]>) -> Vec<T>;
    /// The input gradient of the linear part (no bias) for upstream signal `s`.
    fn backward_input(&mut self, w: &[T], s: &[T]) -> Vec<T>;
    /// A buffer of `len` elements with unspecified contents, for a pass that overwrites it
    /// (the tape's buffer pool: a zeroed allocation per layer cost 13 % of an LRP-gamma pass).
    fn buffer(&mut self, len: usize) -> Vec<T>;
    /// Gives a buffer that is no longer read back to the pool.
    fn retire(&mut self, buffer: Vec<T>);
}

/// `f(a_i, b_i)` for every element pair, the range split between the threads: element-wise,
/// so the split never changes a bit. The slices are zipped (no indexing, no bounds checks), so
/// the loop compiles to vector code for a branch-free `f`.
fn par_zip_map<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    use rayon::prelude::*;
    debug_assert_eq!(a.len(), b.len(), "element-wise operands");
    let mut out = vec![T::ZERO; a.len()];
    out.par_chunks_mut(SIGNAL_CHUNK)
        .zip(a.par_chunks(SIGNAL_CHUNK))
        .zip(b.par_chunks(SIGNAL_CHUNK))
        .for_each(|((o, a), b)| {
            for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                *o = f(a, b);
            }
        });
    out
}

/// The positive (or negative) part of every element: `v` where its sign is `positive`'s and
/// it is not zero, else zero (a NaN counts as negative).
fn part<T: Float>(v: &[T], positive: bool) -> Vec<T> {
    if positive {
        par_zip_map(v, v, |a, _| if a > T::ZERO { a } else { T::ZERO })
    } else {
        par_zip_map(v, v, |a, _| if a >= T::ZERO { T::ZERO } else { a })
    }
}

/// The backward signal at the input of an affine op under an LRP `rule` (not `Gradient`):
/// `x`, `w`, `b` the op's input, weight and bias, `z` its output, `g` the signal at the output.
///
/// Every element-wise pass splits between the threads (the same bits whatever their number);
/// a half of alpha-beta whose weight is zero (beta = 0, the common alpha 1 beta 0 rule) is
/// skipped, its terms being zero.
pub(crate) fn lrp_affine_backward<T: Float>(
    rule: AffineRule,
    kernels: &mut dyn AffineKernels<T>,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    z: &[T],
    g: &[T],
) -> Vec<T> {
    use rayon::prelude::*;
    // s_j = g_j z_j / denominator_j: R_j = z_j g_j is the output's relevance, into `s` (every
    // element written).
    let scaled = |den: &[T], eps: f64, factor: f64, mut s: Vec<T>| -> Vec<T> {
        assert_eq!(s.len(), z.len(), "one signal per output");
        if let (Some(g), Some(z), Some(den), Some(s)) = (
            tensor::f32_view::as_f32(g),
            tensor::f32_view::as_f32(z),
            tensor::f32_view::as_f32(den),
            tensor::f32_view::as_f32_mut(&mut s),
        ) {
            let out = s;
            // f32: in f32 at the CPU's vector width, as LRP-epsilon's signal (the same bits on
            // every tier).
            let (tier, eps, factor) = (tensor::cpu::tier(), eps as f32, factor as f32);
            out.par_chunks_mut(SIGNAL_CHUNK)
                .zip(g.par_chunks(SIGNAL_CHUNK))
                .zip(z.par_chunks(SIGNAL_CHUNK).zip(den.par_chunks(SIGNAL_CHUNK)))
                .for_each(|((s, g), (z, d))| {
                    tensor::stabilized_ratio::scaled_ratio(tier, g, z, d, eps, factor, s)
                });
        } else {
            s.par_chunks_mut(SIGNAL_CHUNK)
                .zip(g.par_chunks(SIGNAL_CHUNK))
                .zip(z.par_chunks(SIGNAL_CHUNK).zip(den.par_chunks(SIGNAL_CHUNK)))
                .for_each(|((s, g), (z, den))| {
                    for (((s, &g), &z), &d) in s.iter_mut().zip(g).zip(z).zip(den) {
                        *s = rule_signal_at(g, z, d, eps, factor);
                    }
                });
        }
        s
    };
    match rule {
        AffineRule::Gradient => kernels.backward_input(w, g),
        AffineRule::Epsilon { epsilon } => {
            let mut s = kernels.buffer(z.len()); // overwritten
            epsilon_signal(g, z, epsilon, &mut s);
            let dx = kernels.backward_input(w, &s);
            kernels.retire(s);
            dx
        }
        AffineRule::Gamma { gamma, epsilon } => {
            let lift = |v: &[T]| -> Vec<T> {
                v.iter()
                    .map(|&a| a + T::from_f64(gamma) * a.max(T::ZERO))
                    .collect()
            };
            let (w2, b2) = (lift(w), b.map(lift));
            let z2 = kernels.forward(x, &w2, b2.as_deref());
            let s = scaled(&z2, epsilon, 1.0, kernels.buffer(z.len()));
            kernels.retire(z2);
            let dx = kernels.backward_input(&w2, &s);
            kernels.retire(s);
            dx
        }
        AffineRule::AlphaBeta {
            alpha,
            beta,
            epsilon,
        } => {
            let (wp, wn) = (part(w, true), part(w, false));
            let any_negative = x.par_iter().any(|&v| v < T::ZERO);
            let sum = |a: Vec<T>, b: Vec<T>| -> Vec<T> { par_zip_map(&a, &b, |a, b| a + b) };
            // z+ = x+ w+ + x- w-, z- = x+ w- + x- w+ (each product's sign is that of its term).
            // Without negative inputs, x+ is x and the x- terms vanish.
            let xn = any_negative.then(|| part(x, false));
            let xp = any_negative.then(|| part(x, true));
            let xp: &[T] = xp.as_deref().unwrap_or(x);
            let signal = |kernels: &mut dyn AffineKernels<T>,
                          w_same: &[T],
                          w_other: &[T],
                          factor: f64|
             -> Vec<T> {
                let mut den = kernels.forward(xp, w_same, None);
                if let Some(xn) = &xn {
                    let other = kernels.forward(xn, w_other, None);
                    den = sum(den, other);
                }
                let s = scaled(&den, epsilon, factor, kernels.buffer(z.len()));
                kernels.retire(den);
                s
            };
            let sp = (alpha != 0.0).then(|| signal(kernels, &wp, &wn, alpha));
            let sn = (beta != 0.0).then(|| signal(kernels, &wn, &wp, beta));
            // The signal at inputs of one sign: the positive terms come through `w_pos`, the
            // negative through `w_neg` (where x > 0: w+ and w-; where x < 0: the other way).
            let mut through = |w_pos: &[T], w_neg: &[T]| -> Vec<T> {
                let p = sp.as_ref().map(|s| kernels.backward_input(w_pos, s));
                let n = sn.as_ref().map(|s| kernels.backward_input(w_neg, s));
                match (p, n) {
                    (Some(p), Some(n)) => par_zip_map(&p, &n, |p, n| p - n),
                    (Some(p), None) => p,
                    (None, Some(n)) => par_zip_map(&n, &n, |n, _| -n),
                    (None, None) => vec![T::ZERO; x.len()],
                }
            };
            let mut out = through(&wp, &wn);
            let at_negative = any_negative.then(|| through(&wn, &wp));
            // In place over the positive inputs' signal: each input takes its sign's.
            // (Zipped and branch-free, so it compiles to vector code; a NaN input takes zero.)
            match &at_negative {
                Some(negative) => out
                    .par_chunks_mut(SIGNAL_CHUNK)
                    .zip(x.par_chunks(SIGNAL_CHUNK))
                    .zip(negative.par_chunks(SIGNAL_CHUNK))
                    .for_each(|((o, x), c)| {
                        for ((v, &xi), &c) in o.iter_mut().zip(x).zip(c) {
                            let kept = if xi > T::ZERO { *v } else { T::ZERO };
                            *v = if xi < T::ZERO { c } else { kept };
                        }
                    }),
                None => out
                    .par_chunks_mut(SIGNAL_CHUNK)
                    .zip(x.par_chunks(SIGNAL_CHUNK))
                    .for_each(|(o, x)| {
                        for (v, &xi) in o.iter_mut().zip(x) {
                            *v = if xi > T::ZERO { *v } else { T::ZERO };
                        }
                    }),
            }
            for buffer in [at_negative, sp, sn].into_iter().flatten() {
                kernels.retire(buffer);
            }
            out
        }
    }
}
