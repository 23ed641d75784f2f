//! Builds the study report from the steps' JSON results (no figure is typed in).

use super::fashion::{ig_error_summary, AdversarialResults, AttributionResults};
use super::plan::Plan;
use super::report::{Report, Section};
use super::training::TrainSummary;
use super::{DataUsed, Skipped, StudyConfig};
use crate::adversarial::{markdown_table, EdgeProbeMeans};

/// The Fashion-MNIST sections' step results.
pub struct FashionResults {
    pub deep: (TrainSummary, usize),
    pub alex: TrainSummary,
    pub attribution: AttributionResults,
    pub adversarial: AdversarialResults,
    /// Every attribution method scored on `deep` (see [`super::faithfulness`]).
    pub faithfulness: super::faithfulness::FaithfulnessResults,
}

/// The flower sections' step results.
pub struct FlowerResults {
    pub medium: (TrainSummary, usize),
    pub fdeep: (TrainSummary, usize),
    pub fadv: AdversarialResults,
    pub pair: (TrainSummary, usize),
    pub gray: (TrainSummary, usize),
    pub f17: Option<(TrainSummary, usize)>,
    /// Gradient x input stills before and after training, color then gray: (caption, path).
    pub stills: Vec<(String, String)>,
    /// The model the flower attacks ran on (the study's 40 epochs in the paper profile).
    pub attacked: TrainSummary,
    /// A medium trained with the study's double softmax, and the attacks on it.
    pub double: (TrainSummary, AdversarialResults),
    /// Every attribution method scored on the flowers `deep` (see [`super::faithfulness`]).
    pub faithfulness: super::faithfulness::FaithfulnessResults,
}

/// Every step's result, the data each part ran on, and what was skipped.
pub struct Results {
    pub fashion: Option<FashionResults>,
    pub flowers: Option<FlowerResults>,
    pub data: Vec<DataUsed>,
    pub skipped: Vec<Skipped>,
    /// The "Robust networks" section's pairs.
    pub robust: super::robust::RobustResults,
}

/// The report's opening section: which data every part ran on, and what was skipped.
fn data_section(r: &Results) -> Section {
    let mut s = Section::new("Data");
    s.para("Which data each part of this run used. \"sample\" is the real subset shipped in the repository's data/sample (Fashion-MNIST: 1,000 training and 200 test images per class; flowers: 40 photos per class), used when no full copy is found; its accuracies are lower than a full copy's.");
    s.table(
        &["sections", "data set", "copy", "folder", "images"],
        r.data
            .iter()
            .map(|d| {
                vec![
                    d.sections.clone(),
                    d.set.clone(),
                    d.origin.to_string(),
                    d.dir.display().to_string(),
                    d.detail.clone(),
                ]
            })
            .collect(),
    );
    if !r.skipped.is_empty() {
        s.para("Skipped for lack of data (run with --strict to make this an error):");
        s.table(
            &[
                "sections",
                "why, where the program looked, how to get the data",
            ],
            r.skipped
                .iter()
                .map(|k| vec![k.sections.clone(), k.reason.replace('\n', " ")])
                .collect(),
        );
    }
    s
}

