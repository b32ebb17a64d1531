//! `gc-audit scan`: resolve the storage, run the audit, write the reports, print the summary.
//!
//! Order matters: the report folder is prepared (checked, staging folder made) before the
//! first LIST, filled after the audit, and put in place whole before the summary is printed;
//! the exit status is decided before anything reaches stdout.

use crate::config::{Location, ScanConfig};
use crate::human;
use crate::progress::Bars;
use crate::recover::versioning_name;
use crate::report_files::{summary_json, ReportDir};
use crate::Outcome;
use anyhow::{Context, Result};
use gc_core::audit::{audit, AuditOptions};
use gc_core::recover::versions_hint;
use gc_core::storage::{FsStorage, Storage};
use gc_s3::S3Storage;

/// Open the storage named by the location.
pub(crate) async fn open_storage(location: &Location) -> Result<Box<dyn Storage>> {
    match location {
        Location::Fs(path) => Ok(Box::new(FsStorage::new(path))),
        Location::S3(cfg) => {
            let storage = S3Storage::connect((**cfg).clone())
                .await
                .with_context(|| match &cfg.profile {
                    Some(p) => format!("connecting to {} with --profile {p}", cfg.location()),
                    None => format!("connecting to {}", cfg.location()),
                })?;
            Ok(Box::new(storage))
        }
    }
}

/// Run a scan; returns the exit status and what to print (decided before anything is printed).
pub(crate) async fn run(config: ScanConfig) -> Result<Outcome> {
    let storage = open_storage(&config.location).await?;
    let audited_root = match &config.location {
        Location::Fs(root) => Some(root.as_path()),
        Location::S3(_) => None,
    };
    let dir = ReportDir::prepare(&config.out, audited_root)?;
    let opts = AuditOptions {
        grace: config.grace,
        concurrency: config.concurrency,
        verify_links: config.verify_links,
        release_memory: true,
        ..AuditOptions::default()
    };
    let bars = Bars::new(config.quiet);
    let outcome = audit(storage.as_ref(), &opts, &bars).await;
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
    report.summary.warnings = config.warnings.clone();
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
    Ok(Outcome {
        code: status.code(),
        stdout,
    })
}
