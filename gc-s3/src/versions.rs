//! Reading a bucket's object versions: gc-core's [`ObjectVersions`] for [`S3Storage`].
//!
//! A recovery plan after a bad garbage-collect needs what a versioned bucket kept: the
//! bucket's versioning state (GetBucketVersioning), every version and delete marker under a
//! prefix (ListObjectVersions) and the content of one version (GetObject with `versionId`).
//! All three are GET requests: the client's guard lets nothing else out, so the storage stays
//! read-only. Every ListObjectVersions page counts as a LIST in the request counts,
//! GetBucketVersioning and each GetObject as a GET.
//!
//! - [`ObjectVersions::versioning`]: `Enabled`, `Suspended`, or no status (never versioned).
//!   A refusal is [`StorageError::PermissionDenied`] naming the bucket; a server that does not
//!   implement the call (501 `NotImplemented`, as some S3-compatible servers answer) keeps no
//!   versions, so it is [`Versioning::Never`].
//! - [`ObjectVersions::list_versions`]: the pages of one ListObjectVersions chain (key-marker /
//!   version-id-marker), one after another, each taking a permit of the storage's semaphore.
//!   Keys are relative to the root directory exactly as [`crate::list`] makes them (a key
//!   outside the prefix asked for is dropped). Pages are checked like listing pages: they must
//!   say `IsTruncated`, a truncated page must name its `NextKeyMarker` and move past the
//!   markers it was asked with, every entry must have its key, and the body must end with
//!   `</ListVersionsResult>`; a page that fails is asked for again, up to
//!   [`crate::list::PAGE_ATTEMPTS`] times with the same backoff, and then the stream ends with
//!   one error. An entry without `VersionId` is the `null` version (the only id S3 gives
//!   objects of a bucket never versioned); one without `LastModified` is taken as written now.
//!   Entries come out page by page, in key order within a page.
//! - [`ObjectVersions::get_version`]: one GetObject with `versionId`, its `Content-Length`
//!   checked against the limit before the body is read (like `Storage::get`); no such key,
//!   no such version (404 `NoSuchVersion`) and a delete marker (405 `MethodNotAllowed`) are
//!   `Ok(None)`.
//!
//! On AWS the credentials need `s3:GetBucketVersioning`, `s3:ListBucketVersions` and
//! `s3:GetObjectVersion` besides what a scan needs; without them these reads fail with
//! [`StorageError::PermissionDenied`].

use crate::list::{BodyEnd, FIRST_PAGE_BACKOFF, MAX_PAGE_BACKOFF, PAGE_ATTEMPTS, POSITION_CHARS};
use crate::sdk_error;
use crate::storage::{S3Storage, Shared};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::types::BucketVersioningStatus;
use futures::stream::{self, BoxStream, StreamExt};
use gc_core::storage::{valid_prefix, ObjectVersion, ObjectVersions, StorageError, Versioning};
use std::sync::Arc;
use std::time::SystemTime;

/// The root element of a ListObjectVersions answer.
const VERSIONS_ROOT: &str = "ListVersionsResult";

/// Entries per ListObjectVersions page (S3's maximum).
const PAGE_KEYS: i32 = 1000;

/// Where the next page of a versions listing starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Markers {
    key: Option<String>,
    version_id: Option<String>,
}

/// One checked page: its entries (storage keys) and where the next one starts.
#[derive(Debug)]
struct VersionsPage {
    entries: Vec<ObjectVersion>,
    next: Option<Markers>,
}

#[async_trait::async_trait]
impl ObjectVersions for S3Storage {
    async fn versioning(&self) -> Result<Versioning, StorageError> {
        let shared = self.shared();
        let bucket = shared.location_bucket();
        let what = format!("{bucket}: GetBucketVersioning");
        let _permit = shared
            .permits
            .acquire()
            .await
            .map_err(|e| sdk_error::other(&bucket, &what, e))?;
        let sent = shared
            .client
            .get_bucket_versioning()
            .bucket(&shared.bucket)
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(e) if e.code() == Some("NotImplemented") => return Ok(Versioning::Never),
            Err(e) => return Err(sdk_error::map_strict(e, &bucket, &what, &shared.target)),
        };
        Ok(match output.status() {
            Some(BucketVersioningStatus::Enabled) => Versioning::Enabled,
            Some(BucketVersioningStatus::Suspended) => Versioning::Suspended,
            None => Versioning::Never,
            Some(other) => {
                let message = format!("unknown versioning status {:?}", other.as_str());
                return Err(sdk_error::other(&bucket, &what, message));
            }
        })
    }

    fn list_versions(&self, prefix: &str) -> BoxStream<'_, Result<ObjectVersion, StorageError>> {
        if !valid_prefix(prefix) {
            let err = StorageError::InvalidPrefix(prefix.to_string());
            return stream::iter(vec![Err(err)]).boxed();
        }
        let shared = self.shared().clone();
        let prefix = prefix.to_string();
        stream::unfold(Some(Markers::default()), move |markers| {
            let shared = shared.clone();
            let prefix = prefix.clone();
            async move {
                let markers = markers?;
                match versions_page(&shared, &prefix, &markers).await {
                    Ok(page) => Some((Ok(page.entries), page.next)),
                    Err(e) => Some((Err(e), None)),
                }
            }
        })
        .flat_map(|page| match page {
            Ok(entries) => stream::iter(entries.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(e) => stream::iter(vec![Err(e)]),
        })
        .boxed()
    }

    async fn get_version(
        &self,
        key: &str,
        version_id: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        self.read_object(key, Some(version_id), max_bytes).await
    }
}

