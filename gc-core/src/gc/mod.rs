//! Models of `registry garbage-collect`: what one run of a given version would delete.
//!
//! Each model replays the real collector's walk over the graph, in the real walk order, with
//! its real quirks (SPEC §5, research notes §2), and returns a [`GcPlan`]: the manifest
//! revisions, blobs and `_layers` links it would delete, or the error it would stop on. The
//! models never look at what *should* be kept; [`unsafe_deletions`] compares a plan with the
//! live and tagged sets afterwards.
//!
//! - [`v2_8`]: distribution 2.8.2 / 2.8.3 (`-m` deletes the children of tagged indexes).
//! - [`v3`]: distribution 3.0.0-rc.1 and later (recursive, global mark, `_layers` cleanup).

pub mod needed;
pub mod v2_8;
pub mod v3;
pub mod verdict;

pub use needed::{unsafe_deletions, UnsafeDeletions};
pub use verdict::{assess, GcVerdict, ModelOutcome, PlanStatus};

use crate::digest::Digest;
use crate::graph::{DigestId, Graph, LinkState, ManifestState, Repo};
use crate::mark::DigestSet;
use std::cmp::Ordering;
use std::fmt;

/// A collector version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GcVersion {
    /// distribution 2.8.x.
    V2_8,
    /// distribution 3.0.0-rc.1 and later.
    V3,
}

/// One collector configuration: a version and whether `--delete-untagged` (`-m`) is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GcModel {
    /// The version.
    pub version: GcVersion,
    /// `--delete-untagged`.
    pub remove_untagged: bool,
}

impl GcModel {
    /// Every model, in report order.
    pub const ALL: [GcModel; 4] = [
        GcModel {
            version: GcVersion::V2_8,
            remove_untagged: false,
        },
        GcModel {
            version: GcVersion::V2_8,
            remove_untagged: true,
        },
        GcModel {
            version: GcVersion::V3,
            remove_untagged: false,
        },
        GcModel {
            version: GcVersion::V3,
            remove_untagged: true,
        },
    ];

    /// The model's name in reports: `distribution-2.8`, `distribution-2.8-m`, …
    pub fn name(self) -> &'static str {
        match (self.version, self.remove_untagged) {
            (GcVersion::V2_8, false) => "distribution-2.8",
            (GcVersion::V2_8, true) => "distribution-2.8-m",
            (GcVersion::V3, false) => "distribution-3",
            (GcVersion::V3, true) => "distribution-3-m",
        }
    }

    /// Parse a model name.
    pub fn parse(name: &str) -> Option<GcModel> {
        GcModel::ALL.into_iter().find(|m| m.name() == name)
    }

    /// This model's version with `--delete-untagged` given.
    pub fn with_delete_untagged(self) -> GcModel {
        GcModel {
            remove_untagged: true,
            ..self
        }
    }
}

/// A name that is no [`GcModel`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown GC model {0:?}: expected one of distribution-2.8, distribution-2.8-m, distribution-3, distribution-3-m")]
pub struct UnknownModel(pub String);

impl std::str::FromStr for GcModel {
    type Err = UnknownModel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GcModel::parse(s).ok_or_else(|| UnknownModel(s.to_string()))
    }
}

impl fmt::Display for GcModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of storage driver the collector runs with. It decides the walk order (the order
/// of repositories, and for 3.x which `_layers` links and children are already marked when
/// met) and whether a missing directory is an error (the filesystem driver's `Walk` fails on
/// it; the S3 driver's finds nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// The filesystem driver: children of each directory sorted by name.
    #[default]
    Filesystem,
    /// Object stores (S3): full keys in byte order.
    ObjectStore,
}

/// A manifest revision the collector would delete, with the tag history entries removed
/// with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestDeletion {
    /// Repository (shared by the deletions of one repository: a `-m` plan can hold one per
    /// untagged manifest of the registry).
    pub repo: std::sync::Arc<str>,
    /// Manifest digest.
    pub digest: DigestId,
    /// The tags whose history holds this manifest: those index entries are deleted too.
    pub tag_history: Box<[String]>,
}

/// What a run that completes deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletions {
    /// Revision links (with their tag history entries), in the order the collector deletes them.
    pub manifests: Vec<ManifestDeletion>,
    /// Blobs not marked: a set (a `-m` plan deletes most blobs of a registry that is mostly
    /// untagged, so a bitset, not a list); [`Deletions::blobs_in_digest_order`] lists them.
    /// Boxed, so that a plan that stops early stays small.
    pub blobs: Box<DigestSet>,
    /// `_layers` links (3.x only), grouped by repository in the order the collector visits
    /// them. A plan can hold hundreds of thousands: 4 bytes each, not a name each.
    pub layer_links: Vec<LayerLinkDeletions>,
    /// Size of the mark set (the `N blobs marked` of the summary line).
    pub marked: usize,
    /// Lines the collector prints besides marking and eligibility (3.x's
    /// `manifest tags path of repository <repo> does not exist`).
    pub notes: Vec<String>,
}

