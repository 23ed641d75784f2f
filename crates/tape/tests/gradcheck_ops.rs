//! Every tape op against central finite differences in f64, on proptest-generated shapes and values.

use proptest::prelude::*;
use tape::gradcheck::{check_gradients, random_values};
use tape::{BatchNormMode, NodeId, Tape, TapeError};
use tensor::Tensor;

const H: f64 = 1e-6;
const ATOL: f64 = 1e-6;
const RTOL: f64 = 1e-4;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    }
}

/// Random values in [-1, 1).
fn rand_tensor(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::from_vec(shape, random_values(shape.iter().product(), seed)).unwrap()
}

/// Values at least 0.1 away from zero, so a ReLU kink is never within the finite-difference step.
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor<f64> {
    let v = random_values(shape.iter().product(), seed)
        .into_iter()
        .map(|x| x.signum() * (0.1 + x.abs()))
        .collect();
    Tensor::from_vec(shape, v).unwrap()
}

/// Distinct values spaced at least 1/n apart in a random order, so no max-pool window ties and
/// no winner changes within the finite-difference step.
fn distinct(shape: &[usize], seed: u64) -> Tensor<f64> {
    let n: usize = shape.iter().product();
    let r = random_values(n, seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| r[a].partial_cmp(&r[b]).unwrap());
    let mut v = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        v[i] = rank as f64 / n as f64 * 2.0 - 1.0;
    }
    Tensor::from_vec(shape, v).unwrap()
}

/// `f` applied to every element of `t`.
fn mapped(t: &Tensor<f64>, f: impl Fn(f64) -> f64) -> Tensor<f64> {
    Tensor::from_vec(t.shape(), t.data().iter().map(|&v| f(v)).collect()).unwrap()
}

/// An op recorded on a tape from one input node.
type UnaryOp<'a> = &'a dyn Fn(&mut Tape<f64>, NodeId) -> Result<NodeId, TapeError>;

/// A graph recorded on a tape from its input nodes.
type Graph<'a> = &'a dyn Fn(&mut Tape<f64>, &[NodeId]) -> Result<NodeId, TapeError>;

/// The op's output and the gradient of a random linear function of it w.r.t. its input.
fn value_and_input_gradient(x: &Tensor<f64>, seed: u64, op: UnaryOp) -> (Vec<f64>, Vec<f64>) {
    let mut tape = Tape::new();
    let xi = tape.variable(x.clone());
    let y = op(&mut tape, xi).unwrap();
    let shape = tape.value(y).shape().to_vec();
    let weights = tape.constant(rand_tensor(&shape, seed ^ 9));
    let weighted = tape.mul(y, weights).unwrap();
    let total = tape.sum(weighted).unwrap();
    let g = tape.backward(total).unwrap();
    (
        tape.value(y).data().to_vec(),
        g.get(xi).unwrap().data().to_vec(),
    )
}

fn run(build: Graph, inputs: &[Tensor<f64>], seed: u64) -> Result<(), TestCaseError> {
    check_gradients(build, inputs, seed, H, ATOL, RTOL).map_err(TestCaseError::fail)
}

