//! The report: one row type per file of SPEC §5, the typed findings, and the run summary.
//!
//! Rows are plain data whose field names are the CSV headers, so a writer only serializes them.
//! gc-core builds and sorts them; gc-cli writes them. [`Report::exit_status`] turns the report
//! into SPEC §4's exit status, so every embedding gets the same answer as the CLI.

mod csv;

pub use csv::{CsvRow, REPORT_FILES, REPUSH_FILE, SUMMARY_FILE, WITHHELD_WHEN_INCOMPLETE};

use crate::digest::Digest;
use crate::gc::{GcModel, GcVerdict, ModelOutcome, PlanStatus};
use crate::graph::{DigestId, DigestTable};
use crate::storage::RequestCounts;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `orphaned.csv`: a blob outside the live set, or outside the tagged set.
///
/// The one row type with a row per blob in the worst case (a registry that is mostly garbage),
/// so a [`Report`] does not keep these rows: it keeps an [`Orphaned`] list that builds them on
/// demand. Rows are sorted by [`Digest::cmp_text`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrphanedRow {
    /// Blob digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, RFC 3339 UTC.
    pub last_modified: Rfc3339,
    /// Which collector reclaims it.
    pub reclaimable_by: ReclaimableBy,
    /// Younger than the grace period: not counted as reclaimable.
    pub young: bool,
}

/// The orphaned blobs of a report, kept compact (24 bytes each, digests by id into the graph's
/// shared digest vector); [`Orphaned::iter`] builds the [`OrphanedRow`]s in order.
#[derive(Clone, Default)]
pub struct Orphaned {
    digests: Arc<DigestTable>,
    entries: Vec<OrphanEntry>,
}

/// One orphaned blob, compact: 16 bytes (a registry that is mostly garbage has a row per blob).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OrphanEntry {
    /// Size in the low 62 bits; bit 62: reclaimable only by `gc-delete-untagged`; bit 63: young.
    size_and_flags: u64,
    /// Modification time in whole seconds since the epoch (what the report prints; times
    /// before 1970 are kept as 1970, after 2106 as 2106).
    seconds: u32,
    id: u32,
}

impl OrphanEntry {
    const SIZE_MASK: u64 = (1 << 62) - 1;
    const UNTAGGED: u64 = 1 << 62;
    const YOUNG: u64 = 1 << 63;

    fn size(self) -> u64 {
        self.size_and_flags & Self::SIZE_MASK
    }

    fn reclaimable_by(self) -> ReclaimableBy {
        if self.size_and_flags & Self::UNTAGGED != 0 {
            ReclaimableBy::GcDeleteUntagged
        } else {
            ReclaimableBy::Gc
        }
    }

    fn young(self) -> bool {
        self.size_and_flags & Self::YOUNG != 0
    }
}

impl Orphaned {
    /// An empty list naming digests in `digests` (the graph's [`Interner::shared`]).
    ///
    /// [`Interner::shared`]: crate::graph::Interner::shared
    pub fn new(digests: Arc<DigestTable>, capacity: usize) -> Self {
        Orphaned {
            digests,
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Add the blob `id`. Times are kept in whole seconds; sizes of 2^62 bytes and more (no
    /// object store holds one) are kept as 2^62 − 1.
    pub fn push(
        &mut self,
        id: DigestId,
        size: u64,
        last_modified: SystemTime,
        reclaimable_by: ReclaimableBy,
        young: bool,
    ) {
        let seconds = last_modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let mut size_and_flags = size.min(OrphanEntry::SIZE_MASK);
        if reclaimable_by == ReclaimableBy::GcDeleteUntagged {
            size_and_flags |= OrphanEntry::UNTAGGED;
        }
        if young {
            size_and_flags |= OrphanEntry::YOUNG;
        }
        self.entries.push(OrphanEntry {
            size_and_flags,
            seconds,
            id: id.0,
        });
    }

    /// Sort by digest text ([`Digest::cmp_text`]); each blob appears once.
    pub fn sort(&mut self) {
        let digests = &self.digests;
        self.entries.sort_unstable_by(|a, b| {
            digests
                .get(DigestId(a.id))
                .cmp_text(&digests.get(DigestId(b.id)))
        });
    }

    /// The rows, in order.
    pub fn iter(&self) -> impl Iterator<Item = OrphanedRow> + '_ {
        self.entries.iter().map(|e| OrphanedRow {
            digest: self.digests.get(DigestId(e.id)),
            size: e.size(),
            last_modified: Rfc3339(UNIX_EPOCH + Duration::from_secs(u64::from(e.seconds))),
            reclaimable_by: e.reclaimable_by(),
            young: e.young(),
        })
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drop every row (an incomplete audit withholds them).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.entries.shrink_to_fit();
    }
}

impl fmt::Debug for Orphaned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Orphaned {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// Which garbage collection reclaims an orphaned blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReclaimableBy {
    /// `gc`: outside the live set, any garbage collection removes it.
    Gc,
    /// `gc-delete-untagged`: live but outside the tagged set; only `--delete-untagged` does.
    GcDeleteUntagged,
}

impl ReclaimableBy {
    /// The CSV spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReclaimableBy::Gc => "gc",
            ReclaimableBy::GcDeleteUntagged => "gc-delete-untagged",
        }
    }
}

