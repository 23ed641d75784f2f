//! End-to-end tests of the README's commands, run as a new user would: the `saliency` binary in
//! an empty folder, with no `SALIENCY_DATA`, no `./data` and no network, so the program must find
//! the sample shipped in `data/sample` by itself.
//!
//! Built as a test of the `saliency` package (see its Cargo.toml) so that cargo hands it the
//! binary's path; it lives here, at the top of the workspace, with the other end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_saliency");

/// An empty folder, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("saliency-e2e-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary in `cwd` with no data variable and a download address nobody answers.
fn run(cwd: &Path, args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("SALIENCY_DATA")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the saliency binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "saliency {} failed ({}):\n{stderr}",
        args.join(" "),
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    out
}

/// Every `src="..."` and `href="..."` of `html` that is a relative path.
fn local_links(html: &str) -> Vec<String> {
    let mut links = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for piece in html.split(attr).skip(1) {
            let target = &piece[..piece.find('"').unwrap()];
            if !target.contains("://") && !target.starts_with('#') {
                links.push(target.to_string());
            }
        }
    }
    links
}

/// `cargo run --release -- study`: the quick profile on the shipped sample writes a complete
/// report whose every link resolves, and says which data each section ran on.
#[test]
fn study_runs_on_the_shipped_sample_in_an_empty_folder() {
    let dir = Scratch::new("study");
    let out = run(&dir.0, &["study"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = dir.0.join("out/study");
    let md = std::fs::read_to_string(report.join("report.md")).expect("report.md written");
    let html = std::fs::read_to_string(report.join("report.html")).expect("report.html written");
    assert!(md.contains("Profile 'quick'"), "{md}");
    // The report's first section names the data: the sample, for both halves.
    let data = &md[md.find("## Data").expect("a Data section")..md.find("## Study vs").unwrap()];
    assert!(
        data.contains("| Fashion-MNIST | sample |") && data.contains("| sample | "),
        "{data}"
    );
    assert!(
        data.contains("10000 training and 2000 test images"),
        "{data}"
    );
    assert!(data.contains("200 photos"), "{data}");
    assert!(
        !md.contains("Skipped for lack of data"),
        "nothing may be skipped: {md}"
    );
    for title in [
        "Fashion-MNIST: training",
        "Fashion-MNIST: adversarial examples",
        "Flowers",
    ] {
        assert!(md.contains(&format!("## {title}")), "report lacks {title}");
    }
    let links = local_links(&html);
    assert!(links.len() >= 25, "only {} links", links.len());
    for l in &links {
        assert!(
            report.join(l).is_file(),
            "report.html links to {l}, which is missing"
        );
    }
    assert!(stderr.contains("wrote out/study/report.md"), "{stderr}");
    // Standard error is a pipe here: the progress bar stays hidden and the log gets plain lines,
    // one per step start and end, with each epoch's metrics.
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "a bar was drawn into a pipe: {stderr:?}"
    );
    for line in [
        "[fashion-deep] ...",
        "[fashion-deep] done in ",
        "  fashion-deep epoch 1: train acc ",
    ] {
        assert!(stderr.contains(line), "no line {line:?} in {stderr}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        json["simd"].as_str(),
        md.split("| SIMD tier | ")
            .nth(1)
            .and_then(|r| r.split(" |").next()),
        "report.json and the report's run facts name the same SIMD tier"
    );
    let rows = json["comparison"].as_array().expect("comparison rows");
    assert!(rows.len() >= 8, "{json}");
    for row in rows {
        let v = row["verdict"].as_str().unwrap();
        assert!(
            [
                "reproduced",
                "reproduced_with_a_stated_difference",
                "differs",
                "not_run"
            ]
            .contains(&v),
            "{row}"
        );
        assert!(
            md.contains(row["claim"].as_str().unwrap()),
            "report.md lacks {row}"
        );
    }
    // Nothing was created beside the output: no empty data folder from a download attempt.
    let entries: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries, ["out"]);
}

/// The README's other commands, in a fresh folder with no data: each finds the sample, and each
/// result file appears. Training runs are shortened (`--epochs 1`) to keep the test suite quick;
/// the deep run uses the whole 10,000-image sample (an earlier `--limit-train 2000`, 125 steps,
/// left `deep` at 16 %, below the check's 30 %), and `--no-download` keeps the test off the network (offline, a failed download
/// falls back to the sample as well); the options are the README's otherwise.
#[test]
fn readme_cli_commands_work_without_data() {
    let dir = Scratch::new("cli");
    let d = &dir.0;
    let models = run(d, &["models"]);
    let text = String::from_utf8_lossy(&models.stdout);
    assert!(
        text.contains("179,728") || text.contains("179728"),
        "{text}"
    );

    let train = run(
        d,
        &[
            "train",
            "--model",
            "deep",
            "--epochs",
            "1",
            "--out",
            "runs/deep",
            "--no-download",
        ],
    );
    let stderr = String::from_utf8_lossy(&train.stderr);
    assert!(
        stderr.contains("sample"),
        "the run must say it uses the sample: {stderr}"
    );
    assert!(d.join("runs/deep/model.safetensors").is_file());

    let eval = run(
        d,
        &[
            "eval",
            "--checkpoint",
            "runs/deep/model.safetensors",
            "--json",
            "--no-download",
        ],
    );
    let json: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap_or_else(|e| {
        panic!(
            "eval --json is not JSON ({e}): {}",
            String::from_utf8_lossy(&eval.stdout)
        )
    });
    let acc = json["accuracy"].as_f64().expect("accuracy in eval --json");
    assert!(
        acc > 0.3 && acc <= 1.0,
        "accuracy {acc} after one short epoch"
    );

    run(
        d,
        &[
            "train",
            "--data",
            "flowers",
            "--classes",
            "roses,tulips",
            "--model",
            "deep",
            "--epochs",
            "1",
            "--out",
            "runs/pair",
            "--no-download",
        ],
    );
    assert!(d.join("runs/pair/model.safetensors").is_file());

    run(
        d,
        &[
            "attribute",
            "--checkpoint",
            "runs/deep/model.safetensors",
            "--method",
            "integrated-gradients",
            "--out",
            "out/ig",
            "--no-download",
        ],
    );
    assert!(std::fs::read_dir(d.join("out/ig")).unwrap().count() > 0);
    run(
        d,
        &[
            "adversary",
            "--checkpoint",
            "runs/deep/model.safetensors",
            "--method",
            "fgsm,random-sign",
            "--epsilons",
            "0.01,0.1",
            "--out",
            "out/adv",
            "--no-download",
        ],
    );
    assert!(d.join("out/adv/summary.json").is_file());
    // No empty folder left by a download attempt, no data folder created at all.
    assert!(!d.join("data").exists());
}