/// A valid conv geometry: (batch, cin, cout, h, w, kernel, stride, padding).
fn conv_case() -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize, usize, usize)> {
    (
        1usize..=3,
        1usize..=4,
        1usize..=4,
        3usize..=12,
        3usize..=12,
        1usize..=5,
        1usize..=3,
        0usize..=2,
    )
        .prop_filter(
            "kernel fits the padded input",
            |&(_, _, _, h, w, k, _, p)| k <= h + 2 * p && k <= w + 2 * p && p < k,
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn conv2d_input_weight_bias((n, cin, cout, h, w, k, s, p) in conv_case(), seed in any::<u64>()) {
        let inputs = [rand_tensor(&[n, cin, h, w], seed), rand_tensor(&[cout, cin, k, k], seed ^ 1), rand_tensor(&[cout], seed ^ 2)];
        run(&|t, x| t.conv2d(x[0], x[1], Some(x[2]), s, p), &inputs, seed)?;
    }

    #[test]
    fn max_pool2d(n in 1usize..=3, c in 1usize..=4, h in 3usize..=12, w in 3usize..=12, k in 1usize..=4, s in 1usize..=3, seed in any::<u64>()) {
        prop_assume!(k <= h && k <= w);
        run(&|t, x| t.max_pool2d(x[0], k, s), &[distinct(&[n, c, h, w], seed)], seed)?;
    }

    #[test]
    fn relu_max_pool2d(n in 1usize..=3, c in 1usize..=4, h in 2usize..=12, w in 2usize..=12, k in 1usize..=4, s in 1usize..=3, seed in any::<u64>()) {
        prop_assume!(k <= h && k <= w);
        // Distinct values are k / len for integers k of one parity, so a shift by a quarter of
        // their gap (0.5 / len) leaves none at zero, the ReLU kink, and none tied.
        let x = mapped(&distinct(&[n, c, h, w], seed), |v| v + 0.5 / (n * c * h * w) as f64);
        run(&|t, x| t.relu_max_pool2d(x[0], k, s), &[x], seed)?;
    }

    #[test]
    fn relu_max_pool2d_is_relu_then_max_pool2d_bit_for_bit(n in 1usize..=3, c in 1usize..=4, h in 2usize..=12, w in 2usize..=12, k in 1usize..=4, s in 1usize..=3, seed in any::<u64>()) {
        prop_assume!(k <= h && k <= w);
        // few levels, so windows tie and some hold no positive value
        let x = mapped(&rand_tensor(&[n, c, h, w], seed), |v| (v * 2.0).round());
        let fused = value_and_input_gradient(&x, seed, &|t, x| t.relu_max_pool2d(x, k, s));
        let apart = value_and_input_gradient(&x, seed, &|t, x| {
            let r = t.relu(x)?;
            t.max_pool2d(r, k, s)
        });
        prop_assert_eq!(fused, apart);
    }

    #[test]
    fn linear(n in 1usize..=4, fin in 1usize..=9, fout in 1usize..=7, seed in any::<u64>()) {
        let inputs = [rand_tensor(&[n, fin], seed), rand_tensor(&[fout, fin], seed ^ 1), rand_tensor(&[fout], seed ^ 2)];
        run(&|t, x| t.linear(x[0], x[1], Some(x[2])), &inputs, seed)?;
    }

    #[test]
    fn relu(n in 1usize..=3, c in 1usize..=4, hw in 1usize..=6, seed in any::<u64>()) {
        run(&|t, x| t.relu(x[0]), &[away_from_zero(&[n, c, hw, hw], seed)], seed)?;
    }

    #[test]
    fn reshape_and_flatten(n in 1usize..=3, c in 1usize..=4, hw in 1usize..=5, seed in any::<u64>()) {
        run(&|t, x| { let f = t.flatten(x[0])?; t.reshape(f, &[n * c, hw * hw]) }, &[rand_tensor(&[n, c, hw, hw], seed)], seed)?;
    }

    #[test]
    fn dropout(n in 1usize..=3, f in 1usize..=20, p in 0.0f64..0.9, seed in any::<u64>()) {
        run(&|t, x| t.dropout(x[0], p, seed), &[rand_tensor(&[n, f], seed)], seed)?;
    }

    #[test]
    fn batch_norm_train(n in 1usize..=3, c in 1usize..=4, hw in 2usize..=5, seed in any::<u64>()) {
        let inputs = [rand_tensor(&[n, c, hw, hw], seed), away_from_zero(&[c], seed ^ 1), rand_tensor(&[c], seed ^ 2)];
        run(&|t, x| Ok(t.batch_norm2d(x[0], x[1], x[2], 1e-3, BatchNormMode::Train)?.node), &inputs, seed)?;
    }

    #[test]
    fn batch_norm_eval(n in 1usize..=3, c in 1usize..=4, hw in 1usize..=5, seed in any::<u64>()) {
        let mean = random_values(c, seed ^ 3);
        let var: Vec<f64> = random_values(c, seed ^ 4).iter().map(|v| v.abs() + 0.5).collect();
        let inputs = [rand_tensor(&[n, c, hw, hw], seed), rand_tensor(&[c], seed ^ 1), rand_tensor(&[c], seed ^ 2)];
        run(&|t, x| Ok(t.batch_norm2d(x[0], x[1], x[2], 1e-3, BatchNormMode::Eval { running_mean: &mean, running_var: &var })?.node), &inputs, seed)?;
    }

    #[test]
    fn softmax_and_log_softmax(n in 1usize..=4, k in 1usize..=10, seed in any::<u64>()) {
        let x = [rand_tensor(&[n, k], seed)];
        run(&|t, x| t.softmax(x[0]), &x, seed)?;
        run(&|t, x| t.log_softmax(x[0]), &x, seed)?;
    }

    #[test]
    fn cross_entropy_and_nll(n in 1usize..=4, k in 2usize..=10, seed in any::<u64>()) {
        let labels: Vec<usize> = random_values(n, seed ^ 9).iter().map(|v| ((v + 1.0) / 2.0 * k as f64) as usize % k).collect();
        let x = [rand_tensor(&[n, k], seed)];
        run(&|t, x| t.cross_entropy(x[0], &labels), &x, seed)?;
        run(&|t, x| { let lp = t.log_softmax(x[0])?; t.nll(lp, &labels) }, &x, seed)?;
    }

    #[test]
    fn reductions_and_elementwise(n in 1usize..=4, k in 1usize..=8, seed in any::<u64>()) {
        let ab = [rand_tensor(&[n, k], seed), rand_tensor(&[n, k], seed ^ 1)];
        run(&|t, x| t.sum(x[0]), &ab[..1], seed)?;
        run(&|t, x| t.mean(x[0]), &ab[..1], seed)?;
        run(&|t, x| t.scale(x[0], -1.75), &ab[..1], seed)?;
        run(&|t, x| t.square_sum(x[0]), &ab[..1], seed)?;
        run(&|t, x| t.add(x[0], x[1]), &ab, seed)?;
        run(&|t, x| t.mul(x[0], x[1]), &ab, seed)?;
        // The same node used twice accumulates both gradients: d(a*a)/da = 2a.
        run(&|t, x| t.mul(x[0], x[0]), &ab[..1], seed)?;
    }

    #[test]
    fn max_row_and_select(n in 1usize..=4, k in 1usize..=8, seed in any::<u64>()) {
        let idx: Vec<usize> = (0..n).map(|i| (i * 7 + seed as usize) % k).collect();
        run(&|t, x| t.max_row(x[0]), &[distinct(&[n, k], seed)], seed)?;
        run(&|t, x| t.select(x[0], &idx), &[rand_tensor(&[n, k], seed)], seed)?;
    }
}

#[test]
fn backward_from_a_non_loss_scalar_reaches_inputs() {
    // The top softmax probability of a linear model, differentiated w.r.t. the input.
    let mut tape = Tape::<f64>::new();
    let x = tape.variable(Tensor::from_vec(&[1, 3], vec![0.5, -1.0, 2.0]).unwrap());
    let w = tape.constant(Tensor::from_vec(&[2, 3], vec![1.0, 0.0, 0.0, 0.0, 1.0, 1.0]).unwrap());
    let logits = tape.linear(x, w, None).unwrap();
    let p = tape.softmax(logits).unwrap();
    let top = tape.max_row(p).unwrap();
    let s = tape.sum(top).unwrap();
    let g = tape.backward(s).unwrap();
    let gx = g.get(x).expect("input gradient");
    // logits (0.5, 1.0): class 1 wins with p1 = sigma(0.5); dp1/dz1 = p1(1-p1) = -dp1/dz0.
    let p1 = 1.0 / (1.0 + (-0.5f64).exp());
    let d = p1 * (1.0 - p1);
    let want = [-d, d, d];
    for (a, b) in gx.data().iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    assert!(g.get(w).is_none(), "constants get no gradient");
}

#[test]
fn backward_refuses_non_scalars_and_no_record_tapes() {
    let mut tape = Tape::<f32>::new();
    let x = tape.variable(Tensor::zeros(&[2, 2]));
    assert!(matches!(tape.backward(x), Err(TapeError::NotScalar { .. })));
    let mut nr = Tape::<f32>::no_record();
    let y = nr.variable(Tensor::zeros(&[1]));
    assert!(matches!(nr.backward(y), Err(TapeError::NoRecord)));
}

/// One tape restarted between inference passes (which release their activations into its
/// pool) and recorded passes (which take them back as outputs) gives the same bits as a fresh
/// tape each time, and its mode follows the last restart.
#[test]
fn a_restarted_tape_alternates_inference_and_recorded_passes_with_fresh_tape_bits() {
    fn pass(tape: &mut Tape<f32>, seed: u64) -> (Vec<f32>, Option<Vec<f32>>) {
        let x = tape.variable(rand_tensor(&[3, 2, 8, 8], seed).cast());
        let w = tape.constant(rand_tensor(&[4, 2, 3, 3], 5).cast());
        let fw = tape.constant(rand_tensor(&[2, 64], 6).cast());
        let c = tape.conv2d(x, w, None, 1, 1).unwrap();
        let r = tape.relu(c).unwrap();
        tape.release(c);
        let p = tape.max_pool2d(r, 2, 2).unwrap();
        tape.release(r);
        let f = tape.flatten(p).unwrap();
        let l = tape.linear(f, fw, None).unwrap();
        tape.release(f);
        let logits = tape.value(l).data().to_vec();
        if !tape.is_recording() {
            assert!(matches!(tape.backward(l), Err(TapeError::NoRecord)));
            return (logits, None);
        }
        let s = tape.sum(l).unwrap();
        let g = tape.backward(s).unwrap();
        (logits, Some(g.get(x).unwrap().data().to_vec()))
    }
    let mut shared = Tape::<f32>::no_record();
    for (round, recording) in [false, true, false, false, true, true, false]
        .into_iter()
        .enumerate()
    {
        shared.restart(recording);
        assert_eq!(shared.is_recording(), recording);
        let seed = 40 + round as u64 % 3;
        let mut fresh = if recording {
            Tape::new()
        } else {
            Tape::no_record()
        };
        let (a, b) = (pass(&mut shared, seed), pass(&mut fresh, seed));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.0), bits(&b.0), "round {round}: logits");
        assert_eq!(
            a.1.as_deref().map(bits),
            b.1.as_deref().map(bits),
            "round {round}: input gradient"
        );
    }
}

