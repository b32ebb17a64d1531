//! The reference graph: what the storage holds, keyed by compact digest ids.
//!
//! Every digest the audit meets (blob, link, tag target, manifest reference) is interned once
//! into a [`DigestId`] (a `u32`), so the blob table, the per-repository link sets, the manifest
//! edges and the mark sets are all vectors and sets of integers. The graph is filled from the
//! listing ([`Graph::add_key`]) and from the reads (tag targets, manifests); [`crate::mark`]
//! and [`crate::analysis`] then work on it in memory without any I/O.

pub use crate::blobs::{BlobInfo, BlobTable};
use crate::digest::Digest;
pub use crate::digest_table::DigestTable;
use crate::layout::Key;
pub use crate::links::{LinkState, LinkTable};
use crate::manifest::{EdgeKind, Manifest, ManifestKind, Undecodable};
use crate::mark::DigestSet;
use hashbrown::hash_table::{Entry, HashTable};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::SystemTime;

/// A digest interned in a [`Graph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DigestId(pub(crate) u32);

impl DigestId {
    /// The id as an index into per-digest vectors.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Interns digests to ids.
///
/// Each digest is stored once, in `digests` (32 bytes a `sha256` digest, see
/// [`DigestTable`]); the hash table holds only ids (4 bytes a slot) and finds them by hashing
/// the digest they point at. At a million digests that is the difference between ~37 and
/// ~100 bytes per digest.
///
/// The digest table is behind an `Arc` so that, once the graph is complete, report rows can
/// name digests by id against the same table ([`Interner::shared`]) instead of copying them.
#[derive(Debug, Default)]
pub struct Interner {
    digests: Arc<DigestTable>,
    ids: HashTable<u32>,
    hasher: RandomState,
}

impl Interner {
    /// The id of `digest`, interning it if new.
    pub fn intern(&mut self, digest: &Digest) -> DigestId {
        let Interner {
            digests,
            ids,
            hasher,
        } = self;
        let hash = hasher.hash_one(digest);
        match ids.entry(
            hash,
            |&id| digests.holds(id, digest),
            |&id| hasher.hash_one(digests.get(DigestId(id))),
        ) {
            Entry::Occupied(e) => DigestId(*e.get()),
            Entry::Vacant(v) => {
                // Unique while the graph is built, so this does not copy.
                let id = Arc::make_mut(digests).push(digest);
                v.insert(id);
                DigestId(id)
            }
        }
    }

    /// The id of `digest` if it was interned.
    pub fn get(&self, digest: &Digest) -> Option<DigestId> {
        self.ids
            .find(self.hasher.hash_one(digest), |&id| {
                self.digests.holds(id, digest)
            })
            .map(|&id| DigestId(id))
    }

    /// The digest of `id`.
    pub fn digest(&self, id: DigestId) -> Digest {
        self.digests.get(id)
    }

    /// Give back the growth slack of the digest table and the id table.
    pub fn shrink_to_fit(&mut self) {
        let Interner {
            digests,
            ids,
            hasher,
        } = self;
        Arc::make_mut(digests).shrink_to_fit();
        ids.shrink_to_fit(|&id| hasher.hash_one(digests.get(DigestId(id))));
    }

    /// The digest table, indexed by [`DigestId`], shared rather than copied.
    pub fn shared(&self) -> Arc<DigestTable> {
        Arc::clone(&self.digests)
    }

    /// How many digests are interned.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

/// What a tag's `current/link` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagTarget {
    /// Not read yet.
    Unread,
    /// A valid digest.
    Digest(DigestId),
    /// Unparseable content (empty, garbage): the content found, escaped.
    BadLink(String),
    /// No `current/link` under the tag (only history), or it vanished before it was read.
    NoCurrent,
}

/// One tag of a repository.
#[derive(Debug, Clone)]
pub struct Tag {
    /// Tag name.
    pub name: String,
    /// Where `current/link` points.
    pub target: TagTarget,
    /// Size of `current/link` as listed, if it exists.
    pub current_size: Option<u64>,
    /// Tag history entries.
    pub history: Vec<DigestId>,
    /// Newest modification time of the history entries (a tag whose `current/link` is not
    /// written yet, with only young history, is a push in flight).
    pub history_modified: Option<SystemTime>,
    /// Targets the tag had earlier in this audit (it moved while the audit ran). Their
    /// closures are not reported as reclaimable: they were tagged within the audit's window.
    pub earlier_targets: Vec<DigestId>,
}

/// An upload in progress under `_uploads/<id>`.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    /// Size of `data`, if present.
    pub data_size: Option<u64>,
    /// Modification time of the newest file of the upload.
    pub last_modified: Option<SystemTime>,
    /// Whether `startedat` exists.
    pub has_started_at: bool,
    /// Parsed `startedat`, once read.
    pub started_at: Option<SystemTime>,
}

