//! The `s3s::S3` operations over the in-memory [`Store`].
//!
//! Only what gc-audit's tests and benchmarks and distribution's `s3` driver use: buckets
//! (create, head, list), objects (put, get with `Range`, head, delete, delete many, copy),
//! multipart uploads (see [`crate::multipart`]) and listings (V2 with prefix, delimiter,
//! max-keys, continuation token and start-after; V1 with marker). Continuation tokens are the
//! hex of the last key returned, so they survive any URL or XML encoding.

use crate::control::{fault_error, Control, FaultKind, Slot};
use crate::multipart::{copy_source_range, MultipartError, Uploads};
use crate::store::{ListPage, ListQuery, Store, StoredObject};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use hyper::StatusCode;
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, Bucket, CommonPrefix,
    CompleteMultipartUploadInput, CompleteMultipartUploadOutput, CopyObjectInput, CopyObjectOutput,
    CopyObjectResult, CopyPartResult, CopySource, CreateBucketInput, CreateBucketOutput,
    CreateMultipartUploadInput, CreateMultipartUploadOutput, DeleteObjectInput, DeleteObjectOutput,
    DeleteObjectsInput, DeleteObjectsOutput, DeletedObject, ETag, GetObjectInput, GetObjectOutput,
    HeadBucketInput, HeadBucketOutput, HeadObjectInput, HeadObjectOutput, ListBucketsInput,
    ListBucketsOutput, ListMultipartUploadsInput, ListMultipartUploadsOutput, ListObjectsInput,
    ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output, ListPartsInput, ListPartsOutput,
    MultipartUpload, Object, Part, PutObjectInput, PutObjectOutput, StreamingBlob, Timestamp,
    UploadPartCopyInput, UploadPartCopyOutput, UploadPartInput, UploadPartOutput,
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
    fn object(&self, bucket: &str, key: &str) -> S3Result<StoredObject> {
        match self.store.get(bucket, key) {
            Err(()) => Err(no_such_bucket(bucket)),
            Ok(None) => Err(s3_error!(NoSuchKey, "no key {key}")),
            Ok(Some(o)) => Ok(o),
        }
    }

    /// The object an `x-amz-copy-source` names (buckets only; no versions here).
    fn copy_source(&self, source: &CopySource) -> S3Result<StoredObject> {
        match source {
            CopySource::Bucket { bucket, key, .. } => self.object(bucket, key),
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
        if !self.store.put(&input.bucket, &input.key, object) {
            return Err(no_such_bucket(&input.bucket));
        }
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(e_tag),
            size: Some(i64::try_from(size).unwrap_or(i64::MAX)),
            ..PutObjectOutput::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let object = self.object(&input.bucket, &input.key)?;
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
        let object = self.object(&req.input.bucket, &req.input.key)?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(i64::try_from(object.data.len()).unwrap_or(i64::MAX)),
            e_tag: Some(etag_of(&object)),
            last_modified: self.last_modified(&object),
            accept_ranges: Some("bytes".to_string()),
            ..HeadObjectOutput::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        if !self.store.has_bucket(&req.input.bucket) {
            return Err(no_such_bucket(&req.input.bucket));
        }
        self.store.remove(&req.input.bucket, &req.input.key);
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        if !self.store.has_bucket(&input.bucket) {
            return Err(no_such_bucket(&input.bucket));
        }
        let deleted = input
            .delete
            .objects
            .into_iter()
            .map(|o| {
                self.store.remove(&input.bucket, &o.key);
                DeletedObject {
                    key: Some(o.key),
                    ..DeletedObject::default()
                }
            })
            .collect();
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
        let source = self.copy_source(&input.copy_source)?;
        let object = StoredObject::new(source.data, SystemTime::now());
        let result = CopyObjectResult {
            e_tag: Some(etag_of(&object)),
            last_modified: Some(Timestamp::from(object.last_modified)),
            ..CopyObjectResult::default()
        };
        if !self.store.put(&input.bucket, &input.key, object) {
            return Err(no_such_bucket(&input.bucket));
        }
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(result),
            ..CopyObjectOutput::default()
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
        let source = self.copy_source(&input.copy_source)?;
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
        if !self.store.put(&input.bucket, &input.key, object) {
            return Err(no_such_bucket(&input.bucket));
        }
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(e_tag),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
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
