//! No panic or abort reachable from the CLI (issue 19, items 7-9): each case used to end with
//! exit 101 or 134 and a backtrace; now each is a clear error (exit 1 or 2) or the right result.

mod support;

use support::*;

/// Item 7: `attribute --classes` with more classes than the model used to index past the
/// model's class names (cli/attribute.rs); now the classes are checked against the checkpoint.
#[test]
fn attribute_with_more_classes_than_the_model_is_refused() {
    let s = Scratch::new("more-classes");
    write_flowers(&s.0, &["a", "b", "c"], 4);
    let ckpt = s.join("model.safetensors");
    write_checkpoint(&ckpt, "flowers", [3, 256, 256], &["a", "b"]);
    for command in ["attribute", "adversary"] {
        let out = s.join(&format!("{command}-out"));
        let mut args = vec![
            command,
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--classes",
            "a,b,c",
        ];
        args.extend([
            "--data-dir",
            s.0.to_str().unwrap(),
            "--no-download",
            "--threads",
            "1",
        ]);
        args.extend(["--indices", "0", "--out", out.to_str().unwrap()]);
        assert_refused(
            &saliency(&s.0, &args),
            &[
                "--classes a,b,c",
                &ckpt.display().to_string(),
                "trained on the classes a,b",
            ],
        );
        assert!(!out.exists(), "{command} left {}", out.display());
    }
}

/// Item 8: one huge step size used to give a zero axis step in the flip-rate plot and a
/// "Formatting argument out of range" panic after summary.json was written.
#[test]
fn adversary_with_huge_epsilons_draws_its_plot() {
    let s = Scratch::new("huge-eps");
    write_fashion(&s.0);
    let ckpt = s.join("model.safetensors");
    write_checkpoint(&ckpt, "fashion-mnist", [1, 28, 28], &fashion_classes());
    for eps in ["1e16", "1e17", "1e30"] {
        let out = s.join(&format!("adv-{eps}"));
        let args = [
            "adversary",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--epsilons",
            eps,
            "--limit",
            "4",
            "--indices",
            "0..2",
            "--data-dir",
            s.0.to_str().unwrap(),
            "--no-download",
            "--threads",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        assert_ok(&saliency(&s.0, &args));
        let svg = std::fs::read_to_string(out.join("flip_rate.svg")).unwrap();
        assert!(
            svg.contains("</svg>") && !svg.contains("NaN") && !svg.contains("inf"),
            "{svg}"
        );
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        let wanted: f64 = eps.parse().unwrap();
        let results = summary["results"].as_array().unwrap();
        assert!(
            results
                .iter()
                .all(|r| r["epsilon"].as_f64() == Some(wanted)),
            "{summary}"
        );
        assert!(out.join("triptych_fgsm.png").is_file());
    }
}

/// Item 9: `bench --batch-size 100000000` used to abort with "memory allocation of
/// 313600000000 bytes failed"; the memory is now estimated first, and the error names the option.
#[test]
fn bench_with_a_batch_beyond_memory_is_refused_naming_the_option() {
    let s = Scratch::new("bench-mem");
    let args = [
        "bench",
        "--workload",
        "train-step",
        "--batch-size",
        "100000000",
        "--threads",
        "1",
    ];
    assert_refused(
        &saliency(&s.0, &args),
        &[
            "--batch-size 100000000",
            "needs about",
            "of memory available",
            "smaller --batch-size",
        ],
    );
    let args = [
        "bench",
        "--workload",
        "integrated-gradients",
        "--batch-size",
        "1",
        "--ig-steps",
        "1000000000",
        "--threads",
        "1",
    ];
    assert_refused(
        &saliency(&s.0, &args),
        &["--ig-steps 1000000000", "smaller --ig-steps"],
    );
    // A normal batch still runs.
    let args = [
        "bench",
        "--workload",
        "infer",
        "--batch-size",
        "8",
        "--threads",
        "1",
        "--rounds",
        "1",
        "--warmup",
        "1",
        "--round-seconds",
        "0",
    ];
    assert_ok(&saliency(&s.0, &args));
    assert!(
        entries(&s.0).is_empty(),
        "bench writes no files: {:?}",
        entries(&s.0)
    );
}
