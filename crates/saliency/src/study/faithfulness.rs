//! "Which attribution method is most faithful": every attribution method on the same few test
//! images of a trained model, scored by the metrics of `evaluate-attribution` (deletion and
//! insertion areas, infidelity, max-sensitivity, completeness where defined, the randomization
//! sanity check), drawn side by side, and a verdict computed from the numbers.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tensor::Tensor;

use crate::attribution::evaluation::mean;
use crate::attribution::method::run;
use crate::attribution::{
    evaluate_method, fresh_donor, spearman, CurveOptions, EvaluationOptions, InfidelityOptions,
    Method, MethodOptions, Replacement, SensitivityOptions, Target,
};
use crate::data::ImageSource;
use crate::infer::{argmax_rows, predict_probs};
use crate::render::save_png;

use super::common::first_images;
use super::method_grid::{method_grid, MethodMaps};
use super::plan::Profile;
use super::report::Section;
use super::report_build::Results;
use super::training::{trained, TrainSummary};

/// The section's title in the report.
pub const TITLE: &str = "Which attribution method is most faithful";

/// A sanity-check Spearman correlation at or above this, with every layer re-drawn, means the
/// map still looks like the trained model's: it shows the input more than the model.
pub const SANITY_FAIL: f64 = 0.5;

/// How much of the comparison a profile runs (images, samples, metric sizes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaithfulnessSettings {
    /// The first this many test images.
    pub images: usize,
    /// Samples of SmoothGrad, VarGrad and GradientSHAP.
    pub samples: usize,
    /// Random orders of Shapley sampling (each costs a forward pass per patch).
    pub shapley_samples: usize,
    /// Patch side of occlusion and Shapley sampling (`None`: the study's, 4 or 32 pixels).
    pub patch: Option<usize>,
    /// Integrated-gradients steps.
    pub ig_steps: usize,
    /// Points on each deletion and insertion curve after the start.
    pub curve_steps: usize,
    /// Perturbations of infidelity (a forward pass each; at least 2, since its least-squares
    /// scale fits one perturbation exactly and leaves nothing to measure).
    pub infidelity_perturbations: usize,
    /// Perturbations of max-sensitivity (the method runs again on each).
    pub sensitivity_perturbations: usize,
    /// What removed pixels become in the deletion and insertion curves.
    pub replacement: String,
    /// Infidelity's Gaussian perturbation sigma (`evaluate-attribution`'s default 0.1).
    pub noise: f64,
    /// Max-sensitivity's uniform radius (Captum's 0.02).
    pub radius: f64,
    /// Seed of every draw (methods, metrics, the sanity check's random model).
    pub seed: u64,
}

impl FaithfulnessSettings {
    /// The settings of `profile`; `large` for 256x256 photos, where a pass costs ~80 times a
    /// 28x28 image's, so fewer images, samples and patches run (the quick profile's section
    /// should add seconds, not minutes, to the study).
    pub fn of(profile: Profile, large: bool, seed: u64) -> Self {
        // (images, samples, Shapley orders, patch, IG steps, curve steps, infidelity and
        // max-sensitivity perturbations)
        let (images, samples, shapley_samples, patch, ig_steps, curve_steps, infid, sens) =
            match (profile, large) {
                (Profile::Paper, false) => (32, 50, 25, None, 64, 20, 10, 10),
                (Profile::Paper, true) => (6, 25, 5, None, 32, 20, 10, 5),
                (Profile::Quick, false) => (8, 10, 5, None, 16, 10, 10, 3),
                (Profile::Quick, true) => (2, 2, 1, Some(64), 4, 4, 4, 1),
                (Profile::Tiny, false) => (2, 2, 2, None, 4, 4, 4, 2),
                (Profile::Tiny, true) => (1, 1, 1, Some(128), 2, 2, 3, 1),
            };
        FaithfulnessSettings {
            images,
            samples,
            shapley_samples,
            patch,
            ig_steps,
            curve_steps,
            infidelity_perturbations: infid,
            sensitivity_perturbations: sens,
            replacement: "blur".into(),
            noise: 0.1,
            radius: 0.02,
            seed,
        }
    }
}