/// Parameters bound once serve several recorded passes: after `rewind` to the parameters, a
/// pass gives the bits of a fresh tape's, and keeping a node an op made is refused.
#[test]
fn rewinding_to_the_bound_parameters_gives_fresh_tape_bits_and_refuses_op_nodes() {
    let w = rand_tensor(&[4, 2, 3, 3], 5).cast::<f32>();
    let fw = rand_tensor(&[2, 64], 6).cast::<f32>();
    let pass = |tape: &mut Tape<f32>, params: &[NodeId], seed: u64| -> (Vec<u32>, Vec<u32>) {
        let x = tape.variable(rand_tensor(&[3, 2, 8, 8], seed).cast());
        let c = tape.conv2d(x, params[0], None, 1, 1).unwrap();
        let r = tape.relu(c).unwrap();
        let p = tape.max_pool2d(r, 2, 2).unwrap();
        let f = tape.flatten(p).unwrap();
        let l = tape.linear(f, params[1], None).unwrap();
        let s = tape.sum(l).unwrap();
        let g = tape.backward(s).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        (bits(tape.value(l).data()), bits(g.get(x).unwrap().data()))
    };
    let mut shared = Tape::<f32>::new();
    let params = shared.shared_leaves(&[w.clone(), fw.clone()], false);
    for seed in [7, 8, 7] {
        shared.rewind(params.len()).unwrap();
        assert_eq!(shared.len(), 2, "the parameters stay");
        let mut fresh = Tape::<f32>::new();
        let fresh_params = fresh.shared_leaves(&[w.clone(), fw.clone()], false);
        assert_eq!(
            pass(&mut shared, &params, seed),
            pass(&mut fresh, &fresh_params, seed),
            "seed {seed}"
        );
    }
    let err = shared.rewind(5).unwrap_err();
    assert!(
        matches!(err, TapeError::RewindPastOp { keep: 5, node: 3 }),
        "{err}"
    );
    assert!(err.to_string().contains("node 3"), "{err}");
}

