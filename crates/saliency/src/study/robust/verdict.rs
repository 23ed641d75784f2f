//! The section's claims judged from its numbers (rows for report.json and the report's table), the
//! short verdict on perceptually aligned gradients, and the report section itself.

use super::super::comparison::{ComparisonRow, Verdict};
use super::super::report::Section;
use super::super::training::TrainSummary;
use super::{PairResults, RobustResults, TITLE};
use crate::adversarial::{EdgeProbeMeans, RobustPoint};

/// "Robust" read as: under PGD at the training budget, at least this much more accuracy than the
/// standard model (Madry et al.'s networks: tens of points; a standard one: near 0).
pub const ROBUSTNESS_MARGIN: f64 = 0.2;

/// "The gradient looks more like the object" read as: the loss gradient's edge correlation at
/// least this much above the standard model's (the margin the study's feature-preservation row
/// asks of a trained model over an untrained one), on the object's pixels (does it follow the
/// edges within the object?) and on all pixels (does it also lie on the object rather than in the
/// background?). Both: the finding holds; one: it holds with a stated difference.
pub const ALIGNMENT_MARGIN: f64 = 0.1;

/// "Passes the randomization sanity check" read as: once every layer is re-drawn, the gradient
/// map's rank correlation with the model's own is below this.
pub const SANITY_LIMIT: f64 = 0.5;

fn pct(v: f64) -> String {
    format!("{:.1} %", 100.0 * v)
}

/// A correlation with 3 decimals, or "undefined" (no image had a defined reading).
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "undefined".into()
    }
}

/// "1 epoch", "5 epochs".
fn epochs(n: u64) -> String {
    format!("{n} epoch{}", if n == 1 { "" } else { "s" })
}

/// The point of `method` at `eps` on a curve.
fn point<'a>(curve: &'a [RobustPoint], method: &str, eps: f64) -> Option<&'a RobustPoint> {
    curve
        .iter()
        .find(|p| p.stats.method == method && (p.stats.epsilon - eps).abs() < 1e-12)
}

/// Accuracy under PGD at the training budget: (standard, robust), when both were measured.
pub fn pgd_accuracy(p: &PairResults) -> Option<(f64, f64)> {
    let at = |curve: &[RobustPoint]| point(curve, "pgd", p.plan.epsilon).map(|q| q.stats.accuracy);
    Some((at(&p.standard_curve)?, at(&p.robust_curve)?))
}

/// Whether the robust twin is robust by [`ROBUSTNESS_MARGIN`].
pub fn is_robust(p: &PairResults) -> bool {
    pgd_accuracy(p).is_some_and(|(s, r)| r >= s + ROBUSTNESS_MARGIN)
}

/// How much more the robust model's loss gradient follows the edges than the standard model's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alignment {
    /// By [`ALIGNMENT_MARGIN`] on the object's pixels and on all pixels.
    Both,
    /// By the margin on all pixels only: it lies on the object, but within it follows the edges
    /// little more.
    AllPixelsOnly,
    /// By the margin on the object's pixels only.
    ObjectOnly,
    /// By the margin on neither (or a reading is undefined).
    Neither,
}

/// The [`Alignment`] of a pair's loss gradients.
pub fn alignment(p: &PairResults) -> Alignment {
    let g = &p.gradient;
    let object =
        g.robust.abs_vs_edges_on_object >= g.standard.abs_vs_edges_on_object + ALIGNMENT_MARGIN;
    let all = g.robust.abs_vs_edges >= g.standard.abs_vs_edges + ALIGNMENT_MARGIN;
    match (object, all) {
        (true, true) => Alignment::Both,
        (false, true) => Alignment::AllPixelsOnly,
        (true, false) => Alignment::ObjectOnly,
        (false, false) => Alignment::Neither,
    }
}

/// Of the methods whose maps have a defined edge reading on the object for both models, how many
/// follow the edges there more closely on the robust model: (closer, defined).
fn methods_closer(p: &PairResults) -> (usize, usize) {
    let defined: Vec<_> = p
        .maps
        .iter()
        .map(|m| {
            (
                m.standard.abs_vs_edges_on_object,
                m.robust.abs_vs_edges_on_object,
            )
        })
        .filter(|(s, r)| s.is_finite() && r.is_finite())
        .collect();
    let closer = defined.iter().filter(|(s, r)| r > s).count();
    (closer, defined.len())
}

