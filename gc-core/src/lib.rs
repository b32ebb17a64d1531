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
//! - [`digest`]: compact, strictly parsed digests.
//! - [`layout`]: every storage key kind, parsed and printed.
//! - [`etag`]: what an object store's ETag says about a link's content.
//! - [`storage`]: the `Storage` trait, `FsStorage`, `MemStorage`, the conformance suite.
//! - [`manifest`]: manifests of every kind reduced to typed references.
//! - [`graph`]: the interned reference graph.
//! - [`blobs`]: the blob store table.
//! - [`heap`]: giving freed memory back between phases.
//! - [`links`]: per-repository link tables.
//! - [`mark`]: closures (live, tagged, pull).
//! - [`analysis`]: graph → report rows.
//! - [`gc`]: models of `registry garbage-collect` 2.8 and 3.x, and which of their deletions
//!   remove needed content.
//! - [`report`]: row types, findings, summary, exit status.
//! - [`audit`]: the run that does the reads.
//! - [`recover`]: the plan that brings back what a bad garbage-collect removed.
//! - [`fixture`]: registry trees in memory, written the way a push writes them, for tests.
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

pub mod analysis;
pub mod audit;
pub mod blobs;
pub mod digest;
pub mod etag;
pub mod fixture;
pub mod gc;
pub mod graph;
pub mod heap;
pub mod layout;
pub mod links;
pub mod manifest;
pub mod mark;
mod reads;
pub mod recover;
pub mod report;
pub mod storage;
