//! The audit run: list the storage, read what must be read, then analyse.
//!
//! This is the only module of gc-core that does I/O, and it does only what SPEC §2 allows: one
//! listing of `docker/registry/v2/`, one GET per tag `current/link`, one GET per distinct
//! manifest digest (a manifest linked into several repositories is read once), one GET per
//! upload `startedat`, and a GET of a link only when its listed size says it cannot hold the
//! digest in its path (or when link verification is asked for). Reads run concurrently up to
//! [`AuditOptions::concurrency`].
//!
//! Every failed listing or read is recorded as a `read-error` finding and makes the audit
//! incomplete; the run goes on so that the other findings still appear, but an incomplete
//! report withholds every file that absence of data could make wrong (orphaned, missing,
//! dangling, broken, repos, gc-unsafe). gc-core never prints: progress goes through
//! [`Progress`].

use crate::analysis::{analyse, mark_all, AnalysisOptions, GlobalMarks};
use crate::digest::Digest;
use crate::gc::{self, Driver, GcModel};
use crate::graph::{DigestId, Graph, ManifestNode, ManifestState, TagTarget};
use crate::layout::{Key, LayoutError, ROOT};
use crate::manifest::Manifest;
use crate::report::{Finding, FindingKind, ReclaimableBy, Report, Totals};
use crate::storage::{RequestCounts, Storage, StorageError};
use futures::stream::{self, StreamExt};
use std::time::{Duration, Instant, SystemTime};

/// Settings of an audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Blobs and uploads younger than this are `young` (default 1 h).
    pub grace: Duration,
    /// Requests in flight (default 64).
    pub concurrency: usize,
    /// Manifests larger than this are not downloaded (default 4 MiB, distribution's own
    /// limit for manifest PUTs).
    pub manifest_size_limit: u64,
    /// Uploads older than this are stale (default 168 h, the registry's purge age).
    pub stale_upload_age: Duration,
    /// Read every link file and compare it with its path, not only those whose size is wrong.
    pub verify_links: bool,
    /// The time to treat as now (default: the start of the run).
    pub now: Option<SystemTime>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            grace: Duration::from_secs(3600),
            concurrency: 64,
            manifest_size_limit: 4 << 20,
            stale_upload_age: Duration::from_secs(168 * 3600),
            verify_links: false,
            now: None,
        }
    }
}

/// The phases of a run, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Listing keys.
    Listing,
    /// Reading tag `current/link` files, and the manifests the listing names.
    TagLinks,
    /// Reading link files whose size is wrong, and upload start times.
    LinkChecks,
    /// Reading manifests.
    Manifests,
    /// Building the report.
    Analysis,
}

impl Phase {
    /// A label for a person.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Listing => "listing keys",
            Phase::TagLinks => "reading tags and manifests",
            Phase::LinkChecks => "checking links",
            Phase::Manifests => "reading manifests",
            Phase::Analysis => "analysing",
        }
    }
}

/// Receives progress. Every method has an empty default.
pub trait Progress: Send + Sync {
    /// A phase starts; `total` when known.
    fn start(&self, _phase: Phase, _total: Option<u64>) {}
    /// `n` more items of the current phase are done.
    fn advance(&self, _n: u64) {}
    /// The current phase is done.
    fn finish(&self, _phase: Phase) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Everything an audit produced.
#[derive(Debug)]
pub struct AuditOutcome {
    /// The report (rows withheld when incomplete).
    pub report: Report,
    /// The graph, for GC models and embedders.
    pub graph: Graph,
    /// The closures.
    pub marks: GlobalMarks,
    /// The walk order of the storage's driver, for the GC models.
    pub driver: Driver,
}

/// The outcome of one read: the caller's index, the key, and what came back.
type ReadResult = (usize, String, Result<Option<Vec<u8>>, StorageError>);

struct Run<'a> {
    storage: &'a dyn Storage,
    opts: &'a AuditOptions,
    progress: &'a dyn Progress,
    graph: Graph,
    findings: Vec<Finding>,
    errors: Vec<String>,
}

