//! The `s3s::S3` operations over the in-memory [`Store`].
//!
//! Only what gc-audit's tests and benchmarks and distribution's `s3` driver use: buckets
//! (create, head, list, versioning), objects (put, get with `Range`, head, delete, delete many,
//! copy; each with a version id where S3 takes one), multipart uploads (see
//! [`crate::multipart`]) and listings (V2 with prefix, delimiter, max-keys, continuation token
//! and start-after; V1 with marker; ListObjectVersions with prefix, delimiter, max-keys and
//! key / version-id markers). Continuation tokens are the hex of the last key returned, so
//! they survive any URL or XML encoding.
//!
//! Versioned reads answer as S3 does (the semantics live in [`crate::store`]): a GET or HEAD
//! without a version id of a key whose newest version is a delete marker is 404 `NoSuchKey`
//! with `x-amz-delete-marker: true` and the marker's `x-amz-version-id`; with the version id
//! of a delete marker it is 405 `MethodNotAllowed` with the same headers; with a version id
//! the key does not have, 404 `NoSuchVersion`. Writes on a versioned bucket answer with the
//! new version's `x-amz-version-id`; deletes with `x-amz-delete-marker` and the version id
//! made or removed.

use crate::control::{fault_error, Control, FaultKind, Slot};
use crate::multipart::{copy_source_range, MultipartError, Uploads};
use crate::store::{
    BucketVersioning, Deleted, ListPage, ListQuery, Lookup, NoSuchBucket, Store, StoredObject,
    VersionPage, VersionQuery,
};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, LAST_MODIFIED};
use hyper::StatusCode;
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, Bucket, BucketVersioningStatus,
    CommonPrefix, CompleteMultipartUploadInput, CompleteMultipartUploadOutput, CopyObjectInput,
    CopyObjectOutput, CopyObjectResult, CopyPartResult, CopySource, CreateBucketInput,
    CreateBucketOutput, CreateMultipartUploadInput, CreateMultipartUploadOutput, DeleteMarkerEntry,
    DeleteObjectInput, DeleteObjectOutput, DeleteObjectsInput, DeleteObjectsOutput, DeletedObject,
    ETag, GetBucketVersioningInput, GetBucketVersioningOutput, GetObjectInput, GetObjectOutput,
    HeadBucketInput, HeadBucketOutput, HeadObjectInput, HeadObjectOutput, ListBucketsInput,
    ListBucketsOutput, ListMultipartUploadsInput, ListMultipartUploadsOutput,
    ListObjectVersionsInput, ListObjectVersionsOutput, ListObjectsInput, ListObjectsOutput,
    ListObjectsV2Input, ListObjectsV2Output, ListPartsInput, ListPartsOutput, MultipartUpload,
    Object, ObjectVersion, Part, PutBucketVersioningInput, PutBucketVersioningOutput,
    PutObjectInput, PutObjectOutput, StreamingBlob, Timestamp, UploadPartCopyInput,
    UploadPartCopyOutput, UploadPartInput, UploadPartOutput,
};
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use std::sync::Arc;
use std::time::SystemTime;

/// S3's own cap on keys per listing page.
pub const MAX_KEYS: i32 = 1000;

/// The S3 implementation.
#[derive(Debug, Clone)]
pub(crate) struct MemS3 {
    pub(crate) store: Store,
    pub(crate) control: Arc<Control>,
    pub(crate) uploads: Arc<Uploads>,
}

fn etag_of(object: &StoredObject) -> ETag {
    ETag::Strong(object.e_tag.trim_matches('"').to_string())
}

fn no_such_bucket(bucket: &str) -> s3s::S3Error {
    s3_error!(NoSuchBucket, "no bucket {bucket}")
}

/// The headers S3 sends with the error for a read that met a delete marker (an error's
/// headers replace all of s3s's, so the XML content type is set here too).
fn delete_marker_headers(version_id: &str, last_modified: SystemTime) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    headers.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
    if let Ok(v) = HeaderValue::from_str(version_id) {
        headers.insert("x-amz-version-id", v);
    }
    let mut date = Vec::new();
    if Timestamp::from(last_modified)
        .format(s3s::dto::TimestampFormat::HttpDate, &mut date)
        .is_ok()
    {
        if let Ok(v) = HeaderValue::from_bytes(&date) {
            headers.insert(LAST_MODIFIED, v);
        }
    }
    headers
}

