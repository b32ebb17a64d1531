//! `gc-audit`: the command line over gc-core.
//!
//! This crate is glue only: it parses flags, resolves them into a validated configuration,
//! calls gc-core, and renders what comes back (report files, a human summary or JSON, progress
//! bars on stderr). No layout, graph or GC logic lives here.
//!
//! Exit status (SPEC §4): `scan`: 0 = audit complete, no integrity findings; 1 = complete with
//! integrity findings; 2 = incomplete or failed (bad arguments, unreadable storage).
//! `gc-plan`: 0 = safe, 1 = would delete needed content, 2 = incomplete, 3 = the GC would abort.

mod args;
mod config;
mod gc_plan;
mod human;
mod progress;
mod report_files;
mod scan;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gc-audit: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        args::Command::Scan(a) => config::ScanConfig::from_args(&a)
            .and_then(|cfg| runtime.block_on(scan::run(cfg)))
            .map(|status| status.code()),
        args::Command::GcPlan(a) => {
            config::GcPlanConfig::from_args(&a).and_then(|cfg| runtime.block_on(gc_plan::run(cfg)))
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::from(0);
            }
            eprintln!("gc-audit: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
