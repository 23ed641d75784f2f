//! The timed workloads: one call of each, on synthetic Fashion-MNIST-shaped data.
//!
//! Each mirrors one task of `bench-peers/bench_torch.py`: the training step rotates over eight
//! prepared batches, the other workloads reuse one batch. Data are uint8-like pixels (k / 255)
//! and uniform labels from a fixed seed, so every run times the same arithmetic.

use tensor::Tensor;

use crate::adversarial::{pgd_linf, AttackConfig, PgdConfig};
use crate::attribution::{
    deconvnet, deeplift, guided_backprop, lrp, occlusion, smoothgrad, Baseline, LrpRule,
    NoiseOptions, OcclusionOptions,
};
use crate::infer::{argmax_rows, input_gradients, predict_probs, Objective};
use crate::loss::LossKind;
use crate::models::{mix_seed, Mode, Model, ModelKind};
use crate::train::{forward_backward, Optimizer, OptimizerConfig, StepTapes};

use super::{BenchConfig, BenchError, Workload as Kind};

/// Fashion-MNIST's image shape (C, H, W) and class count.
pub(super) const INPUT: [usize; 3] = [1, 28, 28];
pub(super) const CLASSES: usize = 10;
/// Batches the training step rotates over, as the PyTorch script does.
pub(super) const TRAIN_POOL: usize = 8;
/// FGSM's step size, as in the PyTorch script.
const FGSM_EPS: f32 = 0.1;

/// `n` images of `INPUT` shape with pixels k / 255 and `n` labels below `CLASSES`, from `seed`.
pub fn synthetic_batch(n: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let per: usize = INPUT.iter().product();
    let pixels = (0..n * per)
        .map(|i| (mix_seed(seed, i as u64) % 256) as f32 / 255.0)
        .collect();
    let labels = (0..n)
        .map(|i| (mix_seed(seed ^ 0x1abe1, i as u64) % CLASSES as u64) as usize)
        .collect();
    (pixels, labels)
}

/// A workload ready to be called repeatedly: the model, its data and any state a call keeps.
pub struct Workload {
    kind: Kind,
    model: Model<f32>,
    batch_size: usize,
    /// Training: `TRAIN_POOL` batches; otherwise one.
    batches: Vec<(Vec<f32>, Vec<usize>)>,
    optimizer: Optimizer,
    l2: f64,
    tapes: StepTapes,
    step: u64,
    ig_steps: usize,
    /// Integrated gradients: the class each image's attribution is for (its top class).
    ig_targets: Vec<usize>,
}

impl Workload {
    /// Builds the model (seed 0) and the data for `config`.
    pub fn new(config: &BenchConfig) -> Result<Self, BenchError> {
        let model: Model<f32> = config.model.build(INPUT, CLASSES, 0)?;
        let (optimizer_config, l2) = match config.model {
            ModelKind::Alexnet => (OptimizerConfig::study_sgd(), 5e-4),
            _ => (OptimizerConfig::study_adam(), 0.0),
        };
        let optimizer = Optimizer::new(optimizer_config, &model.params);
        let pool = if config.workload == Kind::TrainStep {
            TRAIN_POOL
        } else {
            1
        };
        let batches: Vec<_> = (0..pool)
            .map(|b| synthetic_batch(config.batch_size, b as u64))
            .collect();
        let ig_targets = if config.workload == Kind::IntegratedGradients {
            let probs = predict_probs(&model, &batches[0].0, config.batch_size)?;
            argmax_rows(&probs, CLASSES)
        } else {
            Vec::new()
        };
        Ok(Self {
            kind: config.workload,
            model,
            batch_size: config.batch_size,
            batches,
            optimizer,
            l2,
            tapes: StepTapes::new(),
            step: 0,
            ig_steps: config.ig_steps,
            ig_targets,
        })
    }

    /// One call of the workload on `batch_size` images.
    pub fn call(&mut self) -> Result<(), BenchError> {
        match self.kind {
            Kind::TrainStep => self.train_step(),
            Kind::Infer => {
                let probs = predict_probs(&self.model, &self.batches[0].0, self.batch_size)?;
                std::hint::black_box(probs);
                Ok(())
            }
            Kind::GradientXInput => self.gradient_x_input(),
            Kind::IntegratedGradients => self.integrated_gradients(),
            Kind::Fgsm => self.fgsm(),
            Kind::PgdStep => self.pgd_step(),
            Kind::Occlusion => {
                let maps = occlusion(
                    &self.model,
                    &self.input_tensor(0),
                    &OcclusionOptions::for_input(INPUT),
                )?;
                std::hint::black_box(maps);
                Ok(())
            }
            Kind::Smoothgrad50 => {
                let x = self.input_tensor(0);
                let classes = self.batches[0].1.clone();
                let options = NoiseOptions {
                    samples: 50,
                    ..NoiseOptions::default()
                };
                std::hint::black_box(smoothgrad(&self.model, &x, &classes, &options)?);
                Ok(())
            }
            Kind::LrpEpsilon => self.lrp(LrpRule::Epsilon { epsilon: 1e-9 }),
            Kind::LrpGamma => self.lrp(LrpRule::Gamma {
                gamma: 0.25,
                epsilon: 1e-9,
            }),
            Kind::LrpAlphaBeta => self.lrp(LrpRule::AlphaBeta {
                alpha: 1.0,
                beta: 0.0,
                epsilon: 1e-9,
            }),
            Kind::Deconvnet => {
                let x = self.input_tensor(0);
                let classes = self.batches[0].1.clone();
                std::hint::black_box(deconvnet(&self.model, &x, &classes)?);
                Ok(())
            }
            Kind::Deeplift => {
                let x = self.input_tensor(0);
                let classes = self.batches[0].1.clone();
                let reference = Baseline::Black;
                std::hint::black_box(deeplift(&self.model, &x, &classes, &reference)?);
                Ok(())
            }
            Kind::GuidedBackprop => {
                let x = self.input_tensor(0);
                let classes = self.batches[0].1.clone();
                std::hint::black_box(guided_backprop(&self.model, &x, &classes)?);
                Ok(())
            }
        }
    }

