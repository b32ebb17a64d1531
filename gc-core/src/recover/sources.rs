//! Where a missing key can come back from: the audited bucket's own versions, or the same key
//! in a `--from` copy (another bucket, a filesystem snapshot).
//!
//! A source object is used only if it is what the key must hold: the size the referencing
//! descriptor names; for a link, the digest of its path (by the version's ETag when that is the
//! MD5 of it, else read); for a manifest, bytes that hash to its digest (always read: the
//! planner parses them to go on with the closure); with `--verify-content`, a blob's bytes that
//! hash to its digest.
//!
//! Versions are listed by prefix, and a listing covers every key under it, so missing keys that
//! share a blob fan-out directory (`…/blobs/sha256/ab/`) or a repository's link directory
//! (`…/_layers/sha256/`) are looked up with one listing of it when its pages (estimated from
//! what the audit listed there) are fewer than one listing per key; otherwise each key's own
//! directory is listed. Everything listed is kept, so no prefix is listed twice.

use super::target::Expect;
use crate::etag::{self, EtagEvidence};
use crate::layout::Key;
use crate::storage::{ObjectVersion, ObjectVersions, Storage, StorageError};
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::{HashMap, HashSet};

/// Link files hold a few dozen bytes; a source over this is not read.
const LINK_LIMIT: u64 = 4096;

/// Versions an S3 ListObjectVersions page returns at most.
pub const VERSIONS_PER_PAGE: u64 = 1000;

/// The prefix two segments above a key (`…/blobs/sha256/ab/` for blob data,
/// `…/_layers/sha256/` for a layer link): where keys like it are batched.
pub fn batch_prefix(path: &str) -> Option<&str> {
    let own = key_prefix(path)?;
    let trimmed = own.strip_suffix('/')?;
    trimmed.rfind('/').map(|i| &path[..=i])
}

/// The key's own directory (`…/<hex>/`): a listing of only its versions.
pub fn key_prefix(path: &str) -> Option<&str> {
    path.rfind('/').map(|i| &path[..=i])
}

/// Where a missing key comes back from, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The key holds what it must after all (written since the audit read it).
    Present,
    /// The newest version is a delete marker over a usable version: remove the marker.
    RemoveMarker {
        /// The delete marker's version id.
        marker: String,
        /// The version that becomes current again.
        version: String,
        /// Its size.
        size: u64,
    },
    /// Copy this noncurrent version over the key.
    CopyVersion {
        /// The version id.
        version: String,
        /// Its size.
        size: u64,
        /// Its ETag, when listed.
        e_tag: Option<String>,
    },
    /// Copy the same key from the `--from` location.
    CopyFrom {
        /// Its size there.
        size: u64,
    },
    /// No usable source: why.
    Unrecoverable {
        /// What was found and why it is not used.
        why: String,
    },
}

/// The result of looking one key up: where it comes from, and a manifest's bytes.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The source.
    pub found: Found,
    /// The bytes read from the source (manifests, and blobs with `--verify-content`).
    pub content: Option<Vec<u8>>,
}

impl Lookup {
    pub(crate) fn none(why: impl Into<String>) -> Lookup {
        Lookup {
            found: Found::Unrecoverable { why: why.into() },
            content: None,
        }
    }
}

/// How sources are checked.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// Read blobs and check their digest, not only their size.
    pub verify_content: bool,
    /// Manifests larger than this are not read.
    pub manifest_limit: u64,
}

/// What listing versions cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ListingStats {
    /// `list_versions` calls: prefixes listed.
    pub prefixes: u64,
    /// Versions and delete markers listed.
    pub entries: u64,
    /// Pages those listings take at least (one per prefix, one per 1,000 entries).
    pub pages: u64,
    /// Prefixes listed whole for several missing keys (the rest are one key's own directory).
    pub batched_prefixes: u64,
}

/// Why a candidate is not used, or its bytes if it was read.
type Checked = Result<Option<Vec<u8>>, String>;

/// The audited bucket's versions, listed by prefix and kept.
pub struct VersionSource<'a> {
    versions: &'a dyn ObjectVersions,
    listed: HashSet<String>,
    by_key: HashMap<String, Vec<ObjectVersion>>,
    /// What the listings cost so far.
    pub stats: ListingStats,
}

