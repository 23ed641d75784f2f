//! Adversarial training (Madry et al. 2018): each minibatch is replaced by its PGD examples
//! against the current model before the step, optionally keeping a share of it clean.

use tensor::Tensor;

use crate::adversarial::{attack, AdversarialError, AttackConfig, Method, PgdConfig};
use crate::loss::LossKind;
use crate::models::{mix_seed, Model};

/// The attack a minibatch is replaced by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum TrainingAttack {
    /// Untargeted PGD under L-infinity with a random start.
    Pgd,
}

/// Settings of adversarial training (saved in config.json; a change is refused on resume).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdversarialTraining {
    /// The attack.
    pub attack: TrainingAttack,
    /// The L-infinity budget eps.
    pub epsilon: f64,
    /// PGD steps k per minibatch (Madry et al.: 40 on MNIST, 7 on CIFAR-10).
    pub steps: usize,
    /// PGD's step size alpha; `None` means 2.5 eps / k.
    pub step_size: Option<f64>,
    /// Share of each minibatch kept clean (its first round(share * B) images); 0 replaces the
    /// whole minibatch, as Madry et al.
    pub clean_fraction: f64,
}

impl AdversarialTraining {
    /// Checks the settings, naming the CLI option at fault.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.epsilon >= 0.0 && self.epsilon.is_finite()) {
            return Err(format!(
                "--epsilon: expected a non-negative finite budget, found {}",
                self.epsilon
            ));
        }
        if self.steps == 0 {
            return Err("--steps: expected at least 1, found 0".into());
        }
        if let Some(a) = self.step_size.filter(|a| !(*a >= 0.0 && a.is_finite())) {
            return Err(format!(
                "--step-size: expected a non-negative finite step size, found {a}"
            ));
        }
        if !(0.0..=1.0).contains(&self.clean_fraction) {
            return Err(format!(
                "--clean-fraction: expected a share between 0 and 1, found {}",
                self.clean_fraction
            ));
        }
        Ok(())
    }
}

/// Salt of the per-step seed of PGD's random start.
const SALT_ADVERSARIAL: u64 = 0xAD_0000_0000;

/// The minibatch `images` (N, C, H, W) with `labels` as trained on at update `step`: the first
/// round(clean_fraction * N) images as they are, the others replaced by their PGD examples
/// against `model` (evaluation mode) under `loss`. The random start is drawn from the run's
/// `seed` and the step, so a resumed run draws the same.
pub fn adversarial_batch(
    model: &Model<f32>,
    images: Tensor<f32>,
    labels: &[usize],
    settings: &AdversarialTraining,
    loss: LossKind,
    seed: u64,
    step: u64,
) -> Result<Tensor<f32>, AdversarialError> {
    let n = labels.len();
    let clean = ((settings.clean_fraction * n as f64).round() as usize).min(n);
    if clean == n {
        return Ok(images);
    }
    let per = images.numel() / n.max(1);
    let mut shape = images.shape().to_vec();
    shape[0] = n - clean;
    let attacked = Tensor::from_vec(&shape, images.data()[clean * per..].to_vec())?;
    let config = AttackConfig {
        loss,
        seed: mix_seed(seed, SALT_ADVERSARIAL + step),
        pgd: PgdConfig {
            steps: settings.steps,
            step_size: settings.step_size,
            random_start: true,
            restarts: 1,
        },
        ..AttackConfig::default()
    };
    let method = match settings.attack {
        TrainingAttack::Pgd => Method::Pgd,
    };
    let adversarial = attack(
        model,
        method,
        &attacked,
        &labels[clean..],
        settings.epsilon,
        &config,
    )?;
    let mut data = images.data()[..clean * per].to_vec();
    data.extend_from_slice(adversarial.data());
    Ok(Tensor::from_vec(images.shape(), data)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::deep;

    fn settings(clean_fraction: f64) -> AdversarialTraining {
        AdversarialTraining {
            attack: TrainingAttack::Pgd,
            epsilon: 0.1,
            steps: 2,
            step_size: None,
            clean_fraction,
        }
    }

    #[test]
    fn the_clean_share_is_kept_and_the_rest_stays_in_the_ball() {
        let model = deep::<f32>([1, 28, 28], 10, 3).unwrap();
        let n = 8;
        let x = Tensor::from_fn(&[n, 1, 28, 28], |i| ((i * 31 % 97) as f32) / 96.0);
        let labels: Vec<usize> = (0..n).map(|i| i % 10).collect();
        let run = |share: f64, step: u64| {
            adversarial_batch(
                &model,
                x.clone(),
                &labels,
                &settings(share),
                LossKind::CrossEntropy,
                5,
                step,
            )
            .unwrap()
        };
        let half = run(0.25, 0);
        let per = 784;
        assert_eq!(
            &half.data()[..2 * per],
            &x.data()[..2 * per],
            "2 of 8 kept clean"
        );
        let moved = half.data()[2 * per..]
            .iter()
            .zip(&x.data()[2 * per..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            moved > 0.05 && moved <= 0.1 + 1e-6,
            "largest change {moved}"
        );
        assert!(half.data().iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(run(1.0, 0).data(), x.data(), "all clean");
        assert_eq!(run(0.25, 0).data(), half.data(), "same step, same batch");
        assert_ne!(
            run(0.25, 1).data(),
            half.data(),
            "another step, another random start"
        );
        let msg = AdversarialTraining {
            steps: 0,
            ..settings(0.0)
        }
        .validate()
        .unwrap_err();
        assert!(msg.contains("--steps"), "{msg}");
        let msg = AdversarialTraining {
            epsilon: -0.1,
            ..settings(0.0)
        }
        .validate()
        .unwrap_err();
        assert!(msg.contains("--epsilon") && msg.contains("-0.1"), "{msg}");
        let msg = settings(1.5).validate().unwrap_err();
        assert!(msg.contains("--clean-fraction"), "{msg}");
    }
}
