//! Optimizers: Adam and SGD with momentum and per-step decay, plus the L2 kernel penalty.

use rayon::prelude::*;
use tensor::adam::{AdamStep, Finite, SgdStep};
use tensor::Tensor;

use crate::models::ParamInfo;

/// Which optimizer and its settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerConfig {
    /// Adam (PyTorch's form): `p -= lr * m_hat / (sqrt(v_hat) + eps)`.
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
    /// SGD with momentum (Keras's form): `v = mu v - lr_t g; p += v`, `lr_t = lr / (1 + decay t)`.
    Sgd { lr: f64, momentum: f64, decay: f64 },
}

impl OptimizerConfig {
    /// The study's Adam: lr 1e-3, betas 0.9 / 0.999, eps 1e-7 (Keras's default).
    pub fn study_adam() -> Self {
        OptimizerConfig::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        }
    }

    /// The study's AlexNet SGD: lr 0.01, momentum 0.9, decay 0.3 per step.
    pub fn study_sgd() -> Self {
        OptimizerConfig::Sgd {
            lr: 0.01,
            momentum: 0.9,
            decay: 0.3,
        }
    }

    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Adam { lr, .. } | OptimizerConfig::Sgd { lr, .. } => *lr,
        }
    }

    /// The same optimizer with another base learning rate (for schedules).
    pub fn with_lr(&self, new_lr: f64) -> Self {
        let mut c = self.clone();
        match &mut c {
            OptimizerConfig::Adam { lr, .. } | OptimizerConfig::Sgd { lr, .. } => *lr = new_lr,
        }
        c
    }
}

/// Optimizer state: one moment buffer (SGD) or two (Adam) per parameter, and the step count.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    /// Settings.
    pub config: OptimizerConfig,
    /// Updates applied so far.
    pub t: u64,
    /// First moment (Adam) or velocity (SGD), per parameter.
    pub m: Vec<Vec<f32>>,
    /// Second moment (Adam only; empty vectors for SGD).
    pub v: Vec<Vec<f32>>,
}

impl Optimizer {
    /// Fresh state for parameters of these sizes.
    pub fn new(config: OptimizerConfig, params: &[Tensor<f32>]) -> Self {
        let m = params.iter().map(|p| vec![0.0; p.numel()]).collect();
        let v = match config {
            OptimizerConfig::Adam { .. } => params.iter().map(|p| vec![0.0; p.numel()]).collect(),
            OptimizerConfig::Sgd { .. } => params.iter().map(|_| Vec::new()).collect(),
        };
        Self { config, t: 0, m, v }
    }

    /// Applies one update. `l2` adds the gradient of `l2 * sum(w^2)` for parameters whose info
    /// says the penalty applies (conv and dense kernels).
    ///
    /// The update is applied whatever the gradients hold; what it returns names the first
    /// parameter (in model order) whose gradient, or whose updated value, is not finite, found
    /// on the update's own pass over them.
    pub fn step(
        &mut self,
        params: &mut [Tensor<f32>],
        grads: &[Tensor<f32>],
        info: &[ParamInfo],
        l2: f64,
    ) -> UpdateCheck {
        self.t += 1;
        let t = self.t;
        let decay = |i: usize| {
            if info[i].l2 && l2 > 0.0 {
                (2.0 * l2) as f32
            } else {
                0.0
            }
        };
        // Every tensor's chunks form one list of tasks, so that a network of many small tensors
        // (deep's are all below one chunk) is updated on all threads, not one tensor at a time.
        match self.config {
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                // Bias corrections folded into the step size, computed in f64 once.
                let c1 = 1.0 - beta1.powi(t as i32);
                let c2 = 1.0 - beta2.powi(t as i32);
                let kernel = |i| AdamStep {
                    b1: beta1 as f32,
                    b2: beta2 as f32,
                    step: (lr / c1) as f32,
                    inv_sqrt_c2: (1.0 / c2.sqrt()) as f32,
                    eps: eps as f32,
                    decay: decay(i),
                };
                let (mut tasks, tier) = (Vec::new(), tensor::cpu::tier());
                for (i, (((p, g), m), v)) in params
                    .iter_mut()
                    .zip(grads)
                    .zip(&mut self.m)
                    .zip(&mut self.v)
                    .enumerate()
                {
                    let k = kernel(i);
                    for (((p, g), m), v) in p
                        .data_mut()
                        .chunks_mut(CHUNK)
                        .zip(g.data().chunks(CHUNK))
                        .zip(m.chunks_mut(CHUNK))
                        .zip(v.chunks_mut(CHUNK))
                    {
                        tasks.push((i, k, p, g, m, v));
                    }
                }
                tasks
                    .into_par_iter()
                    .map(|(i, k, p, g, m, v)| UpdateCheck::of(i, k.apply(tier, p, g, m, v)))
                    .reduce(UpdateCheck::default, UpdateCheck::first)
            }
            OptimizerConfig::Sgd {
                lr,
                momentum,
                decay: lr_decay,
            } => {
                // Keras: lr_t = lr / (1 + decay * iterations), iterations counted before this step.
                let kernel = |i| SgdStep {
                    lr_t: (lr / (1.0 + lr_decay * (t - 1) as f64)) as f32,
                    mu: momentum as f32,
                    decay: decay(i),
                };
                let (mut tasks, tier) = (Vec::new(), tensor::cpu::tier());
                for (i, ((p, g), vel)) in params.iter_mut().zip(grads).zip(&mut self.m).enumerate()
                {
                    let k = kernel(i);
                    for ((p, g), vel) in p
                        .data_mut()
                        .chunks_mut(CHUNK)
                        .zip(g.data().chunks(CHUNK))
                        .zip(vel.chunks_mut(CHUNK))
                    {
                        tasks.push((i, k, p, g, vel));
                    }
                }
                tasks
                    .into_par_iter()
                    .map(|(i, k, p, g, vel)| UpdateCheck::of(i, k.apply(tier, p, g, vel)))
                    .reduce(UpdateCheck::default, UpdateCheck::first)
            }
        }
    }
}

