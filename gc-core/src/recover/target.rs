//! The target state of a recovery (SPEC §5a), and which of its keys the audited storage lacks.
//!
//! Every key a pull of every tag needs: for each manifest of a tag's closure (the tag's target,
//! index children at any depth, referrers by `subject`, the tagged set of SPEC §3) its blob data
//! and its repository's revision link; for each config and layer its blob data and the
//! repository's `_layers` link. Plus the blob data of everything in the live set (the closure
//! of every revision still present). Not the revision links of manifests no tag reaches: those
//! are what `garbage-collect -m` removes on purpose. Foreign layers (descriptors with `urls`)
//! are pulled from elsewhere and are never needed here.
//!
//! A manifest whose blob is gone was never read by the audit; its references come from
//! [`Docs`], the manifests the planner restored from a source (or read again for the sizes
//! their descriptors name). The planner calls [`compute`] again after each round of restores,
//! until nothing new turns up.
//!
//! This is the one file of the recovery planner that reads the audit's [`Graph`].

use crate::digest::Digest;
use crate::graph::{Graph, LinkState, TagTarget};
use crate::layout::Key;
use crate::manifest::{EdgeKind, Manifest};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What a needed key must hold for a source to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A manifest's bytes: read, hashed to the digest, parsed. `size` as an index names it.
    Manifest {
        /// Size named by a referencing descriptor, if any.
        size: Option<u64>,
    },
    /// A config or layer blob of this size (when a descriptor names one).
    Blob {
        /// Size named by a referencing descriptor, if any.
        size: Option<u64>,
    },
    /// A link file: its content must be the digest of its path.
    Link,
}

impl Expect {
    /// Combine what two descriptors of one digest say: a size either names, and a manifest
    /// if either reached it as one (it is then read and hashed).
    fn merge(&mut self, other: Expect) {
        let declared = |e: Expect| match e {
            Expect::Manifest { size } | Expect::Blob { size } => size,
            Expect::Link => None,
        };
        if *self == Expect::Link || other == Expect::Link {
            return;
        }
        let size = declared(*self).or(declared(other));
        let manifest =
            matches!(self, Expect::Manifest { .. }) || matches!(other, Expect::Manifest { .. });
        *self = if manifest {
            Expect::Manifest { size }
        } else {
            Expect::Blob { size }
        };
    }

    /// The size the key must have, when known.
    pub fn size(&self, key: &Key) -> Option<u64> {
        match self {
            Expect::Manifest { size } | Expect::Blob { size } => *size,
            Expect::Link => key.path_digest().map(|d| d.string_len() as u64),
        }
    }
}

/// How the audited storage holds a needed key that must be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Not there.
    Absent,
    /// A link that holds another digest than its path's.
    BadLink,
}

/// A needed key the audited storage lacks.
#[derive(Debug, Clone)]
pub struct MissingKey {
    /// The key.
    pub key: Key,
    /// What it must hold.
    pub expect: Expect,
    /// How it is held now.
    pub held: Held,
    /// Tags (`repo:tag`) whose pull needs it.
    pub tags: BTreeSet<String>,
    /// Revisions (`repo@digest`) whose content needs it, when no tag does.
    pub revisions: BTreeSet<String>,
}

impl MissingKey {
    /// One `repo:tag` (or `repo@digest`) its absence breaks.
    pub fn needed_by(&self) -> &str {
        self.tags
            .iter()
            .next()
            .or_else(|| self.revisions.iter().next())
            .map_or("", String::as_str)
    }
}

/// A reference of a restored manifest, with the size its descriptor names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ref {
    kind: EdgeKind,
    digest: Digest,
    size: Option<u64>,
    foreign: bool,
}

/// Manifests the planner has bytes of beyond the audit's graph: restored from a source, or
/// read again from the audited storage for their descriptors' sizes.
#[derive(Debug, Default)]
pub struct Docs {
    refs: HashMap<Digest, Vec<Ref>>,
}

impl Docs {
    /// Record a parsed manifest.
    pub fn insert(&mut self, digest: Digest, manifest: &Manifest) {
        let refs = manifest
            .references()
            .map(|(kind, d)| Ref {
                kind,
                digest: d.digest.clone(),
                size: d.size,
                foreign: d.foreign,
            })
            .collect();
        self.refs.insert(digest, refs);
    }

    /// Whether `digest` is recorded.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.refs.contains_key(digest)
    }
}

/// The target state's missing part, and what the planner should read to complete it.
#[derive(Debug, Default)]
pub struct Target {
    /// Needed keys the audited storage lacks (or holds wrong), by key.
    pub missing: HashMap<Key, MissingKey>,
    /// Needed manifests whose blob is absent and not in [`Docs`]: restore them to go on.
    pub unread_manifests: BTreeSet<Digest>,
    /// Manifests present in the audited storage to read again for the sizes their
    /// descriptors give missing blobs (the audit's graph keeps references, not sizes).
    pub sizes_wanted: BTreeSet<Digest>,
    /// How many distinct keys the target state holds (present or not).
    pub needed_keys: u64,
    /// Every tag walked (`repo:tag`).
    pub tags: BTreeSet<String>,
}