/// One repository.
#[derive(Debug, Default)]
pub struct Repo {
    /// Name (`team/app/api`).
    pub name: String,
    /// `_layers` links.
    pub layer_links: LinkTable,
    /// Manifest revision links.
    pub revisions: LinkTable,
    /// Tags by name.
    pub tags: BTreeMap<String, Tag>,
    /// Uploads by id.
    pub uploads: BTreeMap<String, Upload>,
    /// Whether any key under `_layers/` exists (what 2.8 discovers repositories by).
    pub has_layers_dir: bool,
    /// Whether any key under `_manifests/` exists (what 3.x discovers repositories by).
    pub has_manifests_dir: bool,
    /// Whether any key under `_manifests/tags/` exists.
    pub has_tags_dir: bool,
    /// Legacy schema1 signature links: (manifest, signature).
    pub legacy_signatures: Vec<(DigestId, DigestId)>,
    /// Modification time of the oldest key listed under the repository: a repository whose
    /// every key is younger than the grace is being pushed for the first time.
    pub oldest_key: Option<SystemTime>,
}

/// An edge from a manifest: 8 bytes (a graph holds one per layer of every manifest). An
/// index child's platform is kept by its [`ManifestNode`] ([`ManifestNode::platform_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Config, layer, child or subject.
    pub kind: EdgeKind,
    /// The referenced digest.
    pub target: DigestId,
    /// Foreign / non-distributable: need not be in the blob store.
    pub foreign: bool,
    /// Whether the child is a buildx attestation manifest.
    pub attestation: bool,
}

/// A manifest as the audit found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestState {
    /// Parsed.
    Parsed(ManifestNode),
    /// Read but not a manifest: why.
    Unparseable(String),
    /// Larger than the manifest size limit: not downloaded.
    TooLarge(u64),
    /// Its read failed (the audit is incomplete, and says so once, as a read error).
    ReadFailed,
}

/// A parsed manifest reduced to its edges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestNode {
    /// Kind of document.
    pub kind: ManifestKind,
    /// Edges in document order: config, layers, children, subject. (Boxed slices: one per
    /// manifest, never grown after parsing, so no capacity word and no slack.)
    pub edges: Box<[Edge]>,
    /// Platforms and parse problems: most manifests (single-platform images) have neither, so
    /// they cost one pointer, not two slices.
    extra: Option<Box<NodeExtra>>,
}

/// The rarely present parts of a [`ManifestNode`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeExtra {
    /// Declared platforms of index children (`linux/arm64`), by edge index, ascending.
    platforms: Box<[(u32, Box<str>)]>,
    /// Per-field problems found while parsing.
    problems: Box<[String]>,
    /// Why distribution cannot decode the manifest (its references are still the edges).
    undecodable: Undecodable,
}

impl ManifestNode {
    /// Reduce a parsed manifest to interned edges.
    pub fn from_manifest(m: Manifest, interner: &mut Interner) -> ManifestNode {
        let mut platforms = Vec::new();
        let edges = m
            .references()
            .enumerate()
            .map(|(i, (kind, d))| {
                if let Some(p) = &d.platform {
                    platforms.push((
                        u32::try_from(i).unwrap_or(u32::MAX),
                        p.to_string().into_boxed_str(),
                    ));
                }
                Edge {
                    kind,
                    target: interner.intern(&d.digest),
                    foreign: d.foreign,
                    attestation: d.attestation,
                }
            })
            .collect();
        let extra =
            (!platforms.is_empty() || !m.problems.is_empty() || !m.undecodable.is_decodable())
                .then(|| {
                    Box::new(NodeExtra {
                        platforms: platforms.into_boxed_slice(),
                        problems: m.problems.into_boxed_slice(),
                        undecodable: m.undecodable,
                    })
                });
        ManifestNode {
            kind: m.kind,
            edges,
            extra,
        }
    }

