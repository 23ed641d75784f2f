//! The "Robust networks" section: the study's standard `deep` on Fashion-MNIST and its flower
//! `medium` beside twins trained adversarially (PGD, Madry et al. 2018), compared on what joins the
//! study's two halves: robust accuracy curves, attribution maps of the same test images, the
//! feature-preservation measure and the randomization sanity check of both, and a verdict on the
//! "perceptually aligned gradients" finding (Tsipras et al. 2019; Santurkar et al. 2019) computed
//! from those numbers (see [`verdict`]).
//!
//! The standard models are the ones the study already trains; only the robust twins are new.

mod figures;
mod measure;
pub mod verdict;

use std::cell::OnceCell;
use std::path::Path;

use crate::adversarial::{EdgeProbeMeans, RobustPoint};
use crate::data::locate::Found;
use crate::data::{CacheBudget, Dataset, Images, Prefix};
use crate::loss::LossKind;
use crate::models::ModelKind;
use crate::train::{AdversarialTraining, TrainConfig, TrainingAttack};

use super::plan::Profile;
use super::steps::StepRunner;
use super::training::{train_model, TrainSummary};

pub use measure::compare;

/// The section's title in the report.
pub const TITLE: &str = "Robust networks";

/// How one standard/robust pair is trained and compared in a profile.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairPlan {
    /// The L-infinity budget of training and of the robust accuracy the verdict reads.
    pub epsilon: f64,
    /// Training images of the robust model (at most; the standard model's own count otherwise).
    pub train_images: usize,
    /// Epochs of the robust model.
    pub epochs: u64,
    /// PGD steps per training minibatch ("PGD-k training").
    pub train_steps: usize,
    /// Share of each minibatch kept clean (0.5: `deep` does not leave its constant start on pure
    /// PGD batches, docs/results.md).
    pub clean_fraction: f64,
    /// PGD steps of the evaluation ("PGD-k" of the robust accuracy curve).
    pub eval_steps: usize,
    /// Test images the robust accuracy curve is taken over (at most).
    pub eval_images: usize,
    /// Budgets of the curve (0 is clean accuracy).
    pub epsilons: Vec<f64>,
    /// Test images drawn side by side in the attribution figures.
    pub map_images: usize,
    /// Test images the feature-preservation readings are averaged over (at most).
    pub probe_images: usize,
    /// Integrated-gradients steps.
    pub ig_steps: usize,
    /// SmoothGrad's noisy copies per image.
    pub smoothgrad_samples: usize,
}

/// The plans of both pairs in one profile.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RobustPlan {
    /// `deep` on Fashion-MNIST.
    pub fashion: PairPlan,
    /// `medium` on the 5-class flowers.
    pub flowers: PairPlan,
}

/// Flowers are photos: the budget of Tsipras et al.'s CIFAR-10 models, 8/255, not Fashion-MNIST's
/// 0.1 (a tenth of the range changes a photo visibly).
pub const FLOWER_EPSILON: f64 = 8.0 / 255.0;