impl std::fmt::Debug for VersionSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionSource")
            .field("listed", &self.listed.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl<'a> VersionSource<'a> {
    /// A source over `versions`, nothing listed yet.
    pub fn new(versions: &'a dyn ObjectVersions) -> Self {
        VersionSource {
            versions,
            listed: HashSet::new(),
            by_key: HashMap::new(),
            stats: ListingStats::default(),
        }
    }

    fn covered(&self, path: &str) -> bool {
        key_prefix(path).is_some_and(|p| self.listed.contains(p))
            || batch_prefix(path).is_some_and(|p| self.listed.contains(p))
    }

    /// The batch prefixes of the `paths` not listed yet, for [`Self::list_for`]'s estimate.
    pub fn unlisted_batches(&self, paths: &[String]) -> HashSet<String> {
        paths
            .iter()
            .filter(|p| !self.covered(p))
            .filter_map(|p| batch_prefix(p).map(str::to_string))
            .collect()
    }

    /// List the versions of every path in `paths` not listed yet: per batch prefix, the whole
    /// prefix when its estimated pages (`listed_there` keys the audit saw there, plus a
    /// version and a delete marker per missing key) are fewer than the keys wanted there,
    /// else each key's own directory.
    pub async fn list_for(
        &mut self,
        paths: &[String],
        listed_there: &HashMap<String, u64>,
        concurrency: usize,
    ) -> Result<(), StorageError> {
        let mut groups: HashMap<&str, Vec<&str>> = HashMap::new();
        for p in paths.iter().filter(|p| !self.covered(p)) {
            if let Some(b) = batch_prefix(p) {
                groups.entry(b).or_default().push(p);
            }
        }
        let mut prefixes: Vec<(String, bool)> = Vec::new();
        for (batch, mut keys) in groups {
            keys.sort_unstable();
            keys.dedup();
            let k = keys.len() as u64;
            let there = listed_there.get(batch).copied().unwrap_or(0);
            let pages = (there + 2 * k).div_ceil(VERSIONS_PER_PAGE).max(1);
            if pages < k {
                prefixes.push((batch.to_string(), true));
            } else {
                prefixes.extend(
                    keys.iter()
                        .filter_map(|p| key_prefix(p))
                        .map(|p| (p.to_string(), false)),
                );
            }
        }
        prefixes.sort();
        prefixes.dedup();
        let versions = self.versions;
        let listings: Vec<(String, bool, Vec<ObjectVersion>)> = stream::iter(prefixes)
            .map(|(prefix, batched)| async move {
                let entries: Vec<ObjectVersion> =
                    versions.list_versions(&prefix).try_collect().await?;
                Ok::<_, StorageError>((prefix, batched, entries))
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
        for (prefix, batched, entries) in listings {
            self.stats.prefixes += 1;
            self.stats.batched_prefixes += u64::from(batched);
            self.stats.entries += entries.len() as u64;
            self.stats.pages += (entries.len() as u64).div_ceil(VERSIONS_PER_PAGE).max(1);
            for v in entries {
                self.by_key.entry(v.key.clone()).or_default().push(v);
            }
            self.listed.insert(prefix);
        }
        for entries in self.by_key.values_mut() {
            // Newest first: the current entry, then by time; the listing's own order (S3 lists
            // a key's versions newest first) breaks ties.
            entries.sort_by(|a, b| {
                b.is_latest
                    .cmp(&a.is_latest)
                    .then(b.last_modified.cmp(&a.last_modified))
            });
        }
        Ok(())
    }

    /// Whether `path` has a version that is no delete marker and, when `size` is given, of
    /// that size: what a scan counts as recoverable without reading anything.
    pub fn has_candidate(&self, path: &str, size: Option<u64>) -> bool {
        self.by_key.get(path).is_some_and(|entries| {
            let current_hidden = entries
                .first()
                .is_some_and(|v| v.delete_marker && v.is_latest);
            entries
                .iter()
                .skip(usize::from(current_hidden))
                .any(|v| !v.delete_marker && size.is_none_or(|s| s == v.size))
        })
    }

    /// Where `key` (at `path`) comes back from among its versions.
    pub async fn lookup(
        &self,
        path: &str,
        key: &Key,
        expect: Expect,
        checks: Checks,
    ) -> Result<Lookup, StorageError> {
        let Some(entries) = self.by_key.get(path).filter(|e| !e.is_empty()) else {
            return Ok(Lookup::none("no version of this key in the bucket"));
        };
        let newest = &entries[0];
        if !newest.delete_marker && newest.is_latest {
            if let Ok(content) = self.check(path, key, expect, checks, newest).await? {
                return Ok(Lookup {
                    found: Found::Present,
                    content,
                });
            }
        }
        let mut refused = Vec::new();
        for (i, v) in entries.iter().enumerate().skip(1) {
            if v.delete_marker {
                continue;
            }
            match self.check(path, key, expect, checks, v).await? {
                Ok(content) => {
                    let found = if i == 1 && newest.delete_marker && newest.is_latest {
                        Found::RemoveMarker {
                            marker: newest.version_id.clone(),
                            version: v.version_id.clone(),
                            size: v.size,
                        }
                    } else {
                        Found::CopyVersion {
                            version: v.version_id.clone(),
                            size: v.size,
                            e_tag: v.e_tag.clone(),
                        }
                    };
                    return Ok(Lookup { found, content });
                }
                Err(why) => refused.push(why),
            }
        }
        Ok(Lookup::none(if refused.is_empty() {
            "only delete markers in the bucket".to_string()
        } else {
            refused.join("; ")
        }))
    }

    async fn check(
        &self,
        path: &str,
        key: &Key,
        expect: Expect,
        checks: Checks,
        v: &ObjectVersion,
    ) -> Result<Checked, StorageError> {
        let id = &v.version_id;
        if let Some(size) = expect.size(key) {
            if v.size != size {
                return Ok(Err(format!("version {id} is {} bytes, not {size}", v.size)));
            }
        }
        let read = |limit: u64| async move {
            self.versions
                .get_version(path, id, limit)
                .await
                .map(|c| c.ok_or_else(|| format!("version {id} vanished when read")))
        };
        Ok(match expect {
            Expect::Link => {
                let want = key.path_digest().map(|d| d.to_string()).unwrap_or_default();
                if etag::evidence(v.e_tag.as_deref(), want.as_bytes()) == EtagEvidence::Matches {
                    Ok(None)
                } else {
                    match read(LINK_LIMIT).await {
                        Err(StorageError::TooLarge { .. }) => {
                            Err(format!("version {id} is no link"))
                        }
                        r => r?.and_then(|c| link_holds(&c, &want, &format!("version {id}"))),
                    }
                }
            }
            Expect::Manifest { .. } => match read(checks.manifest_limit).await {
                Err(StorageError::TooLarge { .. }) => {
                    Err(format!("version {id} is larger than the manifest limit"))
                }
                r => r?.and_then(|c| hashes_to(key, c, &format!("version {id}"))),
            },
            Expect::Blob { .. } if checks.verify_content => read(v.size)
                .await?
                .and_then(|c| hashes_to(key, c, &format!("version {id}"))),
            Expect::Blob { .. } => Ok(None),
        })
    }
}

fn link_holds(content: &[u8], want: &str, what: &str) -> Result<Option<Vec<u8>>, String> {
    if content == want.as_bytes() {
        Ok(None)
    } else {
        Err(format!(
            "{what} holds {:?}, not {want}",
            String::from_utf8_lossy(&content[..content.len().min(80)])
        ))
    }
}

fn hashes_to(key: &Key, content: Vec<u8>, what: &str) -> Result<Option<Vec<u8>>, String> {
    match key.path_digest().and_then(|d| d.verify(&content)) {
        Some(true) => Ok(Some(content)),
        Some(false) => Err(format!("{what} does not hash to its digest")),
        None => Err(format!("{what}: digest algorithm not checkable")),
    }
}

/// Where `key` (at `path`) comes back from in the `--from` location.
pub async fn lookup_from(
    from: &dyn Storage,
    path: &str,
    key: &Key,
    expect: Expect,
    checks: Checks,
) -> Result<Lookup, StorageError> {
    let here = "the --from copy";
    let size_ok = |size: u64| match expect.size(key) {
        Some(want) if want != size => Err(format!("{here} is {size} bytes, not {want}")),
        _ => Ok(()),
    };
    let read = |limit: u64| async move {
        match from.get(path, limit).await {
            Ok(c) => Ok(c.ok_or_else(|| format!("not in {}", from.location()))),
            Err(StorageError::TooLarge { .. }) => Ok(Err(format!("{here} is too large"))),
            Err(e) => Err(e),
        }
    };
    let checked: Result<(u64, Option<Vec<u8>>), String> = match expect {
        Expect::Link => {
            let want = key.path_digest().map(|d| d.to_string()).unwrap_or_default();
            read(LINK_LIMIT).await?.and_then(|c| {
                link_holds(&c, &want, here)?;
                Ok((c.len() as u64, None))
            })
        }
        Expect::Manifest { .. } => read(checks.manifest_limit).await?.and_then(|c| {
            size_ok(c.len() as u64)?;
            let len = c.len() as u64;
            hashes_to(key, c, here).map(|c| (len, c))
        }),
        Expect::Blob { .. } => match from.head(path).await? {
            None => Err(format!("not in {}", from.location())),
            Some(meta) => match size_ok(meta.size) {
                Err(e) => Err(e),
                Ok(()) if checks.verify_content => read(meta.size)
                    .await?
                    .and_then(|c| hashes_to(key, c, here).map(|c| (meta.size, c))),
                Ok(()) => Ok((meta.size, None)),
            },
        },
    };
    Ok(match checked {
        Ok((size, content)) => Lookup {
            found: Found::CopyFrom { size },
            content,
        },
        Err(why) => Lookup::none(why),
    })
}
