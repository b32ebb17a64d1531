//! `gc-audit completions SHELL` and `gc-audit man [SUBCOMMAND]`: generated from the clap
//! definition, they name every subcommand and flag; the bash script is valid bash, and the man
//! page is roff that `man` can render.

mod support;

use std::process::Command;
use support::*;

const SUBCOMMANDS: [&str; 4] = ["scan", "gc-plan", "completions", "man"];

#[test]
fn completion_scripts_name_the_subcommands_and_flags() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = gc_audit(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {run:?}");
        for word in SUBCOMMANDS.iter().chain(&["metrics-out", "endpoint-url"]) {
            assert!(run.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let bash = gc_audit(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("gc-audit.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash is needed for this test (apt-get install bash)");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let bad = gc_audit(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "{bad:?}");
}

#[test]
fn man_pages_cover_the_command_and_each_subcommand() {
    let top = gc_audit(&["man"]);
    assert_eq!(top.code, 0, "{top:?}");
    assert!(
        top.stdout.starts_with(".ie") || top.stdout.contains(".TH gc-audit 1"),
        "{}",
        top.stdout
    );
    assert!(top.stdout.contains(".SH SUBCOMMANDS"));
    for sub in SUBCOMMANDS {
        assert!(
            top.stdout.contains(&sub.replace('-', "\\-")),
            "man page lacks {sub}"
        );
    }
    let scan = gc_audit(&["man", "scan"]);
    assert_eq!(scan.code, 0, "{scan:?}");
    assert!(
        scan.stdout.contains(".TH gc-audit-scan 1"),
        "{}",
        scan.stdout
    );
    for flag in [
        "metrics\\-out",
        "ca\\-bundle",
        "read\\-timeout",
        "fail\\-on\\-unsafe",
    ] {
        assert!(scan.stdout.contains(flag), "gc-audit-scan(1) lacks {flag}");
    }
    let plan = gc_audit(&["man", "gc-plan"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains("delete\\-untagged"));
    let bad = gc_audit(&["man", "frobnicate"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("no such subcommand"), "{}", bad.stderr);
}