/// The object a read finds, with the version id to report; S3's errors otherwise.
fn found(
    lookup: Lookup,
    key: &str,
    version_id: Option<&str>,
) -> S3Result<(StoredObject, Option<String>)> {
    match lookup {
        Lookup::Found { object, version_id } => Ok((object, version_id)),
        Lookup::NoSuchKey => Err(s3_error!(NoSuchKey, "no key {key}")),
        Lookup::NoSuchVersion => Err(s3_error!(
            NoSuchVersion,
            "no version {} of {key}",
            version_id.unwrap_or_default()
        )),
        Lookup::DeleteMarker {
            version_id: marker,
            last_modified,
        } => {
            let mut e = match version_id {
                None => s3_error!(NoSuchKey, "{key} is deleted (delete marker {marker})"),
                Some(_) => s3_error!(
                    MethodNotAllowed,
                    "version {marker} of {key} is a delete marker"
                ),
            };
            e.set_headers(delete_marker_headers(&marker, last_modified));
            Err(e)
        }
    }
}

fn bucket_error(bucket: &str) -> impl FnOnce(NoSuchBucket) -> s3s::S3Error + '_ {
    move |NoSuchBucket| no_such_bucket(bucket)
}

fn multipart_error(e: MultipartError, upload_id: &str) -> s3s::S3Error {
    match e {
        MultipartError::NoSuchUpload => s3_error!(NoSuchUpload, "no upload {upload_id}"),
        MultipartError::InvalidPart(n) => s3_error!(InvalidPart, "part {n} of {upload_id}"),
        MultipartError::InvalidPartOrder => s3_error!(InvalidPartOrder, "upload {upload_id}"),
    }
}

fn size_of(data: &Bytes) -> i64 {
    i64::try_from(data.len()).unwrap_or(i64::MAX)
}

impl MemS3 {
    /// The object `key` (or its version `version_id`) with the version id to report.
    fn object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<(StoredObject, Option<String>)> {
        let lookup = self
            .store
            .lookup(bucket, key, version_id)
            .map_err(bucket_error(bucket))?;
        found(lookup, key, version_id)
    }

    /// The object an `x-amz-copy-source` names (buckets only, with or without a version
    /// id), and its version id.
    fn copy_source(&self, source: &CopySource) -> S3Result<(StoredObject, Option<String>)> {
        match source {
            CopySource::Bucket {
                bucket,
                key,
                version_id,
            } => self.object(bucket, key, version_id.as_deref()),
            _ => Err(s3_error!(NotImplemented, "copy source {source:?}")),
        }
    }

    /// An object's `Last-Modified` for GET and HEAD; none when the server omits it.
    fn last_modified(&self, object: &StoredObject) -> Option<Timestamp> {
        (!self.control.omit_last_modified()).then(|| Timestamp::from(object.last_modified))
    }

    fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        if self.store.has_bucket(bucket) {
            Ok(())
        } else {
            Err(no_such_bucket(bucket))
        }
    }

    /// One listing page, failing as a whole if it would return a key under a fail-forever
    /// prefix (so a broken range of the bucket stays broken however it is approached).
    fn list_page(
        &self,
        bucket: &str,
        q: &ListQuery<'_>,
        slot: Option<&Slot>,
    ) -> S3Result<ListPage> {
        let page = self
            .store
            .list(bucket, q)
            .ok_or_else(|| no_such_bucket(bucket))?;
        let hits_fault = page
            .objects
            .iter()
            .map(|o| o.key.as_str())
            .chain(page.common_prefixes.iter().map(String::as_str))
            .any(|k| self.control.fails_forever(k));
        if hits_fault {
            return Err(fault_error(FaultKind::InternalError, slot));
        }
        Ok(page)
    }
}

impl MemS3 {
    /// One versions listing page, failing as a whole if it would return a key under a
    /// fail-forever prefix (as [`Self::list_page`] does).
    fn version_page(
        &self,
        bucket: &str,
        q: &VersionQuery<'_>,
        slot: Option<&Slot>,
    ) -> S3Result<VersionPage> {
        let page = self
            .store
            .list_versions(bucket, q)
            .ok_or_else(|| no_such_bucket(bucket))?;
        let hits_fault = page
            .entries
            .iter()
            .map(|v| v.key.as_str())
            .chain(page.common_prefixes.iter().map(String::as_str))
            .any(|k| self.control.fails_forever(k));
        if hits_fault {
            return Err(fault_error(FaultKind::InternalError, slot));
        }
        Ok(page)
    }
}

