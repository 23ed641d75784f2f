//! Items 17, 18, 23, 25: resuming with other settings, nonsense options, a non-finite loss, and
//! a run folder that cannot be written.

use super::*;

#[test]
fn item17_resume_with_a_different_configuration_needs_force() {
    let s = Scratch::new("resume");
    let data = s.join("data");
    write_fashion(&data);
    let out = s.join("run");
    assert_ok(&saliency(&s.0, &train_args(&data, &out, &[])));
    let state_before = std::fs::read(out.join("state.safetensors")).unwrap();

    // Another learning rate: refused, naming the setting, both values and --force.
    let run = saliency(
        &s.0,
        &train_args(&data, &out, &["--resume", "--epochs", "2", "--lr", "0.01"]),
    );
    assert_refused(
        &run,
        &[
            "--resume",
            &out.join("state.safetensors").display().to_string(),
            "different configuration",
            "optimizer.lr: saved 0.001, requested 0.01",
            "--force",
        ],
    );
    assert_eq!(
        std::fs::read(out.join("state.safetensors")).unwrap(),
        state_before,
        "a refused resume writes nothing"
    );

    // --force cannot turn a deep run into an alexnet one.
    let run = saliency(
        &s.0,
        &train_args(
            &data,
            &out,
            &["--resume", "--force", "--epochs", "2", "--model", "alexnet"],
        ),
    );
    assert_refused(
        &run,
        &[
            "--resume --force",
            "holds a deep network",
            "model: saved \"deep\", requested \"alexnet\"",
        ],
    );

    // With --force, another learning rate continues from epoch 1 and completes epoch 2.
    let run = saliency(
        &s.0,
        &train_args(
            &data,
            &out,
            &["--resume", "--force", "--epochs", "2", "--lr", "0.0005"],
        ),
    );
    let stderr = assert_ok(&run);
    assert!(
        stderr.contains("epoch   2:") && !stderr.contains("epoch   1:"),
        "{stderr}"
    );
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "{metrics}");

    // Without a state file there is nothing to resume (tests/run_folders.rs covers the rest).
    let empty = s.join("empty-run");
    let run = saliency(&s.0, &train_args(&data, &empty, &["--resume"]));
    assert_refused(
        &run,
        &[
            "--resume",
            &empty.display().to_string(),
            "holds no run to resume",
        ],
    );
}

#[test]
fn item18_nonsense_options_are_refused() {
    let s = Scratch::new("options");
    let data = s.join("data");
    write_fashion(&data);
    let out = s.join("run");
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--lr", "0"],
            &[
                "--lr",
                "expected a positive finite learning rate",
                "found 0",
            ],
        ),
        (&["--lr=-0.1"], &["--lr", "found -0.1"]),
        (&["--lr", "NaN"], &["--lr", "found NaN"]),
        (&["--lr", "inf"], &["--lr", "found inf"]),
        (&["--lr", "fast"], &["--lr", "fast"]),
        (
            &["--batch-size", "0"],
            &["--batch-size", "expected at least 1, found 0"],
        ),
        (
            &["--epochs", "0"],
            &["--epochs", "expected at least 1, found 0"],
        ),
        (
            &["--threads", "0"],
            &["--threads", "expected at least 1, found 0"],
        ),
        (
            &["--model", "resnet"],
            &["--model", "invalid value 'resnet'", "deep, alexnet, medium"],
        ),
        (
            &["--data", "cifar10"],
            &[
                "--data",
                "invalid value 'cifar10'",
                "fashion-mnist, flowers, flowers17",
            ],
        ),
        (
            &["--optimizer", "rmsprop"],
            &["--optimizer", "invalid value 'rmsprop'", "adam, sgd"],
        ),
        (
            &["--momentum", "1.5", "--optimizer", "sgd"],
            &["--momentum", "found 1.5"],
        ),
        (
            &["--decay", "0.1"],
            &["--decay applies to --optimizer sgd only"],
        ),
        (&["--l2=-1"], &["--l2", "found -1"]),
        (
            &["--lr-schedule", "3"],
            &["--lr-schedule", "expected EPOCH:LR", "found '3'"],
        ),
        (
            &["--lr-schedule", "2:0"],
            &["--lr-schedule", "expected positive learning rates"],
        ),
        (
            &["--limit-train", "0"],
            &["--limit-train", "expected at least 1, found 0"],
        ),
        (
            &["--test-fraction", "1.5"],
            &["--test-fraction", "found 1.5"],
        ),
        (
            &["--max-shift", "18446744073709551615"],
            &["--max-shift", "fewer pixels than the image side (28)"],
        ),
        (
            &["--validation", "64"],
            &["--validation", "between 1 and 63", "found 64"],
        ),
        (
            &["--classes", "a,b"],
            &["--classes and --gray apply to image folders"],
        ),
    ];
    for (extra, needles) in cases {
        let run = saliency(&s.0, &train_args(&data, &out, extra));
        let stderr = assert_refused(&run, needles);
        assert!(
            !out.exists(),
            "{extra:?} left an output folder; stderr:\n{stderr}"
        );
    }
    // Other subcommands check their options too.
    let ckpt = s.join("model.safetensors");
    write_good_checkpoint(&ckpt);
    let mut args = eval_args(&ckpt, &data);
    args.extend(["--limit".into(), "0".into()]);
    assert_refused(
        &saliency(&s.0, &args),
        &["--limit", "expected at least 1, found 0"],
    );
    let mut args = eval_args(&ckpt, &data);
    args[7] = "0".into();
    assert_refused(
        &saliency(&s.0, &args),
        &["--threads", "expected at least 1, found 0"],
    );
    assert_refused(
        &saliency(&s.0, &["models", "--model", "vgg"]),
        &["--model", "unknown model 'vgg'"],
    );
}