/// Spearman after every layer is re-drawn: (standard, robust).
fn fully_randomized(p: &PairResults) -> Option<(f64, f64)> {
    p.sanity.last().map(|s| (s.standard, s.robust))
}

fn pgd_name(p: &PairResults) -> String {
    format!("PGD-{}", p.plan.eval_steps)
}

fn training(p: &PairResults) -> String {
    format!(
        "PGD-{} training at L-inf eps {:.4}, {} of each minibatch clean, {} on {} images (models/{})",
        p.plan.train_steps,
        p.plan.epsilon,
        pct(p.plan.clean_fraction),
        epochs(p.robust.epochs),
        p.robust.train_images,
        p.robust.name
    )
}

/// The short verdict of one pair, every figure in it read from the results.
pub fn verdict_text(p: &PairResults) -> String {
    let g = &p.gradient;
    let model = p.standard.model;
    let robustness = match pgd_accuracy(p) {
        Some((s, r)) => format!(
            "Under {} at eps {:.4} the robust {model} keeps {} of the test images, the standard one {}.",
            pgd_name(p),
            p.plan.epsilon,
            pct(r),
            pct(s)
        ),
        None => "The curve has no PGD point at the training budget.".into(),
    };
    let readings = format!(
        "The loss gradient follows the object's edges with a correlation of {:.3} on the robust model against {:.3} on the standard one (object pixels; all pixels {:.3} against {:.3}; untrained {:.3} and {:.3}), and {} of {} attribution methods (those with a defined reading) follow the edges on the object more closely on the robust model.",
        g.robust.abs_vs_edges_on_object,
        g.standard.abs_vs_edges_on_object,
        g.robust.abs_vs_edges,
        g.standard.abs_vs_edges,
        g.untrained.abs_vs_edges_on_object,
        g.untrained.abs_vs_edges,
        methods_closer(p).0,
        methods_closer(p).1
    );
    let finding = match (is_robust(p), alignment(p)) {
        (true, Alignment::Both) => format!(
            "Verdict on {}: robust gradients look more like the object (perceptually aligned gradients, Tsipras et al. 2019): their edge correlation is at least {ALIGNMENT_MARGIN} higher on the object's pixels and on all pixels.",
            p.data
        ),
        (true, Alignment::AllPixelsOnly) => format!(
            "Verdict on {}: robust gradients look more like the object in where they lie (on the object rather than in the background: edge correlation on all pixels at least {ALIGNMENT_MARGIN} higher, share of |g| on the background {:.2} against {:.2}), but within the object they follow the edges by less than {ALIGNMENT_MARGIN} more: the finding holds in part.",
            p.data, g.robust.background_share, g.standard.background_share
        ),
        (true, Alignment::ObjectOnly) => format!(
            "Verdict on {}: within the object robust gradients follow the edges at least {ALIGNMENT_MARGIN} more, but over all pixels they do not (they spread into the background): the finding holds in part.",
            p.data
        ),
        (true, Alignment::Neither) => format!(
            "Verdict on {}: the robust model is robust, but its gradients do not follow the edges by {ALIGNMENT_MARGIN} more, on the object's pixels or on all pixels: the perceptually-aligned-gradients finding is not reproduced here.",
            p.data
        ),
        (false, _) => format!(
            "Verdict on {}: the adversarial training of this run did not make the model robust (less than {} points above the standard model under PGD), so the comparison of their gradients does not test the finding.",
            p.data,
            100.0 * ROBUSTNESS_MARGIN
        ),
    };
    format!("{finding} {robustness} {readings}")
}

