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
use gc_core::gc::{self, GcPlan};
use indicatif::HumanBytes;
use std::collections::BTreeSet;
use std::io::Write;

/// Run `gc-plan`; returns the exit code (0 safe, 1 unsafe, 2 incomplete, 3 abort) and the
/// lines to print.
pub(crate) async fn run(config: GcPlanConfig) -> Result<Outcome> {
    let bars = Bars::new(config.quiet, crate::logging::verbose());
    let storage = open_storage(&config.location, &bars).await?;
    let opts = AuditOptions {
        concurrency: config.concurrency,
        verify_links: config.verify_links,
        ..AuditOptions::default()
    };
    let outcome = audit(storage.as_ref(), &opts, &bars).await;
    drop(bars);
    if !outcome.report.summary.complete {
        let errors = outcome.report.summary.errors.join("\n  ");
        bail!("audit incomplete, no prediction made:\n  {errors}");
    }
    let model = config.model;
    let plan = gc::plan(&outcome.graph, model, outcome.driver);
    let mut out: Vec<u8> = Vec::new();
    let deletions = match &plan {
        GcPlan::Unpredictable(u) => {
            bail!("{model}: cannot predict this run: {} ({})", u.why, u.key)
        }
        GcPlan::Aborts(abort) => {
            writeln!(out, "{}", abort.message)?;
            writeln!(
                out,
                "{model}: garbage-collect would stop on {} ({}) and delete nothing",
                abort.key, abort.reason
            )?;
            return Ok(Outcome {
                code: 3,
                stdout: out,
            });
        }
        GcPlan::Completes(d) => d,
    };
    if !config.unsafe_only {
        for note in &deletions.notes {
            writeln!(out, "{note}")?;
        }
        for line in gc::eligible_lines(&outcome.graph, model, deletions) {
            writeln!(out, "{line}")?;
        }
    }
    let rows = gc::unsafe_deletions(&outcome.graph, &outcome.marks, model, &plan)
        .map_err(|u| anyhow::anyhow!("{model}: cannot predict this run: {} ({})", u.why, u.key))?;
    let unsafe_lines: BTreeSet<String> = rows
        .iter()
        .map(|r| format!("unsafe deletion: {} needed by {}", r.digest, r.needed_by))
        .collect();
    for line in &unsafe_lines {
        writeln!(out, "{line}")?;
    }
    let blob_bytes: u64 = deletions
        .blobs
        .iter()
        .filter_map(|b| outcome.graph.blobs.get(b).map(|i| i.size))
        .sum();
    let mut broken: BTreeSet<&str> = BTreeSet::new();
    for r in &rows {
        broken.insert(r.needed_by.split(' ').next().unwrap_or(""));
    }
    let layer_links = match deletions.layer_link_count() {
        0 => String::new(),
        n => format!(", {n} layer links"),
    };
    writeln!(
        out,
        "{model}: {} blobs marked, {} blobs ({}) and {} manifests eligible for deletion{layer_links}; {} unsafe deletions breaking {} images",
        deletions.marked,
        deletions.blobs.len(),
        HumanBytes(blob_bytes),
        deletions.manifests.len(),
        rows.len(),
        broken.len()
    )?;
    Ok(Outcome {
        code: if rows.is_empty() { 0 } else { 1 },
        stdout: out,
    })
}