#[test]
fn item23_non_finite_loss_stops_and_keeps_the_last_good_checkpoint() {
    let s = Scratch::new("nan-loss");
    let data = s.join("data");
    write_fashion(&data);

    // From scratch with lr 1e30: stops in the first epoch, names the step and the layer, and
    // leaves no run folder at all (not even config.json: nothing may claim a run exists).
    let out = s.join("fresh");
    let run = saliency(&s.0, &train_args(&data, &out, &["--lr", "1e30"]));
    let stderr = assert_refused(
        &run,
        &[
            "training stopped at step",
            "(epoch 1, minibatch",
            "is not finite",
            "no checkpoint was written",
        ],
    );
    assert!(
        stderr.contains("the output of layer")
            || stderr.contains("the gradient of")
            || stderr.contains("parameter"),
        "the message names where the non-finite value appeared: {stderr}"
    );
    assert!(
        !out.exists(),
        "a run that never completed an epoch leaves no folder"
    );

    // After a good first epoch, a resumed run with lr 1e30 stops and leaves epoch 1's files.
    let out = s.join("resumed");
    assert_ok(&saliency(&s.0, &train_args(&data, &out, &[])));
    let model_before = std::fs::read(out.join("model.safetensors")).unwrap();
    let state_before = std::fs::read(out.join("state.safetensors")).unwrap();
    let run = saliency(
        &s.0,
        &train_args(
            &data,
            &out,
            &["--resume", "--force", "--epochs", "3", "--lr", "1e30"],
        ),
    );
    assert_refused(
        &run,
        &[
            "training stopped at step",
            "(epoch 2,",
            "is not finite",
            "as of epoch 1, left unchanged",
        ],
    );
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        model_before
    );
    assert_eq!(
        std::fs::read(out.join("state.safetensors")).unwrap(),
        state_before
    );
    assert!(temp_files(&out).is_empty(), "{:?}", temp_files(&out));
    // ... and that checkpoint still evaluates.
    assert_ok(&saliency(
        &s.0,
        &eval_args(&out.join("model.safetensors"), &data),
    ));
}

#[test]
fn item25_output_folder_that_cannot_be_written() {
    let s = Scratch::new("unwritable");
    let data = s.join("data");
    write_fashion(&data);
    // Tests run as root, for whom permission bits do not block writes; a path whose parent is a
    // regular file cannot be created by anyone.
    let file = s.join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let out = file.join("run");
    let run = saliency(&s.0, &train_args(&data, &out, &[]));
    assert_refused(
        &run,
        &[
            &out.display().to_string(),
            "cannot create the output folder",
            "Not a directory",
        ],
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a folder");
    // --out naming an existing regular file.
    let run = saliency(&s.0, &train_args(&data, &file, &[]));
    assert_refused(
        &run,
        &[
            &file.display().to_string(),
            "cannot create the output folder",
        ],
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a folder");
}