impl fmt::Display for ReclaimableBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A time that reads and serializes as RFC 3339 UTC in whole seconds
/// (`2026-01-01T00:00:00Z`); times before 1970 read as 1970.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rfc3339(pub SystemTime);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // humantime cannot print times before 1970 (a storage can report them): clamp.
        let t = self.0.max(UNIX_EPOCH);
        write!(f, "{}", humantime::format_rfc3339_seconds(t))
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `missing.csv`: a reference from a manifest to absent content.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MissingRow {
    /// Repository.
    pub repository: String,
    /// The referencing manifest (the revision or tag target itself for those kinds).
    pub manifest_digest: String,
    /// Tags of the repository whose image includes the manifest, space-separated.
    pub tags: String,
    /// `revision`, `tag-target`, `config`, `layer`, `child-manifest`, `subject`.
    pub kind: String,
    /// The absent content.
    pub digest: String,
    /// `blob-missing`, `not-linked`, `bad-link`.
    pub reason: String,
}

/// `dangling.csv`: a child of an index that cannot be pulled from the repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DanglingRow {
    /// Repository.
    pub repository: String,
    /// The index.
    pub index_digest: String,
    /// Tags whose image includes the index, space-separated.
    pub tags: String,
    /// The child.
    pub child_digest: String,
    /// The child's platform (`linux/arm/v7`; `unknown/unknown` for attestations).
    pub platform: String,
    /// `blob-missing`, `not-linked`, `unparseable`.
    pub reason: String,
}

/// `gc-unsafe.csv`: a deletion a garbage collector would make of needed content.
///
/// A registry whose multi-arch images are all at risk has one per blob of them, so the
/// fixed vocabulary columns are static strings, not allocations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GcUnsafeRow {
    /// GC model name.
    pub model: &'static str,
    /// `delete-blob`, `delete-revision`, `delete-layer-link`, `abort`.
    pub action: &'static str,
    /// Repository (shared by the rows of one repository).
    pub repository: Arc<str>,
    /// The deleted digest (the key that stops the run, for `abort` rows).
    pub digest: DigestOrKey,
    /// What the content is (`config`, `layer`, `manifest`, …), or why a run aborts.
    pub kind: &'static str,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// One `repo:tag` or `repo@digest` that breaks (shared by the rows it names).
    pub needed_by: Arc<str>,
}

/// A digest, or a storage key where a row names what stops a run. Kept as a [`Digest`] when it
/// is one (no allocation for sha256); reads and serializes as its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DigestOrKey {
    /// A digest.
    Digest(Digest),
    /// Anything else: a key, or an unparseable digest string.
    Key(String),
}

impl DigestOrKey {
    /// A digest when `s` parses as one, else the text itself.
    pub fn parse(s: &str) -> Self {
        match Digest::parse(s) {
            Ok(d) => DigestOrKey::Digest(d),
            Err(_) => DigestOrKey::Key(s.to_string()),
        }
    }
}

impl fmt::Display for DigestOrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestOrKey::Digest(d) => d.fmt(f),
            DigestOrKey::Key(k) => f.write_str(k),
        }
    }
}

