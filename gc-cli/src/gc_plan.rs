//! `gc-audit gc-plan`: predict one garbage-collect run and say whether it is safe.
//!
//! Prints the `… eligible for deletion: …` lines exactly as the real `--dry-run` prints them
//! (sorted, so they can be diffed against a sorted real dry run), then one
//! `unsafe deletion: <digest> needed by <who>` line per deletion of needed content, then a
//! summary line. The whole output is built before anything is printed, so the exit status is
//! known first and survives a closed stdout (see `main`).

use crate::config::GcPlanConfig;
use crate::progress::Bars;
use crate::scan::{cli_audit_options, open_storage};
use crate::Outcome;
use anyhow::{bail, Result};
use gc_core::audit::{audit, AuditOptions};
use gc_core::gc::{GcPlan, GcVerdict, PlanStatus};
use std::collections::BTreeSet;
use std::io::Write;

/// Run `gc-plan`; returns the exit code (0 safe, 1 unsafe, 2 incomplete, 3 abort) and the
/// lines to print.
pub(crate) async fn run(config: GcPlanConfig) -> Result<Outcome> {
    let bars = Bars::new(config.quiet, crate::logging::verbose());
    let storage = open_storage(&config.location, &bars).await?;
    let (opts, _printed) = cli_audit_options(
        AuditOptions::default().grace,
        config.concurrency,
        config.verify_links,
        &config.cache,
    );
    let outcome = audit(storage.as_ref(), &opts, &bars).await;
    drop(bars);
    // gc-plan writes no summary.json to carry them: the cache's warnings go to stderr.
    for w in &outcome.report.summary.warnings {
        crate::say(format_args!("gc-audit: warning: {w}"));
    }
    if !outcome.report.summary.complete {
        let errors = outcome.report.summary.errors.join("\n  ");
        bail!("audit incomplete, no prediction made:\n  {errors}");
    }
    let model = config.model;
    let graph = &outcome.graph;
    let Some(assessed) = outcome.report.gc_model(model) else {
        bail!("{model}: the audit did not assess this model");
    };
    let status = outcome.report.plan_status(model);
    if config.json {
        let doc = crate::plan_json::document(&outcome.report, graph, assessed, status);
        let mut out = serde_json::to_vec_pretty(&doc)?;
        out.push(b'\n');
        return deliver(&config, status, out);
    }
    let mut out: Vec<u8> = Vec::new();
    match (&assessed.verdict, &assessed.plan) {
        (GcVerdict::Unpredictable { why }, GcPlan::Unpredictable(u)) => {
            bail!("{model}: cannot predict this run: {why} ({})", u.key)
        }
        (GcVerdict::Aborts { reason, .. }, GcPlan::Aborts(abort)) => {
            writeln!(out, "{}", abort.message)?;
            writeln!(
                out,
                "{model}: garbage-collect would stop on {} ({reason}) and delete nothing",
                abort.key
            )?;
            return deliver(&config, status, out);
        }
        _ => {}
    }
    if !config.unsafe_only {
        for note in assessed.deletions().map_or(&[][..], |d| &d.notes) {
            writeln!(out, "{note}")?;
        }
        for line in assessed.eligible_lines(graph) {
            writeln!(out, "{line}")?;
        }
    }
    let unsafe_lines: BTreeSet<String> = outcome
        .report
        .gc_unsafe
        .iter()
        .filter(|r| r.model == model.name())
        .map(|r| format!("unsafe deletion: {} needed by {}", r.digest, r.needed_by))
        .collect();
    for line in &unsafe_lines {
        writeln!(out, "{line}")?;
    }
    if let Some(line) = assessed.summary_line(graph) {
        writeln!(out, "{line}")?;
    }
    deliver(&config, status, out)
}

/// The output to stdout, or with `--out FILE` into FILE (replaced whole) with only its last
/// line (the verdict) on stdout.
fn deliver(config: &GcPlanConfig, status: PlanStatus, out: Vec<u8>) -> Result<Outcome> {
    let Some(path) = &config.out else {
        return Ok(Outcome {
            code: status.code(),
            stdout: out,
        });
    };
    crate::atomic_file::write_atomically(path, &out)?;
    let text = String::from_utf8_lossy(&out);
    let last = if config.json {
        format!("{} written ({})\n", path.display(), status_name(status))
    } else {
        let line = text.lines().last().unwrap_or_default();
        format!("{line}\n(the whole plan is in {})\n", path.display())
    };
    Ok(Outcome {
        code: status.code(),
        stdout: last.into_bytes(),
    })
}

fn status_name(status: PlanStatus) -> &'static str {
    match status {
        PlanStatus::Safe => "safe",
        PlanStatus::Unsafe => "unsafe",
        PlanStatus::Incomplete => "incomplete",
        PlanStatus::Aborts => "the run would abort",
    }
}
