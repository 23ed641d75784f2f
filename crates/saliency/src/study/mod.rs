//! `saliency study`: runs the whole study and writes a report with its pictures.
//!
//! Each step saves its result and its time as JSON under `OUT/steps/`; a later run with the same
//! key (`OUT/study.json`: profile, seed, data, --flowers17, version; see [`key`]) skips finished
//! steps, so an interrupted study continues where it stopped (and, every step being seeded, gets
//! the same result). A run with another key is refused unless `--overwrite`, which starts over.
//! The report is built from those JSON results only.

mod common;
pub mod comparison;
pub mod faithfulness;
pub mod fashion;
pub mod figures;
pub mod flowers;
pub mod key;
pub mod method_grid;
pub mod plan;
pub mod progress;
pub mod report;
mod report_build;
pub mod robust;
pub mod steps;
pub mod training;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::data::download::ensure_fashion_mnist;
use crate::data::fashion_mnist::load_fashion_mnist;
use crate::data::locate::{locate_named_set, Found, Origin};
use crate::data::{ensure_named_set, CacheBudget, ImageSource};
use crate::loss::LossKind;
use crate::models::ModelKind;

pub use plan::{Plan, Profile};

/// Settings of one study run.
#[derive(Clone, Debug)]
pub struct StudyConfig {
    /// Output folder (report, figures, models, step results).
    pub out: PathBuf,
    /// How much to run.
    pub profile: Profile,
    /// Data folder (else $SALIENCY_DATA, ./data, /usr/share/datasets, then the shipped sample).
    pub data_dir: Option<PathBuf>,
    /// Seed of every model, split and control.
    pub seed: u64,
    /// Also train `deep` on the 17-class Oxford flowers.
    pub flowers17: bool,
    /// Allow downloading the full Fashion-MNIST (paper profile only: the quick and tiny profiles
    /// run on what is on disk, the shipped sample included).
    pub allow_download: bool,
    /// Fail instead of skipping a section whose data is missing.
    pub strict: bool,
    /// The command line, for the report.
    pub command: String,
    /// Delete the results of an earlier study with another key (see [`key`]) instead of
    /// refusing to run.
    pub overwrite: bool,
}

/// The sections of the Fashion-MNIST half, as named in skips and in the Data table.
pub const FASHION_SECTIONS: &str = "Fashion-MNIST: training, attribution, adversarial examples";

/// ", on the shipped sample" when the data set `set` ran on the sample; `None` for a full copy
/// (or a set that did not run).
pub fn data_origin_note(r: &report_build::Results, set: &str) -> Option<String> {
    r.data
        .iter()
        .find(|d| d.set == set && d.origin == Origin::Sample)
        .map(|_| ", on the shipped sample".to_string())
}

/// Which data one part of the study ran on.
#[derive(Clone, Debug)]
pub struct DataUsed {
    /// The sections that used it.
    pub sections: String,
    /// The data set's name.
    pub set: String,
    /// Full copy or shipped sample.
    pub origin: Origin,
    /// Its folder.
    pub dir: PathBuf,
    /// Image counts.
    pub detail: String,
}

/// A part of the study that did not run, and why.
#[derive(Clone, Debug)]
pub struct Skipped {
    /// The sections left out.
    pub sections: String,
    /// Why, where the program looked and how to get the data.
    pub reason: String,
}