/// One page of the versions under the storage prefix `prefix`, checked, asked for again while
/// its answer is cut short or malformed.
async fn versions_page(
    shared: &Arc<Shared>,
    prefix: &str,
    markers: &Markers,
) -> Result<VersionsPage, StorageError> {
    let s3_prefix = shared.s3_prefix(prefix);
    let position = markers
        .key
        .as_deref()
        .map(|k| format!(" after {}", sdk_error::abbreviate(k, POSITION_CHARS)))
        .unwrap_or_default();
    let what = format!(
        "{}: ListObjectVersions of {s3_prefix}{position}",
        shared.location_bucket()
    );
    let mut attempt = 1;
    let mut backoff = FIRST_PAGE_BACKOFF;
    loop {
        let reason = match versions_page_once(shared, &s3_prefix, markers, prefix, &what).await? {
            Ok(output) => match check_page(shared, &s3_prefix, markers, output) {
                Ok(page) => return Ok(page),
                Err(reason) => reason,
            },
            Err(reason) => reason,
        };
        if attempt >= PAGE_ATTEMPTS {
            let message = format!(
                "response cut short or malformed after {PAGE_ATTEMPTS} attempts ({reason})"
            );
            return Err(sdk_error::other(prefix, &what, message));
        }
        attempt += 1;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_PAGE_BACKOFF);
    }
}

/// One attempt (the SDK's retries included): the answer, or why it is damaged (worth asking
/// again), or an error that asking again will not mend.
async fn versions_page_once(
    shared: &Shared,
    s3_prefix: &str,
    markers: &Markers,
    key: &str,
    what: &str,
) -> Result<Result<ListObjectVersionsOutput, String>, StorageError> {
    let _permit = shared
        .permits
        .acquire()
        .await
        .map_err(|e| sdk_error::other(key, what, e))?;
    let body_end = BodyEnd::new(VERSIONS_ROOT);
    let sent = shared
        .client
        .list_object_versions()
        .bucket(&shared.bucket)
        .prefix(s3_prefix)
        .max_keys(PAGE_KEYS)
        .set_key_marker(markers.key.clone())
        .set_version_id_marker(markers.version_id.clone())
        .customize()
        .interceptor(body_end.clone())
        .send()
        .await;
    match sent {
        Ok(output) => match body_end.whole() {
            Some(true) => Ok(Ok(output)),
            Some(false) => Ok(Err("body ends before </ListVersionsResult>".to_string())),
            None => Ok(Err("body not seen".to_string())),
        },
        Err(err) => match sdk_error::damaged_response(&err) {
            Some(reason) => Ok(Err(reason)),
            None => Err(sdk_error::map_strict(err, key, what, &shared.target)),
        },
    }
}

/// The page in `output` as storage entries, if it is consistent; else what is wrong with it.
fn check_page(
    shared: &Shared,
    s3_prefix: &str,
    asked: &Markers,
    output: ListObjectVersionsOutput,
) -> Result<VersionsPage, String> {
    let truncated = output.is_truncated.ok_or("no IsTruncated")?;
    let next = if truncated {
        let next = Markers {
            key: Some(
                output
                    .next_key_marker
                    .clone()
                    .ok_or("IsTruncated but no NextKeyMarker")?,
            ),
            version_id: output.next_version_id_marker.clone(),
        };
        if next == *asked {
            return Err("a truncated page that does not move past its markers".to_string());
        }
        Some(next)
    } else {
        None
    };
    let now = SystemTime::now();
    let time = |t: Option<&aws_sdk_s3::primitives::DateTime>| {
        t.and_then(|t| SystemTime::try_from(*t).ok()).unwrap_or(now)
    };
    let mut raw = Vec::new();
    for v in output.versions.unwrap_or_default() {
        let key = v.key.clone().ok_or("a Version without Key")?;
        raw.push((
            key,
            ObjectVersion {
                key: String::new(),
                version_id: v.version_id.clone().unwrap_or_else(|| "null".to_string()),
                is_latest: v.is_latest == Some(true),
                delete_marker: false,
                size: v.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                last_modified: time(v.last_modified.as_ref()),
                e_tag: v.e_tag.clone(),
            },
        ));
    }
    for m in output.delete_markers.unwrap_or_default() {
        let key = m.key.clone().ok_or("a DeleteMarker without Key")?;
        raw.push((
            key,
            ObjectVersion {
                key: String::new(),
                version_id: m.version_id.clone().unwrap_or_else(|| "null".to_string()),
                is_latest: m.is_latest == Some(true),
                delete_marker: true,
                size: 0,
                last_modified: time(m.last_modified.as_ref()),
                e_tag: None,
            },
        ));
    }
    // The SDK splits S3's one ordered list in two; key order is what can be restored.
    raw.sort_by(|a, b| a.0.cmp(&b.0));
    let entries = raw
        .into_iter()
        .filter(|(key, _)| key.starts_with(s3_prefix))
        .map(|(key, mut v)| {
            v.key = shared.storage_key(&key);
            v
        })
        .collect();
    Ok(VersionsPage { entries, next })
}
