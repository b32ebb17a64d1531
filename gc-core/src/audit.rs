//! The audit run: list the storage, read what must be read, then analyse.
//!
//! This is the only module of gc-core that does I/O, and it does only what SPEC §2 allows: one
//! listing of `docker/registry/v2/`, one GET per tag `current/link`, one GET per distinct
//! manifest digest (a manifest linked into several repositories is read once), one GET per
//! upload `startedat`, and a GET of a link only when its listed size says it cannot hold the
//! digest in its path (or when link verification is asked for). Reads run concurrently up to
//! [`AuditOptions::concurrency`]. The listing starts the reads it already knows are needed
//! (tag `current/link`s, the manifests revision links name, keeping half the concurrency for
//! its own pages) so that its round trips overlap them; see [`crate::reads`].
//!
//! Every failed listing or read is recorded as a `read-error` finding and makes the audit
//! incomplete; the run goes on so that the other findings still appear, but an incomplete
//! report withholds every file that absence of data could make wrong (orphaned, missing,
//! dangling, broken, repos, gc-unsafe). gc-core never prints: progress goes through
//! [`Progress`].

use crate::analysis::{analyse, mark_all, AnalysisOptions, GlobalMarks};
use crate::digest::Digest;
use crate::gc::{self, Driver, GcModel};
use crate::graph::{DigestId, Graph, Interner, ManifestNode, ManifestState, TagTarget};
use crate::layout::{Key, LayoutError, ROOT};
use crate::manifest::Manifest;
use crate::reads::{Done, Got, ReadPipeline};
use crate::report::{Finding, FindingKind, ReclaimableBy, Report, Totals};
use crate::storage::{ObjectMeta, RequestCounts, Storage, StorageError};
use futures::future::{self, Either};
use futures::stream::StreamExt;
use std::collections::HashSet;
use std::pin::pin;
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

/// What a key listed but absent when read is called in findings and errors.
const LISTED_BUT_GONE: &str = "listed but gone when read";

/// Link files and upload start times hold a few dozen bytes; one over this is not read.
const SMALL_FILE_LIMIT: u64 = 4096;

/// A read of the main pipeline, small while it waits (see [`crate::reads`]).
enum Wanted {
    /// A tag's `current/link`.
    TagCurrent(Box<TagName>),
    /// A manifest's blob data.
    Manifest(DigestId),
}

/// A tag of a repository.
struct TagName {
    repo: String,
    tag: String,
}

impl Wanted {
    /// The key to read and its byte limit.
    fn locate(&self, digests: &Interner, manifest_limit: u64) -> (String, u64) {
        match self {
            Wanted::TagCurrent(t) => {
                let key = Key::TagCurrent {
                    repo: t.repo.clone(),
                    tag: t.tag.clone(),
                };
                (key.to_path(), SMALL_FILE_LIMIT)
            }
            Wanted::Manifest(id) => {
                let key = Key::BlobData {
                    digest: digests.digest(*id).clone(),
                };
                (key.to_path(), manifest_limit)
            }
        }
    }
}

