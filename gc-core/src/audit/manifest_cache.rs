//! The audit's use of the manifest cache (see [`crate::cache`]): a manifest whose blob is
//! listed with the size of its entry is taken from the cache instead of read (looked up by
//! [`super::cache_lookups`]); a manifest read and checked against its digest is remembered; a
//! store that fails is dropped with a warning, so that a cache can cost a run its hits, never
//! its report.

use super::cache_lookups::{Answer, CacheLookups, Lookup};
use super::{Run, Wanted};
use crate::cache::{self, CacheError, CacheKey, CachedParse, ENTRY_FORMAT, SPREAD_FORMAT};
use crate::digest::Digest;
use crate::graph::DigestId;
use crate::storage::KeySpread;

impl Run<'_> {
    /// Start the thread that answers cache lookups; without it the run has no cache.
    pub(super) fn start_cache_lookups(&mut self) {
        let Some(store) = self.cache.clone() else {
            return;
        };
        match CacheLookups::start(store) {
            Ok(lookups) => self.lookups = Some(lookups),
            Err(err) => self.cache_failed(&CacheError {
                location: self.cache_location(),
                message: format!("cannot start its lookup thread: {err}"),
            }),
        }
    }

    /// Queue the cache lookup of manifest `id`, whose blob is listed with `size`; `false` if
    /// the cache cannot hold it (no cache, or its digest's algorithm cannot be checked: never
    /// cached).
    pub(super) fn look_up_cached(&mut self, id: DigestId, size: u64) -> bool {
        let (Some(_), Some(lookups)) = (&self.cache, &mut self.lookups) else {
            return false;
        };
        if self.graph.digests().digest(id).verify(b"").is_none() {
            return false;
        }
        lookups.push(id, size);
        true
    }

    /// Take the cache's answers that are in, and keep its thread supplied, without waiting
    /// (the listing's loop, which otherwise looks at them only when no key is ready).
    pub(super) fn take_ready_lookups(&mut self) {
        while let Some(answer) = self
            .lookups
            .as_mut()
            .and_then(|lookups| lookups.ready(self.graph.digests()))
        {
            self.take_lookup(answer);
        }
    }

    /// Take what the cache said of a manifest: a sound entry is its parse; otherwise the
    /// manifest is read.
    pub(super) fn take_lookup(&mut self, answer: Answer) {
        let Answer { id, size, lookup } = answer;
        match lookup {
            Lookup::Hit(parse) => {
                self.cache_hits += 1;
                return self.record_parse(id, parse);
            }
            Lookup::Miss => self.cache_misses += 1,
            Lookup::Damaged(err) => {
                self.cache_misses += 1;
                let digest = self.graph.digests().digest(id).to_string();
                self.cache_warning(format!(
                    "manifest cache {}: the entry of {digest} ({size} bytes) is unusable \
                     ({err}): read from storage and written again",
                    self.cache_location()
                ));
            }
            Lookup::Failed(err) => self.cache_failed(&err),
        }
        self.reads.push(Wanted::Manifest(id));
    }

    /// The store's location (also once a failure has dropped it from the run).
    fn cache_location(&self) -> String {
        self.opts
            .manifest_cache
            .as_ref()
            .map_or_else(String::new, |c| c.location())
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

    /// How the storage's keys were spread at its last listing, as the cache remembers it
    /// (`None` without a cache, or an entry that is absent, damaged or not well formed).
    pub(super) fn cached_spread(&mut self) -> Option<KeySpread> {
        let store = self.cache.clone()?;
        let location = self.spread_location();
        let key = spread_key(&location);
        // A store that panics (an embedder's bug) costs the run its cache, as on the lookup
        // thread, not the run itself.
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.get(&key)))
            .unwrap_or_else(|_| {
                Err(CacheError {
                    location: store.location(),
                    message: "its read of the listing's key spread panicked".to_string(),
                })
            });
        match got {
            Ok(Some(bytes)) => cache::decode_value::<KeySpread>(&key, &bytes)
                .ok()
                .filter(KeySpread::is_well_formed),
            Ok(None) => None,
            Err(err) => {
                self.cache_failed(&err);
                None
            }
        }
    }

    /// Remember how the storage's keys were spread in this run's whole listing (a hint for
    /// the next run's listing; a damaged entry only costs it its head start).
    pub(super) fn remember_spread(&mut self, spread: &KeySpread) {
        let Some(store) = self.cache.clone() else {
            return;
        };
        let location = self.spread_location();
        let key = spread_key(&location);
        if let Err(err) = store.put(&key, cache::encode_value(&key, spread)) {
            self.cache_failed(&err);
        }
    }

    /// What the spread entry of this run's storage is keyed by: `location:<its location>`.
    fn spread_location(&self) -> String {
        format!("location:{}", self.storage.location())
    }

    /// Write what the cache buffered; the reads are done.
    pub(super) fn flush_cache(&mut self) {
        // Its thread ends first: it holds the store too.
        self.lookups = None;
        if let Some(store) = self.cache.take() {
            if let Err(err) = store.flush() {
                self.warn_failed(&err);
            }
        }
    }

    /// A store that fails is not used again in this run: the manifests are read instead
    /// (said once: lookups under way when it failed may fail too).
    fn cache_failed(&mut self, err: &CacheError) {
        if self.cache.take().is_some() {
            self.warn_failed(err);
        }
    }

    fn warn_failed(&mut self, err: &CacheError) {
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

/// The cache key of the key-spread entry of the storage at `location` ([`SPREAD_FORMAT`]).
fn spread_key(location: &str) -> CacheKey<'_> {
    CacheKey {
        format: SPREAD_FORMAT,
        digest: location,
        size: 0,
    }
}