/// Audit `storage`.
pub async fn audit(
    storage: &dyn Storage,
    opts: &AuditOptions,
    progress: &dyn Progress,
) -> AuditOutcome {
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut run = Run {
        storage,
        opts,
        progress,
        graph: Graph::new(),
        findings: Vec::new(),
        errors: Vec::new(),
    };
    let suspicious = run.list().await;
    crate::heap::release_free_memory();
    run.read_tags().await;
    run.check_links(suspicious).await;
    run.read_upload_times().await;
    run.read_manifests().await;
    run.graph.shrink_to_fit();
    crate::heap::release_free_memory();

    progress.start(Phase::Analysis, None);
    let now = opts.now.unwrap_or(started);
    let analysis = AnalysisOptions {
        now,
        grace: opts.grace,
        stale_upload_age: opts.stale_upload_age,
    };
    let marks = mark_all(&run.graph);
    let driver = if storage.name() == "s3" {
        Driver::ObjectStore
    } else {
        Driver::Filesystem
    };
    let mut findings = std::mem::take(&mut run.findings);
    let mut gc_unsafe = Vec::new();
    for model in GcModel::ALL {
        let plan = gc::plan(&run.graph, model, driver);
        match gc::unsafe_deletions(&run.graph, &marks, model, &plan) {
            Ok(rows) => gc_unsafe.extend(rows),
            Err(u) => findings.push(Finding {
                repository: u.repository,
                key: u.key,
                kind: FindingKind::GcUnpredictable,
                detail: format!("{model}: cannot predict its run: {}", u.why),
            }),
        }
    }
    let mut report = analyse(&run.graph, &marks, findings, &analysis);
    // Rows are ordered by every field: equal rows are identical, so unstable = stable.
    gc_unsafe.sort_unstable();
    report.gc_unsafe = gc_unsafe;
    progress.finish(Phase::Analysis);

    let graph = run.graph;
    let complete = run.errors.is_empty();
    let s = &mut report.summary;
    s.tool = "gc-audit".to_string();
    s.version = env!("CARGO_PKG_VERSION").to_string();
    s.location = storage.location();
    s.backend = storage.name().to_string();
    s.complete = complete;
    s.started_at = humantime::format_rfc3339_millis(started).to_string();
    s.finished_at = humantime::format_rfc3339_millis(started + clock.elapsed()).to_string();
    s.duration_seconds = clock.elapsed().as_secs_f64();
    s.grace_seconds = opts.grace.as_secs();
    s.totals = Totals {
        keys: graph.keys_listed,
        blobs: graph.blobs.len() as u64,
        bytes: graph.blobs.values().map(|b| b.size).sum(),
        repositories: graph.repos.len() as u64,
        tags: graph
            .repos
            .values()
            .map(|r| {
                r.tags
                    .values()
                    .filter(|t| !matches!(t.target, TagTarget::NoCurrent))
                    .count() as u64
            })
            .sum(),
        manifests: graph.manifests.len() as u64,
        revisions: graph.repos.values().map(|r| r.revisions.len() as u64).sum(),
    };
    s.requests = storage.request_counts();
    s.requests_minimum = RequestCounts {
        list: graph.keys_listed.div_ceil(1000).max(1),
        get: s.totals.tags + graph.manifests.len() as u64,
        head: 0,
    };
    s.errors = run.errors.iter().take(100).cloned().collect();
    if !complete {
        s.withheld = [
            "orphaned.csv",
            "missing.csv",
            "dangling.csv",
            "gc-unsafe.csv",
            "broken.csv",
            "repos.csv",
        ]
        .iter()
        .map(|f| f.to_string())
        .collect();
        report.orphaned.clear();
        report.missing.clear();
        report.dangling.clear();
        report.gc_unsafe.clear();
        report.broken.clear();
        report.repos.clear();
    }
    summarise_rows(&mut report);
    AuditOutcome {
        report,
        graph,
        marks,
        driver,
    }
}

