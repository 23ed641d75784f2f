//! Throughput benchmarks of whole workloads (`saliency bench`): a training step, inference and
//! the attribution and adversarial passes, timed on synthetic data of a model's input shape.
//!
//! The workloads mirror the PyTorch script in `bench-peers/bench_torch.py` one for one, so the
//! two can be run alternately on the same machine and compared by the ratio of their medians
//! (see `docs/performance.md`). A measurement is: warm-up calls, then `rounds` rounds of the
//! same number of calls; each round's rate (images per second) is one sample, and the report
//! gives the median, minimum and maximum of the samples.

mod against;
mod workloads;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::models::{ModelError, ModelKind};

pub use against::{gradients_per_image, Against};
pub use workloads::{synthetic_batch, Workload as Runner};

/// Which workload to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// One optimizer step: forward in training mode, cross-entropy, backward, then Adam (`deep`,
    /// `medium`) or SGD with momentum and the L2 penalty (`alexnet`), as `saliency train` does.
    TrainStep,
    /// Softmax probabilities in evaluation mode on a no-record tape.
    Infer,
    /// Gradient x input: `|d max_k p_k / d x| * x` for every image of the batch.
    GradientXInput,
    /// Integrated gradients of the top class's probability, zero baseline: the path points of
    /// one image as one batched forward and backward.
    IntegratedGradients,
    /// FGSM: the loss gradient with respect to the input, then `clamp(x + 0.1 sign(g), 0, 1)`.
    Fgsm,
    /// One step of projected gradient descent as `adversary --method pgd` and `train
    /// --adversarial pgd` take it (`adversarial::pgd_linf` with one step, no random start): the
    /// loss gradient at the point, `x + alpha sign(g)`, projection onto the eps-ball (eps 0.1)
    /// and clipping to [0, 1]. A PGD-k attack costs k of these.
    PgdStep,
    /// Occlusion with the study's 4x4 zero patch and stride 4: 49 occluded copies per image,
    /// batched through the network in evaluation mode (`attribution::occlusion`).
    Occlusion,
    /// SmoothGrad with 50 noisy copies per image (`attribution::smoothgrad`, sigma 0.15), the
    /// copies batched `default_batch` at a time.
    #[serde(rename = "smoothgrad-50")]
    Smoothgrad50,
    /// LRP-epsilon (eps 1e-9) on the tape's backward rules (`attribution::lrp`), targets the
    /// predicted classes.
    LrpEpsilon,
    /// Guided backpropagation (`attribution::guided_backprop`): a ReLU rule, which keeps each
    /// fused ReLU + max-pool whose windows do not overlap as one op.
    GuidedBackprop,
    /// Deconvnet (`attribution::deconvnet`): a ReLU rule passing the positive part of the
    /// upstream signal.
    Deconvnet,
    /// LRP-gamma (gamma 0.25, eps 1e-9) on conv layers, LRP-epsilon on dense ones
    /// (`attribution::lrp`).
    LrpGamma,
    /// LRP-alpha-beta (alpha 1, beta 0, eps 1e-9) on conv layers, LRP-epsilon on dense ones
    /// (`attribution::lrp`).
    LrpAlphaBeta,
    /// DeepLIFT's rescale rule against a black reference (`attribution::deeplift`), with its
    /// summation-to-delta report.
    Deeplift,
}