/// One method's means over the images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodScores {
    /// The method's `--method` name.
    pub method: String,
    /// Mean area under the deletion curve (lower: removing what the map ranks first hurts sooner).
    pub deletion_area: f64,
    /// Mean area under the insertion curve (higher).
    pub insertion_area: f64,
    /// Mean infidelity (lower).
    pub infidelity: f64,
    /// Mean max-sensitivity, relative to the map's norm (lower: more stable).
    pub max_sensitivity: f64,
    /// Mean relative completeness error against a black baseline, where defined.
    pub completeness: Option<f64>,
    /// Mean Spearman rank correlation of |map| between the trained model and the same
    /// architecture with every layer re-drawn (lower: the map depends on what was learned).
    pub sanity_spearman: f64,
    /// Wall time of the method and its metrics (this machine, busy or not).
    pub seconds: f64,
}

/// The best method by one metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// The metric's name.
    pub metric: String,
    /// The method.
    pub method: String,
    /// Its value.
    pub value: f64,
}

/// The verdict, computed from the scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaithfulnessVerdict {
    /// The best method by each metric.
    pub best: Vec<Best>,
    /// The methods whose maps keep a Spearman of at least [`SANITY_FAIL`] with every layer
    /// re-drawn.
    pub fails_sanity: Vec<String>,
    /// The most faithful method: the best mean rank over deletion, insertion and infidelity
    /// among the methods that pass the sanity check (among all when none does).
    pub most_faithful: String,
    /// Its mean rank (1 is first on all three).
    pub mean_rank: f64,
    /// The verdict in words, with the numbers.
    pub text: String,
}

/// What the step saves.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaithfulnessResults {
    /// The training run explained (models/NAME).
    pub run: String,
    /// Its network.
    pub model: String,
    /// Its data set.
    pub dataset: String,
    /// Test indices explained.
    pub images: Vec<usize>,
    /// The settings.
    pub settings: FaithfulnessSettings,
    /// One row per method, in `--help` order.
    pub rows: Vec<MethodScores>,
    /// The grid of every method's map (relative path).
    pub figure: String,
    /// The verdict.
    pub verdict: FaithfulnessVerdict,
}

/// The comparisons that ran: Fashion-MNIST's, then the flowers'.
pub fn of_results(r: &Results) -> Vec<&FaithfulnessResults> {
    let fashion = r.fashion.as_ref().map(|f| &f.faithfulness);
    let flowers = r.flowers.as_ref().map(|f| &f.faithfulness);
    fashion.into_iter().chain(flowers).collect()
}

/// The methods compared: all but exact integrated gradients, whose cost grows with the linear
/// regions its path crosses (and max-sensitivity runs it again per perturbation): it took minutes
/// for two Fashion-MNIST images of the tiny profile. Integrated-gradients computes the same
/// integral with a fixed step count.
pub fn methods() -> Vec<Method> {
    Method::ALL
        .into_iter()
        .filter(|&m| m != Method::ExactIntegratedGradients)
        .collect()
}