/// Fill the summary's counts from the rows.
fn summarise_rows(report: &mut Report) {
    let s = &mut report.summary;
    for row in report.orphaned.iter() {
        let bucket = if row.young {
            &mut s.young
        } else if row.reclaimable_by == ReclaimableBy::Gc {
            &mut s.reclaimable_by_gc
        } else {
            &mut s.reclaimable_by_gc_delete_untagged
        };
        bucket.add(row.size);
    }
    s.missing = report.missing.len() as u64;
    s.dangling = report.dangling.len() as u64;
    s.broken_tags = report.broken.len() as u64;
    s.gc_unsafe.clear();
    for row in &report.gc_unsafe {
        *s.gc_unsafe.entry(row.model.to_string()).or_default() += 1;
    }
    s.findings.clear();
    for row in &report.findings {
        *s.findings.entry(row.kind.clone()).or_default() += 1;
    }
}

impl<'a> Run<'a> {
    fn read_error(&mut self, err: &StorageError) {
        let msg = format!("{}: {err}", self.storage.name());
        self.findings.push(Finding {
            repository: None,
            key: err.key().to_string(),
            kind: FindingKind::ReadError,
            detail: err.to_string(),
        });
        self.errors.push(msg);
    }

    fn layout_finding(&mut self, key: &str, err: LayoutError) {
        let kind = match &err {
            LayoutError::OutsideRoot | LayoutError::Unrecognized { .. } => {
                FindingKind::UnrecognizedKey
            }
            LayoutError::BadDigest { .. } => FindingKind::BadDigestInPath,
            LayoutError::FanoutMismatch { .. } => FindingKind::FanoutMismatch,
            LayoutError::BadRepositoryName { .. } => FindingKind::BadRepositoryName,
            LayoutError::BadTagName { .. } => FindingKind::BadTagName,
        };
        self.findings.push(Finding {
            repository: err.repository().map(str::to_string),
            key: key.to_string(),
            kind,
            detail: err.to_string(),
        });
    }

    /// List everything; returns the link keys that must be read to be checked.
    async fn list(&mut self) -> Vec<Key> {
        self.progress.start(Phase::Listing, None);
        let mut suspicious = Vec::new();
        let mut listing = self.storage.list(ROOT);
        while let Some(item) = listing.next().await {
            self.progress.advance(1);
            match item {
                Err(err) => self.read_error(&err),
                Ok(meta) if meta.key.ends_with('/') => {
                    self.graph.keys_listed += 1;
                    self.graph.add_empty_directory(&meta.key);
                }
                Ok(meta) => {
                    self.graph.keys_listed += 1;
                    match Key::parse(&meta.key) {
                        Err(err) => {
                            if meta.key.starts_with(crate::layout::BLOBS)
                                && meta.key.ends_with("/data")
                            {
                                self.graph.bad_blob_paths.push(meta.key.clone());
                            }
                            self.layout_finding(&meta.key, err)
                        }
                        Ok(key) => {
                            let size_ok = self.graph.add_key(&key, meta.size, meta.last_modified);
                            let is_link = matches!(
                                key,
                                Key::LayerLink { .. }
                                    | Key::RevisionLink { .. }
                                    | Key::TagIndexEntry { .. }
                            );
                            if is_link && (!size_ok || self.opts.verify_links) {
                                suspicious.push(key);
                            }
                        }
                    }
                }
            }
        }
        drop(listing);
        self.progress.finish(Phase::Listing);
        suspicious
    }

    /// GETs of `items` (what the caller calls it, key, byte limit), `--concurrency` at a time,
    /// each counted in the progress; results in completion order. The stream borrows only the
    /// storage and the progress, so the caller can update the graph as results arrive.
    fn get_all<'s, T: 's>(
        &self,
        items: impl IntoIterator<Item = (T, String, u64)> + 's,
    ) -> impl futures::Stream<Item = (T, String, Result<Option<Vec<u8>>, StorageError>)> + 's
    where
        'a: 's,
    {
        let storage = self.storage;
        let progress = self.progress;
        stream::iter(items)
            .map(move |(wanted, key, limit)| async move {
                let got = storage.get(&key, limit).await;
                progress.advance(1);
                (wanted, key, got)
            })
            .buffer_unordered(self.opts.concurrency.max(1))
    }

