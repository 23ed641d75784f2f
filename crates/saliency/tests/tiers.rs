//! The SIMD tier switch end to end: the real `saliency` binary trains `deep` for a few steps on
//! every tier this CPU has (`SALIENCY_SIMD`), records the tier in config.json, and refuses a
//! tier the CPU lacks or an unknown name; `bench --simd` records the tier it ran.
//!
//! Tiers run different algorithms (the AVX-512 tier's direct convolutions sum in other orders
//! than the portable tier's im2col + GEMM; docs/architecture.md), so their weights are compared
//! for closeness, not bits: no weight may differ by more than Adam can move two runs apart in
//! those steps, and 99 % must agree to a part per million (measured on a Zen 4 machine, 4
//! steps: every weight within 6e-8 of the portable run's; 96 % with the same bits).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use saliency::data::idx::encode_idx_u8;
use tensor::cpu::{supported_tiers, Tier};

const BIN: &str = env!("CARGO_BIN_EXE_saliency");

/// A temp folder removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("saliency-tiers-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary with `SALIENCY_SIMD` set to `simd` (or removed for `None`).
fn saliency(args: &[&str], simd: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("SALIENCY_DATA");
    match simd {
        Some(s) => cmd.env("SALIENCY_SIMD", s),
        None => cmd.env_remove("SALIENCY_SIMD"),
    };
    cmd.output().expect("the saliency binary runs")
}

/// `n` 28x28 images whose class is a bright band's row (learnable in a few steps), and labels.
fn write_fashion(dir: &Path, (train, test): (usize, usize)) {
    let images = |n: usize| {
        let px: Vec<u8> = (0..n * 28 * 28)
            .map(|p| {
                let (i, row) = (p / (28 * 28), p % (28 * 28) / 28);
                if row / 3 == i % 9 {
                    200 + (p % 50) as u8
                } else {
                    ((p * 7 + i * 13) % 40) as u8
                }
            })
            .collect();
        encode_idx_u8(&[n as u32, 28, 28], &px)
    };
    let labels = |n: usize| {
        let l: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        encode_idx_u8(&[n as u32], &l)
    };
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in [
        ("train-images-idx3-ubyte", images(train)),
        ("train-labels-idx1-ubyte", labels(train)),
        ("t10k-images-idx3-ubyte", images(test)),
        ("t10k-labels-idx1-ubyte", labels(test)),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Trains `deep` for one epoch of `STEPS` batches of 16 on `tier` and returns every weight.
fn train_on(tier: Tier, data: &Path, out: &Path) -> Vec<f32> {
    train_model_on("deep", 16, tier, data, out)
}

/// Trains `model` for one epoch of the data's training images in batches of `batch` on `tier`
/// and returns every weight.
fn train_model_on(model: &str, batch: usize, tier: Tier, data: &Path, out: &Path) -> Vec<f32> {
    let (data, out_s) = (data.to_str().unwrap(), out.to_str().unwrap());
    let batch = batch.to_string();
    let args = [
        "train",
        "--no-download",
        "--quiet",
        "--model",
        model,
        "--data-dir",
        data,
        "--out",
        out_s,
        "--epochs",
        "1",
        "--batch-size",
        &batch,
        "--threads",
        "2",
    ];
    let run = saliency(&args, Some(tier.name()));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{tier}: train failed: {stderr}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["simd"], tier.name(), "config.json records the tier");
    let ckpt = saliency::checkpoint::load(&out.join("model.safetensors")).expect("a checkpoint");
    ckpt.tensors.into_iter().flat_map(|t| t.data).collect()
}

/// Batches in the training run.
const STEPS: usize = 4;

/// The study's Adam learning rate: each step moves a weight by at most about this much.
const ADAM_LR: f32 = 1e-3;

#[test]
fn deep_trains_to_nearly_the_same_weights_on_every_tier_the_cpu_has() {
    let s = Scratch::new("train");
    write_fashion(&s.0.join("data"), (16 * STEPS, 16));
    let tiers = supported_tiers();
    let portable = train_on(Tier::Portable, &s.0.join("data"), &s.0.join("portable"));
    for &tier in tiers.iter().filter(|&&t| t != Tier::Portable) {
        let fast = train_on(tier, &s.0.join("data"), &s.0.join(tier.name()));
        assert_eq!(fast.len(), portable.len(), "{tier}");
        // Adam's step is at most ~lr per weight, so two runs cannot drift further apart
        let bound = 2.0 * ADAM_LR * STEPS as f32;
        let mut close = 0;
        for (i, (&a, &b)) in fast.iter().zip(&portable).enumerate() {
            assert!(
                a.is_finite() && (a - b).abs() <= bound,
                "{tier}: weight {i}: {a} vs {b}"
            );
            close += usize::from((a - b).abs() <= 1e-6 * (1.0 + b.abs()));
        }
        assert!(
            close * 100 >= fast.len() * 99,
            "{tier}: only {close} of {} weights within 1e-6 of the portable run's",
            fast.len()
        );
    }
    // AVX2 and AVX-512 run the same fused multiply-adds in the same order (the kernels' tests
    // compare each one), so a checkpoint does not depend on which of them trained it
    if tiers.contains(&Tier::Avx2) && tiers.contains(&Tier::Avx512) {
        let avx2 = train_on(Tier::Avx2, &s.0.join("data"), &s.0.join("avx2-again"));
        let avx512 = train_on(Tier::Avx512, &s.0.join("data"), &s.0.join("avx512-again"));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&avx2),
            bits(&avx512),
            "avx2 and avx512 weights bit for bit"
        );
    } else {
        eprintln!("SKIPPED avx2_and_avx512_train_to_the_same_bits: CPU lacks one of them");
    }
    // the portable run itself is reproducible bit for bit
    let again = train_on(Tier::Portable, &s.0.join("data"), &s.0.join("portable2"));
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&again), bits(&portable), "portable run twice");
}