/// Runs every method and metric on the first test images of the trained model of `run` and draws
/// the grid into `figures/{tag}_faithfulness.png`.
pub fn faithfulness(
    out: &Path,
    run_summary: &TrainSummary,
    test: &dyn ImageSource,
    profile: Profile,
    seed: u64,
    tag: &str,
) -> anyhow::Result<FaithfulnessResults> {
    let model = trained(out, run_summary)?;
    let large = model.input[1] * model.input[2] > 64 * 64;
    let settings = FaithfulnessSettings::of(profile, large, seed);
    let (x, labels) = first_images(test, settings.images)?;
    let n = labels.len();
    let classes = Target::Pred.resolve(&model, &x, None)?;
    let donor = fresh_donor(&model, seed ^ 0xFA17)?;
    let options = |method: Method| MethodOptions::<f32> {
        steps: settings.ig_steps,
        samples: Some(if method == Method::ShapleySampling {
            settings.shapley_samples
        } else {
            settings.samples
        }),
        patch: settings.patch,
        seed,
        ..MethodOptions::default()
    };
    let metrics = EvaluationOptions {
        curves: CurveOptions {
            steps: settings.curve_steps,
            replacement: settings.replacement.parse::<Replacement>()?,
        },
        infidelity: InfidelityOptions {
            samples: settings.infidelity_perturbations,
            sigma: settings.noise,
            seed,
        },
        sensitivity: SensitivityOptions {
            samples: settings.sensitivity_perturbations,
            radius: settings.radius,
            seed,
        },
    };
    let mut rows = Vec::new();
    let mut all_maps: Vec<(Method, Tensor<f32>)> = Vec::new();
    for method in methods() {
        let started = Instant::now();
        let options = options(method);
        let e = evaluate_method(method, &options, &model, &x, &classes, &metrics, None)?;
        // The last step of the cascading check (every layer re-drawn) is the donor itself; the
        // whole cascade is `saliency evaluate-attribution --sanity`.
        let random = run(method, &options, &donor, &x, &classes)?.maps;
        rows.push(MethodScores {
            method: method.name().into(),
            deletion_area: mean(&e.curves.deletion_area),
            insertion_area: mean(&e.curves.insertion_area),
            infidelity: mean(&e.infidelity),
            max_sensitivity: mean(&e.max_sensitivity),
            completeness: e.completeness.map(|c| c.mean_relative_error),
            sanity_spearman: mean_abs_spearman(&e.maps, &random, n),
            seconds: started.elapsed().as_secs_f64(),
        });
        super::progress::line(format!(
            "  {}: {:.1} s",
            method.name(),
            started.elapsed().as_secs_f64()
        ));
        all_maps.push((method, e.maps));
    }
    let probs = predict_probs(&model, x.data(), 256)?;
    let preds = argmax_rows(&probs, model.classes);
    let captions: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{} -> {} {:.0}%",
                test.class_names()[labels[i]],
                test.class_names()[preds[i]],
                100.0 * probs[i * model.classes + preds[i]]
            )
        })
        .collect();
    let columns: Vec<MethodMaps> = all_maps
        .iter()
        .map(|(m, maps)| MethodMaps {
            name: m.name(),
            signed: m.signed(false),
            maps: maps.data(),
            channels: maps.shape()[1],
        })
        .collect();
    let picture = method_grid(
        x.data(),
        &captions,
        &columns,
        model.input,
        &format!(
            "every attribution method on the first {}, trained {} on {} (true -> predicted)",
            images(n),
            run_summary.model,
            run_summary.dataset
        ),
    );
    let figure = format!("figures/{tag}_faithfulness.png");
    std::fs::create_dir_all(out.join("figures"))?;
    save_png(&out.join(&figure), &picture)?;
    let verdict = verdict(&rows);
    Ok(FaithfulnessResults {
        run: run_summary.name.clone(),
        model: run_summary.model.to_string(),
        dataset: run_summary.dataset.clone(),
        images: (0..n).collect(),
        settings,
        rows,
        figure,
        verdict,
    })
}

/// Mean over images of the Spearman correlation of |a| and |b|.
fn mean_abs_spearman(a: &Tensor<f32>, b: &Tensor<f32>, n: usize) -> f64 {
    let per = a.numel() / n.max(1);
    let abs = |x: &[f32]| x.iter().map(|v| f64::from(v.abs())).collect::<Vec<f64>>();
    let each: Vec<f64> = a
        .data()
        .chunks_exact(per)
        .zip(b.data().chunks_exact(per))
        .map(|(x, y)| spearman(&abs(x), &abs(y)))
        .collect();
    mean(&each)
}

