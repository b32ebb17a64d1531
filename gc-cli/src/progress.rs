//! Progress on stderr: one bar per audit phase, shown only on a terminal and never with `-q`
//! or `-v` (where log lines take their place); and the log lines of the phases.
//!
//! A phase with a known total draws a bar with its count, a human rate (`20.4k/s`), the time
//! left and the time elapsed; one without a total draws a spinner that keeps turning while
//! requests are outstanding (a steady tick, not only on progress). A finished phase is cleared,
//! so no `0/0` bar of an empty phase stays on the screen; the log (`-v`) keeps each phase's
//! count and duration instead. While S3 requests are being retried, the bar says so
//! (`retrying 3 requests: SlowDown`), read from gc-s3's [`RetryTracker`].

use gc_core::audit::{Phase, Progress};
use gc_s3::RetryTracker;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The spinner's frames (the last one is shown when it stops, and is never drawn: finished
/// bars are cleared).
const SPINNER_FRAMES: &str = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ";

/// How often the spinner turns and the retry note is refreshed.
const TICK: Duration = Duration::from_millis(120);

/// The phase being shown.
#[derive(Debug)]
struct Current {
    /// The audit phase, or `None` for a wait before the audit (see [`Bars::waiting`]).
    phase: Option<Phase>,
    bar: ProgressBar,
    started: Instant,
    done: Arc<AtomicU64>,
}

#[derive(Debug, Default)]
struct Shared {
    current: Mutex<Option<Current>>,
    retries: Mutex<Option<Arc<RetryTracker>>>,
    stop: AtomicBool,
}

/// A [`Progress`] that draws indicatif bars and logs phases.
#[derive(Debug)]
pub(crate) struct Bars {
    enabled: bool,
    shared: Arc<Shared>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

/// `20.4k/s`, `812/s`, `3.1M/s`.
pub(crate) fn human_rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0/s".to_string();
    }
    let (value, unit) = if per_sec >= 1e6 {
        (per_sec / 1e6, "M")
    } else if per_sec >= 1e3 {
        (per_sec / 1e3, "k")
    } else {
        (per_sec, "")
    };
    if unit.is_empty() {
        format!("{value:.0}/s")
    } else if value >= 100.0 {
        format!("{value:.0}{unit}/s")
    } else {
        format!("{value:.1}{unit}/s")
    }
}

fn rate_key(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = w.write_str(&human_rate(state.per_sec()));
}

fn elapsed_key(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "elapsed {}", clock(state.elapsed()));
}

fn eta_key(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    if state.pos() == 0 {
        let _ = w.write_str("eta --");
    } else {
        let _ = write!(w, "eta {}", clock(state.eta()));
    }
}

/// `0:07`, `12:03`, `1:02:03`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", rate_key)
        .with_key("elapsed_l", elapsed_key)
        .with_key("eta_l", eta_key)
        .progress_chars("=> ")
        .tick_chars(SPINNER_FRAMES)
}

impl Bars {
    /// Bars that draw only when `quiet` is off, `verbose` is off and stderr is a terminal.
    pub(crate) fn new(quiet: bool, verbose: bool) -> Bars {
        let enabled = !quiet && !verbose && std::io::stderr().is_terminal();
        let shared = Arc::new(Shared::default());
        let ticker = enabled.then(|| {
            let shared = shared.clone();
            std::thread::spawn(move || tick(&shared))
        });
        Bars {
            enabled,
            shared,
            ticker,
        }
    }

    /// Show `tracker`'s retries on the bars from now on.
    pub(crate) fn watch_retries(&self, tracker: Arc<RetryTracker>) {
        if let Ok(mut r) = self.shared.retries.lock() {
            *r = Some(tracker);
        }
    }

