//! Recovery after a bad garbage-collect (SPEC §5a): which needed keys are absent, and where
//! each comes back from.
//!
//! [`plan`] takes a complete audit and the sources: the audited bucket's own versions (a
//! DeleteObject without a version id leaves a delete marker over the old version), or a
//! `--from` copy of the storage. It computes the target state ([`target`]), looks each absent
//! key up ([`sources`]), and returns one [`PlanRow`] per absent key ([`rows`]). A manifest whose
//! blob is gone is read from its source, checked against its digest and parsed, and the closure
//! goes on through its references, round after round until nothing new turns up: that is how
//! the config and layers of a swept multi-arch image's child manifests are found.
//!
//! Planning only reads: LIST, GET and HEAD, GetBucketVersioning and ListObjectVersions (and GET
//! of a version). The plan is for an operator to apply.

pub mod rows;
pub mod sources;
pub mod target;

pub use rows::{Action, KeysBytes, PlanRow};
pub use sources::{Checks, Found, ListingStats, Lookup};
pub use target::{Docs, Expect, Held, MissingKey, Target};

use crate::audit::AuditOutcome;
use crate::digest::Digest;
use crate::layout::Key;
use crate::manifest::Manifest;
use crate::storage::{ObjectVersions, RequestCounts, Storage, StorageError, Versioning};
use futures::stream::{self, StreamExt};
use sources::VersionSource;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Settings of a recovery plan.
#[derive(Debug, Clone, Copy)]
pub struct RecoverOptions {
    /// Read every source blob and check its digest, not only its size.
    pub verify_content: bool,
    /// Requests in flight.
    pub concurrency: usize,
    /// Manifests larger than this are not read (as the audit's limit).
    pub manifest_size_limit: u64,
}

impl Default for RecoverOptions {
    fn default() -> Self {
        RecoverOptions {
            verify_content: false,
            concurrency: 64,
            manifest_size_limit: 4 << 20,
        }
    }
}

/// Where the plan looked for absent keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUsed {
    /// The audited bucket's versions, in this versioning state.
    Versions(Versioning),
    /// The `--from` location.
    From(String),
    /// None could be used: why.
    None(String),
}

/// A recovery plan.
#[derive(Debug, Clone)]
pub struct RecoveryPlan {
    /// One row per absent needed key, sorted by key.
    pub rows: Vec<PlanRow>,
    /// Keys of the target state (present or not).
    pub needed_keys: u64,
    /// Tags with absent keys that the plan restores entirely.
    pub tags_restored: Vec<String>,
    /// Tags that stay broken, with how many of their keys are unrecoverable.
    pub tags_broken: BTreeMap<String, u64>,
    /// Where keys were looked for.
    pub source: SourceUsed,
    /// What listing versions cost.
    pub listings: ListingStats,
    /// Requests planning made to the audited storage (after the audit).
    pub requests: RequestCounts,
    /// Requests planning made to `--from`.
    pub from_requests: Option<RequestCounts>,
    /// Manifests restored from a source and parsed (their references joined the closure).
    pub manifests_restored: u64,
    /// Present manifests read again for the sizes their descriptors name.
    pub manifests_reread: u64,
    /// Failed reads: the plan is incomplete when there are any.
    pub errors: Vec<String>,
}

impl RecoveryPlan {
    /// Whether every lookup could be made.
    pub fn complete(&self) -> bool {
        self.errors.is_empty()
    }

    /// Rows that are not `unrecoverable`.
    pub fn planned(&self) -> impl Iterator<Item = &PlanRow> {
        self.rows
            .iter()
            .filter(|r| r.action != Action::Unrecoverable)
    }

    /// SPEC §5a exit status: 0 nothing needed is absent, 1 the plan restores everything,
    /// 2 incomplete, 3 some needed keys cannot be recovered.
    pub fn exit_code(&self) -> u8 {
        if !self.complete() {
            2
        } else if self.rows.is_empty() {
            0
        } else if self.rows.iter().any(|r| r.action == Action::Unrecoverable) {
            3
        } else {
            1
        }
    }

    /// The request budget: one per absent key plus the pages of the version listings.
    pub fn request_budget(&self) -> u64 {
        self.rows.len() as u64 + self.listings.pages
    }

    /// Requests planning made, all storages and kinds together.
    pub fn requests_made(&self) -> u64 {
        let sum = |r: &RequestCounts| r.list + r.get + r.head;
        sum(&self.requests) + self.from_requests.as_ref().map_or(0, sum)
    }
}

