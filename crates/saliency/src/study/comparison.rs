//! The study-vs-saliency comparison as data: one row per claim of the study, with our figure, the
//! settings it came from and a verdict. `report.json` holds these rows and the report's table is
//! drawn from the same rows, so a script can check what the report says.

use serde::Serialize;

use super::data_origin_note;
use super::fashion::{ig_error_summary, AdversarialResults};
use super::report_build::{FashionResults, FlowerResults, Results};
use super::training::TrainSummary;
use super::{Profile, StudyConfig};
use crate::adversarial::{AttackStats, Method};
use crate::models::ModelKind;

/// How our figure compares with the study's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Our figure agrees with the study's.
    Reproduced,
    /// It agrees once a stated difference of setting is taken into account.
    ReproducedWithAStatedDifference,
    /// It does not agree; `reason` says what we know of why.
    Differs,
    /// This run did not compute it (`reason` says why).
    NotRun,
}

/// One claim of the study beside ours.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComparisonRow {
    /// The claim, in the study's words where it has them.
    pub claim: String,
    /// The study's figure or statement.
    pub study: String,
    /// Ours.
    pub ours: String,
    /// Where ours comes from: model, data, epochs, images.
    pub settings: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, for every verdict but a plain reproduction.
    pub reason: String,
}

impl ComparisonRow {
    /// The verdict and its reason as one table cell.
    pub fn verdict_text(&self) -> String {
        let v = match self.verdict {
            Verdict::Reproduced => "reproduced",
            Verdict::ReproducedWithAStatedDifference => "reproduced with a stated difference",
            Verdict::Differs => "differs",
            Verdict::NotRun => "not run",
        };
        if self.reason.is_empty() {
            v.into()
        } else {
            format!("{v}: {}", self.reason)
        }
    }
}

fn pct(v: f64) -> String {
    format!("{:.1} %", 100.0 * v)
}

fn setting(s: &TrainSummary) -> String {
    format!(
        "{} on {}: {} training images, {} epochs, {} test images (models/{})",
        s.model, s.dataset, s.train_images, s.epochs, s.test_images, s.name
    )
}

fn find(stats: &[AttackStats], m: Method, eps: f64) -> Option<&AttackStats> {
    stats
        .iter()
        .find(|s| s.method == m.name() && (s.epsilon - eps).abs() < 1e-12)
}

/// A verdict for a figure that meets the study's when `ok`; a miss on a reduced run is put down
/// to the run's size, stated in `why_smaller`.
fn judged(ok: bool, full_size: bool, why_smaller: &str) -> (Verdict, String) {
    match (ok, full_size) {
        (true, _) => (Verdict::Reproduced, String::new()),
        (false, true) => (Verdict::Differs, String::new()),
        (false, false) => (Verdict::Differs, why_smaller.to_string()),
    }
}

