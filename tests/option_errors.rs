//! Unclear errors (issue 19, item 11): negative numbers name their option, an IDX file with no
//! images names the file, and an error's cause is said once.

mod support;

use support::*;

#[test]
fn negative_numbers_name_their_option() {
    let s = Scratch::new("negative");
    write_fashion(&s.0);
    let out = s.join("run");
    let cases: &[(&[&str], &[&str])] = &[
        (&["--batch-size", "-1"], &["'-1'", "--batch-size"]),
        (&["--epochs", "-1"], &["'-1'", "--epochs"]),
        (&["--threads", "-2"], &["'-2'", "--threads"]),
        (
            &["--lr", "-1"],
            &["--lr: expected a positive finite learning rate, found -1"],
        ),
        (
            &["--l2", "-1"],
            &["--l2: expected a non-negative finite factor, found -1"],
        ),
        (&["--limit-train", "-5"], &["'-5'", "--limit-train"]),
    ];
    for (extra, needles) in cases {
        let stderr = assert_refused(&saliency(&s.0, &train_args(&s.0, &out, extra)), needles);
        assert!(
            !stderr.contains("unexpected argument"),
            "{extra:?}: {stderr}"
        );
        assert!(!out.exists());
    }
    let stderr = assert_refused(
        &saliency(
            &s.0,
            &["bench", "--workload", "infer", "--batch-size", "-1"],
        ),
        &["'-1'", "--batch-size"],
    );
    assert!(!stderr.contains("unexpected argument"), "{stderr}");
}

#[test]
fn an_idx_file_with_no_images_names_the_file() {
    let s = Scratch::new("idx-zero");
    write_fashion(&s.0);
    let images = s.join("fashion-mnist/train-images-idx3-ubyte");
    let labels = s.join("fashion-mnist/train-labels-idx1-ubyte");
    std::fs::write(
        &images,
        saliency::data::idx::encode_idx_u8(&[0, 28, 28], &[]),
    )
    .unwrap();
    std::fs::write(&labels, saliency::data::idx::encode_idx_u8(&[0], &[])).unwrap();
    let out = s.join("run");
    let stderr = assert_refused(
        &saliency(&s.0, &train_args(&s.0, &out, &[])),
        &[
            &images.display().to_string(),
            "image count",
            "at least 1 image",
            "0",
        ],
    );
    assert!(!stderr.contains("no training images"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn a_write_error_says_its_cause_once() {
    let s = Scratch::new("once");
    write_fashion(&s.0);
    let ckpt = s.join("model.safetensors");
    write_checkpoint(&ckpt, "fashion-mnist", [1, 28, 28], &fashion_classes());
    // A folder where the picture should go: the write fails (also for root, unlike permissions).
    let out = s.join("attr");
    std::fs::create_dir_all(out.join("attributions.png")).unwrap();
    let args = [
        "attribute",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--indices",
        "0",
        "--data-dir",
        s.0.to_str().unwrap(),
        "--no-download",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    let stderr = assert_refused(&saliency(&s.0, &args), &["attributions.png", "os error"]);
    let error_line = stderr.lines().find(|l| l.starts_with("error:")).unwrap();
    assert_eq!(error_line.matches("os error").count(), 1, "{error_line}");
    // The results were staged beside --out; the failed move leaves neither stage nor results.
    assert!(
        !entries(&s.0).iter().any(|n| n.contains(".tmp-")),
        "{:?}",
        entries(&s.0)
    );
    assert_eq!(entries(&out), ["attributions.png"]);
    assert!(out.join("attributions.png").is_dir());
}

/// A folder where a data file belongs used to read as "not found", start a download and leave
/// an empty folder; now it is named.
#[test]
fn a_folder_where_a_data_file_belongs_is_named() {
    let s = Scratch::new("dir-as-file");
    write_fashion(&s.0);
    let images = s.join("fashion-mnist/t10k-images-idx3-ubyte");
    std::fs::remove_file(&images).unwrap();
    std::fs::create_dir_all(&images).unwrap();
    let out = s.join("run");
    let mut args = train_args(&s.0, &out, &[]);
    // Downloads allowed: the refusal must come before any attempt.
    args.retain(|a| a != "--no-download");
    assert_refused(
        &saliency(&s.0, &args),
        &[
            &images.display().to_string(),
            "a Fashion-MNIST IDX file",
            "found a folder",
        ],
    );
    assert!(!out.exists());
    assert_eq!(entries(&s.0), ["fashion-mnist"]);
}