/// The `_layers` links a 3.x run deletes in one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerLinkDeletions {
    /// Repository.
    pub repo: String,
    /// Linked digests, in walk order.
    pub digests: Vec<DigestId>,
}

impl Deletions {
    /// Every `_layers` link deletion as (repository, digest), in deletion order.
    pub fn layer_link_pairs(&self) -> impl Iterator<Item = (&str, DigestId)> + '_ {
        self.layer_links
            .iter()
            .flat_map(|r| r.digests.iter().map(move |&d| (r.repo.as_str(), d)))
    }

    /// The blobs deleted, in digest order (the order the collector deletes them in).
    pub fn blobs_in_digest_order(&self, graph: &Graph) -> Vec<DigestId> {
        let mut blobs: Vec<DigestId> = self.blobs.iter().collect();
        blobs.sort_by(|a, b| cmp_digest(graph, *a, *b));
        blobs
    }

    /// How many `_layers` links are deleted.
    pub fn layer_link_count(&self) -> usize {
        self.layer_links.iter().map(|r| r.digests.len()).sum()
    }

    /// Give back what the lists hold beyond their length: a plan lives until the report is
    /// written, and lists grown by doubling (a `-m` plan of a mostly untagged registry records
    /// most of its manifests) or filtered in place keep up to twice their size.
    pub(crate) fn completed(mut self) -> GcPlan {
        self.manifests.shrink_to_fit();
        for repo in &mut self.layer_links {
            repo.digests.shrink_to_fit();
        }
        self.layer_links.shrink_to_fit();
        self.notes.shrink_to_fit();
        GcPlan::Completes(self)
    }
}

/// Why a run stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcAbort {
    /// Repository, if the error is inside one.
    pub repository: Option<String>,
    /// The digest the error names, if any.
    pub digest: Option<String>,
    /// The storage key at fault.
    pub key: String,
    /// A short code: `bad-link`, `unparseable-manifest`, `unsupported-manifest`,
    /// `no-tags-directory`, `bad-blob-path`.
    pub reason: &'static str,
    /// What the collector prints (`failed to garbage collect: …`), as closely as it can be
    /// reproduced: the storage driver's prefixes (`filesystem: `) are left out and Go's JSON
    /// parser messages are paraphrased; `key` says where the fault is.
    pub message: String,
}

/// The outcome of one modelled run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcPlan {
    /// The run completes and deletes this.
    Completes(Deletions),
    /// The run stops with an error. Under `--dry-run` nothing is deleted; a real run deletes
    /// nothing either, except when it stops while enumerating blobs, after the manifests of
    /// `-m` were already removed.
    Aborts(GcAbort),
    /// gc-audit cannot predict this run: the collector would read a manifest gc-audit did not.
    Unpredictable(Unpredictable),
}

/// Why a run cannot be predicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpredictable {
    /// Repository, if known.
    pub repository: Option<String>,
    /// The key gc-audit did not read.
    pub key: String,
    /// Why.
    pub why: String,
}

impl GcPlan {
    /// The deletions, if the run completes.
    pub fn deletions(&self) -> Option<&Deletions> {
        match self {
            GcPlan::Completes(d) => Some(d),
            _ => None,
        }
    }
}

/// Run `model` over `graph`.
pub fn plan(graph: &Graph, model: GcModel, driver: Driver) -> GcPlan {
    match model.version {
        GcVersion::V2_8 => v2_8::plan(graph, model.remove_untagged, driver),
        GcVersion::V3 => v3::plan(graph, model.remove_untagged, driver),
    }
}