/// Whether a closure walks from a tag (links needed) or from a revision (blob data only).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    Tag,
    Live,
}

/// Compute the target state of `graph` with the restored manifests `docs`.
pub fn compute(graph: &Graph, docs: &Docs) -> Target {
    let mut c = Computer {
        graph,
        docs,
        target: Target::default(),
        needed: HashSet::new(),
        size_parents: HashMap::new(),
    };
    for (name, repo) in graph.repos() {
        let referrers = c.referrers(repo);
        let mut memo: HashMap<Digest, Vec<Key>> = HashMap::new();
        for tag in repo.tags.values() {
            let TagTarget::Digest(id) = tag.target else {
                continue;
            };
            let who = format!("{name}:{}", tag.name);
            c.target.tags.insert(who.clone());
            let root = graph.digests().digest(id);
            if let Some(keys) = memo.get(&root) {
                for k in keys {
                    if let Some(m) = c.target.missing.get_mut(k) {
                        m.tags.insert(who.clone());
                    }
                }
                continue;
            }
            let mut visited = HashSet::new();
            let mut reached = Vec::new();
            c.walk(
                name,
                root.clone(),
                Walk::Tag,
                &who,
                &referrers,
                &mut visited,
                &mut reached,
            );
            memo.insert(root, reached);
        }
        let mut revisions: Vec<Digest> = repo
            .revisions
            .keys()
            .map(|id| graph.digests().digest(*id))
            .collect();
        revisions.sort_by(|a, b| a.cmp_text(b));
        let mut visited = HashSet::new();
        for rev in revisions {
            let who = format!("{name}@{rev}");
            let mut reached = Vec::new();
            c.walk(
                name,
                rev,
                Walk::Live,
                &who,
                &referrers,
                &mut visited,
                &mut reached,
            );
        }
    }
    let Computer {
        mut target,
        needed,
        size_parents,
        ..
    } = c;
    target.needed_keys = needed.len() as u64;
    for (blob, parents) in size_parents {
        let key = Key::BlobData { digest: blob };
        let unknown = target
            .missing
            .get(&key)
            .is_some_and(|m| m.expect.size(&key).is_none());
        if unknown {
            if let Some(p) = parents.into_iter().min_by(|a, b| a.cmp_text(b)) {
                target.sizes_wanted.insert(p);
            }
        }
    }
    target
}

/// How many keys the audit listed under each of `prefixes` (each a blob fan-out directory
/// `…/blobs/<alg>/<xx>/` or a repository's `…/_layers/<alg>/` or
/// `…/_manifests/revisions/<alg>/`): what a listing of versions there will at least return.
pub fn listed_under(graph: &Graph, prefixes: &HashSet<String>) -> HashMap<String, u64> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    if prefixes.is_empty() {
        return counts;
    }
    let mut count = |key: Key| {
        if let Some(p) = super::sources::batch_prefix(&key.to_path()) {
            if prefixes.contains(p) {
                *counts.entry(p.to_string()).or_default() += 1;
            }
        }
    };
    for id in graph.blobs().keys() {
        count(Key::BlobData {
            digest: graph.digests().digest(id),
        });
    }
    for (name, repo) in graph.repos() {
        for id in repo.layer_links.keys() {
            count(Key::LayerLink {
                repo: name.clone(),
                digest: graph.digests().digest(*id),
            });
        }
        for id in repo.revisions.keys() {
            count(Key::RevisionLink {
                repo: name.clone(),
                digest: graph.digests().digest(*id),
            });
        }
    }
    counts
}

struct Computer<'a> {
    graph: &'a Graph,
    docs: &'a Docs,
    target: Target,
    needed: HashSet<Key>,
    /// Missing blobs of unknown size, with the audited manifests that reference them.
    size_parents: HashMap<Digest, Vec<Digest>>,
}

/// The references of a manifest as the walk sees them.
enum Refs {
    /// With sizes (restored or read again).
    Sized(Vec<Ref>),
    /// From the audit's graph: no sizes.
    Graph(Vec<Ref>),
    /// Not readable: blob absent and not restored.
    Unread,
    /// Read but not usable (unparseable, too large).
    None,
}

