//! `Storage` over S3 for gc-audit: a registry's bucket, read with few requests and many in
//! flight, never written.
//!
//! # Overview
//!
//! [`S3Storage`] implements [`gc_core::storage::Storage`] over aws-sdk-s3, and
//! [`gc_core::storage::ObjectVersions`] for versioned buckets. It sends only reads —
//! ListObjectsV2, GetObject and HeadObject, and GetBucketVersioning, ListObjectVersions and
//! GetObject of a version — (an interceptor refuses anything but GET and HEAD), counts every
//! attempt it transmits, and shares one concurrency bound between listing pages and reads.
//! Listing splits the key space only where pages come back full, so it costs within a few
//! percent of one request per 1,000 keys at every bucket size ([`list`] explains the bound).
//!
//! # Modules
//!
//! - [`config`]: [`S3Config`] (bucket, root directory, region, endpoint, credentials,
//!   concurrency, timeouts, retries).
//! - [`registry_config`]: the `storage:` section of a registry's `config.yml`.
//! - [`list`]: the concurrent listing and its request bound.
//! - `storage`, `versions`, `client`, `split`, `sdk_error`, `retry`: the storage type, its reads
//!   of object versions, the SDK client, split points, the one mapping from SDK errors to
//!   `StorageError`, and the watch on retries ([`RetryTracker`]).
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use gc_core::audit::{audit, AuditOptions, NoProgress};
//! use gc_s3::{S3Config, S3Storage};
//!
//! let mut cfg = S3Config::new("my-registry-bucket", "/registry");
//! cfg.region = Some("eu-west-1".to_string());
//! let storage = S3Storage::connect(cfg).await?;
//! let outcome = audit(&storage, &AuditOptions::default(), &NoProgress).await;
//! println!("{} requests", outcome.report.summary.requests.list);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod client;
pub mod config;
mod error;
pub mod list;
mod list_xml;
pub mod registry_config;
mod retry;
mod sdk_error;
mod split;
mod spread;
mod storage;
mod versions;

pub use config::{ListTuning, Retries, S3Config, StaticCredentials, Timeouts};
pub use error::{FailureKind, RequestError, S3Error};
pub use registry_config::{RegistryConfigError, RegistryStorage};
pub use retry::RetryTracker;
pub use storage::S3Storage;
