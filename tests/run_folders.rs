//! A run folder belongs to one run (issue 19, items 1, 3, 5 and 6): a second writer is refused
//! while the first holds the lock and takes over the lock of a dead one; `train` into a folder
//! holding a run needs `--resume` or `--overwrite`; `--resume` names every difference in data,
//! classes, split and outputs; a resume with nothing to train writes nothing; a model without a
//! state says how to start again.

mod support;

use std::time::{Duration, Instant};

use support::*;

fn read(p: &std::path::Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over() {
    let s = Scratch::new("lock");
    write_fashion(&s.0);
    let out = s.join("run");
    let mut first = command(&s.0, &train_args(&s.0, &out, &["--epochs", "100000"]))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = out.join(".saliency.lock");
    let started = Instant::now();
    while !lock.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no lock file appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = saliency(
        &s.0,
        &train_args(&s.0, &out, &["--resume", "--epochs", "100000"]),
    );
    assert_refused(
        &second,
        &[
            &out.display().to_string(),
            &format!("another saliency process (PID {})", first.id()),
            "wait for it to finish",
        ],
    );
    first.kill().unwrap();
    // Reaped, so its PID is really gone (a zombie still answers signal 0).
    first.wait().unwrap();
    assert!(lock.exists(), "a killed writer leaves its lock");
    let third = saliency(&s.0, &train_args(&s.0, &out, &["--overwrite"]));
    let stderr = assert_ok(&third);
    assert!(stderr.contains("which is gone; taking it over"), "{stderr}");
    assert!(!lock.exists(), "the lock is removed when the command ends");
    let names = entries(&out);
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
    let config = String::from_utf8(read(&out.join("config.json"))).unwrap();
    assert!(config.contains("\"epochs\": 1"), "{config}");
}

#[test]
fn a_folder_holding_a_run_needs_resume_or_overwrite_and_an_idle_resume_writes_nothing() {
    let s = Scratch::new("finished");
    write_fashion(&s.0);
    let out = s.join("run");
    assert_ok(&saliency(&s.0, &train_args(&s.0, &out, &["--epochs", "2"])));
    let files = [
        "model.safetensors",
        "state.safetensors",
        "config.json",
        "metrics.jsonl",
    ];
    let before: Vec<Vec<u8>> = files.iter().map(|f| read(&out.join(f))).collect();
    let unchanged = |what: &str| {
        for (f, b) in files.iter().zip(&before) {
            assert_eq!(&read(&out.join(f)), b, "{what} changed {f}");
        }
        assert_eq!(
            entries(&out),
            [
                "config.json",
                "metrics.jsonl",
                "model.safetensors",
                "state.safetensors"
            ]
        );
    };

    let run = saliency(&s.0, &train_args(&s.0, &out, &["--seed", "5"]));
    assert_refused(
        &run,
        &[
            &out.display().to_string(),
            "already holds a finished run (2 of 2 epochs)",
            "--resume",
            "--overwrite",
        ],
    );
    unchanged("a refused new run");

    // Fewer epochs than done: refused, and nothing claims to have been written.
    let run = saliency(&s.0, &train_args(&s.0, &out, &["--resume"]));
    let stderr = assert_refused(
        &run,
        &[
            "--epochs 1",
            "has already trained 2 epoch(s)",
            "--epochs 3 or more",
            "nothing was written",
        ],
    );
    assert!(!stderr.contains("wrote"), "{stderr}");
    unchanged("--epochs 1 --resume");

    // With --force, or with the epochs already done: nothing to train, nothing written.
    for extra in [
        &["--resume", "--force"][..],
        &["--resume", "--epochs", "2"][..],
    ] {
        let run = saliency(&s.0, &train_args(&s.0, &out, extra));
        let stderr = assert_ok(&run);
        assert!(
            stderr.contains("nothing to train; nothing was written"),
            "{stderr}"
        );
        assert!(!stderr.contains("wrote"), "{stderr}");
        unchanged("an idle resume");
    }

    // --overwrite whose data fails to load keeps the old run: it is cleared only once the new
    // one can start.
    let gone = s.join("no-data");
    let run = saliency(&s.0, &train_args(&gone, &out, &["--overwrite"]));
    assert_refused(&run, &["not found"]);
    unchanged("an --overwrite whose data is missing");

    // --overwrite starts over: one epoch, one metrics line, the new seed.
    assert_ok(&saliency(
        &s.0,
        &train_args(&s.0, &out, &["--overwrite", "--seed", "5"]),
    ));
    let metrics = String::from_utf8(read(&out.join("metrics.jsonl"))).unwrap();
    assert_eq!(metrics.lines().count(), 1, "{metrics}");
    let config = String::from_utf8(read(&out.join("config.json"))).unwrap();
    assert!(
        config.contains("\"seed\": 5") && config.contains("\"epochs\": 1"),
        "{config}"
    );

    // --resume and --overwrite together make no sense.
    let run = saliency(&s.0, &train_args(&s.0, &out, &["--resume", "--overwrite"]));
    assert_refused(&run, &["--resume", "--overwrite", "cannot be used with"]);
}

#[test]
fn resume_names_changed_classes_split_data_and_outputs() {
    let s = Scratch::new("resume-diff");
    write_flowers(&s.0, &["a", "b", "c"], 6);
    let out = s.join("run");
    // The first run's options; each case below changes one (or adds an output).
    let base = [
        ("--data", "flowers"),
        ("--classes", "a,b"),
        ("--limit-train", "4"),
        ("--limit-test", "2"),
        ("--batch-size", "4"),
    ];
    let with = |change: &[&'static str]| -> Vec<&'static str> {
        let mut args: Vec<&str> = Vec::new();
        for (flag, value) in base {
            let replaced = change.iter().position(|c| *c == flag);
            args.extend([flag, replaced.map_or(value, |i| change[i + 1])]);
        }
        for pair in change.chunks(2) {
            if !base.iter().any(|(flag, _)| *flag == pair[0]) {
                args.extend_from_slice(pair);
            }
        }
        args
    };
    assert_ok(&saliency(&s.0, &train_args(&s.0, &out, &with(&[]))));
    let state = read(&out.join("state.safetensors"));
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--classes", "b,a"],
            &["classes (--classes): saved a,b, requested b,a"],
        ),
        (
            &["--classes", "a,c"],
            &["classes (--classes): saved a,b, requested a,c"],
        ),
        (
            &["--test-fraction", "0.4"],
            &["test fraction (--test-fraction): saved 0.2, requested 0.4"],
        ),
        (
            &["--limit-train", "3"],
            &["training images: saved 4, requested 3"],
        ),
        (
            &["--integrate-gradients", ""],
            &[
                "--integrate-gradients: the sum covers every step",
                "after 1 epoch(s)",
            ],
        ),
        (
            &["--movie", "movie"],
            &["--movie: the attribution movie covers every step"],
        ),
    ];
    for (change, needles) in cases {
        let mut extra = with(change);
        extra.retain(|a| !a.is_empty());
        extra.extend_from_slice(&["--resume", "--epochs", "2"]);
        let run = saliency(&s.0, &train_args(&s.0, &out, &extra));
        let mut all = vec!["--resume", "different configuration", "--force"];
        all.extend_from_slice(needles);
        assert_refused(&run, &all);
        assert_eq!(
            read(&out.join("state.safetensors")),
            state,
            "{change:?} changed the state"
        );
        assert!(
            !s.join("movie").exists(),
            "a refused resume made the movie folder"
        );
    }
    // Another data set is another configuration.
    write_fashion(&s.0);
    let run = saliency(
        &s.0,
        &train_args(&s.0, &out, &["--resume", "--epochs", "2"]),
    );
    assert_refused(
        &run,
        &["dataset: saved \"flowers\", requested \"fashion-mnist\""],
    );
    assert_eq!(read(&out.join("state.safetensors")), state);
}

