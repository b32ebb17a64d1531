//! The audit run: list the storage, read what must be read, then analyse.
//!
//! This is the only module of gc-core that does I/O, and it does only what SPEC §2 allows: one
//! listing of `docker/registry/v2/`, one GET per tag `current/link` whose listed ETag cannot
//! tell its target (`Run::resolve_pending_tags`), one GET per distinct manifest digest
//! that the manifest cache does not hold (a manifest linked into several repositories is read
//! once; see [`crate::cache`]), one GET per upload `startedat`, and a GET of a link only when
//! its listed size or ETag says it may not hold the digest in its path (or when link
//! verification is asked for). Reads run concurrently up to
//! [`AuditOptions::concurrency`]. The listing starts the reads it already knows are needed
//! (tag `current/link`s, the manifests revision links name, keeping half the concurrency for
//! its own pages) so that its round trips overlap them; see [`crate::reads`].
//!
//! # A live registry
//!
//! A listing is not a snapshot: pushes land while it runs (SPEC §3). So nothing absent is
//! reported before it is confirmed absent after the listing. Once the reads are done, a last
//! look lists `repositories/` again (its pages only; blobs are not listed again) and takes
//! into the graph every link and tag created meanwhile (a key last modified well before the run
//! began, [`LAST_LOOK_CLOCK_SKEW`], was in the whole listing and is passed over), reading the
//! manifests and tags they name; its start is the report's `as_of`. Then every blob that a
//! revision, a tag or a manifest references but the listing lacked is asked for with a HEAD (it may
//! have been written after the listing passed its place), and every tag whose target still looks
//! absent is read again, in rounds until nothing new turns up; a link or tag whose read found it
//! empty or cut short, or a manifest whose bytes miss its digest and its listed size (the
//! filesystem driver writes both in place), is read again, spaced out, until a read finds it whole
//! (see [`in_flux`]). Links of the last look were created before it began, and a push writes a
//! manifest's layer links and blobs before its revision link and its tag, so what is still absent
//! then was absent as of `as_of`. Keys written after the run started are counted
//! (`writes_during_scan`); a blob that a young link points at is young (a push may be adopting it),
//! and a tag that moved during the run keeps its earlier targets out of the reclaimable list.
//!
//! Every link file is checked (SPEC §2): by its listed ETag where that is the MD5 of the digest
//! in its path, else by reading it (a backend without ETags, a wrong size, an ETag that
//! contradicts the path). When most MD5-shaped ETags contradict their links, a sample is read
//! first: if every sampled link is right, the ETags are not MD5s (SSE-KMS) and the rest are
//! checked by size only and counted as unverified.
//!
//! Every failed listing or read is recorded as a `read-error` finding and makes the audit
//! incomplete; the run goes on so that the other findings still appear, but an incomplete
//! report withholds every file that absence of data could make wrong (orphaned, missing,
//! dangling, broken, repos, gc-unsafe). gc-core never prints: progress goes through
//! [`Progress`].

mod assemble;
mod cache_lookups;
mod in_flux;
mod manifest_cache;

use crate::cache::{CachedParse, ManifestStore};
use crate::digest::Digest;
use crate::etag::{self, EtagEvidence};
use crate::gc::Driver;
use crate::graph::{BlobInfo, DigestId, Graph, Interner, ManifestState, Repo, TagTarget};
use crate::layout::{Key, LayoutError, REPOSITORIES, ROOT};
use crate::manifest::{EdgeKind, Manifest};
use crate::mark::{close_over, tag_targets, DigestSet, Follow, GlobalMarks};
use crate::reads::{Done, Got, ReadPipeline};
use crate::report::{Finding, FindingKind, LinkChecks, Report};
use crate::storage::{KeySpread, ObjectMeta, Storage, StorageError};
use cache_lookups::{Answer, CacheLookups};
use futures::future::{self, Either};
use futures::stream::StreamExt;
use in_flux::{looks_cut_short, CutShort};
use std::collections::{HashMap, HashSet};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// Give freed heap memory back to the operating system between phases (glibc's
    /// `malloc_trim`), so that the peak resident size of a large audit is that of its largest
    /// phase, not the sum of their leftovers. Off by default: it costs a few milliseconds per
    /// call and touches the whole process's allocator, which an embedding program may not
    /// want. The CLI turns it on.
    pub release_memory: bool,
    /// Resolve each tag's `current/link` from its listed ETag where that is the MD5 of one of
    /// the tag's history digests or of one of the repository's revisions, instead of reading it
    /// (SPEC §2). On by default; off (or with [`AuditOptions::verify_links`]), every
    /// `current/link` is read.
    pub resolve_tags_by_etag: bool,
    /// Where parsed manifests are remembered between runs (see [`crate::cache`]): a manifest
    /// whose blob is listed with the size of its entry is not read. None by default.
    pub manifest_cache: Option<Arc<dyn ManifestStore>>,
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
            release_memory: false,
            resolve_tags_by_etag: true,
            manifest_cache: None,
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
    /// Listing `repositories/` once more for what was pushed during the run.
    LastLook,
    /// Asking again for content the listing lacked.
    Confirming,
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
            Phase::LastLook => "last look",
            Phase::Confirming => "confirming absences",
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

/// A read or a cache lookup that finished.
enum Finished {
    Read(Done<Wanted>),
    Cached(Answer),
}

