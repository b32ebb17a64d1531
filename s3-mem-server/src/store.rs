//! The in-memory object store behind the server: buckets of sorted keys.
//!
//! One `BTreeMap` per bucket, keyed by the object key, so listing is a range scan in UTF-8 byte
//! order (the order S3 lists in) and a page of 1,000 keys out of a million costs microseconds.
//! Everything is behind one `RwLock`; no lock is held across an await.

use bytes::Bytes;
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

type Buckets = BTreeMap<String, BTreeMap<String, StoredObject>>;

/// Every bucket and object. Cloning shares the contents.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    buckets: Arc<RwLock<Buckets>>,
}

impl Store {
    fn read(&self) -> RwLockReadGuard<'_, Buckets> {
        // Every mutation is a single insert or remove, so a poisoned map is still consistent.
        self.buckets.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Buckets> {
        self.buckets.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Create `bucket`; false if it existed.
    pub(crate) fn create_bucket(&self, bucket: &str) -> bool {
        let mut buckets = self.write();
        if buckets.contains_key(bucket) {
            return false;
        }
        buckets.insert(bucket.to_string(), BTreeMap::new());
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

    /// Store an object; false when the bucket does not exist.
    pub(crate) fn put(&self, bucket: &str, key: &str, object: StoredObject) -> bool {
        match self.write().get_mut(bucket) {
            Some(objects) => {
                objects.insert(key.to_string(), object);
                true
            }
            None => false,
        }
    }

    /// Store many objects under one lock (creating the bucket if needed).
    pub(crate) fn put_many(
        &self,
        bucket: &str,
        objects: impl IntoIterator<Item = (String, StoredObject)>,
    ) {
        let mut buckets = self.write();
        let map = buckets.entry(bucket.to_string()).or_default();
        map.extend(objects);
    }

    /// The object at `key`: `Err(())` when the bucket does not exist.
    #[allow(clippy::result_unit_err)]
    pub(crate) fn get(&self, bucket: &str, key: &str) -> Result<Option<StoredObject>, ()> {
        match self.read().get(bucket) {
            Some(objects) => Ok(objects.get(key).cloned()),
            None => Err(()),
        }
    }

    /// Remove the object at `key`; whether it existed.
    pub(crate) fn remove(&self, bucket: &str, key: &str) -> bool {
        self.write()
            .get_mut(bucket)
            .is_some_and(|objects| objects.remove(key).is_some())
    }

    /// Number of objects in `bucket`.
    pub(crate) fn len(&self, bucket: &str) -> usize {
        self.read().get(bucket).map_or(0, BTreeMap::len)
    }

    /// Every key of `bucket`, sorted.
    pub(crate) fn keys(&self, bucket: &str) -> Vec<String> {
        self.read()
            .get(bucket)
            .map(|objects| objects.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// One page of a listing; `None` when the bucket does not exist.
    pub(crate) fn list(&self, bucket: &str, q: &ListQuery<'_>) -> Option<ListPage> {
        let buckets = self.read();
        let objects = buckets.get(bucket)?;
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
            .peekable();
        while let Some((key, object)) = iter.next() {
            if count == q.max_keys {
                page.truncated = true;
                break;
            }
            let grouped = q.delimiter.filter(|d| !d.is_empty()).and_then(|d| {
                key[q.prefix.len()..]
                    .find(d)
                    .map(|i| key[..q.prefix.len() + i + d.len()].to_string())
            });
            match grouped {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(keys: &[&str]) -> Store {
        let store = Store::default();
        store.create_bucket("b");
        for k in keys {
            store.put(
                "b",
                k,
                StoredObject::new(Bytes::from_static(b"x"), SystemTime::now()),
            );
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

    #[test]
    fn etag_is_quoted_md5() {
        let o = StoredObject::new(Bytes::from_static(b""), SystemTime::now());
        assert_eq!(o.e_tag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    }
}
