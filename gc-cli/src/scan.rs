//! `gc-audit scan`: resolve the storage, run the audit, write the reports, print the summary.
//!
//! Order matters: the report folder is prepared (checked, staging folder made) before the
//! first LIST, filled after the audit, and put in place whole before the summary is printed;
//! the exit status is decided before anything reaches stdout.

use crate::config::{Location, ScanConfig};
use crate::human;
use crate::progress::Bars;
use crate::report_files::{summary_json, ReportDir};
use crate::Outcome;
use anyhow::{Context, Result};
use gc_core::audit::{audit, AuditOptions};
use gc_core::storage::{FsStorage, Storage};
use gc_s3::S3Storage;

/// Open the storage named by the location. An S3 bucket is checked with one listing request
/// first (a spinner meanwhile), so that no credentials, a wrong endpoint or bucket, or a
/// server that does not answer end the run with one line before any progress bar.
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
            let spinner = bars.waiting(&format!("connecting to {}", storage.endpoint()));
            let checked = storage.check_access().await;
            spinner.finish_and_clear();
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
pub(crate) async fn run(config: ScanConfig) -> Result<Outcome> {
    let bars = Bars::new(config.quiet, crate::logging::verbose());
    let storage = open_storage(&config.location, &bars).await?;
    let audited_root = match &config.location {
        Location::Fs(root) => Some(root.as_path()),
        Location::S3(_) => None,
    };
    let dir = ReportDir::prepare(&config.out, audited_root)?;
    let opts = AuditOptions {
        grace: config.grace,
        concurrency: config.concurrency,
        verify_links: config.verify_links,
        ..AuditOptions::default()
    };
    let outcome = audit(storage.as_ref(), &opts, &bars).await;
    drop(bars);
    log_link_checks(&outcome.report);
    let mut report = outcome.report;
    report.summary.warnings = config.warnings.clone();
    let written = dir.write(&report)?;
    let shown = dir.path().to_path_buf();
    dir.commit()?;
    let status = report.exit_status(config.fail_on_unsafe.as_deref());
    let stdout = if config.json {
        summary_json(&report)?
    } else {
        human::render(&report, &shown, &written, status).into_bytes()
    };
    Ok(Outcome {
        code: status.code(),
        stdout,
    })
}

/// Log what the link checks decided (how many links their ETag vouched for, how many were
/// read, how many went unverified and why).
fn log_link_checks(report: &gc_core::report::Report) {
    let links = &report.summary.links;
    tracing::info!(
        verified_by_etag = links.verified_by_etag,
        read = links.read,
        unverified = links.unverified,
        why_unverified = links.unverified_why.as_deref().unwrap_or("-"),
        "link checks"
    );
}
