//! The audit's use of the manifest cache (see [`crate::cache`]): a manifest whose blob is
//! listed with the size of its entry is taken from the cache instead of read; a manifest read
//! and checked against its digest is remembered; a store that fails is dropped with a warning,
//! so that a cache can cost a run its hits, never its report.

use super::Run;
use crate::cache::{self, CacheError, CacheKey, CachedParse, ENTRY_FORMAT};
use crate::digest::Digest;
use crate::graph::DigestId;

impl Run<'_> {
    /// The cached parse of manifest `id` whose blob is listed with `size`, if the cache holds
    /// a sound one.
    pub(super) fn cached(&mut self, id: DigestId, size: u64) -> Option<CachedParse> {
        let store = self.cache.clone()?;
        let digest = self.graph.digests().digest(id);
        // Its algorithm cannot be checked: never cached.
        digest.verify(b"")?;
        let digest = digest.to_string();
        let key = CacheKey {
            format: ENTRY_FORMAT,
            digest: &digest,
            size,
        };
        match store.get(&key) {
            Ok(Some(entry)) => match cache::decode_entry(&key, &entry) {
                Ok(parse) => {
                    self.cache_hits += 1;
                    Some(parse)
                }
                Err(err) => {
                    self.cache_misses += 1;
                    self.cache_warning(format!(
                        "manifest cache {}: the entry of {digest} ({size} bytes) is unusable \
                         ({err}): read from storage and written again",
                        store.location()
                    ));
                    None
                }
            },
            Ok(None) => {
                self.cache_misses += 1;
                None
            }
            Err(err) => {
                self.cache_failed(&err);
                None
            }
        }
    }

    /// Remember what the `size` bytes of `digest`, checked to hash to it, parse to.
    pub(super) fn remember(&mut self, digest: &Digest, size: u64, parse: &CachedParse) {
        let Some(store) = self.cache.clone() else {
            return;
        };
        let digest = digest.to_string();
        let key = CacheKey {
            format: ENTRY_FORMAT,
            digest: &digest,
            size,
        };
        if let Err(err) = store.put(&key, cache::encode_entry(&key, parse)) {
            self.cache_failed(&err);
        }
    }

    /// Write what the cache buffered; the reads are done.
    pub(super) fn flush_cache(&mut self) {
        if let Some(store) = self.cache.take() {
            if let Err(err) = store.flush() {
                self.cache_failed(&err);
            }
        }
    }

    /// A store that fails is not used again in this run: the manifests are read instead.
    fn cache_failed(&mut self, err: &CacheError) {
        self.cache = None;
        self.cache_warning(format!(
            "{err}; this run reads manifests from storage instead"
        ));
    }

    /// Note a cache problem (the first few; the rest are counted in the last one).
    fn cache_warning(&mut self, warning: String) {
        const SHOWN: usize = 5;
        match self.cache_warnings.len() {
            n if n < SHOWN => self.cache_warnings.push(warning),
            SHOWN => self
                .cache_warnings
                .push("manifest cache: more problems; the first are above".to_string()),
            _ => {}
        }
    }
}
