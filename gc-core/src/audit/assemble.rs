//! The report assembly of an audit: once the reads are done, the graph is marked, every GC
//! model assessed once, the rows analysed, and the summary filled; an incomplete audit
//! withholds the rows absence of data could make wrong.

use super::{AuditOutcome, Phase, Run};
use crate::analysis::{analyse, AnalysisOptions};
use crate::gc::{self, Driver, GcModel};
use crate::graph::{Graph, TagTarget};
use crate::mark::{mark_all, GlobalMarks};
use crate::report::{
    Finding, FindingKind, GcUnsafeRow, ModelSummary, ReclaimableBy, Report, Totals, SCHEMA_VERSION,
};
use crate::storage::RequestCounts;
use std::time::{Instant, SystemTime};

impl Run<'_> {
    /// Build the outcome from what the reads found; `as_of` is when the last look began,
    /// `called` when the audit was called (the run's start may be earlier: a read the storage
    /// held), `clock` the monotonic clock from then.
    pub(super) fn assemble(
        self,
        as_of: SystemTime,
        called: SystemTime,
        clock: Instant,
    ) -> AuditOutcome {
        let mut run = self;
        let (storage, opts, progress, started) = (run.storage, run.opts, run.progress, run.started);
        run.graph.shrink_to_fit();
        if opts.release_memory {
            crate::heap::release_free_memory();
        }

        progress.start(Phase::Analysis, None);
        let analysis = AnalysisOptions {
            now: run.now,
            grace: opts.grace,
            stale_upload_age: opts.stale_upload_age,
        };
        let marks = mark_all(&run.graph);
        let driver = storage.gc_driver();
        let mut findings = std::mem::take(&mut run.findings);
        let (graph, release) = (&run.graph, opts.release_memory);
        // The 3.x models on a second thread (after the rest when none starts), while the 2.8
        // models and then the rows' analysis run here: at 1M keys the 3.x pair takes ~0.5 s,
        // the 2.8 pair ~0.25 s and the analysis ~0.3 s. (Running the 2.8 pair first, alone,
        // kept 2.8 -m's work space from overlapping the others': 2 MB less at the peak, for
        // 0.2 s more.) In report order by construction: the 2.8 pair, then the 3.x pair.
        let (v3, (mut assessed, mut report)) = crate::beside::beside(
            "gc-audit-gc-models",
            || assess_models(graph, &marks, driver, V3_MODELS, release),
            || {
                let assessed = assess_models(graph, &marks, driver, V2_8_MODELS, release);
                let report = analyse(
                    graph,
                    &marks,
                    &mut findings,
                    &run.content_mismatch,
                    &analysis,
                );
                (assessed, report)
            },
        );
        assessed.extend(v3);
        // The rows of all models in one vector, built around the largest model's (moved, not
        // copied: at a million keys 2.8 -m's rows are 7 MB). Grown from the first model's, the
        // vector was copied twice as it doubled, and the peak resident size of the whole
        // audit was that moment: the old and new buffers and the rows being appended.
        let total_rows: usize = assessed.iter().map(|(_, _, rows)| rows.len()).sum();
        let mut gc_unsafe = assessed
            .iter_mut()
            .map(|(_, _, rows)| rows)
            .max_by_key(|rows| rows.len())
            .map(std::mem::take)
            .unwrap_or_default();
        gc_unsafe.reserve_exact(total_rows - gc_unsafe.len());
        let mut gc_models = Vec::with_capacity(GcModel::ALL.len());
        for (model, outcome, rows) in assessed {
            if let gc::GcPlan::Unpredictable(u) = &outcome.plan {
                findings.push(Finding {
                    repository: u.repository.clone(),
                    key: u.key.clone(),
                    kind: FindingKind::GcUnpredictable,
                    detail: format!("{model}: cannot predict its run: {}", u.why),
                });
            }
            gc_unsafe.extend(rows);
            gc_models.push(outcome);
        }
        findings.sort_unstable();
        findings.dedup();
        report.findings = findings.iter().map(Into::into).collect();
        // Rows are ordered by every field: equal rows are identical, so unstable = stable.
        gc_unsafe.sort_unstable();
        report.gc_unsafe = gc_unsafe;
        report.gc_models = gc_models;
        progress.finish(Phase::Analysis);

        let graph = run.graph;
        let complete = run.errors.is_empty();
        let s = &mut report.summary;
        s.tool = "gc-audit".to_string();
        s.version = env!("CARGO_PKG_VERSION").to_string();
        s.location = storage.location();
        s.backend = storage.name().to_string();
        s.complete = complete;
        s.started_at = humantime::format_rfc3339_millis(started).to_string();
        let finished = called + clock.elapsed();
        s.finished_at = humantime::format_rfc3339_millis(finished).to_string();
        s.as_of = humantime::format_rfc3339_millis(as_of).to_string();
        s.writes_during_scan = run.writes.len() as u64;
        s.duration_seconds = finished
            .duration_since(started)
            .unwrap_or_default()
            .as_secs_f64();
        s.grace_seconds = opts.grace.as_secs();
        s.totals = Totals {
            keys: run.keys_listed,
            blobs: graph.blobs().len() as u64,
            bytes: graph.blobs().values().map(|b| b.size).sum(),
            repositories: graph.repos().len() as u64,
            tags: graph
                .repos()
                .values()
                .map(|r| {
                    r.tags
                        .values()
                        .filter(|t| !matches!(t.target, TagTarget::NoCurrent))
                        .count() as u64
                })
                .sum(),
            manifests: graph.manifests().len() as u64,
            revisions: graph
                .repos()
                .values()
                .map(|r| r.revisions.len() as u64)
                .sum(),
        };
        s.requests = storage.request_counts();
        let last_look_pages = if run.last_look_keys > 0 || as_of != started {
            run.last_look_keys.div_ceil(1000).max(1)
        } else {
            0
        };
        s.requests_single_pass_minimum = RequestCounts {
            list: run.keys_listed.div_ceil(1000).max(1) + last_look_pages,
            get: s.totals.tags + graph.manifests().len() as u64 + run.links.read,
            head: (run.confirmed.len() + run.confirmed_links.len()) as u64,
        };
        s.requests_minimum = RequestCounts {
            get: s.requests_single_pass_minimum.get
                - run.tags_resolved_by_etag.min(s.totals.tags)
                - run.cache_hits.min(graph.manifests().len() as u64),
            ..s.requests_single_pass_minimum
        };
        s.tags_resolved_by_etag = run.tags_resolved_by_etag;
        s.links_verified_by_etag = run.links.verified_by_etag;
        s.manifest_cache = opts.manifest_cache.as_ref().map(|c| c.location());
        s.cache_hits = run.cache_hits;
        s.cache_misses = run.cache_misses;
        s.warnings.extend(run.cache_warnings);
        s.links = run.links;
        s.errors = run.errors.iter().take(100).cloned().collect();
        if !complete {
            s.withheld = crate::report::WITHHELD_WHEN_INCOMPLETE
                .iter()
                .map(|f| f.to_string())
                .collect();
            report.orphaned.clear();
            report.missing.clear();
            report.dangling.clear();
            report.gc_unsafe.clear();
            report.broken.clear();
            report.repos.clear();
        }
        summarise_rows(&mut report);
        report.summary.schema_version = SCHEMA_VERSION;
        report.summary.exit_status = report.exit_status(None).code();
        AuditOutcome {
            report,
            graph,
            marks,
            driver,
        }
    }
}

