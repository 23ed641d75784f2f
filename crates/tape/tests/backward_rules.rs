//! Backward rules (tape::rules): hand-derived cases, and the conservation laws of LRP and
//! DeepLIFT's rescale rule (relevances sum to the output, or to the output difference, up to the
//! stated bias and stabilizer terms).

use proptest::prelude::*;
use tape::gradcheck::random_values;
use tape::{NodeId, RuleSet, Tape, TapeError};
use tensor::Tensor;

fn rand_tensor(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::from_vec(shape, random_values(shape.iter().product(), seed)).unwrap()
}

/// Non-negative values (activations after a ReLU, or images).
fn positive(shape: &[usize], seed: u64) -> Tensor<f64> {
    let v = random_values(shape.iter().product(), seed)
        .into_iter()
        .map(|x| x.abs())
        .collect();
    Tensor::from_vec(shape, v).unwrap()
}

/// A graph under test, built on the input node.
type Build<'a> = dyn Fn(&mut Tape<f64>, NodeId) -> Result<NodeId, TapeError> + 'a;

/// The backward signal at `x` for a graph `build` seeded with `seed_out` at its output
/// (sum(seed_out * y)), under `rules`, and the output's value.
fn signal(
    rules: RuleSet,
    x: &Tensor<f64>,
    seed_out: &dyn Fn(&[usize]) -> Tensor<f64>,
    build: &Build<'_>,
) -> (Vec<f64>, Vec<f64>) {
    let mut tape = Tape::with_rules(rules);
    let xi = tape.variable(x.clone());
    let y = build(&mut tape, xi).unwrap();
    let yv = tape.value(y).clone();
    let r = tape.constant(seed_out(yv.shape()));
    let ry = tape.mul(y, r).unwrap();
    let total = tape.sum(ry).unwrap();
    let grads = tape.backward(total).unwrap();
    (grads.get(xi).unwrap().data().to_vec(), yv.data().to_vec())
}

fn relevance(x: &Tensor<f64>, c: &[f64]) -> Vec<f64> {
    x.data().iter().zip(c).map(|(a, b)| a * b).collect()
}

#[test]
fn guided_backprop_and_deconvnet_relu_by_hand() {
    let x = Tensor::from_vec(&[4], vec![-1.0, 2.0, 3.0, 0.5]).unwrap();
    let up = |_: &[usize]| Tensor::from_vec(&[4], vec![1.0, -1.0, 2.0, -3.0]).unwrap();
    let relu = |t: &mut Tape<f64>, x: NodeId| t.relu(x);
    assert_eq!(
        signal(RuleSet::gradient(), &x, &up, &relu).0,
        [0.0, -1.0, 2.0, -3.0]
    );
    assert_eq!(
        signal(RuleSet::guided_backprop(), &x, &up, &relu).0,
        [0.0, 0.0, 2.0, 0.0]
    );
    assert_eq!(
        signal(RuleSet::deconvnet(), &x, &up, &relu).0,
        [1.0, 0.0, 2.0, 0.0]
    );
}