/// A read of the main pipeline, small while it waits (see [`crate::reads`]).
enum Wanted {
    /// A tag's `current/link`, not read before.
    TagCurrent(Box<TagName>),
    /// A tag's `current/link` read again: it was rewritten during the run, or its target
    /// looks absent.
    TagReread(Box<TagName>),
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
            Wanted::TagCurrent(t) | Wanted::TagReread(t) => {
                let key = Key::TagCurrent {
                    repo: t.repo.clone(),
                    tag: t.tag.clone(),
                };
                (key.to_path(), SMALL_FILE_LIMIT)
            }
            Wanted::Manifest(id) => {
                let key = Key::BlobData {
                    digest: digests.digest(*id),
                };
                (key.to_path(), manifest_limit)
            }
        }
    }
}

/// Which listing a key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// The listing of the whole tree.
    Whole,
    /// The last look at `repositories/`: only links and tags new to the graph are taken.
    LastLook,
}

/// When at least this many links have an MD5-shaped ETag that contradicts their path, and
/// they are most of the links with such ETags, this many of them are read first to tell
/// whether the ETags are MD5s at all.
const ETAG_SAMPLE: usize = 8;

/// How far the storage's clock may lag the auditor's. The last look passes over a key last
/// modified more than this before the run began without parsing it: that key existed when the
/// whole listing ran, so the whole listing returned it. S3 (and MinIO) refuse a signed request
/// from a clock more than 15 minutes off, and a link is written in one small PUT.
const LAST_LOOK_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// Listed keys told to the progress bar at once.
const PROGRESS_STEP: u64 = 256;

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
    /// The time young is measured from (the run's start unless the options say otherwise).
    now: SystemTime,
    /// The run's start.
    started: SystemTime,
    /// The run's start in whole seconds: object stores give modification times in seconds,
    /// so a tag link modified at or after it may have been rewritten during the run.
    started_second: SystemTime,
    /// Keys last modified before this are passed over by the last look (see
    /// [`LAST_LOOK_CLOCK_SKEW`]).
    last_look_cutoff: SystemTime,
    /// Keys whose modification time is not before `started` (a key written during the run's
    /// first second on a store that keeps whole seconds is not counted).
    writes: HashSet<String>,
    /// Keys the whole listing returned.
    keys_listed: u64,
    /// Keys the last look listed.
    last_look_keys: u64,
    /// Manifests whose bytes do not hash to their digest, with the digest they do hash to.
    /// Their state is still what the bytes parse to: the registry reads them as they are.
    content_mismatch: HashMap<DigestId, String>,
    /// How the links were checked.
    links: LinkChecks,
    /// Links whose MD5-shaped ETag contradicts their path.
    etag_contradicted: Vec<Key>,
    /// Blobs the listing lacked and that were asked for again (each once).
    confirmed: HashSet<DigestId>,
    /// Of those, the ones that exist after all.
    appeared: u64,
    /// Tags read again (each once).
    reread: HashSet<(String, String)>,
    /// Bad links read again (each once), by key.
    reread_links: HashSet<String>,
    /// Links, tags and manifests whose reads found them cut short (being written), read again
    /// more.
    cut_short: CutShort,
    /// Links no listing showed that were asked for (each once), by key.
    confirmed_links: HashSet<String>,
    /// Tags whose `current/link` has an MD5 ETag, resolved once their listing is done.
    pending_tags: Vec<(Box<TagName>, [u8; 16])>,
    /// Tags resolved from their ETag, unread.
    tags_resolved_by_etag: u64,
    /// The manifest cache, while it works (a failing store is dropped with a warning).
    cache: Option<Arc<dyn ManifestStore>>,
    /// Its lookups, answered by a thread of their own.
    lookups: Option<CacheLookups>,
    /// Manifests taken from the cache, and looked up there in vain.
    cache_hits: u64,
    cache_misses: u64,
    /// What went wrong with the cache (never a reason to report anything else).
    cache_warnings: Vec<String>,
}

