//! One repository's checks that follow pulls: missing content, dangling index children,
//! broken tags and its usage row. A pull is per repository, so each is checked on its own.

use super::unparseable;
use crate::graph::{DigestId, Edge, Graph, LinkState, ManifestState, Repo, Tag, TagTarget};
use crate::manifest::EdgeKind;
use crate::mark::{close_over, DigestSet, Follow, RepoMarks};
use crate::report::{
    BrokenRow, DanglingRow, MissingRow, PullFailure, PullProblem, PullProblems, RepoRow,
};
use std::collections::HashMap;

/// Why a reference cannot be served from a repository.
fn reference_problem(
    graph: &Graph,
    repo: &Repo,
    kind: EdgeKind,
    target: DigestId,
) -> Option<PullFailure> {
    if !graph.blobs().contains_key(&target) {
        return Some(PullFailure::BlobMissing);
    }
    let links = match kind {
        EdgeKind::Config | EdgeKind::Layer => &repo.layer_links,
        EdgeKind::Child | EdgeKind::Subject => &repo.revisions,
    };
    match links.get(&target) {
        Some(LinkState::Good) => None,
        Some(LinkState::Bad(_)) => Some(PullFailure::BadLink),
        None => Some(PullFailure::NotLinked),
    }
}

fn edge_problem(graph: &Graph, repo: &Repo, edge: &Edge) -> Option<PullFailure> {
    if edge.foreign && !graph.blobs().contains_key(&edge.target) {
        return None;
    }
    reference_problem(graph, repo, edge.kind, edge.target)
}

pub(super) struct RepoCheck<'a> {
    pub(super) graph: &'a Graph,
    pub(super) repo: &'a Repo,
    pub(super) marks: &'a RepoMarks,
    /// What the repository reaches (live ∪ tagged), computed once.
    pub(super) reach: DigestSet,
    /// Of those, the manifests read, ascending.
    pub(super) reached_manifests: Vec<DigestId>,
    /// Each tag with a digest target, with its pull closure, computed once.
    pub(super) tag_closures: Vec<(&'a Tag, DigestId, DigestSet)>,
    /// Manifest → tags whose pull closure contains it.
    pub(super) tags_of: HashMap<DigestId, Vec<&'a str>>,
}

impl<'a> RepoCheck<'a> {
    pub(super) fn new(graph: &'a Graph, repo: &'a Repo, marks: &'a RepoMarks) -> Self {
        let mut tag_closures = Vec::new();
        let mut tags_of: HashMap<DigestId, Vec<&str>> = HashMap::new();
        for tag in repo.tags.values() {
            if let TagTarget::Digest(t) = tag.target {
                let mut set = DigestSet::default();
                close_over(graph, [t], Follow::Pull, &mut set);
                for m in set.iter().filter(|m| graph.manifests().contains_key(m)) {
                    tags_of.entry(m).or_default().push(&tag.name);
                }
                tag_closures.push((tag, t, set));
            }
        }
        let mut reach = marks.live.clone();
        reach.union_with(&marks.tagged);
        let reached_manifests = reach
            .iter()
            .filter(|m| graph.manifests().contains_key(m))
            .collect();
        RepoCheck {
            graph,
            repo,
            marks,
            reach,
            reached_manifests,
            tag_closures,
            tags_of,
        }
    }

    pub(super) fn d(&self, id: DigestId) -> String {
        self.graph.digests().digest(id).to_string()
    }

    fn tags(&self, m: DigestId) -> String {
        self.tags_of
            .get(&m)
            .map(|t| t.join(" "))
            .unwrap_or_default()
    }

    pub(super) fn missing(&self, out: &mut Vec<MissingRow>) {
        let name = &self.repo.name;
        let row = |m: DigestId, kind: &str, digest: String, reason: &str| MissingRow {
            repository: name.clone(),
            manifest_digest: self.d(m),
            tags: self.tags(m),
            kind: kind.to_string(),
            digest,
            reason: reason.to_string(),
        };
        for (&r, state) in self.repo.revisions.iter() {
            if !self.graph.blobs().contains_key(&r) {
                out.push(row(r, "revision", self.d(r), "blob-missing"));
            } else if let LinkState::Bad(_) = state {
                out.push(row(r, "revision", self.d(r), "bad-link"));
            }
        }
        for tag in self.repo.tags.values() {
            match &tag.target {
                TagTarget::Digest(t) => {
                    if let Some(reason) =
                        reference_problem(self.graph, self.repo, EdgeKind::Child, *t)
                    {
                        let mut r = row(*t, "tag-target", self.d(*t), reason.as_str());
                        r.tags = tag.name.clone();
                        out.push(r);
                    }
                }
                TagTarget::BadLink(_) => out.push(MissingRow {
                    repository: name.clone(),
                    manifest_digest: String::new(),
                    tags: tag.name.clone(),
                    kind: "tag-target".to_string(),
                    digest: String::new(),
                    reason: "bad-link".to_string(),
                }),
                TagTarget::Unread | TagTarget::NoCurrent => {}
            }
        }
        for &m in &self.reached_manifests {
            if let Some(node) = self.graph.parsed(m) {
                for edge in &node.edges {
                    if let Some(reason) = edge_problem(self.graph, self.repo, edge) {
                        out.push(row(
                            m,
                            edge.kind.report_name(),
                            self.d(edge.target),
                            reason.as_str(),
                        ));
                    }
                }
            }
        }
    }