/// A versions page's `Versions[]` and `DeleteMarkers[]`.
fn versions_and_markers(
    page: &VersionPage,
    omit_last_modified: bool,
) -> (Vec<ObjectVersion>, Vec<DeleteMarkerEntry>) {
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    for v in &page.entries {
        let last_modified = (!omit_last_modified).then(|| Timestamp::from(v.last_modified));
        if v.delete_marker {
            markers.push(DeleteMarkerEntry {
                key: Some(v.key.clone()),
                version_id: Some(v.version_id.clone()),
                is_latest: Some(v.is_latest),
                last_modified,
                ..DeleteMarkerEntry::default()
            });
        } else {
            versions.push(ObjectVersion {
                key: Some(v.key.clone()),
                version_id: Some(v.version_id.clone()),
                is_latest: Some(v.is_latest),
                last_modified,
                size: Some(i64::try_from(v.size).unwrap_or(i64::MAX)),
                e_tag: v
                    .e_tag
                    .as_ref()
                    .map(|t| ETag::Strong(t.trim_matches('"').to_string())),
                ..ObjectVersion::default()
            });
        }
    }
    (versions, markers)
}

/// A listing's entries; without `LastModified` when the server is told to omit it.
fn contents(page: &ListPage, omit_last_modified: bool) -> Vec<Object> {
    page.objects
        .iter()
        .map(|o| Object {
            key: Some(o.key.clone()),
            size: Some(i64::try_from(o.size).unwrap_or(i64::MAX)),
            last_modified: (!omit_last_modified).then(|| Timestamp::from(o.last_modified)),
            e_tag: Some(ETag::Strong(o.e_tag.trim_matches('"').to_string())),
            ..Object::default()
        })
        .collect()
}

fn common_prefixes(page: &ListPage) -> Vec<CommonPrefix> {
    page.common_prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(p.clone()),
        })
        .collect()
}

fn max_keys(requested: Option<i32>) -> usize {
    usize::try_from(requested.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS)).unwrap_or(0)
}

async fn read_body(body: Option<StreamingBlob>) -> S3Result<Bytes> {
    let mut buf = BytesMut::new();
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| s3_error!(IncompleteBody, "reading body: {e}"))?;
            buf.extend_from_slice(&chunk);
        }
    }
    Ok(buf.freeze())
}