#[test]
fn labels_out_of_range_are_errors_not_panics() {
    let mut tape = Tape::<f32>::new();
    let x = tape.variable(Tensor::zeros(&[2, 3]));
    let err = tape.cross_entropy(x, &[0, 3]).unwrap_err().to_string();
    assert!(
        err.contains("index 3") && err.contains("3 classes"),
        "{err}"
    );
    let err = tape.select(x, &[0]).unwrap_err().to_string();
    assert!(err.contains("2 labels"), "{err}");
}

#[test]
fn f32_and_f64_agree_on_a_small_network() {
    fn net<T: tensor::Float>(seed: u64) -> (f64, Vec<f64>) {
        let mut tape = Tape::<T>::new();
        let x = tape.variable(rand_tensor(&[2, 2, 6, 6], seed).cast());
        let w = tape.variable(rand_tensor(&[3, 2, 3, 3], seed ^ 1).cast());
        let b = tape.variable(rand_tensor(&[3], seed ^ 2).cast());
        let fw = tape.variable(rand_tensor(&[4, 27], seed ^ 3).cast());
        let c = tape.conv2d(x, w, Some(b), 1, 1).unwrap();
        let r = tape.relu(c).unwrap();
        let p = tape.max_pool2d(r, 2, 2).unwrap();
        let f = tape.flatten(p).unwrap();
        let l = tape.linear(f, fw, None).unwrap();
        let loss = tape.cross_entropy(l, &[1, 3]).unwrap();
        let g = tape.backward(loss).unwrap();
        let mut all: Vec<f64> = Vec::new();
        for id in [x, w, b, fw] {
            all.extend(g.get(id).unwrap().data().iter().map(|v| v.to_f64()));
        }
        (tape.value(loss).data()[0].to_f64(), all)
    }
    let (l32, g32) = net::<f32>(7);
    let (l64, g64) = net::<f64>(7);
    assert!((l32 - l64).abs() < 1e-4 + 1e-3 * l64.abs());
    tensor::testing::assert_close("f32 vs f64 gradients", &g32, &g64, 1e-4, 1e-3);
}

