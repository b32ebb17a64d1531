//! The progress bars on a real terminal: `gc-audit scan` runs under a pseudo-terminal made by
//! `script(1)` (util-linux), and the bytes it draws are replayed into a terminal emulator (the
//! `vt100` crate). Bars were drawn while it ran (a phase label, a human rate, a labelled elapsed
//! time, a spinner that turned while requests were outstanding), no empty phase was ever drawn
//! as a `0/0` bar, and when the run ends nothing of them is left on the screen.

mod support;

use s3_mem_server::{ACCESS_KEY, REGION, SECRET_KEY};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;
use support::*;

/// The spinner frames of gc-cli/src/progress.rs.
const SPINNER: &str = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏";

/// Scan the server's `bucket/registry` under a pseudo-terminal of 120 × 30; returns the exit
/// code and every byte drawn on the terminal (stdout goes to /dev/null).
fn scan_on_a_terminal(
    server: &s3_mem_server::S3MemServer,
    out: &std::path::Path,
) -> (Option<i32>, Vec<u8>, String) {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("script(1) is needed for this test: apt-get install bsdutils (util-linux)");
    }
    let command = format!(
        "stty cols 120 rows 30; '{}' scan s3://bucket/registry --endpoint-url {} --region {REGION} \
         --force-path-style --concurrency 2 --out '{}' > /dev/null",
        env!("CARGO_BIN_EXE_gc-audit"),
        server.endpoint(),
        out.display()
    );
    let run = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("GC_AUDIT_NO_CACHE", "1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    (run.status.code(), run.stdout, stderr)
}

#[test]
fn bars_are_drawn_while_scanning_and_nothing_is_left_on_screen() {
    let (server, tmp, _) = s3_server_with_sample("bucket", "registry");
    // Slow enough that the phases last and the spinner turns (a few seconds in all).
    server.set_latency(Duration::from_millis(250));
    let out = tmp.path().join("out");
    let (code, bytes, stderr) = scan_on_a_terminal(&server, &out);
    assert_eq!(code, Some(1), "the sample has integrity findings: {stderr}");
    let drawn = String::from_utf8_lossy(&bytes);
    for expected in [
        "listing keys",
        "reading tags and manifests",
        "elapsed 0:0",
        "/s",
    ] {
        assert!(
            drawn.contains(expected),
            "{expected:?} never drawn:\n{drawn}"
        );
    }
    assert!(!drawn.contains("0/0"), "an empty phase was drawn:\n{drawn}");
    let frames: BTreeSet<char> = drawn.chars().filter(|c| SPINNER.contains(*c)).collect();
    assert!(
        frames.len() >= 2,
        "the spinner did not turn: {frames:?}\n{drawn}"
    );

    let mut terminal = vt100::Parser::new(30, 120, 0);
    terminal.process(&bytes);
    let screen = terminal.screen().contents();
    assert!(
        screen.trim().is_empty(),
        "left on the screen after the run:\n{screen}"
    );
    assert!(out.join("summary.json").is_file());
}

#[test]
fn retried_requests_are_shown_on_the_bar_with_their_reason() {
    let (server, tmp, _) = s3_server_with_sample("bucket", "registry");
    server.set_latency(Duration::from_millis(100));
    server.set_faults(s3_mem_server::Faults {
        fail_first_attempts: Some(3),
        operations: vec!["ListObjectsV2".into()],
        kinds: vec![s3_mem_server::FaultKind::SlowDown],
        ..Default::default()
    });
    let out = tmp.path().join("out");
    let (code, bytes, stderr) = scan_on_a_terminal(&server, &out);
    assert_eq!(code, Some(1), "retries make throttling invisible: {stderr}");
    let drawn = String::from_utf8_lossy(&bytes);
    assert!(
        drawn.contains("retrying 1 request: SlowDown") || drawn.contains("requests: SlowDown"),
        "no retry note drawn:\n{drawn}"
    );
    let mut terminal = vt100::Parser::new(30, 120, 0);
    terminal.process(&bytes);
    assert!(terminal.screen().contents().trim().is_empty());
}