struct Run<'a> {
    storage: &'a dyn Storage,
    opts: &'a AuditOptions,
    progress: &'a dyn Progress,
    graph: Graph,
    findings: Vec<Finding>,
    errors: Vec<String>,
    /// Tag and manifest reads, from the listing on.
    reads: ReadPipeline<'a, Wanted>,
    /// Manifests queued or read, so that each is read once.
    manifests_requested: HashSet<DigestId>,
    /// Revisions listed before their blob: read once the blob's size is listed.
    awaiting_blob: HashSet<DigestId>,
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
        reads: ReadPipeline::new(storage),
        manifests_requested: HashSet::new(),
        awaiting_blob: HashSet::new(),
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
        let kind = match err {
            StorageError::NotAFile { .. } => FindingKind::SpecialFile,
            StorageError::SymlinkOutsideRoot { .. } => FindingKind::SymlinkOutsideRoot,
            StorageError::SymlinkLoop { .. } => FindingKind::SymlinkLoop,
            StorageError::DanglingSymlink { .. } => FindingKind::DanglingSymlink,
            _ => FindingKind::ReadError,
        };
        self.findings.push(Finding {
            repository: None,
            key: err.key().to_string(),
            kind,
            detail: err.to_string(),
        });
        self.errors.push(msg);
    }

    /// A listed key that was gone when read: the storage changed under the audit, which
    /// makes it incomplete.
    fn listed_but_gone(&mut self, key: &str) {
        self.errors.push(format!(
            "{key}: {LISTED_BUT_GONE} (the storage changed during the audit)"
        ));
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

    /// List everything, starting the tag and manifest reads the listing names as it goes;
    /// returns the link keys that must be read to be checked.
    async fn list(&mut self) -> Vec<Key> {
        enum Event {
            Listed(Option<Result<ObjectMeta, StorageError>>),
            Read(Option<Done<Wanted>>),
        }
        self.progress.start(Phase::Listing, None);
        let mut suspicious = Vec::new();
        let storage = self.storage;
        let mut listing = storage.list(ROOT);
        // Half the requests stay free for the listing's own pages.
        let early = (self.opts.concurrency / 2).max(1);
        loop {
            let event = if self.reads.is_empty() {
                Event::Listed(listing.next().await)
            } else {
                // The listing first when both are ready: it is what feeds everything else.
                let (digests, limit) = (&self.graph.digests, self.opts.manifest_size_limit);
                let read = self.reads.next(early, move |w| w.locate(digests, limit));
                match future::select(listing.next(), pin!(read)).await {
                    Either::Left((item, _)) => Event::Listed(item),
                    Either::Right((read, _)) => Event::Read(read),
                }
            };
            match event {
                Event::Listed(None) => break,
                Event::Listed(Some(item)) => {
                    self.progress.advance(1);
                    self.take_listed(item, &mut suspicious);
                }
                Event::Read(Some(read)) => self.take_read(read),
                Event::Read(None) => {}
            }
        }
        drop(listing);
        self.progress.finish(Phase::Listing);
        suspicious
    }

    /// Record one listed key (or listing error); queue the reads it makes necessary.
    fn take_listed(&mut self, item: Result<ObjectMeta, StorageError>, suspicious: &mut Vec<Key>) {
        let meta = match item {
            Err(err) => return self.read_error(&err),
            Ok(meta) => meta,
        };
        self.graph.keys_listed += 1;
        if meta.key.ends_with('/') {
            self.graph.add_empty_directory(&meta.key);
            return;
        }
        let key = match Key::parse(&meta.key) {
            Err(err) => {
                if meta.key.starts_with(crate::layout::BLOBS) && meta.key.ends_with("/data") {
                    self.graph.bad_blob_paths.push(meta.key.clone());
                }
                return self.layout_finding(&meta.key, err);
            }
            Ok(key) => key,
        };
        let size_ok = self.graph.add_key(&key, meta.size, meta.last_modified);
        match &key {
            Key::TagCurrent { repo, tag } => {
                self.reads.push(Wanted::TagCurrent(Box::new(TagName {
                    repo: repo.clone(),
                    tag: tag.clone(),
                })));
            }
            Key::RevisionLink { digest, .. } => {
                if let Some(id) = self.graph.digests.get(digest) {
                    self.want_listed_manifest(id);
                }
            }
            Key::BlobData { digest } if !self.awaiting_blob.is_empty() => {
                if let Some(id) = self.graph.digests.get(digest) {
                    if self.awaiting_blob.remove(&id) {
                        self.want_listed_manifest(id);
                    }
                }
            }
            _ => {}
        }
        let is_link = matches!(
            key,
            Key::LayerLink { .. } | Key::RevisionLink { .. } | Key::TagIndexEntry { .. }
        );
        if is_link && (!size_ok || self.opts.verify_links) {
            suspicious.push(key);
        }
    }

    /// Queue the read of manifest `id`, named by a revision link, once its blob is listed
    /// (its size decides whether it is read at all, see [`Run::queue_manifest`]).
    fn want_listed_manifest(&mut self, id: DigestId) {
        if self.manifests_requested.contains(&id) {
            return;
        }
        if self.graph.blobs.contains_key(&id) {
            self.queue_manifest(id);
        } else {
            self.awaiting_blob.insert(id);
        }
    }

    /// Record one finished read of the main pipeline.
    fn take_read(&mut self, (wanted, key, got): Done<Wanted>) {
        match wanted {
            Wanted::TagCurrent(t) => self.take_tag(*t, key, got),
            Wanted::Manifest(id) => self.take_manifest(id, key, got),
        }
    }

    /// Run the main pipeline to its end, `--concurrency` reads at a time.
    async fn run_reads(&mut self) {
        let limit = self.opts.manifest_size_limit;
        loop {
            let digests = &self.graph.digests;
            let read = self
                .reads
                .next(self.opts.concurrency, |w| w.locate(digests, limit));
            let Some(read) = read.await else { break };
            self.progress.advance(1);
            self.take_read(read);
        }
    }

    /// Small reads of `keys`, concurrently; results (by index into `keys`) in completion
    /// order.
    async fn read_small(&self, keys: Vec<String>, limit: u64) -> Vec<Done<usize>> {
        let mut reads = ReadPipeline::new(self.storage);
        for i in 0..keys.len() {
            reads.push(i);
        }
        let locate = |i: &usize| (keys[*i].clone(), limit);
        let mut done = Vec::with_capacity(reads.len());
        while let Some(read) = reads.next(self.opts.concurrency, locate).await {
            self.progress.advance(1);
            done.push(read);
        }
        done
    }

    /// Finish the reads the listing started (every tag's `current/link`, the manifests
    /// revision links name), with the manifests whose blob the listing named only later.
    async fn read_tags(&mut self) {
        let known: Vec<DigestId> = self
            .graph
            .manifests_to_read()
            .into_iter()
            .filter(|id| !self.manifests_requested.contains(id))
            .collect();
        for id in known {
            self.queue_manifest(id);
        }
        self.progress
            .start(Phase::TagLinks, Some(self.reads.len() as u64));
        self.run_reads().await;
        self.manifests_requested = HashSet::new();
        self.awaiting_blob = HashSet::new();
        self.progress.finish(Phase::TagLinks);
    }

    /// Record the read of tag `tag`'s `current/link`.
    fn take_tag(&mut self, TagName { repo, tag }: TagName, key: String, got: Got) {
        let target = match got {
            Ok(Some(bytes)) => match std::str::from_utf8(&bytes).ok().map(Digest::parse) {
                Some(Ok(d)) => TagTarget::Digest(self.graph.digests.intern(&d)),
                _ => TagTarget::BadLink(escape(&bytes)),
            },
            Ok(None) => {
                self.listed_but_gone(&key);
                self.findings.push(Finding {
                    repository: Some(repo),
                    key,
                    kind: FindingKind::ReadError,
                    detail: LISTED_BUT_GONE.to_string(),
                });
                return;
            }
            Err(StorageError::TooLarge { size, .. }) => {
                TagTarget::BadLink(format!("<{size} bytes>"))
            }
            Err(err) => return self.read_error(&err),
        };
        if let Some(t) = self
            .graph
            .repos
            .get_mut(&repo)
            .and_then(|r| r.tags.get_mut(&tag))
        {
            t.target = target;
        }
    }

    async fn check_links(&mut self, suspicious: Vec<Key>) {
        self.progress
            .start(Phase::LinkChecks, Some(suspicious.len() as u64));
        let keys = suspicious.iter().map(Key::to_path).collect();
        for (i, key, got) in self.read_small(keys, SMALL_FILE_LIMIT).await {
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
                    self.listed_but_gone(&key);
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
            .map(|(repo, id)| {
                Key::UploadStartedAt {
                    repo: repo.clone(),
                    id: id.clone(),
                }
                .to_path()
            })
            .collect();
        for (i, _key, got) in self.read_small(keys, SMALL_FILE_LIMIT).await {
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

    /// Queue the read of manifest `id`, or, when its blob is over the size limit, record it
    /// as too large instead of reading it.
    fn queue_manifest(&mut self, id: DigestId) {
        let size = self.graph.blobs.get(&id).map(|b| b.size).unwrap_or(0);
        if size > self.opts.manifest_size_limit {
            self.graph
                .manifests
                .insert(id, ManifestState::TooLarge(size));
        } else {
            self.manifests_requested.insert(id);
            self.reads.push(Wanted::Manifest(id));
        }
    }

    /// Record a manifest read: parsed (or unparseable) at once, so that at most
    /// `concurrency` manifest bodies are in memory; or why it brought no content.
    fn take_manifest(&mut self, id: DigestId, key: String, got: Got) {
        let state = match got {
            Ok(Some(bytes)) => {
                let digest = self.graph.digests.digest(id).clone();
                if digest.verify(&bytes) == Some(false) {
                    let actual = Digest::sha256_of(&bytes).to_string();
                    self.graph.content_mismatch.insert(id, actual);
                }
                match Manifest::parse(&bytes) {
                    Ok(m) => ManifestState::Parsed(ManifestNode::from_manifest(
                        m,
                        &mut self.graph.digests,
                    )),
                    Err(e) => ManifestState::Unparseable(e.to_string()),
                }
            }
            Err(StorageError::TooLarge { size, .. }) => ManifestState::TooLarge(size),
            Err(err) => {
                self.read_error(&err);
                // Not asked for again in the next round.
                ManifestState::Unparseable(format!("read failed: {err}"))
            }
            Ok(None) => {
                self.listed_but_gone(&key);
                ManifestState::Unparseable(LISTED_BUT_GONE.to_string())
            }
        };
        self.graph.manifests.insert(id, state);
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
            for id in ids {
                self.queue_manifest(id);
            }
            self.run_reads().await;
        }
        // Their queues grew to one entry per manifest; the analysis needs the memory.
        self.reads = ReadPipeline::new(self.storage);
        self.manifests_requested = HashSet::new();
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
