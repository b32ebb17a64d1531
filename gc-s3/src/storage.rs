//! `S3Storage`: gc-core's `Storage` over a bucket, read-only.
//!
//! It sends these requests and no others: ListObjectsV2 (listing, see [`crate::list`], and
//! `survey_root`: one page by `/` of the root and one of its parent), GetObject (`get`),
//! HeadObject (`head`) and, for the reads of object versions ([`crate::versions`]),
//! GetBucketVersioning, ListObjectVersions and GetObject with a version id. A `get` is one
//! GetObject whose `Content-Length` is checked before the body is read: an object over the
//! limit is refused and its body dropped unread. All requests share one semaphore of
//! `concurrency` permits.

use crate::client;
use crate::config::{ListTuning, S3Config};
use crate::error::RequestError;
use crate::error::S3Error;
use crate::list::{self, CheckedPage};
use crate::retry::RetryTracker;
use crate::sdk_error::{self, Target};
use futures::stream::{self, BoxStream, StreamExt};
use gc_core::storage::{
    valid_prefix, KeySpread, ObjectMeta, ObjectVersions, RequestCounter, RequestCounts, RootSurvey,
    Storage, StorageError,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::Semaphore;

/// Attempts at reading a body whose connection broke after the response headers arrived
/// (the SDK retries requests, not bodies).
const BODY_ATTEMPTS: u32 = 3;

/// State shared by a storage and its listing tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) client: aws_sdk_s3::Client,
    pub(crate) bucket: String,
    /// `root/`, or empty.
    root_prefix: String,
    pub(crate) permits: Semaphore,
    pub(crate) concurrency: usize,
    pub(crate) listing: ListTuning,
    counter: Arc<RequestCounter>,
    /// Where requests go, for messages.
    pub(crate) target: Target,
    retries: Arc<RetryTracker>,
    /// The first page of a listing, read by [`S3Storage::check_access`] and kept for the
    /// listing it begins.
    first_page: Mutex<Option<HeldPage>>,
    /// How the keys of each prefix's last complete listing were spread.
    spreads: Mutex<HashMap<String, KeySpread>>,
    /// Set when a listing completes (its spread is recorded).
    completed_a_listing: AtomicBool,
}

/// A listing's first page, read ahead of the listing by [`S3Storage::check_access`].
#[derive(Debug)]
pub(crate) struct HeldPage {
    /// The S3 prefix of the listing it begins.
    s3_prefix: String,
    page: CheckedPage,
    /// When its request was sent (an audit's clock starts no later).
    sent: SystemTime,
}

impl Shared {
    /// The page [`S3Storage::check_access`] kept, if it is the first page of `s3_prefix`'s
    /// listing (taken: it begins one listing only).
    pub(crate) fn take_first_page(&self, s3_prefix: &str) -> Option<CheckedPage> {
        let mut kept = self.held_page();
        match kept.take() {
            Some(held) if held.s3_prefix == s3_prefix => Some(held.page),
            other => {
                *kept = other;
                None
            }
        }
    }

    /// The page [`S3Storage::check_access`] holds (a panic elsewhere while holding the lock
    /// leaves it as it was: a page is whole or absent).
    /// Keep `spread` as the spread of `prefix`'s last complete listing.
    pub(crate) fn record_spread(&self, prefix: &str, spread: KeySpread) {
        let mut spreads = self.spreads.lock().unwrap_or_else(|e| e.into_inner());
        spreads.insert(prefix.to_string(), spread);
        self.completed_a_listing.store(true, Ordering::Relaxed);
    }

    /// Whether a listing of this storage has run to its end (see
    /// `list::MAX_LIVE_RANGES_RELISTING`).
    pub(crate) fn has_completed_a_listing(&self) -> bool {
        self.completed_a_listing.load(Ordering::Relaxed)
    }

    fn held_page(&self) -> std::sync::MutexGuard<'_, Option<HeldPage>> {
        self.first_page.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The S3 key (or prefix) of a storage key (or prefix).
    pub(crate) fn s3_prefix(&self, key: &str) -> String {
        format!("{}{key}", self.root_prefix)
    }

