//! What a script or an operator reads besides the CSVs, checked against the CSVs on the
//! shipped sample: summary.json's schema version, exit status, per-model verdicts and finding
//! severities; repush.txt; the human summary's next steps; `gc-plan --json` and `--out`.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use support::*;

const MODELS: [&str; 4] = [
    "distribution-2.8",
    "distribution-2.8-m",
    "distribution-3",
    "distribution-3-m",
];

/// The rows of a report CSV as records (header dropped).
fn rows(dir: &Path, file: &str) -> Vec<Vec<String>> {
    let text = report(dir, file);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn sample_scan(tmp: &Path) -> (std::path::PathBuf, std::path::PathBuf, Run) {
    let root = tmp.join("registry");
    copy_tree(&workspace().join("examples/registry"), &root);
    let out = tmp.join("report");
    let run = gc_audit(&[
        "scan",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    (root, out, run)
}

#[test]
fn summary_json_verdicts_and_severities_agree_with_the_csvs() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out, run) = sample_scan(tmp.path());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let summary: Value = serde_json::from_str(&report(&out, "summary.json")).unwrap();
    assert_eq!(summary["schema_version"], 2);
    assert_eq!(summary["exit_status"], 1);
    let unsafe_rows = rows(&out, "gc-unsafe.csv");
    for model in MODELS {
        let mine: Vec<&Vec<String>> = unsafe_rows.iter().filter(|r| r[0] == model).collect();
        let v = &summary["gc_models"][model];
        let deletions: Vec<_> = mine.iter().filter(|r| r[1] != "abort").collect();
        let images: BTreeSet<&str> = deletions
            .iter()
            .map(|r| r[6].split(' ').next().unwrap())
            .collect();
        let bytes: u64 = deletions
            .iter()
            .filter(|r| r[1] == "delete-blob")
            .map(|r| r[5].parse::<u64>().unwrap())
            .sum();
        let expected = if mine.iter().any(|r| r[1] == "abort") {
            "aborts"
        } else if deletions.is_empty() {
            "safe"
        } else {
            "unsafe"
        };
        assert_eq!(v["verdict"], expected, "{model}: {v}");
        assert_eq!(v["unsafe_deletions"], deletions.len() as u64, "{model}");
        assert_eq!(v["images_broken"], images.len() as u64, "{model}");
        assert_eq!(v["needed_bytes_deleted"], bytes, "{model}");
    }
    assert!(
        summary["gc_models"]["distribution-2.8-m"]["verdict"] == "unsafe",
        "the sample's tagged index loses more under -m"
    );
    let findings = rows(&out, "findings.csv");
    let by_severity = summary["findings_by_severity"].as_object().unwrap();
    let total: u64 = by_severity.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total, findings.len() as u64);
    // The sample's findings are the dangling `_layers` links 2.8's GC leaves: info.
    let dangling_links = findings
        .iter()
        .filter(|f| f[2] == "dangling-layer-link")
        .count() as u64;
    assert!(dangling_links > 0);
    assert!(by_severity["info"].as_u64().unwrap() >= dangling_links);
}

#[test]
fn repush_txt_lists_the_broken_tags_and_the_summary_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out, run) = sample_scan(tmp.path());
    let broken = rows(&out, "broken.csv");
    assert!(!broken.is_empty());
    let expected: String = broken
        .iter()
        .map(|b| format!("{}:{}\n", b[0], b[1]))
        .collect();
    assert_eq!(report(&out, "repush.txt"), expected);
    let text = &run.stdout;
    assert!(text.contains("\nnext steps:\n"), "{text}");
    assert!(text.contains("repush.txt"), "{text}");
    assert!(text.contains("gc-audit recover"), "{text}");
    assert!(
        text.contains("1 broken tag in repush.txt"),
        "singular for one tag: {text}"
    );
    // Each unsafe model is named with the models that are safe here.
    let summary: Value = serde_json::from_str(&report(&out, "summary.json")).unwrap();
    for model in MODELS {
        if summary["gc_models"][model]["verdict"] == "unsafe" {
            assert!(text.contains(&format!("do not run {model}:")), "{text}");
        }
    }
    let safe: Vec<&str> = MODELS
        .into_iter()
        .filter(|m| summary["gc_models"][*m]["verdict"] == "safe")
        .collect();
    let named = match safe.as_slice() {
        [] => None,
        [one] => Some(format!("{one} deletes nothing still needed")),
        [first @ .., last] => Some(format!(
            "{} and {last} delete nothing still needed",
            first.join(", ")
        )),
    };
    if let Some(named) = named {
        assert!(text.contains(&named), "{named:?} in {text}");
    }
    assert!(
        text.contains("findings.csv; "),
        "severities counted: {text}"
    );
}

