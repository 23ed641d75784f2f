//! Optimizers: Adam and SGD with momentum and per-step decay, plus the L2 kernel penalty.

use rayon::prelude::*;
use tensor::adam::AdamStep;
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
    pub fn step(
        &mut self,
        params: &mut [Tensor<f32>],
        grads: &[Tensor<f32>],
        info: &[ParamInfo],
        l2: f64,
    ) {
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
                        tasks.push((k, p, g, m, v));
                    }
                }
                tasks
                    .into_par_iter()
                    .for_each(|(k, p, g, m, v)| k.apply(tier, p, g, m, v));
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
                let mut tasks = Vec::new();
                for (i, ((p, g), vel)) in params.iter_mut().zip(grads).zip(&mut self.m).enumerate()
                {
                    let k = kernel(i);
                    for ((p, g), vel) in p
                        .data_mut()
                        .chunks_mut(CHUNK)
                        .zip(g.data().chunks(CHUNK))
                        .zip(vel.chunks_mut(CHUNK))
                    {
                        tasks.push((k, p, g, vel));
                    }
                }
                tasks
                    .into_par_iter()
                    .for_each(|(k, p, g, vel)| k.apply(p, g, vel));
            }
        }
    }
}

/// Elements per parallel task of an update: large enough that waking a thread pays off (deep's
/// small tensors stay on one thread), small enough that alexnet's 9.4M-weight dense layer splits.
/// Updates are elementwise, so the split never changes a result.
const CHUNK: usize = 1 << 16;

/// One SGD-with-momentum update with its per-step constants.
#[derive(Clone, Copy)]
struct SgdStep {
    lr_t: f32,
    mu: f32,
    decay: f32,
}

impl SgdStep {
    /// Updates one chunk (elementwise, as [`AdamStep::apply`]).
    fn apply(&self, p: &mut [f32], g: &[f32], vel: &mut [f32]) {
        for ((p, &g), vel) in p.iter_mut().zip(g).zip(vel.iter_mut()) {
            let gj = g + self.decay * *p;
            *vel = self.mu * *vel - self.lr_t * gj;
            *p += *vel;
        }
    }
}

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
        opt.step(&mut p, &g, &info(false), 0.0);
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
            opt.step(&mut p, &grads, &infos, 5e-4);
            opt.step(&mut p, &grads, &infos, 5e-4);
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
        opt.step(&mut p, &g, &info(false), 0.0);
        opt.step(&mut p, &g, &info(false), 0.0);
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
        Optimizer::new(cfg.clone(), &with).step(&mut with, &zero, &info(true), 5e-4);
        Optimizer::new(cfg, &without).step(&mut without, &zero, &info(false), 5e-4);
        // d(5e-4 w^2)/dw = 1e-3 w.
        assert!((with[0].data()[1] - (2.0 - 2e-3)).abs() < 1e-7);
        assert_eq!(without[0].data(), &[1.0, 2.0]);
    }
}