#[test]
fn a_fused_relu_pool_follows_the_rule_of_its_relu() {
    let up = |s: &[usize]| rand_tensor(s, 9);
    // Guided backpropagation and deconvnet keep the op fused where windows do not overlap
    // (2/2), and record two ops where they do (3/2, an input can win two windows).
    for (side, kernel, stride) in [(4, 2, 2), (7, 3, 2)] {
        let mut x = rand_tensor(&[2, 3, side, side], 3);
        // A window with no positive value: its ReLU outputs are all zero, and deconvnet passes
        // the window's gradient to its first element.
        for (r, c) in [
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (0, 2),
            (1, 2),
            (2, 0),
            (2, 1),
            (2, 2),
        ] {
            if r < kernel && c < kernel {
                x.data_mut()[r * side + c] = -0.5 - (r * side + c) as f64;
            }
        }
        let fused = |t: &mut Tape<f64>, x: NodeId| t.relu_max_pool2d(x, kernel, stride);
        let apart = |t: &mut Tape<f64>, x: NodeId| {
            let r = t.relu(x)?;
            t.max_pool2d(r, kernel, stride)
        };
        for rules in [
            RuleSet::gradient(),
            RuleSet::guided_backprop(),
            RuleSet::deconvnet(),
        ] {
            assert_eq!(
                signal(rules, &x, &up, &fused).0,
                signal(rules, &x, &up, &apart).0,
                "{rules:?}, pool {kernel}/{stride}"
            );
        }
    }
    let x = rand_tensor(&[2, 3, 4, 4], 3);
    let fused = |t: &mut Tape<f64>, x: NodeId| t.relu_max_pool2d(x, 2, 2);
    // Guided differs from plain on this input (negative upstream values exist).
    assert_ne!(
        signal(RuleSet::gradient(), &x, &up, &fused).0,
        signal(RuleSet::guided_backprop(), &x, &up, &fused).0
    );
    // Deconvnet sends an all-negative window's positive gradient to the window's first
    // element; guided backpropagation sends it nowhere.
    let mut x = x;
    for i in [0, 1, 4, 5] {
        x.data_mut()[i] = -1.0 - i as f64;
    }
    let up_positive = |s: &[usize]| positive(s, 9);
    let g0 = positive(&[2, 3, 2, 2], 9).data()[0];
    assert!(g0 > 0.0);
    let deconvnet = signal(RuleSet::deconvnet(), &x, &up_positive, &fused).0;
    assert_eq!(
        deconvnet[..6],
        [g0, 0.0, 0.0, 0.0, 0.0, 0.0][..],
        "window 0"
    );
    let guided = signal(RuleSet::guided_backprop(), &x, &up_positive, &fused).0;
    assert_eq!(guided[0], 0.0);
}

/// LRP-epsilon through one dense layer, element by element:
/// R_i = sum_j x_i w_ji R_j / (z_j + eps sign z_j) with R_j = z_j g_j.
#[test]
fn lrp_epsilon_dense_by_hand_and_its_conservation() {
    let (n, fin, fout, eps) = (2, 5, 3, 0.3);
    let x = rand_tensor(&[n, fin], 1);
    let w = rand_tensor(&[fout, fin], 2);
    let b = rand_tensor(&[fout], 3);
    let g = rand_tensor(&[n, fout], 4);
    let build = |t: &mut Tape<f64>, xi: NodeId| {
        let wi = t.constant(w.clone());
        let bi = t.constant(b.clone());
        t.linear(xi, wi, Some(bi))
    };
    let (c, z) = signal(RuleSet::lrp_epsilon(eps), &x, &|_| g.clone(), &build);
    let r = relevance(&x, &c);
    let stab = |z: f64| if z >= 0.0 { z + eps } else { z - eps };
    for s in 0..n {
        for i in 0..fin {
            let want: f64 = (0..fout)
                .map(|j| {
                    let zj = z[s * fout + j];
                    x.data()[s * fin + i] * w.data()[j * fin + i] * zj * g.data()[s * fout + j]
                        / stab(zj)
                })
                .sum();
            assert!(
                (r[s * fin + i] - want).abs() < 1e-12,
                "({s}, {i}): {} vs {want}",
                r[s * fin + i]
            );
        }
        // Conservation: sum_i R_i = sum_j R_j (z_j - b_j) / (z_j + eps sign z_j).
        let total: f64 = r[s * fin..(s + 1) * fin].iter().sum();
        let want: f64 = (0..fout)
            .map(|j| {
                let zj = z[s * fout + j];
                zj * g.data()[s * fout + j] * (zj - b.data()[j]) / stab(zj)
            })
            .sum();
        assert!((total - want).abs() < 1e-12, "{total} vs {want}");
    }
}