/// Ranks (1 = best) of `values`, lower better unless `higher`; a non-finite value ranks last, ties
/// share the better rank.
fn ranks(values: &[f64], higher: bool) -> Vec<f64> {
    let key = |v: f64| {
        if !v.is_finite() {
            f64::INFINITY
        } else if higher {
            -v
        } else {
            v
        }
    };
    values
        .iter()
        .map(|&v| 1.0 + values.iter().filter(|&&o| key(o) < key(v)).count() as f64)
        .collect()
}

/// The best row by `value` (lower unless `higher`), skipping non-finite values; the first of a tie.
fn best_by(
    rows: &[MethodScores],
    metric: &str,
    higher: bool,
    value: impl Fn(&MethodScores) -> Option<f64>,
) -> Option<Best> {
    let mut best: Option<Best> = None;
    for r in rows {
        let Some(v) = value(r).filter(|v| v.is_finite()) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some(b) if higher => v > b.value,
            Some(b) => v < b.value,
        };
        if better {
            best = Some(Best {
                metric: metric.into(),
                method: r.method.clone(),
                value: v,
            });
        }
    }
    best
}

/// The verdict from the scores: the best method by each metric, the methods that fail the sanity
/// check, and the most faithful method by mean rank over the three metrics that test the map
/// against the model's output (deletion, insertion, infidelity), among those that pass.
pub fn verdict(rows: &[MethodScores]) -> FaithfulnessVerdict {
    let best: Vec<Best> = [
        best_by(rows, "deletion area", false, |r| Some(r.deletion_area)),
        best_by(rows, "insertion area", true, |r| Some(r.insertion_area)),
        best_by(rows, "infidelity", false, |r| Some(r.infidelity)),
        best_by(rows, "max-sensitivity", false, |r| Some(r.max_sensitivity)),
        best_by(rows, "sanity-check Spearman", false, |r| {
            Some(r.sanity_spearman)
        }),
        best_by(rows, "completeness error", false, |r| r.completeness),
    ]
    .into_iter()
    .flatten()
    .collect();
    let fails_sanity: Vec<String> = rows
        .iter()
        .filter(|r| r.sanity_spearman.is_nan() || r.sanity_spearman >= SANITY_FAIL)
        .map(|r| r.method.clone())
        .collect();
    let del = ranks(
        &rows.iter().map(|r| r.deletion_area).collect::<Vec<_>>(),
        false,
    );
    let ins = ranks(
        &rows.iter().map(|r| r.insertion_area).collect::<Vec<_>>(),
        true,
    );
    let inf = ranks(
        &rows.iter().map(|r| r.infidelity).collect::<Vec<_>>(),
        false,
    );
    let mean_ranks: Vec<f64> = (0..rows.len())
        .map(|i| (del[i] + ins[i] + inf[i]) / 3.0)
        .collect();
    let passing: Vec<usize> = (0..rows.len())
        .filter(|&i| !fails_sanity.contains(&rows[i].method))
        .collect();
    let pool = if passing.is_empty() {
        (0..rows.len()).collect()
    } else {
        passing.clone()
    };
    let top = pool
        .iter()
        .copied()
        .min_by(|&a, &b| mean_ranks[a].total_cmp(&mean_ranks[b]))
        .unwrap_or(0);
    let (most_faithful, mean_rank) = match rows.get(top) {
        Some(r) => (r.method.clone(), mean_ranks[top]),
        None => (String::new(), f64::NAN),
    };
    let text = verdict_text(
        rows,
        &best,
        &fails_sanity,
        top,
        &mean_ranks,
        [&del, &ins, &inf],
        passing.is_empty(),
    );
    FaithfulnessVerdict {
        best,
        fails_sanity,
        most_faithful,
        mean_rank,
        text,
    }
}