/// The rows for every claim, and the figures of ours the study does not report (what,
/// ours, setting).
pub fn rows(cfg: &StudyConfig, r: &Results) -> (Vec<ComparisonRow>, Vec<Vec<String>>) {
    let paper = cfg.profile == Profile::Paper;
    let mut rows = Vec::new();
    let mut extras = Vec::new();
    let skipped = |sections: &str| {
        r.skipped
            .iter()
            .find(|s| s.sections == sections)
            .map(|s| s.reason.lines().next().unwrap_or("").to_string())
            .unwrap_or_else(|| "its data was not found".into())
    };
    let not_run = |claim: &str, study: &str, why: String| ComparisonRow {
        claim: claim.into(),
        study: study.into(),
        ours: "not run".into(),
        settings: String::new(),
        verdict: Verdict::NotRun,
        reason: why,
    };
    let fashion_full = paper && data_origin_note(r, "Fashion-MNIST").is_none();
    let small = |what: &str| {
        format!(
            "profile {}{}; {what}",
            cfg.profile,
            data_origin_note(r, "Fashion-MNIST").unwrap_or_default()
        )
    };
    match &r.fashion {
        Some(f) => fashion_rows(&mut rows, &mut extras, f, fashion_full, &small),
        None => {
            let why = skipped(super::FASHION_SECTIONS);
            rows.push(not_run(
                "deep, Fashion-MNIST test accuracy",
                "> 91 %",
                why.clone(),
            ));
            rows.push(not_run(
                "alexnet, Fashion-MNIST test accuracy",
                "~72 %",
                why,
            ));
        }
    }
    let flowers_full = paper;
    match &r.flowers {
        Some(fl) => flower_rows(&mut rows, fl, flowers_full, cfg.profile),
        None => rows.push(not_run("flowers, 5 classes", "61 %", skipped("Flowers"))),
    }
    let kinds_count = |kind: ModelKind| {
        kind.build::<f32>([1, 28, 28], 10, 0)
            .map(|m| m.total_count())
            .unwrap_or(0)
    };
    let (deep_n, alex_n) = (
        kinds_count(ModelKind::Deep),
        kinds_count(ModelKind::Alexnet),
    );
    let counts_ok = deep_n == 179_728 && alex_n == 10_041_418;
    rows.push(ComparisonRow {
        claim: "parameter counts on Fashion-MNIST (deep, alexnet)".into(),
        study: "179,728 and 10,041,418".into(),
        ours: format!("{} and {}", thousands(deep_n), thousands(alex_n)),
        settings: "Keras's count: trainable parameters plus batch-norm running statistics".into(),
        verdict: if counts_ok {
            Verdict::Reproduced
        } else {
            Verdict::Differs
        },
        reason: String::new(),
    });
    untrained_row(&mut rows, r);
    random_row(&mut rows, r);
    normalized_row(&mut rows, r);
    sign_image_row(&mut rows, r);
    feature_row(&mut rows, r);
    extras.extend(super::faithfulness::extras(
        &super::faithfulness::of_results(r),
    ));
    (rows, extras)
}

fn fashion_rows(
    rows: &mut Vec<ComparisonRow>,
    extras: &mut Vec<Vec<String>>,
    f: &FashionResults,
    full: bool,
    small: &dyn Fn(&str) -> String,
) {
    let deep = f.deep.0.test_accuracy;
    let (verdict, reason) = judged(
        deep > 0.91,
        full,
        &small("the study trains 10 epochs on all 60,000 images"),
    );
    rows.push(ComparisonRow {
        claim: "deep, Fashion-MNIST test accuracy".into(),
        study: "> 91 %".into(),
        ours: pct(deep),
        settings: setting(&f.deep.0),
        verdict,
        reason,
    });
    let alex = f.alex.test_accuracy;
    let (verdict, reason) = judged(
        (alex - 0.72).abs() <= 0.05,
        full,
        &small("the study trains 10 epochs on all 60,000 images"),
    );
    rows.push(ComparisonRow {
        claim: "alexnet (SGD, decay 0.3/step, L2), Fashion-MNIST test accuracy".into(),
        study: "~72 %".into(),
        ours: pct(alex),
        settings: setting(&f.alex),
        verdict,
        reason,
    });
    if let Some(s) = find(&f.adversarial.stats, Method::Fgsm, 0.01) {
        extras.push(vec![
            "Fashion-MNIST, fast gradient sign at eps 0.01".into(),
            format!("{} flip (n = {})", pct(s.flipped_fraction), s.n),
            setting(&f.deep.0),
        ]);
    }
    let (median, worst) = ig_error_summary(&f.attribution);
    extras.push(vec![
        format!(
            "integrated gradients completeness, {} steps",
            f.attribution.ig_steps
        ),
        format!(
            "median {}, worst {} of |F(a) - F(0)|",
            pct(median),
            pct(worst)
        ),
        "trained deep, first 16 test images, F = top probability".into(),
    ]);
}

