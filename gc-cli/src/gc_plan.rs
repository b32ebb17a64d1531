//! `gc-audit gc-plan`: predict one garbage-collect run and say whether it is safe.
//!
//! Prints the `… eligible for deletion: …` lines exactly as the real `--dry-run` prints them
//! (sorted, so they can be diffed against a sorted real dry run), then one
//! `unsafe deletion: <digest> needed by <who>` line per deletion of needed content, then a
//! summary line. The whole output is built before anything is printed, so the exit status is
//! known first and survives a closed stdout (see `main`).

use crate::config::GcPlanConfig;
use crate::progress::Bars;
use crate::scan::open_storage;
use crate::Outcome;
use anyhow::{bail, Result};
use gc_core::audit::{audit, AuditOptions};
use gc_core::gc::{GcPlan, GcVerdict};
use std::collections::BTreeSet;
use std::io::Write;

/// Run `gc-plan`; returns the exit code (0 safe, 1 unsafe, 2 incomplete, 3 abort) and the
/// lines to print.
pub(crate) async fn run(config: GcPlanConfig) -> Result<Outcome> {
    let storage = open_storage(&config.location).await?;
    let opts = AuditOptions {
        concurrency: config.concurrency,
        verify_links: config.verify_links,
        release_memory: true,
        ..AuditOptions::default()
    };
    let bars = Bars::new(config.quiet);
    let outcome = audit(storage.as_ref(), &opts, &bars).await;
    if !outcome.report.summary.complete {
        let errors = outcome.report.summary.errors.join("\n  ");
        bail!("audit incomplete, no prediction made:\n  {errors}");
    }
    let model = config.model;
    let graph = &outcome.graph;
    let Some(assessed) = outcome.report.gc_model(model) else {
        bail!("{model}: the audit did not assess this model");
    };
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
            return Ok(Outcome {
                code: assessed.status().code(),
                stdout: out,
            });
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
    Ok(Outcome {
        code: outcome.report.plan_status(model).code(),
        stdout: out,
    })
}
