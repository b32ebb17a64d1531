//! `gc-audit scan`: resolve the storage, run the audit, write the reports, print the summary.
//!
//! Order matters: the report folder is prepared (checked, staging folder made) before the
//! first LIST, filled after the audit, and put in place whole before the summary is printed;
//! the exit status is decided before anything reaches stdout.

use crate::cache::CacheChoice;
use crate::config::{Location, ScanConfig};
use crate::human;
use crate::metrics;
use crate::progress::Bars;
use crate::recover::versioning_name;
use crate::report_files::{summary_json, ReportDir};
use crate::Outcome;
use anyhow::{Context, Result};
use gc_core::audit::{audit, AuditOptions};
use gc_core::recover::versions_hint;
use gc_core::storage::{FsStorage, Storage};
use gc_s3::S3Storage;
use std::time::Duration;

/// Open the storage named by the location. An S3 bucket is checked with one listing request
/// first (a spinner meanwhile), so that no credentials, a wrong endpoint or bucket, or a
/// server that does not answer end the run with one line before any progress bar; the page
/// it reads is the first of the audit's listing, which does not ask for it again.
pub(crate) async fn open_storage(location: &Location, bars: &Bars) -> Result<Box<dyn Storage>> {
    match location {
        Location::Fs(path) => Ok(Box::new(FsStorage::new(path))),
        Location::S3(cfg) => {
            let storage = S3Storage::connect((**cfg).clone())
                .await
                .with_context(|| match &cfg.profile {
                    Some(p) => format!("connecting to {} with --profile {p}", cfg.location()),
                    None => format!("connecting to {}", cfg.location()),
                })?;
            bars.watch_retries(storage.retries());
            let started = std::time::Instant::now();
            bars.waiting(&format!("connecting to {}", storage.endpoint()));
            let checked = storage.check_access(gc_core::layout::ROOT).await;
            bars.done_waiting();
            checked?;
            tracing::info!(
                endpoint = storage.endpoint(),
                took_ms = started.elapsed().as_millis() as u64,
                "bucket {} can be listed",
                storage.bucket()
            );
            Ok(Box::new(storage))
        }
    }
}

/// Run a scan; returns the exit status and what to print (decided before anything is printed).
/// With `--metrics-out`, a run that fails before it has a report still writes the metrics of
/// a failed run (last-run time, incomplete, the last success kept).
pub(crate) async fn run(config: ScanConfig) -> Result<Outcome> {
    let result = scan(&config).await;
    let Some(path) = &config.metrics_out else {
        return result.map(|(outcome, _)| outcome);
    };
    match result {
        Ok((outcome, report)) => {
            let run = metrics::Run::Audited {
                report: &report,
                exit_status: outcome.code,
            };
            metrics::write(path, &run, config.metrics_repositories)?;
            Ok(outcome)
        }
        Err(err) => {
            let location = config.location.display();
            let failed = metrics::Run::Failed {
                location: &location,
            };
            if let Err(e) = metrics::write(path, &failed, config.metrics_repositories) {
                crate::say(format_args!("gc-audit: {e:#}"));
            }
            Err(err)
        }
    }
}

/// The audit settings every command gives: its flags, and freed memory handed back between
/// phases (the CLI owns its process, unlike an embedding program).
pub(crate) fn cli_audit_options(
    grace: Duration,
    concurrency: usize,
    verify_links: bool,
    cache: &CacheChoice,
) -> (AuditOptions, Vec<String>) {
    let (manifest_cache, warnings) = crate::cache::open(cache);
    let opts = AuditOptions {
        grace,
        concurrency,
        verify_links,
        release_memory: true,
        manifest_cache,
        ..AuditOptions::default()
    };
    (opts, warnings)
}

/// The scan itself: its outcome and the report it rests on.
async fn scan(config: &ScanConfig) -> Result<(Outcome, gc_core::report::Report)> {
    let bars = Bars::new(config.quiet, crate::logging::verbose());
    let storage = open_storage(&config.location, &bars).await?;
    let dir = ReportDir::prepare(&config.out, config.location.audited_root())?;
    let (opts, cache_warnings) = cli_audit_options(
        config.grace,
        config.concurrency,
        config.verify_links,
        &config.cache,
    );
    let outcome = audit(storage.as_ref(), &opts, &bars).await;
    drop(opts); // the cache: its writer is done before the reports are written
    drop(bars);
    log_link_checks(&outcome.report);
    // On a versioned bucket: how many absent needed keys have a version to come back from.
    // One GetBucketVersioning on S3, nothing more unless the bucket has had versioning; no
    // request at all on a backend without versions.
    let hint = if outcome.report.summary.complete {
        match versions_hint(&outcome, storage.as_ref(), config.concurrency).await {
            Ok(h) => h,
            Err(e) => {
                crate::say(format_args!(
                    "gc-audit: warning: could not look for recoverable versions: {e}"
                ));
                None
            }
        }
    } else {
        None
    };
    let mut report = outcome.report;
    let during_audit = std::mem::take(&mut report.summary.warnings);
    report.summary.warnings = [config.warnings.clone(), cache_warnings, during_audit].concat();
    let status = report.exit_status(config.fail_on_unsafe);
    report.summary.exit_status = status.code();
    let written = dir.write(&report)?;
    let summary = match &hint {
        Some((state, h)) => {
            let mut value = serde_json::to_value(&report.summary)?;
            if let Some(map) = value.as_object_mut() {
                map.insert(
                    "recoverable_versions".into(),
                    serde_json::json!({
                        "versioning": versioning_name(*state),
                        "missing_keys": h.missing_keys,
                        "recoverable": h.recoverable,
                        "listing_pages": h.listing_pages,
                    }),
                );
            }
            let mut bytes = serde_json::to_vec_pretty(&value)?;
            bytes.push(b'\n');
            dir.write_file("summary.json", &bytes)?;
            bytes
        }
        None => summary_json(&report)?,
    };
    let notes: Vec<String> = hint
        .iter()
        .filter(|(_, h)| h.missing_keys > 0)
        .map(|(state, h)| {
            format!(
                "\nbucket versioning {}: {} of {} missing keys have a version to restore; \
                 plan it with: gc-audit recover {}",
                versioning_name(*state),
                h.recoverable,
                h.missing_keys,
                report.summary.location
            )
        })
        .collect();
    let shown = dir.path().to_path_buf();
    dir.commit()?;
    let stdout = if config.json {
        summary
    } else {
        human::render(&report, &shown, &written, status, &notes).into_bytes()
    };
    let outcome = Outcome {
        code: status.code(),
        stdout,
    };
    Ok((outcome, report))
}

/// Log what the link checks decided (how many links their ETag vouched for, how many were
/// read, how many went unverified and why).
fn log_link_checks(report: &gc_core::report::Report) {
    let links = &report.summary.links;
    tracing::info!(
        tags_resolved_by_etag = report.summary.tags_resolved_by_etag,
        cache_hits = report.summary.cache_hits,
        cache_misses = report.summary.cache_misses,
        verified_by_etag = links.verified_by_etag,
        read = links.read,
        unverified = links.unverified,
        why_unverified = links.unverified_why.as_deref().unwrap_or("-"),
        "link checks"
    );
}