fn flower_rows(rows: &mut Vec<ComparisonRow>, fl: &FlowerResults, full: bool, profile: Profile) {
    let fewer = format!(
        "{} photos against the study's ~4,300 (Kaggle Flowers Recognition), profile {profile}",
        fl.medium.0.train_images + fl.medium.0.test_images
    );
    let best = fl.medium.0.test_accuracy.max(fl.fdeep.0.test_accuracy);
    let (verdict, reason) = judged(best >= 0.56, full, &fewer);
    rows.push(ComparisonRow {
        claim: "flowers, 5 classes, test accuracy".into(),
        study: "61 %".into(),
        ours: format!(
            "medium {}, deep {}",
            pct(fl.medium.0.test_accuracy),
            pct(fl.fdeep.0.test_accuracy)
        ),
        settings: format!("{}; {}", setting(&fl.medium.0), setting(&fl.fdeep.0)),
        verdict,
        reason,
    });
    let pair = fl.pair.0.test_accuracy;
    let (verdict, reason) = judged(pair >= 0.86, full, &fewer);
    rows.push(ComparisonRow {
        claim: format!(
            "flowers, a binary pair ({})",
            super::flowers::PAIR.join(" vs ")
        ),
        study: "up to 91 %".into(),
        ours: pct(pair),
        settings: setting(&fl.pair.0),
        verdict,
        reason,
    });
    let (gray, color) = (fl.gray.0.test_accuracy, fl.medium.0.test_accuracy);
    let (verdict, reason) = judged(color > gray, full, &fewer);
    rows.push(ComparisonRow {
        claim: "flowers, gray vs color (medium)".into(),
        study: "color does better".into(),
        ours: format!("gray {}, color {}", pct(gray), pct(color)),
        settings: setting(&fl.gray.0),
        verdict,
        reason,
    });
    for (run, adv, how) in [
        (&fl.attacked, &fl.fadv, "proper loss"),
        (&fl.double.0, &fl.double.1, "the study's double softmax"),
    ] {
        let Some(s) = find(&adv.stats, Method::Fgsm, 0.01) else {
            continue;
        };
        let kept = 1.0 - s.flipped_fraction;
        let (verdict, reason) = judged(
            (0.2..=0.45).contains(&kept),
            full && run.epochs >= 40,
            &format!(
                "the study's model trained 40 epochs on ~4,300 photos, ours {} epochs on {} photos; {} test images",
                run.epochs,
                run.train_images + run.test_images,
                s.n
            ),
        );
        rows.push(ComparisonRow {
            claim: format!(
                "flowers, fast gradient sign at eps 0.01: share that does not flip ({how})"
            ),
            study: "about a third (after 40 epochs)".into(),
            ours: format!("{} do not flip (n = {})", pct(kept), s.n),
            settings: format!(
                "{} trained {} epochs with {how} (models/{})",
                run.model, run.epochs, run.name
            ),
            verdict,
            reason,
        });
    }
}

/// The untrained network's output barely moves under the sign attack at eps 0.01.
fn untrained_row(rows: &mut Vec<ComparisonRow>, r: &Results) {
    let changes = attacked(r);
    let cells: Vec<(String, bool)> = changes
        .iter()
        .filter_map(|(name, a)| {
            let (t, u) = a.output_change.as_ref()?;
            Some((
                format!(
                    "{name}: untrained {} flip, mean |delta p| {:.4}; trained {} flip, mean |delta p| {:.4} (n = {})",
                    pct(u.flipped_fraction),
                    u.mean_abs_delta_p,
                    pct(t.flipped_fraction),
                    t.mean_abs_delta_p,
                    u.n
                ),
                u.mean_abs_delta_p < 0.01 && u.mean_abs_delta_p <= t.mean_abs_delta_p,
            ))
        })
        .collect();
    let (verdict, ours) = if cells.is_empty() {
        (Verdict::NotRun, "not run".to_string())
    } else if cells.iter().all(|c| c.1) {
        (Verdict::Reproduced, join(&cells))
    } else {
        (Verdict::Differs, join(&cells))
    };
    rows.push(ComparisonRow {
        claim: "sign attack at eps 0.01 on an untrained network".into(),
        study: "the output barely changes".into(),
        ours,
        settings: "delta p: change of the probability of the class predicted before the attack"
            .into(),
        verdict,
        reason: String::new(),
    });
}

/// The attack sections that ran, by data set name.
fn attacked(r: &Results) -> Vec<(&'static str, &AdversarialResults)> {
    [
        ("Fashion-MNIST", r.fashion.as_ref().map(|f| &f.adversarial)),
        ("flowers", r.flowers.as_ref().map(|f| &f.fadv)),
    ]
    .into_iter()
    .filter_map(|(n, a)| a.map(|a| (n, a)))
    .collect()
}