/// Every tag of `repo`, in name order: what 3.x records in each manifest deletion (and prints
/// in its dry-run line).
pub fn all_tags<'g>(graph: &'g Graph, repo: &str) -> Vec<&'g str> {
    graph
        .repos()
        .get(repo)
        .map(|r| r.tags.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// The dry-run lines of a completed plan, exactly as the collector prints them, sorted (so a
/// `grep 'eligible for deletion' | LC_ALL=C sort` of a real dry run is comparable line by line).
pub fn eligible_lines(graph: &Graph, model: GcModel, deletions: &Deletions) -> Vec<String> {
    let d = |id: DigestId| graph.digests().digest(id).to_string();
    let mut lines: Vec<String> = deletions
        .blobs
        .iter()
        .map(|b| format!("blob eligible for deletion: {}", d(b)))
        .collect();
    for m in &deletions.manifests {
        lines.push(match model.version {
            GcVersion::V2_8 => format!("manifest eligible for deletion: {}", d(m.digest)),
            // 3.x prints the whole ManifestDel struct with %s: {Name Digest [Tags]}.
            GcVersion::V3 => format!(
                "manifest eligible for deletion: {{{} {} [{}]}}",
                m.repo,
                d(m.digest),
                all_tags(graph, &m.repo).join(" ")
            ),
        });
    }
    for (repo, l) in deletions.layer_link_pairs() {
        lines.push(format!(
            "{repo}: layer link eligible for deletion: {}",
            d(l)
        ));
    }
    lines.sort();
    lines
}

/// Repositories a collector enumerates — those with `marker` (`_layers` for 2.8, `_manifests`
/// for 3.x) — in its walk order.
pub(crate) fn repositories_in_walk_order<'g>(
    graph: &'g Graph,
    has_marker: impl Fn(&Repo) -> bool,
    marker: &str,
    order: Driver,
) -> Vec<&'g Repo> {
    let mut repos: Vec<&Repo> = graph.repos().values().filter(|r| has_marker(r)).collect();
    match order {
        Driver::Filesystem => repos.sort_by(|a, b| {
            let ka = a.name.split('/').chain([marker]);
            let kb = b.name.split('/').chain([marker]);
            ka.cmp(kb)
        }),
        Driver::ObjectStore => repos
            .sort_by(|a, b| format!("{}/{marker}/", a.name).cmp(&format!("{}/{marker}/", b.name))),
    }
    repos
}

/// Which links of a repository to enumerate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    /// `_manifests/revisions/`.
    Revisions,
    /// `_layers/`.
    Layers,
}

/// Enumerate a repository's links as distribution's `linkedBlobStore.Enumerate` does: each
/// link is read (content that is not a digest stops the run: `Err` holds that abort) and
/// statted; links whose blob is missing, or whose content names another digest, are skipped
/// silently. In walk order (by digest).
pub(crate) fn enumerate_links(
    graph: &Graph,
    repo: &Repo,
    which: Links,
) -> Result<Vec<DigestId>, GcPlan> {
    let links = match which {
        Links::Revisions => &repo.revisions,
        Links::Layers => &repo.layer_links,
    };
    let mut ids: Vec<DigestId> = links.keys().copied().collect();
    ids.sort_by(|a, b| cmp_digest(graph, *a, *b));
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(state) = links.get(&id) else {
            continue;
        };
        match state {
            LinkState::Good => {
                if graph.blobs().contains_key(&id) {
                    out.push(id);
                }
            }
            LinkState::Bad(content) if Digest::parse(content).is_err() => {
                let (repo_name, digest) = (repo.name.clone(), graph.digests().digest(id));
                let key = match which {
                    Links::Revisions => crate::layout::Key::RevisionLink {
                        repo: repo_name,
                        digest,
                    },
                    Links::Layers => crate::layout::Key::LayerLink {
                        repo: repo_name,
                        digest,
                    },
                };
                return Err(bad_link_abort(repo, key, ""));
            }
            LinkState::Bad(_) => {}
        }
    }
    Ok(out)
}

/// Order of two digests as their paths sort (algorithm, then hex).
pub(crate) fn cmp_digest(graph: &Graph, a: DigestId, b: DigestId) -> Ordering {
    graph
        .digests()
        .digest(a)
        .cmp_components(&graph.digests().digest(b))
}

/// Why the collector cannot read manifest `id` as a manifest of `version`, if it cannot.
pub(crate) fn unreadable_manifest(
    graph: &Graph,
    id: DigestId,
    version: GcVersion,
) -> Option<Result<String, String>> {
    match graph.manifest(id) {
        None => Some(Ok("blob unknown to registry".to_string())),
        Some(ManifestState::Parsed(node)) => {
            let distribution = match version {
                GcVersion::V2_8 => crate::manifest::go_decode::Distribution::V2_8,
                GcVersion::V3 => crate::manifest::go_decode::Distribution::V3,
            };
            match node.undecodable().and_then(|u| u.get(distribution)) {
                Some(why) => Some(Ok(why.to_string())),
                None => refused_kind(node, version),
            }
        }
        Some(ManifestState::Unparseable(why)) => Some(Ok(why.clone())),
        // Err: gc-audit cannot say what the collector would read.
        Some(ManifestState::ReadFailed) => Some(Err(format!(
            "manifest {} could not be read",
            graph.digests().digest(id)
        ))),
        Some(ManifestState::TooLarge(size)) => Some(Err(format!(
            "manifest {} ({size} bytes) was not read: over the manifest size limit",
            graph.digests().digest(id)
        ))),
    }
}