    /// The body of `Trainer::run`'s minibatch loop (the same [`forward_backward`], finiteness
    /// check and update), minus data loading and progress reports.
    fn train_step(&mut self) -> Result<(), BenchError> {
        let Self {
            model,
            batches,
            optimizer,
            tapes,
            step,
            l2,
            ..
        } = self;
        let (images, labels) = &batches[(*step as usize) % batches.len()];
        let [c, h, w] = INPUT;
        let x = Tensor::from_vec(&[labels.len(), c, h, w], images.clone()).expect("batch length");
        let mode = Mode::Train {
            seed: mix_seed(0, *step),
        };
        let out = forward_backward(model, tapes, x, labels, mode, LossKind::CrossEntropy)?;
        let grads = out
            .grads
            .ok_or_else(|| BenchError::Config(format!("the loss is not finite ({})", out.loss)))?;
        std::hint::black_box(argmax_rows(&out.logits, model.classes));
        let check = optimizer.step(&mut model.params, &grads, &model.param_info, *l2);
        tapes.recycle(grads);
        if let Some(i) = check.non_finite_gradient.or(check.non_finite_parameter) {
            return Err(BenchError::Config(format!(
                "the gradient or the update of {} is not finite",
                model.param_info[i].name
            )));
        }
        model.apply_running_updates(&out.updates);
        *step += 1;
        Ok(())
    }

    /// LRP by `rule` of the labels' logits over the batch.
    fn lrp(&mut self, rule: LrpRule) -> Result<(), BenchError> {
        let x = self.input_tensor(0);
        let classes = self.batches[0].1.clone();
        std::hint::black_box(lrp(&self.model, &x, &classes, rule)?);
        Ok(())
    }

    /// `|d max_k p_k / d x| * x` over the batch.
    fn gradient_x_input(&mut self) -> Result<(), BenchError> {
        let x = self.input_tensor(0);
        let (g, _) = input_gradients(&self.model, &x, &Objective::TopProbability)?;
        let out: Vec<f32> = g
            .data()
            .iter()
            .zip(x.data())
            .map(|(&gi, &xi)| gi.abs() * xi)
            .collect();
        std::hint::black_box(out);
        Ok(())
    }

    /// `clamp(x + eps * sign(dJ/dx), 0, 1)` with J the cross-entropy against the labels.
    fn fgsm(&mut self) -> Result<(), BenchError> {
        let x = self.input_tensor(0);
        let objective = Objective::Loss {
            labels: self.batches[0].1.clone(),
            kind: LossKind::CrossEntropy,
        };
        let (g, _) = input_gradients(&self.model, &x, &objective)?;
        let adv: Vec<f32> = g
            .data()
            .iter()
            .zip(x.data())
            .map(|(&gi, &xi)| {
                let s = if gi > 0.0 {
                    1.0
                } else if gi < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                (xi + FGSM_EPS * s).clamp(0.0, 1.0)
            })
            .collect();
        std::hint::black_box(adv);
        Ok(())
    }

    /// One PGD step from the clean batch through the library's attack (with its checks), so it
    /// times what a PGD-k attack or an adversarial training step pays k times.
    fn pgd_step(&mut self) -> Result<(), BenchError> {
        let x = self.input_tensor(0);
        let config = AttackConfig {
            batch: self.batch_size,
            pgd: PgdConfig {
                steps: 1,
                step_size: None,
                random_start: false,
                restarts: 1,
            },
            ..AttackConfig::default()
        };
        let adv = pgd_linf(
            &self.model,
            &x,
            &self.batches[0].1,
            FGSM_EPS as f64,
            &config,
        )?;
        std::hint::black_box(adv);
        Ok(())
    }

    /// For each image: `x * mean_k dp_target/dx (k/steps * x)`, k = 1..=steps, the path points
    /// batched as one forward and backward.
    fn integrated_gradients(&mut self) -> Result<(), BenchError> {
        let per: usize = INPUT.iter().product();
        let steps = self.ig_steps;
        let images = &self.batches[0].0;
        for (i, x0) in images.chunks_exact(per).enumerate() {
            let path: Vec<f32> = (1..=steps)
                .flat_map(|k| {
                    let alpha = k as f32 / steps as f32;
                    x0.iter().map(move |&v| alpha * v)
                })
                .collect();
            let [c, h, w] = INPUT;
            let xs = Tensor::from_vec(&[steps, c, h, w], path).expect("path length");
            let objective = Objective::Probability(vec![self.ig_targets[i]; steps]);
            let (g, _) = input_gradients(&self.model, &xs, &objective)?;
            let mut attribution = vec![0.0f32; per];
            for gk in g.data().chunks_exact(per) {
                for (a, &v) in attribution.iter_mut().zip(gk) {
                    *a += v;
                }
            }
            for (a, &v) in attribution.iter_mut().zip(x0) {
                *a *= v / steps as f32;
            }
            std::hint::black_box(attribution);
        }
        Ok(())
    }

    /// Batch `b` as an (N, C, H, W) tensor.
    fn input_tensor(&self, b: usize) -> Tensor<f32> {
        let [c, h, w] = INPUT;
        Tensor::from_vec(&[self.batch_size, c, h, w], self.batches[b].0.clone())
            .expect("batch length")
    }
}
