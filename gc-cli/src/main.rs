//! `gc-audit`: the command line over gc-core.
//!
//! This crate is glue only: it parses flags, resolves them into a validated configuration,
//! calls gc-core, and renders what comes back (report files, a human summary or JSON, progress
//! bars on stderr). No layout, graph or GC logic lives here.
//!
//! Exit status (SPEC §4): `scan`: 0 = audit complete, no integrity findings; 1 = complete with
//! integrity findings; 2 = incomplete or failed (bad arguments, unreadable storage).
//! `gc-plan`: 0 = safe, 1 = would delete needed content, 2 = incomplete, 3 = the GC would abort.
//! `recover`: 0 = nothing needed is absent, 1 = the plan restores everything, 2 = incomplete,
//! 3 = some needed keys cannot be recovered.
//!
//! The verdict is decided before anything is printed: a command returns an [`Outcome`] (its
//! exit code and the bytes for stdout), and [`emit`] writes them. When stdout is closed early
//! (`gc-audit … | head`), the write fails with `EPIPE` (Rust ignores `SIGPIPE`, so writes
//! return the error instead of killing the process), writing stops, and the exit status is
//! still the verdict's: a closed pipe never turns an unsafe plan into 0.

mod args;
mod atomic_file;
mod cache;
mod config;
mod docs;
mod gc_plan;
mod human;
mod logging;
mod metrics;
mod plan_json;
mod progress;
mod recover;
mod recover_script;
mod report_files;
mod scan;

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

/// What a command decided, and what it prints on stdout.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The exit code (the verdict).
    pub(crate) code: u8,
    /// Everything the command prints on stdout.
    pub(crate) stdout: Vec<u8>,
}

/// glibc malloc settings for a process whose peak resident size is its large tables:
///
/// - Arenas: by default glibc gives each thread that contends for the heap an arena of its own
///   (up to 8 per core); the pages the tokio workers free while the reads run then stay
///   resident beside the graph. Four keep a million-key audit's peak resident size under 100
///   bytes per key (gc-bench at 1M keys: 98; glibc's default measured 3 bytes per key more) at
///   no cost in time (100k keys: 4.84 s either way; two arenas cost 12 %).
/// - Allocations of 256 KiB and more get pages of their own (mmap), returned when freed. glibc
///   starts there at 128 KiB but raises the threshold to the size of each such block freed, up
///   to 32 MiB: after a listing's page buffers, the graph's and the analysis's growing tables
///   came from the heap, copied as they grew and leaving their old space resident. A warm
///   1M-key rescan peaked at 110–113 MB with the default and at 99–102 MB with 256 KiB (512
///   KiB: 105–107), in the same wall time.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: mallopt only sets allocator parameters; called first thing in main, before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 4);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn main() -> ExitCode {
    tune_malloc();
    let cli = args::Cli::parse();
    let quiet = match &cli.command {
        args::Command::Scan(a) => a.quiet,
        args::Command::GcPlan(a) => a.quiet,
        args::Command::Recover(a) => a.quiet,
        args::Command::Completions { .. } | args::Command::Man { .. } => true,
    };
    logging::init(cli.verbose, quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say(format_args!(
                "gc-audit: cannot start the async runtime: {e}"
            ));
            return ExitCode::from(2);
        }
    };
    let result =
        match cli.command {
            args::Command::Scan(a) => {
                config::ScanConfig::from_args(&a).and_then(|cfg| runtime.block_on(scan::run(cfg)))
            }
            args::Command::GcPlan(a) => config::GcPlanConfig::from_args(&a)
                .and_then(|cfg| runtime.block_on(gc_plan::run(cfg))),
            args::Command::Recover(a) => config::RecoverConfig::from_args(&a)
                .and_then(|cfg| runtime.block_on(recover::run(cfg))),
            args::Command::Completions { shell } => Ok(docs::completions(shell)),
            args::Command::Man { subcommand } => docs::man(subcommand.as_deref()),
        };
    match result {
        Ok(outcome) => ExitCode::from(emit(&outcome, &mut std::io::stdout().lock())),
        Err(err) => {
            say(format_args!("gc-audit: {}", one_line(&err)));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, each text once: a cause whose text a former part
/// already holds is left out (a config error names its cause once), and the chain stops at
/// gc-s3's [`gc_s3::RequestError`], whose own line already says what happened and what to do
/// (its sources are the SDK's layers).
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let mut text = cause.to_string();
        // `--registry-config FILE` then `FILE: No such file …`: name FILE once.
        if let Some(last) = parts.last().and_then(|p| p.split_whitespace().last()) {
            if let Some(rest) = text.strip_prefix(&format!("{last}: ")) {
                text = rest.to_string();
            }
        }
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        if cause.downcast_ref::<gc_s3::RequestError>().is_some() {
            break;
        }
    }
    parts.join(": ")
}

/// A line on stderr. Unlike `eprintln!`, a stderr that cannot be written (a full disk behind
/// a redirect) is no panic: the exit status still says what happened.
pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Write the outcome's output to `out` and return the exit code: the verdict's, also when the
/// reader has gone away (broken pipe); 2 when the output could not be written for another
/// reason (a full disk behind a redirect, say), since then the output is lost.
fn emit(outcome: &Outcome, out: &mut impl Write) -> u8 {
    let written = out.write_all(&outcome.stdout).and_then(|()| out.flush());
    match written {
        Ok(()) => outcome.code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => outcome.code,
        Err(e) => {
            say(format_args!("gc-audit: writing to standard output: {e}"));
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_and_its_causes_name_each_thing_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let err = anyhow::Error::new(io)
            .context("/etc/r.yml: No such file")
            .context("--registry-config /etc/r.yml");
        assert_eq!(one_line(&err), "--registry-config /etc/r.yml: No such file");
    }

    /// A writer that fails every write with one error kind.
    struct Failing(std::io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(self.0))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::from(self.0))
        }
    }

    #[test]
    fn a_closed_pipe_keeps_the_verdict_and_other_write_errors_are_failures() {
        for code in [0, 1, 2, 3] {
            let outcome = Outcome {
                code,
                stdout: b"unsafe deletion: x\n".to_vec(),
            };
            assert_eq!(
                emit(&outcome, &mut Failing(std::io::ErrorKind::BrokenPipe)),
                code
            );
            assert_eq!(
                emit(&outcome, &mut Failing(std::io::ErrorKind::StorageFull)),
                2
            );
            let mut sink = Vec::new();
            assert_eq!(emit(&outcome, &mut sink), code);
            assert_eq!(sink, outcome.stdout);
        }
    }
}
