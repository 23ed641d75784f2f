//! The three networks: parameter counts, whole-model gradient checks, thread-count independence.

use saliency::models::{layer_table, Mode, Model, ModelKind};
use tape::gradcheck::{check_gradients, directional_derivative, random_values};
use tape::Tape;
use tensor::Tensor;

const FASHION: [usize; 3] = [1, 28, 28];
const FLOWERS: [usize; 3] = [3, 256, 256];

#[test]
fn parameter_counts_match_the_study() {
    let count = |kind: ModelKind, input, classes| {
        kind.build::<f32>(input, classes, 0).unwrap().total_count()
    };
    assert_eq!(count(ModelKind::Deep, FASHION, 10), 179_728);
    assert_eq!(count(ModelKind::Deep, FLOWERS, 5), 179_761);
    assert_eq!(count(ModelKind::Deep, FLOWERS, 2), 179_608);
    assert_eq!(count(ModelKind::Alexnet, FASHION, 10), 10_041_418);
    assert_eq!(count(ModelKind::Medium, FLOWERS, 5), 4_228_129);
    assert_eq!(count(ModelKind::Medium, FASHION, 10), 50_176);
    let alex = ModelKind::Alexnet.build::<f32>(FASHION, 10, 0).unwrap();
    assert_eq!(
        alex.total_count() - alex.param_count(),
        704,
        "batch-norm running statistics"
    );
}

#[test]
fn alexnet_flowers_count_matches_the_study() {
    // 26.8M parameters: built once, in its own test so the memory is freed quickly.
    assert_eq!(
        ModelKind::Alexnet
            .build::<f32>(FLOWERS, 5, 0)
            .unwrap()
            .total_count(),
        26_831_621
    );
}

#[test]
fn layer_table_shapes_follow_the_study() {
    let deep = ModelKind::Deep.build::<f32>(FASHION, 10, 0).unwrap();
    let rows = layer_table(&deep);
    let conv9 = rows.iter().find(|r| r.layer.starts_with("conv9")).unwrap();
    assert_eq!(conv9.output, vec![64, 1, 1]);
    assert_eq!(rows.iter().map(|r| r.params).sum::<usize>(), 179_728);
    let medium = ModelKind::Medium.build::<f32>(FLOWERS, 5, 0).unwrap();
    let rows = layer_table(&medium);
    assert_eq!(
        rows.iter().find(|r| r.layer == "flatten").unwrap().output,
        vec![8192]
    );
    // The reused conv2 appears twice but its parameters count once.
    assert_eq!(
        rows.iter()
            .filter(|r| r.layer.starts_with("conv2"))
            .map(|r| r.params)
            .collect::<Vec<_>>(),
        vec![2320, 0]
    );
    let alex = ModelKind::Alexnet.build::<f32>(FASHION, 10, 0).unwrap();
    assert_eq!(
        layer_table(&alex)
            .iter()
            .find(|r| r.layer == "flatten")
            .unwrap()
            .output,
        vec![1024]
    );
}