    /// Small reads of many keys, concurrently; results in completion order.
    async fn read_small(&self, keys: Vec<(usize, String)>, limit: u64) -> Vec<ReadResult> {
        self.get_all(keys.into_iter().map(|(i, key)| (i, key, limit)))
            .collect()
            .await
    }

    /// Read every tag's `current/link`, and with them the manifests the listing names.
    async fn read_tags(&mut self) {
        let mut wanted: Vec<(String, String)> = Vec::new();
        for repo in self.graph.repos.values() {
            for tag in repo.tags.values() {
                if tag.current_size.is_some() {
                    wanted.push((repo.name.clone(), tag.name.clone()));
                }
            }
        }
        // The manifests the listing names (revisions) are fetched alongside.
        let known = self.graph.manifests_to_read();
        let manifests = self.manifest_keys(known);
        self.progress.start(
            Phase::TagLinks,
            Some((wanted.len() + manifests.len()) as u64),
        );
        let keys = wanted
            .iter()
            .enumerate()
            .map(|(i, (repo, tag))| {
                (
                    i,
                    Key::TagCurrent {
                        repo: repo.clone(),
                        tag: tag.clone(),
                    }
                    .to_path(),
                )
            })
            .collect();
        for (i, key, got) in self.fetch_tags_and_manifests(keys, manifests).await {
            let target = match got {
                Ok(Some(bytes)) => match std::str::from_utf8(&bytes).ok().map(Digest::parse) {
                    Some(Ok(d)) => TagTarget::Digest(self.graph.digests.intern(&d)),
                    _ => TagTarget::BadLink(escape(&bytes)),
                },
                Ok(None) => {
                    self.errors.push(format!(
                        "{key}: listed but gone when read (the storage changed during the audit)"
                    ));
                    self.findings.push(Finding {
                        repository: Some(wanted[i].0.clone()),
                        key,
                        kind: FindingKind::ReadError,
                        detail: "listed but gone when read".to_string(),
                    });
                    continue;
                }
                Err(StorageError::TooLarge { size, .. }) => {
                    TagTarget::BadLink(format!("<{size} bytes>"))
                }
                Err(err) => {
                    self.read_error(&err);
                    continue;
                }
            };
            let (repo, tag) = &wanted[i];
            if let Some(t) = self
                .graph
                .repos
                .get_mut(repo)
                .and_then(|r| r.tags.get_mut(tag))
            {
                t.target = target;
            }
        }
        self.progress.finish(Phase::TagLinks);
    }

    async fn check_links(&mut self, suspicious: Vec<Key>) {
        self.progress
            .start(Phase::LinkChecks, Some(suspicious.len() as u64));
        let keys = suspicious
            .iter()
            .enumerate()
            .map(|(i, k)| (i, k.to_path()))
            .collect();
        for (i, key, got) in self.read_small(keys, 4096).await {
            let link = &suspicious[i];
            let expected = link
                .path_digest()
                .map(ToString::to_string)
                .unwrap_or_default();
            match got {
                Ok(Some(bytes)) if bytes == expected.as_bytes() => {}
                Ok(Some(bytes)) => {
                    let content = escape(&bytes);
                    if let Key::TagIndexEntry { repo, .. } = link {
                        let kind = if Digest::parse(&content).is_ok() {
                            FindingKind::LinkMismatch
                        } else {
                            FindingKind::BadLink
                        };
                        self.findings.push(Finding {
                            repository: Some(repo.clone()),
                            key,
                            kind,
                            detail: format!("content {content}, expected {expected}"),
                        });
                    } else {
                        self.graph.mark_bad_link(link, content);
                    }
                }
                Ok(None) => {
                    self.errors.push(format!(
                        "{key}: listed but gone when read (the storage changed during the audit)"
                    ));
                }
                Err(StorageError::TooLarge { size, .. }) => {
                    self.graph.mark_bad_link(link, format!("<{size} bytes>"))
                }
                Err(err) => self.read_error(&err),
            }
        }
        self.progress.finish(Phase::LinkChecks);
    }

