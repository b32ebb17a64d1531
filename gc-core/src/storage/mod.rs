//! The `Storage` trait: the only way gc-core reads a registry's storage.
//!
//! # Contract
//!
//! Keys are driver-relative paths without a leading `/`
//! (`docker/registry/v2/blobs/sha256/ab/ab…/data`). A storage backend offers three reads and
//! nothing else, because the auditor must never write:
//!
//! - [`Storage::list`] streams the metadata of every object whose key starts with `prefix`.
//!   `prefix` is empty or ends with `/`, so it matches whole path segments
//!   (`repositories/foo/` does not list `repositories/foobar/`). Listing is recursive and its
//!   order is **not** guaranteed: gc-core sorts before it reports. An error item does not end
//!   the stream by itself; the backend decides whether it can go on. A backend with real
//!   directories also lists each *empty* directory, as its key with a trailing `/` and size 0
//!   (an object store lists a zero-byte `folder/` object the same way).
//! - [`Storage::get`] reads a whole object, refusing objects larger than `max_bytes` with
//!   [`StorageError::TooLarge`] before reading them. A missing object is `Ok(None)`.
//! - [`Storage::head`] returns an object's metadata, or `Ok(None)` when it does not exist.
//!
//! Not-found is a value, never an error string: the auditor reasons about absence. Every other
//! failure is a [`StorageError`] that names the key or prefix, and makes an audit incomplete.
//!
//! Backends count their own requests ([`Storage::request_counts`]) so a report can say what a
//! run cost.

mod error;
mod fs;
mod mem;
mod spread;
mod versions;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use crate::gc::Driver as GcDriver;
pub use error::StorageError;
pub use fs::FsStorage;
pub use mem::MemStorage;
pub use spread::KeySpread;
pub use versions::{ObjectVersion, ObjectVersions, Versioning};

use futures::stream::BoxStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The metadata of one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Driver-relative key, no leading `/`.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, as the backend reports it.
    pub last_modified: SystemTime,
    /// The backend's entity tag, when it has one (S3: `"<md5>"` for single-part objects).
    pub e_tag: Option<String>,
}

/// Requests made by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// Listing requests (an S3 ListObjectsV2 page; a directory read on a filesystem).
    #[serde(rename = "LIST")]
    pub list: u64,
    /// Whole-object reads.
    #[serde(rename = "GET")]
    pub get: u64,
    /// Metadata reads.
    #[serde(rename = "HEAD")]
    pub head: u64,
}

/// Thread-safe request counters for backends.
#[derive(Debug, Default)]
pub struct RequestCounter {
    list: AtomicU64,
    get: AtomicU64,
    head: AtomicU64,
}

impl RequestCounter {
    /// Count one listing request.
    pub fn list(&self) {
        self.list.fetch_add(1, Ordering::Relaxed);
    }
    /// Count one GET.
    pub fn get(&self) {
        self.get.fetch_add(1, Ordering::Relaxed);
    }
    /// Count one HEAD.
    pub fn head(&self) {
        self.head.fetch_add(1, Ordering::Relaxed);
    }
    /// The counts so far.
    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            list: self.list.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            head: self.head.load(Ordering::Relaxed),
        }
    }
}

/// Read-only access to a registry's storage. See the module documentation for the contract.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// A short name of the backend for messages (`"filesystem"`, `"s3"`, `"memory"`); the
    /// default is `"custom"`.
    fn name(&self) -> &'static str {
        "custom"
    }

    /// Human-readable location, e.g. `/srv/registry` or `s3://bucket/root`.
    fn location(&self) -> String;

    /// Every object under `prefix` (empty, or ending in `/`), in no particular order.
    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta, StorageError>>;

    /// [`Storage::list`], told how `prefix`'s keys were spread when it was last listed (a
    /// hint: the keys listed are the same with any spread). The default ignores it.
    fn list_spread(
        &self,
        prefix: &str,
        spread: Option<&KeySpread>,
    ) -> BoxStream<'_, Result<ObjectMeta, StorageError>> {
        let _ = spread;
        self.list(prefix)
    }

    /// How the keys of this storage's last complete listing of `prefix` were spread, if it
    /// records that (an S3 storage does), taken (asked again, it is `None`); `None` after a
    /// listing that failed anywhere.
    fn key_spread(&self, prefix: &str) -> Option<KeySpread> {
        let _ = prefix;
        None
    }

    /// The whole object at `key`, or `None` if it does not exist. Objects larger than
    /// `max_bytes` are refused with [`StorageError::TooLarge`].
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, StorageError>;

    /// The metadata of the object at `key`, or `None` if it does not exist.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError>;

    /// Requests made so far. The default counts nothing (summary.json then reports zero
    /// requests).
    fn request_counts(&self) -> RequestCounts {
        RequestCounts::default()
    }

    /// How the registry's storage driver over this backend walks keys, which decides the
    /// order a garbage-collect run visits repositories and links in (see [`GcDriver`]). The
    /// default is the filesystem driver's; object stores return [`GcDriver::ObjectStore`].
    fn gc_driver(&self) -> GcDriver {
        GcDriver::Filesystem
    }

    /// What lies directly under and beside this storage's root, for the message an audit gives
    /// when it finds no registry there (a mistyped root). Costs one or two listing requests;
    /// called only in that case. The default knows nothing.
    async fn survey_root(&self) -> Result<RootSurvey, StorageError> {
        Ok(RootSurvey::default())
    }

    /// When the earliest read this storage holds for a coming [`Storage::list`] was sent, if
    /// it holds one (an S3 storage keeps the page its access check read as the first page of
    /// the listing it begins). An audit starts its clock no later than this: a key written
    /// after that read but before the audit began would otherwise pass as older than the run
    /// while the listing shows it as it was. The default holds none.
    fn earliest_held_read(&self) -> Option<SystemTime> {
        None
    }

    /// The backend's reads of object versions, if it keeps them (an S3 bucket). Recovery uses
    /// them; the default has none.
    fn versions(&self) -> Option<&dyn ObjectVersions> {
        None
    }
}

/// What lies around a storage's root ([`Storage::survey_root`]): names a person can compare
/// with what they typed. At most [`RootSurvey::MAX_ENTRIES`] of each, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootSurvey {
    /// Entries directly under the root (`docker/`, `backup.tar`): a `/` ends each prefix or
    /// directory.
    pub under_root: Vec<String>,
    /// Entries beside the root, under its parent (S3: the common prefixes and keys of the
    /// root's parent prefix in the bucket; filesystem: the parent directory), named relative to
    /// that parent, a `/` ending each prefix or directory. Empty when the root has no parent
    /// (the top of a bucket, `/`).
    pub beside_root: Vec<String>,
}

impl RootSurvey {
    /// How many entries of each kind a survey keeps.
    pub const MAX_ENTRIES: usize = 20;
}

/// Whether `prefix` is acceptable to [`Storage::list`]: empty or ending in `/`.
pub fn valid_prefix(prefix: &str) -> bool {
    prefix.is_empty() || (prefix.ends_with('/') && !prefix.starts_with('/'))
}
