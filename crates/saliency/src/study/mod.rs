//! `saliency study`: runs the whole study and writes a report with its pictures.
//!
//! Each step saves its result as JSON under `OUT/steps/`; a later run skips finished steps, so an
//! interrupted study continues where it stopped (and, every step being seeded, gets the same
//! result). The report is built from those JSON results only.

mod common;
pub mod fashion;
pub mod figures;
pub mod flowers;
pub mod plan;
pub mod report;
mod report_build;
pub mod steps;
pub mod training;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::data::download::ensure_fashion_mnist;
use crate::data::fashion_mnist::load_fashion_mnist;
use crate::models::ModelKind;

pub use plan::{Plan, Profile};

/// Settings of one study run.
#[derive(Clone, Debug)]
pub struct StudyConfig {
    /// Output folder (report, figures, models, step results).
    pub out: PathBuf,
    /// How much to run.
    pub profile: Profile,
    /// Data folder (else $SALIENCY_DATA, ./data, /usr/share/datasets).
    pub data_dir: Option<PathBuf>,
    /// Seed of every model, split and control.
    pub seed: u64,
    /// Also train `deep` on the 17-class Oxford flowers.
    pub flowers17: bool,
    /// Allow downloading Fashion-MNIST when no copy is found.
    pub allow_download: bool,
    /// The command line, for the report.
    pub command: String,
}

/// Runs every section and writes `OUT/report.md` and `OUT/report.html`.
pub fn run_study(cfg: &StudyConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let plan = Plan::of(cfg.profile);
    eprintln!(
        "study, profile {} (expected wall time about {:.0} minutes on 2 cores), output {}",
        cfg.profile,
        plan.expected_minutes(),
        cfg.out.display()
    );
    let mut steps = steps::StepRunner::new(&cfg.out)?;
    let fm_dir = ensure_fashion_mnist(cfg.data_dir.as_deref(), cfg.allow_download)?;
    let (train, test) = load_fashion_mnist(&fm_dir)
        .with_context(|| format!("loading Fashion-MNIST from {}", fm_dir.display()))?;
    let fm_test = test.take(plan.test_images.max(16));
    let out = &cfg.out;
    let seed = cfg.seed;
    let deep = steps.run("fashion-deep", || {
        fashion::train_deep(out, &plan, seed, &train, &fm_test)
    })?;
    let alex = steps.run("fashion-alexnet", || {
        fashion::train_alexnet(out, &plan, seed, &train, &fm_test)
    })?;
    let attribution = steps.run("fashion-attribution", || {
        fashion::attribution(out, &plan, seed, &deep.0, &fm_test)
    })?;
    let adversarial = steps.run("fashion-adversarial", || {
        fashion::adversarial(
            out,
            &plan,
            seed,
            &deep.0,
            &fm_test,
            "fashion",
            plan.test_images,
            true,
        )
    })?;
    drop(train);

    let dd = cfg.data_dir.as_deref();
    let (ftrain, ftest) = flowers::load(dd, "flowers", None, false, seed)?;
    let medium = steps.run("flowers-medium", || {
        flowers::train_flowers(
            out,
            "flowers-medium",
            ModelKind::Medium,
            "flowers",
            flowers::epochs(&plan, ModelKind::Medium),
            seed,
            &ftrain,
            &ftest,
            Some(plan.flower_movie_every),
        )
    })?;
    let fdeep = steps.run("flowers-deep", || {
        flowers::train_flowers(
            out,
            "flowers-deep",
            ModelKind::Deep,
            "flowers",
            flowers::epochs(&plan, ModelKind::Deep),
            seed,
            &ftrain,
            &ftest,
            None,
        )
    })?;
    let fadv = steps.run("flowers-adversarial", || {
        fashion::adversarial(
            out,
            &plan,
            seed,
            &medium.0,
            &ftest,
            "flowers",
            plan.flower_test_images,
            false,
        )
    })?;
    drop((ftrain, ftest));
    let pair = steps.run("flowers-pair", || {
        let (tr, te) = flowers::load(dd, "flowers", Some(&flowers::PAIR), false, seed)?;
        flowers::train_flowers(
            out,
            "flowers-pair",
            ModelKind::Medium,
            "flowers",
            flowers::epochs(&plan, ModelKind::Medium),
            seed,
            &tr,
            &te,
            None,
        )
    })?;
    let gray = steps.run("flowers-gray", || {
        let (tr, te) = flowers::load(dd, "flowers", None, true, seed)?;
        flowers::train_flowers(
            out,
            "flowers-gray",
            ModelKind::Medium,
            "flowers",
            flowers::epochs(&plan, ModelKind::Medium),
            seed,
            &tr,
            &te,
            None,
        )
    })?;
    let f17 = if cfg.flowers17 {
        Some(steps.run("flowers17-deep", || {
            let (tr, te) = flowers::load(dd, "flowers17", None, false, seed)?;
            flowers::train_flowers(
                out,
                "flowers17-deep",
                ModelKind::Deep,
                "flowers17",
                flowers::epochs(&plan, ModelKind::Deep),
                seed,
                &tr,
                &te,
                None,
            )
        })?)
    } else {
        None
    };
    let results = report_build::Results {
        deep,
        alex,
        attribution,
        adversarial,
        medium,
        fdeep,
        fadv,
        pair,
        gray,
        f17,
    };
    let report = report_build::build(
        cfg,
        &plan,
        &results,
        &steps.timings,
        started.elapsed().as_secs_f64(),
    );
    report
        .write(out)
        .with_context(|| format!("writing the report into {}", out.display()))?;
    for p in report.linked_paths() {
        if !out.join(&p).exists() {
            anyhow::bail!("the report links to {p}, which was not written");
        }
    }
    eprintln!(
        "wrote {0}/report.md and {0}/report.html in {1:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