/// Difference of two request counts.
fn since(after: RequestCounts, before: RequestCounts) -> RequestCounts {
    RequestCounts {
        list: after.list.saturating_sub(before.list),
        get: after.get.saturating_sub(before.get),
        head: after.head.saturating_sub(before.head),
    }
}

/// A read's result.
type Read = Result<Option<Vec<u8>>, StorageError>;

enum Source<'a> {
    Versions(VersionSource<'a>),
    From(&'a dyn Storage),
    None(String),
}

/// Plan the recovery of `outcome` (a complete audit of `storage`) from `from` if given, else
/// from `storage`'s own versions.
pub async fn plan(
    outcome: &AuditOutcome,
    storage: &dyn Storage,
    from: Option<&dyn Storage>,
    opts: &RecoverOptions,
) -> RecoveryPlan {
    let before = storage.request_counts();
    let from_before = from.map(|f| f.request_counts());
    let graph = &outcome.graph;
    let checks = Checks {
        verify_content: opts.verify_content,
        manifest_limit: opts.manifest_size_limit,
    };
    let concurrency = opts.concurrency.max(1);
    let mut errors = Vec::new();
    let (mut source, used) = match (from, storage.versions()) {
        (Some(f), _) => (Source::From(f), SourceUsed::From(f.location())),
        (None, Some(v)) => match v.versioning().await {
            Ok(Versioning::Never) => {
                let why = "versioning was never enabled on the bucket; give --from".to_string();
                (
                    Source::None(why.clone()),
                    SourceUsed::Versions(Versioning::Never),
                )
            }
            Ok(state) => (
                Source::Versions(VersionSource::new(v)),
                SourceUsed::Versions(state),
            ),
            Err(e) => {
                errors.push(format!("reading the bucket's versioning: {e}"));
                let why = "the bucket's versioning could not be read".to_string();
                (Source::None(why.clone()), SourceUsed::None(why))
            }
        },
        (None, None) => {
            let why = format!(
                "the {} backend keeps no versions; give --from a copy",
                storage.name()
            );
            (Source::None(why.clone()), SourceUsed::None(why))
        }
    };
    let location = match from {
        Some(f) => f.location(),
        None => storage.location(),
    };

    let mut docs = Docs::default();
    let mut resolved: HashMap<Key, Lookup> = HashMap::new();
    let mut reread_tried: HashSet<Digest> = HashSet::new();
    let mut restored = 0u64;
    let mut reread = 0u64;
    let target = loop {
        let target = target::compute(graph, &docs);
        let rereads: Vec<Digest> = target
            .sizes_wanted
            .iter()
            .filter(|d| !reread_tried.contains(*d))
            .cloned()
            .collect();
        if !rereads.is_empty() {
            reread_tried.extend(rereads.iter().cloned());
            let limit = opts.manifest_size_limit;
            let reads: Vec<(Digest, Read)> = stream::iter(rereads)
                .map(|d| async move {
                    let path = Key::BlobData { digest: d.clone() }.to_path();
                    let got = storage.get(&path, limit).await;
                    (d, got)
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
            for (d, got) in reads {
                match got {
                    Ok(Some(bytes)) if d.verify(&bytes) == Some(true) => {
                        if let Ok(m) = Manifest::parse(&bytes) {
                            docs.insert(d, &m);
                            reread += 1;
                        }
                    }
                    Ok(_) | Err(StorageError::TooLarge { .. }) => {}
                    Err(e) => errors.push(e.to_string()),
                }
            }
            continue;
        }
        let todo: Vec<(Key, String, Expect)> = target
            .missing
            .values()
            .filter(|m| !resolved.contains_key(&m.key))
            .map(|m| (m.key.clone(), m.key.to_path(), m.expect))
            .collect();
        if todo.is_empty() {
            break target;
        }
        if let Source::Versions(vs) = &mut source {
            let paths: Vec<String> = todo.iter().map(|(_, p, _)| p.clone()).collect();
            let batches = vs.unlisted_batches(&paths);
            let listed = target::listed_under(graph, &batches);
            if let Err(e) = vs.list_for(&paths, &listed, concurrency).await {
                errors.push(e.to_string());
                for (key, _, _) in todo {
                    resolved.insert(key, Lookup::none(format!("listing versions failed: {e}")));
                }
                break target::compute(graph, &docs);
            }
        }
        let source_ref = &source;
        let lookups: Vec<(Key, Result<Lookup, StorageError>)> = stream::iter(todo)
            .map(|(key, path, expect)| async move {
                let got = match source_ref {
                    Source::Versions(vs) => vs.lookup(&path, &key, expect, checks).await,
                    Source::From(f) => sources::lookup_from(*f, &path, &key, expect, checks).await,
                    Source::None(why) => Ok(Lookup::none(why.clone())),
                };
                (key, got)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for (key, got) in lookups {
            let lookup = match got {
                Ok(l) => l,
                Err(e) => {
                    errors.push(e.to_string());
                    Lookup::none(format!("read failed: {e}"))
                }
            };
            if let (Key::BlobData { digest }, Some(bytes)) = (&key, &lookup.content) {
                if !docs.contains(digest) {
                    if let Ok(m) = Manifest::parse(bytes) {
                        docs.insert(digest.clone(), &m);
                        restored += 1;
                    }
                }
            }
            resolved.insert(key, lookup);
        }
    };

    let mut rows: Vec<PlanRow> = target
        .missing
        .values()
        .filter_map(|m| {
            let found = resolved.get(&m.key).map(|l| &l.found)?;
            PlanRow::new(
                m.key.to_path(),
                found,
                m.expect.size(&m.key),
                m.needed_by().to_string(),
                m.tags.iter().cloned().collect(),
                &location,
            )
        })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    let mut tags_broken: BTreeMap<String, u64> = BTreeMap::new();
    let mut touched: BTreeSet<&str> = BTreeSet::new();
    for r in &rows {
        for t in &r.tags {
            touched.insert(t);
            if r.action == Action::Unrecoverable {
                *tags_broken.entry(t.clone()).or_default() += 1;
            }
        }
        if r.action == Action::Unrecoverable && r.tags.is_empty() {
            *tags_broken.entry(r.needed_by.clone()).or_default() += 1;
        }
    }
    let tags_restored = touched
        .into_iter()
        .filter(|t| !tags_broken.contains_key(*t))
        .map(str::to_string)
        .collect();
    let listings = match &source {
        Source::Versions(vs) => vs.stats,
        _ => ListingStats::default(),
    };
    RecoveryPlan {
        rows,
        needed_keys: target.needed_keys,
        tags_restored,
        tags_broken,
        source: used,
        listings,
        requests: since(storage.request_counts(), before),
        from_requests: from
            .zip(from_before)
            .map(|(f, b)| since(f.request_counts(), b)),
        manifests_restored: restored,
        manifests_reread: reread,
        errors,
    }
}

/// What a scan says about a versioned bucket: how many absent needed keys have a version
/// that looks usable (right size, not a delete marker). One round, no reads of versions: the
/// children of a restored index are not counted (a `recover` run finds them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct VersionsHint {
    /// Absent needed keys found by the scan's graph.
    pub missing_keys: u64,
    /// Of those, keys with a usable version.
    pub recoverable: u64,
    /// Version listing pages this took.
    pub listing_pages: u64,
}

/// For a scan of a versioned bucket: [`VersionsHint`], or `None` when the storage keeps no
/// versions or versioning was never enabled (the only request then is GetBucketVersioning,
/// and none when the backend has no versions at all).
pub async fn versions_hint(
    outcome: &AuditOutcome,
    storage: &dyn Storage,
    concurrency: usize,
) -> Result<Option<(Versioning, VersionsHint)>, StorageError> {
    let Some(versions) = storage.versions() else {
        return Ok(None);
    };
    let state = versions.versioning().await?;
    if state == Versioning::Never {
        return Ok(None);
    }
    let target = target::compute(&outcome.graph, &Docs::default());
    let missing: Vec<&MissingKey> = target.missing.values().collect();
    let paths: Vec<String> = missing.iter().map(|m| m.key.to_path()).collect();
    let mut vs = VersionSource::new(versions as &dyn ObjectVersions);
    let listed = target::listed_under(&outcome.graph, &vs.unlisted_batches(&paths));
    vs.list_for(&paths, &listed, concurrency.max(1)).await?;
    let recoverable = missing
        .iter()
        .zip(&paths)
        .filter(|(m, p)| vs.has_candidate(p, m.expect.size(&m.key)))
        .count() as u64;
    Ok(Some((
        state,
        VersionsHint {
            missing_keys: missing.len() as u64,
            recoverable,
            listing_pages: vs.stats.pages,
        },
    )))
}

#[cfg(test)]
mod tests;