impl Serialize for DigestOrKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// Rows sort by text, as the file lists them.
impl Ord for DigestOrKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (DigestOrKey::Digest(a), DigestOrKey::Digest(b)) => a.cmp_text(b),
            _ => self.to_string().cmp(&other.to_string()),
        }
    }
}

impl PartialOrd for DigestOrKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// `broken.csv`: a tag whose image cannot be pulled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BrokenRow {
    /// Repository.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// The tag's current manifest (empty when its link is unreadable).
    pub digest: String,
    /// What fails; reads and serializes `; `-separated.
    pub problem: PullProblems,
}

/// Why a pull fails: the problems of one [`BrokenRow`], sorted by their text, each once.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PullProblems(Vec<PullProblem>);

impl PullProblems {
    /// The problems, each once, in the order of their text.
    pub fn new(problems: impl IntoIterator<Item = PullProblem>) -> Self {
        let mut keyed: Vec<(String, PullProblem)> =
            problems.into_iter().map(|p| (p.to_string(), p)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.dedup_by(|a, b| a.0 == b.0);
        PullProblems(keyed.into_iter().map(|(_, p)| p).collect())
    }

    /// The problems.
    pub fn iter(&self) -> std::slice::Iter<'_, PullProblem> {
        self.0.iter()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for PullProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            p.fmt(f)?;
        }
        Ok(())
    }
}

impl Serialize for PullProblems {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One reason a tag's image cannot be pulled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PullProblem {
    /// The tag's `current/link` holds no digest: `current link is not a digest: <content>`.
    CurrentLinkNotDigest(String),
    /// Content of the image that cannot be served: `<what> <digest>[ (<platform>)] <why>`.
    Content {
        /// `manifest` (the tag target, or a manifest of its closure that cannot be read),
        /// `config`, `layer` or `child-manifest`.
        what: &'static str,
        /// The content.
        digest: Digest,
        /// The platform of the index child it is reached through, when declared.
        platform: Option<Box<str>>,
        /// Why it cannot be served.
        why: PullFailure,
    },
}

/// Why content of an image cannot be served from its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PullFailure {
    /// Its blob is not in the blob store.
    BlobMissing,
    /// The repository has no link to it.
    NotLinked,
    /// The repository's link to it holds something else.
    BadLink,
    /// The registry cannot parse it as a manifest.
    Unparseable,
}

impl PullFailure {
    /// The report spelling (`blob-missing`, `not-linked`, `bad-link`, `unparseable`).
    pub fn as_str(self) -> &'static str {
        match self {
            PullFailure::BlobMissing => "blob-missing",
            PullFailure::NotLinked => "not-linked",
            PullFailure::BadLink => "bad-link",
            PullFailure::Unparseable => "unparseable",
        }
    }
}

impl fmt::Display for PullFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for PullProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PullProblem::CurrentLinkNotDigest(content) => {
                write!(f, "current link is not a digest: {content}")
            }
            PullProblem::Content {
                what,
                digest,
                platform,
                why,
            } => match platform {
                Some(p) => write!(f, "{what} {digest} ({p}) {why}"),
                None => write!(f, "{what} {digest} {why}"),
            },
        }
    }
}

/// `repos.csv`: per-repository totals.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RepoRow {
    /// Repository.
    pub repository: String,
    /// Tags with a current link.
    pub tags: u64,
    /// Manifest revisions.
    pub manifests: u64,
    /// Revisions outside the repository's tagged set.
    pub untagged_manifests: u64,
    /// Bytes of the present blobs the repository references (live or tagged closure).
    pub bytes: u64,
    /// Of those, the bytes no other repository references.
    pub exclusive_bytes: u64,
}

