//! The in-memory object store behind the server: buckets of sorted keys, each key a stack of
//! versions.
//!
//! One `BTreeMap` per bucket, keyed by the object key, so listing is a range scan in UTF-8 byte
//! order (the order S3 lists in) and a page of 1,000 keys out of a million costs microseconds.
//! Everything is behind one `RwLock`; no lock is held across an await.
//!
//! # Versions
//!
//! Every key holds its versions oldest first, newest last; the newest is the current one. A
//! bucket whose versioning was never set keeps exactly one version per key, with the `null`
//! version id, and a delete removes the key: the behaviour of a plain S3 bucket. As S3 has it:
//! - **Enabled**: every write pushes a new version with a fresh id; a delete without a version
//!   id pushes a delete marker (with a fresh id), even over a key that has no version.
//! - **Suspended**: a write, or a delete without a version id, replaces the `null` version (an
//!   object or a marker) and becomes the newest; the other versions stay.
//! - A delete *with* a version id removes exactly that version or marker, whatever the state
//!   (a missing one is not an error: S3 deletes are idempotent); removing the newest delete
//!   marker makes the version under it current again.
//! - A key whose newest version is a delete marker is hidden from ListObjects and from reads
//!   without a version id; [`Store::list_versions`] shows every version and marker, key by key,
//!   newest first.
//!
//! Versions of one key share their content with the copies made from them (`Bytes` clones).
//! Version ids are `v` and 31 hex digits of a per-store counter: unique, opaque, and sorting in
//! the order they were made.

use bytes::Bytes;
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The version id S3 gives objects written while versioning was off.
pub(crate) const NULL_VERSION: &str = "null";

/// One stored object.
#[derive(Debug, Clone)]
pub(crate) struct StoredObject {
    /// The content.
    pub(crate) data: Bytes,
    /// Modification time, truncated to whole seconds like S3's.
    pub(crate) last_modified: SystemTime,
    /// `"<md5 hex>"`, quotes included, as S3 sends it.
    pub(crate) e_tag: String,
}

impl StoredObject {
    /// An object holding `data`, modified at `last_modified` (truncated to whole seconds).
    pub(crate) fn new(data: Bytes, last_modified: SystemTime) -> Self {
        let e_tag = format!("\"{}\"", hex::encode(Md5::digest(&data)));
        StoredObject {
            data,
            last_modified: whole_seconds(last_modified),
            e_tag,
        }
    }
}

/// `t` without its sub-second part. S3 reports `Last-Modified` headers in whole seconds, so a
/// listing and a HEAD agree only if the stored time has no fraction either.
pub(crate) fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

/// A bucket's versioning state, as PutBucketVersioning sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BucketVersioning {
    /// Versioning was never set: one version per key, deletes are final.
    #[default]
    Unversioned,
    /// Every write makes a new version; deletes without a version id add delete markers.
    Enabled,
    /// Writes and deletes replace the `null` version; older versions are kept.
    Suspended,
}

/// What one version of a key is.
#[derive(Debug, Clone)]
pub(crate) enum VersionBody {
    /// Content.
    Object(StoredObject),
    /// A delete marker, written at this time (whole seconds).
    DeleteMarker(SystemTime),
}

/// One version of a key.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    /// The version id; `None` is the `null` version.
    pub(crate) id: Option<String>,
    /// Content or delete marker.
    pub(crate) body: VersionBody,
}

impl Version {
    /// The id as S3 spells it (`null` for the null version).
    pub(crate) fn id_str(&self) -> &str {
        self.id.as_deref().unwrap_or(NULL_VERSION)
    }

    fn has_id(&self, id: &str) -> bool {
        self.id_str() == id
    }

    /// The content, unless this is a delete marker.
    pub(crate) fn object(&self) -> Option<&StoredObject> {
        match &self.body {
            VersionBody::Object(o) => Some(o),
            VersionBody::DeleteMarker(_) => None,
        }
    }