    /// A node with these edges, no declared platforms and no parse problems.
    pub fn new(kind: ManifestKind, edges: Box<[Edge]>) -> ManifestNode {
        ManifestNode {
            kind,
            edges,
            extra: None,
        }
    }

    /// Per-field problems found while parsing.
    pub fn problems(&self) -> &[String] {
        self.extra.as_deref().map_or(&[], |x| &x.problems)
    }

    /// Why distribution cannot decode this manifest, per version. Such a node keeps the
    /// references the lenient reader found, so that reports stay useful, but is unparseable
    /// to findings, broken tags and the GC models.
    pub fn undecodable(&self) -> Option<&Undecodable> {
        self.extra
            .as_deref()
            .map(|x| &x.undecodable)
            .filter(|u| !u.is_decodable())
    }

    /// The declared platform of edge `index`, if any.
    pub fn platform_of(&self, index: usize) -> Option<&str> {
        let platforms = &self.extra.as_deref()?.platforms;
        let index = u32::try_from(index).ok()?;
        platforms
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .map(|at| &*platforms[at].1)
    }

    /// Edges with their declared platforms, in document order.
    pub fn edges_with_platforms(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&Edge, Option<&str>)> + '_ {
        self.edges
            .iter()
            .enumerate()
            .map(|(i, e)| (e, self.platform_of(i)))
    }
}

/// The whole graph of one storage.
///
/// Filled only through its mutators, which keep its invariants: every id names an interned
/// digest, a link or tag history entry belongs to a repository whose marker flags say it has
/// one, a tag that moves keeps the targets it had. Read through its accessors.
#[derive(Debug, Default)]
pub struct Graph {
    /// Digest interner.
    digests: Interner,
    /// Blob store contents, by digest id.
    blobs: BlobTable,
    /// Repositories by name.
    repos: BTreeMap<String, Repo>,
    /// Manifests read, by digest id.
    manifests: HashMap<DigestId, ManifestState>,
    /// Keys under `blobs/` named `data` whose path is not a valid blob path. They are part of
    /// what the collector walks: distribution's garbage collector stops on them when it
    /// enumerates blobs.
    bad_blob_paths: Vec<String>,
    /// Digests that some link (`_layers`, revision or tag history) younger than the grace
    /// points at: a push in flight may be adopting them, so they are young even when their
    /// blob is old (a mount, or a re-upload of a blob an interrupted push left). A bitset
    /// once it grows: a registry written just before its audit has every link young.
    young_links: DigestSet,
}

impl Graph {
    /// The digest interner: every id of this graph names a digest in it.
    pub fn digests(&self) -> &Interner {
        &self.digests
    }

    /// The blob store's contents.
    pub fn blobs(&self) -> &BlobTable {
        &self.blobs
    }

    /// Repositories by name.
    pub fn repos(&self) -> &BTreeMap<String, Repo> {
        &self.repos
    }

    /// The repository `name`, if the storage has it.
    pub fn repo(&self, name: &str) -> Option<&Repo> {
        self.repos.get(name)
    }

    /// Every manifest read, by digest id.
    pub fn manifests(&self) -> &HashMap<DigestId, ManifestState> {
        &self.manifests
    }

    /// Keys under `blobs/` named `data` whose path is no blob path, as listed.
    pub fn bad_blob_paths(&self) -> &[String] {
        &self.bad_blob_paths
    }

    /// Digests some young link points at (see [`Graph::note_young_link`]).
    pub fn young_links(&self) -> &DigestSet {
        &self.young_links
    }

    /// The id of `digest`, interning it if new.
    pub(crate) fn intern(&mut self, digest: &Digest) -> DigestId {
        self.digests.intern(digest)
    }

    /// Record that a link younger than the grace points at `id`.
    pub(crate) fn note_young_link(&mut self, id: DigestId) {
        self.young_links.insert(id);
    }

