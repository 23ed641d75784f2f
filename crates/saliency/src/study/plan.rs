//! Study profiles: how much of the study each profile runs.

use std::fmt;
use std::str::FromStr;

/// How big a study run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Every section, on subsets and few epochs: about 2 minutes on 2 cores.
    Quick,
    /// The study's epochs and sizes.
    Paper,
    /// A few seconds per section, for tests of the pipeline itself.
    Tiny,
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "quick" => Ok(Profile::Quick),
            "paper" => Ok(Profile::Paper),
            "tiny" => Ok(Profile::Tiny),
            other => Err(format!(
                "unknown profile '{other}': expected quick or paper (or tiny, for tests)"
            )),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Quick => "quick",
            Profile::Paper => "paper",
            Profile::Tiny => "tiny",
        })
    }
}

/// Sizes and epochs of one profile.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Plan {
    /// Fashion-MNIST training images for `deep` (60,000 is all).
    pub deep_train: usize,
    /// Epochs of `deep`.
    pub deep_epochs: u64,
    /// One movie frame every this many minibatches.
    pub movie_every: u64,
    /// Fashion-MNIST training images for `alexnet`.
    pub alexnet_train: usize,
    /// Epochs of `alexnet`.
    pub alexnet_epochs: u64,
    /// Fashion-MNIST test images evaluated and attacked.
    pub test_images: usize,
    /// Steps of the iterated sign attack (the study: 200 of 0.001).
    pub iterative_steps: usize,
    /// Epochs of the flower models (5 classes, pair, gray).
    pub flower_epochs: u64,
    /// Epochs of `deep` on flowers.
    pub flower_deep_epochs: u64,
    /// Epochs of the flower model the attacks run on (the study: 40, its attribution stills 25).
    pub flower_attack_epochs: u64,
    /// Integrated-gradients steps.
    pub ig_steps: usize,
    /// Flower test images attacked (the whole split is 40).
    pub flower_test_images: usize,
    /// One flower movie frame every this many minibatches.
    pub flower_movie_every: u64,
}

/// Training images a second of the `deep` section on Fashion-MNIST, movie frames and
/// evaluation included (the quick profile on an Intel Xeon with AVX-512, 2 cores, build 53da63a:
/// 20,000 image-epochs in 6.4 s). The robust section's PGD steps cost about as much each.
pub(crate) const DEEP_IMAGES_PER_SECOND: f64 = 3100.0;
/// The same for `alexnet` (4,000 images in 5.8 s).
pub(crate) const ALEXNET_IMAGES_PER_SECOND: f64 = 690.0;
/// Training image-epochs a second over the flower sections, attacks, stills and faithfulness
/// included (4,480 in 56 s).
pub(crate) const FLOWER_IMAGES_PER_SECOND: f64 = 80.0;
/// Attacked image-steps a second in the Fashion-MNIST attack, attribution and faithfulness
/// sections (64,000 in 4.4 s).
pub(crate) const ATTACK_STEPS_PER_SECOND: f64 = 14_500.0;

impl Plan {
    /// The plan of `profile`.
    pub fn of(profile: Profile) -> Self {
        match profile {
            Profile::Paper => Plan {
                deep_train: 60_000,
                deep_epochs: 10,
                movie_every: 50,
                alexnet_train: 60_000,
                alexnet_epochs: 10,
                test_images: 10_000,
                iterative_steps: 200,
                flower_epochs: 25,
                flower_deep_epochs: 25,
                flower_attack_epochs: 40,
                ig_steps: 64,
                flower_test_images: usize::MAX,
                flower_movie_every: 1,
            },
            Profile::Quick => Plan {
                deep_train: 30_000,
                deep_epochs: 2,
                movie_every: 50,
                alexnet_train: 4_000,
                alexnet_epochs: 1,
                test_images: 2_000,
                iterative_steps: 20,
                flower_epochs: 5,
                flower_deep_epochs: 3,
                flower_attack_epochs: 5,
                ig_steps: 64,
                flower_test_images: usize::MAX,
                flower_movie_every: 1,
            },
            Profile::Tiny => Plan {
                deep_train: 320,
                deep_epochs: 1,
                movie_every: 10,
                alexnet_train: 40,
                alexnet_epochs: 1,
                test_images: 64,
                iterative_steps: 2,
                flower_epochs: 1,
                flower_deep_epochs: 1,
                flower_attack_epochs: 1,
                ig_steps: 8,
                flower_test_images: 8,
                flower_movie_every: 5,
            },
        }
    }

    /// Rough wall time on 2 cores, from the throughputs of the study's own sections (the
    /// `*_PER_SECOND` constants). It assumes the full training sets; on the shipped sample
    /// (10,000 Fashion-MNIST training images) the quick profile takes less: its estimate, with
    /// [`super::robust::RobustPlan::expected_minutes`], is about 2 minutes, and it took 90 s.
    pub fn expected_minutes(&self) -> f64 {
        let deep = (self.deep_train as f64 * self.deep_epochs as f64) / DEEP_IMAGES_PER_SECOND;
        let alex =
            (self.alexnet_train as f64 * self.alexnet_epochs as f64) / ALEXNET_IMAGES_PER_SECOND;
        // The attack model trains twice (proper loss and the study's double softmax) when its
        // epochs differ from the attribution model's, once (double softmax only) otherwise.
        let attack_runs = if self.flower_attack_epochs == self.flower_epochs {
            1.0
        } else {
            2.0
        };
        let flowers = 160.0
            * (3.0 * self.flower_epochs as f64
                + self.flower_deep_epochs as f64
                + attack_runs * self.flower_attack_epochs as f64)
            / FLOWER_IMAGES_PER_SECOND;
        let attacks = self.test_images as f64 * (12.0 + self.iterative_steps as f64)
            / ATTACK_STEPS_PER_SECOND;
        (deep + alex + flowers + attacks) / 60.0
    }
}