    /// When it was written.
    pub(crate) fn last_modified(&self) -> SystemTime {
        match &self.body {
            VersionBody::Object(o) => o.last_modified,
            VersionBody::DeleteMarker(t) => *t,
        }
    }
}

/// A key's versions, oldest first; never empty in a bucket.
type Versions = Vec<Version>;

/// The current object of a key: its newest version, unless that is a delete marker.
fn current(versions: &Versions) -> Option<&StoredObject> {
    versions.last().and_then(Version::object)
}

/// One bucket.
#[derive(Debug, Default)]
struct Bucket {
    versioning: BucketVersioning,
    keys: BTreeMap<String, Versions>,
}

/// The bucket named does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoSuchBucket;

/// What a read of one key (or one version of it) found.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    /// The object, and the version id to report (none on a bucket never versioned).
    Found {
        object: StoredObject,
        version_id: Option<String>,
    },
    /// The version asked for, or the key's newest version, is a delete marker.
    DeleteMarker {
        version_id: String,
        last_modified: SystemTime,
    },
    /// No such key (without a version id).
    NoSuchKey,
    /// No such version of the key.
    NoSuchVersion,
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Deleted {
    /// The id of the delete marker made, or of the version removed; none for a delete on a
    /// bucket never versioned.
    pub(crate) version_id: Option<String>,
    /// Whether a delete marker was made, or the version removed was one.
    pub(crate) delete_marker: bool,
}

/// One listed object.
#[derive(Debug, Clone)]
pub(crate) struct ListedObject {
    /// Key.
    pub(crate) key: String,
    /// Size in bytes.
    pub(crate) size: u64,
    /// Modification time.
    pub(crate) last_modified: SystemTime,
    /// ETag, quotes included.
    pub(crate) e_tag: String,
}

/// A page of a listing.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListPage {
    /// Objects, in key order.
    pub(crate) objects: Vec<ListedObject>,
    /// Common prefixes (with a delimiter), in order.
    pub(crate) common_prefixes: Vec<String>,
    /// Whether more keys follow.
    pub(crate) truncated: bool,
    /// The last key or common prefix of this page: where the next page starts (exclusive).
    pub(crate) last: Option<String>,
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListQuery<'a> {
    /// Only keys starting with this.
    pub(crate) prefix: &'a str,
    /// Group keys by the part up to this delimiter after the prefix.
    pub(crate) delimiter: Option<&'a str>,
    /// Only keys strictly after this one.
    pub(crate) after: Option<&'a str>,
    /// At most this many keys plus common prefixes (S3 caps it at 1,000).
    pub(crate) max_keys: usize,
}

/// One entry of a versions listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedVersion {
    /// Key.
    pub(crate) key: String,
    /// Version id (`null` for the null version).
    pub(crate) version_id: String,
    /// Whether it is the key's newest version.
    pub(crate) is_latest: bool,
    /// Whether it is a delete marker.
    pub(crate) delete_marker: bool,
    /// Size in bytes (0 for a marker).
    pub(crate) size: u64,
    /// When it was written.
    pub(crate) last_modified: SystemTime,
    /// ETag, quotes included (none for a marker).
    pub(crate) e_tag: Option<String>,
}

/// What a versions listing asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct VersionQuery<'a> {
    /// Only keys starting with this.
    pub(crate) prefix: &'a str,
    /// Group keys by the part up to this delimiter after the prefix.
    pub(crate) delimiter: Option<&'a str>,
    /// Start after this key (after its version `version_id_marker`, when that is given).
    pub(crate) key_marker: Option<&'a str>,
    /// With `key_marker`: start after this version of that key.
    pub(crate) version_id_marker: Option<&'a str>,
    /// At most this many versions, delete markers and common prefixes.
    pub(crate) max_keys: usize,
}