    pub(super) fn dangling(&self, out: &mut Vec<DanglingRow>) {
        for &index in &self.reached_manifests {
            let Some(node) = self.graph.parsed(index) else {
                continue;
            };
            if !node.kind.is_index() {
                continue;
            }
            for (child, platform) in node
                .edges_with_platforms()
                .filter(|(e, _)| e.kind == EdgeKind::Child)
            {
                let reason =
                    match reference_problem(self.graph, self.repo, EdgeKind::Child, child.target) {
                        Some(PullFailure::BlobMissing) => "blob-missing",
                        Some(_) => "not-linked",
                        None => match self.graph.manifest(child.target) {
                            Some(ManifestState::Parsed(n)) if unparseable(n) => "unparseable",
                            Some(ManifestState::Parsed(_)) | None => continue,
                            Some(_) => "unparseable",
                        },
                    };
                out.push(DanglingRow {
                    repository: self.repo.name.clone(),
                    index_digest: self.d(index),
                    tags: self.tags(index),
                    child_digest: self.d(child.target),
                    platform: platform.unwrap_or("").to_string(),
                    reason: reason.to_string(),
                });
            }
        }
    }

    pub(super) fn broken(&self, out: &mut Vec<BrokenRow>) {
        for tag in self.repo.tags.values() {
            if let TagTarget::BadLink(content) = &tag.target {
                out.push(BrokenRow {
                    repository: self.repo.name.clone(),
                    tag: tag.name.clone(),
                    digest: String::new(),
                    problem: PullProblems::new([PullProblem::CurrentLinkNotDigest(
                        content.clone(),
                    )]),
                });
            }
        }
        for (tag, target, closure) in &self.tag_closures {
            let target = *target;
            let problem = |what, id: DigestId, platform: Option<&str>, why| PullProblem::Content {
                what,
                digest: self.graph.digests().digest(id),
                platform: platform.map(Into::into),
                why,
            };
            let mut problems: Vec<PullProblem> = Vec::new();
            if let Some(why) = reference_problem(self.graph, self.repo, EdgeKind::Child, target) {
                problems.push(problem("manifest", target, None, why));
            }
            for m in closure.iter() {
                match self.graph.manifest(m) {
                    Some(ManifestState::Parsed(node)) => {
                        if unparseable(node) {
                            problems.push(problem("manifest", m, None, PullFailure::Unparseable));
                        }
                        for (edge, platform) in node
                            .edges_with_platforms()
                            .filter(|(e, _)| e.kind != EdgeKind::Subject)
                        {
                            if let Some(why) = edge_problem(self.graph, self.repo, edge) {
                                problems.push(problem(
                                    edge.kind.report_name(),
                                    edge.target,
                                    platform,
                                    why,
                                ));
                            }
                        }
                    }
                    Some(
                        ManifestState::Unparseable(_)
                        | ManifestState::TooLarge(_)
                        | ManifestState::ReadFailed,
                    ) => {
                        problems.push(problem("manifest", m, None, PullFailure::Unparseable));
                    }
                    None => {}
                }
            }
            if !problems.is_empty() {
                out.push(BrokenRow {
                    repository: self.repo.name.clone(),
                    tag: tag.name.clone(),
                    digest: self.d(target),
                    problem: PullProblems::new(problems),
                });
            }
        }
    }

    pub(super) fn repo_row(&self, refcount: &[u8]) -> RepoRow {
        let (mut bytes, mut exclusive) = (0, 0);
        for id in self.reach.iter() {
            if let Some(b) = self.graph.blobs().get(&id) {
                bytes += b.size;
                if refcount[id.index()] == 1 {
                    exclusive += b.size;
                }
            }
        }
        RepoRow {
            repository: self.repo.name.clone(),
            tags: self
                .repo
                .tags
                .values()
                .filter(|t| matches!(t.target, TagTarget::Digest(_) | TagTarget::BadLink(_)))
                .count() as u64,
            manifests: self.repo.revisions.len() as u64,
            untagged_manifests: self
                .repo
                .revisions
                .keys()
                .filter(|r| !self.marks.tagged.contains(**r))
                .count() as u64,
            bytes,
            exclusive_bytes: exclusive,
        }
    }
}