#[test]
fn conv2d_on_inputs_smaller_than_the_kernel() {
    // deep's conv5..conv9 see 1x1 inputs with 3x3/1/1; alexnet's conv2 sees 2x2 with 5x5/1/2.
    for (n, cin, cout, h, k, s, p) in [
        (2, 2, 3, 1, 3, 1, 1),
        (2, 3, 2, 2, 5, 1, 2),
        (1, 2, 2, 3, 3, 1, 1),
    ] {
        let inputs = [
            rand_tensor(&[n, cin, h, h], 1),
            rand_tensor(&[cout, cin, k, k], 2),
            rand_tensor(&[cout], 3),
        ];
        check_gradients(
            &|t, x| t.conv2d(x[0], x[1], Some(x[2]), s, p),
            &inputs,
            4,
            H,
            ATOL,
            RTOL,
        )
        .unwrap();
    }
}

#[test]
fn a_cleared_tape_reusing_its_buffers_gives_a_fresh_tapes_results() {
    // Records the same small network for several inputs on one tape, cleared between runs so
    // that op outputs come from retired buffers (holding the previous run's values, or NaN in
    // debug builds); every run must equal a fresh tape's bit for bit.
    fn run(tape: &mut Tape<f64>, seed: u64) -> Vec<f64> {
        tape.clear();
        let x = tape.variable(rand_tensor(&[3, 2, 6, 6], seed));
        let w = tape.variable(rand_tensor(&[3, 2, 3, 3], 11));
        let b = tape.variable(rand_tensor(&[3], 12));
        let fw = tape.variable(rand_tensor(&[4, 27], 13));
        let c = tape.conv2d(x, w, Some(b), 1, 1).unwrap();
        let r = tape.relu(c).unwrap();
        let p = tape.max_pool2d(r, 2, 2).unwrap();
        let f = tape.flatten(p).unwrap();
        let l = tape.linear(f, fw, None).unwrap();
        let loss = tape.cross_entropy(l, &[1, 3, 0]).unwrap();
        let g = tape.backward(loss).unwrap();
        let mut all = tape.value(loss).data().to_vec();
        for id in [x, w, b, fw] {
            all.extend_from_slice(g.get(id).unwrap().data());
        }
        all
    }
    let mut reused = Tape::new();
    for seed in [1, 2, 3, 2] {
        let fresh = run(&mut Tape::new(), seed);
        assert!(fresh.iter().all(|v| v.is_finite()));
        assert_eq!(run(&mut reused, seed), fresh, "seed {seed}");
    }
}

/// A shared parameter goes on a tape without a copy and is never handed out as an op's output
/// buffer once the tape is cleared; an unshared one is copied.
#[test]
fn shared_parameters_are_held_without_a_copy_and_never_pooled() {
    let mut w = rand_tensor(&[4, 6], 11).cast::<f32>();
    let original = w.data().to_vec();
    let unshared = rand_tensor(&[4], 12).cast::<f32>();
    w.make_shared();
    let mut tape = Tape::<f32>::new();
    for step in 0..3 {
        tape.clear();
        let ids = tape.shared_leaves(&[w.clone(), unshared.clone()], true);
        assert!(tape.value(ids[0]).shares_buffer_with(&w), "step {step}");
        assert!(!tape.value(ids[1]).shares_buffer_with(&unshared));
        assert_eq!(tape.value(ids[1]).data(), unshared.data());
        // outputs of the parameter's length, written over whatever buffer the pool gives
        let x = tape.variable(Tensor::full(&[4, 6], 3.0));
        let y = tape.relu(x).unwrap();
        let z = tape.mul(y, ids[0]).unwrap();
        let s = tape.sum(z).unwrap();
        let g = tape.backward(s).unwrap();
        assert_eq!(g.get(ids[0]).unwrap().data(), &[3.0f32; 24][..]);
        assert_eq!(w.data(), &original[..], "step {step}");
    }
    tape.clear();
    assert_eq!(w.data(), &original[..]);
}