    /// Record a key under `blobs/` named `data` that is no blob path.
    pub(crate) fn add_bad_blob_path(&mut self, key: String) {
        self.bad_blob_paths.push(key);
    }

    /// Record a blob found after the listing (a HEAD that confirmed it).
    pub(crate) fn add_blob(&mut self, id: DigestId, info: BlobInfo) {
        self.blobs.insert(id, info);
    }

    /// Record what reading manifest `id` found.
    pub(crate) fn record_manifest(&mut self, id: DigestId, state: ManifestState) {
        self.manifests.insert(id, state);
    }

    /// Record manifest `id` as parsed, interning its references.
    pub(crate) fn record_parsed(&mut self, id: DigestId, manifest: Manifest) {
        let node = ManifestNode::from_manifest(manifest, &mut self.digests);
        self.manifests.insert(id, ManifestState::Parsed(node));
    }

    /// Record what tag `tag` of `repo` points at now (its `current/link` was read). A target
    /// it no longer names is kept among its earlier targets. A tag the graph does not hold is
    /// left alone.
    pub(crate) fn set_tag_target(&mut self, repo: &str, tag: &str, target: TagTarget) {
        let Some(t) = self.repos.get_mut(repo).and_then(|r| r.tags.get_mut(tag)) else {
            return;
        };
        if let TagTarget::Digest(old) = t.target {
            if t.target != target && !t.earlier_targets.contains(&old) {
                t.earlier_targets.push(old);
            }
        }
        t.target = target;
    }

    /// Record that tag `tag` of `repo` named `id` during the run (a history entry written
    /// after the run started).
    pub(crate) fn note_earlier_target(&mut self, repo: &str, tag: &str, id: DigestId) {
        if let Some(t) = self.repos.get_mut(repo).and_then(|r| r.tags.get_mut(tag)) {
            if !t.earlier_targets.contains(&id) {
                t.earlier_targets.push(id);
            }
        }
    }

    /// Record an upload's `startedat` as read (`None`: not a time).
    pub(crate) fn set_upload_started(&mut self, repo: &str, id: &str, at: Option<SystemTime>) {
        if let Some(u) = self.repos.get_mut(repo).and_then(|r| r.uploads.get_mut(id)) {
            u.started_at = at;
        }
    }

    /// Forget an upload whose `startedat` vanished: it finished or was cancelled meanwhile.
    pub(crate) fn remove_upload(&mut self, repo: &str, id: &str) {
        if let Some(r) = self.repos.get_mut(repo) {
            r.uploads.remove(id);
        }
    }

    /// Give back the growth slack of every table once the graph is complete (tables double as
    /// they grow, so up to half of each is empty; at a million keys that is tens of megabytes
    /// held through the analysis for nothing).
    pub fn shrink_to_fit(&mut self) {
        self.digests.shrink_to_fit();
        self.blobs.shrink_to_fit();
        self.manifests.shrink_to_fit();
        for repo in self.repos.values_mut() {
            repo.layer_links.shrink_to_fit();
            repo.revisions.shrink_to_fit();
        }
    }

    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    fn repo_listed(&mut self, name: &str, last_modified: SystemTime) -> &mut Repo {
        let r = self.repo_mut(name);
        r.oldest_key = Some(r.oldest_key.map_or(last_modified, |t| t.min(last_modified)));
        r
    }

    fn repo_mut(&mut self, name: &str) -> &mut Repo {
        self.repos.entry(name.to_string()).or_insert_with(|| Repo {
            name: name.to_string(),
            ..Repo::default()
        })
    }