/// A page of a versions listing.
#[derive(Debug, Clone, Default)]
pub(crate) struct VersionPage {
    /// Versions and delete markers, by key, newest first within a key.
    pub(crate) entries: Vec<ListedVersion>,
    /// Common prefixes (with a delimiter), in order.
    pub(crate) common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub(crate) truncated: bool,
    /// When truncated: the key (or common prefix) the next page starts after.
    pub(crate) next_key_marker: Option<String>,
    /// When truncated after a version: its id.
    pub(crate) next_version_id_marker: Option<String>,
}

/// The common prefix `key` falls under: the part after `prefix` up to and including the first
/// `delimiter`.
fn common_prefix_of(key: &str, prefix: &str, delimiter: Option<&str>) -> Option<String> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    key.get(prefix.len()..)?
        .find(d)
        .map(|i| key[..prefix.len() + i + d.len()].to_string())
}

type Buckets = BTreeMap<String, Bucket>;

/// Every bucket and object. Cloning shares the contents.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    buckets: Arc<RwLock<Buckets>>,
    next_version: Arc<AtomicU64>,
}

impl Store {
    fn read(&self) -> RwLockReadGuard<'_, Buckets> {
        // Every mutation completes under one lock without panicking midway, so a poisoned map
        // is still consistent.
        self.buckets.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Buckets> {
        self.buckets.write().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh_version_id(&self) -> String {
        let n = self.next_version.fetch_add(1, Ordering::Relaxed) + 1;
        format!("v{n:031x}")
    }

    /// Create `bucket`; false if it existed.
    pub(crate) fn create_bucket(&self, bucket: &str) -> bool {
        let mut buckets = self.write();
        if buckets.contains_key(bucket) {
            return false;
        }
        buckets.insert(bucket.to_string(), Bucket::default());
        true
    }

    /// Whether `bucket` exists.
    pub(crate) fn has_bucket(&self, bucket: &str) -> bool {
        self.read().contains_key(bucket)
    }

    /// Bucket names, sorted.
    pub(crate) fn bucket_names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// The versioning state of `bucket`.
    pub(crate) fn versioning(&self, bucket: &str) -> Result<BucketVersioning, NoSuchBucket> {
        self.read()
            .get(bucket)
            .map(|b| b.versioning)
            .ok_or(NoSuchBucket)
    }

    /// Set the versioning state of `bucket` (S3 never goes back to unversioned; this does if
    /// asked, and then keeps the versions already there).
    pub(crate) fn set_versioning(
        &self,
        bucket: &str,
        versioning: BucketVersioning,
    ) -> Result<(), NoSuchBucket> {
        let mut buckets = self.write();
        let b = buckets.get_mut(bucket).ok_or(NoSuchBucket)?;
        b.versioning = versioning;
        Ok(())
    }

    /// Write `object` at `key` as the bucket's versioning has it; the id of the version made
    /// (none on a bucket never versioned, `null` while suspended).
    fn put_in(&self, b: &mut Bucket, key: &str, object: StoredObject) -> Option<String> {
        let body = VersionBody::Object(object);
        match b.versioning {
            BucketVersioning::Unversioned => {
                match b.keys.get_mut(key) {
                    // Reuse the key's allocation: replacing is the common case when seeding.
                    Some(versions) => {
                        versions.clear();
                        versions.push(Version { id: None, body });
                    }
                    None => {
                        b.keys
                            .insert(key.to_string(), vec![Version { id: None, body }]);
                    }
                }
                None
            }
            BucketVersioning::Enabled => {
                let id = self.fresh_version_id();
                b.keys.entry(key.to_string()).or_default().push(Version {
                    id: Some(id.clone()),
                    body,
                });
                Some(id)
            }
            BucketVersioning::Suspended => {
                let versions = b.keys.entry(key.to_string()).or_default();
                versions.retain(|v| v.id.is_some());
                versions.push(Version { id: None, body });
                Some(NULL_VERSION.to_string())
            }
        }
    }

    /// Store an object; the id of the version made (see [`Self::put_in`]).
    pub(crate) fn put(
        &self,
        bucket: &str,
        key: &str,
        object: StoredObject,
    ) -> Result<Option<String>, NoSuchBucket> {
        let mut buckets = self.write();
        let b = buckets.get_mut(bucket).ok_or(NoSuchBucket)?;
        Ok(self.put_in(b, key, object))
    }

    /// Store many objects under one lock (creating the bucket if needed), as PutObject would.
    pub(crate) fn put_many(
        &self,
        bucket: &str,
        objects: impl IntoIterator<Item = (String, StoredObject)>,
    ) {
        let mut buckets = self.write();
        let b = buckets.entry(bucket.to_string()).or_default();
        for (key, object) in objects {
            self.put_in(b, &key, object);
        }
    }

    /// The current object at `key` (none if absent or behind a delete marker).
    pub(crate) fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<StoredObject>, NoSuchBucket> {
        let buckets = self.read();
        let b = buckets.get(bucket).ok_or(NoSuchBucket)?;
        Ok(b.keys.get(key).and_then(current).cloned())
    }

    /// A read of `key`: its newest version, or version `version_id`.
    pub(crate) fn lookup(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Lookup, NoSuchBucket> {
        let buckets = self.read();
        let b = buckets.get(bucket).ok_or(NoSuchBucket)?;
        let versions = b.keys.get(key);
        let version = match version_id {
            None => match versions.and_then(|v| v.last()) {
                Some(v) => v,
                None => return Ok(Lookup::NoSuchKey),
            },
            Some(id) => match versions.and_then(|vs| vs.iter().find(|v| v.has_id(id))) {
                Some(v) => v,
                None => return Ok(Lookup::NoSuchVersion),
            },
        };
        Ok(match &version.body {
            VersionBody::Object(object) => Lookup::Found {
                object: object.clone(),
                version_id: (b.versioning != BucketVersioning::Unversioned || version_id.is_some())
                    .then(|| version.id_str().to_string()),
            },
            VersionBody::DeleteMarker(t) => Lookup::DeleteMarker {
                version_id: version.id_str().to_string(),
                last_modified: *t,
            },
        })
    }

    /// Delete `key` (without a version id) or one version of it, as S3 does.
    pub(crate) fn delete(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Deleted, NoSuchBucket> {
        let mut buckets = self.write();
        let b = buckets.get_mut(bucket).ok_or(NoSuchBucket)?;
        if let Some(id) = version_id {
            let mut deleted = Deleted {
                version_id: Some(id.to_string()),
                delete_marker: false,
            };
            if let Some(versions) = b.keys.get_mut(key) {
                if let Some(i) = versions.iter().position(|v| v.has_id(id)) {
                    let removed = versions.remove(i);
                    deleted.delete_marker = removed.object().is_none();
                    if versions.is_empty() {
                        b.keys.remove(key);
                    }
                }
            }
            return Ok(deleted);
        }
        let marker = VersionBody::DeleteMarker(whole_seconds(SystemTime::now()));
        Ok(match b.versioning {
            BucketVersioning::Unversioned => {
                b.keys.remove(key);
                Deleted::default()
            }
            BucketVersioning::Enabled => {
                let id = self.fresh_version_id();
                b.keys.entry(key.to_string()).or_default().push(Version {
                    id: Some(id.clone()),
                    body: marker,
                });
                Deleted {
                    version_id: Some(id),
                    delete_marker: true,
                }
            }
            BucketVersioning::Suspended => {
                let versions = b.keys.entry(key.to_string()).or_default();
                versions.retain(|v| v.id.is_some());
                versions.push(Version {
                    id: None,
                    body: marker,
                });
                Deleted {
                    version_id: Some(NULL_VERSION.to_string()),
                    delete_marker: true,
                }
            }
        })
    }

    /// Number of current objects in `bucket` (keys not behind a delete marker).
    pub(crate) fn len(&self, bucket: &str) -> usize {
        self.read().get(bucket).map_or(0, |b| {
            if b.versioning == BucketVersioning::Unversioned {
                b.keys.len()
            } else {
                b.keys.values().filter(|v| current(v).is_some()).count()
            }
        })
    }

    /// Every current key of `bucket`, sorted.
    pub(crate) fn keys(&self, bucket: &str) -> Vec<String> {
        self.read()
            .get(bucket)
            .map(|b| {
                b.keys
                    .iter()
                    .filter(|(_, v)| current(v).is_some())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every version of `key`, newest first.
    pub(crate) fn versions_of(&self, bucket: &str, key: &str) -> Vec<Version> {
        self.read()
            .get(bucket)
            .and_then(|b| b.keys.get(key))
            .map(|v| v.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// One page of a listing of current objects; `None` when the bucket does not exist.
    pub(crate) fn list(&self, bucket: &str, q: &ListQuery<'_>) -> Option<ListPage> {
        let buckets = self.read();
        let objects = &buckets.get(bucket)?.keys;
        let mut page = ListPage::default();
        if q.max_keys == 0 {
            return Some(page);
        }
        // Start at the later of the prefix and the exclusive start key.
        let start: Bound<&str> = match q.after {
            Some(after) if after >= q.prefix => Bound::Excluded(after),
            _ => Bound::Included(q.prefix),
        };
        let mut count = 0usize;
        let mut iter = objects
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(q.prefix))
            .filter_map(|(k, v)| current(v).map(|o| (k, o)))
            .peekable();
        while let Some((key, object)) = iter.next() {
            if count == q.max_keys {
                page.truncated = true;
                break;
            }
            match common_prefix_of(key, q.prefix, q.delimiter) {
                Some(common) => {
                    // Skip every key under this common prefix.
                    while iter.peek().is_some_and(|(k, _)| k.starts_with(&common)) {
                        iter.next();
                    }
                    page.last = Some(common.clone());
                    page.common_prefixes.push(common);
                }
                None => {
                    page.last = Some(key.clone());
                    page.objects.push(ListedObject {
                        key: key.clone(),
                        size: object.data.len() as u64,
                        last_modified: object.last_modified,
                        e_tag: object.e_tag.clone(),
                    });
                }
            }
            count += 1;
        }
        Some(page)
    }

    /// One page of a versions listing; `None` when the bucket does not exist.
    ///
    /// Keys in order, each key's versions newest first. A key marker without a version id
    /// marker starts after every version of that key; with one, after that version (if the
    /// version is gone, after the key). A common prefix at or before the key marker was
    /// listed on an earlier page and is not listed again.
    pub(crate) fn list_versions(&self, bucket: &str, q: &VersionQuery<'_>) -> Option<VersionPage> {
        let buckets = self.read();
        let keys = &buckets.get(bucket)?.keys;
        let mut page = VersionPage::default();
        if q.max_keys == 0 {
            return Some(page);
        }
        let version_marker = q.version_id_marker.filter(|v| !v.is_empty());
        let start: Bound<&str> = match q.key_marker.filter(|m| *m >= q.prefix) {
            Some(m) if version_marker.is_some() => Bound::Included(m),
            Some(m) => Bound::Excluded(m),
            None => Bound::Included(q.prefix),
        };
        let mut count = 0usize;
        let mut last: Option<(String, Option<String>)> = None;
        'keys: for (key, versions) in keys
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(q.prefix))
        {
            if let Some(common) = common_prefix_of(key, q.prefix, q.delimiter) {
                let listed_before = q.key_marker.is_some_and(|m| common.as_str() <= m);
                if listed_before || page.common_prefixes.last() == Some(&common) {
                    continue;
                }
                if count == q.max_keys {
                    page.truncated = true;
                    break;
                }
                last = Some((common.clone(), None));
                page.common_prefixes.push(common);
                count += 1;
                continue;
            }
            let skip = match version_marker {
                Some(vid) if Some(key.as_str()) == q.key_marker => versions
                    .iter()
                    .rev()
                    .position(|v| v.has_id(vid))
                    .map_or(versions.len(), |i| i + 1),
                _ => 0,
            };
            for (i, version) in versions.iter().rev().enumerate().skip(skip) {
                if count == q.max_keys {
                    page.truncated = true;
                    break 'keys;
                }
                let object = version.object();
                page.entries.push(ListedVersion {
                    key: key.clone(),
                    version_id: version.id_str().to_string(),
                    is_latest: i == 0,
                    delete_marker: object.is_none(),
                    size: object.map_or(0, |o| o.data.len() as u64),
                    last_modified: version.last_modified(),
                    e_tag: object.map(|o| o.e_tag.clone()),
                });
                last = Some((key.clone(), Some(version.id_str().to_string())));
                count += 1;
            }
        }
        if page.truncated {
            if let Some((key, version_id)) = last {
                page.next_key_marker = Some(key);
                page.next_version_id_marker = version_id;
            }
        }
        Some(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(keys: &[&str]) -> Store {
        let store = Store::default();
        store.create_bucket("b");
        for k in keys {
            store
                .put(
                    "b",
                    k,
                    StoredObject::new(Bytes::from_static(b"x"), SystemTime::now()),
                )
                .expect("bucket");
        }
        store
    }

    #[test]
    fn pages_continue_after_the_last_key() {
        let store = store_with(&["a/1", "a/2", "a/3", "b/1"]);
        let q = ListQuery {
            prefix: "a/",
            max_keys: 2,
            ..Default::default()
        };
        let p1 = store.list("b", &q).expect("bucket");
        assert_eq!(p1.objects.len(), 2);
        assert!(p1.truncated);
        let q2 = ListQuery {
            after: p1.last.as_deref(),
            ..q
        };
        let p2 = store.list("b", &q2).expect("bucket");
        assert_eq!(p2.objects[0].key, "a/3");
        assert!(!p2.truncated);
    }

    #[test]
    fn delimiter_groups_common_prefixes() {
        let store = store_with(&["r/a/1", "r/a/2", "r/b", "r/c/1"]);
        let q = ListQuery {
            prefix: "r/",
            delimiter: Some("/"),
            max_keys: 1000,
            ..Default::default()
        };
        let page = store.list("b", &q).expect("bucket");
        assert_eq!(page.common_prefixes, vec!["r/a/", "r/c/"]);
        assert_eq!(page.objects.len(), 1);
    }

    fn put(store: &Store, key: &str, data: &'static [u8]) -> Option<String> {
        store
            .put(
                "b",
                key,
                StoredObject::new(Bytes::from_static(data), SystemTime::now()),
            )
            .expect("bucket")
    }

    fn all_versions(store: &Store, q: &VersionQuery<'_>) -> (Vec<(String, String)>, usize) {
        let mut got = Vec::new();
        let mut pages = 0;
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = store
                .list_versions(
                    "b",
                    &VersionQuery {
                        key_marker: key_marker.as_deref(),
                        version_id_marker: version_marker.as_deref(),
                        ..q.clone()
                    },
                )
                .expect("bucket");
            pages += 1;
            got.extend(
                page.entries
                    .iter()
                    .map(|v| (v.key.clone(), v.version_id.clone())),
            );
            got.extend(
                page.common_prefixes
                    .iter()
                    .map(|p| (p.clone(), String::new())),
            );
            if !page.truncated {
                return (got, pages);
            }
            key_marker = page.next_key_marker;
            version_marker = page.next_version_id_marker;
        }
    }

    #[test]
    fn versions_stack_and_markers_hide_keys() {
        let store = store_with(&["a", "b"]);
        store
            .set_versioning("b", BucketVersioning::Enabled)
            .expect("bucket");
        let v1 = put(&store, "a", b"one").expect("id");
        let v2 = put(&store, "a", b"two").expect("id");
        assert_ne!(v1, v2);
        let d = store.delete("b", "a", None).expect("bucket");
        assert!(d.delete_marker);
        let marker = d.version_id.expect("marker id");
        assert_eq!(store.keys("b"), vec!["b"]);
        assert!(matches!(
            store.lookup("b", "a", None),
            Ok(Lookup::DeleteMarker { .. })
        ));
        match store.lookup("b", "a", Some(NULL_VERSION)) {
            Ok(Lookup::Found { object, .. }) => assert_eq!(&object.data[..], b"x"),
            other => panic!("null version: {other:?}"),
        }
        assert!(matches!(
            store.lookup("b", "a", Some("nope")),
            Ok(Lookup::NoSuchVersion)
        ));
        // Removing the marker brings back the newest version.
        let d = store.delete("b", "a", Some(&marker)).expect("bucket");
        assert!(d.delete_marker);
        assert_eq!(store.get("b", "a").expect("bucket").expect("a").data, "two");
        // Suspended: writes replace the null version only.
        store
            .set_versioning("b", BucketVersioning::Suspended)
            .expect("bucket");
        assert_eq!(put(&store, "a", b"three").as_deref(), Some(NULL_VERSION));
        let ids: Vec<String> = store
            .versions_of("b", "a")
            .iter()
            .map(|v| v.id_str().to_string())
            .collect();
        assert_eq!(ids, vec![NULL_VERSION.to_string(), v2, v1]);
    }

    #[test]
    fn versions_page_by_key_and_version_markers() {
        let store = store_with(&["p/a", "p/b/1", "p/b/2", "p/c", "q"]);
        store
            .set_versioning("b", BucketVersioning::Enabled)
            .expect("bucket");
        for _ in 0..4 {
            put(&store, "p/a", b"a");
            put(&store, "p/c", b"c");
        }
        store.delete("b", "p/c", None).expect("bucket");
        let q = VersionQuery {
            prefix: "p/",
            max_keys: 1000,
            ..Default::default()
        };
        let (whole, pages) = all_versions(&store, &q);
        assert_eq!(pages, 1);
        assert_eq!(whole.len(), 5 + 2 + 6);
        for max_keys in [1, 2, 3, 7] {
            let (paged, pages) = all_versions(
                &store,
                &VersionQuery {
                    max_keys,
                    ..q.clone()
                },
            );
            assert_eq!(paged, whole, "max_keys {max_keys}");
            assert_eq!(pages, whole.len().div_ceil(max_keys), "max_keys {max_keys}");
        }
        let grouped = VersionQuery {
            delimiter: Some("/"),
            ..q.clone()
        };
        // (The helper puts a page's common prefixes after its entries: compare as sets.)
        let (mut whole, _) = all_versions(&store, &grouped);
        let (mut paged, _) = all_versions(
            &store,
            &VersionQuery {
                max_keys: 1,
                ..grouped
            },
        );
        whole.sort();
        paged.sort();
        assert_eq!(paged, whole);
        assert_eq!(whole.iter().filter(|(k, _)| k == "p/b/").count(), 1);
        // Newest first within a key, and the newest is the latest.
        let page = store.list_versions("b", &q).expect("bucket");
        let c: Vec<&ListedVersion> = page.entries.iter().filter(|v| v.key == "p/c").collect();
        assert!(c[0].delete_marker && c[0].is_latest);
        assert!(c[1..].iter().all(|v| !v.is_latest && !v.delete_marker));
        assert_eq!(c.last().map(|v| v.version_id.as_str()), Some(NULL_VERSION));
    }

    #[test]
    fn etag_is_quoted_md5() {
        let o = StoredObject::new(Bytes::from_static(b""), SystemTime::now());
        assert_eq!(o.e_tag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    }
}