impl Workload {
    /// Every workload, in the order the CLI lists them.
    pub const ALL: [Workload; 14] = [
        Workload::TrainStep,
        Workload::Infer,
        Workload::GradientXInput,
        Workload::IntegratedGradients,
        Workload::Fgsm,
        Workload::PgdStep,
        Workload::Occlusion,
        Workload::Smoothgrad50,
        Workload::LrpEpsilon,
        Workload::GuidedBackprop,
        Workload::Deconvnet,
        Workload::LrpGamma,
        Workload::LrpAlphaBeta,
        Workload::Deeplift,
    ];
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::TrainStep => "train-step",
            Workload::Infer => "infer",
            Workload::GradientXInput => "gradient-x-input",
            Workload::IntegratedGradients => "integrated-gradients",
            Workload::Fgsm => "fgsm",
            Workload::PgdStep => "pgd-step",
            Workload::Occlusion => "occlusion",
            Workload::Smoothgrad50 => "smoothgrad-50",
            Workload::LrpEpsilon => "lrp-epsilon",
            Workload::GuidedBackprop => "guided-backprop",
            Workload::Deconvnet => "deconvnet",
            Workload::LrpGamma => "lrp-gamma",
            Workload::LrpAlphaBeta => "lrp-alpha-beta",
            Workload::Deeplift => "deeplift",
        })
    }
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.to_string() == s)
            .ok_or_else(|| {
                let names: Vec<String> = Workload::ALL.iter().map(|w| w.to_string()).collect();
                format!(
                    "unknown workload '{s}': expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// What to measure and how long.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchConfig {
    /// The workload.
    pub workload: Workload,
    /// The network, built for Fashion-MNIST (1x28x28, 10 classes).
    pub model: ModelKind,
    /// Images per call (for integrated gradients: images, each with `ig_steps` path points).
    pub batch_size: usize,
    /// Timed rounds; each gives one images-per-second sample.
    pub rounds: usize,
    /// Untimed calls before the first round (at least one is always made).
    pub warmup: usize,
    /// Each round makes enough calls to last about this long (at least one call).
    pub round_time: Duration,
    /// Path points for integrated gradients.
    pub ig_steps: usize,
    /// A second workload (same model and batch size) whose rounds alternate with this one's
    /// ([`Against`]).
    pub against: Option<Workload>,
}

impl BenchConfig {
    /// Defaults for a workload: 7 rounds of about 0.5 s after 3 warm-up calls, 50 IG steps.
    pub fn new(workload: Workload, model: ModelKind, batch_size: usize) -> Self {
        Self {
            workload,
            model,
            batch_size,
            rounds: 7,
            warmup: 3,
            round_time: Duration::from_millis(500),
            ig_steps: 50,
            against: None,
        }
    }
}

/// The result of one measurement (the `--json` object).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchReport {
    /// The workload.
    pub workload: Workload,
    /// The network.
    pub model: ModelKind,
    /// Images per call.
    pub batch_size: usize,
    /// Rayon worker threads.
    pub threads: usize,
    /// The SIMD tier the kernels ran on (`portable`, `avx2`, `avx512`, `neon`).
    pub simd: String,
    /// The kernels `matrixmultiply` ran for the GEMMs ours do not take, which it picks from
    /// the CPU whatever the tier ([`tensor::cpu::matrixmultiply_kernels`]).
    #[serde(default)]
    pub matrixmultiply: String,
    /// Median over rounds of images per second.
    pub images_per_second: f64,
    /// Slowest round, images per second.
    pub min: f64,
    /// Fastest round, images per second.
    pub max: f64,
    /// Median milliseconds per call.
    pub ms_per_call: f64,
    /// Number of rounds.
    pub rounds: usize,
    /// Calls per round.
    pub calls_per_round: usize,
    /// Every round's images per second, in order.
    pub samples: Vec<f64>,
    /// Peak resident memory of the process so far (Linux `VmHWM`), MiB; `None` elsewhere.
    pub peak_rss_mib: Option<f64>,
    /// The `--against` workload's measurement and the per-round ratio, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<Against>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} batch {}, {} thread{}, {} kernels{}: {:.1} images/s (median of {} rounds of {} calls; min {:.1}, max {:.1}), {:.3} ms per call",
            self.model,
            self.workload,
            self.batch_size,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.simd,
            // A forced tier does not reach matrixmultiply: say so when it ran other kernels.
            if self.matrixmultiply.is_empty() || self.matrixmultiply == self.simd {
                String::new()
            } else {
                format!(" (matrixmultiply's own: {})", self.matrixmultiply)
            },
            self.images_per_second,
            self.rounds,
            self.calls_per_round,
            self.min,
            self.max,
            self.ms_per_call,
        )?;
        if let Some(rss) = self.peak_rss_mib {
            write!(f, ", peak RSS {rss:.0} MiB")?;
        }
        if let Some(a) = &self.against {
            write!(
                f,
                "\nagainst {}: {:.1} images/s in the alternate rounds; per gradient, {} runs at {:.3}x its speed (median of {} per-round ratios; min {:.3}, max {:.3})",
                a.workload,
                a.images_per_second,
                self.workload,
                a.ratio,
                a.samples.len(),
                a.ratio_min,
                a.ratio_max,
            )?;
        }
        Ok(())
    }
}

