//! `gc-audit scan s3://…` against a real S3 protocol server on 127.0.0.1 (s3-mem-server, in
//! process): the reports equal the filesystem scan of the same tree byte for byte, the auditor
//! sends nothing but GET, HEAD and LIST, retries make throttling invisible, and a key that
//! cannot be read makes the audit incomplete (exit 2, no reclaimable list).

mod support;

use s3_mem_server::{
    FaultKind, Faults, S3MemServer, ACCESS_KEY, READ_OPERATIONS, REGION, SECRET_KEY,
};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

const BUCKET: &str = "registry-bucket";
const ROOT: &str = "prod/registry";
const REPORTS: [&str; 7] = [
    "orphaned.csv",
    "missing.csv",
    "dangling.csv",
    "gc-unsafe.csv",
    "broken.csv",
    "repos.csv",
    "findings.csv",
];

/// Run gc-audit with the test server's credentials in the environment.
fn gc_audit_s3(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_gc-audit"))
        .env("GC_AUDIT_NO_CACHE", "1")
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run gc-audit");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn scan_s3(server: &S3MemServer, out: &Path, extra: &[&str]) -> Run {
    let location = format!("s3://{BUCKET}/{ROOT}");
    let endpoint = server.endpoint();
    let mut args = vec![
        "scan",
        location.as_str(),
        "--endpoint-url",
        endpoint.as_str(),
        "--region",
        REGION,
        "--force-path-style",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    gc_audit_s3(&args)
}

fn assert_same_reports(fs_out: &Path, s3_out: &Path) {
    for f in REPORTS {
        assert_text(f, &report(s3_out, f), &report(fs_out, f));
    }
}

#[test]
fn s3_scan_equals_filesystem_scan_and_only_reads() {
    let (server, tmp, root) = s3_server_with_sample(BUCKET, ROOT);
    server.set_read_only(true);
    let fs_out = tmp.path().join("fs");
    let fs = gc_audit(&[
        "scan",
        root.to_str().unwrap(),
        "--out",
        fs_out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(fs.code, 1, "{}", fs.stdout);

    let s3_out = tmp.path().join("s3");
    let s3 = scan_s3(&server, &s3_out, &[]);
    assert_eq!(s3.code, 1, "stdout:\n{}\nstderr:\n{}", s3.stdout, s3.stderr);
    assert_same_reports(&fs_out, &s3_out);

    let requests = server.requests();
    let refused: Vec<_> = requests
        .iter()
        .filter(|r| !READ_OPERATIONS.contains(&r.operation.as_str()))
        .collect();
    assert!(
        refused.is_empty(),
        "the auditor sent non-read requests: {refused:?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" || r.method == "HEAD"),
        "{requests:?}"
    );

    let summary: serde_json::Value =
        serde_json::from_str(&report(&s3_out, "summary.json")).expect("summary");
    assert_eq!(summary["backend"], "s3");
    assert_eq!(summary["location"], format!("s3://{BUCKET}/{ROOT}"));
    let lists = requests
        .iter()
        .filter(|r| r.operation == "ListObjectsV2")
        .count() as u64;
    let gets = requests
        .iter()
        .filter(|r| r.operation == "GetObject")
        .count() as u64;
    let heads = requests
        .iter()
        .filter(|r| r.operation == "HeadObject")
        .count() as u64;
    assert_eq!(summary["requests"]["LIST"], lists);
    assert_eq!(summary["requests"]["GET"], gets);
    assert_eq!(summary["requests"]["HEAD"], heads);
    // 54 keys: one listing page (the one the access check read before the audit started: it
    // is not asked for again), and one for the last look at repositories/; 9 manifests: 9
    // GETs (the 4 tags resolved from their ETags, every link verified by its ETag); one HEAD
    // per blob the damaged images reference that the listing lacked: the minimum, exactly.
    assert_eq!((lists, gets), (2, 9));
    assert_eq!(summary["links"]["read"], 0);
    assert_eq!(summary["links"]["unverified"], 0);
    assert!(summary["links"]["verified_by_etag"].as_u64() > Some(20));
    assert_eq!(
        summary["links_verified_by_etag"],
        summary["links"]["verified_by_etag"]
    );
    assert_eq!(summary["tags_resolved_by_etag"], 4);
    assert_eq!(summary["requests_minimum"]["LIST"], 2);
    assert_eq!(summary["requests_minimum"]["GET"], 9);
    assert_eq!(summary["requests_minimum"]["HEAD"], heads);
    assert_eq!(summary["requests_single_pass_minimum"]["GET"], 13);
    assert_eq!(summary["cache_hits"], 0);
    assert!(summary.get("manifest_cache").is_none(), "--no-cache");

    // recover reads too (GetBucketVersioning, ListObjectVersions are reads): on this bucket,
    // which never had versioning, every swept key is unrecoverable.
    server.clear_requests();
    let plan_out = tmp.path().join("recover");
    let location = format!("s3://{BUCKET}/{ROOT}");
    let endpoint = server.endpoint();
    let plan = gc_audit_s3(&[
        "recover",
        &location,
        "--endpoint-url",
        &endpoint,
        "--region",
        REGION,
        "--force-path-style",
        "--out",
        plan_out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(
        plan.code, 3,
        "stdout:\n{}\nstderr:\n{}",
        plan.stdout, plan.stderr
    );
    let requests = server.requests();
    let refused: Vec<_> = requests
        .iter()
        .filter(|r| !READ_OPERATIONS.contains(&r.operation.as_str()))
        .collect();
    assert!(
        refused.is_empty(),
        "recover sent non-read requests: {refused:?}"
    );
    let rows = report(&plan_out, "recover.csv");
    assert!(rows.lines().count() > 1, "{rows}");
    assert!(
        rows.lines()
            .skip(1)
            .all(|l| l.starts_with(&format!("{ROOT}/docker/registry/v2/"))
                && l.contains(",unrecoverable,")),
        "{rows}"
    );
}

#[test]
fn registry_config_names_the_bucket() {
    let (server, tmp, root) = s3_server_with_sample(BUCKET, ROOT);
    let config = tmp.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  s3:\n    region: {REGION}\n    regionendpoint: {}\n    bucket: {BUCKET}\n    rootdirectory: /{ROOT}\n    accesskey: {ACCESS_KEY}\n    secretkey: {SECRET_KEY}\n    secure: false\n    v4auth: true\n  delete:\n    enabled: true\n  redirect:\n    disable: true\nhttp:\n  addr: 127.0.0.1:5000\n",
            server.endpoint()
        ),
    )
    .expect("config");
    let out = tmp.path().join("s3");
    // Static keys come from the config file: no AWS variables in the environment.
    let run = Command::new(env!("CARGO_BIN_EXE_gc-audit"))
        .env("GC_AUDIT_NO_CACHE", "1")
        .args([
            "scan",
            "--registry-config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run");
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let fs_out = tmp.path().join("fs");
    gc_audit(&[
        "scan",
        root.to_str().unwrap(),
        "--out",
        fs_out.to_str().unwrap(),
        "-q",
    ]);
    assert_same_reports(&fs_out, &out);

    let other = tmp.path().join("gcs.yml");
    std::fs::write(&other, "version: 0.1\nstorage:\n  gcs:\n    bucket: b\n").expect("write");
    let bad = gc_audit(&["scan", "--registry-config", other.to_str().unwrap()]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("gcs"), "{}", bad.stderr);
}

#[test]
fn throttling_and_dropped_connections_are_retried_into_identical_reports() {
    let (server, tmp, _root) = s3_server_with_sample(BUCKET, ROOT);
    let clean = tmp.path().join("clean");
    assert_eq!(scan_s3(&server, &clean, &[]).code, 1);
    server.clear_requests();
    server.set_faults(Faults {
        fail_every_nth: Some(3),
        kinds: vec![
            FaultKind::SlowDown,
            FaultKind::DropConnection,
            FaultKind::InternalError,
        ],
        ..Faults::default()
    });
    let faulty = tmp.path().join("faulty");
    let run = scan_s3(&server, &faulty, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_same_reports(&clean, &faulty);
    let failed = server
        .requests()
        .iter()
        .filter(|r| r.status != Some(200))
        .count();
    assert!(failed >= 4, "faults were injected: {failed}");
}

#[test]
fn a_key_that_cannot_be_read_makes_the_audit_incomplete() {
    let (server, tmp, _root) = s3_server_with_sample(BUCKET, ROOT);
    // The manifest of team/app/api:v2 lists but cannot be read, retries or not.
    let index = "sha256:60c1bb47e1332d86e7424d4c1a8e3bead4982c1290e74e328bb95941ea5ef232";
    let hex = index.trim_start_matches("sha256:");
    let key = format!("{ROOT}/docker/registry/v2/blobs/sha256/{}/{hex}", &hex[..2]);
    server.set_faults(Faults {
        fail_objects_forever: vec![key],
        ..Faults::default()
    });
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("orphaned.csv"), "stale").expect("write");
    let started = std::time::Instant::now();
    let run = scan_s3(&server, &out, &["--concurrency", "8"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
    assert!(run.stdout.contains("AUDIT INCOMPLETE"), "{}", run.stdout);
    assert!(run.stdout.contains(hex), "names the key: {}", run.stdout);
    for withheld in ["orphaned.csv", "missing.csv", "gc-unsafe.csv", "broken.csv"] {
        assert!(
            !out.join(withheld).exists(),
            "{withheld} must not be written"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&report(&out, "summary.json")).expect("summary");
    assert_eq!(summary["complete"], false);
}

#[test]
fn s3_flags_on_a_filesystem_location_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("registry");
    copy_tree(&workspace().join("examples/registry"), &root);
    let run = gc_audit(&[
        "scan",
        root.to_str().unwrap(),
        "--endpoint-url",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("s3://"), "{}", run.stderr);
}

#[test]
fn a_mistyped_root_is_no_registry_and_exit_two_in_scan_and_gc_plan() {
    let (server, tmp, _root) = s3_server_with_sample(BUCKET, ROOT);
    let endpoint = server.endpoint();
    let out = tmp.path().join("out-wrong");
    let location = format!("s3://{BUCKET}/prod/wrong");
    let common = [
        "--endpoint-url",
        endpoint.as_str(),
        "--region",
        REGION,
        "--force-path-style",
        "-q",
    ];
    let mut scan = vec!["scan", location.as_str(), "--out", out.to_str().unwrap()];
    scan.extend_from_slice(&common);
    let run = gc_audit_s3(&scan);
    assert_eq!(run.code, 2, "{run:?}");
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains(&format!("no registry under {location}")),
        "{said}"
    );
    assert!(said.contains("found beside it: registry/"), "{said}");
    let summary: serde_json::Value =
        serde_json::from_str(&report(&out, "summary.json")).expect("summary");
    assert_eq!(summary["complete"], false);
    assert!(
        !out.join("orphaned.csv").exists(),
        "nothing reclaimable is claimed"
    );

    let mut plan = vec![
        "gc-plan",
        location.as_str(),
        "--model",
        "distribution-2.8",
        "-m",
    ];
    plan.extend_from_slice(&common);
    let run = gc_audit_s3(&plan);
    assert_eq!(
        run.code, 2,
        "a pre-GC check never passes on a typo: {run:?}"
    );
    assert!(
        run.stderr
            .contains(&format!("no registry under {location}")),
        "{run:?}"
    );
}
