//! distribution 2.8.2 / 2.8.3 `garbage-collect` (`registry/storage/garbagecollect.go`).
//!
//! Mark: for each repository that has `_layers/`, in walk order, for each revision whose link
//! reads and whose blob exists: with `-m`, a revision that no tag's `current/link` names is
//! recorded for deletion and **not marked**; otherwise the manifest is marked, read, and every
//! `References()` digest is marked, without recursion (an index marks its children's manifest
//! blobs only, not their configs and layers; `subject` is not a reference). Sweep: the recorded
//! revisions (with their tag history entries) are deleted, then every blob outside the mark
//! set. `_layers` links are never deleted. The run stops on a link that is not a digest, a
//! marked manifest it cannot read, under `-m` a repository with revisions but no `tags/`
//! directory, and a blob path that is not a digest.

use super::{
    blob_enumeration_abort, enumerate_links, manifest_abort, manifest_deletion,
    repositories_in_walk_order, tags_pointing_at, unmarked_blobs, Deletions, Driver, GcAbort,
    GcPlan, GcVersion, Links,
};
use crate::graph::Graph;
use crate::manifest::EdgeKind;
use crate::mark::DigestSet;

/// Model one 2.8 run.
pub fn plan(graph: &Graph, remove_untagged: bool, driver: Driver) -> GcPlan {
    let mut marked = DigestSet::with_capacity(graph.digests().len());
    let mut deletions = Deletions::default();
    for repo in repositories_in_walk_order(graph, |r| r.has_layers_dir, "_layers", driver) {
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
                        return GcPlan::Aborts(GcAbort {
                            repository: Some(repo.name.clone()),
                            digest: Some(graph.digests().digest(id).to_string()),
                            key: crate::layout::tags_prefix(&repo.name),
                            reason: "no-tags-directory",
                            message: format!(
                                "failed to garbage collect: failed to mark: failed to retrieve tags unknown repository name={}",
                                repo.name
                            ),
                        });
                    }
                    deletions.manifests.push(manifest_deletion(repo, &name, id));
                    continue;
                }
            }
            marked.insert(id);
            if let Some(stop) = manifest_abort(graph, repo, id, GcVersion::V2_8) {
                return stop;
            }
            if let Some(node) = graph.parsed(id) {
                for edge in node.edges.iter().filter(|e| e.kind != EdgeKind::Subject) {
                    marked.insert(edge.target);
                }
            }
        }
    }
    if let Some(stop) = blob_enumeration_abort(graph) {
        return stop;
    }
    deletions.blobs = unmarked_blobs(graph, &marked);
    deletions.marked = marked.len();
    deletions.completed()
}
