//! `live-soak`: the long version of `tests/live_registry.rs`. Starts the real registry
//! (distribution 2.8.2) on the filesystem and/or `s3` driver, pushes to it continuously through
//! its API while `gc-audit scan` runs back to back, prints a line per scan and a count table,
//! and exits 1 when any check failed (see `gc_testkit::live`).
//!
//! ```text
//! cargo run --release -p gc-testkit --bin live-soak -- --driver both --minutes 5 --seed 7
//! ```
//!
//! Under `cargo run` it first builds `gc-audit` with the same profile (so the binary scanned
//! with is the current code); `--gc-audit PATH` names another binary.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use gc_testkit::live::{self, Driver, LiveOptions};

/// Push through the real registry while gc-audit scans back to back; check every scan.
#[derive(Parser, Debug)]
#[command(name = "live-soak")]
struct Args {
    /// Registry storage driver: s3, filesystem or both (one after the other).
    #[arg(long, default_value = "both", value_parser = ["s3", "filesystem", "both"])]
    driver: String,
    /// Minutes of pushing per driver (fractions allowed).
    #[arg(long, default_value_t = 5.0)]
    minutes: f64,
    /// Seed of the pushers' RNGs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pusher threads.
    #[arg(long, default_value_t = 2)]
    pushers: usize,
    /// Pause of each pusher between operations, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pause_ms: u64,
    /// The gc-audit binary (default: built by cargo next to this binary).
    #[arg(long)]
    gc_audit: Option<PathBuf>,
    /// Print at most this many failure messages per driver.
    #[arg(long, default_value_t = 40)]
    max_messages: usize,
}

/// gc-audit next to this binary, built first when running under cargo.
fn default_gc_audit() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating live-soak")?;
    let dir = exe
        .parent()
        .context("live-soak has no parent directory")?
        .to_path_buf();
    let gc_audit = dir.join(format!("gc-audit{}", std::env::consts::EXE_SUFFIX));
    if let Some(cargo) = std::env::var_os("CARGO") {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-p",
            "gc-cli",
            "--bin",
            "gc-audit",
            "--manifest-path",
        ])
        .arg(&manifest);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        eprintln!("live-soak: building gc-audit ({cmd:?})");
        let status = cmd.status().context("running cargo build for gc-audit")?;
        if !status.success() {
            bail!("cargo build of gc-audit failed: {status}");
        }
    }
    Ok(gc_audit)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("live-soak: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool> {
    let args = Args::parse();
    if !(args.minutes > 0.0 && args.minutes.is_finite()) {
        bail!("--minutes must be a positive number, not {}", args.minutes);
    }
    let gc_audit = match args.gc_audit {
        Some(p) => p,
        None => default_gc_audit()?,
    };
    let drivers: &[Driver] = match args.driver.as_str() {
        "s3" => &[Driver::S3],
        "filesystem" => &[Driver::Filesystem],
        _ => &[Driver::Filesystem, Driver::S3],
    };
    let mut tables = Vec::new();
    let mut passed = true;
    for &driver in drivers {
        let mut options = LiveOptions::new(driver, &gc_audit);
        options.duration = Duration::from_secs_f64(args.minutes * 60.0);
        options.seed = args.seed;
        options.pushers = args.pushers;
        options.pause = Duration::from_millis(args.pause_ms);
        println!(
            "== {} driver: {:.1} min, seed {}, {} pushers, gc-audit {}",
            driver.name(),
            args.minutes,
            args.seed,
            args.pushers,
            gc_audit.display()
        );
        let report = live::run(&options, &mut |scan| println!("{}", scan.line()))?;
        let failures = report.failures();
        for f in failures.iter().take(args.max_messages) {
            println!("FAIL {f}");
        }
        if failures.len() > args.max_messages {
            println!(
                "... and {} more failure messages",
                failures.len() - args.max_messages
            );
        }
        println!("{}", report.table());
        passed &= failures.is_empty();
        tables.push(report.table());
    }
    if tables.len() > 1 {
        println!("== all drivers");
        for t in &tables {
            print!("{t}");
        }
    }
    println!("{}", if passed { "PASSED" } else { "FAILED" });
    Ok(passed)
}