impl Computer<'_> {
    fn blob_present(&self, digest: &Digest) -> bool {
        self.graph
            .digests()
            .get(digest)
            .is_some_and(|id| self.graph.blobs().contains_key(&id))
    }

    fn refs(&self, digest: &Digest) -> Refs {
        if let Some(r) = self.docs.refs.get(digest) {
            return Refs::Sized(r.clone());
        }
        let Some(id) = self.graph.digests().get(digest) else {
            return Refs::Unread;
        };
        match self.graph.parsed(id) {
            Some(node) => Refs::Graph(
                node.edges
                    .iter()
                    .map(|e| Ref {
                        kind: e.kind,
                        digest: self.graph.digests().digest(e.target),
                        size: None,
                        foreign: e.foreign,
                    })
                    .collect(),
            ),
            None if self.graph.manifest(id).is_some() => Refs::None,
            None if self.graph.blobs().contains_key(&id) => Refs::None,
            None => Refs::Unread,
        }
    }

    /// Revisions of `repo` by the subject they refer to.
    fn referrers(&self, repo: &crate::graph::Repo) -> HashMap<Digest, Vec<Digest>> {
        let mut out: HashMap<Digest, Vec<Digest>> = HashMap::new();
        for id in repo.revisions.keys() {
            let rev = self.graph.digests().digest(*id);
            let refs = match self.refs(&rev) {
                Refs::Sized(r) | Refs::Graph(r) => r,
                Refs::Unread | Refs::None => continue,
            };
            for r in refs.into_iter().filter(|r| r.kind == EdgeKind::Subject) {
                out.entry(r.digest).or_default().push(rev.clone());
            }
        }
        out
    }

    fn link_state(&self, repo: &str, key: &Key) -> Option<Held> {
        let r = self.graph.repos().get(repo);
        let id = key.path_digest().and_then(|d| self.graph.digests().get(d));
        let state = match (r, id, key) {
            (Some(r), Some(id), Key::LayerLink { .. }) => r.layer_links.get(&id),
            (Some(r), Some(id), Key::RevisionLink { .. }) => r.revisions.get(&id),
            _ => None,
        };
        match state {
            Some(LinkState::Good) => None,
            Some(LinkState::Bad(_)) => Some(Held::BadLink),
            None => Some(Held::Absent),
        }
    }

    fn need(
        &mut self,
        key: Key,
        expect: Expect,
        held: Option<Held>,
        walk: Walk,
        who: &str,
        reached: &mut Vec<Key>,
    ) {
        if !self.needed.contains(&key) {
            self.needed.insert(key.clone());
        }
        let Some(held) = held else {
            return;
        };
        let m = self
            .target
            .missing
            .entry(key.clone())
            .or_insert_with(|| MissingKey {
                key: key.clone(),
                expect,
                held,
                tags: BTreeSet::new(),
                revisions: BTreeSet::new(),
            });
        m.expect.merge(expect);
        match walk {
            Walk::Tag => m.tags.insert(who.to_string()),
            Walk::Live => m.revisions.insert(who.to_string()),
        };
        reached.push(key);
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        repo: &str,
        root: Digest,
        walk: Walk,
        who: &str,
        referrers: &HashMap<Digest, Vec<Digest>>,
        visited: &mut HashSet<(Digest, bool)>,
        reached: &mut Vec<Key>,
    ) {
        // (digest, is_manifest, size named by the descriptor that led here)
        let mut stack: Vec<(Digest, bool, Option<u64>, Option<Digest>)> =
            vec![(root, true, None, None)];
        while let Some((digest, manifest, size, parent)) = stack.pop() {
            if !visited.insert((digest.clone(), manifest)) {
                // Seen already; a size a later descriptor names still counts.
                if let Some(s) = size {
                    let key = Key::BlobData {
                        digest: digest.clone(),
                    };
                    if let Some(m) = self.target.missing.get_mut(&key) {
                        m.expect.merge(if manifest {
                            Expect::Manifest { size: Some(s) }
                        } else {
                            Expect::Blob { size: Some(s) }
                        });
                    }
                }
                continue;
            }
            let present = self.blob_present(&digest);
            let data = Key::BlobData {
                digest: digest.clone(),
            };
            let expect = if manifest {
                Expect::Manifest { size }
            } else {
                Expect::Blob { size }
            };
            self.need(
                data,
                expect,
                (!present).then_some(Held::Absent),
                walk,
                who,
                reached,
            );
            if !present && !manifest && size.is_none() {
                if let Some(p) = parent {
                    self.size_parents.entry(digest.clone()).or_default().push(p);
                }
            }
            if walk == Walk::Tag {
                let link = if manifest {
                    Key::RevisionLink {
                        repo: repo.to_string(),
                        digest: digest.clone(),
                    }
                } else {
                    Key::LayerLink {
                        repo: repo.to_string(),
                        digest: digest.clone(),
                    }
                };
                let held = self.link_state(repo, &link);
                self.need(link, Expect::Link, held, walk, who, reached);
            }
            if !manifest {
                continue;
            }
            let (refs, sized) = match self.refs(&digest) {
                Refs::Sized(r) => (r, true),
                Refs::Graph(r) => (r, false),
                Refs::Unread => {
                    self.target.unread_manifests.insert(digest.clone());
                    continue;
                }
                Refs::None => continue,
            };
            for r in refs {
                if r.foreign && matches!(r.kind, EdgeKind::Config | EdgeKind::Layer) {
                    continue;
                }
                let is_manifest = matches!(r.kind, EdgeKind::Child | EdgeKind::Subject);
                let parent = (!sized).then(|| digest.clone());
                stack.push((r.digest, is_manifest, r.size, parent));
            }
            if walk == Walk::Tag {
                if let Some(rs) = referrers.get(&digest) {
                    for r in rs {
                        stack.push((r.clone(), true, None, None));
                    }
                }
            }
        }
    }
}