    /// A spinner labelled `label`, with the retry note, until [`Bars::done_waiting`] or the
    /// first phase (for waits outside the audit's phases: the access check of a bucket).
    pub(crate) fn waiting(&self, label: &str) {
        let bar = if self.enabled {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                .with_style(style("{prefix} {spinner} {elapsed_l}{msg}"))
                .with_prefix(label.to_string());
            bar.enable_steady_tick(TICK);
            bar
        } else {
            ProgressBar::hidden()
        };
        self.replace(Current {
            phase: None,
            bar,
            started: Instant::now(),
            done: Arc::new(AtomicU64::new(0)),
        });
    }

    /// End the wait [`Bars::waiting`] started, clearing its spinner.
    pub(crate) fn done_waiting(&self) {
        let current = match self.shared.current.lock() {
            Ok(mut cur) => cur.take_if(|c| c.phase.is_none()),
            Err(_) => None,
        };
        if let Some(c) = current {
            c.bar.finish_and_clear();
        }
    }

    /// Make `current` the bar shown, ending the one it replaces.
    fn replace(&self, current: Current) {
        let old = match self.shared.current.lock() {
            Ok(mut cur) => cur.replace(current),
            Err(_) => None,
        };
        if let Some(old) = old {
            self.end_current(old);
        }
    }

    fn bar(&self, phase: Phase, total: Option<u64>) -> ProgressBar {
        if !self.enabled || total == Some(0) {
            return ProgressBar::hidden();
        }
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                .with_style(style(
                "{prefix:>26} [{bar:30}] {human_pos}/{human_len} {rate} {eta_l} {elapsed_l}{msg}",
            )),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                style("{prefix:>26} {spinner} {human_pos} {rate} {elapsed_l}{msg}"),
            ),
        };
        bar.set_prefix(phase.label());
        bar.enable_steady_tick(TICK);
        bar
    }

    fn end_current(&self, current: Current) {
        current.bar.finish_and_clear();
        let Some(phase) = current.phase else {
            return;
        };
        let took = current.started.elapsed();
        let items = current.done.load(Ordering::Relaxed);
        tracing::info!(
            phase = phase.label(),
            items,
            took_ms = took.as_millis() as u64,
            "phase done in {:.2} s",
            took.as_secs_f64()
        );
    }
}

/// Refresh the retry note of the current bar until the bars are dropped.
fn tick(shared: &Shared) {
    let mut shown = String::new();
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK * 2);
        let note = shared
            .retries
            .lock()
            .ok()
            .and_then(|r| r.as_ref().and_then(|t| t.summary()))
            .map(|s| format!(" · {s}"))
            .unwrap_or_default();
        if note != shown {
            if let Ok(cur) = shared.current.lock() {
                if let Some(c) = cur.as_ref() {
                    c.bar.set_message(note.clone());
                }
            }
            shown = note;
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Ok(mut cur) = self.shared.current.lock() {
            if let Some(c) = cur.take() {
                c.bar.finish_and_clear();
            }
        }
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: Phase, total: Option<u64>) {
        tracing::info!(phase = phase.label(), total, "phase started");
        let bar = self.bar(phase, total);
        self.replace(Current {
            phase: Some(phase),
            bar,
            started: Instant::now(),
            done: Arc::new(AtomicU64::new(0)),
        });
    }

    fn advance(&self, n: u64) {
        if let Ok(cur) = self.shared.current.lock() {
            if let Some(c) = cur.as_ref() {
                c.bar.inc(n);
                c.done.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    fn finish(&self, _phase: Phase) {
        let old = match self.shared.current.lock() {
            Ok(mut cur) => cur.take(),
            Err(_) => None,
        };
        if let Some(old) = old {
            self.end_current(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_clocks_are_human() {
        assert_eq!(human_rate(20_435.0), "20.4k/s");
        assert_eq!(human_rate(812.4), "812/s");
        assert_eq!(human_rate(3_100_000.0), "3.1M/s");
        assert_eq!(human_rate(250_000.0), "250k/s");
        assert_eq!(human_rate(0.0), "0/s");
        assert_eq!(human_rate(f64::NAN), "0/s");
        assert_eq!(clock(Duration::from_secs(7)), "0:07");
        assert_eq!(clock(Duration::from_secs(723)), "12:03");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
    }
}
