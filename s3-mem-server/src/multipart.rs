//! Multipart uploads and server-side copies: what distribution's `s3` storage driver writes
//! with.
//!
//! distribution 2.8 writes every blob upload through a multipart upload (create, upload part,
//! list uploads and parts to resume, complete, abort; `UploadPartCopy` when it has to restart an
//! upload whose last part was small) and commits a blob with `CopyObject` from `_uploads/` to
//! `blobs/`. Parts live here until the upload completes; the completed object is the parts
//! concatenated in part-number order, with S3's multipart ETag (`md5(md5s)-<n>`).

use crate::store::StoredObject;
use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

/// One uploaded part.
#[derive(Debug, Clone)]
pub(crate) struct UploadedPart {
    /// The part's bytes.
    pub(crate) data: Bytes,
    /// `"<md5 hex>"` of the part, quotes included.
    pub(crate) e_tag: String,
    /// When it was uploaded.
    pub(crate) last_modified: SystemTime,
}

impl UploadedPart {
    fn new(data: Bytes) -> Self {
        let e_tag = format!("\"{}\"", hex::encode(Md5::digest(&data)));
        UploadedPart {
            data,
            e_tag,
            last_modified: SystemTime::now(),
        }
    }
}

/// One multipart upload in progress.
#[derive(Debug, Clone)]
pub(crate) struct MultipartUpload {
    /// Bucket it writes to.
    pub(crate) bucket: String,
    /// Key it writes to.
    pub(crate) key: String,
    /// When it was created.
    pub(crate) initiated: SystemTime,
    /// Parts by part number.
    pub(crate) parts: BTreeMap<i32, UploadedPart>,
}

/// Why a multipart operation was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MultipartError {
    /// No upload with that id (or it writes to another bucket or key).
    NoSuchUpload,
    /// A completed part list names a part that was not uploaded, or with another ETag.
    InvalidPart(i32),
    /// A completed part list is not in ascending part-number order.
    InvalidPartOrder,
}

/// All uploads in progress, by upload id.
#[derive(Debug, Default)]
pub(crate) struct Uploads {
    next_id: AtomicU64,
    by_id: Mutex<HashMap<String, MultipartUpload>>,
}

impl Uploads {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, MultipartUpload>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts an upload to `bucket`/`key`; returns its id.
    pub(crate) fn create(&self, bucket: &str, key: &str) -> String {
        let id = format!("upload-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        self.lock().insert(
            id.clone(),
            MultipartUpload {
                bucket: bucket.to_string(),
                key: key.to_string(),
                initiated: SystemTime::now(),
                parts: BTreeMap::new(),
            },
        );
        id
    }

    fn with_upload<T>(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        f: impl FnOnce(&mut MultipartUpload) -> T,
    ) -> Result<T, MultipartError> {
        let mut uploads = self.lock();
        match uploads.get_mut(id) {
            Some(u) if u.bucket == bucket && u.key == key => Ok(f(u)),
            _ => Err(MultipartError::NoSuchUpload),
        }
    }

    /// Stores part `number` of upload `id` (replacing an earlier one); returns its ETag.
    pub(crate) fn put_part(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        number: i32,
        data: Bytes,
    ) -> Result<String, MultipartError> {
        let part = UploadedPart::new(data);
        let e_tag = part.e_tag.clone();
        self.with_upload(bucket, key, id, |u| {
            u.parts.insert(number, part);
        })?;
        Ok(e_tag)
    }

    /// The parts of upload `id`, in part-number order.
    pub(crate) fn parts(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
    ) -> Result<Vec<(i32, UploadedPart)>, MultipartError> {
        self.with_upload(bucket, key, id, |u| {
            u.parts.iter().map(|(n, p)| (*n, p.clone())).collect()
        })
    }

    /// Uploads in progress in `bucket` whose key starts with `prefix`, in key then id order.
    pub(crate) fn in_progress(&self, bucket: &str, prefix: &str) -> Vec<(String, MultipartUpload)> {
        let mut found: Vec<(String, MultipartUpload)> = self
            .lock()
            .iter()
            .filter(|(_, u)| u.bucket == bucket && u.key.starts_with(prefix))
            .map(|(id, u)| (id.clone(), u.clone()))
            .collect();
        found.sort_by(|a, b| (&a.1.key, &a.0).cmp(&(&b.1.key, &b.0)));
        found
    }

    /// Drops upload `id` and its parts.
    pub(crate) fn abort(&self, bucket: &str, key: &str, id: &str) -> Result<(), MultipartError> {
        self.with_upload(bucket, key, id, |_| ())?;
        self.lock().remove(id);
        Ok(())
    }