/// The study's layer sequence without biases (conv, relu, pool, flatten, dense, relu, dense):
/// with eps -> 0 every layer conserves, so the input relevances sum to the target logit.
fn small_net(
    t: &mut Tape<f64>,
    x: NodeId,
    weights: &[Tensor<f64>],
    biases: Option<&[Tensor<f64>]>,
) -> Result<NodeId, TapeError> {
    let p: Vec<NodeId> = weights.iter().map(|w| t.constant(w.clone())).collect();
    let b: Vec<Option<NodeId>> = match biases {
        Some(bs) => bs.iter().map(|v| Some(t.constant(v.clone()))).collect(),
        None => vec![None; 3],
    };
    let h = t.conv2d(x, p[0], b[0], 1, 1)?;
    let h = t.relu_max_pool2d(h, 2, 2)?;
    let h = t.flatten(h)?;
    let h = t.linear(h, p[1], b[1])?;
    let h = t.relu(h)?;
    t.linear(h, p[2], b[2])
}

fn net_weights(seed: u64) -> Vec<Tensor<f64>> {
    vec![
        rand_tensor(&[4, 2, 3, 3], seed),
        rand_tensor(&[6, 4 * 3 * 3], seed + 1),
        rand_tensor(&[3, 6], seed + 2),
    ]
}

fn net_biases(seed: u64) -> Vec<Tensor<f64>> {
    vec![
        rand_tensor(&[4], seed),
        rand_tensor(&[6], seed + 1),
        rand_tensor(&[3], seed + 2),
    ]
}

