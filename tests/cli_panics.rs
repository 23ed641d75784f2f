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

/// Item 9: 10,000 tiny flower files with `--limit-train 2` used to be decoded and resized to
/// 256 x 256 up front (7.9 GB, an abort under a memory limit). The listing and the seeded split
/// now come from the file names alone and only the images the split and the limits select are
/// opened: here every other file is not an image at all, and the run still trains. Without
/// `--limit-test` a corrupt file is selected, and strict loading names it when the data is opened,
/// before training starts.
#[test]
fn a_large_folder_with_small_limits_decodes_only_the_selected_files() {
    use saliency::data::split::{interleave_by_class, train_test_split};
    let s = Scratch::new("limits-decode");
    let per_class = 1000;
    let classes = ["daisy", "roses"];
    // Load order: classes in order, files sorted by name within each.
    let labels: Vec<u32> = (0..2 * per_class).map(|i| (i / per_class) as u32).collect();
    let (train, test) = train_test_split(&labels, 0.2, 0).unwrap();
    let test = interleave_by_class(&test, &labels);
    let selected: Vec<usize> = train[..2].iter().chain(&test[..2]).copied().collect();
    let path_of = |i: usize| {
        s.0.join(format!(
            "flowers/{}/{:04}.png",
            classes[i / per_class],
            i % per_class
        ))
    };
    for class in classes {
        std::fs::create_dir_all(s.join(&format!("flowers/{class}"))).unwrap();
    }
    for i in 0..2 * per_class {
        let bytes = if selected.contains(&i) {
            png(4, i as u32)
        } else {
            b"not an image".to_vec()
        };
        std::fs::write(path_of(i), bytes).unwrap();
    }
    let out = s.join("run");
    let limits = [
        "--data",
        "flowers",
        "--limit-train",
        "2",
        "--limit-test",
        "2",
    ];
    let stderr = assert_ok(&saliency(&s.0, &train_args(&s.0, &out, &limits)));
    assert!(stderr.contains("2 training / 2 test images"), "{stderr}");
    assert!(out.join("model.safetensors").is_file());

    // The first test image after the two selected ones is one of the corrupt files.
    let first_corrupt = path_of(test[2]);
    let out = s.join("run-all-tests");
    let args = ["--data", "flowers", "--limit-train", "2"];
    let stderr = assert_refused(
        &saliency(&s.0, &train_args(&s.0, &out, &args)),
        &[&first_corrupt.display().to_string(), "not an image"],
    );
    assert!(!out.exists(), "a refused run leaves no folder: {stderr}");
}

/// Item 9, a folder used whole: 4,000 4x4 PNGs (3,600 in the test split) used to be resized to
/// 256 x 256 floats all at once, 2.8 GB for the split alone, refused beyond the memory available
/// and aborting under `ulimit -v`. Now each file is checked once and kept, while a cache of a
/// quarter of the available memory has room, as 8-bit pixels (a quarter of the floats, 708 MB
/// here); evaluation reads a batch at a time, decoding what the cache does not hold. The peak stays
/// well under the old allocation, and under a 600 MB address-space limit, where keeping every
/// image aborted the process, the cache holds what fits and the command succeeds.
#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux (/proc, sh's ulimit -v)"
)]
fn a_folder_of_thousands_of_tiny_images_is_read_in_bounded_memory() {
    let s = Scratch::new("tiny-whole");
    let ckpt = thousands_of_tiny_flowers(&s);
    let args = [
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data-dir",
        s.0.to_str().unwrap(),
        "--no-download",
        "--test-fraction",
        "0.9",
        "--limit",
        "20",
        "--threads",
        "1",
    ];
    let (out, peak) = run_measuring_peak(command(&s.0, &args));
    let stderr = assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(20 images)"), "{stdout}{stderr}");
    // What the whole split took as floats before: 3,600 images of 3 x 256 x 256.
    let dense: u64 = 3600 * 3 * 256 * 256 * 4;
    let peak = peak.expect("VmHWM sampled from /proc");
    eprintln!("peak resident memory: {peak} bytes");
    assert!(
        peak < dense / 2,
        "peak resident memory {peak} bytes, the floats of the split alone {dense} bytes"
    );

    // Under an address-space limit the cache takes a quarter of what is left of it.
    let limited = under_address_limit(&args, &s.0);
    let (out, _) = run_measuring_peak(limited);
    let stderr = assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(20 images)"), "{stdout}{stderr}");
}