#[test]
fn gc_plan_json_is_the_plan_and_matches_gc_unsafe_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, out, _) = sample_scan(tmp.path());
    let root = root.to_str().unwrap();
    let unsafe_rows = rows(&out, "gc-unsafe.csv");
    let summary: Value = serde_json::from_str(&report(&out, "summary.json")).unwrap();
    for model in MODELS {
        let run = gc_audit(&["gc-plan", root, "--model", model, "--json", "-q"]);
        let doc: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{model}: {e}\n{}", run.stdout));
        assert_eq!(doc["model"], model);
        assert_eq!(doc["exit_status"], run.code, "{model}");
        assert_eq!(doc["verdict"], summary["gc_models"][model]["verdict"]);
        let from_json: BTreeSet<Vec<String>> = doc["unsafe_deletions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                [
                    "model",
                    "action",
                    "repository",
                    "digest",
                    "kind",
                    "size",
                    "needed_by",
                ]
                .iter()
                .map(|k| match &r[*k] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .collect()
            })
            .collect();
        let from_csv: BTreeSet<Vec<String>> = unsafe_rows
            .iter()
            .filter(|r| r[0] == model && r[1] != "abort")
            .cloned()
            .collect();
        assert_eq!(from_json, from_csv, "{model}");
        // The text form's eligible lines are the JSON's deletions.
        let text = gc_audit(&["gc-plan", root, "--model", model, "-q"]);
        assert_eq!(text.code, run.code);
        let blobs = doc["deletions"]["blobs"].as_array().unwrap();
        let eligible = text
            .stdout
            .lines()
            .filter(|l| l.starts_with("blob eligible for deletion: "))
            .count();
        assert_eq!(blobs.len(), eligible, "{model}");
        assert_eq!(
            doc["summary"].as_str().unwrap(),
            text.stdout.lines().last().unwrap(),
            "{model}"
        );
    }
}

#[test]
fn gc_plan_out_writes_the_plan_and_both_spellings_of_m_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _, _) = sample_scan(tmp.path());
    let root = root.to_str().unwrap();
    let joined = gc_audit(&["gc-plan", root, "--model", "distribution-2.8-m", "-q"]);
    let flag = gc_audit(&["gc-plan", root, "--model", "distribution-2.8", "-m", "-q"]);
    assert_eq!(joined.stdout, flag.stdout);
    assert_eq!(joined.code, flag.code);
    assert_eq!(joined.code, 1, "the sample's index breaks under 2.8 -m");

    let file = tmp.path().join("plan.json");
    let written = gc_audit(&[
        "gc-plan",
        root,
        "--model",
        "distribution-2.8-m",
        "--json",
        "--out",
        file.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(written.code, 1);
    let printed = gc_audit(&[
        "gc-plan",
        root,
        "--model",
        "distribution-2.8-m",
        "--json",
        "-q",
    ]);
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let mut on_stdout: Value = serde_json::from_str(&printed.stdout).unwrap();
    on_stdout["location"] = on_disk["location"].clone();
    assert_eq!(on_disk, on_stdout);
    assert!(
        written.stdout.contains("plan.json written (unsafe)"),
        "{}",
        written.stdout
    );

    let bad = gc_audit(&["gc-plan", root, "--model", "distribution-9"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("unknown GC model"), "{}", bad.stderr);
}