/// A value with four significant digits: fixed point from 0.001 up, exponent below.
fn number(v: f64) -> String {
    if v == 0.0 || v.abs() >= 1e-3 {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// The verdict in words.
fn verdict_text(
    rows: &[MethodScores],
    best: &[Best],
    fails_sanity: &[String],
    top: usize,
    mean_ranks: &[f64],
    [del, ins, inf]: [&Vec<f64>; 3],
    none_pass: bool,
) -> String {
    let Some(winner) = rows.get(top) else {
        return "No method ran.".into();
    };
    let by: Vec<String> = best
        .iter()
        .map(|b| format!("{}: {} ({})", b.metric, b.method, number(b.value)))
        .collect();
    let mut s = format!("Best by each metric: {}. ", by.join("; "));
    s += &format!(
        "Most faithful: {} (ranks {}, {} and {} of {} by deletion area, insertion area and \
         infidelity, mean {:.1}), ",
        winner.method,
        del[top],
        ins[top],
        inf[top],
        rows.len(),
        mean_ranks[top]
    );
    if none_pass {
        s += &format!(
            "though no method passes the sanity check here (every map keeps a Spearman of at \
             least {SANITY_FAIL} with the model's layers re-drawn), so the ranking rests on the \
             output tests alone. "
        );
    } else {
        s += &format!(
            "among the methods that pass the sanity check (Spearman below {SANITY_FAIL} once \
             every layer is re-drawn; this one {:.3}). ",
            winner.sanity_spearman
        );
    }
    if !fails_sanity.is_empty() && !none_pass {
        s += &format!(
            "Left out as failing it: {} (their maps change little when the learned weights are \
             replaced by random ones, so they show the input more than the model, whatever their \
             other scores). ",
            fails_sanity.join(", ")
        );
    }
    s += "Why: the deletion and insertion areas and infidelity ask the model itself whether the \
          pixels a map ranks high move its output, and the sanity check asks whether the map \
          depends on what the model learned; max-sensitivity measures how much a map changes \
          under a small input change (stability, not faithfulness) and is reported beside them.";
    s
}

/// "1 test image", "8 test images".
fn images(n: usize) -> String {
    format!("{n} test image{}", if n == 1 { "" } else { "s" })
}

/// The report section for the models that ran.
pub fn section(results: &[&FaithfulnessResults]) -> Section {
    let mut s = Section::new(TITLE);
    s.para("Every attribution method but exact-integrated-gradients (its cost grows with the linear regions its path crosses; integrated-gradients computes the same integral in fixed steps) on the same test images of a trained model, scored by the metrics of `saliency evaluate-attribution`: deletion and insertion areas (pixels removed from the image, or put back into its replacement, in the order the map ranks them, highest value first; the target's probability after each step; the replacement is stated with each table), infidelity (Captum's infidelity: Gaussian input perturbations, logit, normalized), max-sensitivity (Captum's sensitivity_max: uniform perturbations, the largest change of the map relative to its norm), the completeness error where the method's maps should add up to F(x) - F(black), and the randomization sanity check with every layer re-drawn (the last step of `evaluate-attribution --sanity`). Each method explains its default score (the study's methods the probability, the others the logit) of the predicted class; the sampling methods use the stated samples.");
    for r in results {
        let st = &r.settings;
        s.para(format!(
            "{} trained on {} (models/{}), the first {}; replacement {}, {} curve steps, infidelity over {} Gaussian perturbations of sigma {}, max-sensitivity over {} uniform ones of radius {}, {} samples for SmoothGrad, VarGrad and GradientSHAP, {} orders for Shapley sampling, {} for occlusion and Shapley sampling, {} integrated-gradients steps, seed {}.",
            r.model,
            r.dataset,
            r.run,
            images(r.images.len()),
            st.replacement,
            st.curve_steps,
            st.infidelity_perturbations,
            st.noise,
            st.sensitivity_perturbations,
            st.radius,
            st.samples,
            st.shapley_samples,
            st.patch.map_or("the study's patches".into(), |p| format!("{p}-pixel patches")),
            st.ig_steps,
            st.seed
        ));
        let f4 = |v: f64| format!("{v:.4}");
        s.table(
            &[
                "method",
                "deletion area (lower)",
                "insertion area (higher)",
                "infidelity (lower)",
                "max-sensitivity (lower)",
                "completeness error",
                "sanity: Spearman, all layers random (lower)",
            ],
            r.rows
                .iter()
                .map(|m| {
                    vec![
                        m.method.clone(),
                        f4(m.deletion_area),
                        f4(m.insertion_area),
                        format!("{:.3e}", m.infidelity),
                        f4(m.max_sensitivity),
                        m.completeness.map_or("-".into(), |c| format!("{c:.2e}")),
                        format!("{:.3}", m.sanity_spearman),
                    ]
                })
                .collect(),
        );
        s.image(
            r.figure.clone(),
            format!(
                "every method's map of the same {} ({} on {}): rows are images, columns methods",
                images(r.images.len()),
                r.model,
                r.dataset
            ),
        );
        s.para(format!(
            "Verdict ({} on {}): {}",
            r.model, r.dataset, r.verdict.text
        ));
    }
    s
}

/// The "Beyond the study" rows: the verdict per model (what, ours, setting).
pub fn extras(results: &[&FaithfulnessResults]) -> Vec<Vec<String>> {
    results
        .iter()
        .map(|r| {
            vec![
                format!(
                    "most faithful attribution method, {} on {}",
                    r.model, r.dataset
                ),
                format!(
                    "{} (mean rank {:.1} of {} by deletion, insertion, infidelity)",
                    r.verdict.most_faithful,
                    r.verdict.mean_rank,
                    r.rows.len()
                ),
                format!(
                    "first {}, replacement {}; see '{TITLE}'",
                    images(r.images.len()),
                    r.settings.replacement
                ),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, del: f64, ins: f64, inf: f64, sanity: f64) -> MethodScores {
        MethodScores {
            method: method.into(),
            deletion_area: del,
            insertion_area: ins,
            infidelity: inf,
            max_sensitivity: 0.1,
            completeness: None,
            sanity_spearman: sanity,
            seconds: 0.0,
        }
    }

    #[test]
    fn the_verdict_follows_the_numbers_and_skips_methods_that_fail_the_sanity_check() {
        let rows = vec![
            // Best on every output test, but its map survives randomization.
            row("edge-detector", 0.1, 0.9, 0.01, 0.9),
            row("a", 0.3, 0.6, 0.05, 0.1),
            row("b", 0.2, 0.7, 0.04, 0.2),
        ];
        let v = verdict(&rows);
        assert_eq!(v.fails_sanity, ["edge-detector"]);
        assert_eq!(v.most_faithful, "b");
        assert_eq!(v.mean_rank, 2.0);
        assert_eq!(v.best[0].method, "edge-detector");
        assert_eq!(v.best[4].method, "a");
        assert!(v.text.contains("Most faithful: b") && v.text.contains("edge-detector"));
        // Swap the numbers of a and b: the verdict follows.
        let rows = vec![
            row("edge-detector", 0.1, 0.9, 0.01, 0.9),
            row("a", 0.2, 0.7, 0.04, 0.1),
            row("b", 0.3, 0.6, 0.05, 0.2),
        ];
        assert_eq!(verdict(&rows).most_faithful, "a");
        // Nobody passes: the output tests alone decide, and the text says so.
        let rows = vec![row("x", 0.3, 0.5, 0.1, 0.8), row("y", 0.2, 0.6, 0.2, 0.9)];
        let v = verdict(&rows);
        assert_eq!(v.most_faithful, "y");
        assert!(v.text.contains("no method passes"), "{}", v.text);
    }

    #[test]
    fn a_non_finite_score_ranks_last() {
        assert_eq!(ranks(&[0.2, f64::NAN, 0.1], false), [2.0, 3.0, 1.0]);
        assert_eq!(ranks(&[0.2, 0.2, 0.5], true), [2.0, 2.0, 1.0]);
    }
}
