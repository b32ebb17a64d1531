//! distribution 3.x `garbage-collect` (3.0.0-rc.1 and later; `registry/storage/garbagecollect.go`).
//!
//! Mark, per repository that has `_manifests/`, in walk order: for each revision, with `-m`,
//! an untagged revision is recorded for deletion (or, when the repository has no `tags/`
//! directory at all, skipped entirely: neither marked nor recorded); otherwise the manifest is
//! marked and `markManifestReferences` marks each reference **not yet marked** and recurses
//! into it when it is a manifest of the same repository (revision link and blob present).
//! A reference already marked — anywhere, by an earlier repository too — is not visited again,
//! so the global mark set and the walk order decide what is reached. Then the repository's
//! `_layers` links whose digest is not marked *so far* are recorded. After all repositories,
//! recorded manifests that ended up marked are dropped. Sweep: recorded revisions, unmarked
//! blobs, recorded `_layers` links. The run stops on a link that is not a digest, a marked
//! manifest it cannot read (schema1 included), and a blob path that is not a digest.

use super::{
    blob_enumeration_abort, enumerate_links, manifest_abort, manifest_deletion,
    repositories_in_walk_order, tags_pointing_at, unmarked_blobs, Deletions, Driver, GcPlan,
    GcVersion, Links,
};
use crate::graph::{DigestId, Graph, LinkState, Repo};
use crate::manifest::EdgeKind;
use crate::mark::DigestSet;

/// Model one 3.x run.
pub fn plan(graph: &Graph, remove_untagged: bool, driver: Driver) -> GcPlan {
    let mut marked = DigestSet::with_capacity(graph.digests().len());
    let mut deletions = Deletions::default();
    let mut recorded = Vec::new();
    for repo in repositories_in_walk_order(graph, |r| r.has_manifests_dir, "_manifests", driver) {
        let name: std::sync::Arc<str> = repo.name.as_str().into();
        let revisions = match enumerate_links(graph, repo, Links::Revisions) {
            Ok(d) => d,
            Err(stop) => return stop,
        };
        for id in revisions {
            if remove_untagged {
                let tags = match tags_pointing_at(graph, repo, id) {
                    Ok(tags) => tags,
                    Err(abort) => return abort,
                };
                if tags.is_empty() {
                    if !repo.has_tags_dir {
                        deletions.notes.push(format!(
                            "manifest tags path of repository {} does not exist",
                            repo.name
                        ));
                        continue;
                    }
                    recorded.push(manifest_deletion(repo, &name, id));
                    continue;
                }
            }
            marked.insert(id);
            if let Some(stop) = mark_references(graph, repo, id, &mut marked) {
                return stop;
            }
        }
        if !repo.has_layers_dir && driver == Driver::Filesystem {
            // The filesystem driver's Walk fails on a missing directory, and 3.x does not
            // tolerate that error for `_layers` as it does for `_manifests/revisions`.
            let key = crate::layout::layers_directory(&repo.name);
            return GcPlan::Aborts(super::GcAbort {
                repository: Some(repo.name.clone()),
                digest: None,
                message: format!(
                    "failed to garbage collect: failed to mark: Path not found: /{key}"
                ),
                key,
                reason: "no-layers-directory",
            });
        }
        let layers = match enumerate_links(graph, repo, Links::Layers) {
            Ok(d) => d,
            Err(stop) => return stop,
        };
        let unused: Vec<DigestId> = layers
            .into_iter()
            .filter(|l| !marked.contains(*l))
            .collect();
        if !unused.is_empty() {
            deletions.layer_links.push(super::LayerLinkDeletions {
                repo: repo.name.clone(),
                digests: unused,
            });
        }
    }
    deletions.manifests = recorded
        .into_iter()
        .filter(|m| !marked.contains(m.digest))
        .collect();
    if let Some(stop) = blob_enumeration_abort(graph) {
        return stop;
    }
    deletions.blobs = unmarked_blobs(graph, &marked);
    deletions.marked = marked.len();
    deletions.completed()
}

/// `markManifestReferences`: depth-first, in document order, visiting only references that
/// were not marked before. Iterative, so a hostile chain of nested indexes cannot overflow the
/// stack.
fn mark_references(
    graph: &Graph,
    repo: &Repo,
    root: DigestId,
    marked: &mut DigestSet,
) -> Option<GcPlan> {
    if let Some(stop) = manifest_abort(graph, repo, root, GcVersion::V3) {
        return Some(stop);
    }
    // (manifest, index of the next edge to visit)
    let mut stack: Vec<(DigestId, usize)> = vec![(root, 0)];
    while let Some((id, next)) = stack.pop() {
        let Some(node) = graph.parsed(id) else {
            continue;
        };
        let Some(edge) = node.edges.get(next) else {
            continue;
        };
        stack.push((id, next + 1));
        if edge.kind == EdgeKind::Subject || !marked.insert(edge.target) {
            continue;
        }
        if exists_in_repo(graph, repo, edge.target) {
            if let Some(stop) = manifest_abort(graph, repo, edge.target, GcVersion::V3) {
                return Some(stop);
            }
            stack.push((edge.target, 0));
        }
    }
    None
}

/// `manifestService.Exists`: the repository has a revision link for the digest whose target
/// blob exists.
fn exists_in_repo(graph: &Graph, repo: &Repo, id: DigestId) -> bool {
    match repo.revisions.get(&id) {
        Some(LinkState::Good) => graph.blobs().contains_key(&id),
        Some(LinkState::Bad(content)) => crate::digest::Digest::parse(content)
            .ok()
            .and_then(|d| graph.digests().get(&d))
            .is_some_and(|target| graph.blobs().contains_key(&target)),
        None => false,
    }
}