fn robustness_row(p: &PairResults) -> ComparisonRow {
    let clean = |curve: &[RobustPoint]| point(curve, "pgd", 0.0).map(|q| q.stats.accuracy);
    let ours = match (
        pgd_accuracy(p),
        clean(&p.standard_curve),
        clean(&p.robust_curve),
    ) {
        (Some((s, r)), Some(sc), Some(rc)) => format!(
            "robust {}: clean {}, {} at eps {:.4} {}; standard: clean {}, {} {} (n = {})",
            p.standard.model,
            pct(rc),
            pgd_name(p),
            p.plan.epsilon,
            pct(r),
            pct(sc),
            pgd_name(p),
            pct(s),
            p.robust_curve.first().map(|q| q.stats.n).unwrap_or(0)
        ),
        _ => "no PGD point at eps 0 and at the training budget".into(),
    };
    let robust = is_robust(p);
    ComparisonRow {
        claim: format!(
            "robust networks, {}: PGD adversarial training keeps accuracy under PGD",
            p.data
        ),
        study: "Madry et al. 2018: far above a standard network's near-0 % at the training budget".into(),
        ours,
        settings: format!(
            "{}; both attacked by {} (random start, alpha 2.5 eps / k, clipped to [0, 1]) with the training loss; 'robust' read as at least {} points above the standard model",
            training(p),
            pgd_name(p),
            100.0 * ROBUSTNESS_MARGIN
        ),
        verdict: if robust { Verdict::Reproduced } else { Verdict::Differs },
        reason: if robust {
            String::new()
        } else {
            format!(
                "PGD-{} training for {} on {} images is a short run: the paper profile trains with PGD-7 for the study's epochs on every training image (docs/results.md: 71.5 % under PGD-20 for deep on Fashion-MNIST)",
                p.plan.train_steps, epochs(p.robust.epochs), p.robust.train_images
            )
        },
    }
}

fn alignment_row(p: &PairResults) -> ComparisonRow {
    let g = &p.gradient;
    let not_robust = if is_robust(p) {
        ""
    } else {
        "; the robust twin of this run is not robust (see the robustness row)"
    };
    let (verdict, reason) = match alignment(p) {
        Alignment::Both => (Verdict::Reproduced, String::new()),
        Alignment::AllPixelsOnly => (
            Verdict::ReproducedWithAStatedDifference,
            format!("the robust gradient lies on the object (all pixels), but within the object it follows the edges by less than {ALIGNMENT_MARGIN} more{not_robust}"),
        ),
        Alignment::ObjectOnly => (
            Verdict::ReproducedWithAStatedDifference,
            format!("within the object the robust gradient follows the edges more, but over all pixels it does not by {ALIGNMENT_MARGIN}{not_robust}"),
        ),
        Alignment::Neither => (Verdict::Differs, not_robust.trim_start_matches("; ").to_string()),
    };
    ComparisonRow {
        claim: format!(
            "robust networks, {}: the robust model's input gradient looks more like the object (perceptually aligned gradients)",
            p.data
        ),
        study: "Tsipras et al. 2019; Santurkar et al. 2019: robust gradients show the object, standard ones look like noise".into(),
        ours: format!(
            "edge correlation of |dJ/da| on the object: robust {:.3}, standard {:.3} (all pixels {:.3} and {:.3}; share of |g| on the background {:.2} and {:.2}); {} of {} attribution methods (with a defined reading) closer to the edges on the robust model",
            g.robust.abs_vs_edges_on_object,
            g.standard.abs_vs_edges_on_object,
            g.robust.abs_vs_edges,
            g.standard.abs_vs_edges,
            g.robust.background_share,
            g.standard.background_share,
            methods_closer(p).0,
            methods_closer(p).1
        ),
        settings: format!(
            "mean per-image Pearson correlation of sum_c |dJ/da_c| with the Sobel edge map of the luma over the first {} test images, as the study's feature-preservation row; 'more like the object' read as at least {ALIGNMENT_MARGIN} above the standard model on the object's pixels and on all pixels (one of the two: a stated difference)",
            g.standard.n
        ),
        verdict,
        reason,
    }
}

fn sanity_row(p: &PairResults) -> ComparisonRow {
    let (ours, verdict) = match fully_randomized(p) {
        Some((s, r)) => (
            format!("Spearman with every layer re-drawn: standard {s:.3}, robust {r:.3}"),
            if s < SANITY_LIMIT && r < SANITY_LIMIT {
                Verdict::Reproduced
            } else {
                Verdict::Differs
            },
        ),
        None => ("not run".into(), Verdict::NotRun),
    };
    ComparisonRow {
        claim: format!(
            "robust networks, {}: both models' gradient maps pass the randomization sanity check",
            p.data
        ),
        study: "Adebayo et al. 2018: the gradient changes when the weights are re-drawn".into(),
        ours,
        settings: format!(
            "|ds/da| of the first {} test images, layers re-drawn from the top down (fresh weights of another seed); 'passes' read as a rank correlation below {SANITY_LIMIT} once every layer is re-drawn",
            p.plan.map_images
        ),
        verdict,
        reason: String::new(),
    }
}