/// Why the collector `version` refuses a decodable manifest's kind, if it does.
fn refused_kind(
    node: &crate::graph::ManifestNode,
    version: GcVersion,
) -> Option<Result<String, String>> {
    use crate::manifest::ManifestKind as K;
    match (&node.kind, version) {
        (K::Unknown(mt), _) => Some(Ok(format!("unrecognized manifest content type {mt}"))),
        (K::OciArtifact, _) => Some(Ok(format!(
            "unrecognized manifest content type {}",
            crate::manifest::MT_OCI_ARTIFACT
        ))),
        (K::Schema1 { .. }, GcVersion::V3) => {
            Some(Ok("unrecognized manifest schema version 1".to_string()))
        }
        _ => None,
    }
}

/// The abort of a marked manifest the collector cannot read, or why gc-audit cannot tell.
pub(crate) fn manifest_abort(
    graph: &Graph,
    repo: &Repo,
    id: DigestId,
    version: GcVersion,
) -> Option<GcPlan> {
    let why = unreadable_manifest(graph, id, version)?;
    let digest = graph.digests().digest(id).to_string();
    Some(match why {
        Err(why) => GcPlan::Unpredictable(Unpredictable {
            repository: Some(repo.name.clone()),
            key: crate::layout::Key::BlobData {
                digest: graph.digests().digest(id),
            }
            .to_path(),
            why,
        }),
        Ok(why) => GcPlan::Aborts(GcAbort {
            repository: Some(repo.name.clone()),
            digest: Some(digest.clone()),
            key: crate::layout::Key::BlobData {
                digest: graph.digests().digest(id),
            }
            .to_path(),
            reason: if why.starts_with("unrecognized") {
                "unsupported-manifest"
            } else {
                "unparseable-manifest"
            },
            // A panic (distribution 2.8 and 3.x on an index without a media type that does not
            // decode, see `manifest::go_decode`) ends the process with its own message.
            message: if why.starts_with("panic: ") {
                why
            } else {
                format!("failed to garbage collect: failed to mark: failed to retrieve manifest for digest {digest}: {why}")
            },
        }),
    })
}

/// The abort of a link whose content is not a digest; `context` is what the collector was
/// doing (`failed to retrieve tags for digest …: `), empty when it was enumerating links.
pub(crate) fn bad_link_abort(repo: &Repo, key: crate::layout::Key, context: &str) -> GcPlan {
    let digest = key.path_digest().map(ToString::to_string);
    GcPlan::Aborts(GcAbort {
        repository: Some(repo.name.clone()),
        digest,
        key: key.to_path(),
        reason: "bad-link",
        message: format!(
            "failed to garbage collect: failed to mark: {context}invalid checksum digest format"
        ),
    })
}

/// The abort of the blob enumeration on a path that is not a blob path, if there is one.
pub(crate) fn blob_enumeration_abort(graph: &Graph) -> Option<GcPlan> {
    let mut bad = graph.bad_blob_paths().to_vec();
    bad.sort();
    let key = bad.into_iter().next()?;
    Some(GcPlan::Aborts(GcAbort {
        repository: None,
        digest: None,
        message: format!(
            "failed to garbage collect: error enumerating blobs: invalid digest in path /{key}"
        ),
        key,
        reason: "bad-blob-path",
    }))
}

/// Blobs outside `marked`, sorted by digest.
pub(crate) fn unmarked_blobs(graph: &Graph, marked: &DigestSet) -> Box<DigestSet> {
    let mut blobs = DigestSet::with_capacity(graph.digests().len());
    for b in graph.blobs().keys().filter(|b| !marked.contains(*b)) {
        blobs.insert(b);
    }
    blobs.freeze();
    Box::new(blobs)
}

/// The deletion of revision `id` in `repo`, with the tag history entries that hold it.
pub(crate) fn manifest_deletion(
    repo: &Repo,
    name: &std::sync::Arc<str>,
    id: DigestId,
) -> ManifestDeletion {
    let tag_history = repo
        .tags
        .values()
        .filter(|t| t.history.contains(&id))
        .map(|t| t.name.clone())
        .collect();
    ManifestDeletion {
        repo: name.clone(),
        digest: id,
        tag_history,
    }
}

/// The tags whose `current/link` is `id`; `Err` with the abort when a tag's link content is not
/// a digest (the collector's tag lookup reads every tag of the repository).
pub(crate) fn tags_pointing_at(
    graph: &Graph,
    repo: &Repo,
    id: DigestId,
) -> Result<Vec<String>, GcPlan> {
    use crate::graph::TagTarget;
    let digest = graph.digests().digest(id);
    let mut tags = Vec::new();
    for tag in repo.tags.values() {
        match &tag.target {
            TagTarget::Digest(t) if *t == id => tags.push(tag.name.clone()),
            TagTarget::BadLink(_) => {
                let key = crate::layout::Key::TagCurrent {
                    repo: repo.name.clone(),
                    tag: tag.name.clone(),
                };
                let context = format!("failed to retrieve tags for digest {digest}: ");
                return Err(bad_link_abort(repo, key, &context));
            }
            _ => {}
        }
    }
    Ok(tags)
}