#[async_trait::async_trait]
impl S3 for MemS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let bucket = req.input.bucket;
        if !self.store.create_bucket(&bucket) {
            return Err(s3_error!(BucketAlreadyOwnedByYou));
        }
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        if !self.store.has_bucket(&req.input.bucket) {
            return Err(no_such_bucket(&req.input.bucket));
        }
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .store
            .bucket_names()
            .into_iter()
            .map(|name| Bucket {
                name: Some(name),
                ..Bucket::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            ..ListBucketsOutput::default()
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        let data = read_body(input.body).await?;
        let size = data.len();
        let object = StoredObject::new(data, SystemTime::now());
        let e_tag = etag_of(&object);
        let version_id = self
            .store
            .put(&input.bucket, &input.key, object)
            .map_err(bucket_error(&input.bucket))?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(e_tag),
            size: Some(i64::try_from(size).unwrap_or(i64::MAX)),
            version_id,
            ..PutObjectOutput::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let (object, version_id) =
            self.object(&input.bucket, &input.key, input.version_id.as_deref())?;
        let full = object.data.len() as u64;
        let (data, content_range) = match &input.range {
            None => (object.data.clone(), None),
            Some(range) => {
                let r = range.check(full)?;
                let (start, end) = (
                    usize::try_from(r.start).unwrap_or(usize::MAX),
                    usize::try_from(r.end).unwrap_or(usize::MAX),
                );
                let content_range = format!("bytes {}-{}/{full}", r.start, r.end.saturating_sub(1));
                (object.data.slice(start..end), Some(content_range))
            }
        };
        let partial = content_range.is_some();
        let output = GetObjectOutput {
            content_length: Some(i64::try_from(data.len()).unwrap_or(i64::MAX)),
            content_range,
            e_tag: Some(etag_of(&object)),
            last_modified: self.last_modified(&object),
            accept_ranges: Some("bytes".to_string()),
            body: Some(StreamingBlob::from(s3s::Body::from(data))),
            version_id,
            ..GetObjectOutput::default()
        };
        if partial {
            Ok(S3Response::with_status(output, StatusCode::PARTIAL_CONTENT))
        } else {
            Ok(S3Response::new(output))
        }
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = &req.input;
        let (object, version_id) =
            self.object(&input.bucket, &input.key, input.version_id.as_deref())?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(i64::try_from(object.data.len()).unwrap_or(i64::MAX)),
            e_tag: Some(etag_of(&object)),
            last_modified: self.last_modified(&object),
            accept_ranges: Some("bytes".to_string()),
            version_id,
            ..HeadObjectOutput::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let Deleted {
            version_id,
            delete_marker,
        } = self
            .store
            .delete(&input.bucket, &input.key, input.version_id.as_deref())
            .map_err(bucket_error(&input.bucket))?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: delete_marker.then_some(true),
            version_id,
            ..DeleteObjectOutput::default()
        }))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        if !self.store.has_bucket(&input.bucket) {
            return Err(no_such_bucket(&input.bucket));
        }
        let mut deleted = Vec::with_capacity(input.delete.objects.len());
        for o in input.delete.objects {
            let done = self
                .store
                .delete(&input.bucket, &o.key, o.version_id.as_deref())
                .map_err(bucket_error(&input.bucket))?;
            // As S3 answers: a marker made or removed is named as `DeleteMarkerVersionId`; the
            // version asked for is echoed as `VersionId`.
            deleted.push(DeletedObject {
                key: Some(o.key),
                delete_marker: done.delete_marker.then_some(true),
                delete_marker_version_id: done.version_id.clone().filter(|_| done.delete_marker),
                version_id: o.version_id,
            });
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            ..DeleteObjectsOutput::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let slot = req.extensions.get::<Slot>().cloned();
        let input = req.input;
        let token_key = match &input.continuation_token {
            Some(t) => Some(
                hex::decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| s3_error!(InvalidArgument, "bad continuation token"))?,
            ),
            None => None,
        };
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let q = ListQuery {
            prefix: &prefix,
            delimiter: input.delimiter.as_deref(),
            after: token_key.as_deref().or(input.start_after.as_deref()),
            max_keys: max,
        };
        let page = self.list_page(&input.bucket, &q, slot.as_ref())?;
        let key_count = page.objects.len() + page.common_prefixes.len();
        let next = page
            .last
            .as_ref()
            .filter(|_| page.truncated)
            .map(hex::encode);
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: Some(i32::try_from(max).unwrap_or(MAX_KEYS)),
            key_count: Some(i32::try_from(key_count).unwrap_or(MAX_KEYS)),
            continuation_token: input.continuation_token,
            start_after: input.start_after,
            is_truncated: Some(page.truncated),
            next_continuation_token: next,
            contents: Some(contents(&page, self.control.omit_last_modified())),
            common_prefixes: Some(common_prefixes(&page)),
            ..ListObjectsV2Output::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let slot = req.extensions.get::<Slot>().cloned();
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let q = ListQuery {
            prefix: &prefix,
            delimiter: input.delimiter.as_deref(),
            after: input.marker.as_deref(),
            max_keys: max,
        };
        let page = self.list_page(&input.bucket, &q, slot.as_ref())?;
        let next_marker = page.last.clone().filter(|_| page.truncated);
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            marker: input.marker,
            max_keys: Some(i32::try_from(max).unwrap_or(MAX_KEYS)),
            is_truncated: Some(page.truncated),
            next_marker,
            contents: Some(contents(&page, self.control.omit_last_modified())),
            common_prefixes: Some(common_prefixes(&page)),
            ..ListObjectsOutput::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let (source, source_version_id) = self.copy_source(&input.copy_source)?;
        // The copy shares the source's bytes.
        let object = StoredObject::new(source.data, SystemTime::now());
        let result = CopyObjectResult {
            e_tag: Some(etag_of(&object)),
            last_modified: Some(Timestamp::from(object.last_modified)),
            ..CopyObjectResult::default()
        };
        let version_id = self
            .store
            .put(&input.bucket, &input.key, object)
            .map_err(bucket_error(&input.bucket))?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(result),
            copy_source_version_id: source_version_id,
            version_id,
            ..CopyObjectOutput::default()
        }))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let bucket = &req.input.bucket;
        let status = match self
            .store
            .versioning(bucket)
            .map_err(bucket_error(bucket))?
        {
            BucketVersioning::Unversioned => None,
            BucketVersioning::Enabled => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::ENABLED,
            )),
            BucketVersioning::Suspended => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::SUSPENDED,
            )),
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            ..GetBucketVersioningOutput::default()
        }))
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let input = req.input;
        let state = match input
            .versioning_configuration
            .status
            .as_ref()
            .map(|s| s.as_str())
        {
            Some(BucketVersioningStatus::ENABLED) => BucketVersioning::Enabled,
            Some(BucketVersioningStatus::SUSPENDED) => BucketVersioning::Suspended,
            other => {
                return Err(s3_error!(
                    MalformedXML,
                    "versioning status {other:?}: Enabled or Suspended"
                ))
            }
        };
        self.store
            .set_versioning(&input.bucket, state)
            .map_err(bucket_error(&input.bucket))?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let slot = req.extensions.get::<Slot>().cloned();
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let q = VersionQuery {
            prefix: &prefix,
            delimiter: input.delimiter.as_deref(),
            key_marker: input.key_marker.as_deref().filter(|m| !m.is_empty()),
            version_id_marker: input.version_id_marker.as_deref(),
            max_keys: max,
        };
        let page = self.version_page(&input.bucket, &q, slot.as_ref())?;
        let (versions, markers) = versions_and_markers(&page, self.control.omit_last_modified());
        let common = page
            .common_prefixes
            .iter()
            .map(|p| CommonPrefix {
                prefix: Some(p.clone()),
            })
            .collect();
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            key_marker: input.key_marker,
            version_id_marker: input.version_id_marker,
            max_keys: Some(i32::try_from(max).unwrap_or(MAX_KEYS)),
            is_truncated: Some(page.truncated),
            next_key_marker: page.next_key_marker,
            next_version_id_marker: page.next_version_id_marker,
            versions: Some(versions),
            delete_markers: Some(markers),
            common_prefixes: Some(common),
            ..ListObjectVersionsOutput::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        let upload_id = self.uploads.create(&input.bucket, &input.key);
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            ..CreateMultipartUploadOutput::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        let data = read_body(input.body).await?;
        let e_tag = self
            .uploads
            .put_part(
                &input.bucket,
                &input.key,
                &input.upload_id,
                input.part_number,
                data,
            )
            .map_err(|e| multipart_error(e, &input.upload_id))?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(e_tag.trim_matches('"').to_string())),
            ..UploadPartOutput::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        let (source, _) = self.copy_source(&input.copy_source)?;
        let data = copy_source_range(&source.data, input.copy_source_range.as_deref())
            .ok_or_else(|| s3_error!(InvalidArgument, "bad x-amz-copy-source-range"))?;
        let e_tag = self
            .uploads
            .put_part(
                &input.bucket,
                &input.key,
                &input.upload_id,
                input.part_number,
                data,
            )
            .map_err(|e| multipart_error(e, &input.upload_id))?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(e_tag.trim_matches('"').to_string())),
                last_modified: Some(Timestamp::from(SystemTime::now())),
                ..CopyPartResult::default()
            }),
            ..UploadPartCopyOutput::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let chosen: Vec<(i32, Option<String>)> = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                (
                    p.part_number.unwrap_or(0),
                    p.e_tag.map(|t| t.value().to_string()),
                )
            })
            .collect();
        let object = self
            .uploads
            .complete(&input.bucket, &input.key, &input.upload_id, &chosen)
            .map_err(|e| multipart_error(e, &input.upload_id))?;
        let e_tag = etag_of(&object);
        let version_id = self
            .store
            .put(&input.bucket, &input.key, object)
            .map_err(bucket_error(&input.bucket))?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(e_tag),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            version_id,
            ..CompleteMultipartUploadOutput::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        self.uploads
            .abort(&input.bucket, &input.key, &input.upload_id)
            .map_err(|e| multipart_error(e, &input.upload_id))?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let uploads = self
            .uploads
            .in_progress(&input.bucket, &prefix)
            .into_iter()
            .map(|(id, u)| MultipartUpload {
                key: Some(u.key),
                upload_id: Some(id),
                initiated: Some(Timestamp::from(u.initiated)),
                ..MultipartUpload::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(false),
            uploads: Some(uploads),
            ..ListMultipartUploadsOutput::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let after = input.part_number_marker.unwrap_or(0);
        let max =
            usize::try_from(input.max_parts.unwrap_or(MAX_KEYS).clamp(1, MAX_KEYS)).unwrap_or(1);
        let all = self
            .uploads
            .parts(&input.bucket, &input.key, &input.upload_id)
            .map_err(|e| multipart_error(e, &input.upload_id))?;
        let mut remaining = all.into_iter().filter(|(n, _)| *n > after);
        let parts: Vec<Part> = remaining
            .by_ref()
            .take(max)
            .map(|(n, p)| Part {
                part_number: Some(n),
                e_tag: Some(ETag::Strong(p.e_tag.trim_matches('"').to_string())),
                size: Some(size_of(&p.data)),
                last_modified: Some(Timestamp::from(p.last_modified)),
                ..Part::default()
            })
            .collect();
        let truncated = remaining.next().is_some();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: parts.last().and_then(|p| p.part_number),
            max_parts: Some(i32::try_from(max).unwrap_or(MAX_KEYS)),
            is_truncated: Some(truncated),
            parts: Some(parts),
            ..ListPartsOutput::default()
        }))
    }
}
