//! `saliency study` end to end on the tiny profile: every section, every link, numbers from JSON.

mod common;

use saliency::study::{run_study, Profile, StudyConfig};

fn section<'a>(md: &'a str, title: &str) -> &'a str {
    let start = md
        .find(&format!("## {title}"))
        .unwrap_or_else(|| panic!("section '{title}' missing"));
    let rest = &md[start + 3..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

#[test]
fn tiny_study_writes_a_complete_report_and_resumes() {
    let out = std::env::temp_dir().join(format!("saliency-study-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let cfg = StudyConfig {
        out: out.clone(),
        profile: Profile::Tiny,
        data_dir: Some(common::data_root()),
        seed: 0,
        flowers17: false,
        allow_download: false,
        strict: true,
        command: "test".into(),
        overwrite: false,
    };
    run_study(&cfg).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for title in [
        "Study vs saliency",
        "Fashion-MNIST: training",
        "Fashion-MNIST: attribution before and after training",
        "Fashion-MNIST: adversarial examples",
        "Flowers",
        "Robust networks",
        "Run facts",
    ] {
        assert!(
            md.contains(&format!("## {title}")),
            "markdown lacks '{title}'"
        );
        assert!(
            html.contains(&format!("<h2>{}</h2>", title.replace('&', "&amp;"))),
            "html lacks '{title}'"
        );
    }
    // Every src= and href= in the HTML names a file that exists beside it.
    let mut links = 0;
    for attr in ["src=\"", "href=\""] {
        for piece in html.split(attr).skip(1) {
            let target = &piece[..piece.find('"').unwrap()];
            assert!(
                out.join(target).is_file(),
                "report.html links to {target}, which does not exist"
            );
            links += 1;
        }
    }
    assert!(links >= 25, "only {links} links");
    // The table's figures are the steps' own JSON values (each file: seconds and result).
    let steps = |name: &str| -> serde_json::Value {
        let file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(format!("steps/{name}.json"))).unwrap())
                .unwrap();
        file["result"].clone()
    };
    let deep_acc = steps("fashion-deep")[0]["test_accuracy"].as_f64().unwrap();
    let table = section(&md, "Study vs saliency");
    assert!(
        table.contains(&format!("| > 91 % | {:.1} % |", 100.0 * deep_acc)),
        "deep accuracy {deep_acc} not in:\n{table}"
    );
    let pair_acc = steps("flowers-pair")[0]["test_accuracy"].as_f64().unwrap();
    assert!(
        table.contains(&format!("| up to 91 % | {:.1} % |", 100.0 * pair_acc)),
        "pair accuracy not in the table"
    );
    let adv = steps("fashion-adversarial");
    let fgsm = adv["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["method"] == "fgsm" && s["epsilon"].as_f64() == Some(0.01))
        .unwrap();
    let flipped = fgsm["flipped_fraction"].as_f64().unwrap();
    assert!(
        table.contains(&format!("{:.1} % flip", 100.0 * flipped)),
        "fgsm flip share not in the table"
    );

    // Feature preservation: the object-only edge correlation of the trained model, from JSON.
    let probe = &adv["edge_probe"][0];
    let on_object = probe["abs_vs_edges_on_object"].as_f64().unwrap();
    assert!(
        table.contains(&format!(
            "edge correlation on the object trained {on_object:.3}"
        )),
        "feature preservation row lacks {on_object:.3}:\n{table}"
    );
    assert!(md.contains("figures/fashion_gradient_images.png"));
    assert!(md.contains("figures/fashion_gradient_movie.gif"));
    assert!(md.contains("figures/flowers-gray_movie.gif"));
    assert!(md.contains("figures/flowers-medium_gxi_untrained.png"));
    assert!(md.contains("figures/flowers-gray_gxi_trained.png"));
    assert!(
        md.contains("## Flowers: the attacks on a model trained with the study's double softmax")
    );
    assert!(!md.contains("-th minibatch"), "ordinal wording");
    // report.json: one row per claim, each with a verdict, the new claims among them.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let rows = json["comparison"].as_array().unwrap();
    for claim in [
        "feature preservation",
        "the normalized gradient",
        "the sign image",
        "random noise of the attack's size",
        "(the study's double softmax)",
        "on an untrained network",
    ] {
        let row = rows
            .iter()
            .find(|r| r["claim"].as_str().unwrap().contains(claim))
            .unwrap_or_else(|| panic!("report.json has no row for '{claim}'"));
        assert_ne!(row["verdict"], "not_run", "{claim}");
        assert!(table.contains(row["ours"].as_str().unwrap().split('|').next().unwrap()));
    }

    // Robust networks: both pairs' steps hold finite numbers, their files exist, and the rows of
    // report.json carry them.
    let robust_rows = json["robust_networks"].as_array().unwrap();
    assert_eq!(robust_rows.len(), 6, "{robust_rows:?}");
    let robust_md = section(&md, "Robust networks");
    for (name, model) in [
        ("fashion", "robust-fashion-deep"),
        ("flowers", "robust-flowers-medium"),
    ] {
        assert!(out
            .join(format!("models/{model}/model.safetensors"))
            .is_file());
        let pair = steps(&format!("robust-{name}"));
        let finite = |v: &serde_json::Value, what: &str| -> f64 {
            let x = v
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: {what} is {v}, not a number"));
            assert!(x.is_finite(), "{name}: {what} = {x}");
            x
        };
        for curve in ["standard_curve", "robust_curve"] {
            let points = pair[curve].as_array().unwrap();
            assert!(points.len() >= 4, "{name} {curve}");
            for p in points {
                let acc = finite(&p["accuracy"], curve);
                assert!((0.0..=1.0).contains(&acc));
                finite(&p["mean_linf"], curve);
            }
        }
        let g = &pair["gradient"];
        for model in ["standard", "robust", "untrained"] {
            for reading in ["abs_vs_edges", "abs_vs_edges_on_object", "background_share"] {
                finite(&g[model][reading], &format!("{model} {reading}"));
            }
        }
        let on_object = finite(&g["robust"]["abs_vs_edges_on_object"], "robust on object");
        assert!(
            robust_md.contains(&format!("robust {on_object:.3}")),
            "{name}: {on_object:.3} not in the section"
        );
        let maps = pair["maps"].as_array().unwrap();
        assert!(maps.len() >= 6, "{name}: {} methods", maps.len());
        let sanity = pair["sanity"].as_array().unwrap();
        assert!(sanity.len() >= 3, "{name}: sanity check");
        for s in sanity {
            finite(&s["standard"], "sanity");
            finite(&s["robust"], "sanity");
        }
        for file in [
            format!("robust_{name}/robust_accuracy.svg"),
            format!("robust_{name}/robust_accuracy.json"),
            format!("figures/robust_{name}_gradient.png"),
            format!("figures/robust_{name}_integrated_gradients.png"),
            format!("figures/robust_{name}_loss_gradient.png"),
        ] {
            assert!(out.join(&file).is_file(), "{file} missing");
            assert!(robust_md.contains(&file), "{file} not in the section");
        }
        // The rows: robustness, aligned gradients and the sanity check, each with a verdict and
        // the step's own edge correlation.
        let pair_rows: Vec<_> = robust_rows
            .iter()
            .filter(|r| {
                r["claim"]
                    .as_str()
                    .unwrap()
                    .contains(pair["data"].as_str().unwrap())
            })
            .collect();
        assert_eq!(pair_rows.len(), 3, "{name}");
        for r in &pair_rows {
            assert_ne!(r["verdict"], "not_run", "{name}: {r}");
        }
        assert!(pair_rows[1]["ours"]
            .as_str()
            .unwrap()
            .contains(&format!("robust {on_object:.3}")));
    }

    // Which attribution method is most faithful: every method on both models, finite numbers,
    // completeness exactly where it is defined, the figure, and a verdict naming a method that ran.
    let faithful = section(&md, "Which attribution method is most faithful");
    assert!(html.contains("<h2>Which attribution method is most faithful</h2>"));
    let saved = json["faithfulness"].as_array().unwrap();
    assert_eq!(saved.len(), 2, "Fashion-MNIST and flowers");
    for (step, figure) in [
        ("fashion-faithfulness", "figures/fashion_faithfulness.png"),
        ("flowers-faithfulness", "figures/flowers_faithfulness.png"),
    ] {
        let r = steps(step);
        assert_eq!(r["figure"], figure);
        assert!(out.join(figure).is_file() && faithful.contains(figure));
        let methods = r["rows"].as_array().unwrap();
        assert_eq!(
            methods.len(),
            saliency::study::faithfulness::methods().len(),
            "{step}"
        );
        assert_eq!(
            methods.len(),
            saliency::attribution::Method::ALL.len() - 1,
            "{step}"
        );
        for m in methods {
            for key in [
                "deletion_area",
                "insertion_area",
                "infidelity",
                "max_sensitivity",
                "sanity_spearman",
            ] {
                let v = m[key].as_f64().unwrap_or(f64::NAN);
                assert!(v.is_finite(), "{step} {}: {key} = {v}", m["method"]);
            }
            let method: saliency::attribution::Method =
                m["method"].as_str().unwrap().parse().unwrap();
            assert_eq!(
                m["completeness"].as_f64().is_some_and(f64::is_finite),
                method.completeness_defined(),
                "{step}: {m}"
            );
            assert!(
                faithful.contains(&format!(
                    "| {} | {:.4} | {:.4} |",
                    m["method"].as_str().unwrap(),
                    m["deletion_area"].as_f64().unwrap(),
                    m["insertion_area"].as_f64().unwrap()
                )),
                "{step}: the table lacks {m}"
            );
        }
        // Infidelity's least-squares scale fits a single perturbation exactly (zero for every
        // map), so the study runs at least two and some map scores above zero.
        assert!(r["settings"]["infidelity_perturbations"].as_u64().unwrap() >= 2);
        assert!(
            methods
                .iter()
                .any(|m| m["infidelity"].as_f64().unwrap() > 0.0),
            "{step}: every infidelity is zero"
        );
        let winner = r["verdict"]["most_faithful"].as_str().unwrap();
        assert!(methods.iter().any(|m| m["method"] == winner), "{winner}");
        assert!(faithful.contains(&format!("Most faithful: {winner} ")));
        assert!(saved.iter().any(|s| s["run"] == r["run"]));
    }
    assert!(table.contains("most faithful attribution method, deep on fashion-mnist"));

    // A second run skips every step and reports the same results.
    run_study(&cfg).unwrap();
    let again = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(section(&again, "Study vs saliency"), table);
    assert_eq!(section(&again, "Robust networks"), robust_md);
    assert!(section(&again, "Run facts").contains("done in an earlier run"));
    std::fs::remove_dir_all(&out).unwrap();
}
