//! `gc-audit scan`: resolve the storage, run the audit, write the reports, print the summary.

use crate::config::{Location, ScanConfig};
use crate::human;
use crate::progress::Bars;
use crate::report_files::{summary_json, ReportDir};
use anyhow::{Context, Result};
use gc_core::audit::{audit, AuditOptions};
use gc_core::report::ExitStatus;
use gc_core::storage::{FsStorage, Storage};
use gc_s3::S3Storage;
use std::io::Write;

/// Open the storage named by the location.
pub(crate) async fn open_storage(location: &Location) -> Result<Box<dyn Storage>> {
    match location {
        Location::Fs(path) => Ok(Box::new(FsStorage::new(path))),
        Location::S3(cfg) => {
            let storage = S3Storage::connect((**cfg).clone())
                .await
                .with_context(|| format!("connecting to {}", cfg.location()))?;
            Ok(Box::new(storage))
        }
    }
}

/// Run a scan; returns the exit status.
pub(crate) async fn run(config: ScanConfig) -> Result<ExitStatus> {
    let storage = open_storage(&config.location).await?;
    let dir = ReportDir::prepare(&config.out)?;
    let opts = AuditOptions {
        grace: config.grace,
        concurrency: config.concurrency,
        verify_links: config.verify_links,
        ..AuditOptions::default()
    };
    let bars = Bars::new(config.quiet);
    let outcome = audit(storage.as_ref(), &opts, &bars).await;
    let report = outcome.report;
    let written = dir.write(&report)?;
    let status = report.exit_status(config.fail_on_unsafe.as_deref());
    let mut stdout = std::io::stdout().lock();
    if config.json {
        stdout.write_all(&summary_json(&report)?)?;
    } else {
        stdout.write_all(human::render(&report, dir.path(), &written, status).as_bytes())?;
    }
    stdout.flush()?;
    Ok(status)
}