/// Reproduced when every cell holds, differs when one does not, not run without cells.
fn verdict_of(cells: &[(String, bool)]) -> Verdict {
    if cells.is_empty() {
        Verdict::NotRun
    } else if cells.iter().all(|c| c.1) {
        Verdict::Reproduced
    } else {
        Verdict::Differs
    }
}

fn ours_of(cells: &[(String, bool)]) -> String {
    if cells.is_empty() {
        "not run".into()
    } else {
        join(cells)
    }
}

/// Random noise rarely flips a prediction: the study's non-negative a + eps n / max(n) and the
/// zero-mean sign noise, each beside the sign attack at the same eps (the same largest change
/// of a pixel).
fn random_row(rows: &mut Vec<ComparisonRow>, r: &Results) {
    let at = |eps: f64| -> Vec<(String, bool)> {
        attacked(r)
            .into_iter()
            .filter_map(|(name, a)| {
                let sign = find(&a.stats, Method::Fgsm, eps)?;
                let noise = find(&a.stats, Method::RandomSign, eps);
                let uniform = find(&a.stats, Method::Random, eps);
                let mut text = format!(
                    "{name}, eps {eps}: sign attack {}",
                    pct(sign.flipped_fraction)
                );
                if let Some(n) = noise {
                    text += &format!(", random sign noise {}", pct(n.flipped_fraction));
                }
                if let Some(u) = uniform {
                    text += &format!(", the study's noise {}", pct(u.flipped_fraction));
                }
                text += &format!(" flip (n = {})", sign.n);
                // "Rarely": under a tenth, and well under the attack of the same size.
                let rare = |s: &AttackStats| {
                    s.flipped_fraction < 0.1 && s.flipped_fraction <= 0.5 * sign.flipped_fraction
                };
                Some((text, noise.is_none_or(rare) && uniform.is_none_or(rare)))
            })
            .collect()
    };
    let (small, large) = (at(0.01), at(0.1));
    // The study's claim is about noise of the attack's size (eps 0.01); at its control's 0.1
    // the non-negative noise is a brightness shift as large as ten sign attacks.
    let (verdict, reason) = match (verdict_of(&small), verdict_of(&large)) {
        (Verdict::Reproduced, Verdict::Reproduced) => (Verdict::Reproduced, String::new()),
        (Verdict::Reproduced, _) => (
            Verdict::ReproducedWithAStatedDifference,
            "at the sign attack's eps 0.01 both noises rarely flip; at eps 0.1 they flip more, the study's non-negative noise most: it brightens every pixel by 0.05 on average, a shift of the whole image (on Fashion-MNIST it lifts the black background), not a random direction".into(),
        ),
        (v, _) => (v, String::new()),
    };
    let cells = [small, large].concat();
    rows.push(ComparisonRow {
        claim: "random noise of the attack's size rarely flips a prediction".into(),
        study: "rarely changes the output".into(),
        ours: ours_of(&cells),
        settings: "the same trained models; random sign noise: eps * (+-1) per pixel, zero mean, the sign attack's size; the study's noise: eps * n / max(n), n ~ U[0, 1), which only brightens (mean eps/2 per pixel, lifting a black background); 'rarely' read as under 10 % and under half the sign attack's rate at that eps".into(),
        verdict,
        reason,
    });
}

/// The normalized gradient a + eps g / max(g) is as good as or better than the sign attack, each
/// at the study's eps (0.15 and 0.01).
fn normalized_row(rows: &mut Vec<ComparisonRow>, r: &Results) {
    let cells: Vec<(String, bool)> = attacked(r)
        .into_iter()
        .filter_map(|(name, a)| {
            let sign = find(&a.stats, Method::Fgsm, 0.01)?;
            let norm = find(&a.stats, Method::NormalizedGradient, 0.15)?;
            Some((
                format!(
                    "{name}: normalized gradient at eps 0.15 {} flip, sign attack at eps 0.01 {} (n = {})",
                    pct(norm.flipped_fraction),
                    pct(sign.flipped_fraction),
                    sign.n
                ),
                norm.flipped_fraction >= sign.flipped_fraction,
            ))
        })
        .collect();
    rows.push(ComparisonRow {
        claim: "the normalized gradient a + eps g / max(g) is as good as or better than the sign attack".into(),
        study: "as good as or better".into(),
        ours: ours_of(&cells),
        settings: "each at the study's eps: 0.15 for the normalized gradient (the largest pixel change is 0.15, most pixels move far less), 0.01 for the sign attack (every pixel moves 0.01); 'as good' read as a flip rate at least the sign attack's".into(),
        verdict: verdict_of(&cells),
        reason: String::new(),
    });
}

