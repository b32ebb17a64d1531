//! Log lines on stderr through `tracing`: `-v` (phases with their counts and timings, retried
//! and slow S3 requests, what the link checks decided), `-vv` (each failed attempt, more of
//! the SDK), `-vvv` (everything), or a `RUST_LOG` filter, which wins over `-v`.
//!
//! Without `-v` only warnings of gc-audit's own crates are logged, and with `-q` nothing
//! unless `-v` or `RUST_LOG` asks for it. While logging at `-v` or more, the progress bars are
//! off: log lines and redrawn bars on one terminal would garble each other.

use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::EnvFilter;

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Whether log lines at info level or more detailed were asked for.
pub(crate) fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// The filter for `-v` given `count` times, with `-q` or not.
fn directives(count: u8, quiet: bool) -> &'static str {
    match count {
        0 if quiet => "off",
        0 => "gc_audit=warn,gc_s3=warn,gc_core=warn",
        1 => "gc_audit=info,gc_s3=info,gc_core=info",
        2 => "gc_audit=debug,gc_s3=debug,gc_core=debug,aws_config=info,aws_smithy_runtime=info",
        _ => "trace",
    }
}

/// Start logging to stderr.
pub(crate) fn init(count: u8, quiet: bool) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter = match &from_env {
        Some(v) => EnvFilter::try_new(v).unwrap_or_else(|e| {
            crate::say(format_args!(
                "gc-audit: warning: RUST_LOG {v:?} is not a valid filter ({e}); using -v levels"
            ));
            EnvFilter::new(directives(count, quiet))
        }),
        None => EnvFilter::new(directives(count, quiet)),
    };
    VERBOSE.store(count > 0 || from_env.is_some(), Ordering::Relaxed);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(count >= 2)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_logs_nothing_unless_asked() {
        assert_eq!(directives(0, true), "off");
        assert!(directives(0, false).contains("gc_audit=warn"));
        assert!(directives(1, true).contains("gc_audit=info"));
        assert_eq!(directives(5, false), "trace");
    }
}