/// "every minibatch update" for 1, else "every 2nd / 3rd / 50th minibatch update".
pub fn every_nth(k: u64) -> String {
    if k <= 1 {
        return "every minibatch update".into();
    }
    let suffix = match (k % 10, k % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("every {k}{suffix} minibatch update")
}

fn pct(v: f64) -> String {
    format!("{:.1} %", 100.0 * v)
}

fn training_table(sec: &mut Section, runs: &[&TrainSummary]) {
    let rows = runs
        .iter()
        .flat_map(|s| {
            s.metrics.iter().map(move |m| {
                vec![
                    s.name.clone(),
                    m.epoch.to_string(),
                    format!("{:.4}", m.train_loss),
                    pct(m.train_accuracy),
                    format!("{:.4}", m.test_loss),
                    pct(m.test_accuracy),
                    format!("{:.0}", m.images_per_second),
                ]
            })
        })
        .collect();
    sec.table(
        &[
            "run",
            "epoch",
            "train loss",
            "train acc.",
            "test loss",
            "test acc.",
            "images/s",
        ],
        rows,
    );
}

fn adversarial_section(sec: &mut Section, a: &AdversarialResults) {
    sec.para(format!("Flip statistics over {} test images for every method and control (flipped = the predicted class changes). Raw numbers: {}.", a.stats.first().map(|s| s.n).unwrap_or(0), a.summary));
    sec.link(
        a.summary.clone(),
        "summary.json (every figure in this table)",
    );
    let table = markdown_table(&a.stats);
    let rows: Vec<Vec<String>> = table
        .lines()
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    sec.table(
        &[
            "method",
            "eps",
            "n",
            "flipped",
            "accuracy before",
            "accuracy under attack",
            "conf. before",
            "conf. after",
        ],
        rows,
    );
    sec.image(
        a.plot.clone(),
        "flip rate against eps for each method (controls dashed)",
    );
    for (cap, path) in &a.figures {
        sec.image(path.clone(), cap.clone());
    }
    sec.para("The sign image eps * sign(g) (eps 0.01) classified on its own:");
    sec.table(
        &[
            "true class",
            "sign image classified as",
            "confidence",
            "the study: classified confidently (read as >= 50 %)",
        ],
        a.sign_image
            .iter()
            .map(|(t, p, c)| {
                vec![
                    t.clone(),
                    p.clone(),
                    format!("{:.2}", c),
                    if *c >= 0.5 { "yes" } else { "no" }.into(),
                ]
            })
            .collect(),
    );
    feature_preservation(sec, a);
}

/// The edge-agreement readings, trained beside untrained, and how to read them.
fn feature_preservation(sec: &mut Section, a: &AdversarialResults) {
    let Some((t, u)) = &a.edge_probe else {
        sec.para(format!(
            "Feature preservation: mean Pearson correlation between |dJ/da| and the image's Sobel edge map is {:.3} for the trained model and {:.3} for the untrained one.",
            a.edge_correlation.0, a.edge_correlation.1
        ));
        return;
    };
    sec.para(format!(
        "Feature preservation in numbers: mean per-image Pearson correlations over the first {} test images (|g| = sum over channels of |dJ/da|; edges = Sobel magnitude of the luma; object = pixels with a non-background pixel (luma above 1/255) in their 3x3 neighbourhood, background = the rest, {} of the pixels here).",
        t.n,
        pct(t.background_pixels)
    ));
    let row = |what: &str, f: fn(&EdgeProbeMeans) -> f64, digits: usize| {
        vec![
            what.to_string(),
            format!("{:.*}", digits, f(t)),
            format!("{:.*}", digits, f(u)),
        ]
    };
    sec.table(
        &["reading", "trained", "untrained"],
        vec![
            row("|g| vs edges, all pixels", |m| m.abs_vs_edges, 3),
            row(
                "|g| vs edges, object pixels only",
                |m| m.abs_vs_edges_on_object,
                3,
            ),
            row("signed g vs edges", |m| m.signed_vs_edges, 3),
            row(
                "the study's picture clip(10 g / max g) vs edges",
                |m| m.display_vs_edges,
                3,
            ),
            row("|g| vs the image itself (luma)", |m| m.abs_vs_image, 3),
            row(
                "the study's picture vs the image, value by value (colors)",
                |m| m.display_vs_colors,
                3,
            ),
            row(
                "share of sum |g| on the background",
                |m| m.background_share,
                3,
            ),
        ],
    );
    sec.para("How to read it: on all pixels the correlation mixes two things, where the gradient is and what it looks like there. An untrained network (zero biases, ReLU) passes no gradient through a first-layer unit that sees only zero background, so its |g| sits on the object, and any object-shaped map correlates with the edge map; a trained network has non-zero biases and spreads |g| into the background. The object-only row removes that: it asks whether |g| is larger on the edges than elsewhere on the object, which is the study's claim. docs/adversarial.md (Feature preservation) has the investigation and the commands.");
}

fn fashion_sections(rep: &mut Report, plan: &Plan, r: &FashionResults) {
    let (ig_median, ig_max) = ig_error_summary(&r.attribution);
    let mut s = Section::new("Fashion-MNIST: training");
    training_table(&mut s, &[&r.deep.0, &r.alex]);
    s.image("figures/fashion_deep_movie.gif", format!("gradient x input of the first 16 test images before {} ({} frames; frame 0 is the untrained model); one scale per image for the whole movie (the 99th percentile of its map over all frames)", every_nth(plan.movie_every), r.deep.1));
    s.image(super::fashion::GRADIENT_MOVIE, format!("the loss gradient dJ/da of the first 6 test images over training, drawn as the study draws its gradient images, clip(10 g / max g, 0, 1), before {} (frame 0 is the untrained model)", every_nth(plan.movie_every)));
    rep.sections.push(s);

    let mut s = Section::new("Fashion-MNIST: attribution before and after training");
    for (cap, path) in &r.attribution.figures {
        s.image(path.clone(), cap.clone());
    }
    s.para(format!(
        "Integrated gradients completeness on the trained network ({} steps, midpoint rule, black baseline): |sum(IG) - (F(a) - F(0))| is a median {} and at most {} of |F(a) - F(0)| over the 16 images. The path crosses many ReLU kinks where the top probability changes quickly, so more steps are needed for 1 % on every image.",
        r.attribution.ig_steps, pct(ig_median), pct(ig_max)
    ));
    s.para("Randomization sanity check (Adebayo et al. 2018): layers re-drawn from the top down, Spearman rank correlation of |gradient x input| between the trained and the randomized model:");
    s.table(
        &["randomized down to", "Spearman"],
        r.attribution
            .sanity
            .iter()
            .map(|(l, v)| vec![l.clone(), format!("{v:.3}")])
            .collect(),
    );
    s.para(format!(
        "Training-integrated gradients summed {} model states (one after each minibatch).",
        r.attribution.tig_states
    ));
    rep.sections.push(s);

    let mut s = Section::new("Fashion-MNIST: adversarial examples");
    adversarial_section(&mut s, &r.adversarial);
    rep.sections.push(s);
}

fn flower_sections(rep: &mut Report, plan: &Plan, r: &FlowerResults, data: &[DataUsed]) {
    let mut s = Section::new("Flowers");
    let mut runs = vec![&r.medium.0, &r.fdeep.0, &r.pair.0, &r.gray.0];
    if r.attacked.name != r.medium.0.name {
        runs.push(&r.attacked);
    }
    runs.push(&r.double.0);
    if let Some(f) = &r.f17 {
        runs.push(&f.0);
    }
    training_table(&mut s, &runs);
    let photos = data
        .iter()
        .find(|d| d.sections == "Flowers")
        .map(|d| d.detail.clone())
        .unwrap_or_default();
    s.para(format!("The flower set here is small ({photos}); accuracies on so few test images move by several points per image."));
    s.image("figures/flowers-medium_movie.gif", format!("gradient x input of the first 6 flower test images before {} ({} frames), color, inferno overlay alpha 0.6; each map summed over channels, one scale per image for the whole movie (the 99th percentile of its map over all frames)", every_nth(plan.flower_movie_every), r.medium.1));
    for (cap, path) in &r.stills {
        s.image(path.clone(), cap.clone());
    }
    s.image("figures/flowers-gray_movie.gif", format!("gradient x input of the same 6 photos in gray (the gray medium) before {} ({} frames), inferno overlay alpha 0.5; one scale per image for the whole movie (the 99th percentile of its map over all frames)", every_nth(plan.flower_movie_every), r.gray.1));
    s.image(super::flowers::gradient_movie_path("flowers-medium"), format!("the loss gradient dJ/da of the same 6 photos over training, clip(10 g / max g, 0, 1) in color, before {} (frame 0 is the untrained model)", every_nth(plan.flower_movie_every)));
    s.image(super::flowers::gradient_movie_path("flowers-gray"), format!("the same loss gradient movie for the gray medium, clip(10 g / max g, 0, 1) in gray, before {} (frame 0 is the untrained model)", every_nth(plan.flower_movie_every)));
    s.para(format!(
        "The attacks below run on {} trained {} epochs with the proper loss (models/{}).",
        r.attacked.model, r.attacked.epochs, r.attacked.name
    ));
    adversarial_section(&mut s, &r.fadv);
    rep.sections.push(s);
    let mut s =
        Section::new("Flowers: the attacks on a model trained with the study's double softmax");
    s.para(format!(
        "The study's PyTorch scripts applied cross-entropy to softmax probabilities (softmax twice). The same attacks on {} trained that way for {} epochs (models/{}, test accuracy {}), each following the gradient of that loss:",
        r.double.0.model,
        r.double.0.epochs,
        r.double.0.name,
        pct(r.double.0.test_accuracy)
    ));
    adversarial_section(&mut s, &r.double.1);
    rep.sections.push(s);
}

/// The report.
pub fn build(
    cfg: &StudyConfig,
    plan: &Plan,
    r: &Results,
    timings: &[super::steps::StepTiming],
    wall: f64,
) -> Report {
    let mut rep = Report {
        title: "Input attribution and adversarial examples: a reproduction with saliency".into(),
        sections: Vec::new(),
    };
    rep.sections.push(data_section(r));
    let mut t = Section::new("Study vs saliency");
    t.para(format!("Profile '{}': {}. Every number on the right is read from this run's step results (steps/*.json).", cfg.profile, if cfg.profile == super::Profile::Paper { "the study's epochs and sizes" } else { "fewer epochs and subsets, so accuracies are lower than the study's" }));
    let (rows, extras) = super::comparison::rows(cfg, r);
    t.table(
        &["claim", "study", "saliency", "verdict", "setting"],
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
    if !extras.is_empty() {
        t.para("Beyond the study (figures it does not report):");
        t.table(&["what", "saliency", "setting"], extras);
    }
    rep.sections.push(t);

    if let Some(f) = &r.fashion {
        fashion_sections(&mut rep, plan, f);
    }
    if let Some(fl) = &r.flowers {
        flower_sections(&mut rep, plan, fl, &r.data);
    }
    let faithful = super::faithfulness::of_results(r);
    if !faithful.is_empty() {
        rep.sections.push(super::faithfulness::section(&faithful));
    }
    if r.robust.fashion.is_some() || r.robust.flowers.is_some() {
        rep.sections
            .push(super::robust::verdict::section(&r.robust));
    }

    let mut s = Section::new("Run facts");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    s.table(
        &["fact", "value"],
        vec![
            vec!["command".into(), cfg.command.clone()],
            vec!["profile".into(), cfg.profile.to_string()],
            vec!["seed".into(), cfg.seed.to_string()],
            vec!["threads".into(), rayon::current_num_threads().to_string()],
            // Tiers may round differently (docs/architecture.md), so the figures name theirs.
            vec!["SIMD tier".into(), tensor::cpu::tier().name().to_string()],
            vec!["git commit".into(), commit],
            vec!["saliency version".into(), env!("CARGO_PKG_VERSION").into()],
            vec!["wall time (this invocation)".into(), format!("{wall:.0} s")],
            vec![
                "step time (every step, as first computed)".into(),
                format!("{:.0} s", timings.iter().map(|t| t.seconds).sum::<f64>()),
            ],
        ],
    );
    s.table(
        &["step", "seconds", "note"],
        timings
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    format!("{:.1}", t.seconds),
                    if t.reused {
                        "done in an earlier run (its time)".into()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect(),
    );
    rep.sections.push(s);
    rep
}

#[cfg(test)]
mod tests {
    use super::every_nth;

    #[test]
    fn every_nth_reads_as_english() {
        assert_eq!(every_nth(1), "every minibatch update");
        assert_eq!(every_nth(2), "every 2nd minibatch update");
        assert_eq!(every_nth(3), "every 3rd minibatch update");
        assert_eq!(every_nth(11), "every 11th minibatch update");
        assert_eq!(every_nth(21), "every 21st minibatch update");
        assert_eq!(every_nth(50), "every 50th minibatch update");
    }
}