    /// The storage key of an S3 key under the root.
    pub(crate) fn storage_key(&self, s3_key: &str) -> String {
        s3_key
            .strip_prefix(&self.root_prefix)
            .unwrap_or(s3_key)
            .to_string()
    }

    /// `s3://bucket`, for messages.
    pub(crate) fn location_bucket(&self) -> String {
        format!("s3://{}", self.bucket)
    }
}

/// A registry's storage in an S3 bucket (or an S3-compatible server). Cloning shares the
/// client, the concurrency bound and the request counts.
#[derive(Debug, Clone)]
pub struct S3Storage {
    shared: Arc<Shared>,
    location: String,
}

impl S3Storage {
    /// Build the client for `cfg` (AWS default chain plus `cfg`'s overrides). Sends no
    /// request: a wrong bucket or credentials show up as errors of the first listing, or of
    /// [`S3Storage::check_access`].
    pub async fn connect(cfg: S3Config) -> Result<S3Storage, S3Error> {
        let counter = Arc::new(RequestCounter::default());
        let retries = Arc::new(RetryTracker::default());
        let built = client::build(&cfg, counter.clone(), retries.clone()).await?;
        let root_prefix = if cfg.root.is_empty() {
            String::new()
        } else {
            format!("{}/", cfg.root)
        };
        Ok(S3Storage {
            location: cfg.location(),
            shared: Arc::new(Shared {
                client: built.client,
                target: built.target,
                retries,
                bucket: cfg.bucket,
                root_prefix,
                permits: Semaphore::new(cfg.concurrency),
                concurrency: cfg.concurrency,
                listing: cfg.listing,
                counter,
                first_page: Mutex::new(None),
                spreads: Mutex::new(HashMap::new()),
                completed_a_listing: AtomicBool::new(false),
            }),
        })
    }

    /// One ListObjectsV2 request (counted like every request): whether the bucket can be
    /// listed at all with these credentials and this endpoint. It asks for the first page of
    /// the listing of `first_listing` (a storage prefix: the one the caller lists first) and,
    /// when the page passes the listing's checks, keeps it as that listing's first page, so
    /// the check costs no request of its own (a page that fails them is simply asked for
    /// again by the listing). The kept page was read before the listing began, so
    /// [`Storage::earliest_held_read`] tells an audit when its request was sent, and the
    /// audit's clock starts then (a tag moved between this check and the audit counts as moved
    /// during the run).
    /// Its error is one line saying what happened and what to do (no credentials, refused,
    /// unknown host, TLS to a plain-HTTP server, an untrusted certificate, a timeout,
    /// `AccessDenied`, `NoSuchBucket`, …), so a caller can stop before a whole audit fails key
    /// by key.
    pub async fn check_access(&self, first_listing: &str) -> Result<(), S3Error> {
        let prefix = self.shared.s3_prefix(first_listing);
        let what = format!("{}: ListObjectsV2", self.location);
        let _permit = self.shared.permits.acquire().await.map_err(|e| {
            S3Error::Request(RequestError::new(
                crate::FailureKind::Other,
                format!("{what}: {e}"),
                None,
            ))
        })?;
        let sent_at = SystemTime::now();
        let request = list::PageRequest {
            prefix: &prefix,
            delimiter: None,
            max_keys: list::PAGE_KEYS,
            token: None,
            start_after: None,
        };
        match list::send_page_request(&self.shared, &request).await {
            Ok(Ok(page)) => {
                *self.shared.held_page() = Some(HeldPage {
                    s3_prefix: prefix,
                    page,
                    sent: sent_at,
                });
                Ok(())
            }
            // The server answered, with a body cut short or malformed: access works, and the
            // listing asks for the page again (with its own attempts and backoff).
            Ok(Err(_damaged)) => Ok(()),
            Err(err) => Err(S3Error::Request(sdk_error::request_error(
                err,
                &what,
                &self.shared.target,
            ))),
        }
    }