/// 4,000 4x4 PNGs in `daisy/` and `roses/` under `s/flowers`, and an untrained `deep` checkpoint
/// for them at 256 x 256; returns the checkpoint's path.
fn thousands_of_tiny_flowers(s: &Scratch) -> std::path::PathBuf {
    let classes = ["daisy", "roses"];
    for (k, class) in classes.iter().enumerate() {
        let dir = s.join(&format!("flowers/{class}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..2000u32 {
            std::fs::write(dir.join(format!("{i:04}.png")), png(4, 2000 * k as u32 + i)).unwrap();
        }
    }
    let ckpt = s.join("model.safetensors");
    write_checkpoint(&ckpt, "flowers", [3, 256, 256], &classes);
    ckpt
}

/// `adversary` decoded the whole test split as floats up front (2.8 GB for these 3,600 tiny
/// images) and, beyond the memory available, was refused with advice to use `--limit-train` and
/// `--limit-test`, options it does not have. It now opens the split as `eval` does and attacks it
/// a chunk at a time: under a 600 MB address-space limit it runs, with no such advice.
#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux (/proc, sh's ulimit -v)"
)]
fn adversary_attacks_a_folder_of_thousands_of_tiny_images_in_bounded_memory() {
    let s = Scratch::new("tiny-adversary");
    let ckpt = thousands_of_tiny_flowers(&s);
    let out = s.join("adv");
    let args = [
        "adversary",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data-dir",
        s.0.to_str().unwrap(),
        "--no-download",
        "--test-fraction",
        "0.9",
        "--method",
        "fgsm",
        "--epsilons",
        "0.01",
        "--limit",
        "20",
        "--indices",
        "0,3599",
        "--threads",
        "1",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    let limited = under_address_limit(&args, &s.0);
    let (run, peak) = run_measuring_peak(limited);
    let stderr = assert_ok(&run);
    assert!(
        !stderr.contains("--limit-t"),
        "advice naming options adversary lacks: {stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["dataset"], "flowers/test", "{json}");
    assert_eq!(json["results"][0]["n"], 20, "{json}");
    // The last image of the split is drawn (--indices 0,3599): the whole split was opened.
    assert!(out.join("triptych_fgsm.png").is_file());
    let dense: u64 = 3600 * 3 * 256 * 256 * 4;
    let peak = peak.expect("VmHWM sampled from /proc");
    eprintln!("peak resident memory: {peak} bytes");
    assert!(
        peak < dense / 4,
        "peak resident memory {peak} bytes, the floats of the split alone {dense} bytes"
    );
}

/// `saliency args` in `dir` under `ulimit -v 600000` (600 MB of address space), with no data
/// folder set and no backtraces.
fn under_address_limit(args: &[&str], dir: &std::path::Path) -> std::process::Command {
    let mut limited = std::process::Command::new("sh");
    limited
        .arg("-c")
        .arg("ulimit -v 600000 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .env_remove("SALIENCY_DATA");
    limited
}

/// Runs `command`, sampling its peak resident memory (Linux `VmHWM`, `None` elsewhere)
/// until it exits. The mark only rises, so the last sample before the exit is close to the peak.
fn run_measuring_peak(mut command: std::process::Command) -> (std::process::Output, Option<u64>) {
    use std::process::Stdio;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the saliency binary runs");
    let status = format!("/proc/{}/status", child.id());
    let mut peak = None;
    while child.try_wait().unwrap().is_none() {
        let kib = std::fs::read_to_string(&status).ok().and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        });
        if let Some(kib) = kib {
            peak = Some(peak.unwrap_or(0).max(kib * 1024));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), peak)
}