#[test]
fn parameter_names_follow_pytorch() {
    let alex = ModelKind::Alexnet.build::<f32>(FASHION, 10, 0).unwrap();
    let names: Vec<&str> = alex.named_tensors().iter().map(|(n, _)| *n).collect();
    for want in [
        "conv1.weight",
        "conv1.bias",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "fc3.bias",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let conv1 = alex
        .named_tensors()
        .into_iter()
        .find(|(n, _)| *n == "conv1.weight")
        .unwrap()
        .1;
    assert_eq!(conv1.shape(), &[96, 1, 11, 11]);
}

/// Small-input version of a model in f64 with its parameters as the gradient-check inputs.
fn check_whole_model(kind: ModelKind, input: [usize; 3], classes: usize, batch: usize) {
    let mut model: Model<f64> = kind.build(input, classes, 3).unwrap();
    // Zero biases (the Keras init) put units whose inputs are all zero exactly on a ReLU kink,
    // where a finite difference sees half a slope. Random biases keep every unit off the kink.
    for (k, (p, info)) in model.params.iter_mut().zip(&model.param_info).enumerate() {
        if info.name.ends_with(".bias") {
            *p = Tensor::from_vec(
                p.shape(),
                random_values(p.numel(), 100 + k as u64)
                    .iter()
                    .map(|v| 0.1 * v)
                    .collect(),
            )
            .unwrap();
        }
    }
    let model = model;
    let x = Tensor::from_vec(
        &[batch, input[0], input[1], input[2]],
        random_values(batch * input.iter().product::<usize>(), 11)
            .iter()
            .map(|v| (v + 1.0) / 2.0)
            .collect(),
    )
    .unwrap();
    let mut inputs = vec![x];
    inputs.extend(model.params.iter().cloned());
    let build = |tape: &mut Tape<f64>, ids: &[tape::NodeId]| {
        let (logits, _) =
            model
                .forward(tape, ids[0], &ids[1..], Mode::Eval)
                .map_err(|e| match e {
                    saliency::models::ModelError::Tape(t) => t,
                    other => panic!("{other}"),
                })?;
        Ok(logits)
    };
    // Whole models are checked in one direction per parameter set: the finite difference of every
    // one of ~180k parameters would take minutes. Each direction covers every parameter at once.
    for seed in [1u64, 2, 3] {
        let (analytic, numeric) = directional_derivative(&build, &inputs, seed, 1e-5).unwrap();
        let tol = 1e-6 + 1e-5 * numeric.abs();
        assert!(
            (analytic - numeric).abs() <= tol,
            "{kind}: directional derivative {analytic} vs finite difference {numeric}"
        );
    }
}

#[test]
fn deep_whole_model_gradient() {
    check_whole_model(ModelKind::Deep, FASHION, 10, 2);
}

#[test]
fn medium_whole_model_gradient() {
    check_whole_model(ModelKind::Medium, FASHION, 10, 2);
}

#[test]
fn alexnet_whole_model_directional_gradient() {
    check_whole_model(ModelKind::Alexnet, FASHION, 10, 2);
}

#[test]
fn medium_elementwise_gradient_on_a_tiny_input() {
    // Every element of the input and of the shared conv2 checked one by one: the reused
    // convolution must accumulate both uses.
    let model: Model<f64> = ModelKind::Medium.build([1, 16, 16], 3, 5).unwrap();
    let x = Tensor::from_vec(
        &[1, 1, 16, 16],
        random_values(256, 7)
            .iter()
            .map(|v| (v + 1.0) / 2.0)
            .collect(),
    )
    .unwrap();
    let conv2 = model
        .param_info
        .iter()
        .position(|p| p.name == "conv2.weight")
        .unwrap();
    let build = |tape: &mut Tape<f64>, ids: &[tape::NodeId]| {
        let mut params = model.bind(tape, false);
        params[conv2] = ids[1];
        let (logits, _) =
            model
                .forward(tape, ids[0], &params, Mode::Eval)
                .map_err(|e| match e {
                    saliency::models::ModelError::Tape(t) => t,
                    other => panic!("{other}"),
                })?;
        Ok(logits)
    };
    check_gradients(
        &build,
        &[x, model.params[conv2].clone()],
        9,
        1e-6,
        1e-6,
        1e-4,
    )
    .unwrap();
}

/// Forward + backward of a model in a pool of `threads`; returns every gradient's bits.
fn gradient_bits(kind: ModelKind, threads: usize) -> Vec<u32> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let model: Model<f32> = kind.build(FASHION, 10, 1).unwrap();
        let batch = 8;
        let x = Tensor::from_vec(
            &[batch, 1, 28, 28],
            random_values(batch * 784, 5)
                .iter()
                .map(|&v| ((v + 1.0) / 2.0) as f32)
                .collect(),
        )
        .unwrap();
        let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
        let mut tape = Tape::new();
        let xid = tape.variable(x);
        let params = model.bind(&mut tape, true);
        let (logits, _) = model
            .forward(&mut tape, xid, &params, Mode::Train { seed: 3 })
            .unwrap();
        let loss = tape.cross_entropy(logits, &labels).unwrap();
        let grads = tape.backward(loss).unwrap();
        let mut bits: Vec<u32> = grads
            .get(xid)
            .unwrap()
            .data()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        for p in params {
            bits.extend(grads.get(p).unwrap().data().iter().map(|v| v.to_bits()));
        }
        bits
    })
}