    /// Record one listed key. `size` is used to check link files without reading them: a
    /// link's content is its digest string, so any other size means a bad link, returned as
    /// `false` so the caller can read it and say what is there.
    pub fn add_key(&mut self, key: &Key, size: u64, last_modified: SystemTime) -> bool {
        let link_ok = |digest: &Digest| size == digest.string_len() as u64;
        match key {
            Key::BlobData { digest } => {
                let id = self.digests.intern(digest);
                self.blobs.insert(
                    id,
                    BlobInfo {
                        size,
                        last_modified,
                    },
                );
                true
            }
            Key::LayerLink { repo, digest } => {
                let id = self.digests.intern(digest);
                let r = self.repo_listed(repo, last_modified);
                r.has_layers_dir = true;
                r.layer_links.insert_good(id);
                link_ok(digest)
            }
            Key::RevisionLink { repo, digest } => {
                let id = self.digests.intern(digest);
                let r = self.repo_listed(repo, last_modified);
                r.has_manifests_dir = true;
                r.revisions.insert_good(id);
                link_ok(digest)
            }
            Key::LegacySignatureLink {
                repo,
                digest,
                signature,
            } => {
                let m = self.digests.intern(digest);
                let s = self.digests.intern(signature);
                let r = self.repo_listed(repo, last_modified);
                r.has_manifests_dir = true;
                r.legacy_signatures.push((m, s));
                true
            }
            Key::TagCurrent { repo, tag } => {
                let r = self.repo_listed(repo, last_modified);
                r.has_manifests_dir = true;
                r.has_tags_dir = true;
                let t = tag_mut(r, tag);
                t.target = TagTarget::Unread;
                t.current_size = Some(size);
                true
            }
            Key::TagIndexEntry { repo, tag, digest } => {
                let id = self.digests.intern(digest);
                let r = self.repo_listed(repo, last_modified);
                r.has_manifests_dir = true;
                r.has_tags_dir = true;
                let t = tag_mut(r, tag);
                if !t.history.contains(&id) {
                    t.history.push(id);
                }
                t.history_modified = t.history_modified.max(Some(last_modified));
                link_ok(digest)
            }
            Key::UploadData { repo, id } => {
                let u = self
                    .repo_listed(repo, last_modified)
                    .uploads
                    .entry(id.clone())
                    .or_default();
                u.data_size = Some(size);
                u.last_modified = u.last_modified.max(Some(last_modified));
                true
            }
            Key::UploadStartedAt { repo, id } => {
                let u = self
                    .repo_listed(repo, last_modified)
                    .uploads
                    .entry(id.clone())
                    .or_default();
                u.has_started_at = true;
                u.last_modified = u.last_modified.max(Some(last_modified));
                true
            }
            Key::UploadHashState { repo, id, .. } => {
                let u = self
                    .repo_listed(repo, last_modified)
                    .uploads
                    .entry(id.clone())
                    .or_default();
                u.last_modified = u.last_modified.max(Some(last_modified));
                true
            }
        }
    }

    /// Whether the graph already records the link or tag `key`, so that a second listing
    /// (the audit's last look) takes only what is new. Keys of other kinds: `false`.
    pub fn records(&self, key: &Key) -> bool {
        let linked = |repo: &str, digest: &Digest, table: fn(&Repo) -> &LinkTable| match (
            self.repos.get(repo),
            self.digests.get(digest),
        ) {
            (Some(r), Some(id)) => table(r).contains_key(&id),
            _ => false,
        };
        let tag = |repo: &str, tag: &str| self.repos.get(repo).and_then(|r| r.tags.get(tag));
        match key {
            Key::LayerLink { repo, digest } => linked(repo, digest, |r| &r.layer_links),
            Key::RevisionLink { repo, digest } => linked(repo, digest, |r| &r.revisions),
            Key::TagCurrent { repo, tag: name } => {
                tag(repo, name).is_some_and(|t| t.current_size.is_some())
            }
            Key::TagIndexEntry {
                repo,
                tag: name,
                digest,
            } => match (tag(repo, name), self.digests.get(digest)) {
                (Some(t), Some(id)) => t.history.contains(&id),
                _ => false,
            },
            _ => false,
        }
    }

    /// Record an empty directory (a listed key ending in `/`). Only the markers that change
    /// how a registry sees a repository matter: `_layers/`, `_manifests/`, `_manifests/tags/`.
    pub fn add_empty_directory(&mut self, key: &str) {
        use crate::layout::RepoDirectory;
        let Some(dir) = crate::layout::parse_directory(key) else {
            return;
        };
        let r = self.repo_mut(dir.repository());
        match dir {
            RepoDirectory::Layers(_) => r.has_layers_dir = true,
            RepoDirectory::Tags(_) => {
                r.has_manifests_dir = true;
                r.has_tags_dir = true;
            }
            RepoDirectory::Manifests(_) => r.has_manifests_dir = true,
        }
    }

