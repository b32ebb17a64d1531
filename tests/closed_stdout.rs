//! A closed stdout never changes the verdict (SPEC §4): `gc-audit … | head` that stops reading
//! before gc-audit writes still gets the exit status of the report, for `scan` (human summary
//! and `--json`) and `gc-plan` (full and `--unsafe-only`), on the shipped sample registry,
//! whose verdicts are 1 (integrity findings; `-m` would break team/web:stable).

mod support;

use std::process::{Command, Stdio};
use support::*;

/// Run gc-audit with stdout a pipe whose read end is closed before gc-audit writes anything
/// (it writes only once the audit is done); returns the exit code and stderr.
fn run_with_stdout_closed(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gc-audit"))
        .env("GC_AUDIT_NO_CACHE", "1")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gc-audit");
    drop(child.stdout.take().expect("stdout pipe"));
    let out = child.wait_with_output().expect("wait for gc-audit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_keeps_the_verdict_of_scan_and_gc_plan() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("registry");
    copy_tree(&workspace().join("examples/registry"), &root);
    let r = root.to_str().expect("utf-8 path");
    let out = tmp.path().join("report");
    let o = out.to_str().expect("utf-8 path");
    let cases: [&[&str]; 4] = [
        &["scan", r, "--out", o, "--grace", "0s", "-q"],
        &["scan", r, "--out", o, "--grace", "0s", "-q", "--json"],
        &["gc-plan", r, "--model", "distribution-2.8", "-m", "-q"],
        &[
            "gc-plan",
            r,
            "--model",
            "distribution-2.8",
            "-m",
            "--unsafe-only",
            "-q",
        ],
    ];
    for args in cases {
        let normal = gc_audit(args);
        assert_eq!(
            normal.code, 1,
            "{args:?} with stdout read: the sample's verdict\n{}{}",
            normal.stdout, normal.stderr
        );
        assert!(!normal.stdout.is_empty(), "{args:?} prints its result");
        let (code, stderr) = run_with_stdout_closed(args);
        assert_eq!(code, normal.code, "{args:?} with stdout closed: {stderr}");
        assert!(
            !stderr.contains("panicked"),
            "{args:?}: no panic on EPIPE: {stderr}"
        );
    }
    // The clean plan stays 0 with stdout closed (not 1, not 2).
    let safe = ["gc-plan", r, "--model", "distribution-3", "-q"];
    let normal = gc_audit(&safe);
    let (code, stderr) = run_with_stdout_closed(&safe);
    assert_eq!(code, normal.code, "{stderr}");
}