/// The kind of an anomaly in `findings.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// A key under the registry root that is no part of the layout.
    UnrecognizedKey,
    /// A digest spelled in a key's path that is not valid.
    BadDigestInPath,
    /// A blob whose fan-out directory is not `hex[0:2]`.
    FanoutMismatch,
    /// A repository name the registry could not have created.
    BadRepositoryName,
    /// A tag name the registry could not have created.
    BadTagName,
    /// A link file whose content is not a digest (empty, truncated, garbage).
    BadLink,
    /// A link file holding a digest other than the one in its path.
    LinkMismatch,
    /// A tag directory with history but no `current/link`.
    TagWithoutCurrent,
    /// Content read as a manifest that is not one.
    UnparseableManifest,
    /// A manifest larger than the size limit; not downloaded.
    ManifestTooLarge,
    /// Content whose hash is not its digest.
    DigestMismatch,
    /// A manifest with a media type gc-audit does not know.
    UnknownMediaType,
    /// A descriptor in a manifest that could not be read; skipped.
    BadDescriptor,
    /// A repository with `_manifests/` but no `_layers/`: distribution 2.8 GC does not see it
    /// and sweeps everything it references.
    InvisibleToGc28,
    /// A repository with `_layers/` but no `_manifests/`: invisible to 3.x's catalog and GC.
    InvisibleToGc3,
    /// An upload older than the registry's purge age, or without `startedat`.
    StaleUpload,
    /// A cosign `sha256-<hex>.sig|.att|.sbom` tag whose subject is no manifest of the repo.
    OrphanedSignatureTag,
    /// A foreign / non-distributable layer absent from the blob store (allowed).
    ForeignLayerAbsent,
    /// A `_layers` link to a blob that is gone (left behind by 2.8 GC).
    DanglingLayerLink,
    /// A tag history entry for a manifest whose blob is gone.
    DanglingTagHistory,
    /// A schema1 signature link from registry ≤ 2.4.
    LegacySignatureLink,
    /// A GC model whose run gc-audit cannot predict (it would read a manifest gc-audit did not).
    GcUnpredictable,
    /// A listing or read that failed: the audit is incomplete.
    ReadError,
    /// The location holds no registry (no blob, no repository): a mistyped root.
    NoRegistry,
    /// A FIFO, socket or device where a file or directory belongs (also through a symbolic
    /// link): never opened, and the audit is incomplete.
    SpecialFile,
    /// A symbolic link leading outside the storage root: not followed, and the audit is
    /// incomplete.
    SymlinkOutsideRoot,
    /// A symbolic link loop: not followed, and the audit is incomplete.
    SymlinkLoop,
    /// A symbolic link to nothing: the audit is incomplete.
    DanglingSymlink,
}

impl FindingKind {
    /// Every kind, in declaration order.
    pub const ALL: [FindingKind; 28] = [
        FindingKind::UnrecognizedKey,
        FindingKind::BadDigestInPath,
        FindingKind::FanoutMismatch,
        FindingKind::BadRepositoryName,
        FindingKind::BadTagName,
        FindingKind::BadLink,
        FindingKind::LinkMismatch,
        FindingKind::TagWithoutCurrent,
        FindingKind::UnparseableManifest,
        FindingKind::ManifestTooLarge,
        FindingKind::DigestMismatch,
        FindingKind::UnknownMediaType,
        FindingKind::BadDescriptor,
        FindingKind::InvisibleToGc28,
        FindingKind::InvisibleToGc3,
        FindingKind::StaleUpload,
        FindingKind::OrphanedSignatureTag,
        FindingKind::ForeignLayerAbsent,
        FindingKind::DanglingLayerLink,
        FindingKind::DanglingTagHistory,
        FindingKind::LegacySignatureLink,
        FindingKind::GcUnpredictable,
        FindingKind::ReadError,
        FindingKind::NoRegistry,
        FindingKind::SpecialFile,
        FindingKind::SymlinkOutsideRoot,
        FindingKind::SymlinkLoop,
        FindingKind::DanglingSymlink,
    ];