/// The sign image eps * sign(g) alone is classified, and confidently.
fn sign_image_row(rows: &mut Vec<ComparisonRow>, r: &Results) {
    let cells: Vec<(String, bool)> = attacked(r)
        .into_iter()
        .filter(|(_, a)| !a.sign_image.is_empty())
        .map(|(name, a)| {
            let n = a.sign_image.len();
            let mean = a.sign_image.iter().map(|s| s.2 as f64).sum::<f64>() / n as f64;
            let mut classes: Vec<&str> = a.sign_image.iter().map(|s| s.1.as_str()).collect();
            classes.sort_unstable();
            classes.dedup();
            let own = a.sign_image.iter().filter(|s| s.0 == s.1).count();
            let one = if classes.len() == 1 {
                " (one class for every image: the model's answer to a near-black picture)"
            } else {
                ""
            };
            (
                format!(
                    "{name}: mean confidence {}, classified as {}{one}; {own} of {n} as their image's class",
                    pct(mean),
                    classes.join(", ")
                ),
                mean >= 0.5,
            )
        })
        .collect();
    rows.push(ComparisonRow {
        claim: "the sign image eps * sign(g) classified on its own".into(),
        study: "classified, with confidence".into(),
        ours: ours_of(&cells),
        settings: "eps 0.01, the first 6 test images; 'confidently' read as a mean top probability of at least 50 %".into(),
        verdict: verdict_of(&cells),
        reason: if verdict_of(&cells) == Verdict::Differs {
            "the image eps * sign(g) is +-0.01 around black: a weakly trained model (few epochs, few photos) spreads its probability over the classes for it".into()
        } else {
            String::new()
        },
    });
}

fn join(cells: &[(String, bool)]) -> String {
    cells
        .iter()
        .map(|c| c.0.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `n` with thousands separators, as the study writes its counts.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Trained gradients show the image's edges, untrained ones do not: the edge correlation on the
/// object's pixels (where an untrained network's gradient also lives, so position alone does not
/// count), trained against untrained. "Shows the edges" is read as at least 0.1 more.
fn feature_row(rows: &mut Vec<ComparisonRow>, r: &Results) {
    let cells: Vec<(String, bool)> = attacked(r)
        .into_iter()
        .filter_map(|(name, a)| {
        let (t, u) = a.edge_probe.as_ref()?;
        Some((
            format!(
                "{name}: edge correlation on the object trained {:.3}, untrained {:.3} (all pixels: {:.3} and {:.3}; share of |g| on the background {:.2} and {:.2})",
                t.abs_vs_edges_on_object,
                u.abs_vs_edges_on_object,
                t.abs_vs_edges,
                u.abs_vs_edges,
                t.background_share,
                u.background_share
            ),
            t.abs_vs_edges_on_object >= u.abs_vs_edges_on_object + 0.1,
        ))
    })
    .collect();
    let verdict = verdict_of(&cells);
    rows.push(ComparisonRow {
        claim: "feature preservation: the loss gradient of a trained model shows the image's edges, an untrained model's does not".into(),
        study: "shown in pictures of clip(10 g / max g, 0, 1)".into(),
        ours: ours_of(&cells),
        settings: "mean per-image Pearson correlation of sum_c |dJ/da_c| with the Sobel edge map of the luma, first 200 test images; 'shows the edges' read as at least 0.1 above the untrained model on the object's pixels".into(),
        verdict,
        reason: if verdict == Verdict::Differs {
            "on all pixels an untrained network's gradient scores higher only because it lives on the object (no gradient reaches background pixels through zero-bias ReLU units); on the object's pixels neither model's |g| follows the edges by this margin. See the feature-preservation table and docs/adversarial.md".into()
        } else {
            String::new()
        },
    });
}