    /// Requests being retried now, and why (for a progress display).
    pub fn retries(&self) -> Arc<RetryTracker> {
        self.shared.retries.clone()
    }

    /// The endpoint requests go to, for messages (`http://127.0.0.1:9000`, `AWS S3 in
    /// eu-west-1`).
    pub fn endpoint(&self) -> &str {
        &self.shared.target.endpoint
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.shared.bucket
    }

    /// The full S3 object key of a storage key (the root directory prefixed): what a recovery
    /// plan names and an operator's `aws s3api` commands take.
    pub fn object_key(&self, key: &str) -> String {
        self.shared.s3_prefix(key)
    }

    /// The underlying SDK client (it counts and refuses writes like this storage does).
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.shared.client
    }

    /// The state shared with listing tasks.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn what(&self, operation: &str, key: &str) -> String {
        format!(
            "{}/{}: {operation}",
            self.shared.location_bucket(),
            self.shared.s3_prefix(key)
        )
    }

    /// The content of `key` (of its version `version_id`, when given), read in one GetObject
    /// under a permit; a body whose connection broke is read again.
    pub(crate) async fn read_object(
        &self,
        key: &str,
        version_id: Option<&str>,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let what = self.what("GetObject", key);
        let _permit = self
            .shared
            .permits
            .acquire()
            .await
            .map_err(|e| sdk_error::other(key, &what, e))?;
        let mut attempt = 1;
        loop {
            match self.get_once(key, version_id, max_bytes).await {
                Ok(found) => return Ok(found),
                Err(Retry::No(e)) => return Err(e),
                Err(Retry::Yes(e)) if attempt >= BODY_ATTEMPTS => return Err(e),
                Err(Retry::Yes(_)) => attempt += 1,
            }
        }
    }

    async fn get_once(
        &self,
        key: &str,
        version_id: Option<&str>,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, Retry> {
        let what = match version_id {
            None => self.what("GetObject", key),
            Some(v) => self.what(&format!("GetObject of version {v}"), key),
        };
        let sent = self
            .shared
            .client
            .get_object()
            .bucket(&self.shared.bucket)
            .key(self.shared.s3_prefix(key))
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await;
        let found = match version_id {
            None => sdk_error::found(sent, key, &what, &self.shared.target),
            Some(_) => sdk_error::found_version(sent, key, &what, &self.shared.target),
        };
        let Some(output) = found.map_err(Retry::No)? else {
            return Ok(None);
        };
        let too_large = |size: u64| {
            Retry::No(StorageError::TooLarge {
                key: key.to_string(),
                size,
                limit: max_bytes,
            })
        };
        let announced = output.content_length().and_then(|l| u64::try_from(l).ok());
        if let Some(size) = announced.filter(|&s| s > max_bytes) {
            return Err(too_large(size)); // The body is dropped unread.
        }
        let capacity = announced.map_or(0, |s| usize::try_from(s).unwrap_or(0));
        let mut data = Vec::with_capacity(capacity);
        let mut body = output.body;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    data.extend_from_slice(&chunk);
                    if data.len() as u64 > max_bytes {
                        return Err(too_large(data.len() as u64));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Retry::Yes(sdk_error::other_error(key, &what, e)));
                }
            }
        }
        Ok(Some(data))
    }
}

impl S3Storage {
    /// The names directly under the S3 prefix `prefix` (empty or ending in `/`), relative to
    /// it, a `/` ending each common prefix: one checked ListObjectsV2 page by `/`.
    async fn survey_prefix(&self, prefix: &str, key: &str) -> Result<Vec<String>, StorageError> {
        let what = format!(
            "{}: ListObjectsV2 of {prefix} by /",
            self.shared.location_bucket()
        );
        let request = list::PageRequest {
            prefix,
            delimiter: Some("/"),
            max_keys: i32::try_from(RootSurvey::MAX_ENTRIES).unwrap_or(i32::MAX),
            token: None,
            start_after: None,
        };
        let page = list::list_page(&self.shared, &request, key, &what).await?;
        let mut names: Vec<String> = page
            .common_prefixes
            .iter()
            .map(String::as_str)
            .chain(page.objects.iter().filter_map(|o| o.key.as_deref()))
            .filter_map(|k| k.strip_prefix(prefix))
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect();
        names.sort();
        names.truncate(RootSurvey::MAX_ENTRIES);
        Ok(names)
    }
}

