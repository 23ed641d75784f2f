//! Criterion: single-call GEMM GFLOP/s at the shapes the conv (im2col) and dense layers of the
//! study's two networks produce, for batch 16 and 128.
//!
//! For a conv with `rows = C*K*K` and `cols = N*OH*OW`: forward `(Cout x rows) * (rows x cols)`,
//! weight gradient `(Cout x cols) * (cols x rows)` (B transposed), input gradient
//! `(rows x Cout) * (Cout x cols)` (A transposed). Dense `(N x in) * (in x out)` and its two
//! backward products. Throughput is `2*m*k*n` FLOP per call (criterion reports it as
//! elements/s: read G elements/s as GFLOP/s). One thread: the engine runs GEMMs per block in
//! parallel, never one GEMM on several threads.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tensor::cpu::tier;
use tensor::{gemm, gemm_with, packed_available, GemmKernel, MatMut, MatRef};

#[path = "shapes.rs"]
mod shapes;
use shapes::{values, ALEXNET_CONVS, BATCHES, DEEP_CONVS, DENSE};

/// (label, m, k, n, transpose A, transpose B).
type Shape = (String, usize, usize, usize, bool, bool);

fn shapes(batch: usize) -> Vec<Shape> {
    let mut out = Vec::new();
    for &(name, cin, side, cout, k, s, p) in DEEP_CONVS.iter().chain(&ALEXNET_CONVS) {
        let o = (side + 2 * p - k) / s + 1;
        let (rows, cols) = (cin * k * k, batch * o * o);
        out.push((format!("{name}.fwd"), cout, rows, cols, false, false));
        out.push((format!("{name}.dW"), cout, cols, rows, false, true));
        out.push((format!("{name}.dX"), rows, cout, cols, true, false));
    }
    for &(name, fin, fout) in &DENSE {
        out.push((format!("{name}.fwd"), batch, fin, fout, false, true));
        out.push((format!("{name}.dW"), fout, batch, fin, true, false));
        out.push((format!("{name}.dX"), batch, fout, fin, false, false));
    }
    out
}

fn gemms(c: &mut Criterion) {
    for &batch in &BATCHES {
        let mut group = c.benchmark_group(format!("gemm/b{batch}"));
        for (label, m, k, n, ta, tb) in shapes(batch) {
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            let mut cm = vec![0.0f32; m * n];
            group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            group.bench_function(BenchmarkId::new(label, format!("{m}x{k}x{n}")), |bch| {
                bch.iter(|| {
                    let av = if ta {
                        MatRef::row_major(&a, k, m).t()
                    } else {
                        MatRef::row_major(&a, m, k)
                    };
                    let bv = if tb {
                        MatRef::row_major(&b, n, k).t()
                    } else {
                        MatRef::row_major(&b, k, n)
                    };
                    gemm(1.0, av, bv, 0.0, MatMut::row_major(&mut cm, m, n));
                })
            });
        }
        group.finish();
    }
}

/// `alexnet`'s large products as the engine runs them, batch `batch`: conv1 by im2col (its
/// three products), conv2-conv5 as dense products on the unrolled weight `U` (forward
/// `x * U^T`, input gradient `dy * U`, weight gradient `dy^T * x`) and fc1-fc2 likewise.
fn alexnet_products(batch: usize, forward_only: bool) -> Vec<Shape> {
    let mut out = Vec::new();
    let (name, cin, side, cout, k, s, p) = ALEXNET_CONVS[0];
    let o = (side + 2 * p - k) / s + 1;
    let (rows, cols) = (cin * k * k, batch * o * o);
    out.push((format!("{name}.fwd"), cout, rows, cols, false, false));
    if !forward_only {
        out.push((format!("{name}.dW"), cout, cols, rows, false, true));
        out.push((format!("{name}.dX"), rows, cout, cols, true, false));
    }
    // conv2-conv5 see 2x2 maps and keep them (padding), so U is (cout*4) x (cin*4)
    let unrolled = ALEXNET_CONVS[1..]
        .iter()
        .map(|&(name, cin, side, cout, ..)| (name, cin * side * side, cout * side * side));
    let dense = DENSE[3..5].iter().copied();
    for (name, fin, fout) in unrolled.chain(dense) {
        out.push((format!("{name}.fwd"), batch, fin, fout, false, true));
        if !forward_only {
            out.push((format!("{name}.dX"), batch, fout, fin, false, false));
            out.push((format!("{name}.dW"), fout, batch, fin, true, false));
        }
    }
    out
}

/// The packed GEMM against `matrixmultiply` in the same run, at `alexnet`'s products (batch
/// 128 training, batch 1000 inference), on the active tier (`SALIENCY_SIMD`).
fn packed_vs_matrixmultiply(c: &mut Criterion) {
    let tier = tier();
    if !packed_available(tier) {
        eprintln!("SKIPPED packed_vs_matrixmultiply: no packed GEMM on tier {tier} here");
        return;
    }
    let kernels = [
        ("mm", GemmKernel::Matrixmultiply),
        ("packed", GemmKernel::Packed(tier)),
    ];
    for (batch, forward_only) in [(128, false), (1000, true)] {
        let mut group = c.benchmark_group(format!("packed_vs_mm/b{batch}"));
        for (label, m, k, n, ta, tb) in alexnet_products(batch, forward_only) {
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            let mut cm = vec![0.0f32; m * n];
            group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            for (kname, kernel) in kernels {
                let id = BenchmarkId::new(format!("{label}/{kname}"), format!("{m}x{k}x{n}"));
                group.bench_function(id, |bch| {
                    bch.iter(|| {
                        let av = if ta {
                            MatRef::row_major(&a, k, m).t()
                        } else {
                            MatRef::row_major(&a, m, k)
                        };
                        let bv = if tb {
                            MatRef::row_major(&b, n, k).t()
                        } else {
                            MatRef::row_major(&b, k, n)
                        };
                        gemm_with(kernel, 1.0, av, bv, 0.0, MatMut::row_major(&mut cm, m, n));
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(15).warm_up_time(std::time::Duration::from_millis(200)).measurement_time(std::time::Duration::from_millis(600));
    targets = gemms, packed_vs_matrixmultiply
}
criterion_main!(benches);
