//! A pre-GC check an ops tool can embed: is it safe to run `registry garbage-collect` now?
//!
//! ```text
//! cargo run -p gc-core --example pre_gc_check -- /var/lib/docker-registry distribution-2.8-m
//! ```
//!
//! Exit status: 0 = the modelled GC deletes nothing that a tag (or, without -m, a digest)
//! still needs; 1 = it would break images (they are printed); 2 = the audit could not read
//! everything; 3 = that GC would stop with an error on this storage.

use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::gc::{GcModel, GcVerdict};
use gc_core::storage::FsStorage;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(root), Some(Ok(model))) = (args.first(), args.get(1).map(|m| m.parse::<GcModel>()))
    else {
        eprintln!("usage: pre_gc_check <registry root> <distribution-2.8|distribution-2.8-m|distribution-3|distribution-3-m>");
        return ExitCode::from(2);
    };
    let report = audit(&FsStorage::new(root), &AuditOptions::default(), &NoProgress)
        .await
        .report;
    match report.gc_verdict(model) {
        None => eprintln!("audit incomplete: {}", report.summary.errors.join("; ")),
        Some(GcVerdict::Safe) => println!("{model}: safe to run"),
        Some(GcVerdict::Unsafe { rows, images }) => {
            println!("{model} would make {rows} deletions of needed content, breaking:");
            images.iter().for_each(|image| println!("  {image}"));
        }
        Some(GcVerdict::Aborts {
            reason,
            key_or_digest,
        }) => {
            println!("{model} would stop: {reason} at {key_or_digest}")
        }
        Some(GcVerdict::Unpredictable { why }) => eprintln!("cannot predict {model}: {why}"),
    }
    ExitCode::from(report.plan_status(model).code())
}