impl RobustPlan {
    /// Rough minutes this section adds on 2 cores, at the throughputs of
    /// [`super::Plan::expected_minutes`] (`deep` and flower training images a second, one PGD
    /// step about one training step; a curve point costs its PGD steps plus one). The
    /// flowers count 160 training and 40 test photos, the shipped sample's split.
    pub fn expected_minutes(&self) -> f64 {
        let pair = |p: &PairPlan, train_cap: usize, test_cap: usize, rate: f64| {
            let train = p.train_images.min(train_cap) as f64 * p.epochs as f64;
            let training = train * (1.0 + p.train_steps as f64) / rate;
            let points = p.epsilons.len() as f64;
            let curves =
                2.0 * p.eval_images.min(test_cap) as f64 * points * (2.0 + p.eval_steps as f64)
                    / (2.0 * rate);
            training + curves
        };
        use super::plan::{DEEP_IMAGES_PER_SECOND, FLOWER_IMAGES_PER_SECOND};
        (pair(&self.fashion, 60_000, 10_000, DEEP_IMAGES_PER_SECOND)
            + pair(&self.flowers, 160, 40, FLOWER_IMAGES_PER_SECOND))
            / 60.0
    }
    /// The plan of `profile`. Paper: the settings of docs/results.md's robust `deep` (eps 0.1,
    /// PGD-7 training on all 60,000 images for 10 epochs with half of each minibatch clean,
    /// PGD-20 evaluation on the whole test set); quick: PGD-3 training for one epoch on 15,000
    /// images and PGD-2 for 3 epochs on the flowers, PGD-5 and PGD-3 evaluation; tiny: enough to
    /// run every step.
    pub fn of(profile: Profile) -> Self {
        let flower_eps = vec![0.0, 2.0 / 255.0, 4.0 / 255.0, FLOWER_EPSILON, 16.0 / 255.0];
        match profile {
            Profile::Paper => RobustPlan {
                fashion: PairPlan {
                    epsilon: 0.1,
                    train_images: 60_000,
                    epochs: 10,
                    train_steps: 7,
                    clean_fraction: 0.5,
                    eval_steps: 20,
                    eval_images: 10_000,
                    epsilons: vec![0.0, 0.05, 0.1, 0.2],
                    map_images: 8,
                    probe_images: 500,
                    ig_steps: 64,
                    smoothgrad_samples: 50,
                },
                flowers: PairPlan {
                    epsilon: FLOWER_EPSILON,
                    train_images: usize::MAX,
                    epochs: 25,
                    train_steps: 7,
                    clean_fraction: 0.5,
                    eval_steps: 20,
                    eval_images: usize::MAX,
                    epsilons: flower_eps,
                    map_images: 6,
                    probe_images: usize::MAX,
                    ig_steps: 64,
                    smoothgrad_samples: 50,
                },
            },
            Profile::Quick => RobustPlan {
                fashion: PairPlan {
                    epsilon: 0.1,
                    // Half the standard run's images: one epoch on all 30,000 stayed at chance
                    // (10 %, the constant-output start of docs/results.md), on these it trains.
                    train_images: 15_000,
                    epochs: 1,
                    train_steps: 3,
                    clean_fraction: 0.5,
                    eval_steps: 5,
                    eval_images: 500,
                    epsilons: vec![0.0, 0.05, 0.1, 0.2],
                    map_images: 8,
                    probe_images: 200,
                    ig_steps: 32,
                    smoothgrad_samples: 10,
                },
                flowers: PairPlan {
                    epsilon: FLOWER_EPSILON,
                    train_images: usize::MAX,
                    epochs: 3,
                    train_steps: 2,
                    clean_fraction: 0.5,
                    eval_steps: 3,
                    eval_images: usize::MAX,
                    epsilons: vec![0.0, FLOWER_EPSILON],
                    map_images: 4,
                    probe_images: usize::MAX,
                    ig_steps: 16,
                    smoothgrad_samples: 4,
                },
            },
            Profile::Tiny => RobustPlan {
                fashion: PairPlan {
                    epsilon: 0.1,
                    train_images: 320,
                    epochs: 1,
                    train_steps: 1,
                    clean_fraction: 0.5,
                    eval_steps: 2,
                    eval_images: 32,
                    epsilons: vec![0.0, 0.1],
                    map_images: 4,
                    probe_images: 32,
                    ig_steps: 4,
                    smoothgrad_samples: 2,
                },
                flowers: PairPlan {
                    epsilon: FLOWER_EPSILON,
                    train_images: 16,
                    epochs: 1,
                    train_steps: 1,
                    clean_fraction: 0.5,
                    eval_steps: 1,
                    eval_images: 4,
                    epsilons: vec![0.0, FLOWER_EPSILON],
                    map_images: 2,
                    probe_images: 4,
                    ig_steps: 2,
                    smoothgrad_samples: 1,
                },
            },
        }
    }
}

/// The feature-preservation readings of the loss gradient dJ/da (the study's measure) for the
/// standard model, the robust model and the same architecture untrained.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GradientReadings {
    /// The standard model.
    pub standard: EdgeProbeMeans,
    /// The robust model.
    pub robust: EdgeProbeMeans,
    /// Fresh weights (seeded), the study's reference.
    pub untrained: EdgeProbeMeans,
}

/// One attribution method's maps, read as the loss gradient is: how they follow the edges.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MapReadings {
    /// The method, as captioned.
    pub method: String,
    /// Its maps of the standard model.
    pub standard: EdgeProbeMeans,
    /// Its maps of the robust model.
    pub robust: EdgeProbeMeans,
}

/// One step of the randomization sanity check for both models.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SanityRow {
    /// Layers re-drawn from the top down to this one (`none`: the model against itself).
    pub layer: String,
    /// Spearman rank correlation of the standard model's gradient map with its randomized one's
    /// (NaN, written `null`, where a map is constant).
    #[serde(deserialize_with = "crate::adversarial::null_as_nan")]
    pub standard: f64,
    /// The same for the robust model.
    #[serde(deserialize_with = "crate::adversarial::null_as_nan")]
    pub robust: f64,
}

/// Everything the report shows of one standard/robust pair.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PairResults {
    /// The data set, as the report names it.
    pub data: String,
    /// How the pair was trained and compared.
    pub plan: PairPlan,
    /// The study's standard model.
    pub standard: TrainSummary,
    /// Its adversarially trained twin.
    pub robust: TrainSummary,
    /// PGD and FGSM accuracy per eps of the standard model.
    pub standard_curve: Vec<RobustPoint>,
    /// The same of the robust model.
    pub robust_curve: Vec<RobustPoint>,
    /// The curves as an SVG plot (relative path).
    pub plot: String,
    /// Both curves as JSON (relative path).
    pub curves_json: String,
    /// (caption, relative path) of the side-by-side pictures.
    pub figures: Vec<(String, String)>,
    /// The loss gradient's feature-preservation readings.
    pub gradient: GradientReadings,
    /// Each attribution method's edge readings on the pictured images.
    pub maps: Vec<MapReadings>,
    /// The randomization sanity check of the gradient map, both models.
    pub sanity: Vec<SanityRow>,
}

