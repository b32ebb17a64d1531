//! The live registry (issue 15): the real docker-registry 2.8.2, on its filesystem and its `s3`
//! driver (s3-mem-server on 127.0.0.1), is pushed to continuously through its API — new docker
//! and OCI images, multi-arch indexes, tag moves, cross-repository mounts of old blobs, blobs
//! staged by interrupted pushes and adopted later, chunked uploads, no deletes — while
//! `gc-audit scan` runs back to back with the default grace. The registry stays healthy, so
//! every scan must exit 0 with no missing, dangling or broken row and no orphaned row for a blob
//! referenced before its `as_of` (see `gc_testkit::live`), and everything pushed must pull at
//! the end.
//!
//! Each driver pushes for `GC_AUDIT_LIVE_SECS` seconds (default 45); the long version is
//! `cargo run --release -p gc-testkit --bin live-soak -- --driver both --minutes N --seed S`.

use gc_testkit::live::{self, Driver, LiveOptions, LiveReport, PushKind};
use std::time::Duration;

/// Failure messages shown in full (the rest are counted).
const SHOWN: usize = 25;

fn live_run(driver: Driver, seed: u64) -> LiveReport {
    let secs = match std::env::var("GC_AUDIT_LIVE_SECS") {
        Ok(v) => v
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("GC_AUDIT_LIVE_SECS={v:?} is not a number of seconds")),
        Err(_) => 45,
    };
    let mut options = LiveOptions::new(driver, env!("CARGO_BIN_EXE_gc-audit"));
    options.duration = Duration::from_secs(secs);
    options.seed = seed;
    let report = live::run(&options, &mut |scan| {
        eprintln!("[{}] {}", driver.name(), scan.line())
    })
    .unwrap_or_else(|e| panic!("the live harness could not run on {}: {e:#}", driver.name()));
    println!("{}", report.table());
    report
}

#[track_caller]
fn assert_no_false_findings(report: &LiveReport) {
    let table = report.table();
    for kind in PushKind::ALL {
        assert!(
            report.journal.operations.get(&kind).copied().unwrap_or(0) > 0,
            "the pushers never did a {} operation:\n{table}",
            kind.name()
        );
    }
    assert!(
        report.scans.len() >= 5,
        "only {} scans ran while pushing:\n{table}",
        report.scans.len()
    );
    let failures = report.failures();
    if !failures.is_empty() {
        let shown: Vec<&str> = failures.iter().take(SHOWN).map(String::as_str).collect();
        panic!(
            "{} failed checks on a healthy registry being pushed to ({} driver):\n{}\n{}\n{table}",
            failures.len(),
            report.driver.name(),
            shown.join("\n"),
            if failures.len() > SHOWN {
                format!("... and {} more", failures.len() - SHOWN)
            } else {
                String::new()
            }
        );
    }
}

#[test]
fn scans_back_to_back_while_pushing_to_a_filesystem_registry_report_nothing_false() {
    let report = live_run(Driver::Filesystem, 15);
    assert_no_false_findings(&report);
}

#[test]
fn scans_back_to_back_while_pushing_to_an_s3_registry_report_nothing_false() {
    let report = live_run(Driver::S3, 15);
    assert_no_false_findings(&report);
}
