//! The report folder is replaced whole when a run ends (SPEC §4, issue 15 item 7): a run
//! killed mid-scan (SIGKILL, or Ctrl-C's SIGINT) leaves the previous report byte-identical, the
//! next complete run replaces it and clears the leftovers, and an `--out` inside (or around)
//! the audited root, or one that is not a report folder, is refused before anything is written.

mod support;

use s3_mem_server::{S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const BUCKET: &str = "registry-bucket";
const ROOT: &str = "prod/registry";

fn scan_command(server: &S3MemServer, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gc-audit"));
    cmd.env("GC_AUDIT_NO_CACHE", "1");
    cmd.args([
        "scan",
        &format!("s3://{BUCKET}/{ROOT}"),
        "--endpoint-url",
        &server.endpoint(),
        "--region",
        REGION,
        "--force-path-style",
        "--out",
        out.to_str().expect("utf-8"),
        "-q",
    ])
    .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    .env_remove("AWS_PROFILE")
    .env_remove("AWS_SESSION_TOKEN")
    .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Start a scan into `out` against a server that answers every request after 5 s, wait until
/// it has prepared its staging folder and sent its first request, then send `signal`.
/// Returns the process id.
fn interrupt_mid_scan(server: &S3MemServer, out: &Path, signal: &str) -> u32 {
    server.set_latency(Duration::from_secs(5));
    server.reset_max_in_flight();
    let mut command = scan_command(server, out);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    // A job started with `&` from a non-interactive shell (a CI script run in the background,
    // `nohup`) inherits SIGINT as ignored, and gc-audit rightly keeps that disposition. Ctrl-C
    // reaches a foreground job, whose SIGINT is the default: give the child that.
    // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = command.spawn().expect("spawn gc-audit");
    let parent = out.parent().expect("parent");
    let own_staging = format!(".out.tmp-{}-", child.id());
    let started = Instant::now();
    loop {
        let staging = names(parent).iter().any(|n| n.starts_with(&own_staging));
        if staging && server.max_in_flight() >= 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the scan never got going"
        );
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the scan ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill(1) (procps)");
    assert!(status.success(), "kill {signal}");
    let exit = child.wait().expect("wait");
    assert!(!exit.success(), "killed by {signal}: {exit:?}");
    server.set_latency(Duration::ZERO);
    child.id()
}

#[test]
fn an_interrupted_run_leaves_the_previous_report_and_the_next_run_replaces_it() {
    let (server, tmp, _tree) = s3_server_with_sample(BUCKET, ROOT);
    let parent = tmp.path().join("reports");
    std::fs::create_dir(&parent).expect("mkdir");
    let out = parent.join("out");
    let first = scan_command(&server, &out).output().expect("run");
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let previous = snapshot(&out);
    assert!(previous.len() >= 8, "a complete report: {previous:?}");

    let mut last = 0;
    for signal in ["-KILL", "-INT"] {
        last = interrupt_mid_scan(&server, &out, signal);
        assert_eq!(
            snapshot(&out),
            previous,
            "{signal}: the previous report, byte for byte"
        );
    }
    // The killed run left its staging folder; the one before it was removed by the run after.
    let left: Vec<String> = names(&parent).into_iter().filter(|n| n != "out").collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with(&format!(".out.tmp-{last}-")),
        "{left:?}"
    );

    let next = scan_command(&server, &out).output().expect("run");
    assert_eq!(
        next.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert_eq!(names(&parent), ["out"], "leftovers cleared");
    let replaced = snapshot(&out);
    let summary = PathBuf::from(&out).join("summary.json");
    assert_ne!(
        replaced[&summary].2, previous[&summary].2,
        "a new summary.json (new start time)"
    );
    // Same storage, same rows.
    for (path, (_, _, content)) in &previous {
        if path != &summary {
            assert_eq!(&replaced[path].2, content, "{}", path.display());
        }
    }
}

#[test]
fn an_out_inside_the_audited_root_or_holding_it_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("registry");
    copy_tree(&workspace().join("examples/registry"), &root);
    let before = snapshot(&root);
    let r = root.to_str().expect("utf-8");
    let inside = root.join("docker/reports/new");
    for out in [inside.as_path(), root.as_path(), tmp.path()] {
        let run = gc_audit(&["scan", r, "--out", out.to_str().expect("utf-8"), "-q"]);
        assert_eq!(run.code, 2, "{}", run.stdout);
        assert!(
            run.stderr.contains("--out") && run.stderr.contains("audited root"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(snapshot(&root), before, "nothing written into the registry");
    assert!(!root.join("docker/reports").exists());
}

#[test]
fn an_out_that_is_not_a_report_folder_is_not_replaced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("registry");
    copy_tree(&workspace().join("examples/registry"), &root);
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).expect("mkdir");
    std::fs::write(home.join("thesis.tex"), "years of work").expect("write");
    let run = gc_audit(&[
        "scan",
        root.to_str().expect("utf-8"),
        "--out",
        home.to_str().expect("utf-8"),
        "-q",
    ]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("--out") && run.stderr.contains("not a gc-audit report folder"),
        "{}",
        run.stderr
    );
    assert_eq!(names(&home), ["thesis.tex"]);
    assert_eq!(
        names(tmp.path()),
        ["home", "registry"],
        "no staging folder left"
    );
}