/// What an update found: the first parameter, by index in model order, whose gradient was not
/// finite, and the first whose value is not finite after the update (`None`: all were).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "a non-finite gradient or parameter is an error the caller must report"]
pub struct UpdateCheck {
    /// The first parameter with an infinite or NaN gradient.
    pub non_finite_gradient: Option<usize>,
    /// The first parameter infinite or NaN after the update.
    pub non_finite_parameter: Option<usize>,
}

impl UpdateCheck {
    /// What one chunk of parameter `index` showed.
    fn of(index: usize, finite: Finite) -> Self {
        UpdateCheck {
            non_finite_gradient: (!finite.gradients).then_some(index),
            non_finite_parameter: (!finite.parameters).then_some(index),
        }
    }

    /// The earlier parameter of each finding: the order of the reduction does not matter.
    fn first(a: Self, b: Self) -> Self {
        let min = |x: Option<usize>, y: Option<usize>| match (x, y) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        UpdateCheck {
            non_finite_gradient: min(a.non_finite_gradient, b.non_finite_gradient),
            non_finite_parameter: min(a.non_finite_parameter, b.non_finite_parameter),
        }
    }
}

/// Elements per parallel task of an update: large enough that waking a thread pays off (deep's
/// small tensors stay on one thread), small enough that alexnet's 9.4M-weight dense layer splits.
/// Updates are elementwise, so the split never changes a result.
const CHUNK: usize = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn info(l2: bool) -> Vec<ParamInfo> {
        vec![ParamInfo {
            name: "w".into(),
            shape: vec![2],
            l2,
        }]
    }

    #[test]
    fn adam_first_step_moves_by_lr_times_sign() {
        // After one step m_hat = g and v_hat = g^2, so the move is lr * g / (|g| + eps) ~ lr * sign(g).
        let mut p = vec![Tensor::from_vec(&[2], vec![1.0f32, -1.0]).unwrap()];
        let g = vec![Tensor::from_vec(&[2], vec![0.5f32, -2.0]).unwrap()];
        let mut opt = Optimizer::new(OptimizerConfig::study_adam(), &p);
        assert_eq!(
            opt.step(&mut p, &g, &info(false), 0.0),
            UpdateCheck::default()
        );
        assert!(
            (p[0].data()[0] - (1.0 - 1e-3)).abs() < 1e-6,
            "{:?}",
            p[0].data()
        );
        assert!(
            (p[0].data()[1] - (-1.0 + 1e-3)).abs() < 1e-6,
            "{:?}",
            p[0].data()
        );
    }

    #[test]
    fn chunked_parallel_updates_equal_a_plain_loop() {
        // Longer than several CHUNKs, with a ragged end: every element is updated once, with
        // the scalar formula's bits.
        let n = 3 * CHUNK + 1234;
        let p0: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 104729) % 997) as f32 / 300.0 - 1.6)
            .collect();
        for config in [OptimizerConfig::study_adam(), OptimizerConfig::study_sgd()] {
            let mut p = vec![Tensor::from_vec(&[n], p0.clone()).unwrap()];
            let grads = vec![Tensor::from_vec(&[n], g.clone()).unwrap()];
            let mut opt = Optimizer::new(config.clone(), &p);
            let infos = vec![ParamInfo {
                name: "w".into(),
                shape: vec![n],
                l2: true,
            }];
            for _ in 0..2 {
                assert_eq!(
                    opt.step(&mut p, &grads, &infos, 5e-4),
                    UpdateCheck::default()
                );
            }
            let (mut q, mut m, mut v) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
            for t in 1..=2u64 {
                for j in 0..n {
                    let gj = g[j] + 1e-3f32 * q[j];
                    match config {
                        OptimizerConfig::Adam {
                            lr,
                            beta1,
                            beta2,
                            eps,
                        } => {
                            let step = (lr / (1.0 - beta1.powi(t as i32))) as f32;
                            let inv = (1.0 / (1.0 - beta2.powi(t as i32)).sqrt()) as f32;
                            let (b1, b2) = (beta1 as f32, beta2 as f32);
                            m[j] = b1 * m[j] + (1.0 - b1) * gj;
                            v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
                            q[j] -= step * m[j] / (v[j].sqrt() * inv + eps as f32);
                        }
                        OptimizerConfig::Sgd {
                            lr,
                            momentum,
                            decay,
                        } => {
                            let lr_t = (lr / (1.0 + decay * (t - 1) as f64)) as f32;
                            m[j] = momentum as f32 * m[j] - lr_t * gj;
                            q[j] += m[j];
                        }
                    }
                }
            }
            assert_eq!(p[0].data(), &q[..], "{config:?}");
        }
    }

    #[test]
    fn sgd_decay_and_momentum_follow_keras() {
        // t=1: lr_t = 0.01, v = -0.01 g. t=2: lr_t = 0.01 / 1.3, v = 0.9 v - lr_t g.
        let mut p = vec![Tensor::from_vec(&[2], vec![0.0f32, 0.0]).unwrap()];
        let g = vec![Tensor::from_vec(&[2], vec![1.0f32, 1.0]).unwrap()];
        let mut opt = Optimizer::new(OptimizerConfig::study_sgd(), &p);
        let _ = opt.step(&mut p, &g, &info(false), 0.0);
        let _ = opt.step(&mut p, &g, &info(false), 0.0);
        let v1 = -0.01f64;
        let v2 = 0.9 * v1 - 0.01 / 1.3;
        assert!((p[0].data()[0] as f64 - (v1 + v2)).abs() < 1e-7);
    }

    #[test]
    fn l2_penalty_adds_its_gradient_only_where_it_applies() {
        let cfg = OptimizerConfig::Sgd {
            lr: 1.0,
            momentum: 0.0,
            decay: 0.0,
        };
        let zero = vec![Tensor::from_vec(&[2], vec![0.0f32, 0.0]).unwrap()];
        let mut with = vec![Tensor::from_vec(&[2], vec![1.0f32, 2.0]).unwrap()];
        let mut without = with.clone();
        let _ = Optimizer::new(cfg.clone(), &with).step(&mut with, &zero, &info(true), 5e-4);
        let _ = Optimizer::new(cfg, &without).step(&mut without, &zero, &info(false), 5e-4);
        // d(5e-4 w^2)/dw = 1e-3 w.
        assert!((with[0].data()[1] - (2.0 - 2e-3)).abs() < 1e-7);
        assert_eq!(without[0].data(), &[1.0, 2.0]);
    }

    /// Both optimizers name the first parameter, in model order, with a non-finite gradient and
    /// the first that is not finite after the update, wherever in its chunks the value sits.
    #[test]
    fn the_update_names_the_first_non_finite_gradient_and_parameter() {
        let n = CHUNK + 100;
        let infos: Vec<ParamInfo> = ["a", "b", "c"]
            .iter()
            .map(|name| ParamInfo {
                name: (*name).into(),
                shape: vec![n],
                l2: false,
            })
            .collect();
        let tensor = |v: f32| Tensor::from_vec(&[n], vec![v; n]).unwrap();
        for config in [OptimizerConfig::study_adam(), OptimizerConfig::study_sgd()] {
            // A NaN gradient in c's first chunk and an infinite one in b's ragged tail.
            let mut p = vec![tensor(0.5), tensor(0.5), tensor(0.5)];
            let mut g = vec![tensor(0.1), tensor(0.1), tensor(0.1)];
            g[2].data_mut()[3] = f32::NAN;
            g[1].data_mut()[n - 1] = f32::INFINITY;
            let mut opt = Optimizer::new(config.clone(), &p);
            let check = opt.step(&mut p, &g, &infos, 0.0);
            assert_eq!(check.non_finite_gradient, Some(1), "{config:?}");
            assert_eq!(check.non_finite_parameter, Some(1), "{config:?}");
            // Finite gradients, but c's parameter is already NaN.
            let mut p = vec![tensor(0.5), tensor(0.5), tensor(0.5)];
            p[2].data_mut()[CHUNK + 7] = f32::NAN;
            let g = vec![tensor(0.1), tensor(0.1), tensor(0.1)];
            let mut opt = Optimizer::new(config.clone(), &p);
            let check = opt.step(&mut p, &g, &infos, 0.0);
            assert_eq!(
                check,
                UpdateCheck {
                    non_finite_gradient: None,
                    non_finite_parameter: Some(2),
                },
                "{config:?}"
            );
        }
    }
}