/// The section's rows for report.json and its table: per pair, robustness, aligned gradients and
/// the sanity check; a pair that did not run gives one "not run" row.
pub fn rows(r: &RobustResults) -> Vec<ComparisonRow> {
    let mut rows = Vec::new();
    for (name, pair) in [
        ("Fashion-MNIST", &r.fashion),
        ("flowers (5 classes)", &r.flowers),
    ] {
        match pair {
            Some(p) => rows.extend([robustness_row(p), alignment_row(p), sanity_row(p)]),
            None => rows.push(ComparisonRow {
                claim: format!("robust networks, {name}"),
                study: "Madry et al. 2018; Tsipras et al. 2019".into(),
                ours: "not run".into(),
                settings: String::new(),
                verdict: Verdict::NotRun,
                reason: "its data was not found (see the Data section)".into(),
            }),
        }
    }
    rows
}

fn model_row(role: &str, s: &TrainSummary, how: String) -> Vec<String> {
    vec![
        role.to_string(),
        format!("{} on {}", s.model, s.dataset),
        how,
        s.epochs.to_string(),
        s.train_images.to_string(),
        pct(s.test_accuracy),
        format!("{:.0} s", s.seconds),
        format!("models/{}", s.name),
    ]
}

fn readings_table(sec: &mut Section, p: &PairResults) {
    let g = &p.gradient;
    let row = |what: &str, f: fn(&EdgeProbeMeans) -> f64| {
        vec![
            what.to_string(),
            num(f(&g.standard)),
            num(f(&g.robust)),
            num(f(&g.untrained)),
        ]
    };
    sec.para(format!(
        "Feature preservation of the loss gradient dJ/da (the study's measure, as in the adversarial sections), mean over the first {} test images:",
        g.standard.n
    ));
    sec.table(
        &["reading", "standard", "robust", "untrained"],
        vec![
            row("|g| vs edges, all pixels", |m| m.abs_vs_edges),
            row("|g| vs edges, object pixels only", |m| {
                m.abs_vs_edges_on_object
            }),
            row("|g| vs the image itself (luma)", |m| m.abs_vs_image),
            row("the study's picture clip(10 g / max g) vs edges", |m| {
                m.display_vs_edges
            }),
            row("share of sum |g| on the background", |m| m.background_share),
        ],
    );
    sec.para(format!(
        "Each attribution method's maps of the {} pictured images, read the same way (|map| summed over channels against the Sobel edge map):",
        p.plan.map_images
    ));
    sec.table(
        &[
            "method",
            "standard, object pixels",
            "robust, object pixels",
            "standard, all pixels",
            "robust, all pixels",
        ],
        p.maps
            .iter()
            .map(|m| {
                vec![
                    m.method.clone(),
                    num(m.standard.abs_vs_edges_on_object),
                    num(m.robust.abs_vs_edges_on_object),
                    num(m.standard.abs_vs_edges),
                    num(m.robust.abs_vs_edges),
                ]
            })
            .collect(),
    );
}

