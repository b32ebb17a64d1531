//! An in-process, in-memory S3 protocol server on 127.0.0.1, for tests and benchmarks.
//!
//! # Overview
//!
//! [`S3MemServer::start`] binds `127.0.0.1:0` and serves the S3 REST protocol (through the
//! `s3s` crate) from a background thread with its own tokio runtime, so it works the same from
//! `#[tokio::test]`s, from plain `#[test]`s and from benchmark binaries. Objects live in one
//! sorted map per bucket: a million keys list at thousands of pages per second.
//!
//! Clients must use path-style addressing (`force_path_style(true)`), region
//! [`REGION`] or any other, and the static credentials [`ACCESS_KEY`] / [`SECRET_KEY`]
//! (signatures are verified by s3s; unsigned requests are accepted too).
//!
//! Operations: CreateBucket, HeadBucket, ListBuckets, PutObject, GetObject (with `Range`),
//! HeadObject, DeleteObject, DeleteObjects, CopyObject, the multipart uploads, ListObjectsV2
//! (prefix, delimiter, max-keys ≤ 1000, continuation-token, start-after) and ListObjects (V1,
//! marker). Keys list in UTF-8 byte order; `ETag` is the quoted MD5 of the content;
//! `LastModified` has whole seconds, like S3.
//!
//! # Bucket versioning
//!
//! As S3 has it: PutBucketVersioning / GetBucketVersioning (`Enabled`, `Suspended`, no status
//! for a bucket that never had it); on a versioned bucket every write (PutObject,
//! CompleteMultipartUpload, CopyObject) makes a new version and answers with its
//! `x-amz-version-id`, objects written before versioning are the `null` version, and a write
//! while suspended replaces the `null` version. DeleteObject and DeleteObjects without a
//! version id add a delete marker; with one they remove exactly that version or marker.
//! GetObject, HeadObject and the `x-amz-copy-source` of CopyObject / UploadPartCopy take a
//! `versionId`. A key whose newest version is a delete marker is 404 `NoSuchKey` (with
//! `x-amz-delete-marker: true`) and missing from ListObjects; a read of a delete marker's
//! version id is 405 `MethodNotAllowed`; of a version id the key does not have, 404
//! `NoSuchVersion`. ListObjectVersions lists versions and delete markers by key, newest first,
//! with prefix, delimiter, max-keys and key-marker / version-id-marker paging. Details in the
//! `store` module. [`S3MemServer::set_versioning`] and [`S3MemServer::object_versions`] set and
//! inspect versions without a request.
//!
//! # Test controls
//!
//! - Seeding without HTTP: [`S3MemServer::put_object_direct`], [`S3MemServer::put_objects_direct`].
//! - A log of every request ([`S3MemServer::requests`], [`S3MemServer::operation_counts`]).
//! - Read-only mode ([`S3MemServer::set_read_only`]): anything but a read is refused with 403
//!   `AccessDenied`, and logged.
//! - Faults ([`S3MemServer::set_faults`]): 503 `SlowDown`, 500 `InternalError`, a dropped
//!   connection, or a damaged 200 answer (a body cut short, with a matching `Content-Length`
//!   or broken off mid-body; a ListObjectsV2 page with a wrong or missing `KeyCount` or no
//!   `IsTruncated`) for every n-th request, k of every n, or the first attempts of each
//!   request, optionally only for some operations; and keys under a prefix that fail forever.
//! - Objects without `LastModified` in listings, GET and HEAD
//!   ([`S3MemServer::set_omit_last_modified`]).
//! - Latency per request ([`S3MemServer::set_latency`]) and the maximum number of requests in
//!   flight ([`S3MemServer::max_in_flight`]).
//!
//! # Example
//!
//! ```no_run
//! let server = s3_mem_server::S3MemServer::start().expect("server");
//! server.create_bucket("registry");
//! server.put_object_direct("registry", "a/b", b"hello".to_vec(), std::time::SystemTime::now());
//! println!("S3 endpoint: {}", server.endpoint());
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod backend;
mod body_fault;
mod control;
mod http;
mod multipart;
pub mod sample;
mod store;

pub use backend::MAX_KEYS;
pub use control::{CutAt, FaultKind, Faults, RequestRecord, READ_OPERATIONS};
pub use store::BucketVersioning;

use backend::MemS3;
use bytes::Bytes;
use control::{Control, Gate};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};
use store::{Store, StoredObject};
use tokio::sync::watch;

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "gc-audit-test";
/// The secret key of [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "gc-audit-test-secret";
/// The region tests should use (the server does not check it).
pub const REGION: &str = "us-east-1";

/// Failure to start the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding 127.0.0.1 or building the runtime failed.
    #[error("s3-mem-server: {0}")]
    Io(#[from] std::io::Error),
}

/// Settings of [`S3MemServer::start_with`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Worker threads of the server's runtime (default 2).
    pub worker_threads: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { worker_threads: 2 }
    }
}

/// One version of a key, as [`S3MemServer::object_versions`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version id (`null` for objects written before versioning was enabled).
    pub version_id: String,
    /// Whether it is a delete marker.
    pub delete_marker: bool,
    /// The content (empty for a delete marker); shares the stored bytes.
    pub data: Bytes,
    /// When it was written (whole seconds).
    pub last_modified: SystemTime,
}

