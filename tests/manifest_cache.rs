//! `gc-audit scan` with the manifest cache and ETag-resolved tags, against s3-mem-server and
//! the filesystem: every report file is byte for byte the one a scan without them writes (on
//! the sample registry and a generated one), a warm rescan GETs no manifest, a damaged cache
//! file is rebuilt with one warning, an unusable cache directory is a warning, and the default
//! cache lives under `$XDG_CACHE_HOME/gc-audit` (else `~/.cache/gc-audit`).

mod support;

use gc_core::report::{REPORT_FILES, SUMMARY_FILE};
use gc_testkit::synth::{generate, S3Sink, SynthParams};
use s3_mem_server::{S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};
use support::*;

const BUCKET: &str = "registry-bucket";
const ROOT: &str = "prod/registry";
/// Every report file but summary.json, which [`what_it_says`] compares.
fn report_files() -> impl Iterator<Item = &'static str> {
    REPORT_FILES.into_iter().filter(|f| *f != SUMMARY_FILE)
}

/// Fields of summary.json that say how the registry was read, not what it holds.
const HOW_IT_WAS_READ: [&str; 14] = [
    "started_at",
    "finished_at",
    "as_of",
    "duration_seconds",
    "requests",
    "requests_minimum",
    "requests_single_pass_minimum",
    "tags_resolved_by_etag",
    "links_verified_by_etag",
    "links",
    "manifest_cache",
    "cache_hits",
    "cache_misses",
    "warnings",
];