#[test]
fn a_model_without_a_state_cannot_be_resumed_and_says_how_to_start_again() {
    let s = Scratch::new("no-state");
    write_fashion(&s.0);
    let out = s.join("run");
    assert_ok(&saliency(&s.0, &train_args(&s.0, &out, &[])));
    std::fs::remove_file(out.join("state.safetensors")).unwrap();
    let run = saliency(
        &s.0,
        &train_args(&s.0, &out, &["--resume", "--epochs", "2"]),
    );
    assert_refused(
        &run,
        &[
            &out.display().to_string(),
            "cannot be resumed: there is no state.safetensors",
            "start it again with --overwrite instead of --resume",
        ],
    );
    let run = saliency(&s.0, &train_args(&s.0, &out, &[]));
    assert_refused(
        &run,
        &[
            "never completed a checkpoint",
            "model.safetensors",
            "--overwrite",
        ],
    );
    assert_ok(&saliency(&s.0, &train_args(&s.0, &out, &["--overwrite"])));
    assert!(out.join("state.safetensors").is_file());

    // An empty or missing folder: nothing to resume, and no folder is left behind.
    let none = s.join("none");
    let run = saliency(&s.0, &train_args(&s.0, &none, &["--resume"]));
    assert_refused(
        &run,
        &["--resume", "holds no run to resume", "without --resume"],
    );
    assert!(!none.exists(), "a refused resume leaves no folder");
}