#[test]
fn gradients_are_bitwise_equal_with_one_and_two_threads() {
    for kind in [ModelKind::Deep, ModelKind::Medium, ModelKind::Alexnet] {
        let one = gradient_bits(kind, 1);
        let two = gradient_bits(kind, 2);
        assert!(
            one == two,
            "{kind}: gradients differ between 1 and 2 threads"
        );
    }
}

/// A network built in code (no preset) saves and loads back: its checkpoint stores the layer
/// list, and the loaded model has the same layers, values and outputs.
#[test]
fn a_network_built_in_code_saves_and_loads_back() {
    use saliency::model_io::{load_model, save_model, ModelMeta};
    use saliency::models::builder::ModelBuilder;
    use saliency::models::init::Init;
    use saliency::models::ModelKind;

    let mut b = ModelBuilder::<f32>::new(ModelKind::Custom, [1, 28, 28], 4, Init::TorchDefault, 3);
    b.conv("stem", 6, 5, 1, 2)
        .unwrap()
        .relu()
        .unwrap()
        .pool(2, 2)
        .unwrap();
    b.batch_norm("bn", 1e-3, 0.99).unwrap();
    b.flatten().unwrap().dropout(0.25).unwrap();
    b.linear("hidden", 20)
        .unwrap()
        .relu()
        .unwrap()
        .head("out")
        .unwrap();
    let model = b.build().unwrap();
    let meta = ModelMeta {
        model: ModelKind::Custom,
        dataset: "fashion-mnist".into(),
        input: [1, 28, 28],
        class_names: (0..4).map(|k| format!("c{k}")).collect(),
        seed: 3,
        step: 0,
        epoch: 0,
    };
    let path = std::env::temp_dir().join(format!(
        "saliency-custom-{}.safetensors",
        std::process::id()
    ));
    save_model(&path, &model, &meta).unwrap();
    let (back, back_meta) = load_model(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(back_meta.model, ModelKind::Custom);
    assert_eq!(back.layers, model.layers);
    assert_eq!(back.param_info, model.param_info);
    for (a, b) in back.params.iter().zip(&model.params) {
        assert_eq!(a.data(), b.data());
    }
    let x = tensor::Tensor::<f32>::from_fn(&[2, 1, 28, 28], |i| (i % 29) as f32 / 29.0);
    let probs = |m: &saliency::Model<f32>| saliency::infer::predict_probs(m, x.data(), 2).unwrap();
    assert_eq!(probs(&back), probs(&model));
    // Without the stored layers a custom network cannot be rebuilt, and says so.
    let e = ModelKind::Custom
        .build::<f32>([1, 28, 28], 4, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("custom") && e.contains("ModelBuilder"), "{e}");
}

/// A built (and a cast) model's parameters go on every tape without a copy; writing one while
/// a tape holds it leaves the tape's value as it was.
#[test]
fn a_model_binds_its_parameters_without_a_copy() {
    let mut model = ModelKind::Deep.build::<f32>(FASHION, 10, 3).unwrap();
    let cast = model.cast::<f64>();
    let mut cast_tape = Tape::<f64>::no_record();
    let ids = cast.bind(&mut cast_tape, false);
    assert!(ids
        .iter()
        .zip(&cast.params)
        .all(|(&id, p)| cast_tape.value(id).shares_buffer_with(p)));
    let (mut a, mut b) = (Tape::<f32>::new(), Tape::<f32>::new());
    let (on_a, on_b) = (model.bind(&mut a, true), model.bind(&mut b, false));
    for (i, p) in model.params.iter().enumerate() {
        assert!(a.value(on_a[i]).shares_buffer_with(p), "parameter {i}");
        assert!(b.value(on_b[i]).shares_buffer_with(p), "parameter {i}");
    }
    let before = model.params[0].data()[0];
    model.params[0].data_mut()[0] = before + 1.0;
    assert_eq!(
        a.value(on_a[0]).data()[0],
        before,
        "the tape keeps its value"
    );
    assert!(!a.value(on_a[0]).shares_buffer_with(&model.params[0]));
}