    async fn read_upload_times(&mut self) {
        let mut wanted: Vec<(String, String)> = Vec::new();
        for repo in self.graph.repos.values() {
            for (id, upload) in &repo.uploads {
                if upload.has_started_at {
                    wanted.push((repo.name.clone(), id.clone()));
                }
            }
        }
        if wanted.is_empty() {
            return;
        }
        let keys = wanted
            .iter()
            .enumerate()
            .map(|(i, (repo, id))| {
                (
                    i,
                    Key::UploadStartedAt {
                        repo: repo.clone(),
                        id: id.clone(),
                    }
                    .to_path(),
                )
            })
            .collect();
        for (i, _key, got) in self.read_small(keys, 4096).await {
            let started = match got {
                Ok(Some(bytes)) => std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| parse_rfc3339(s.trim())),
                Ok(None) | Err(StorageError::TooLarge { .. }) => None,
                Err(err) => {
                    self.read_error(&err);
                    continue;
                }
            };
            let (repo, id) = &wanted[i];
            if let Some(u) = self
                .graph
                .repos
                .get_mut(repo)
                .and_then(|r| r.uploads.get_mut(id))
            {
                u.started_at = started;
            }
        }
    }

    /// Keys to GET for manifests `ids`; those over the size limit are recorded as too large
    /// instead of read.
    fn manifest_keys(&mut self, ids: Vec<DigestId>) -> Vec<(DigestId, String)> {
        let limit = self.opts.manifest_size_limit;
        let mut to_get = Vec::with_capacity(ids.len());
        for id in ids {
            let size = self.graph.blobs.get(&id).map(|b| b.size).unwrap_or(0);
            if size > limit {
                self.graph
                    .manifests
                    .insert(id, ManifestState::TooLarge(size));
            } else {
                let key = Key::BlobData {
                    digest: self.graph.digests.digest(id).clone(),
                }
                .to_path();
                to_get.push((id, key));
            }
        }
        to_get
    }

    /// Record a fetched manifest: parsed (or unparseable) at once, so that at most
    /// `concurrency` manifest bodies are in memory. Anything but content comes back, to be
    /// settled by [`Run::settle_manifest`] once the fetches are over.
    fn take_manifest(
        &mut self,
        id: DigestId,
        key: String,
        got: Result<Option<Vec<u8>>, StorageError>,
    ) -> Option<ReadResult> {
        match got {
            Ok(Some(bytes)) => {
                let digest = self.graph.digests.digest(id).clone();
                if digest.verify(&bytes) == Some(false) {
                    let actual = Digest::sha256_of(&bytes).to_string();
                    self.graph.content_mismatch.insert(id, actual);
                }
                let state = match Manifest::parse(&bytes) {
                    Ok(m) => ManifestState::Parsed(ManifestNode::from_manifest(
                        m,
                        &mut self.graph.digests,
                    )),
                    Err(e) => ManifestState::Unparseable(e.to_string()),
                };
                self.graph.manifests.insert(id, state);
                None
            }
            other => Some((id.index(), key, other)),
        }
    }

    /// A manifest fetch that brought no content: too large, failed, or gone.
    fn settle_manifest(&mut self, (i, key, got): ReadResult) {
        let id = DigestId(i as u32);
        match got {
            Err(StorageError::TooLarge { size, .. }) => {
                self.graph
                    .manifests
                    .insert(id, ManifestState::TooLarge(size));
            }
            Err(err) => {
                self.read_error(&err);
                // Do not ask for it again in the next round.
                self.graph.manifests.insert(
                    id,
                    ManifestState::Unparseable(format!("read failed: {err}")),
                );
            }
            Ok(None) => {
                self.errors.push(format!(
                    "{key}: listed but gone when read (the storage changed during the audit)"
                ));
                self.graph.manifests.insert(
                    id,
                    ManifestState::Unparseable("listed but gone when read".to_string()),
                );
            }
            Ok(Some(_)) => {}
        }
    }

    /// Fetch `tags` (tag `current/link` keys, by index) and `manifests` in one pipeline of
    /// `concurrency` requests: the manifests the listing already names need not wait for the
    /// tags, and a single pipeline has a single tail. Returns the tag reads.
    async fn fetch_tags_and_manifests(
        &mut self,
        tags: Vec<(usize, String)>,
        manifests: Vec<(DigestId, String)>,
    ) -> Vec<ReadResult> {
        enum Wanted {
            Tag(usize),
            Manifest(DigestId),
        }
        let manifest_limit = self.opts.manifest_size_limit;
        let items = tags
            .into_iter()
            .map(|(i, key)| (Wanted::Tag(i), key, 4096))
            .chain(
                manifests
                    .into_iter()
                    .map(move |(id, key)| (Wanted::Manifest(id), key, manifest_limit)),
            );
        let mut results = self.get_all(items);
        let mut tag_reads = Vec::new();
        let mut unsettled = Vec::new();
        while let Some((wanted, key, got)) = results.next().await {
            match wanted {
                Wanted::Tag(i) => tag_reads.push((i, key, got)),
                Wanted::Manifest(id) => unsettled.extend(self.take_manifest(id, key, got)),
            }
        }
        drop(results);
        for read in unsettled {
            self.settle_manifest(read);
        }
        tag_reads
    }

    /// Read every manifest not read yet (tag targets and children outside the revisions, in
    /// rounds until nothing new turns up).
    async fn read_manifests(&mut self) {
        self.progress.start(Phase::Manifests, None);
        loop {
            let ids: Vec<DigestId> = self.graph.manifests_to_read();
            if ids.is_empty() {
                break;
            }
            let to_get = self.manifest_keys(ids);
            let tag_reads = self.fetch_tags_and_manifests(Vec::new(), to_get).await;
            debug_assert!(tag_reads.is_empty());
        }
        self.progress.finish(Phase::Manifests);
    }
}