    /// The kind named `name` in findings.csv.
    pub fn from_name(name: &str) -> Option<FindingKind> {
        FindingKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// How much it matters: `error` (content that cannot be served, a read that failed, a
    /// collector that would sweep or stop), `warning` (something odd an operator should look
    /// at), `info` (expected leftovers, e.g. the `_layers` links 2.8 GC leaves behind).
    pub fn severity(self) -> Severity {
        match self {
            FindingKind::UnrecognizedKey => Severity::Warning,
            FindingKind::BadDigestInPath => Severity::Warning,
            FindingKind::FanoutMismatch => Severity::Warning,
            FindingKind::BadRepositoryName => Severity::Warning,
            FindingKind::BadTagName => Severity::Warning,
            FindingKind::BadLink => Severity::Error,
            FindingKind::LinkMismatch => Severity::Error,
            FindingKind::TagWithoutCurrent => Severity::Warning,
            FindingKind::UnparseableManifest => Severity::Error,
            FindingKind::ManifestTooLarge => Severity::Warning,
            FindingKind::DigestMismatch => Severity::Error,
            FindingKind::UnknownMediaType => Severity::Warning,
            FindingKind::BadDescriptor => Severity::Warning,
            FindingKind::InvisibleToGc28 => Severity::Error,
            FindingKind::InvisibleToGc3 => Severity::Warning,
            FindingKind::StaleUpload => Severity::Warning,
            FindingKind::OrphanedSignatureTag => Severity::Warning,
            FindingKind::ForeignLayerAbsent => Severity::Info,
            FindingKind::DanglingLayerLink => Severity::Info,
            FindingKind::DanglingTagHistory => Severity::Info,
            FindingKind::LegacySignatureLink => Severity::Info,
            FindingKind::GcUnpredictable => Severity::Warning,
            FindingKind::ReadError => Severity::Error,
            FindingKind::NoRegistry => Severity::Error,
            FindingKind::SpecialFile => Severity::Error,
            FindingKind::SymlinkOutsideRoot => Severity::Error,
            FindingKind::SymlinkLoop => Severity::Error,
            FindingKind::DanglingSymlink => Severity::Error,
        }
    }
    /// The value of the `kind` column.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::UnrecognizedKey => "unrecognized-key",
            FindingKind::BadDigestInPath => "bad-digest-in-path",
            FindingKind::FanoutMismatch => "fanout-mismatch",
            FindingKind::BadRepositoryName => "bad-repository-name",
            FindingKind::BadTagName => "bad-tag-name",
            FindingKind::BadLink => "bad-link",
            FindingKind::LinkMismatch => "link-mismatch",
            FindingKind::TagWithoutCurrent => "tag-without-current",
            FindingKind::UnparseableManifest => "unparseable-manifest",
            FindingKind::ManifestTooLarge => "manifest-too-large",
            FindingKind::DigestMismatch => "digest-mismatch",
            FindingKind::UnknownMediaType => "unknown-media-type",
            FindingKind::BadDescriptor => "bad-descriptor",
            FindingKind::InvisibleToGc28 => "invisible-to-2.8-gc",
            FindingKind::InvisibleToGc3 => "invisible-to-3-gc",
            FindingKind::StaleUpload => "stale-upload",
            FindingKind::OrphanedSignatureTag => "orphaned-signature-tag",
            FindingKind::ForeignLayerAbsent => "foreign-layer-absent",
            FindingKind::DanglingLayerLink => "dangling-layer-link",
            FindingKind::DanglingTagHistory => "dangling-tag-history",
            FindingKind::LegacySignatureLink => "legacy-signature-link",
            FindingKind::GcUnpredictable => "gc-unpredictable",
            FindingKind::ReadError => "read-error",
            FindingKind::NoRegistry => "no-registry",
            FindingKind::SpecialFile => "special-file",
            FindingKind::SymlinkOutsideRoot => "symlink-outside-root",
            FindingKind::SymlinkLoop => "symlink-loop",
            FindingKind::DanglingSymlink => "dangling-symlink",
        }
    }
}

/// How much a finding matters ([`FindingKind::severity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Content that cannot be served, a read that failed, a collector that would sweep or
    /// stop.
    Error,
    /// Something odd an operator should look at.
    Warning,
    /// Expected leftovers and allowed absences.
    Info,
}

impl Severity {
    /// `error`, `warning`, `info`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One anomaly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Repository, if the anomaly is inside one.
    pub repository: Option<String>,
    /// The storage key (or prefix) concerned.
    pub key: String,
    /// What it is.
    pub kind: FindingKind,
    /// Details for a person.
    pub detail: String,
}

/// `findings.csv` row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FindingRow {
    /// Repository, or empty.
    pub repository: String,
    /// Storage key.
    pub key: String,
    /// Kind name.
    pub kind: String,
    /// Details.
    pub detail: String,
}