/// Runs every section whose data is available and writes `OUT/report.md` and
/// `OUT/report.html`; a section without data is skipped with its reason in the report and on
/// standard error (an error instead with `strict`).
pub fn run_study(cfg: &StudyConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let plan = Plan::of(cfg.profile);
    progress::line(format!(
        "study, profile {} (expected wall time about {:.0} minutes on 2 cores), output {}",
        cfg.profile,
        plan.expected_minutes() + robust::RobustPlan::of(cfg.profile).expected_minutes(),
        cfg.out.display()
    ));
    let mut data = Vec::new();
    let mut skipped = Vec::new();
    // Find the data before creating any output, so a strict run that cannot start leaves nothing.
    let fashion_data = find_fashion(cfg, &mut skipped)?;
    let flower_data = find_flowers(cfg, &mut skipped)?;
    // Held until the report is written: two studies into one folder would mix their steps.
    let _lock = crate::train::run_folder::RunLock::acquire(&cfg.out).map_err(anyhow::Error::msg)?;
    let mut data_key = Vec::new();
    for (set, found) in [("fashion-mnist", &fashion_data), ("flowers", &flower_data)] {
        if let Some(f) = found {
            data_key.push(data_key_of(set, f));
        }
    }
    if cfg.flowers17 {
        if let Ok(f) = locate_named_set(cfg.data_dir.as_deref(), "flowers17") {
            data_key.push(data_key_of("flowers17", &f));
        }
    }
    key::claim(&cfg.out, &key::StudyKey::new(cfg, data_key), cfg.overwrite)?;
    let mut steps = steps::StepRunner::new(&cfg.out)?;
    let out = &cfg.out;
    let seed = cfg.seed;
    let mut robust = robust::RobustResults::default();

    let fashion = match fashion_data {
        None => None,
        Some(found) => {
            let (train, test) = load_fashion_mnist(&found.dir)
                .with_context(|| format!("loading Fashion-MNIST from {}", found.dir.display()))?;
            data.push(DataUsed {
                sections: FASHION_SECTIONS.into(),
                set: "Fashion-MNIST".into(),
                origin: found.origin,
                dir: found.dir.clone(),
                detail: format!(
                    "{} training and {} test images (the runs use at most {} and {})",
                    train.len(),
                    test.len(),
                    plan.deep_train.max(plan.alexnet_train),
                    plan.test_images.max(16)
                ),
            });
            let fm_test = test.take(plan.test_images.max(16));
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
                    crate::loss::LossKind::CrossEntropy,
                )
            })?;
            let faithfulness = steps.run("fashion-faithfulness", || {
                faithfulness::faithfulness(out, &deep.0, &fm_test, cfg.profile, seed, "fashion")
            })?;
            robust.fashion = Some(robust::fashion_pair(
                out,
                cfg.profile,
                seed,
                &mut steps,
                &deep.0,
                &train,
                &fm_test,
            )?);
            Some(report_build::FashionResults {
                deep,
                alex,
                attribution,
                adversarial,
                faithfulness,
            })
        }
    };

    let flowers = match flower_data {
        None => None,
        Some(found) => {
            let fl = run_flowers(cfg, &plan, &mut steps, &found, &mut data, &mut skipped)?;
            robust.flowers = Some(robust::flowers_pair(
                out,
                cfg.profile,
                seed,
                &mut steps,
                &found,
                &fl.medium.0,
            )?);
            Some(fl)
        }
    };

    let results = report_build::Results {
        fashion,
        flowers,
        data,
        skipped,
        robust,
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
    // The comparison as data, from the same rows as the report's table.
    let (rows, _) = comparison::rows(cfg, &results);
    crate::atomic_file::write_atomic(
        &out.join("report.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "profile": cfg.profile.to_string(),
            "seed": cfg.seed,
            "simd": tensor::cpu::tier().name(),
            "comparison": rows,
            "robust_networks": robust::verdict::rows(&results.robust),
            "faithfulness": faithfulness::of_results(&results),
        }))?
        .as_bytes(),
    )
    .with_context(|| format!("writing {}/report.json", out.display()))?;
    for p in report.linked_paths() {
        if !out.join(&p).exists() {
            anyhow::bail!("the report links to {p}, which was not written");
        }
    }
    for s in &results.skipped {
        progress::line(format!("skipped {}: {}", s.sections, s.reason));
    }
    progress::line(format!(
        "wrote {0}/report.md, {0}/report.html and {0}/report.json in {1:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The key entry of a data set found: its folder made absolute, so the same data reached
/// through another working folder or a relative path gives the same key.
fn data_key_of(set: &str, found: &Found) -> key::DataKey {
    key::DataKey {
        set: set.into(),
        origin: found.origin,
        dir: std::fs::canonicalize(&found.dir).unwrap_or_else(|_| found.dir.clone()),
    }
}

/// Fashion-MNIST for this profile: any copy for quick and tiny (the shipped sample included),
/// the full set for paper (downloaded when allowed). `None`, with a skip, when there is none.
fn find_fashion(cfg: &StudyConfig, skipped: &mut Vec<Skipped>) -> anyhow::Result<Option<Found>> {
    let sections = FASHION_SECTIONS;
    let paper = cfg.profile == Profile::Paper;
    let found = ensure_fashion_mnist(cfg.data_dir.as_deref(), paper && cfg.allow_download);
    let reason = match found {
        Ok(f) if f.origin == Origin::Full || !paper => {
            if let Some(note) = &f.note {
                progress::line(format!("note: {note}"));
            }
            return Ok(Some(f));
        }
        Ok(f) => format!(
            "the paper profile trains on all 60,000 training images, and only the shipped \
             sample was found ({}); {}",
            f.dir.display(),
            crate::data::download::FASHION_MNIST_HINT
        ),
        Err(e) => e.to_string(),
    };
    skip(cfg, skipped, sections, reason)
}

/// The flower photos: any copy (the shipped sample included); the paper profile downloads the
/// full flower_photos first when allowed. `None`, with a skip, when there is none.
fn find_flowers(cfg: &StudyConfig, skipped: &mut Vec<Skipped>) -> anyhow::Result<Option<Found>> {
    let download = cfg.profile == Profile::Paper && cfg.allow_download;
    match ensure_named_set(cfg.data_dir.as_deref(), "flowers", download) {
        Ok(f) => {
            if let Some(note) = &f.note {
                progress::line(format!("note: {note}"));
            }
            Ok(Some(f))
        }
        Err(e) => skip(cfg, skipped, "Flowers", e.to_string()),
    }
}

/// Records a skipped section, or fails with `strict`.
fn skip<T>(
    cfg: &StudyConfig,
    skipped: &mut Vec<Skipped>,
    sections: &str,
    reason: String,
) -> anyhow::Result<Option<T>> {
    if cfg.strict {
        anyhow::bail!("--strict: the study cannot run {sections}: {reason}");
    }
    progress::line(format!("skipping {sections}: {reason}"));
    skipped.push(Skipped {
        sections: sections.into(),
        reason,
    });
    Ok(None)
}

/// The flower sections: medium and deep on 5 classes, the attack, the pair, gray, flowers17.
fn run_flowers(
    cfg: &StudyConfig,
    plan: &Plan,
    steps: &mut steps::StepRunner,
    found: &Found,
    data: &mut Vec<DataUsed>,
    skipped: &mut Vec<Skipped>,
) -> anyhow::Result<report_build::FlowerResults> {
    let out = &cfg.out;
    let seed = cfg.seed;
    // The folder found is passed on, so every flower run reads the same copy.
    let dd = Some(found.dir.as_path());
    // One budget for the flower sets' image caches: a quarter of the memory available now. Each
    // set gives its share back when dropped, before the next one is opened.
    let budget = CacheBudget::from_available_memory();
    let (ftrain, ftest) = flowers::open(dd, "flowers", None, false, seed, &budget)?;
    data.push(DataUsed {
        sections: "Flowers".into(),
        set: "TensorFlow flower_photos (5 classes)".into(),
        origin: found.origin,
        dir: found.dir.clone(),
        detail: format!(
            "{} photos: {} training, {} test (the study: the Kaggle Flowers Recognition set of the same 5 classes, about 4,300 photos; TensorFlow's full flower_photos has 3,670)",
            ftrain.count() + ftest.count(),
            ftrain.count(),
            ftest.count()
        ),
    });
    let medium = steps.run("flowers-medium", || {
        flowers::train_flowers(
            out,
            "flowers-medium",
            ModelKind::Medium,
            "flowers",
            flowers::epochs(plan, ModelKind::Medium),
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
            flowers::epochs(plan, ModelKind::Deep),
            seed,
            &ftrain,
            &ftest,
            None,
        )
    })?;
    // The study attacks a medium trained 40 epochs (its stills: 25); a profile whose epochs
    // agree attacks the stills' model itself.
    let attack_run = |steps: &mut steps::StepRunner, name: &str, loss: LossKind| {
        steps.run(name, || {
            flowers::train_attack_model(
                out,
                name,
                plan.flower_attack_epochs,
                seed,
                &ftrain,
                &ftest,
                loss,
            )
        })
    };
    let attacked = if plan.flower_attack_epochs == plan.flower_epochs {
        medium.clone()
    } else {
        attack_run(steps, "flowers-attack", LossKind::CrossEntropy)?
    };
    let fadv = steps.run("flowers-adversarial", || {
        fashion::adversarial(
            out,
            plan,
            seed,
            &attacked.0,
            &ftest,
            "flowers",
            plan.flower_test_images,
            false,
            LossKind::CrossEntropy,
        )
    })?;
    // The study's PyTorch flower figures came from a network trained with softmax applied twice:
    // the same attacks on such a model, with the gradient of that loss.
    let double = attack_run(
        steps,
        "flowers-attack-double-softmax",
        LossKind::DoubleSoftmax,
    )?;
    let fadv_double = steps.run("flowers-adversarial-double-softmax", || {
        fashion::adversarial(
            out,
            plan,
            seed,
            &double.0,
            &ftest,
            "flowers_double_softmax",
            plan.flower_test_images,
            false,
            LossKind::DoubleSoftmax,
        )
    })?;
    let color_stills = steps.run("flowers-stills-color", || {
        flowers::stills(out, &medium.0, &ftest, seed)
    })?;
    let faithfulness = steps.run("flowers-faithfulness", || {
        faithfulness::faithfulness(out, &fdeep.0, &ftest, cfg.profile, seed, "flowers")
    })?;
    drop((ftrain, ftest));
    let pair = steps.run("flowers-pair", || {
        let (tr, te) = flowers::open(dd, "flowers", Some(&flowers::PAIR), false, seed, &budget)?;
        flowers::train_flowers(
            out,
            "flowers-pair",
            ModelKind::Medium,
            "flowers",
            flowers::epochs(plan, ModelKind::Medium),
            seed,
            &tr,
            &te,
            None,
        )
    })?;
    let (gray, gray_stills) = {
        let (tr, te) = flowers::open(dd, "flowers", None, true, seed, &budget)?;
        let gray = steps.run("flowers-gray", || {
            flowers::train_flowers(
                out,
                "flowers-gray",
                ModelKind::Medium,
                "flowers",
                flowers::epochs(plan, ModelKind::Medium),
                seed,
                &tr,
                &te,
                Some(plan.flower_movie_every),
            )
        })?;
        let stills = steps.run("flowers-stills-gray", || {
            flowers::stills(out, &gray.0, &te, seed)
        })?;
        (gray, stills)
    };
    let f17 = if cfg.flowers17 {
        match locate_named_set(cfg.data_dir.as_deref(), "flowers17") {
            Ok(f17) => {
                let dd17 = Some(f17.dir.as_path());
                let r = steps.run("flowers17-deep", || {
                    let (tr, te) = flowers::open(dd17, "flowers17", None, false, seed, &budget)?;
                    flowers::train_flowers(
                        out,
                        "flowers17-deep",
                        ModelKind::Deep,
                        "flowers17",
                        flowers::epochs(plan, ModelKind::Deep),
                        seed,
                        &tr,
                        &te,
                        None,
                    )
                })?;
                data.push(DataUsed {
                    sections: "Flowers: flowers17".into(),
                    set: "Oxford 17 Category Flower Dataset".into(),
                    origin: f17.origin,
                    dir: f17.dir.clone(),
                    detail: format!(
                        "{} training, {} test photos",
                        r.0.train_images, r.0.test_images
                    ),
                });
                Some(r)
            }
            Err(e) => {
                skip::<()>(cfg, skipped, "Flowers: flowers17", e.to_string())?;
                None
            }
        }
    } else {
        None
    };
    Ok(report_build::FlowerResults {
        medium,
        fdeep,
        fadv,
        pair,
        gray,
        f17,
        stills: [color_stills, gray_stills].concat(),
        attacked: attacked.0,
        double: (double.0, fadv_double),
        faithfulness,
    })
}