/// The section's results: each pair that ran.
#[derive(Clone, Debug, Default)]
pub struct RobustResults {
    /// `deep` on Fashion-MNIST, when its data was found.
    pub fashion: Option<PairResults>,
    /// `medium` on flowers, when its data was found.
    pub flowers: Option<PairResults>,
}

/// The adversarial-training settings of `plan`.
fn training(plan: &PairPlan) -> AdversarialTraining {
    AdversarialTraining {
        attack: TrainingAttack::Pgd,
        epsilon: plan.epsilon,
        steps: plan.train_steps,
        step_size: None,
        clean_fraction: plan.clean_fraction,
    }
}

/// Trains the robust `deep` on Fashion-MNIST (the standard run's settings with PGD training) and
/// compares it with the standard `deep` the study trained (`standard`) on `test`.
pub fn fashion_pair(
    out: &Path,
    profile: Profile,
    seed: u64,
    steps: &mut StepRunner,
    standard: &TrainSummary,
    train: &Dataset,
    test: &Dataset,
) -> anyhow::Result<PairResults> {
    let plan = RobustPlan::of(profile).fashion;
    let robust = steps.run("robust-fashion-deep", || {
        let mut cfg = TrainConfig::study(ModelKind::Deep);
        cfg.epochs = plan.epochs;
        cfg.seed = seed;
        cfg.adversarial = Some(training(&plan));
        train_model(
            out,
            "robust-fashion-deep",
            cfg,
            &train.take(plan.train_images),
            test,
            &mut [],
        )
    })?;
    steps.run("robust-fashion", || {
        compare(
            out,
            "fashion",
            "Fashion-MNIST",
            &plan,
            seed,
            standard,
            &robust,
            test,
            LossKind::CrossEntropy,
        )
    })
}

/// Trains the robust flower `medium` (the standard flower run's settings with PGD training) and
/// compares it with the study's `flowers-medium` (`standard`). The photos are read from `found`
/// with the study's split, only when a step needs them.
pub fn flowers_pair(
    out: &Path,
    profile: Profile,
    seed: u64,
    steps: &mut StepRunner,
    found: &Found,
    standard: &TrainSummary,
) -> anyhow::Result<PairResults> {
    let plan = RobustPlan::of(profile).flowers;
    let photos: OnceCell<(Images, Images)> = OnceCell::new();
    let load = || -> anyhow::Result<&(Images, Images)> {
        if photos.get().is_none() {
            let budget = CacheBudget::from_available_memory();
            let split =
                super::flowers::open(Some(&found.dir), "flowers", None, false, seed, &budget)?;
            // Set only here, once: the cell was empty just above.
            let _ = photos.set(split);
        }
        Ok(photos.get().expect("set above"))
    };
    let robust = steps.run("robust-flowers-medium", || {
        let (train, test) = load()?;
        let mut cfg = super::flowers::config(ModelKind::Medium, "flowers", plan.epochs, seed);
        cfg.adversarial = Some(training(&plan));
        train_model(
            out,
            "robust-flowers-medium",
            cfg,
            &Prefix::new(train, plan.train_images),
            test,
            &mut [],
        )
    })?;
    steps.run("robust-flowers", || {
        let (_, test) = load()?;
        compare(
            out,
            "flowers",
            "flowers (5 classes)",
            &plan,
            seed,
            standard,
            &robust,
            test,
            LossKind::CrossEntropy,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_is_valid_training_and_the_paper_plan_is_the_documented_one() {
        for profile in [Profile::Paper, Profile::Quick, Profile::Tiny] {
            let plan = RobustPlan::of(profile);
            for p in [&plan.fashion, &plan.flowers] {
                training(p).validate().unwrap();
                assert!(p.epsilons.contains(&0.0), "{profile}: clean accuracy");
                assert!(p.epsilons.contains(&p.epsilon), "{profile}: the budget");
                assert!(p.eval_steps >= 1 && p.map_images >= 1 && p.probe_images >= 1);
            }
        }
        // docs/results.md: eps 0.1, PGD-7 with half clean, 10 epochs on 60,000, PGD-20.
        let paper = RobustPlan::of(Profile::Paper).fashion;
        assert_eq!(
            (paper.epsilon, paper.train_steps, paper.clean_fraction),
            (0.1, 7, 0.5)
        );
        assert_eq!(
            (paper.train_images, paper.epochs, paper.eval_steps),
            (60_000, 10, 20)
        );
    }
}