impl From<&Finding> for FindingRow {
    fn from(f: &Finding) -> Self {
        FindingRow {
            repository: f.repository.clone().unwrap_or_default(),
            key: f.key.clone(),
            kind: f.kind.name().to_string(),
            detail: f.detail.clone(),
        }
    }
}

/// A count with its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CountBytes {
    /// How many.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl CountBytes {
    /// Add one item of `bytes`.
    pub fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// Totals of the storage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Keys the listing returned.
    pub keys: u64,
    /// Blobs in the blob store.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Repositories.
    pub repositories: u64,
    /// Tags with a current link.
    pub tags: u64,
    /// Distinct manifest digests read.
    pub manifests: u64,
    /// Manifest revision links.
    pub revisions: u64,
}

/// How the audit checked the link files it listed (every link is checked; SPEC §2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinkChecks {
    /// Links whose listed ETag is the MD5 of the digest in their path: verified unread.
    pub verified_by_etag: u64,
    /// Links read and compared with their path (no ETags on this backend, a wrong size, an
    /// ETag that contradicts the path, or `--verify-links`).
    pub read: u64,
    /// Links checked by size only, because their ETags tell nothing about their content.
    pub unverified: u64,
    /// Why some links went unverified (`--verify-links` reads them), when any did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified_why: Option<String>,
}

/// `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// The version of this file's layout ([`SCHEMA_VERSION`]): raised when a field changes
    /// meaning or goes; new fields do not raise it.
    pub schema_version: u32,
    /// `gc-audit`.
    pub tool: String,
    /// Tool version.
    pub version: String,
    /// What was audited.
    pub location: String,
    /// Storage backend.
    pub backend: String,
    /// Whether every listing and read succeeded. When false, the reclaimable and integrity
    /// reports are withheld.
    pub complete: bool,
    /// Start of the run, RFC 3339.
    pub started_at: String,
    /// End of the run, RFC 3339.
    pub finished_at: String,
    /// The instant the report describes (SPEC §3): when the audit's last look at
    /// `repositories/` began, RFC 3339 UTC with milliseconds. Every reference created before it
    /// was seen; `orphaned.csv` holds what was unreferenced as of then.
    pub as_of: String,
    /// Keys listed whose modification time is not before the run's start: the registry was
    /// written while it was audited.
    pub writes_during_scan: u64,
    /// Wall time in seconds.
    pub duration_seconds: f64,
    /// The grace period in seconds.
    pub grace_seconds: u64,
    /// Storage totals.
    pub totals: Totals,
    /// Blobs reclaimable by a plain GC (outside the live set), not young.
    pub reclaimable_by_gc: CountBytes,
    /// Blobs reclaimable only by `--delete-untagged` (live but not tagged), not young.
    pub reclaimable_by_gc_delete_untagged: CountBytes,
    /// Orphaned blobs younger than the grace period, left out of the two above.
    pub young: CountBytes,
    /// Rows in missing.csv.
    pub missing: u64,
    /// Rows in dangling.csv.
    pub dangling: u64,
    /// Rows in broken.csv.
    pub broken_tags: u64,
    /// Rows in gc-unsafe.csv per model.
    pub gc_unsafe: BTreeMap<String, u64>,
    /// Each GC model's verdict, by model name.
    pub gc_models: BTreeMap<String, ModelSummary>,
    /// Rows in findings.csv per kind.
    pub findings: BTreeMap<String, u64>,
    /// Rows in findings.csv per severity (`error`, `warning`, `info`).
    pub findings_by_severity: BTreeMap<String, u64>,
    /// Requests made, by kind.
    pub requests: RequestCounts,
    /// The fewest requests this audit needed: listing pages of 1000 keys, a GET per manifest
    /// the cache did not hold, per tag whose `current/link` its ETag could not resolve and per
    /// link that had to be read, and the HEADs that confirmed absences.
    pub requests_minimum: RequestCounts,
    /// The fewest requests of an auditor without ETag resolution or cache: listing pages, one
    /// GET per tag `current/link`, per distinct manifest and per link read, and the HEADs.
    pub requests_single_pass_minimum: RequestCounts,
    /// Tags whose `current/link` was resolved from its listed ETag, unread (SPEC §2).
    pub tags_resolved_by_etag: u64,
    /// Links verified by their listed ETag, unread (as `links.verified_by_etag`).
    pub links_verified_by_etag: u64,
    /// Where parsed manifests were remembered between runs; absent when no cache was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_cache: Option<String>,
    /// Manifests taken from the cache, unread.
    pub cache_hits: u64,
    /// Manifests looked up in the cache and read from storage instead (no entry, an entry for
    /// another size, a damaged entry).
    pub cache_misses: u64,
    /// How the link files were checked (SPEC §2).
    pub links: LinkChecks,
    /// The exit status of the run (SPEC §4): 0 clean, 1 integrity findings, 2 incomplete.
    /// The library sets it without `--fail-on-unsafe`; the CLI with it.
    pub exit_status: u8,
    /// Report files not written because the audit is incomplete.
    pub withheld: Vec<String>,
    /// The errors that made the audit incomplete (first 100).
    pub errors: Vec<String>,
    /// Warnings about the configuration the run was given (a registry config's unknown keys,
    /// defaults that replaced missing settings); absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub warnings: Vec<String>,
}