/// The parent of the S3 prefix `prefix` (`a/b/` → `a/`, `a/` → the top of the bucket), or
/// `None` for the top itself.
fn parent_prefix(prefix: &str) -> Option<&str> {
    let trimmed = prefix.strip_suffix('/')?;
    Some(trimmed.rfind('/').map_or("", |slash| &prefix[..=slash]))
}

/// A failed read, and whether reading again may help.
enum Retry {
    Yes(StorageError),
    No(StorageError),
}

#[async_trait::async_trait]
impl Storage for S3Storage {
    fn name(&self) -> &'static str {
        sdk_error::BACKEND
    }

    fn earliest_held_read(&self) -> Option<SystemTime> {
        self.shared.held_page().as_ref().map(|held| held.sent)
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta, StorageError>> {
        self.list_spread(prefix, None)
    }

    fn key_spread(&self, prefix: &str) -> Option<KeySpread> {
        let mut spreads = self
            .shared
            .spreads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Taken: a spread is asked for once, and a storage that lives on (an embedder's) should
        // not hold every prefix's marks.
        spreads.remove(prefix)
    }

    fn list_spread(
        &self,
        prefix: &str,
        spread: Option<&KeySpread>,
    ) -> BoxStream<'_, Result<ObjectMeta, StorageError>> {
        if !valid_prefix(prefix) {
            let err = StorageError::InvalidPrefix(prefix.to_string());
            return stream::iter(vec![Err(err)]).boxed();
        }
        let rx = list::spawn(self.shared.clone(), prefix.to_string(), spread);
        stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        })
        .flat_map(|batch: list::Batch| match batch {
            Ok(metas) => stream::iter(metas.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(e) => stream::iter(vec![Err(e)]),
        })
        .boxed()
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.read_object(key, None, max_bytes).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let what = self.what("HeadObject", key);
        let _permit = self
            .shared
            .permits
            .acquire()
            .await
            .map_err(|e| sdk_error::other(key, &what, e))?;
        let sent = self
            .shared
            .client
            .head_object()
            .bucket(&self.shared.bucket)
            .key(self.shared.s3_prefix(key))
            .send()
            .await;
        let Some(output) = sdk_error::found(sent, key, &what, &self.shared.target)? else {
            return Ok(None);
        };
        Ok(Some(ObjectMeta {
            key: key.to_string(),
            size: output
                .content_length()
                .and_then(|l| u64::try_from(l).ok())
                .unwrap_or(0),
            last_modified: output
                .last_modified()
                .and_then(|t| SystemTime::try_from(*t).ok())
                .unwrap_or_else(SystemTime::now),
            e_tag: output.e_tag().map(str::to_string),
        }))
    }

    fn versions(&self) -> Option<&dyn ObjectVersions> {
        Some(self)
    }

    fn gc_driver(&self) -> gc_core::storage::GcDriver {
        gc_core::storage::GcDriver::ObjectStore
    }

    fn request_counts(&self) -> RequestCounts {
        self.shared.counter.snapshot()
    }

    async fn survey_root(&self) -> Result<RootSurvey, StorageError> {
        let root = self.shared.s3_prefix("");
        let under_root = self.survey_prefix(&root, "").await?;
        let beside_root = match parent_prefix(&root) {
            Some(parent) => self.survey_prefix(parent, parent).await?,
            None => Vec::new(),
        };
        Ok(RootSurvey {
            under_root,
            beside_root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parent_prefix;

    #[test]
    fn parents_of_prefixes() {
        assert_eq!(parent_prefix("a/b/"), Some("a/"));
        assert_eq!(parent_prefix("wrong/"), Some(""));
        assert_eq!(parent_prefix(""), None);
    }
}
