//! The mark: closures over the reference graph (SPEC §3), pure and cycle-safe.
//!
//! A closure starts from root manifests and follows config, layer, child and subject edges;
//! it descends into every digest that was read as a manifest, whatever edge led there, so an
//! index child whose revision link is gone is still followed (the index still references it).
//! A visited set checked before descending makes cycles (`subject` loops, self-referencing
//! indexes) harmless. The tagged closure adds referrers: a revision of the same repository
//! whose `subject` is in the set joins it, with its own closure, until nothing changes.

pub use crate::digest_set::DigestSet;
use crate::graph::{DigestId, Graph, ManifestState, Repo, TagTarget};
use crate::manifest::EdgeKind;
use std::collections::{HashMap, HashSet};

/// Which edges a closure follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Config, layers, children and subject (SPEC §3 reachability).
    All,
    /// Config, layers and children: what a pull of an image needs.
    Pull,
}

/// Add the closure of `roots` to `set`.
pub fn close_over(
    graph: &Graph,
    roots: impl IntoIterator<Item = DigestId>,
    follow: Follow,
    set: &mut DigestSet,
) {
    let mut stack: Vec<DigestId> = Vec::new();
    for root in roots {
        if set.insert(root) {
            stack.push(root);
        }
    }
    while let Some(id) = stack.pop() {
        let Some(ManifestState::Parsed(node)) = graph.manifests().get(&id) else {
            continue;
        };
        for edge in &node.edges {
            if follow == Follow::Pull && edge.kind == EdgeKind::Subject {
                continue;
            }
            if set.insert(edge.target) {
                stack.push(edge.target);
            }
        }
    }
}

/// The closure of one repository.
#[derive(Debug, Clone)]
pub struct RepoMarks {
    /// Closure from every revision of the repository.
    pub live: DigestSet,
    /// Closure from the tags' current targets plus referrers of the set.
    pub tagged: DigestSet,
}

/// The tag targets of a repository.
pub fn tag_targets(repo: &Repo) -> impl Iterator<Item = DigestId> + '_ {
    repo.tags.values().filter_map(|t| match t.target {
        TagTarget::Digest(id) => Some(id),
        _ => None,
    })
}

/// Compute the live and tagged closures of `repo`.
pub fn mark_repo(graph: &Graph, repo: &Repo) -> RepoMarks {
    let cap = graph.digests().len();
    let mut live = DigestSet::with_capacity(cap);
    let mut revisions: Vec<DigestId> = repo.revisions.keys().copied().collect();
    revisions.sort_unstable();
    close_over(graph, revisions.iter().copied(), Follow::All, &mut live);

    // Referrers of this repository, by subject.
    let mut referrers: HashMap<DigestId, Vec<DigestId>> = HashMap::new();
    for &r in &revisions {
        if let Some(node) = graph.parsed(r) {
            for e in node.edges.iter().filter(|e| e.kind == EdgeKind::Subject) {
                referrers.entry(e.target).or_default().push(r);
            }
        }
    }
    let mut tagged = DigestSet::with_capacity(cap);
    close_over(graph, tag_targets(repo), Follow::All, &mut tagged);
    if !referrers.is_empty() {
        let mut added: HashSet<DigestId> = HashSet::new();
        loop {
            let new: Vec<DigestId> = referrers
                .iter()
                .filter(|(subject, _)| tagged.contains(**subject))
                .flat_map(|(_, rs)| rs.iter().copied())
                .filter(|r| !tagged.contains(*r) && added.insert(*r))
                .collect();
            if new.is_empty() {
                break;
            }
            close_over(graph, new, Follow::All, &mut tagged);
        }
    }
    RepoMarks { live, tagged }
}

/// The global closures, for the GC models and embedders.
#[derive(Debug, Clone)]
pub struct GlobalMarks {
    /// Union of every repository's live closure.
    pub live: DigestSet,
    /// Union of every repository's tagged closure.
    pub tagged: DigestSet,
    /// Per repository, in name order.
    pub repos: Vec<(String, RepoMarks)>,
}

/// Compute every repository's closures and their unions.
pub fn mark_all(graph: &Graph) -> GlobalMarks {
    let cap = graph.digests().len();
    let mut live = DigestSet::with_capacity(cap);
    let mut tagged = DigestSet::with_capacity(cap);
    let mut repos = Vec::with_capacity(graph.repos().len());
    for (name, repo) in graph.repos() {
        let mut marks = mark_repo(graph, repo);
        live.union_with(&marks.live);
        tagged.union_with(&marks.tagged);
        // Kept through the whole analysis, one pair per repository: compact them.
        marks.live.freeze();
        marks.tagged.freeze();
        repos.push((name.clone(), marks));
    }
    GlobalMarks {
        live,
        tagged,
        repos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::graph::{Edge, ManifestNode, Tag};
    use crate::manifest::ManifestKind;

    fn node(edges: Vec<(EdgeKind, DigestId)>) -> ManifestState {
        ManifestState::Parsed(ManifestNode::new(
            ManifestKind::OciManifest,
            edges
                .into_iter()
                .map(|(kind, target)| Edge {
                    kind,
                    target,
                    foreign: false,
                    attestation: false,
                })
                .collect(),
        ))
    }

    fn ids(g: &mut Graph, n: u8) -> Vec<DigestId> {
        (0..n).map(|i| g.intern(&Digest::sha256_of(&[i]))).collect()
    }

    #[test]
    fn subject_cycles_and_self_loops_terminate() {
        let mut g = Graph::new();
        let d = ids(&mut g, 3);
        g.record_manifest(d[0], node(vec![(EdgeKind::Subject, d[1])]));
        g.record_manifest(
            d[1],
            node(vec![(EdgeKind::Subject, d[0]), (EdgeKind::Child, d[1])]),
        );
        let mut set = DigestSet::default();
        close_over(&g, [d[0]], Follow::All, &mut set);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![d[0], d[1]]);
        let mut pull = DigestSet::default();
        close_over(&g, [d[0]], Follow::Pull, &mut pull);
        assert_eq!(pull.iter().collect::<Vec<_>>(), vec![d[0]]);
    }

    #[test]
    fn referrers_join_the_tagged_set_to_a_fixpoint() {
        let mut g = Graph::new();
        let d = ids(&mut g, 5);
        // d0 image (layer d4); d1 signs d0; d2 signs d1; d3 unrelated untagged.
        g.record_manifest(d[0], node(vec![(EdgeKind::Layer, d[4])]));
        g.record_manifest(d[1], node(vec![(EdgeKind::Subject, d[0])]));
        g.record_manifest(d[2], node(vec![(EdgeKind::Subject, d[1])]));
        g.record_manifest(d[3], node(vec![]));
        let mut repo = Repo::default();
        for &r in &d[..4] {
            repo.revisions.insert_good(r);
        }
        repo.tags.insert(
            "t".into(),
            Tag {
                name: "t".into(),
                target: TagTarget::Digest(d[0]),
                current_size: None,
                history: vec![],
                history_modified: None,
                earlier_targets: vec![],
            },
        );
        let marks = mark_repo(&g, &repo);
        assert_eq!(
            marks.tagged.iter().collect::<Vec<_>>(),
            vec![d[0], d[1], d[2], d[4]]
        );
        assert_eq!(marks.live.len(), 5);
    }
}
