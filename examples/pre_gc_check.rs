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
use gc_core::gc::{self, GcModel, GcPlan};
use gc_core::storage::FsStorage;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(root), Some(model)) = (args.first(), args.get(1).and_then(|m| GcModel::parse(m)))
    else {
        eprintln!("usage: pre_gc_check <registry root> <distribution-2.8|distribution-2.8-m|distribution-3|distribution-3-m>");
        return ExitCode::from(2);
    };
    let storage = FsStorage::new(root);
    let outcome = audit(&storage, &AuditOptions::default(), &NoProgress).await;
    if !outcome.report.summary.complete {
        for e in &outcome.report.summary.errors {
            eprintln!("unreadable: {e}");
        }
        return ExitCode::from(2);
    }
    let plan = gc::plan(&outcome.graph, model, outcome.driver);
    if let GcPlan::Aborts(abort) = &plan {
        println!("{model} would stop: {} ({})", abort.message, abort.key);
        return ExitCode::from(3);
    }
    match gc::unsafe_deletions(&outcome.graph, &outcome.marks, model, &plan) {
        Err(u) => {
            eprintln!("cannot predict {model}: {} ({})", u.why, u.key);
            ExitCode::from(2)
        }
        Ok(rows) if rows.is_empty() => {
            println!("{model}: safe to run");
            ExitCode::SUCCESS
        }
        Ok(rows) => {
            for r in &rows {
                println!(
                    "{model} would {} {} ({}) needed by {}",
                    r.action, r.digest, r.kind, r.needed_by
                );
            }
            ExitCode::from(1)
        }
    }
}