    /// Record that the link at `key` holds `content` instead of its path's digest.
    pub fn mark_bad_link(&mut self, key: &Key, content: String) {
        let Some(digest) = key.path_digest() else {
            return;
        };
        let Some(id) = self.digests.get(digest) else {
            return;
        };
        let Some(repo) = key.repository().and_then(|r| self.repos.get_mut(r)) else {
            return;
        };
        match key {
            Key::LayerLink { .. } => {
                repo.layer_links.insert_bad(id, content);
            }
            Key::RevisionLink { .. } => {
                repo.revisions.insert_bad(id, content);
            }
            _ => {}
        }
    }

    /// Record that the link at `key` holds its path's digest after all (read again, it was
    /// being written when first read).
    pub fn mark_good_link(&mut self, key: &Key) {
        let Some(id) = key.path_digest().and_then(|d| self.digests.get(d)) else {
            return;
        };
        let Some(repo) = key.repository().and_then(|r| self.repos.get_mut(r)) else {
            return;
        };
        match key {
            Key::LayerLink { .. } if repo.layer_links.contains_key(&id) => {
                repo.layer_links.insert_good(id)
            }
            Key::RevisionLink { .. } if repo.revisions.contains_key(&id) => {
                repo.revisions.insert_good(id)
            }
            _ => {}
        }
    }

    /// The links found holding something other than their path's digest.
    pub fn bad_links(&self) -> Vec<Key> {
        let mut keys = Vec::new();
        for repo in self.repos.values() {
            for (id, state) in repo.layer_links.iter() {
                if let LinkState::Bad(_) = state {
                    keys.push(Key::LayerLink {
                        repo: repo.name.clone(),
                        digest: self.digests.digest(*id),
                    });
                }
            }
            for (id, state) in repo.revisions.iter() {
                if let LinkState::Bad(_) = state {
                    keys.push(Key::RevisionLink {
                        repo: repo.name.clone(),
                        digest: self.digests.digest(*id),
                    });
                }
            }
        }
        keys
    }

    /// The manifest state of `id`, if it was read.
    pub fn manifest(&self, id: DigestId) -> Option<&ManifestState> {
        self.manifests.get(&id)
    }

    /// The parsed manifest of `id`, if it parsed.
    pub fn parsed(&self, id: DigestId) -> Option<&ManifestNode> {
        match self.manifests.get(&id) {
            Some(ManifestState::Parsed(node)) => Some(node),
            _ => None,
        }
    }

    /// Digests that a closure will want as manifests but that were not read yet: tag targets
    /// and revisions, and the children and subjects of manifests read so far, whose blob
    /// exists. Sorted, without duplicates.
    pub fn manifests_to_read(&self) -> Vec<DigestId> {
        let mut want: HashSet<DigestId> = HashSet::new();
        for repo in self.repos.values() {
            want.extend(repo.revisions.keys().copied());
            want.extend(repo.tags.values().filter_map(|t| match t.target {
                TagTarget::Digest(id) => Some(id),
                _ => None,
            }));
        }
        for state in self.manifests.values() {
            if let ManifestState::Parsed(node) = state {
                want.extend(
                    node.edges
                        .iter()
                        .filter(|e| matches!(e.kind, EdgeKind::Child | EdgeKind::Subject))
                        .map(|e| e.target),
                );
            }
        }
        let mut v: Vec<DigestId> = want
            .into_iter()
            .filter(|id| !self.manifests.contains_key(id) && self.blobs.contains_key(id))
            .collect();
        v.sort_unstable();
        v
    }
}

fn tag_mut<'a>(repo: &'a mut Repo, tag: &str) -> &'a mut Tag {
    repo.tags.entry(tag.to_string()).or_insert_with(|| Tag {
        name: tag.to_string(),
        target: TagTarget::NoCurrent,
        current_size: None,
        history: Vec::new(),
        history_modified: None,
        earlier_targets: Vec::new(),
    })
}