fn pair_blocks(sec: &mut Section, p: &PairResults) {
    sec.para(format!(
        "{}: the study's standard {} beside its robust twin ({}).",
        p.data,
        p.standard.model,
        training(p)
    ));
    let mut curve_rows = Vec::new();
    for (who, curve) in [("standard", &p.standard_curve), ("robust", &p.robust_curve)] {
        for q in curve.iter() {
            let s = &q.stats;
            curve_rows.push(vec![
                who.to_string(),
                if s.method == "pgd" {
                    pgd_name(p)
                } else {
                    s.method.clone()
                },
                format!("{:.4}", s.epsilon),
                s.n.to_string(),
                pct(s.accuracy),
                pct(q.success_rate),
                format!("{:.4}", q.mean_linf),
            ]);
        }
    }
    sec.table(
        &[
            "model",
            "attack",
            "eps (L-inf)",
            "n",
            "accuracy under attack",
            "success rate",
            "mean Linf",
        ],
        curve_rows,
    );
    sec.image(
        p.plot.clone(),
        format!(
            "robust accuracy against eps, standard and robust {} ({} and FGSM, clipped to [0, 1])",
            p.standard.model,
            pgd_name(p)
        ),
    );
    sec.link(
        p.curves_json.clone(),
        "both curves as JSON (every point of the table)",
    );
    for (caption, path) in &p.figures {
        sec.image(path.clone(), caption.clone());
    }
    readings_table(sec, p);
    sec.para("Randomization sanity check of the gradient map |ds/da| (Adebayo et al. 2018): layers re-drawn from the top down, Spearman rank correlation with the model's own map:");
    sec.table(
        &["randomized down to", "standard", "robust"],
        p.sanity
            .iter()
            .map(|s| vec![s.layer.clone(), num(s.standard), num(s.robust)])
            .collect(),
    );
    sec.para(verdict_text(p));
}