/// Audit `storage`.
pub async fn audit(
    storage: &dyn Storage,
    opts: &AuditOptions,
    progress: &dyn Progress,
) -> AuditOutcome {
    let called = SystemTime::now();
    // A read the storage already holds for the listing (its access check's page) was sent
    // before this call: the run began then, or keys written in between would pass as older
    // than the run while the listing shows them as they were before.
    let started = storage
        .earliest_held_read()
        .map_or(called, |held| held.min(called));
    let clock = Instant::now();
    let started_second = UNIX_EPOCH
        + Duration::from_secs(
            started
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
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
        now: opts.now.unwrap_or(called),
        started,
        started_second,
        last_look_cutoff: started
            .checked_sub(LAST_LOOK_CLOCK_SKEW)
            .unwrap_or(UNIX_EPOCH),
        writes: HashSet::new(),
        keys_listed: 0,
        last_look_keys: 0,
        content_mismatch: HashMap::new(),
        links: LinkChecks::default(),
        etag_contradicted: Vec::new(),
        confirmed: HashSet::new(),
        appeared: 0,
        reread: HashSet::new(),
        reread_links: HashSet::new(),
        cut_short: CutShort::default(),
        confirmed_links: HashSet::new(),
        pending_tags: Vec::new(),
        tags_resolved_by_etag: 0,
        cache: opts.manifest_cache.clone(),
        lookups: None,
        cache_hits: 0,
        cache_misses: 0,
        cache_warnings: Vec::new(),
    };
    run.start_cache_lookups();
    let spread = run.cached_spread();
    let suspicious = run.list(ROOT, Pass::Whole, spread.as_ref()).await;
    // How the keys lay: the last look lists `repositories/` from it, and so will the next run.
    let whole_spread = storage.key_spread(ROOT);
    if let Some(spread) = &whole_spread {
        run.remember_spread(spread);
    }
    if opts.release_memory {
        crate::heap::release_free_memory();
    }
    let mut as_of = started;
    if run.holds_no_registry() {
        run.no_registry().await;
    } else {
        run.read_tags().await;
        run.check_links(suspicious).await;
        run.read_upload_times().await;
        run.read_manifests().await;
        as_of = SystemTime::now();
        let within = whole_spread.map(|s| s.within(REPOSITORIES));
        let suspicious = run
            .list(REPOSITORIES, Pass::LastLook, within.as_ref())
            .await;
        run.read_tags().await;
        run.check_links(suspicious).await;
        run.settle().await;
    }
    // Every read and cache answer is in (the phases above drain them); none is left behind.
    run.run_reads().await;
    run.flush_cache();
    run.assemble(as_of, called, clock)
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

    /// List `prefix`, starting the tag and manifest reads the listing names as it goes;
    /// returns the link keys that must be read to be checked.
    async fn list(&mut self, prefix: &str, pass: Pass, spread: Option<&KeySpread>) -> Vec<Key> {
        enum Event {
            Listed(Option<Result<ObjectMeta, StorageError>>),
            Finished(Option<Finished>),
        }
        let phase = match pass {
            Pass::Whole => Phase::Listing,
            Pass::LastLook => Phase::LastLook,
        };
        self.progress.start(phase, None);
        let mut suspicious = Vec::new();
        let storage = self.storage;
        let mut listing = storage.list_spread(prefix, spread);
        // Half the requests stay free for the listing's own pages.
        let early = (self.opts.concurrency / 2).max(1);
        // Keys listed and not yet told to the progress bar, told [`PROGRESS_STEP`] at a time
        // (each `advance` of the CLI's bars takes a lock and reads the clock).
        let mut untold = 0u64;
        loop {
            let event = if self.nothing_pending() {
                Event::Listed(listing.next().await)
            } else {
                // The listing first when both are ready: it is what feeds everything else.
                let finished = self.next_finished(early);
                match future::select(listing.next(), pin!(finished)).await {
                    Either::Left((item, _)) => Event::Listed(item),
                    Either::Right((finished, _)) => Event::Finished(finished),
                }
            };
            match event {
                Event::Listed(None) => break,
                Event::Listed(Some(item)) => {
                    untold += 1;
                    if untold == PROGRESS_STEP {
                        self.progress.advance(std::mem::take(&mut untold));
                    }
                    self.take_listed(item, pass, &mut suspicious);
                    self.take_ready_lookups();
                }
                Event::Finished(Some(Finished::Read(read))) => self.take_read(read),
                Event::Finished(Some(Finished::Cached(answer))) => self.take_lookup(answer),
                Event::Finished(None) => {}
            }
        }
        drop(listing);
        self.progress.advance(untold);
        self.progress.finish(phase);
        suspicious
    }

    /// Whether `t` is younger than the grace (a time after now counts as now).
    fn is_young(&self, t: SystemTime) -> bool {
        self.now.duration_since(t).unwrap_or_default() < self.opts.grace
    }

    /// A link younger than the grace makes its digest young (a push may be adopting it).
    fn note_young_link(&mut self, key: &Key, meta: &ObjectMeta) {
        if self.is_young(meta.last_modified) {
            if let Some(id) = key.path_digest().and_then(|d| self.graph.digests().get(d)) {
                self.graph.note_young_link(id);
            }
        }
    }

    /// Count `meta` as a write during the run if it is one.
    fn note_write(&mut self, meta: &ObjectMeta) {
        if meta.last_modified >= self.started && !self.writes.contains(&meta.key) {
            self.writes.insert(meta.key.clone());
        }
    }

    /// Record one listed key (or listing error); queue the reads it makes necessary.
    fn take_listed(
        &mut self,
        item: Result<ObjectMeta, StorageError>,
        pass: Pass,
        suspicious: &mut Vec<Key>,
    ) {
        let meta = match item {
            Err(err) => return self.read_error(&err),
            Ok(meta) => meta,
        };
        match pass {
            Pass::Whole => self.keys_listed += 1,
            Pass::LastLook => self.last_look_keys += 1,
        }
        if pass == Pass::LastLook && meta.last_modified < self.last_look_cutoff {
            // It existed before the run began: the whole listing took it.
            return;
        }
        self.note_write(&meta);
        if crate::layout::is_directory(&meta.key) {
            self.graph.add_empty_directory(&meta.key);
            return;
        }
        let key = match Key::parse(&meta.key) {
            // The whole listing reported it (or it is new and odd: the next audit reports it).
            Err(_) if pass == Pass::LastLook => return,
            Err(err) => {
                if crate::layout::looks_like_blob_data(&meta.key) {
                    self.graph.add_bad_blob_path(meta.key.clone());
                }
                return self.layout_finding(&meta.key, err);
            }
            Ok(key) => key,
        };
        if pass == Pass::LastLook && !self.new_in_last_look(&key, &meta) {
            return;
        }
        let size_ok = self.graph.add_key(&key, meta.size, meta.last_modified);
        self.note_tagged_during_run(&key, &meta);
        match &key {
            Key::TagCurrent { repo, tag } => {
                let name = Box::new(TagName {
                    repo: repo.clone(),
                    tag: tag.clone(),
                });
                match etag::md5_of(meta.e_tag.as_deref()) {
                    // `--verify-links` reads every link, tags included.
                    Some(md5) if self.opts.resolve_tags_by_etag && !self.opts.verify_links => {
                        self.pending_tags.push((name, md5));
                    }
                    _ => self.reads.push(Wanted::TagCurrent(name)),
                }
            }
            Key::RevisionLink { digest, .. } => {
                if let Some(id) = self.graph.digests().get(digest) {
                    self.want_listed_manifest(id);
                }
            }
            Key::BlobData { digest } if !self.awaiting_blob.is_empty() => {
                if let Some(id) = self.graph.digests().get(digest) {
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
        if is_link {
            self.note_young_link(&key, &meta);
            self.classify_link(key, &meta, size_ok, suspicious);
        }
    }

    /// A tag history entry written during the run: the tag named that manifest at some
    /// moment of the run, so its image counts as tagged for the reclaimable list whatever the
    /// tag names when it is read (a tag moved just after `as_of` is read after it moved).
    fn note_tagged_during_run(&mut self, key: &Key, meta: &ObjectMeta) {
        let Key::TagIndexEntry { repo, tag, digest } = key else {
            return;
        };
        if meta.last_modified < self.started_second {
            return;
        }
        let id = self.graph.intern(digest);
        self.graph.note_earlier_target(repo, tag, id);
    }

    /// In the last look: whether `key` is a link or tag the graph does not hold yet (taken),
    /// or a tag rewritten during the run (read again; the rest of its record stands).
    fn new_in_last_look(&mut self, key: &Key, meta: &ObjectMeta) -> bool {
        if matches!(key, Key::TagIndexEntry { .. }) && self.graph.records(key) {
            self.note_tagged_during_run(key, meta);
            return false;
        }
        match key {
            Key::TagCurrent { repo, tag } if self.graph.records(key) => {
                if meta.last_modified >= self.started_second {
                    self.queue_reread(repo, tag);
                }
                false
            }
            Key::TagCurrent { .. }
            | Key::LayerLink { .. }
            | Key::RevisionLink { .. }
            | Key::TagIndexEntry { .. } => !self.graph.records(key),
            // Uploads, legacy signatures: the whole listing's view stands.
            _ => false,
        }
    }

    /// Queue a second read of a tag's `current/link`, once per tag.
    fn queue_reread(&mut self, repo: &str, tag: &str) {
        if self.reread.insert((repo.to_string(), tag.to_string())) {
            self.push_tag_reread(repo.to_string(), tag.to_string());
        }
    }

    /// Queue a read of a tag's `current/link` (counted in `reread` by the caller).
    fn push_tag_reread(&mut self, repo: String, tag: String) {
        self.reads
            .push(Wanted::TagReread(Box::new(TagName { repo, tag })));
    }

    /// Decide how the listed link `key` is checked: by its ETag, by reading it, or (when its
    /// ETag tells nothing) by its size alone.
    fn classify_link(&mut self, key: Key, meta: &ObjectMeta, size_ok: bool, read: &mut Vec<Key>) {
        let Some(expected) = key.path_digest().map(ToString::to_string) else {
            return;
        };
        if !size_ok || self.opts.verify_links {
            return read.push(key);
        }
        match etag::evidence(meta.e_tag.as_deref(), expected.as_bytes()) {
            EtagEvidence::Matches => self.links.verified_by_etag += 1,
            EtagEvidence::Differs => self.etag_contradicted.push(key),
            EtagEvidence::Absent => read.push(key),
            EtagEvidence::NotMd5 => self.unverified(
                1,
                "their ETags are not MD5s (multipart uploads or another server's scheme)",
            ),
        }
    }

    /// Count `n` links checked by size only, and why.
    fn unverified(&mut self, n: u64, why: &str) {
        self.links.unverified += n;
        if self.links.unverified_why.is_none() {
            self.links.unverified_why = Some(why.to_string());
        }
    }

    /// Whether the listing found no registry: no blob and no repository, and nothing failed
    /// (a failure already makes the audit incomplete).
    fn holds_no_registry(&self) -> bool {
        self.errors.is_empty() && self.graph.blobs().is_empty() && self.graph.repos().is_empty()
    }

    /// Record that the location holds no registry, naming what lies at and beside it.
    async fn no_registry(&mut self) {
        let location = self.storage.location();
        let location = location.trim_end_matches('/');
        let mut msg = format!("no registry under {location}: nothing under {location}/{ROOT}");
        match self.storage.survey_root().await {
            Ok(survey) => {
                let list = |names: &[String]| names.join(", ");
                if !survey.under_root.is_empty() {
                    msg.push_str(&format!("; found in it: {}", list(&survey.under_root)));
                }
                if !survey.beside_root.is_empty() {
                    msg.push_str(&format!("; found beside it: {}", list(&survey.beside_root)));
                }
                if survey.under_root.is_empty() && survey.beside_root.is_empty() {
                    msg.push_str("; nothing found around it either");
                }
            }
            Err(err) => msg.push_str(&format!("; listing around it failed too: {err}")),
        }
        self.findings.push(Finding {
            repository: None,
            key: ROOT.to_string(),
            kind: FindingKind::NoRegistry,
            detail: msg.clone(),
        });
        self.errors.push(msg);
    }

    /// Queue the read of manifest `id`, named by a revision link, once its blob is listed
    /// (its size decides whether it is read at all, see [`Run::queue_manifest`]).
    fn want_listed_manifest(&mut self, id: DigestId) {
        if self.manifests_requested.contains(&id) || self.graph.manifests().contains_key(&id) {
            return;
        }
        if self.graph.blobs().contains_key(&id) {
            self.queue_manifest(id);
        } else {
            self.awaiting_blob.insert(id);
        }
    }

    /// Record one finished read of the main pipeline.
    fn take_read(&mut self, (wanted, key, got): Done<Wanted>) {
        match wanted {
            Wanted::TagCurrent(t) => self.take_tag(*t, key, got, false),
            Wanted::TagReread(t) => self.take_tag(*t, key, got, true),
            Wanted::Manifest(id) => self.take_manifest(id, key, got),
        }
    }

    /// Run the main pipeline and the cache lookups to their end, `--concurrency` reads at a
    /// time.
    async fn run_reads(&mut self) {
        while let Some(finished) = self.next_finished(self.opts.concurrency).await {
            match finished {
                Finished::Read(read) => {
                    self.progress.advance(1);
                    self.take_read(read);
                }
                Finished::Cached(answer) => self.take_lookup(answer),
            }
        }
    }

    /// No read and no cache lookup is queued or under way.
    fn nothing_pending(&self) -> bool {
        self.reads.is_empty() && self.lookups.as_ref().is_none_or(CacheLookups::is_empty)
    }

    /// The next finished read of the main pipeline (at most `max_reads` in flight) or cache
    /// answer, whichever comes first; `None` when neither is pending. Dropping the future
    /// loses nothing.
    async fn next_finished(&mut self, max_reads: usize) -> Option<Finished> {
        let (digests, limit) = (self.graph.digests(), self.opts.manifest_size_limit);
        let lookups = self.lookups.as_mut().filter(|l| !l.is_empty());
        if self.reads.is_empty() {
            return lookups?.next(digests).await.map(Finished::Cached);
        }
        let read = self
            .reads
            .next(max_reads, move |w| w.locate(digests, limit));
        let Some(lookups) = lookups else {
            return read.await.map(Finished::Read);
        };
        match future::select(pin!(read), pin!(lookups.next(digests))).await {
            Either::Left((read, _)) => read.map(Finished::Read),
            Either::Right((answer, _)) => answer.map(Finished::Cached),
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
        self.resolve_pending_tags();
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

    /// What a tag's `current/link` says.
    fn tag_target(&mut self, bytes: &[u8]) -> TagTarget {
        match std::str::from_utf8(bytes).ok().map(Digest::parse) {
            Some(Ok(d)) => TagTarget::Digest(self.graph.intern(&d)),
            _ => TagTarget::BadLink(escape(bytes)),
        }
    }

    /// Record a read of tag `tag`'s `current/link`. Read `again` (it was rewritten during the
    /// run, or its target looked absent), what it says now replaces what it said, a target it
    /// no longer names is kept as an earlier one, and a link gone by now (the tag was deleted
    /// during the run) leaves the first read standing.
    fn take_tag(&mut self, TagName { repo, tag }: TagName, key: String, got: Got, again: bool) {
        let target = match got {
            Ok(Some(bytes)) => {
                let target = self.tag_target(&bytes);
                let cut = matches!(target, TagTarget::BadLink(_)) && looks_cut_short(&bytes, None);
                self.cut_short.record(&key, cut);
                target
            }
            Ok(None) if again => return,
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
        self.graph.set_tag_target(&repo, &tag, target);
    }

    /// Check the links that need more than their listing: those whose MD5-shaped ETag
    /// contradicts their path (after telling, on a sample, whether the ETags are MD5s at
    /// all), and `to_read`, read as they are.
    async fn check_links(&mut self, mut to_read: Vec<Key>) {
        let contradicted = std::mem::take(&mut self.etag_contradicted);
        let most = contradicted.len() as u64 > self.links.verified_by_etag;
        if contradicted.len() >= 2 * ETAG_SAMPLE && most {
            let mut rest = contradicted;
            let sample: Vec<Key> = rest.drain(..ETAG_SAMPLE).collect();
            let held_other = self.read_links(sample).await;
            if held_other == 0 {
                self.unverified(
                    rest.len() as u64,
                    "their ETags are not MD5s of their content (SSE-KMS?)",
                );
            } else {
                to_read.extend(rest);
            }
        } else {
            to_read.extend(contradicted);
        }
        self.read_links(to_read).await;
    }

    /// Read links and compare each with the digest in its path; returns how many held
    /// something else.
    async fn read_links(&mut self, links: Vec<Key>) -> u64 {
        if links.is_empty() {
            return 0;
        }
        self.progress
            .start(Phase::LinkChecks, Some(links.len() as u64));
        self.links.read += links.len() as u64;
        let mut held_other = 0;
        let keys = links.iter().map(Key::to_path).collect();
        for (i, key, got) in self.read_small(keys, SMALL_FILE_LIMIT).await {
            let link = &links[i];
            let expected = link
                .path_digest()
                .map(ToString::to_string)
                .unwrap_or_default();
            match got {
                Ok(Some(bytes)) if bytes == expected.as_bytes() => {
                    self.cut_short.record(&key, false);
                    self.graph.mark_good_link(link)
                }
                Ok(Some(bytes)) => {
                    let cut = looks_cut_short(&bytes, Some(expected.as_bytes()));
                    self.cut_short.record(&key, cut);
                    held_other += 1;
                    self.bad_link(link, key, escape(&bytes), &expected);
                }
                Ok(None) => {
                    self.listed_but_gone(&key);
                }
                Err(StorageError::TooLarge { size, .. }) => {
                    held_other += 1;
                    self.bad_link(link, key, format!("<{size} bytes>"), &expected);
                }
                Err(err) => self.read_error(&err),
            }
        }
        self.progress.finish(Phase::LinkChecks);
        held_other
    }

    /// Record that `link` (at `key`) holds `content` instead of `expected`: in the graph for
    /// the links a pull goes through, as a finding for tag history entries.
    fn bad_link(&mut self, link: &Key, key: String, content: String, expected: &str) {
        let Key::TagIndexEntry { repo, .. } = link else {
            return self.graph.mark_bad_link(link, content);
        };
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
    }

    async fn read_upload_times(&mut self) {
        let mut wanted: Vec<(String, String)> = Vec::new();
        for repo in self.graph.repos().values() {
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
            let (repo, id) = &wanted[i];
            let started = match got {
                Ok(Some(bytes)) => std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| parse_rfc3339(s.trim())),
                // Gone since the listing: the upload finished (or was cancelled) meanwhile.
                Ok(None) => {
                    self.graph.remove_upload(repo, id);
                    continue;
                }
                Err(StorageError::TooLarge { .. }) => None,
                Err(err) => {
                    self.read_error(&err);
                    continue;
                }
            };
            self.graph.set_upload_started(repo, id, started);
        }
    }

    /// Queue the read of manifest `id`, or, when its blob is over the size limit, record it
    /// as too large instead of reading it.
    fn queue_manifest(&mut self, id: DigestId) {
        let listed_size = self.graph.blobs().get(&id).map(|b| b.size);
        let size = listed_size.unwrap_or(0);
        if size > self.opts.manifest_size_limit {
            self.graph
                .record_manifest(id, ManifestState::TooLarge(size));
        } else {
            self.manifests_requested.insert(id);
            // The cache first (its answer reads the manifest if it must), else a read.
            if !listed_size.is_some_and(|size| self.look_up_cached(id, size)) {
                self.reads.push(Wanted::Manifest(id));
            }
        }
    }

    /// Record a manifest read: parsed (or unparseable) at once, so that at most
    /// `concurrency` manifest bodies are in memory; or why it brought no content.
    fn take_manifest(&mut self, id: DigestId, key: String, got: Got) {
        let state = match got {
            Ok(Some(bytes)) => {
                let digest = self.graph.digests().digest(id);
                let verified = digest.verify(&bytes);
                if verified == Some(false) {
                    let actual = Digest::sha256_of(&bytes).to_string();
                    self.content_mismatch.insert(id, actual);
                } else {
                    // Read again and whole after all (see `manifests_to_reread`).
                    self.content_mismatch.remove(&id);
                }
                // Bytes that do not hash to the digest and differ in size from the listing:
                // the data changed under the listing, maybe being written (two pushes of
                // one manifest both write it in place on a filesystem).
                let listed = self.graph.blobs().get(&id).map(|b| b.size);
                let changed = bytes.is_empty() || listed.is_some_and(|n| n != bytes.len() as u64);
                self.cut_short
                    .record(&key, verified == Some(false) && changed);
                let parse = match Manifest::parse(&bytes) {
                    Ok(m) => CachedParse::Parsed(Box::new(m)),
                    Err(e) => CachedParse::Unparseable(e.to_string()),
                };
                if verified == Some(true) {
                    self.remember(&digest, bytes.len() as u64, &parse);
                }
                return self.record_parse(id, parse);
            }
            Err(StorageError::TooLarge { size, .. }) => ManifestState::TooLarge(size),
            // Reported once, as the read error that makes the audit incomplete; not asked for
            // again in the next round.
            Err(err) => {
                self.read_error(&err);
                ManifestState::ReadFailed
            }
            Ok(None) => {
                self.listed_but_gone(&key);
                ManifestState::ReadFailed
            }
        };
        self.graph.record_manifest(id, state);
    }

    /// Record what a manifest parsed to (read now, or remembered by the cache).
    fn record_parse(&mut self, id: DigestId, parse: CachedParse) {
        match parse {
            CachedParse::Parsed(m) => self.graph.record_parsed(id, *m),
            CachedParse::Unparseable(why) => self
                .graph
                .record_manifest(id, ManifestState::Unparseable(why)),
        }
    }

    /// Resolve the tags whose `current/link` has an MD5 ETag: the digest among the tag's
    /// history, else among the repository's revisions, whose MD5 the ETag is, is what the link
    /// holds (the registry writes the link with one PutObject). A tag whose ETag matches
    /// nothing is read.
    fn resolve_pending_tags(&mut self) {
        let pending = std::mem::take(&mut self.pending_tags);
        let mut revisions = etag::RevisionMd5s::default();
        for (name, md5) in pending {
            let resolved = self.graph.repo(&name.repo).and_then(|repo| {
                let tag = repo.tags.get(&name.tag)?;
                let digests = self.graph.digests();
                tag.history
                    .iter()
                    .copied()
                    .find(|id| etag::md5_of_link(&digests.digest(*id)) == md5)
                    .or_else(|| revisions.find(repo, digests, md5))
            });
            match resolved {
                Some(id) => {
                    self.tags_resolved_by_etag += 1;
                    self.graph
                        .set_tag_target(&name.repo, &name.tag, TagTarget::Digest(id));
                }
                None => self.reads.push(Wanted::TagCurrent(name)),
            }
        }
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

    /// Confirm every absence before it can be reported: read what the graph now names, ask
    /// for the blobs it references that the listing lacked, read again the tags whose target
    /// still looks absent; in rounds until nothing new turns up (each blob and tag is asked
    /// for once, so the rounds end).
    async fn settle(&mut self) {
        loop {
            self.read_manifests().await;
            if !self.errors.is_empty() {
                // Incomplete already: the rows that confirmation protects are withheld.
                break;
            }
            let absent = self.unconfirmed_absent_blobs();
            let tags = self.tags_to_reread();
            let links = self.bad_links_to_reread();
            let manifests = self.manifests_to_reread();
            let unlinked = self.unconfirmed_absent_links();
            if absent.is_empty()
                && tags.is_empty()
                && links.is_empty()
                && manifests.is_empty()
                && unlinked.is_empty()
            {
                break;
            }
            self.confirm_blobs(absent).await;
            in_flux::pause(self.cut_short.take_round_pause()).await;
            for id in manifests {
                self.reads.push(Wanted::Manifest(id));
            }
            self.read_links(links).await;
            self.confirm_links(unlinked).await;
            for (repo, tag) in tags {
                self.push_tag_reread(repo, tag);
            }
            self.run_reads().await;
        }
    }

    /// Blobs referenced but not listed, and not asked for yet: the targets of revisions,
    /// tags, manifest edges (foreign layers need not exist) and young links. Sorted.
    fn unconfirmed_absent_blobs(&mut self) -> Vec<DigestId> {
        let graph = &self.graph;
        let confirmed = &self.confirmed;
        let mut absent: HashSet<DigestId> = HashSet::new();
        let mut consider = |id: DigestId| {
            if !graph.blobs().contains_key(&id) && !confirmed.contains(&id) {
                absent.insert(id);
            }
        };
        for repo in graph.repos().values() {
            repo.revisions.keys().copied().for_each(&mut consider);
            tag_targets(repo).for_each(&mut consider);
        }
        for state in graph.manifests().values() {
            if let ManifestState::Parsed(node) = state {
                for edge in node.edges.iter().filter(|e| !e.foreign) {
                    consider(edge.target);
                }
            }
        }
        graph.young_links().iter().for_each(&mut consider);
        let mut absent: Vec<DigestId> = absent.into_iter().collect();
        absent.sort_unstable();
        self.confirmed.extend(absent.iter().copied());
        absent
    }

    /// Bad links to read again: each once, since a filesystem driver writes a link in place
    /// and a read can catch it empty or half written; and again, after a pause, while reads
    /// keep finding it so (see [`in_flux`]).
    fn bad_links_to_reread(&mut self) -> Vec<Key> {
        let mut links = self.graph.bad_links();
        links.retain(|k| {
            let path = k.to_path();
            self.reread_links.insert(path.clone()) || self.cut_short.take_reread(&path)
        });
        links
    }

    /// Manifests to read again, after a pause: those whose bytes did not hash to their digest
    /// and were empty or of another size than the listing said, while reads keep finding them
    /// so (see [`in_flux`]). A manifest whose bytes match its listed size and not its digest
    /// is corrupt as stored: reported, not read again.
    fn manifests_to_reread(&mut self) -> Vec<DigestId> {
        let mut ids: Vec<DigestId> = self.content_mismatch.keys().copied().collect();
        ids.sort_unstable();
        ids.retain(|&id| {
            let key = Key::BlobData {
                digest: self.graph.digests().digest(id),
            };
            self.cut_short.take_reread(&key.to_path())
        });
        ids
    }

    /// Tags to read again: once each, those whose target's blob or revision link is absent or
    /// whose link did not hold a digest (caught while being written); and again, after a
    /// pause, those whose reads keep finding the link cut short (see [`in_flux`]). Each is
    /// counted as read again.
    fn tags_to_reread(&mut self) -> Vec<(String, String)> {
        let mut tags = Vec::new();
        for repo in self.graph.repos().values() {
            for tag in repo.tags.values() {
                let (absent, bad) = match tag.target {
                    TagTarget::Digest(id) => (
                        !self.graph.blobs().contains_key(&id) || !repo.revisions.contains_key(&id),
                        false,
                    ),
                    TagTarget::BadLink(_) => (true, true),
                    TagTarget::Unread | TagTarget::NoCurrent => (false, false),
                };
                if !absent {
                    continue;
                }
                let name = (repo.name.clone(), tag.name.clone());
                if self.reread.insert(name.clone()) {
                    tags.push(name);
                } else if bad {
                    let key = Key::TagCurrent {
                        repo: name.0.clone(),
                        tag: name.1.clone(),
                    };
                    if self.cut_short.take_reread(&key.to_path()) {
                        tags.push(name);
                    }
                }
            }
        }
        tags
    }

    /// Links a pull needs that no listing showed, not asked for yet: for each repository, the
    /// `_layers` links of the configs and layers and the revision links of the children,
    /// subjects and tag targets that its manifests reference and whose blob exists. A tag
    /// read after the last look passed its repository (it moved meanwhile) can name a manifest
    /// whose links were written after the listing passed them.
    fn unconfirmed_absent_links(&mut self) -> Vec<Key> {
        let graph = &self.graph;
        let repos: Vec<&Repo> = graph.repos().values().collect();
        // Each repository's closure is its own: half of them on a second thread (at 1M keys
        // this pass took 0.12 s on one), inline when no thread starts. In repository order.
        let (first, second) = repos.split_at(repos.len() / 2);
        let (more, mut keys) = crate::beside::beside(
            "gc-audit-settle",
            || absent_links_of(graph, second),
            || absent_links_of(graph, first),
        );
        keys.extend(more);
        keys.retain(|k| self.confirmed_links.insert(k.to_path()));
        keys
    }

    /// HEAD links no listing showed; the ones that exist now join the graph and are checked
    /// like listed ones.
    async fn confirm_links(&mut self, links: Vec<Key>) {
        if links.is_empty() {
            return;
        }
        self.progress
            .start(Phase::Confirming, Some(links.len() as u64));
        let storage = self.storage;
        let mut heads = futures::stream::iter(links)
            .map(|key| async move {
                let got = storage.head(&key.to_path()).await;
                (key, got)
            })
            .buffer_unordered(self.opts.concurrency.max(1));
        let mut to_read = Vec::new();
        while let Some((key, got)) = heads.next().await {
            self.progress.advance(1);
            match got {
                Ok(Some(meta)) => {
                    self.note_write(&meta);
                    let size_ok = self.graph.add_key(&key, meta.size, meta.last_modified);
                    self.note_young_link(&key, &meta);
                    self.classify_link(key, &meta, size_ok, &mut to_read);
                }
                Ok(None) => {}
                Err(err) => self.read_error(&err),
            }
        }
        drop(heads);
        self.progress.finish(Phase::Confirming);
        self.check_links(to_read).await;
    }

    /// HEAD the blobs the listing lacked; the ones that exist now join the graph.
    async fn confirm_blobs(&mut self, ids: Vec<DigestId>) {
        if ids.is_empty() {
            return;
        }
        self.progress
            .start(Phase::Confirming, Some(ids.len() as u64));
        let storage = self.storage;
        let keys: Vec<(DigestId, String)> = ids
            .into_iter()
            .map(|id| {
                let key = Key::BlobData {
                    digest: self.graph.digests().digest(id),
                };
                (id, key.to_path())
            })
            .collect();
        let mut heads = futures::stream::iter(keys)
            .map(|(id, key)| async move {
                let got = storage.head(&key).await;
                (id, got)
            })
            .buffer_unordered(self.opts.concurrency.max(1));
        while let Some((id, got)) = heads.next().await {
            self.progress.advance(1);
            match got {
                Ok(Some(meta)) => {
                    self.note_write(&meta);
                    self.appeared += 1;
                    self.graph.add_blob(
                        id,
                        BlobInfo {
                            size: meta.size,
                            last_modified: meta.last_modified,
                        },
                    );
                }
                Ok(None) => {}
                Err(err) => self.read_error(&err),
            }
        }
        self.progress.finish(Phase::Confirming);
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

/// The links that `repos` need and that their repository lacks although the blob exists
/// (see [`Run::unconfirmed_absent_links`]): a `_layers` link for each config and layer a
/// manifest it reaches references, a revision link for each child and subject.
fn absent_links_of(graph: &Graph, repos: &[&Repo]) -> Vec<Key> {
    let mut keys = Vec::new();
    for repo in repos {
        let mut reached = DigestSet::default();
        let roots: Vec<DigestId> = repo
            .revisions
            .keys()
            .copied()
            .chain(tag_targets(repo))
            .collect();
        close_over(graph, roots.iter().copied(), Follow::All, &mut reached);
        let mut wanted = |kind: EdgeKind, id: DigestId| {
            if !graph.blobs().contains_key(&id) {
                return; // blob-missing: confirmed by its HEAD
            }
            // Built only for a link that is absent (most are there).
            let named = || (repo.name.clone(), graph.digests().digest(id));
            let key = match kind {
                EdgeKind::Config | EdgeKind::Layer if !repo.layer_links.contains_key(&id) => {
                    let (repo, digest) = named();
                    Key::LayerLink { repo, digest }
                }
                EdgeKind::Child | EdgeKind::Subject if !repo.revisions.contains_key(&id) => {
                    let (repo, digest) = named();
                    Key::RevisionLink { repo, digest }
                }
                _ => return,
            };
            keys.push(key);
        };
        for id in roots {
            wanted(EdgeKind::Child, id);
        }
        for m in reached.iter() {
            if let Some(node) = graph.parsed(m) {
                for edge in node.edges.iter() {
                    wanted(edge.kind, edge.target);
                }
            }
        }
    }
    keys
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
