//! `scan --metrics-out FILE.prom` (SPEC §5b): the file parses as Prometheus text format (every
//! line a HELP, TYPE or sample, read by the `prometheus-parse` crate), its values equal
//! summary.json and the CSVs of the same run, it is replaced atomically, and an incomplete or
//! failed run keeps the last success's timestamp while counting itself.

mod support;

use prometheus_parse::{LineInfo, Scrape, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use support::*;

/// The file parsed: samples by `name{label=value,…}` (labels sorted), after checking that
/// every line is one the format defines and every sample's family has HELP and TYPE.
fn parse(path: &Path) -> (BTreeMap<String, f64>, Scrape) {
    let text = std::fs::read_to_string(path).expect("metrics file");
    let mut typed = BTreeSet::new();
    let mut helped = BTreeSet::new();
    for line in text.lines() {
        match LineInfo::parse(line) {
            LineInfo::Doc { metric_name, .. } => {
                helped.insert(metric_name.to_string());
            }
            LineInfo::Type { metric_name, .. } => {
                typed.insert(metric_name);
            }
            LineInfo::Sample { metric_name, .. } => {
                assert!(
                    typed.contains(metric_name) && helped.contains(metric_name),
                    "{metric_name} has no HELP or TYPE before it"
                );
                assert!(metric_name.starts_with("gc_audit_"), "{line}");
            }
            other => panic!("not a line of the text format: {line:?} ({other:?})"),
        }
    }
    assert!(
        !text.contains("# EOF"),
        "classic format, no OpenMetrics EOF"
    );
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parse");
    let mut samples = BTreeMap::new();
    for s in &scrape.samples {
        let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        let key = if labels.is_empty() {
            s.metric.clone()
        } else {
            format!("{}{{{}}}", s.metric, labels.join(","))
        };
        let value = match &s.value {
            Value::Counter(v) => {
                assert!(
                    s.metric.ends_with("_total"),
                    "a counter ends in _total: {key}"
                );
                *v
            }
            Value::Gauge(v) => {
                assert!(!s.metric.ends_with("_total"), "a gauge is no _total: {key}");
                *v
            }
            other => panic!("{key}: only gauges and counters are written, got {other:?}"),
        };
        assert!(samples.insert(key.clone(), value).is_none(), "{key} twice");
    }
    (samples, scrape)
}

fn get(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing from {:#?}", samples.keys()))
}

fn csv_rows(dir: &Path, file: &str) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(dir.join(file))
        .expect(file)
        .records()
        .map(|r| r.expect("row"))
        .collect()
}

#[test]
fn metrics_equal_the_report_and_survive_an_incomplete_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("registry");
    copy_tree(&workspace().join("examples/registry"), &root);
    let prom_dir = tmp.path().join("textfile");
    std::fs::create_dir(&prom_dir).unwrap();
    let prom = prom_dir.join("gc-audit.prom");
    let out = tmp.path().join("out");
    let run = gc_audit(&[
        "scan",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
        "--metrics-out",
        prom.to_str().unwrap(),
        "--metrics-repositories",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let (m, _) = parse(&prom);
    let summary: serde_json::Value = serde_json::from_str(&report(&out, "summary.json")).unwrap();

    assert_eq!(get(&m, "gc_audit_complete"), 1.0);
    assert_eq!(get(&m, "gc_audit_exit_status"), 1.0);
    let last_run = get(&m, "gc_audit_last_run_timestamp_seconds");
    assert_eq!(get(&m, "gc_audit_last_success_timestamp_seconds"), last_run);
    assert_eq!(
        get(&m, "gc_audit_duration_seconds"),
        summary["duration_seconds"].as_f64().unwrap()
    );
    for (metric, key) in [
        ("gc_audit_storage_blobs", "blobs"),
        ("gc_audit_storage_bytes", "bytes"),
        ("gc_audit_repositories", "repositories"),
        ("gc_audit_tags", "tags"),
        ("gc_audit_manifests", "manifests"),
        ("gc_audit_keys_listed", "keys"),
    ] {
        assert_eq!(
            get(&m, metric),
            summary["totals"][key].as_f64().unwrap(),
            "{metric}"
        );
    }
    for kind in ["LIST", "GET", "HEAD"] {
        assert_eq!(
            get(&m, &format!("gc_audit_requests_total{{kind={kind}}}")),
            summary["requests"][kind].as_f64().unwrap()
        );
    }
    assert_eq!(
        get(&m, "gc_audit_missing_references"),
        csv_rows(&out, "missing.csv").len() as f64
    );
    assert_eq!(
        get(&m, "gc_audit_dangling_index_children"),
        csv_rows(&out, "dangling.csv").len() as f64
    );
    assert_eq!(
        get(&m, "gc_audit_broken_tags"),
        csv_rows(&out, "broken.csv").len() as f64
    );
    let mut findings: BTreeMap<String, f64> = BTreeMap::new();
    for row in csv_rows(&out, "findings.csv") {
        *findings.entry(row[2].to_string()).or_default() += 1.0;
    }
    for (kind, n) in &findings {
        assert_eq!(get(&m, &format!("gc_audit_findings{{kind={kind}}}")), *n);
    }

    // Blobs by state, from orphaned.csv: digest,size,last_modified,reclaimable_by,young.
    let orphaned = csv_rows(&out, "orphaned.csv");
    let sum = |pred: &dyn Fn(&csv::StringRecord) -> bool| -> (f64, f64) {
        orphaned
            .iter()
            .filter(|r| pred(r))
            .fold((0.0, 0.0), |(n, b), r| {
                (n + 1.0, b + r[1].parse::<f64>().unwrap())
            })
    };
    let outside_live = sum(&|r| &r[3] == "gc");
    let untagged = sum(&|r| &r[3] == "gc-delete-untagged");
    let by_gc = sum(&|r| &r[3] == "gc" && &r[4] == "false");
    let by_gc_m = sum(&|r| &r[3] == "gc-delete-untagged" && &r[4] == "false");
    let young = sum(&|r| &r[4] == "true");
    let blobs = summary["totals"]["blobs"].as_f64().unwrap();
    let bytes = summary["totals"]["bytes"].as_f64().unwrap();
    let live = (blobs - outside_live.0, bytes - outside_live.1);
    let tagged = (live.0 - untagged.0, live.1 - untagged.1);
    for (state, (n, b)) in [
        ("live", live),
        ("tagged", tagged),
        ("reclaimable_by_gc", by_gc),
        ("reclaimable_by_gc_delete_untagged", by_gc_m),
        ("young", young),
    ] {
        assert_eq!(
            get(&m, &format!("gc_audit_blobs{{state={state}}}")),
            n,
            "{state}"
        );
        assert_eq!(
            get(&m, &format!("gc_audit_blobs_bytes{{state={state}}}")),
            b,
            "{state}"
        );
    }
    assert_eq!(
        by_gc.1,
        summary["reclaimable_by_gc"]["bytes"].as_f64().unwrap()
    );
    assert!(
        untagged.0 > 0.0,
        "the sample has untagged live blobs: {orphaned:?}"
    );

    // Per model, from gc-unsafe.csv: model,action,repository,digest,kind,size,needed_by.
    let unsafe_rows = csv_rows(&out, "gc-unsafe.csv");
    for model in [
        "distribution-2.8",
        "distribution-2.8-m",
        "distribution-3",
        "distribution-3-m",
    ] {
        let rows: Vec<_> = unsafe_rows.iter().filter(|r| &r[0] == model).collect();
        let bytes: f64 = rows
            .iter()
            .map(|r| r[5].parse::<f64>().unwrap_or(0.0))
            .sum();
        let images: BTreeSet<&str> = rows
            .iter()
            .map(|r| r[6].split(' ').next().unwrap())
            .collect();
        let label = format!("model={model}");
        let safe = rows.is_empty();
        assert_eq!(
            get(&m, &format!("gc_audit_gc_model_safe{{{label}}}")),
            f64::from(u8::from(safe))
        );
        let state = if safe { "safe" } else { "unsafe" };
        for s in ["safe", "unsafe", "aborts", "unpredictable"] {
            assert_eq!(
                get(&m, &format!("gc_audit_gc_model_state{{{label},state={s}}}")),
                f64::from(u8::from(s == state)),
                "{model} {s}"
            );
        }
        assert_eq!(
            get(
                &m,
                &format!("gc_audit_gc_model_unsafe_deletions{{{label}}}")
            ),
            rows.len() as f64
        );
        assert_eq!(
            get(&m, &format!("gc_audit_gc_model_broken_bytes{{{label}}}")),
            bytes
        );
        assert_eq!(
            get(&m, &format!("gc_audit_gc_model_broken_images{{{label}}}")),
            images.len() as f64
        );
    }
    assert_eq!(
        get(&m, "gc_audit_gc_model_safe{model=distribution-2.8-m}"),
        0.0
    );

    // Per repository, from repos.csv: repository,tags,manifests,untagged_manifests,bytes,…
    for row in csv_rows(&out, "repos.csv") {
        let label = format!("repository={}", &row[0]);
        assert_eq!(
            get(&m, &format!("gc_audit_repository_tags{{{label}}}")),
            row[1].parse::<f64>().unwrap()
        );
        assert_eq!(
            get(&m, &format!("gc_audit_repository_bytes{{{label}}}")),
            row[4].parse::<f64>().unwrap()
        );
        assert_eq!(
            get(
                &m,
                &format!("gc_audit_repository_exclusive_bytes{{{label}}}")
            ),
            row[5].parse::<f64>().unwrap()
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&prom).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "readable by the collector");
    }

    // Without --metrics-repositories no repository label; an incomplete run (a tree that
    // holds no registry) keeps the last success and counts itself.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("docker/registry/v2/repositories")).unwrap();
    let run = gc_audit(&[
        "scan",
        empty.to_str().unwrap(),
        "--out",
        tmp.path().join("out2").to_str().unwrap(),
        "-q",
        "--metrics-out",
        prom.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    let (m2, _) = parse(&prom);
    assert_eq!(get(&m2, "gc_audit_complete"), 0.0);
    assert_eq!(get(&m2, "gc_audit_exit_status"), 2.0);
    assert_eq!(
        get(&m2, "gc_audit_last_success_timestamp_seconds"),
        last_run
    );
    assert!(get(&m2, "gc_audit_last_run_timestamp_seconds") >= last_run);
    assert_eq!(get(&m2, "gc_audit_runs_total{result=complete}"), 1.0);
    assert_eq!(get(&m2, "gc_audit_runs_total{result=incomplete}"), 1.0);
    assert!(
        get(&m2, "gc_audit_requests_total{kind=LIST}")
            > get(&m, "gc_audit_requests_total{kind=LIST}")
    );
    assert!(m2.keys().all(|k| !k.contains("repository=")), "{m2:#?}");
    assert!(
        !m2.contains_key("gc_audit_blobs{state=live}"),
        "an incomplete run claims no reclaimable numbers"
    );

    // A run that fails before auditing (nothing listens at the endpoint) still writes it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let run = gc_audit_env(
        &[
            "scan",
            "s3://bucket",
            "--endpoint-url",
            &endpoint,
            "--force-path-style",
            "--out",
            tmp.path().join("out3").to_str().unwrap(),
            "-q",
            "--metrics-out",
            prom.to_str().unwrap(),
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    let (m3, _) = parse(&prom);
    assert_eq!(get(&m3, "gc_audit_exit_status"), 2.0);
    assert_eq!(
        get(&m3, "gc_audit_last_success_timestamp_seconds"),
        last_run
    );
    assert_eq!(get(&m3, "gc_audit_runs_total{result=incomplete}"), 2.0);
    assert_eq!(
        get(
            &m3,
            &format!(
                "gc_audit_info{{backend=,location=s3://bucket,version={}}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );
    let files: Vec<_> = std::fs::read_dir(&prom_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files,
        vec![std::ffi::OsString::from("gc-audit.prom")],
        "no temporary file left"
    );
}