/// `alexnet` at batch 128 runs its large products on the packed GEMM (forwards, input and
/// weight gradients), its batch norm, dropout, 2x2 convolutions, narrow GEMMs and SGD on the
/// tier's kernels: AVX2 and AVX-512 must still give the same bits, as the choice of GEMM kernel
/// does not look at the tier. (On the Intel Xeon where this was written, `matrixmultiply` and
/// the packed GEMM also agreed bit for bit on these products: both sum each element by fused
/// multiply-adds in `k` order in blocks of 256, so a tier-dependent choice between the two
/// would not show here; the rest of the path would.)
#[test]
fn alexnet_trains_to_the_same_bits_on_avx2_and_avx512() {
    let tiers = supported_tiers();
    if !(tiers.contains(&Tier::Avx2) && tiers.contains(&Tier::Avx512)) {
        eprintln!(
            "SKIPPED alexnet_trains_to_the_same_bits_on_avx2_and_avx512: CPU lacks one of them"
        );
        return;
    }
    let s = Scratch::new("alexnet");
    write_fashion(&s.0.join("data"), (128 * 2, 16));
    let data = s.0.join("data");
    let avx2 = train_model_on("alexnet", 128, Tier::Avx2, &data, &s.0.join("avx2"));
    let avx512 = train_model_on("alexnet", 128, Tier::Avx512, &data, &s.0.join("avx512"));
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(avx2.len(), 10_041_418, "every alexnet weight");
    let differ = bits(&avx2)
        .iter()
        .zip(bits(&avx512))
        .filter(|(a, b)| **a != *b)
        .count();
    assert_eq!(
        differ, 0,
        "{differ} alexnet weights differ between avx2 and avx512"
    );
}

#[test]
fn a_tier_the_cpu_lacks_and_an_unknown_name_are_refused_at_start_up() {
    let missing = [Tier::Neon, Tier::Avx512, Tier::Avx2]
        .into_iter()
        .find(|t| !t.supported())
        .expect("no CPU has both neon and avx2");
    let has: Vec<&str> = supported_tiers().iter().map(|t| t.name()).collect();
    let out = saliency(&["models"], Some(missing.name()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{missing} accepted: {stderr}");
    assert!(
        stderr.contains("SALIENCY_SIMD") && stderr.contains(missing.name()),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("it has: {}", has.join(", "))),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = saliency(&["models"], Some("sse9"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "sse9 accepted: {stderr}");
    assert!(stderr.contains("sse9") && stderr.contains("portable, avx2, avx512 or neon"));

    let bench = ["bench", "--workload", "infer", "--batch-size", "2"];
    let out = saliency(&[&bench[..], &["--simd", missing.name()]].concat(), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--simd"),
        "{stderr}"
    );
}

#[test]
fn bench_json_records_the_tier_it_ran() {
    for tier in supported_tiers() {
        let args = [
            "bench",
            "--workload",
            "infer",
            "--batch-size",
            "2",
            "--rounds",
            "1",
            "--warmup",
            "0",
            "--round-seconds",
            "0",
            "--threads",
            "1",
            "--json",
            "--simd",
            tier.name(),
        ];
        // the flag wins over the variable
        let out = saliency(&args, Some("portable"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["simd"], tier.name(), "{report}");
    }
}