/// The layout version of `summary.json` ([`Summary::schema_version`]).
pub const SCHEMA_VERSION: u32 = 2;

/// One GC model's verdict in `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelSummary {
    /// `safe`, `unsafe`, `aborts`, `unpredictable`, or `unknown` when the audit is incomplete.
    pub verdict: String,
    /// Deletions of needed content (rows of gc-unsafe.csv, `abort` rows excluded).
    pub unsafe_deletions: u64,
    /// Images (`repo:tag` or `repo@digest`) those deletions break.
    pub images_broken: u64,
    /// Bytes of needed blobs the run deletes.
    pub needed_bytes_deleted: u64,
    /// Why the run stops (`aborts`), or cannot be predicted (`unpredictable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The digest or key the run stops on (`aborts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_or_digest: Option<String>,
}

impl ModelSummary {
    /// The summary of `outcome`'s verdict, with the byte total of its rows; `None` as the
    /// outcome of an incomplete audit.
    pub fn of(outcome: Option<&ModelOutcome>, rows: &[GcUnsafeRow]) -> ModelSummary {
        let Some(outcome) = outcome else {
            return ModelSummary {
                verdict: "unknown".to_string(),
                ..ModelSummary::default()
            };
        };
        let mut s = ModelSummary {
            verdict: outcome.verdict.name().to_string(),
            needed_bytes_deleted: rows
                .iter()
                .filter(|r| r.model == outcome.model.name() && r.action == "delete-blob")
                .filter_map(|r| r.size)
                .sum(),
            ..ModelSummary::default()
        };
        match &outcome.verdict {
            GcVerdict::Safe => {}
            GcVerdict::Unsafe { rows, images } => {
                s.unsafe_deletions = *rows as u64;
                s.images_broken = images.len() as u64;
            }
            GcVerdict::Aborts {
                reason,
                key_or_digest,
            } => {
                s.reason = Some(reason.to_string());
                s.key_or_digest = Some(key_or_digest.to_string());
            }
            GcVerdict::Unpredictable { why } => s.reason = Some(why.clone()),
        }
        s
    }
}

/// A whole audit result.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// orphaned.csv rows, sorted (built on demand by [`Orphaned::iter`]).
    pub orphaned: Orphaned,
    /// missing.csv rows, sorted.
    pub missing: Vec<MissingRow>,
    /// dangling.csv rows, sorted.
    pub dangling: Vec<DanglingRow>,
    /// gc-unsafe.csv rows, sorted.
    pub gc_unsafe: Vec<GcUnsafeRow>,
    /// broken.csv rows, sorted.
    pub broken: Vec<BrokenRow>,
    /// repos.csv rows, sorted.
    pub repos: Vec<RepoRow>,
    /// findings.csv rows, sorted.
    pub findings: Vec<FindingRow>,
    /// summary.json.
    pub summary: Summary,
    /// Each GC model's run and verdict, in [`GcModel::ALL`] order (empty only in a report
    /// built by hand).
    pub gc_models: Vec<ModelOutcome>,
}

