//! Criterion: max-pool forward (with argmax), inference forward and backward, and the fused
//! ReLU + max-pool forwards, at the study's Fashion-MNIST pool shapes; throughput in images per
//! second.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pool::{
    max_pool2d_backward, max_pool2d_forward, max_pool2d_forward_inference, relu_max_pool2d_forward,
    relu_max_pool2d_forward_inference, Pool2dGeometry,
};

#[path = "shapes.rs"]
mod shapes;
use shapes::{values, BATCHES, POOLS};

fn pools(c: &mut Criterion) {
    for &batch in &BATCHES {
        for &(name, ch, side, k, s) in &POOLS {
            let g = Pool2dGeometry::new(batch, ch, side, side, k, s).expect("valid shape");
            let x = values(g.input_len(), 1);
            let dy = values(g.output_len(), 2);
            let mut y = vec![0.0f32; g.output_len()];
            let mut arg = vec![0u32; g.output_len()];
            let mut dx = vec![0.0f32; g.input_len()];
            let mut group = c.benchmark_group(format!("max_pool2d/{name}"));
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new("forward", batch), |b| {
                b.iter(|| max_pool2d_forward(&g, &x, &mut y, &mut arg))
            });
            group.bench_function(BenchmarkId::new("forward_inference", batch), |b| {
                b.iter(|| max_pool2d_forward_inference(&g, &x, &mut y))
            });
            group.bench_function(BenchmarkId::new("relu_forward", batch), |b| {
                b.iter(|| relu_max_pool2d_forward(&g, &x, &mut y, &mut arg))
            });
            group.bench_function(BenchmarkId::new("relu_forward_inference", batch), |b| {
                b.iter(|| relu_max_pool2d_forward_inference(&g, &x, &mut y))
            });
            // the fused forward's argmax, with its windows that pass no gradient
            relu_max_pool2d_forward(&g, &x, &mut y, &mut arg);
            group.bench_function(BenchmarkId::new("backward", batch), |b| {
                b.iter(|| max_pool2d_backward(&g, &dy, &arg, &mut dx))
            });
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = pools
}
criterion_main!(benches);