    /// Ends upload `id` with the listed `(part number, ETag)` parts: the object they make,
    /// ready to store. The upload is gone afterwards, whatever the outcome.
    pub(crate) fn complete(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        chosen: &[(i32, Option<String>)],
    ) -> Result<StoredObject, MultipartError> {
        let upload = {
            let mut uploads = self.lock();
            match uploads.get(id) {
                Some(u) if u.bucket == bucket && u.key == key => {}
                _ => return Err(MultipartError::NoSuchUpload),
            }
            uploads.remove(id).ok_or(MultipartError::NoSuchUpload)?
        };
        assemble(&upload, chosen)
    }
}

/// The object that `chosen` parts of `upload` make, with S3's multipart ETag.
fn assemble(
    upload: &MultipartUpload,
    chosen: &[(i32, Option<String>)],
) -> Result<StoredObject, MultipartError> {
    if chosen.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(MultipartError::InvalidPartOrder);
    }
    let mut data = BytesMut::new();
    let mut md5s = Vec::with_capacity(chosen.len() * 16);
    for (number, e_tag) in chosen {
        let part = upload
            .parts
            .get(number)
            .ok_or(MultipartError::InvalidPart(*number))?;
        if let Some(e_tag) = e_tag {
            if e_tag.trim_matches('"') != part.e_tag.trim_matches('"') {
                return Err(MultipartError::InvalidPart(*number));
            }
        }
        data.extend_from_slice(&part.data);
        md5s.extend_from_slice(&Md5::digest(&part.data));
    }
    let mut object = StoredObject::new(data.freeze(), SystemTime::now());
    object.e_tag = format!("\"{}-{}\"", hex::encode(Md5::digest(&md5s)), chosen.len());
    Ok(object)
}

/// The bytes `range` (`bytes=a-b`, inclusive, as in `x-amz-copy-source-range`) selects from
/// `data`; `None` when it is malformed or out of bounds.
pub(crate) fn copy_source_range(data: &Bytes, range: Option<&str>) -> Option<Bytes> {
    let Some(range) = range else {
        return Some(data.clone());
    };
    let (first, last) = range.strip_prefix("bytes=")?.split_once('-')?;
    let first: usize = first.trim().parse().ok()?;
    let last: usize = last.trim().parse().ok()?;
    if first > last || last >= data.len() {
        return None;
    }
    Some(data.slice(first..=last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completing_concatenates_parts_in_order_with_a_multipart_etag() {
        let uploads = Uploads::default();
        let id = uploads.create("b", "k");
        let e2 = uploads
            .put_part("b", "k", &id, 2, Bytes::from_static(b"world"))
            .expect("part 2");
        let e1 = uploads
            .put_part("b", "k", &id, 1, Bytes::from_static(b"hello "))
            .expect("part 1");
        let object = uploads
            .complete("b", "k", &id, &[(1, Some(e1)), (2, Some(e2))])
            .expect("complete");
        assert_eq!(&object.data[..], b"hello world");
        assert!(object.e_tag.ends_with("-2\""), "{}", object.e_tag);
        assert_eq!(
            uploads.complete("b", "k", &id, &[]).err(),
            Some(MultipartError::NoSuchUpload)
        );
    }

    #[test]
    fn bad_part_lists_are_refused() {
        let uploads = Uploads::default();
        let id = uploads.create("b", "k");
        uploads
            .put_part("b", "k", &id, 1, Bytes::from_static(b"a"))
            .expect("part");
        assert_eq!(
            uploads.complete("b", "k", &id, &[(3, None)]).err(),
            Some(MultipartError::InvalidPart(3))
        );
        let id = uploads.create("b", "k");
        assert_eq!(
            uploads
                .complete("b", "k", &id, &[(2, None), (1, None)])
                .err(),
            Some(MultipartError::InvalidPartOrder)
        );
        assert_eq!(
            uploads.put_part("b", "other", &id, 1, Bytes::new()).err(),
            Some(MultipartError::NoSuchUpload)
        );
    }

    #[test]
    fn copy_source_ranges_are_inclusive_and_checked() {
        let data = Bytes::from_static(b"0123456789");
        assert_eq!(
            copy_source_range(&data, Some("bytes=2-4")).as_deref(),
            Some(&b"234"[..])
        );
        assert_eq!(copy_source_range(&data, None).as_deref(), Some(&data[..]));
        assert_eq!(copy_source_range(&data, Some("bytes=5-10")), None);
        assert_eq!(copy_source_range(&data, Some("5-6")), None);
    }
}
