//! The study keys its steps (issue 19, item 2): `study.json` records profile, seed, data and
//! version; a rerun with another key is refused unless `--overwrite` (which starts over), and a
//! rerun with the same key reuses every step and reports its original time.

mod support;

use support::*;

/// The step times in the report's "Run facts" table: (step, seconds, note).
fn step_rows(md: &str) -> Vec<(String, String, String)> {
    let facts = &md[md.find("## Run facts").expect("a Run facts section")..];
    facts
        .lines()
        .filter(|l| l.starts_with("| fashion-") || l.starts_with("| flowers"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (
                cells[0].to_string(),
                cells[1].to_string(),
                cells[2].to_string(),
            )
        })
        .collect()
}

#[test]
fn a_rerun_with_another_key_is_refused_and_a_same_key_rerun_keeps_the_timings() {
    let s = Scratch::new("study-key");
    let data = env!("SALIENCY_TEST_DATA");
    let study = |extra: &[&str]| {
        let mut args = vec![
            "study",
            "--profile",
            "tiny",
            "--out",
            "out",
            "--data-dir",
            data,
        ];
        args.extend(["--no-download", "--threads", "1"]);
        args.extend_from_slice(extra);
        saliency(&s.0, &args)
    };
    assert_ok(&study(&[]));
    let out = s.join("out");
    let key: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("study.json")).unwrap()).unwrap();
    assert_eq!(key["profile"], "tiny");
    assert_eq!(key["seed"], 0);
    assert_eq!(key["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        key["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["set"] == "fashion-mnist"),
        "{key}"
    );
    let first = std::fs::read_to_string(out.join("report.md")).unwrap();
    let rows = step_rows(&first);
    assert!(rows.len() >= 5, "{rows:?}");
    assert!(rows.iter().all(|(_, _, note)| note.is_empty()), "{rows:?}");
    let deep_step = std::fs::read(out.join("steps/fashion-deep.json")).unwrap();

    // Another seed: refused, naming the difference; nothing is changed.
    let stderr = assert_refused(
        &study(&["--seed", "7"]),
        &[
            "--out out",
            "another key",
            "seed: saved 0, requested 7",
            "--overwrite",
        ],
    );
    assert!(!stderr.contains("skipped"), "{stderr}");
    assert_eq!(
        std::fs::read(out.join("steps/fashion-deep.json")).unwrap(),
        deep_step
    );
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        first
    );
    assert!(!out.join(".saliency.lock").exists());

    // The same key: every step reused, each with the seconds it took the first time.
    let stderr = assert_ok(&study(&[]));
    assert!(stderr.contains("done in an earlier run"), "{stderr}");
    let again = std::fs::read_to_string(out.join("report.md")).unwrap();
    let rerun_rows = step_rows(&again);
    assert_eq!(rerun_rows.len(), rows.len());
    for ((n0, t0, _), (n1, t1, note)) in rows.iter().zip(&rerun_rows) {
        assert_eq!((n0, t0), (n1, t1), "the rerun keeps the original time");
        assert!(note.contains("done in an earlier run"), "{note}");
    }

    // --overwrite starts over with the new key.
    let stderr = assert_ok(&study(&["--seed", "7", "--overwrite"]));
    assert!(
        stderr.contains("deleting the earlier study's results"),
        "{stderr}"
    );
    assert!(!stderr.contains("done in an earlier run"), "{stderr}");
    let key: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("study.json")).unwrap()).unwrap();
    assert_eq!(key["seed"], 7);
    assert!(std::fs::read_to_string(out.join("report.md"))
        .unwrap()
        .contains("| seed | 7 |"));
}