/// Errors of a measurement.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The settings are invalid.
    #[error("{0}")]
    Config(String),
    /// The model failed to build or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An attribution method failed.
    #[error(transparent)]
    Attribution(#[from] crate::attribution::AttributionError),
    /// An attack failed.
    #[error(transparent)]
    Adversarial(#[from] crate::adversarial::AdversarialError),
}

/// Refuses a batch (or an integrated-gradients path) whose activations would not fit in memory,
/// before anything is allocated: `--batch-size 100000000` used to abort the process with
/// "memory allocation of 313600000000 bytes failed".
fn check_memory(config: &BenchConfig) -> Result<(), BenchError> {
    let model: crate::models::Model<f32> =
        config
            .model
            .build(workloads::INPUT, workloads::CLASSES, 0)?;
    let per_image = crate::memory::activation_floats(&model) as f64 * 4.0;
    crate::memory::check(
        "--batch-size",
        config.batch_size as u64,
        &format!("the {} workload", config.workload),
        needed_bytes(config, per_image),
    )
    .map_err(BenchError::Config)?;
    if config.workload == Workload::IntegratedGradients {
        let steps = config.ig_steps as f64;
        let input_bytes: f64 = workloads::INPUT.iter().product::<usize>() as f64 * 4.0;
        crate::memory::check(
            "--ig-steps",
            config.ig_steps as u64,
            "one image's integrated-gradients path",
            3.0 * steps * per_image + steps * input_bytes,
        )
        .map_err(BenchError::Config)?;
    }
    Ok(())
}

/// Bytes a workload needs at `config.batch_size`: its inputs, and the activations of the passes
/// it holds at once (`per_image` bytes of activations per image in one pass).
fn needed_bytes(config: &BenchConfig, per_image: f64) -> f64 {
    let input_bytes: f64 = workloads::INPUT.iter().product::<usize>() as f64 * 4.0;
    let batch = config.batch_size as f64;
    // The attribution methods put at most this many images (noisy copies, rule passes) through
    // the network at once.
    let pass = crate::attribution::default_batch(workloads::INPUT) as f64;
    // Values, gradients and the tape's saved copies: about three times the forward activations.
    let (pool, passes) = match config.workload {
        Workload::TrainStep => (workloads::TRAIN_POOL as f64, 3.0 * batch),
        Workload::Infer => (1.0, batch),
        Workload::GradientXInput | Workload::Fgsm | Workload::PgdStep => (1.0, 3.0 * batch),
        Workload::IntegratedGradients => (1.0, batch),
        // 49 occluded copies of each image go through the network.
        Workload::Occlusion => (1.0, 49.0 * batch),
        // Noisy copies go through `default_batch` (256 at 28x28) at a time.
        Workload::Smoothgrad50 => (1.0, 3.0 * (50.0 * batch).min(pass)),
        // The rule passes take `default_batch` images at a time too (DeepLIFT's with their
        // references among them).
        Workload::LrpEpsilon
        | Workload::LrpGamma
        | Workload::LrpAlphaBeta
        | Workload::GuidedBackprop
        | Workload::Deconvnet
        | Workload::Deeplift => (1.0, 3.0 * batch.min(pass)),
    };
    pool * batch * input_bytes + passes * per_image
}

/// Builds the workload and times it in the current rayon pool.
pub fn run(config: &BenchConfig) -> Result<BenchReport, BenchError> {
    if config.batch_size == 0 {
        return Err(BenchError::Config(
            "--batch-size: expected at least 1, found 0".into(),
        ));
    }
    if config.rounds == 0 {
        return Err(BenchError::Config(
            "--rounds: expected at least 1, found 0".into(),
        ));
    }
    if config.workload == Workload::IntegratedGradients && config.ig_steps == 0 {
        return Err(BenchError::Config(
            "--ig-steps: expected at least 1, found 0".into(),
        ));
    }
    check_memory(config)?;
    let other = config.against.map(|workload| BenchConfig {
        workload,
        against: None,
        ..config.clone()
    });
    if let Some(other) = &other {
        check_memory(other)?;
    }
    let mut runners = vec![Runner::new(config)?];
    if let Some(other) = &other {
        runners.push(Runner::new(other)?);
    }
    // Warm-up: fills caches and workspaces, and tells how many calls fill a round.
    let mut calls = Vec::with_capacity(runners.len());
    for runner in &mut runners {
        let started = Instant::now();
        let warmup = config.warmup.max(1);
        for _ in 0..warmup {
            runner.call()?;
        }
        let per_call = started.elapsed().as_secs_f64() / warmup as f64;
        calls.push(((config.round_time.as_secs_f64() / per_call.max(1e-9)).ceil() as usize).max(1));
    }
    // Rounds alternate between the workloads, each round starting with the one the last
    // ended with, so neither always runs second.
    let mut seconds = vec![Vec::with_capacity(config.rounds); runners.len()];
    for round in 0..config.rounds {
        for k in 0..runners.len() {
            let i = if round % 2 == 0 {
                k
            } else {
                runners.len() - 1 - k
            };
            let t = Instant::now();
            for _ in 0..calls[i] {
                runners[i].call()?;
            }
            seconds[i].push(t.elapsed().as_secs_f64().max(1e-12));
        }
    }
    let rates = |i: usize| -> Vec<f64> {
        let images = config.batch_size as f64 * calls[i] as f64;
        seconds[i].iter().map(|s| images / s).collect()
    };
    let against = other.map(|other| {
        let per_image = [
            gradients_per_image(config.workload, config.ig_steps),
            gradients_per_image(other.workload, other.ig_steps),
        ];
        Against::new(other.workload, per_image, &rates(0), &rates(1), calls[1])
    });
    let (calls, seconds) = (calls[0], &seconds[0]);
    let images = config.batch_size as f64 * calls as f64;
    let samples: Vec<f64> = seconds.iter().map(|s| images / s).collect();
    let ms: Vec<f64> = seconds.iter().map(|s| 1e3 * s / calls as f64).collect();
    Ok(BenchReport {
        workload: config.workload,
        model: config.model,
        batch_size: config.batch_size,
        threads: rayon::current_num_threads(),
        simd: tensor::cpu::tier().name().to_string(),
        matrixmultiply: tensor::cpu::matrixmultiply_kernels().to_string(),
        images_per_second: median(&samples),
        min: samples.iter().copied().fold(f64::INFINITY, f64::min),
        max: samples.iter().copied().fold(0.0, f64::max),
        ms_per_call: median(&ms),
        rounds: config.rounds,
        calls_per_round: calls,
        samples,
        peak_rss_mib: peak_rss_mib(),
        against,
    })
}

/// The median (mean of the middle two for an even count); NaN for an empty slice.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// The process's peak resident set size from `/proc/self/status` (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(w.to_string().parse::<Workload>(), Ok(w));
            // `--json` names a workload as the command line does.
            assert_eq!(serde_json::to_value(w).unwrap(), w.to_string().as_str());
        }
        let err = "train".parse::<Workload>().unwrap_err();
        assert!(err.contains("train-step"), "{err}");
    }

    /// SmoothGrad's 50 copies per image and LRP's rule passes go through the network
    /// `default_batch` images at a time: past one pass, a larger batch adds only its inputs.
    #[test]
    fn smoothgrad_and_lrp_memory_is_bounded_by_the_pass_not_samples_times_images() {
        let per_image = 1e6;
        let input = (28 * 28 * 4) as f64;
        let at = |workload, batch| {
            needed_bytes(
                &BenchConfig::new(workload, ModelKind::Deep, batch),
                per_image,
            )
        };
        for workload in [
            Workload::Smoothgrad50,
            Workload::LrpEpsilon,
            Workload::GuidedBackprop,
        ] {
            let (small, large) = (at(workload, 1024), at(workload, 4096));
            assert_eq!(large - small, 3072.0 * input, "{workload}");
            assert!(
                small <= 3.0 * 256.0 * per_image + 1024.0 * input,
                "{workload}"
            );
        }
        // Gradient x input holds its whole batch: its need grows with it.
        let gxi = |b| at(Workload::GradientXInput, b);
        assert!(gxi(4096) - gxi(1024) > 3072.0 * 3.0 * per_image);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        // Sorted [1, 2, 3] -> 2; sorted [1, 2, 3, 10] -> (2 + 3) / 2.
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[10.0, 1.0, 3.0, 2.0]), 2.5);
    }

    /// `--against` times both workloads in alternate rounds and takes their ratio per round,
    /// per gradient: SmoothGrad's 50 gradients an image count 50 times.
    #[test]
    fn against_alternates_two_workloads_and_gives_their_per_gradient_ratio() {
        let mut config = BenchConfig::new(Workload::Smoothgrad50, ModelKind::Deep, 2);
        config.rounds = 3;
        config.warmup = 1;
        config.round_time = Duration::ZERO;
        config.against = Some(Workload::GradientXInput);
        let report = run(&config).unwrap();
        let a = report.against.clone().expect("a comparison");
        assert_eq!(a.workload, Workload::GradientXInput);
        assert_eq!((report.samples.len(), a.samples.len()), (3, 3));
        assert_eq!(a.gradients_per_image, [50.0, 1.0]);
        let ratios: Vec<f64> = report
            .samples
            .iter()
            .zip(&a.samples)
            .map(|(s, g)| 50.0 * s / g)
            .collect();
        assert_eq!(a.ratio, median(&ratios));
        assert!(a.ratio_min <= a.ratio && a.ratio <= a.ratio_max, "{a:?}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["against"]["workload"], "gradient-x-input");
        assert!(
            report.to_string().contains("against gradient-x-input"),
            "{report}"
        );
        // Without --against the report has no such key.
        config.against = None;
        let json = serde_json::to_value(run(&config).unwrap()).unwrap();
        assert!(json.get("against").is_none(), "{json}");
    }

    #[test]
    fn every_workload_runs_once_on_a_tiny_batch() {
        for workload in Workload::ALL {
            let mut config = BenchConfig::new(workload, ModelKind::Deep, 2);
            config.rounds = 1;
            config.warmup = 1;
            config.round_time = Duration::ZERO;
            config.ig_steps = 3;
            let report = run(&config).unwrap();
            assert_eq!(report.samples.len(), 1, "{workload}");
            assert!(report.images_per_second > 0.0, "{workload}: {report}");
            let json = serde_json::to_value(&report).unwrap();
            for key in [
                "workload",
                "model",
                "batch_size",
                "threads",
                "simd",
                "matrixmultiply",
                "images_per_second",
                "min",
                "max",
            ] {
                assert!(json.get(key).is_some(), "{workload}: no {key} in {json}");
            }
            assert_eq!(json["simd"], tensor::cpu::tier().name(), "{workload}");
            assert_eq!(
                json["matrixmultiply"],
                tensor::cpu::matrixmultiply_kernels(),
                "{workload}"
            );
        }
    }
}