#[test]
fn the_movie_is_written_whole_or_not_at_all() {
    let s = Scratch::new("movie");
    write_fashion(&s.0);
    let out = s.join("run");
    let movie = s.join("movie");
    let args = ["--movie", "movie", "--movie-png", "--movie-every", "2"];
    // A run that fails in its first epoch leaves neither a movie, nor frames, nor a stage.
    let mut failing = args.to_vec();
    failing.extend(["--lr", "1e30"]);
    assert_refused(
        &saliency(&s.0, &train_args(&s.0, &out, &failing)),
        &["is not finite"],
    );
    assert!(!movie.exists() && !out.exists());
    assert_eq!(
        entries(&s.0),
        ["fashion-mnist"],
        "nothing is left beside the data"
    );
    // A completed run moves the whole movie in: the GIF and every frame (steps 0, 2 and 4).
    assert_ok(&saliency(&s.0, &train_args(&s.0, &out, &args)));
    assert!(movie.join("attribution.gif").is_file());
    assert_eq!(
        entries(&movie.join("frames")),
        ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    );
    assert_eq!(entries(&s.0), ["fashion-mnist", "movie", "run"]);
}

/// The counters are metadata outside the checksum: a step count that does not match the epochs
/// done (here 2^64 - 1, which used to wrap silently) is refused.
#[test]
fn a_state_whose_step_count_does_not_match_its_epochs_is_refused() {
    let s = Scratch::new("bad-step");
    write_fashion(&s.0);
    let out = s.join("run");
    assert_ok(&saliency(&s.0, &train_args(&s.0, &out, &[])));
    let state = out.join("state.safetensors");
    let mut ckpt = saliency::checkpoint::load(&state).unwrap();
    ckpt.metadata.insert("step".into(), u64::MAX.to_string());
    saliency::checkpoint::save(&state, &ckpt).unwrap();
    let before = read(&state);
    let run = saliency(
        &s.0,
        &train_args(&s.0, &out, &["--resume", "--epochs", "2"]),
    );
    assert_refused(
        &run,
        &[
            &state.display().to_string(),
            "step 18446744073709551615 after 1 epoch(s)",
            "4 minibatches make 4 steps",
            "--overwrite",
        ],
    );
    assert_eq!(read(&state), before);
}