/// Run `gc-audit scan` on `location` into `out` with `flags`, and `env` set (the cache is off
/// unless the flags or `env` name one).
fn scan(
    server: Option<&S3MemServer>,
    location: &str,
    out: &Path,
    flags: &[&str],
    env: &[(&str, &Path)],
) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gc-audit"));
    cmd.args(["scan", location, "--out"])
        .arg(out)
        .arg("-q")
        .args(flags)
        .env_remove("GC_AUDIT_NO_CACHE")
        .env_remove("GC_AUDIT_CACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
    if !flags.iter().any(|f| f.starts_with("--cache-dir")) && env.is_empty() {
        cmd.arg("--no-cache");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(server) = server {
        cmd.args(["--endpoint-url", &server.endpoint()]).args([
            "--region",
            REGION,
            "--force-path-style",
        ]);
    }
    let out = cmd.output().expect("run gc-audit");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn summary(out: &Path) -> Value {
    serde_json::from_str(&report(out, "summary.json")).expect("summary.json")
}

/// summary.json without the fields of [`HOW_IT_WAS_READ`].
fn what_it_says(out: &Path) -> String {
    let mut s = summary(out);
    for field in HOW_IT_WAS_READ {
        s.as_object_mut().expect("object").remove(field);
    }
    serde_json::to_string_pretty(&s).expect("json")
}

/// Every report file of `out` equals `reference`'s, byte for byte (summary.json in what it
/// says about the registry).
fn assert_same_reports(what: &str, reference: &Path, out: &Path) {
    for f in report_files() {
        assert_text(
            &format!("{what}: {f}"),
            &report(out, f),
            &report(reference, f),
        );
    }
    assert_text(
        &format!("{what}: summary.json"),
        &what_it_says(out),
        &what_it_says(reference),
    );
}

fn manifest_gets(server: &S3MemServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| {
            r.operation == "GetObject" && r.key.as_deref().is_some_and(|k| k.contains("/blobs/"))
        })
        .count()
}

fn u64_at(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

/// A generated registry of about `keys` keys in `BUCKET` under `ROOT`.
fn generated(keys: usize) -> S3MemServer {
    let server = S3MemServer::start().expect("s3 server");
    server.create_bucket(BUCKET);
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(FIXED_TIME);
    let mut sink = S3Sink::new(&server, BUCKET, ROOT).with_last_modified(at);
    generate(&SynthParams::with_keys(keys, 7), &mut sink).expect("generate");
    sink.finish();
    server
}

/// Cold and warm scans with a cache, and a scan that reads every link (no ETag resolution),
/// each against a scan without cache; returns the warm scan's summary.
fn check_s3(what: &str, server: &S3MemServer, tmp: &Path) -> Value {
    let location = format!("s3://{BUCKET}/{ROOT}");
    let cache = tmp.join(format!("{what}-cache"));
    let cache_flag = format!("--cache-dir={}", cache.display());
    let reference = tmp.join(format!("{what}-plain"));
    let plain = scan(Some(server), &location, &reference, &[], &[]);
    assert!(plain.code == 0 || plain.code == 1, "{what}: {plain:?}");
    let reference_summary = summary(&reference);
    let manifests = u64_at(&reference_summary["totals"], "manifests");
    assert!(manifests > 0);

    let read_all = tmp.join(format!("{what}-verify-links"));
    let run = scan(Some(server), &location, &read_all, &["--verify-links"], &[]);
    assert_eq!(run.code, plain.code, "{what}: {run:?}");
    assert_same_reports(&format!("{what} --verify-links"), &reference, &read_all);
    assert_eq!(u64_at(&summary(&read_all), "tags_resolved_by_etag"), 0);

    server.clear_requests();
    let cold = tmp.join(format!("{what}-cold"));
    let run = scan(Some(server), &location, &cold, &[&cache_flag], &[]);
    assert_eq!(run.code, plain.code, "{what}: {run:?}");
    assert_same_reports(&format!("{what} cold cache"), &reference, &cold);
    let cold_summary = summary(&cold);
    assert_eq!(u64_at(&cold_summary, "cache_hits"), 0);
    assert!(u64_at(&cold_summary, "cache_misses") > 0);
    assert!(manifest_gets(server) > 0);

    server.clear_requests();
    let warm = tmp.join(format!("{what}-warm"));
    let run = scan(Some(server), &location, &warm, &[&cache_flag], &[]);
    assert_eq!(run.code, plain.code, "{what}: {run:?}");
    assert_same_reports(&format!("{what} warm cache"), &reference, &warm);
    assert_eq!(
        manifest_gets(server),
        0,
        "{what}: a warm rescan GETs no cached manifest: {:?}",
        server.requests()
    );
    let warm_summary = summary(&warm);
    assert_eq!(
        u64_at(&warm_summary, "cache_hits"),
        u64_at(&cold_summary, "cache_misses")
    );
    assert_eq!(u64_at(&warm_summary, "cache_misses"), 0);
    assert!(warm_summary["warnings"]
        .as_array()
        .is_none_or(Vec::is_empty));
    warm_summary
}

#[test]
fn the_sample_registry_reports_the_same_with_and_without_cache_and_etags() {
    let (server, tmp, tree) = s3_server_with_sample(BUCKET, ROOT);
    server.set_read_only(true);
    check_s3("sample", &server, tmp.path());

    // On the filesystem (no ETags): every tag is read, manifests come from the cache.
    let fs_plain = tmp.path().join("fs-plain");
    let root = tree.to_str().expect("utf-8 path");
    let plain = scan(None, root, &fs_plain, &[], &[]);
    let cache = tmp.path().join("fs-cache");
    let cache_flag = format!("--cache-dir={}", cache.display());
    for run in ["cold", "warm"] {
        let out = tmp.path().join(format!("fs-{run}"));
        let r = scan(None, root, &out, &[&cache_flag], &[]);
        assert_eq!(r.code, plain.code, "{r:?}");
        assert_same_reports(&format!("fs {run}"), &fs_plain, &out);
        let s = summary(&out);
        assert_eq!(u64_at(&s, "tags_resolved_by_etag"), 0);
        let hits = u64_at(&s, "cache_hits");
        assert_eq!(hits > 0, run == "warm", "{run}: {hits} hits");
    }
}

#[test]
fn a_generated_registry_reports_the_same_and_a_warm_rescan_is_at_the_floor() {
    let server = generated(4000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let warm = check_s3("generated", &server, tmp.path());
    // A quiet tree with MD5 ETags: nothing to GET at all; the floor says so.
    assert_eq!(u64_at(&warm["requests"], "GET"), 0, "{warm}");
    assert_eq!(u64_at(&warm["requests_minimum"], "GET"), 0, "{warm}");
    let tags = u64_at(&warm["totals"], "tags");
    assert_eq!(u64_at(&warm, "tags_resolved_by_etag"), tags);
    assert_eq!(
        u64_at(&warm["requests_single_pass_minimum"], "GET"),
        tags + u64_at(&warm["totals"], "manifests")
    );
}

#[test]
fn a_damaged_cache_file_is_rebuilt_with_one_warning() {
    let (server, tmp, _) = s3_server_with_sample(BUCKET, ROOT);
    let location = format!("s3://{BUCKET}/{ROOT}");
    let reference = tmp.path().join("plain");
    let plain = scan(Some(&server), &location, &reference, &[], &[]);
    let cache = tmp.path().join("cache");
    let cache_flag = format!("--cache-dir={}", cache.display());
    let cold = tmp.path().join("cold");
    scan(Some(&server), &location, &cold, &[&cache_flag], &[]);
    let files = walk(&cache);
    assert!(!files.is_empty(), "the cold scan wrote a cache");
    for f in &files {
        std::fs::write(f, b"this is not a database\n").expect("damage");
    }
    let damaged = tmp.path().join("damaged");
    let run = scan(Some(&server), &location, &damaged, &[&cache_flag], &[]);
    assert_eq!(run.code, plain.code, "{run:?}");
    assert_same_reports("damaged cache", &reference, &damaged);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("warning: manifest cache"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning: {}", run.stderr);
    let s = summary(&damaged);
    assert_eq!(s["warnings"].as_array().map(Vec::len), Some(1), "{s}");
    assert_eq!(u64_at(&s, "cache_hits"), 0);
    // Rebuilt: the next scan finds what the last one wrote, without a warning.
    let again = tmp.path().join("again");
    let run = scan(Some(&server), &location, &again, &[&cache_flag], &[]);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    assert_same_reports("rebuilt cache", &reference, &again);
    assert!(u64_at(&summary(&again), "cache_hits") > 0);
}

#[test]
fn an_unusable_cache_directory_is_a_warning_not_a_failure() {
    let (server, tmp, _) = s3_server_with_sample(BUCKET, ROOT);
    let location = format!("s3://{BUCKET}/{ROOT}");
    let reference = tmp.path().join("plain");
    let plain = scan(Some(&server), &location, &reference, &[], &[]);
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"").expect("file");
    let cache_flag = format!("--cache-dir={}", file.join("cache").display());
    let out = tmp.path().join("out");
    let run = scan(Some(&server), &location, &out, &[&cache_flag], &[]);
    assert_eq!(run.code, plain.code, "{run:?}");
    assert!(
        run.stderr.contains("warning: manifest cache") && run.stderr.contains("a-file"),
        "{}",
        run.stderr
    );
    assert_same_reports("unusable cache", &reference, &out);
    let s = summary(&out);
    assert!(s.get("manifest_cache").is_none(), "{s}");
    assert_eq!(u64_at(&s, "cache_misses"), 0);
}

#[test]
fn the_default_cache_is_under_xdg_cache_home_else_home() {
    let (server, tmp, _) = s3_server_with_sample(BUCKET, ROOT);
    let location = format!("s3://{BUCKET}/{ROOT}");
    let xdg = tmp.path().join("xdg");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let out = tmp.path().join("out-xdg");
    let run = scan(
        Some(&server),
        &location,
        &out,
        &[],
        &[("XDG_CACHE_HOME", &xdg), ("HOME", &home)],
    );
    assert!(run.code == 0 || run.code == 1, "{run:?}");
    let in_xdg = walk(&xdg.join("gc-audit"));
    assert!(!in_xdg.is_empty(), "nothing under $XDG_CACHE_HOME/gc-audit");
    assert!(!home.join(".cache").exists());
    assert_eq!(
        summary(&out)["manifest_cache"]
            .as_str()
            .map(|c| c.contains("xdg/gc-audit")),
        Some(true)
    );

    let out = tmp.path().join("out-home");
    let run = scan(Some(&server), &location, &out, &[], &[("HOME", &home)]);
    assert!(run.code == 0 || run.code == 1, "{run:?}");
    assert!(!walk(&home.join(".cache/gc-audit")).is_empty());

    // --no-cache writes nothing, even with a cache directory in the environment.
    let fresh = tmp.path().join("fresh");
    let out = tmp.path().join("out-none");
    let run = scan(
        Some(&server),
        &location,
        &out,
        &["--no-cache"],
        &[("GC_AUDIT_CACHE_DIR", &fresh)],
    );
    assert!(run.code == 0 || run.code == 1, "{run:?}");
    assert!(!fresh.exists());
}