/// The "Robust networks" section of the report.
pub fn section(r: &RobustResults) -> Section {
    let mut sec = Section::new(TITLE);
    sec.para("The study's halves meet here: adversarially trained networks (Madry et al. 2018: each minibatch partly replaced by its PGD examples) are reported to have input gradients that look like the object (\"perceptually aligned gradients\", Tsipras et al. 2019; Santurkar et al. 2019). Each standard model below is the one the sections above trained; its robust twin has the same architecture, data, optimizer and seed. Both are attacked, attributed, measured and checked the same way, on the same test images; the verdicts are computed from the numbers (docs/adversarial.md, Robust networks).");
    let mut models = Vec::new();
    for p in [&r.fashion, &r.flowers].into_iter().flatten() {
        models.push(model_row("standard", &p.standard, "standard".into()));
        models.push(model_row(
            "robust",
            &p.robust,
            format!(
                "PGD-{} at eps {:.4}, {} clean",
                p.plan.train_steps,
                p.plan.epsilon,
                pct(p.plan.clean_fraction)
            ),
        ));
    }
    sec.table(
        &[
            "role",
            "model",
            "training",
            "epochs",
            "training images",
            "clean test accuracy",
            "training time",
            "run",
        ],
        models,
    );
    for p in [&r.fashion, &r.flowers].into_iter().flatten() {
        pair_blocks(&mut sec, p);
    }
    let rows = rows(r);
    sec.para("The section's claims, judged from the numbers above (also in report.json, robust_networks):");
    sec.table(
        &["claim", "literature", "saliency", "verdict", "setting"],
        rows.iter()
            .map(|c| {
                vec![
                    c.claim.clone(),
                    c.study.clone(),
                    c.ours.clone(),
                    c.verdict_text(),
                    c.settings.clone(),
                ]
            })
            .collect(),
    );
    sec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adversarial::{AttackStats, Norm};
    use crate::models::ModelKind;
    use crate::study::plan::Profile;
    use crate::study::robust::{GradientReadings, MapReadings, RobustPlan, SanityRow};

    fn summary(name: &str) -> TrainSummary {
        TrainSummary {
            name: name.into(),
            model: ModelKind::Deep,
            dataset: "fashion-mnist/train".into(),
            train_images: 100,
            test_images: 50,
            epochs: 1,
            metrics: Vec::new(),
            test_accuracy: 0.8,
            seconds: 1.0,
            checkpoint: format!("models/{name}/model.safetensors"),
        }
    }

    fn curve(clean: f64, under_pgd: f64) -> Vec<RobustPoint> {
        [
            ("pgd", 0.0, clean),
            ("pgd", 0.1, under_pgd),
            ("fgsm", 0.1, under_pgd),
        ]
        .into_iter()
        .map(|(method, epsilon, accuracy)| RobustPoint {
            stats: AttackStats {
                method: method.into(),
                epsilon,
                n: 50,
                flipped_fraction: 0.0,
                accuracy_before: clean,
                accuracy,
                mean_confidence_before: 0.9,
                mean_confidence_after: 0.9,
            },
            targeted: false,
            norm: Norm::LInf,
            success_rate: 0.0,
            attempted: 50,
            mean_l2: 0.0,
            mean_linf: epsilon,
        })
        .collect()
    }

    /// Readings with `on_object` on the object's pixels and half of it on all pixels.
    fn probe(on_object: f64) -> EdgeProbeMeans {
        EdgeProbeMeans {
            n: 50,
            abs_vs_edges: on_object / 2.0,
            signed_vs_edges: 0.0,
            abs_vs_image: 0.0,
            display_vs_edges: 0.0,
            display_vs_colors: 0.0,
            abs_vs_edges_on_object: on_object,
            background_share: 0.3,
            background_pixels: 0.4,
        }
    }

    /// A pair whose standard model holds `standard_pgd` under PGD and the robust one
    /// `robust_pgd`, with gradient edge correlations `standard_edges` and `robust_edges` on the
    /// object, and the given Spearman after full randomization.
    fn pair(
        (standard_pgd, robust_pgd): (f64, f64),
        (standard_edges, robust_edges): (f64, f64),
        randomized: f64,
    ) -> PairResults {
        PairResults {
            data: "Fashion-MNIST".into(),
            plan: RobustPlan::of(Profile::Tiny).fashion,
            standard: summary("fashion-deep"),
            robust: summary("robust-fashion-deep"),
            standard_curve: curve(0.9, standard_pgd),
            robust_curve: curve(0.8, robust_pgd),
            plot: "p.svg".into(),
            curves_json: "p.json".into(),
            figures: Vec::new(),
            gradient: GradientReadings {
                standard: probe(standard_edges),
                robust: probe(robust_edges),
                untrained: probe(0.0),
            },
            maps: vec![MapReadings {
                method: "gradient".into(),
                standard: probe(standard_edges),
                robust: probe(robust_edges),
            }],
            sanity: vec![
                SanityRow {
                    layer: "none".into(),
                    standard: 1.0,
                    robust: 1.0,
                },
                SanityRow {
                    layer: "conv1".into(),
                    standard: randomized,
                    robust: randomized,
                },
            ],
        }
    }

    fn verdicts(p: PairResults) -> Vec<Verdict> {
        rows(&RobustResults {
            fashion: Some(p),
            flowers: None,
        })
        .iter()
        .map(|r| r.verdict)
        .collect()
    }

    #[test]
    fn the_verdicts_follow_the_numbers() {
        use Verdict::*;
        // Robust (0.7 against 0.01) with gradients 0.3 closer to the edges: the finding holds.
        let good = pair((0.01, 0.7), (0.02, 0.32), 0.1);
        assert!(verdict_text(&good)
            .starts_with("Verdict on Fashion-MNIST: robust gradients look more like the object"));
        assert!(
            verdict_text(&good).contains("keeps 70.0 %"),
            "{}",
            verdict_text(&good)
        );
        // The flowers did not run: one not-run row for them.
        assert_eq!(verdicts(good), [Reproduced, Reproduced, Reproduced, NotRun]);
        // Robust, but the gradients only 0.05 closer on the object (and 0.025 on all pixels in
        // this fixture, where all pixels read half the object's value): differs.
        let flat = pair((0.01, 0.7), (0.02, 0.07), 0.1);
        assert_eq!(alignment(&flat), Alignment::Neither);
        assert!(verdict_text(&flat).contains("not reproduced here"));
        assert_eq!(verdicts(flat), [Reproduced, Differs, Reproduced, NotRun]);
        // 0.15 closer on the object, 0.075 on all pixels: in part.
        let part = pair((0.01, 0.7), (0.02, 0.17), 0.1);
        assert_eq!(alignment(&part), Alignment::ObjectOnly);
        assert!(verdict_text(&part).contains("holds in part"));
        assert_eq!(
            verdicts(part),
            [
                Reproduced,
                ReproducedWithAStatedDifference,
                Reproduced,
                NotRun
            ]
        );
        // Not robust (0.15 above the standard model): the gradients are not judged as evidence.
        let weak = pair((0.05, 0.2), (0.02, 0.5), 0.9);
        assert!(verdict_text(&weak).contains("did not make the model robust"));
        assert_eq!(verdicts(weak), [Differs, Reproduced, Differs, NotRun]);
    }
}