/// Exit status of `gc-audit scan` (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: complete, no integrity findings.
    Clean,
    /// 1: complete, with integrity findings.
    IntegrityFindings,
    /// 2: incomplete or failed.
    Incomplete,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Clean => 0,
            ExitStatus::IntegrityFindings => 1,
            ExitStatus::Incomplete => 2,
        }
    }
}

impl Report {
    /// Whether missing, dangling or broken hold rows, or gc-unsafe holds rows for `fail_on`.
    pub fn has_integrity_findings(&self, fail_on_unsafe: Option<GcModel>) -> bool {
        !self.missing.is_empty()
            || !self.dangling.is_empty()
            || !self.broken.is_empty()
            || fail_on_unsafe.is_some_and(|m| self.gc_unsafe.iter().any(|r| r.model == m.name()))
    }

    /// The assessed run of `model`, if the report holds it.
    pub fn gc_model(&self, model: GcModel) -> Option<&ModelOutcome> {
        self.gc_models.iter().find(|o| o.model == model)
    }

    /// The assessed run of `model` when the audit is complete: `None` when it is incomplete
    /// (nothing can be promised) or the report does not hold it.
    pub fn gc_assessed(&self, model: GcModel) -> Option<&ModelOutcome> {
        self.gc_model(model).filter(|_| self.summary.complete)
    }

    /// The verdict of `model`, under the same terms as [`Report::gc_assessed`].
    pub fn gc_verdict(&self, model: GcModel) -> Option<&GcVerdict> {
        self.gc_assessed(model).map(|o| &o.verdict)
    }

    /// The exit status of `gc-plan` for `model` (SPEC §5): 2 when the audit is incomplete.
    pub fn plan_status(&self, model: GcModel) -> PlanStatus {
        self.gc_assessed(model)
            .map_or(PlanStatus::Incomplete, ModelOutcome::status)
    }

    /// SPEC §4's exit status.
    pub fn exit_status(&self, fail_on_unsafe: Option<GcModel>) -> ExitStatus {
        if !self.summary.complete {
            ExitStatus::Incomplete
        } else if self.has_integrity_findings(fail_on_unsafe) {
            ExitStatus::IntegrityFindings
        } else {
            ExitStatus::Clean
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphan_entries_keep_size_time_and_flags() {
        let d = |c: char| Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap();
        let digests = Arc::new([d('a'), d('b'), d('c')].into_iter().collect());
        let mut o = Orphaned::new(digests, 3);
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        o.push(
            DigestId(2),
            5 << 40,
            t,
            ReclaimableBy::GcDeleteUntagged,
            true,
        );
        o.push(DigestId(0), 0, UNIX_EPOCH, ReclaimableBy::Gc, false);
        o.push(DigestId(1), u64::MAX, t, ReclaimableBy::Gc, true);
        o.sort();
        let rows: Vec<OrphanedRow> = o.iter().collect();
        assert_eq!(rows[0].digest, d('a'));
        assert_eq!((rows[0].size, rows[0].young), (0, false));
        assert_eq!(rows[0].reclaimable_by, ReclaimableBy::Gc);
        assert_eq!(rows[1].size, (1 << 62) - 1);
        assert_eq!(
            (rows[1].reclaimable_by, rows[1].young),
            (ReclaimableBy::Gc, true)
        );
        assert_eq!(rows[2].size, 5 << 40);
        assert_eq!(rows[2].last_modified, Rfc3339(t));
        assert_eq!(
            (rows[2].reclaimable_by, rows[2].young),
            (ReclaimableBy::GcDeleteUntagged, true)
        );
        assert_eq!(std::mem::size_of::<OrphanEntry>(), 16);
    }

    #[test]
    fn every_finding_kind_is_found_by_its_name_once() {
        let names: std::collections::BTreeSet<&str> =
            FindingKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), FindingKind::ALL.len());
        for kind in FindingKind::ALL {
            assert_eq!(FindingKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(FindingKind::DanglingLayerLink.severity(), Severity::Info);
        assert_eq!(FindingKind::ReadError.severity(), Severity::Error);
    }
}