/// Seeds 1 at class `k` of every row.
fn one_hot(k: usize) -> impl Fn(&[usize]) -> Tensor<f64> {
    move |s: &[usize]| {
        let mut t = Tensor::zeros(s);
        for row in t.data_mut().chunks_exact_mut(s[1]) {
            row[k] = 1.0;
        }
        t
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn lrp_epsilon_without_biases_conserves_the_logit(seed in 0u64..1000, k in 0usize..3) {
        let x = positive(&[2, 2, 6, 6], seed);
        let w = net_weights(seed + 10);
        let build = |t: &mut Tape<f64>, xi: NodeId| small_net(t, xi, &w, None);
        let (c, logits) = signal(RuleSet::lrp_epsilon(1e-12), &x, &one_hot(k), &build);
        let r = relevance(&x, &c);
        for s in 0..2 {
            let total: f64 = r[s * 72..(s + 1) * 72].iter().sum();
            let want = logits[s * 3 + k];
            prop_assert!((total - want).abs() < 1e-8 * want.abs().max(1.0), "{} vs {}", total, want);
        }
    }

    /// Alpha-beta on a conv layer with bias: sum_i R_i = sum_j R_j (alpha z+_j / (z+_j + eps)
    /// - beta z-_j / (z-_j - eps)), which is sum_j R_j for alpha - beta = 1 except where z+_j or
    /// z-_j is zero (biases are left out of z+ and z-, so they absorb nothing).
    #[test]
    fn lrp_alpha_beta_conv_conservation(seed in 0u64..1000) {
        let (alpha, beta, eps) = (2.0, 1.0, 1e-9);
        let x = positive(&[1, 2, 5, 5], seed);
        let w = rand_tensor(&[3, 2, 3, 3], seed + 1);
        let b = rand_tensor(&[3], seed + 2);
        let g = rand_tensor(&[1, 3, 5, 5], seed + 3);
        let build = |t: &mut Tape<f64>, xi: NodeId| {
            let wi = t.constant(w.clone());
            let bi = t.constant(b.clone());
            t.conv2d(xi, wi, Some(bi), 1, 1)
        };
        let (c, z) = signal(RuleSet::lrp_alpha_beta(alpha, beta, eps), &x, &|_| g.clone(), &build);
        let total: f64 = relevance(&x, &c).iter().sum();
        let part = |positive: bool| {
            let wp = Tensor::from_vec(w.shape(), w.data().iter().map(|&v| if (v > 0.0) == positive { v } else { 0.0 }).collect()).unwrap();
            let mut t = Tape::no_record();
            let (xi, wi) = (t.constant(x.clone()), t.constant(wp));
            let z = t.conv2d(xi, wi, None, 1, 1).unwrap();
            t.value(z).data().to_vec()
        };
        let (zp, zn) = (part(true), part(false));
        let want: f64 = (0..z.len())
            .map(|j| z[j] * g.data()[j] * (alpha * zp[j] / (zp[j] + eps) - beta * zn[j] / (zn[j] - eps)))
            .sum();
        prop_assert!((total - want).abs() < 1e-9, "{} vs {}", total, want);
        let all: f64 = (0..z.len()).map(|j| z[j] * g.data()[j]).sum();
        if zp.iter().chain(&zn).all(|&v| v != 0.0) {
            // Each unit loses at most |R_j| (alpha eps / (z+ + eps) + beta eps / (|z-| + eps))
            // to the stabilizer: tiny unless z+ or z- is itself tiny.
            let bound: f64 = (0..z.len())
                .map(|j| {
                    (z[j] * g.data()[j]).abs()
                        * (alpha * eps / (zp[j] + eps) + beta * eps / (zn[j].abs() + eps))
                })
                .sum();
            prop_assert!((total - all).abs() <= bound + 1e-9, "{} vs {} (bound {})", total, all, bound);
        }
    }

    /// DeepLIFT's rescale: sum (x - x') * m = F(x) - F(x') for each image, exactly up to
    /// rounding, through conv, ReLU, max-pool and dense layers with biases.
    #[test]
    fn deeplift_rescale_sums_to_the_output_difference(seed in 0u64..1000, k in 0usize..3) {
        let n = 2;
        let inputs = positive(&[n, 2, 6, 6], seed);
        let refs = positive(&[n, 2, 6, 6], seed + 1);
        let mut both = inputs.data().to_vec();
        both.extend_from_slice(refs.data());
        let x = Tensor::from_vec(&[2 * n, 2, 6, 6], both).unwrap();
        let w = net_weights(seed + 40);
        let b = net_biases(seed + 50);
        let build = |t: &mut Tape<f64>, xi: NodeId| small_net(t, xi, &w, Some(&b));
        let (m, logits) = signal(RuleSet::deeplift_rescale(), &x, &one_hot(k), &build);
        for s in 0..n {
            let range = s * 72..(s + 1) * 72;
            let total: f64 = inputs.data()[range.clone()]
                .iter()
                .zip(&refs.data()[range.clone()])
                .zip(&m[range])
                .map(|((a, r), m)| (a - r) * m)
                .sum();
            let want = logits[s * 3 + k] - logits[(n + s) * 3 + k];
            prop_assert!((total - want).abs() < 1e-9 * want.abs().max(1.0), "{} vs {}", total, want);
        }
        // The references get no signal.
        prop_assert!(m[n * 72..].iter().all(|&v| v == 0.0));
    }

    /// The shared layout (inputs, then one reference for all) gives the paired layout's signal
    /// with that reference copied once per input, through conv, ReLU, max-pool and dense layers.
    #[test]
    fn deeplift_with_one_shared_reference_is_deeplift_with_copies_of_it(
        seed in 0u64..1000,
        k in 0usize..3,
        n in 1usize..4,
    ) {
        let inputs = positive(&[n, 2, 6, 6], seed);
        let reference = positive(&[1, 2, 6, 6], seed + 1);
        let batch = |copies: usize| {
            let mut v = inputs.data().to_vec();
            (0..copies).for_each(|_| v.extend_from_slice(reference.data()));
            Tensor::from_vec(&[n + copies, 2, 6, 6], v).unwrap()
        };
        let w = net_weights(seed + 40);
        let b = net_biases(seed + 50);
        let build = |t: &mut Tape<f64>, xi: NodeId| small_net(t, xi, &w, Some(&b));
        let (shared, shared_logits) =
            signal(RuleSet::deeplift_rescale_shared(), &batch(1), &one_hot(k), &build);
        let (paired, paired_logits) =
            signal(RuleSet::deeplift_rescale(), &batch(n), &one_hot(k), &build);
        for i in 0..n * 72 {
            prop_assert!(
                (shared[i] - paired[i]).abs() <= 1e-12 * paired[i].abs().max(1.0),
                "at {}: {} vs {}", i, shared[i], paired[i]
            );
        }
        prop_assert!(shared[n * 72..].iter().all(|&v| v == 0.0));
        // The reference's logits are those of each of its copies.
        for c in 0..3 {
            let one = shared_logits[n * 3 + c];
            prop_assert!((one - paired_logits[n * 3 + c]).abs() <= 1e-12 * one.abs().max(1.0));
        }
    }
}

/// LRP-gamma on one conv layer: sum_i R_i = sum_j R_j (z'_j - b'_j) / (z'_j + eps sign z'_j),
/// with w' = w + gamma w+, b' = b + gamma b+, and gamma = 0 is the epsilon rule.
#[test]
fn lrp_gamma_conv_conservation_and_gamma_zero_is_epsilon() {
    let x = positive(&[1, 2, 5, 5], 5);
    let w = rand_tensor(&[3, 2, 3, 3], 6);
    let b = rand_tensor(&[3], 7);
    let g = rand_tensor(&[1, 3, 5, 5], 8);
    let build = |t: &mut Tape<f64>, xi: NodeId| {
        let wi = t.constant(w.clone());
        let bi = t.constant(b.clone());
        t.conv2d(xi, wi, Some(bi), 1, 1)
    };
    let (gamma, eps) = (0.25, 1e-3);
    let (c, z) = signal(RuleSet::lrp_gamma(gamma, eps), &x, &|_| g.clone(), &build);
    let total: f64 = relevance(&x, &c).iter().sum();
    // z' from a plain forward with the lifted weights.
    let lift = |t: &Tensor<f64>| {
        Tensor::from_vec(
            t.shape(),
            t.data().iter().map(|&v| v + gamma * v.max(0.0)).collect(),
        )
        .unwrap()
    };
    let (w2, b2) = (lift(&w), lift(&b));
    let mut t = Tape::no_record();
    let (xi, wi, bi) = (
        t.constant(x.clone()),
        t.constant(w2),
        t.constant(b2.clone()),
    );
    let z2 = t.conv2d(xi, wi, Some(bi), 1, 1).unwrap();
    let z2 = t.value(z2).data().to_vec();
    let want: f64 = (0..z.len())
        .map(|j| {
            let zp = z2[j];
            let den = if zp >= 0.0 { zp + eps } else { zp - eps };
            z[j] * g.data()[j] * (zp - b2.data()[j / 25]) / den
        })
        .sum();
    assert!((total - want).abs() < 1e-10, "{total} vs {want}");
    let (c0, _) = signal(RuleSet::lrp_gamma(0.0, eps), &x, &|_| g.clone(), &build);
    let (ce, _) = signal(RuleSet::lrp_epsilon(eps), &x, &|_| g.clone(), &build);
    for (a, b) in c0.iter().zip(&ce) {
        assert!((a - b).abs() < 1e-12);
    }
}

/// Alpha-beta through one dense layer, element by element: inputs of both signs and inputs >= 0
/// (where the x- terms are skipped), and weightings with a zero half (skipped too).
#[test]
fn lrp_alpha_beta_dense_by_hand_with_negative_inputs() {
    let (fin, fout) = (6, 4);
    let mixed = rand_tensor(&[1, fin], 11);
    assert!(mixed.data().iter().any(|&v| v < 0.0));
    let non_negative =
        Tensor::from_vec(&[1, fin], mixed.data().iter().map(|v| v.abs()).collect()).unwrap();
    let w = rand_tensor(&[fout, fin], 12);
    let g = rand_tensor(&[1, fout], 13);
    for x in [&mixed, &non_negative] {
        for (alpha, beta) in [(2.0, 1.0), (1.0, 0.0), (0.0, 1.0)] {
            let rules = RuleSet {
                linear: tape::AffineRule::AlphaBeta {
                    alpha,
                    beta,
                    epsilon: 0.0,
                },
                ..RuleSet::default()
            };
            let build = |t: &mut Tape<f64>, xi: NodeId| {
                let wi = t.constant(w.clone());
                t.linear(xi, wi, None)
            };
            let (c, z) = signal(rules, x, &|_| g.clone(), &build);
            let r = relevance(x, &c);
            for i in 0..fin {
                let want: f64 = (0..fout)
                    .map(|j| {
                        let terms: Vec<f64> = (0..fin)
                            .map(|q| x.data()[q] * w.data()[j * fin + q])
                            .collect();
                        let zp: f64 = terms.iter().map(|v| v.max(0.0)).sum();
                        let zn: f64 = terms.iter().map(|v| v.min(0.0)).sum();
                        let rj = z[j] * g.data()[j];
                        alpha * terms[i].max(0.0) / zp * rj - beta * terms[i].min(0.0) / zn * rj
                    })
                    .sum();
                assert!(
                    (r[i] - want).abs() < 1e-12,
                    "alpha {alpha} beta {beta}, {i}: {} vs {want}",
                    r[i]
                );
            }
        }
    }
}

#[test]
fn lrp_refuses_parameter_gradients_and_rescale_an_odd_batch() {
    let mut tape = Tape::with_rules(RuleSet::lrp_epsilon(0.1));
    let x = tape.variable(rand_tensor(&[2, 3], 1));
    let w = tape.variable(rand_tensor(&[2, 3], 2));
    let y = tape.linear(x, w, None).unwrap();
    let s = tape.sum(y).unwrap();
    let err = tape.backward(s).unwrap_err().to_string();
    assert!(err.contains("LRP") && err.contains("linear"), "{err}");
    let mut tape = Tape::with_rules(RuleSet::deeplift_rescale());
    let x = tape.variable(rand_tensor(&[3, 2], 1));
    let err = tape.relu(x).unwrap_err().to_string();
    assert!(err.contains("rescale") && err.contains("[3, 2]"), "{err}");
    // One reference for all needs at least one input before it.
    let mut tape = Tape::with_rules(RuleSet::deeplift_rescale_shared());
    let x = tape.variable(rand_tensor(&[1, 2], 1));
    let err = tape.relu(x).unwrap_err().to_string();
    assert!(
        err.contains("then one reference") && err.contains("[1, 2]"),
        "{err}"
    );
    let x = tape.variable(rand_tensor(&[3, 2], 1));
    assert!(
        tape.relu(x).is_ok(),
        "three images: two inputs and their reference"
    );
}

/// What follows the conv in [`conv_pool_signal`].
type AfterConv<T> = dyn Fn(&mut Tape<T>, NodeId) -> Result<NodeId, TapeError>;

/// The input signal of conv (3x3, padding 1, bias) then `pool` under LRP-epsilon, seeded with a
/// fixed pattern at the pool's output, in element type T.
fn conv_pool_signal<T: tensor::Float>(
    x: &[f64],
    shape: [usize; 4],
    seed: u64,
    pool: &AfterConv<T>,
) -> Vec<T> {
    let cast = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
    let [n, c, h, w] = shape;
    let out = 3;
    let mut tape = Tape::with_rules(RuleSet::lrp_epsilon(1e-3));
    let xi = tape.variable(Tensor::from_vec(&[n, c, h, w], cast(x.to_vec())).unwrap());
    let wt = Tensor::from_vec(&[out, c, 3, 3], cast(random_values(out * c * 9, seed))).unwrap();
    let b = Tensor::from_vec(&[out], cast(random_values(out, seed + 1))).unwrap();
    let (wi, bi) = (tape.constant(wt), tape.constant(b));
    let z = tape.conv2d(xi, wi, Some(bi), 1, 1).unwrap();
    let y = pool(&mut tape, z).unwrap();
    let shape_y = tape.value(y).shape().to_vec();
    let up = cast(random_values(shape_y.iter().product(), seed + 2));
    let r = tape.constant(Tensor::from_vec(&shape_y, up).unwrap());
    let ry = tape.mul(y, r).unwrap();
    let total = tape.sum(ry).unwrap();
    let grads = tape.backward(total).unwrap();
    grads.get(xi).unwrap().data().to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A max-pool or ReLU that is a conv's only consumer computes LRP-epsilon's quotient in its
    /// own backward (the pool from its pooled output, at each window's winner). The signal is
    /// the one of the separate pass, which runs when something else stands between them (a
    /// ReLU recorded on its own, a scale by 1): equal values in f64 and f32 (whose 2x2 backward
    /// is the vector kernel from 4 windows a row), odd sizes and floor-mode edges included.
    /// Only the sign of a zero may differ, which `==` does not see.
    #[test]
    fn a_pool_computing_the_lrp_quotient_gives_the_separate_pass_s_signal(
        seed in 0u64..1000, n in 1usize..3, c in 1usize..3, h in 2usize..13, w in 2usize..13,
    ) {
        let x = random_values(n * c * h * w, seed);
        let shape = [n, c, h, w];
        fn check<T: tensor::Float>(x: &[f64], shape: [usize; 4], seed: u64) -> Result<(), TestCaseError> {
            let fused_relu = conv_pool_signal::<T>(x, shape, seed, &|t, z| t.relu_max_pool2d(z, 2, 2));
            let separate_relu = conv_pool_signal::<T>(x, shape, seed, &|t, z| {
                let r = t.relu(z)?;
                t.max_pool2d(r, 2, 2)
            });
            prop_assert!(fused_relu == separate_relu, "relu + pool: {:?} vs {:?}", fused_relu, separate_relu);
            prop_assert!(fused_relu.iter().any(|v| *v != T::ZERO), "some signal reaches the input");
            let fused = conv_pool_signal::<T>(x, shape, seed, &|t, z| t.max_pool2d(z, 2, 2));
            let separate = conv_pool_signal::<T>(x, shape, seed, &|t, z| {
                let s = t.scale(z, T::from_f64(1.0))?;
                t.max_pool2d(s, 2, 2)
            });
            prop_assert!(fused == separate, "pool: {:?} vs {:?}", fused, separate);
            let relu = conv_pool_signal::<T>(x, shape, seed, &|t, z| t.relu(z));
            let separate = conv_pool_signal::<T>(x, shape, seed, &|t, z| {
                let s = t.scale(z, T::from_f64(1.0))?;
                t.relu(s)
            });
            prop_assert!(relu == separate, "relu: {:?} vs {:?}", relu, separate);
            Ok(())
        }
        check::<f64>(&x, shape, seed)?;
        check::<f32>(&x, shape, seed)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The same for a dense layer and the ReLU after it.
    #[test]
    fn a_relu_computing_a_dense_layer_s_lrp_quotient_gives_the_separate_pass_s_signal(
        seed in 0u64..1000, n in 1usize..4, fin in 1usize..20, fout in 1usize..20,
    ) {
        let x = rand_tensor(&[n, fin], seed);
        let w = rand_tensor(&[fout, fin], seed + 1);
        let b = rand_tensor(&[fout], seed + 2);
        let up = |s: &[usize]| rand_tensor(s, seed + 3);
        let dense = |t: &mut Tape<f64>, xi: NodeId| {
            let (wi, bi) = (t.constant(w.clone()), t.constant(b.clone()));
            t.linear(xi, wi, Some(bi))
        };
        let handed = |t: &mut Tape<f64>, xi: NodeId| {
            let z = dense(t, xi)?;
            t.relu(z)
        };
        let separate = |t: &mut Tape<f64>, xi: NodeId| {
            let z = dense(t, xi)?;
            let s = t.scale(z, 1.0)?;
            t.relu(s)
        };
        let rules = RuleSet::lrp_epsilon(1e-3);
        let (a, _) = signal(rules, &x, &up, &handed);
        let (b, _) = signal(rules, &x, &up, &separate);
        prop_assert!(a == b, "{:?} vs {:?}", a, b);
    }
}
