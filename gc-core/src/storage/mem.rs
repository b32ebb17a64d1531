//! `MemStorage`: an in-memory `Storage` for tests and for tools that embed gc-core.
//!
//! A sorted map from key to bytes, modification time and an S3-style MD5 ETag behind a lock. A listing takes a
//! snapshot under the lock and streams it afterwards, so no lock is held across an await.
//! Faults can be injected per key prefix, so tests can prove that an unreadable object makes
//! an audit incomplete instead of silently smaller.

use super::{
    valid_prefix, ObjectMeta, RequestCounter, RequestCounts, RootSurvey, Storage, StorageError,
};
use futures::stream::{self, BoxStream, StreamExt};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

#[derive(Debug, Clone)]
struct MemObject {
    data: Arc<[u8]>,
    last_modified: SystemTime,
    /// As S3 gives a single-part object: `"<hex MD5>"`.
    e_tag: String,
}

#[derive(Debug, Default)]
struct MemState {
    objects: BTreeMap<String, MemObject>,
    failing_prefixes: Vec<String>,
}

/// An in-memory storage. Cloning shares the same contents.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    state: Arc<RwLock<MemState>>,
    requests: Arc<RequestCounter>,
}

impl MemStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Store `data` at `key`, modified now.
    pub fn put(&self, key: impl Into<String>, data: impl Into<Vec<u8>>) {
        self.put_at(key, data, SystemTime::now());
    }

    /// Store `data` at `key` with the given modification time.
    pub fn put_at(&self, key: impl Into<String>, data: impl Into<Vec<u8>>, at: SystemTime) {
        let data: Vec<u8> = data.into();
        let object = MemObject {
            e_tag: crate::etag::md5_etag(&data),
            data: Arc::from(data),
            last_modified: at,
        };
        self.write().objects.insert(key.into(), object);
    }

    /// Remove the object at `key`; returns whether it existed.
    pub fn remove(&self, key: &str) -> bool {
        self.write().objects.remove(key).is_some()
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.read().objects.keys().cloned().collect()
    }

    /// From now on, every request touching a key that starts with `prefix` fails with a
    /// backend error (a listing of a covering prefix yields one error item for it).
    pub fn fail_prefix(&self, prefix: impl Into<String>) {
        self.write().failing_prefixes.push(prefix.into());
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, MemState> {
        // A poisoned lock only means another thread panicked while holding it; the map itself
        // is always in a consistent state because every mutation is a single insert/remove.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, MemState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn injected_fault(state: &MemState, key: &str) -> Option<StorageError> {
        state
            .failing_prefixes
            .iter()
            .find(|p| key.starts_with(p.as_str()))
            .map(|_| StorageError::Backend {
                key: key.to_string(),
                backend: "memory",
                source: "injected fault".into(),
            })
    }
}

#[async_trait::async_trait]
impl Storage for MemStorage {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn location(&self) -> String {
        "memory:".to_string()
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta, StorageError>> {
        self.requests.list();
        if !valid_prefix(prefix) {
            let err = StorageError::InvalidPrefix(prefix.to_string());
            return stream::iter(vec![Err(err)]).boxed();
        }
        let state = self.read();
        let mut items: Vec<Result<ObjectMeta, StorageError>> = Vec::new();
        let mut reported_faults: Vec<&str> = Vec::new();
        for (key, object) in state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            if let Some(p) = state
                .failing_prefixes
                .iter()
                .find(|p| key.starts_with(p.as_str()))
            {
                if !reported_faults.contains(&p.as_str()) {
                    reported_faults.push(p);
                    items.push(Err(StorageError::Backend {
                        key: p.clone(),
                        backend: "memory",
                        source: "injected fault while listing".into(),
                    }));
                }
                continue;
            }
            items.push(Ok(ObjectMeta {
                key: key.clone(),
                size: object.data.len() as u64,
                last_modified: object.last_modified,
                e_tag: Some(object.e_tag.clone()),
            }));
        }
        stream::iter(items).boxed()
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.requests.get();
        let state = self.read();
        if let Some(err) = Self::injected_fault(&state, key) {
            return Err(err);
        }
        match state.objects.get(key) {
            None => Ok(None),
            Some(o) if o.data.len() as u64 > max_bytes => Err(StorageError::TooLarge {
                key: key.to_string(),
                size: o.data.len() as u64,
                limit: max_bytes,
            }),
            Some(o) => Ok(Some(o.data.to_vec())),
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        self.requests.head();
        let state = self.read();
        if let Some(err) = Self::injected_fault(&state, key) {
            return Err(err);
        }
        Ok(state.objects.get(key).map(|o| ObjectMeta {
            key: key.to_string(),
            size: o.data.len() as u64,
            last_modified: o.last_modified,
            e_tag: Some(o.e_tag.clone()),
        }))
    }

    fn request_counts(&self) -> RequestCounts {
        self.requests.snapshot()
    }

    /// The first path segment of every key (`docker/` for `docker/registry/v2/…`), sorted, at
    /// most [`RootSurvey::MAX_ENTRIES`]; a memory storage has nothing beside its root.
    async fn survey_root(&self) -> Result<RootSurvey, StorageError> {
        self.requests.list();
        let state = self.read();
        let mut under_root: Vec<String> = Vec::new();
        for key in state.objects.keys() {
            let name = match key.split_once('/') {
                Some((first, _)) => format!("{first}/"),
                None => key.clone(),
            };
            // Cutting sorted keys at their first `/` keeps them sorted: equal names are
            // adjacent, and the first names are the smallest.
            if under_root.last() != Some(&name) {
                if under_root.len() == RootSurvey::MAX_ENTRIES {
                    break;
                }
                under_root.push(name);
            }
        }
        Ok(RootSurvey {
            under_root,
            beside_root: Vec::new(),
        })
    }
}
