//! Criterion: conv2d forward and its backward passes at the study's Fashion-MNIST layer shapes.
//!
//! Throughput is reported in images per second (`Throughput::Elements(batch)`). Each pass keeps
//! one workspace across iterations, as training does.

use conv::{
    conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight, conv2d_forward,
    Conv2dGeometry,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[path = "shapes.rs"]
mod shapes;
use shapes::{values, ConvShape, ALEXNET_CONVS, BATCHES, DEEP_CONVS};

fn bench_layer(c: &mut Criterion, shape: ConvShape, batch: usize) {
    let (name, cin, side, cout, k, s, p) = shape;
    let g = Conv2dGeometry::new(batch, cin, side, side, cout, k, s, p).expect("valid shape");
    let x = values(g.input_len(), 1);
    let w = values(g.weight_len(), 2);
    let b = values(cout, 3);
    let dy = values(g.output_len(), 4);
    let mut y = vec![0.0f32; g.output_len()];
    let mut dx = vec![0.0f32; g.input_len()];
    let mut dw = vec![0.0f32; g.weight_len()];
    let mut db = vec![0.0f32; cout];
    let mut ws = Vec::new();
    let mut group = c.benchmark_group(format!("conv2d/{name}"));
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function(BenchmarkId::new("forward", batch), |bch| {
        bch.iter(|| conv2d_forward(&g, &x, &w, Some(&b), &mut y, &mut ws))
    });
    group.bench_function(BenchmarkId::new("backward", batch), |bch| {
        bch.iter(|| {
            conv2d_backward_input(&g, &w, &dy, &mut dx, &mut ws);
            conv2d_backward_weight(&g, &x, &dy, &mut dw, &mut ws);
            conv2d_backward_bias(&g, &dy, &mut db);
        })
    });
    group.finish();
}

fn conv_layers(c: &mut Criterion) {
    for &batch in &BATCHES {
        for &shape in DEEP_CONVS.iter().chain(&ALEXNET_CONVS) {
            bench_layer(c, shape, batch);
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = conv_layers
}
criterion_main!(benches);