/// The models assessed on the audit's own thread, and on the second one (see `assemble`);
/// together, [`GcModel::ALL`] in its order.
const V2_8_MODELS: [GcModel; 2] = [GcModel::ALL[0], GcModel::ALL[1]];
const V3_MODELS: [GcModel; 2] = [GcModel::ALL[2], GcModel::ALL[3]];

/// Each of `models` assessed, in their order; with `release`, the memory an assessment freed
/// goes back to the system before the next one (see [`crate::heap`]).
fn assess_models(
    graph: &Graph,
    marks: &GlobalMarks,
    driver: Driver,
    models: [GcModel; 2],
    release: bool,
) -> Vec<(GcModel, gc::ModelOutcome, Vec<GcUnsafeRow>)> {
    models
        .into_iter()
        .map(|model| {
            let (outcome, rows) = gc::assess(graph, marks, model, driver);
            if release {
                crate::heap::release_free_memory();
            }
            (model, outcome, rows)
        })
        .collect()
}

/// Fill the summary's counts from the rows.
fn summarise_rows(report: &mut Report) {
    let gc_models = GcModel::ALL
        .into_iter()
        .map(|model| {
            let summary = ModelSummary::of(report.gc_assessed(model), &report.gc_unsafe);
            (model.name().to_string(), summary)
        })
        .collect();
    let s = &mut report.summary;
    s.gc_models = gc_models;
    for row in report.orphaned.iter() {
        let bucket = if row.young {
            &mut s.young
        } else if row.reclaimable_by == ReclaimableBy::Gc {
            &mut s.reclaimable_by_gc
        } else {
            &mut s.reclaimable_by_gc_delete_untagged
        };
        bucket.add(row.size);
    }
    s.missing = report.missing.len() as u64;
    s.dangling = report.dangling.len() as u64;
    s.broken_tags = report.broken.len() as u64;
    s.gc_unsafe.clear();
    for row in &report.gc_unsafe {
        *s.gc_unsafe.entry(row.model.to_string()).or_default() += 1;
    }
    s.findings.clear();
    s.findings_by_severity.clear();
    for row in &report.findings {
        *s.findings.entry(row.kind.clone()).or_default() += 1;
        if let Some(kind) = FindingKind::from_name(&row.kind) {
            *s.findings_by_severity
                .entry(kind.severity().name().to_string())
                .or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_threads_models_are_every_model_in_report_order() {
        let both: Vec<GcModel> = V2_8_MODELS.into_iter().chain(V3_MODELS).collect();
        assert_eq!(both, GcModel::ALL);
    }
}
