//! Audit the storage of a CNCF distribution registry.
//!
//! # Overview
//!
//! gc-core reads a registry's storage (the v2 layout of `registry`/`docker-registry` 2.x and
//! 3.x) through a read-only [`storage::Storage`], builds the reference graph
//! tag → manifest → index → child manifests → config and layer blobs, marks what is live
//! (reachable from any manifest revision) and what is tagged (reachable from a tag, plus
//! referrers), and reports orphaned blobs, missing content, dangling index children, broken
//! tags, per-repository usage and every other anomaly it meets.
//!
//! # Modules
//!
//! - [`audit`]: the run that does the reads, and its options.
//! - [`report`]: row types, findings, summary, exit status.
//! - [`gc`]: models of `registry garbage-collect` 2.8 and 3.x, their verdicts
//!   ([`GcVerdict`]), and which of their deletions remove needed content.
//! - [`storage`]: the `Storage` trait, `FsStorage`, `MemStorage`, object versions, the
//!   conformance suite (feature `conformance`).
//! - [`layout`]: every storage key kind, parsed and printed.
//! - [`digest`]: compact, strictly parsed digests.
//! - [`manifest`]: manifests of every kind reduced to typed references.
//! - [`graph`]: the interned reference graph, read-only to embedders.
//! - [`mark`]: closures (live, tagged, pull).
//! - [`cache`]: the manifest cache's store contract and entry format.
//! - [`recover`]: the plan that brings back what a bad garbage-collect removed.
//! - `fixture` (feature `test-support`): registry trees in memory, written the way a push
//!   writes them, for tests.
//!
//! Inside: `analysis` (graph → report rows), `blobs` and `links` (the graph's tables),
//! `digest_set`, `etag` (what an object store's ETag says about a link), `heap` (giving freed
//! memory back between phases), `reads` (the read pipeline).
//!
//! # Example
//!
//! ```no_run
//! # async fn example() {
//! use gc_core::{audit, storage::FsStorage};
//! let storage = FsStorage::new("/var/lib/docker-registry");
//! let outcome = audit::audit(&storage, &audit::AuditOptions::default(), &audit::NoProgress).await;
//! println!("exit status {}", outcome.report.exit_status(None).code());
//! # }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod analysis;
pub mod audit;
pub mod beside;
mod blobs;
pub mod cache;
pub mod digest;
mod digest_set;
mod digest_table;
mod etag;
#[cfg(any(test, feature = "test-support"))]
pub mod fixture;
pub mod gc;
pub mod graph;
mod heap;
pub mod layout;
mod links;
pub mod manifest;
pub mod mark;
mod reads;
pub mod recover;
pub mod report;
pub mod storage;

pub use audit::{audit, AuditOptions, AuditOutcome, NoProgress, Progress};
pub use cache::{ManifestStore, MemoryManifestStore};
pub use digest::Digest;
pub use gc::{GcModel, GcVerdict, ModelOutcome, PlanStatus};
pub use layout::Key;
pub use report::{ExitStatus, Report};
pub use storage::{FsStorage, MemStorage, Storage, StorageError};