/// A running server. Dropping it stops it.
#[derive(Debug)]
pub struct S3MemServer {
    addr: SocketAddr,
    store: Store,
    control: Arc<Control>,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl S3MemServer {
    /// Start a server on `127.0.0.1` with an OS-chosen port and default options.
    pub fn start() -> Result<Self, ServerError> {
        Self::start_with(ServerOptions::default())
    }

    /// Start a server with `options`.
    pub fn start_with(options: ServerOptions) -> Result<Self, ServerError> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads.max(1))
            .thread_name("s3-mem-server")
            .enable_all()
            .build()?;
        let store = Store::default();
        let control = Arc::new(Control::default());
        let mut builder = S3ServiceBuilder::new(MemS3 {
            store: store.clone(),
            control: control.clone(),
            uploads: Arc::default(),
        });
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        builder.set_access(Gate {
            control: control.clone(),
        });
        let service = builder.build();
        let (tx, rx) = watch::channel(false);
        let serve_control = control.clone();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let thread = std::thread::Builder::new()
            .name("s3-mem-server-main".to_string())
            .spawn(move || {
                runtime.block_on(http::serve(listener, service, serve_control, rx));
                runtime.shutdown_background();
            })?;
        Ok(S3MemServer {
            addr,
            store,
            control,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Create `bucket` without a request; false if it existed.
    pub fn create_bucket(&self, bucket: &str) -> bool {
        self.store.create_bucket(bucket)
    }

    /// Store an object without a request (creating the bucket if needed). ETag,
    /// last-modified (truncated to whole seconds) and, on a versioned bucket, the new version
    /// are set as PutObject would set them.
    pub fn put_object_direct(
        &self,
        bucket: &str,
        key: &str,
        data: impl Into<Bytes>,
        last_modified: SystemTime,
    ) {
        let object = StoredObject::new(data.into(), last_modified);
        self.store.put_many(bucket, [(key.to_string(), object)]);
    }

    /// Store many objects under one lock; for loading a million keys quickly.
    pub fn put_objects_direct<K, D>(
        &self,
        bucket: &str,
        objects: impl IntoIterator<Item = (K, D, SystemTime)>,
    ) where
        K: Into<String>,
        D: Into<Bytes>,
    {
        let objects = objects
            .into_iter()
            .map(|(k, d, t)| (k.into(), StoredObject::new(d.into(), t)));
        self.store.put_many(bucket, objects);
    }

    /// The content of an object's current version, read without a request (none behind a
    /// delete marker).
    pub fn object(&self, bucket: &str, key: &str) -> Option<Bytes> {
        self.store.get(bucket, key).ok().flatten().map(|o| o.data)
    }

    /// Every key of `bucket` with a current version (not behind a delete marker), sorted,
    /// read without a request.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.store.keys(bucket)
    }

    /// Number of objects in `bucket` (keys not behind a delete marker).
    pub fn object_count(&self, bucket: &str) -> usize {
        self.store.len(bucket)
    }

    /// Set the versioning state of `bucket` without a request; false if there is no such
    /// bucket. [`BucketVersioning::Unversioned`] (which S3 itself never goes back to) makes
    /// later writes replace the whole key and deletes remove it.
    pub fn set_versioning(&self, bucket: &str, versioning: BucketVersioning) -> bool {
        self.store.set_versioning(bucket, versioning).is_ok()
    }

    /// The versioning state of `bucket` (`None` if there is no such bucket).
    pub fn versioning(&self, bucket: &str) -> Option<BucketVersioning> {
        self.store.versioning(bucket).ok()
    }

    /// Every version and delete marker of `key`, newest first, read without a request.
    pub fn object_versions(&self, bucket: &str, key: &str) -> Vec<VersionInfo> {
        self.store
            .versions_of(bucket, key)
            .into_iter()
            .map(|v| VersionInfo {
                version_id: v.id_str().to_string(),
                delete_marker: v.object().is_none(),
                data: v.object().map(|o| o.data.clone()).unwrap_or_default(),
                last_modified: v.last_modified(),
            })
            .collect()
    }

    /// Every request received so far, in arrival order of completion.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.control.requests()
    }

    /// Requests so far by operation name.
    pub fn operation_counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for r in self.control.requests() {
            *counts.entry(r.operation).or_insert(0) += 1;
        }
        counts
    }

    /// Forget the requests logged so far.
    pub fn clear_requests(&self) {
        self.control.clear_requests();
    }

    /// Refuse (403 `AccessDenied`, logged) every operation not in [`READ_OPERATIONS`].
    pub fn set_read_only(&self, read_only: bool) {
        self.control.set_read_only(read_only);
    }

    /// Replace the fault rules (and restart their counters).
    pub fn set_faults(&self, faults: Faults) {
        self.control.set_faults(faults);
    }

    /// No more faults.
    pub fn clear_faults(&self) {
        self.control.set_faults(Faults::default());
    }

    /// Leave `LastModified` out of listed objects and `Last-Modified` out of GET and HEAD
    /// answers (some S3-compatible servers do), or put them back.
    pub fn set_omit_last_modified(&self, omit: bool) {
        self.control.set_omit_last_modified(omit);
    }

    /// Delay every request by `latency` before it is served.
    pub fn set_latency(&self, latency: Duration) {
        self.control.set_latency(latency);
    }

    /// The most requests that were in flight at once since start or the last reset.
    pub fn max_in_flight(&self) -> u64 {
        self.control.max_in_flight()
    }

    /// Restart [`Self::max_in_flight`] from the current count.
    pub fn reset_max_in_flight(&self) {
        self.control.reset_max_in_flight();
    }

    /// Stop serving and wait for the server thread to end.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for S3MemServer {
    fn drop(&mut self) {
        self.stop();
    }
}
