//! Wrong answers that used to exit 0 (issue 19, item 10): the data set or classes of a
//! checkpoint overridden silently, `--lenient` ignored for image folders, a single-class folder
//! trained to a meaningless 100 %, and `--threads 10000` stalling.

mod support;

use support::*;

/// A flowers checkpoint for classes `roses,tulips`, and flower folders with both classes and a
/// Fashion-MNIST copy beside them.
fn flowers_setup(tag: &str) -> (Scratch, String) {
    let s = Scratch::new(tag);
    write_flowers(&s.0, &["roses", "tulips"], 4);
    write_fashion(&s.0);
    let ckpt = s.join("model.safetensors");
    write_checkpoint(&ckpt, "flowers", [3, 256, 256], &["roses", "tulips"]);
    let ckpt = ckpt.display().to_string();
    (s, ckpt)
}

fn common<'a>(s: &'a Scratch, ckpt: &'a str) -> Vec<&'a str> {
    vec![
        "--checkpoint",
        ckpt,
        "--data-dir",
        s.0.to_str().unwrap(),
        "--no-download",
        "--threads",
        "1",
    ]
}

#[test]
fn eval_on_another_data_set_than_the_checkpoints_is_refused() {
    let (s, ckpt) = flowers_setup("eval-data");
    let mut args = vec!["eval"];
    args.extend(common(&s, &ckpt));
    args.extend(["--data", "fashion-mnist"]);
    assert_refused(
        &saliency(&s.0, &args),
        &[
            "--data fashion-mnist",
            &ckpt,
            "was trained on flowers",
            "omit --data",
        ],
    );
    // Without --data, the checkpoint's own data set is used.
    let mut args = vec!["eval"];
    args.extend(common(&s, &ckpt));
    let out = saliency(&s.0, &args);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("deep on flowers"));
}

#[test]
fn attribute_and_adversary_with_classes_in_another_order_are_refused() {
    let (s, ckpt) = flowers_setup("swapped");
    for command in ["attribute", "adversary", "eval"] {
        let out = s.join(&format!("{command}-out"));
        let mut args = vec![command];
        args.extend(common(&s, &ckpt));
        args.extend(["--classes", "tulips,roses"]);
        if command != "eval" {
            args.extend(["--indices", "0", "--out", out.to_str().unwrap()]);
        }
        assert_refused(
            &saliency(&s.0, &args),
            &[
                "--classes tulips,roses",
                "trained on the classes roses,tulips in this order",
            ],
        );
        assert!(!out.exists());
    }
    // The checkpoint's own order is accepted.
    let out = s.join("attribute-ok");
    let mut args = vec!["attribute"];
    args.extend(common(&s, &ckpt));
    args.extend([
        "--classes",
        "roses,tulips",
        "--indices",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&saliency(&s.0, &args));
    assert!(out.join("attributions.safetensors").is_file());
}

#[test]
fn lenient_is_passed_on_for_image_folders() {
    let s = Scratch::new("lenient");
    let set = write_flowers(&s.0, &["a", "b"], 4);
    let bad = set.join("a/broken.png");
    std::fs::write(&bad, b"not a png at all").unwrap();
    let out = s.join("run");
    let base = [
        "--data",
        "flowers",
        "--limit-train",
        "2",
        "--limit-test",
        "2",
        "--batch-size",
        "2",
    ];
    assert_refused(
        &saliency(&s.0, &train_args(&s.0, &out, &base)),
        &[&bad.display().to_string()],
    );
    assert!(!out.exists());
    let mut lenient = base.to_vec();
    lenient.push("--lenient");
    let stderr = assert_ok(&saliency(&s.0, &train_args(&s.0, &out, &lenient)));
    assert!(
        stderr.contains("--lenient: skipped 1 unreadable file(s)") && stderr.contains("broken.png"),
        "{stderr}"
    );
    assert!(out.join("model.safetensors").is_file());
}

#[test]
fn a_single_class_folder_is_refused_for_training() {
    let s = Scratch::new("one-class");
    write_flowers(&s.0, &["daisy"], 5);
    let out = s.join("run");
    let run = saliency(&s.0, &train_args(&s.0, &out, &["--data", "flowers"]));
    assert_refused(
        &run,
        &[
            "--data flowers",
            "at least 2 classes, found 1 (daisy)",
            "--classes",
        ],
    );
    assert!(!out.exists(), "a refused run leaves no folder");
}

/// One image per class: every image goes to training and the test split is empty, which eval
/// used to report as "(0 images): accuracy 0.00 %".
#[test]
fn a_split_without_test_images_is_refused() {
    let s = Scratch::new("one-image");
    write_flowers(&s.0, &["roses", "tulips"], 1);
    let out = s.join("run");
    let run = saliency(&s.0, &train_args(&s.0, &out, &["--data", "flowers"]));
    assert_refused(
        &run,
        &[
            "--data flowers",
            "the test split is empty",
            "at least 2 images",
        ],
    );
    assert!(!out.exists());
    let ckpt = s.join("model.safetensors");
    write_checkpoint(&ckpt, "flowers", [3, 256, 256], &["roses", "tulips"]);
    let args = [
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data-dir",
        s.0.to_str().unwrap(),
        "--no-download",
        "--threads",
        "1",
    ];
    assert_refused(
        &saliency(&s.0, &args),
        &[
            ckpt.to_str().unwrap(),
            "the test split of flowers/test is empty",
        ],
    );
}

#[test]
fn thousands_of_threads_are_refused_with_the_limit() {
    let s = Scratch::new("threads");
    write_fashion(&s.0);
    let out = s.join("run");
    let run = saliency(&s.0, &train_args(&s.0, &out, &["--threads", "10000"]));
    assert_refused(
        &run,
        &["--threads", "expected between 1 and 1024", "found 10000"],
    );
    assert!(!out.exists());
    let help = saliency(&s.0, &["train", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("1 to 1024"));
}

/// A file whose name is not UTF-8 used to be skipped without a word; now it is named.
#[test]
fn a_name_that_is_not_utf8_is_named_not_skipped() {
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::new("non-utf8");
    let set = write_flowers(&s.0, &["a", "b"], 3);
    let odd = set
        .join("a")
        .join(std::ffi::OsStr::from_bytes(b"r\xf6se.png"));
    std::fs::write(&odd, png(8, 99)).unwrap();
    let out = s.join("run");
    let run = saliency(&s.0, &train_args(&s.0, &out, &["--data", "flowers"]));
    assert_refused(
        &run,
        &[
            &set.join("a").display().to_string(),
            "a file or folder name in UTF-8",
        ],
    );
    assert!(!out.exists());
}