/// Printable form of link content: valid UTF-8 as is (control characters escaped), anything
/// else as hex; long content cut at 120 characters.
fn escape(bytes: &[u8]) -> String {
    let s = match std::str::from_utf8(bytes) {
        Ok(s) => s.escape_debug().to_string(),
        Err(_) => format!(
            "0x{}",
            crate::digest::encode_hex(&bytes[..bytes.len().min(60)])
        ),
    };
    if bytes.is_empty() {
        return "<empty>".to_string();
    }
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

/// Parse Go's `time.RFC3339` output: `2006-01-02T15:04:05[.fff]Z` or with a `±hh:mm` offset.
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    if s.ends_with('Z') || s.ends_with('z') {
        return humantime::parse_rfc3339_weak(&s[..s.len() - 1]).ok();
    }
    let (base, sign, off) = match s.len().checked_sub(6).map(|i| s.split_at(i)) {
        Some((base, off)) if off.starts_with('+') || off.starts_with('-') => {
            (base, &off[..1], &off[1..])
        }
        _ => return None,
    };
    let (h, m) = off.split_once(':')?;
    let offset = Duration::from_secs(h.parse::<u64>().ok()? * 3600 + m.parse::<u64>().ok()? * 60);
    let local = humantime::parse_rfc3339_weak(base).ok()?;
    if sign == "+" {
        local.checked_sub(offset)
    } else {
        local.checked_add(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_offsets() {
        let z = parse_rfc3339("2024-01-02T15:04:05Z").unwrap();
        assert_eq!(parse_rfc3339("2024-01-02T16:04:05+01:00"), Some(z));
        assert_eq!(parse_rfc3339("2024-01-02T14:04:05-01:00"), Some(z));
        assert!(parse_rfc3339("yesterday").is_none());
        assert!(parse_rfc3339("").is_none());
    }

    #[test]
    fn escape_is_printable() {
        assert_eq!(escape(b""), "<empty>");
        assert_eq!(escape(b"sha256:ab\n"), "sha256:ab\\n");
        assert_eq!(escape(&[0xff, 0x00]), "0xff00");
    }
}
