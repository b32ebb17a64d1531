//! Running one child process and measuring it alone: wall time, CPU time and peak RSS from
//! `wait4(2)`'s `rusage` of that very process (not `RUSAGE_CHILDREN`, which would mix in every
//! other child), with an optional time limit after which it is killed (SIGKILL).
//!
//! Linux carries the peak RSS of the memory image a process *replaces* at `execve` into its
//! `ru_maxrss` (`setmax_mm_hiwater_rss` in `exec_mmap`); a child spawned straight from
//! gc-bench, which holds the whole S3 bucket in memory, would report gc-bench's peak as its
//! own. [`run_isolated`] therefore spawns the command through a small helper process
//! (`gc-bench measure-child`, freshly exec'd, a few MiB), which runs [`run`] on it and writes
//! the result to a file.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// What one run of a child cost.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Exit status (a signal when killed).
    pub status: ExitStatus,
    /// Killed at the time limit.
    pub timed_out: bool,
    /// From spawn to reaped.
    pub wall: Duration,
    /// User CPU time.
    pub user: Duration,
    /// System CPU time.
    pub sys: Duration,
    /// Peak resident set size, bytes (`ru_maxrss` is KiB on Linux).
    pub max_rss: u64,
}

impl Measured {
    /// User + system CPU time.
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Spawn `cmd` (stdio as the caller set it), wait for it, and measure it. With `limit`, a
/// watchdog kills it with SIGKILL when it runs longer.
pub fn run(cmd: &mut Command, limit: Option<Duration>) -> Result<Measured> {
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let (cancel, cancelled) = mpsc::channel::<()>();
    let (fired_tx, fired_rx) = mpsc::channel::<()>();
    let watchdog = limit.map(|limit| {
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                // SAFETY: plain syscall on the pid of our own child, which is not reaped yet
                // (the main thread reaps it only after wait4 returns, and cancels us first).
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                let _ = fired_tx.send(());
            }
        })
    });
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        bail!("wait4({pid}): {err}");
    }
    let wall = start.elapsed();
    drop(cancel);
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    let timed_out = fired_rx.try_recv().is_ok();
    drop(child); // already reaped; Child's drop neither waits nor kills
    Ok(Measured {
        status: ExitStatus::from_raw(status),
        timed_out,
        wall,
        user: timeval(usage.ru_utime),
        sys: timeval(usage.ru_stime),
        max_rss: (usage.ru_maxrss.max(0) as u64) * 1024,
    })
}

/// Run `cmd` through `gc-bench measure-child` (see the module documentation) with the given
/// stdout and stderr; the program, arguments and environment changes of `cmd` are passed on.
pub fn run_isolated(
    cmd: &Command,
    stdout: std::fs::File,
    stderr: std::fs::File,
    limit: Option<Duration>,
) -> Result<Measured> {
    let report = tempfile::NamedTempFile::new()?;
    let mut helper = Command::new(std::env::current_exe()?);
    helper
        .arg("measure-child")
        .arg("--report")
        .arg(report.path());
    if let Some(l) = limit {
        helper.arg("--limit-ms").arg(l.as_millis().to_string());
    }
    helper.arg("--").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => helper.env(k, v),
            None => helper.env_remove(k),
        };
    }
    let status = helper
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .context("running gc-bench measure-child")?;
    if !status.success() {
        bail!("gc-bench measure-child failed ({status})");
    }
    let text = std::fs::read_to_string(report.path())?;
    parse_report(&text).with_context(|| format!("measure-child report {text:?}"))
}

/// `gc-bench measure-child`: run the command, write the measurement to `report`.
pub fn measure_child(
    report: &std::path::Path,
    limit: Option<Duration>,
    argv: &[String],
) -> Result<()> {
    let Some((program, args)) = argv.split_first() else {
        bail!("measure-child: no command");
    };
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(std::process::Stdio::null());
    let m = run(&mut cmd, limit)?;
    std::fs::write(
        report,
        format!(
            "{} {} {} {} {} {}",
            m.status.into_raw(),
            u8::from(m.timed_out),
            m.wall.as_nanos(),
            m.user.as_nanos(),
            m.sys.as_nanos(),
            m.max_rss
        ),
    )?;
    Ok(())
}

fn parse_report(text: &str) -> Option<Measured> {
    let f: Vec<&str> = text.split_whitespace().collect();
    let nanos = |s: &str| s.parse::<u64>().ok().map(Duration::from_nanos);
    Some(Measured {
        status: ExitStatus::from_raw(f.first()?.parse().ok()?),
        timed_out: *f.get(1)? == "1",
        wall: nanos(f.get(2)?)?,
        user: nanos(f.get(3)?)?,
        sys: nanos(f.get(4)?)?,
        max_rss: f.get(5)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_kills() {
        let m = run(
            Command::new("sh").args(["-c", "exit 3"]),
            Some(Duration::from_secs(10)),
        )
        .unwrap();
        assert_eq!(m.status.code(), Some(3));
        assert!(!m.timed_out);
        assert!(m.max_rss > 0);
        let m = run(
            Command::new("sleep").arg("10"),
            Some(Duration::from_millis(200)),
        )
        .unwrap();
        assert!(m.timed_out);
        assert!(m.wall < Duration::from_secs(5));
        assert_eq!(m.status.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn reports_round_trip() {
        let m = parse_report("768 0 1500000000 20000 30000 4096").unwrap();
        assert_eq!(m.status.code(), Some(3));
        assert!(!m.timed_out);
        assert_eq!(m.wall, Duration::from_millis(1500));
        assert_eq!(m.cpu(), Duration::from_micros(50));
        assert_eq!(m.max_rss, 4096);
        assert!(parse_report("1 2").is_none());
    }
}
