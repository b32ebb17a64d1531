//! Which planned deletions remove needed content, and who needs it (`gc-unsafe.csv`).
//!
//! Needed means: in the tagged set for `-m` models (an operator who asks for untagged content
//! to go still needs every tag to pull, with its referrers), in the live set for the others
//! (everything pullable by digest). Each unsafe deletion names one thing that breaks: the
//! first tag, in name order, whose image reaches the content (`repo:tag`, plus the platform of
//! the index child it is reached through), else the first revision (`repo@digest`).

use super::{GcModel, GcPlan, Unpredictable};
use crate::analysis::GlobalMarks;
use crate::graph::{DigestId, Graph, ManifestState, Repo, TagTarget};
use crate::manifest::EdgeKind;
use crate::mark::{DigestSet, RepoMarks};
use crate::report::GcUnsafeRow;
use std::collections::HashMap;

/// Who needs a digest.
#[derive(Debug, Clone)]
struct Needer {
    /// `repo:tag` or `repo@digest`.
    label: String,
    /// Platform of the index child the digest is reached through.
    platform: Option<Box<str>>,
    /// What the digest is to its needer: `config`, `layer`, `manifest`, `index`.
    kind: &'static str,
}

impl Needer {
    fn needed_by(&self) -> String {
        match &self.platform {
            Some(p) => format!("{} {p}", self.label),
            None => self.label.clone(),
        }
    }
}

fn manifest_kind(graph: &Graph, id: DigestId) -> &'static str {
    match graph.manifest(id) {
        Some(ManifestState::Parsed(n)) if n.kind.is_index() => "index",
        _ => "manifest",
    }
}

/// First needer of every digest a repository needs.
fn attribute(
    graph: &Graph,
    repo: &Repo,
    marks: &RepoMarks,
    tagged_only: bool,
) -> HashMap<DigestId, Needer> {
    let mut by: HashMap<DigestId, Needer> = HashMap::new();
    let mut roots: Vec<(String, DigestId)> = repo
        .tags
        .values()
        .filter_map(|t| match t.target {
            TagTarget::Digest(id) => Some((format!("{}:{}", repo.name, t.name), id)),
            _ => None,
        })
        .collect();
    let mut revisions: Vec<DigestId> = repo.revisions.keys().copied().collect();
    revisions.sort_by(|a, b| super::cmp_digest(graph, *a, *b));
    for r in &revisions {
        if marks.tagged.contains(*r) || !tagged_only {
            roots.push((format!("{}@{}", repo.name, graph.digests.digest(*r)), *r));
        }
    }
    for (label, root) in roots {
        if by.contains_key(&root) {
            continue;
        }
        let mut stack = vec![(root, None::<Box<str>>, manifest_kind(graph, root))];
        while let Some((id, platform, kind)) = stack.pop() {
            if by.contains_key(&id) {
                continue;
            }
            by.insert(
                id,
                Needer {
                    label: label.clone(),
                    platform: platform.clone(),
                    kind,
                },
            );
            if let Some(node) = graph.parsed(id) {
                for e in node.edges.iter().rev() {
                    let (platform, kind) = match e.kind {
                        EdgeKind::Config => (platform.clone(), "config"),
                        EdgeKind::Layer => (platform.clone(), "layer"),
                        EdgeKind::Child => (
                            e.platform.clone().or_else(|| platform.clone()),
                            manifest_kind(graph, e.target),
                        ),
                        EdgeKind::Subject => (platform.clone(), manifest_kind(graph, e.target)),
                    };
                    if !by.contains_key(&e.target) {
                        stack.push((e.target, platform, kind));
                    }
                }
            }
        }
    }
    by
}

/// The `gc-unsafe.csv` rows of one plan. `Err` when the plan cannot be predicted.
pub fn unsafe_deletions(
    graph: &Graph,
    marks: &GlobalMarks,
    model: GcModel,
    plan: &GcPlan,
) -> Result<Vec<GcUnsafeRow>, Unpredictable> {
    let tagged_only = model.remove_untagged;
    let needed = |m: &RepoMarks| -> DigestSet {
        if tagged_only {
            m.tagged.clone()
        } else {
            m.live.clone()
        }
    };
    let deletions = match plan {
        GcPlan::Unpredictable(u) => return Err(u.clone()),
        GcPlan::Aborts(a) => {
            return Ok(vec![GcUnsafeRow {
                model: model.name().to_string(),
                action: "abort".to_string(),
                repository: a.repository.clone().unwrap_or_default(),
                digest: a.digest.clone().unwrap_or_else(|| a.key.clone()),
                kind: a.reason.to_string(),
                size: None,
                needed_by: String::new(),
            }])
        }
        GcPlan::Completes(d) => d,
    };
    let repo_index: HashMap<&str, usize> = marks
        .repos
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    let mut needed_sets: HashMap<usize, DigestSet> = HashMap::new();
    let mut attributions: HashMap<usize, HashMap<DigestId, Needer>> = HashMap::new();
    let mut needer = |i: usize, id: DigestId| -> Option<Needer> {
        let (name, m) = &marks.repos[i];
        let set = needed_sets.entry(i).or_insert_with(|| needed(m));
        if !set.contains(id) {
            return None;
        }
        let by = attributions
            .entry(i)
            .or_insert_with(|| attribute(graph, &graph.repos[name], m, tagged_only));
        by.get(&id).cloned()
    };
    let size = |id: DigestId| graph.blobs.get(&id).map(|b| b.size);
    let digest = |id: DigestId| graph.digests.digest(id).to_string();
    let mut rows = Vec::new();
    let row = |action: &str, repository: &str, id: DigestId, n: &Needer| GcUnsafeRow {
        model: model.name().to_string(),
        action: action.to_string(),
        repository: repository.to_string(),
        digest: digest(id),
        kind: n.kind.to_string(),
        size: size(id),
        needed_by: n.needed_by(),
    };
    for m in &deletions.manifests {
        if let Some(i) = repo_index.get(m.repo.as_str()) {
            if let Some(n) = needer(*i, m.digest) {
                rows.push(row("delete-revision", &m.repo, m.digest, &n));
            }
        }
    }
    let global = if tagged_only {
        &marks.tagged
    } else {
        &marks.live
    };
    for &b in &deletions.blobs {
        if !global.contains(b) {
            continue;
        }
        if let Some((i, n)) = (0..marks.repos.len()).find_map(|i| needer(i, b).map(|n| (i, n))) {
            rows.push(row("delete-blob", &marks.repos[i].0, b, &n));
        }
    }
    for (repo, l) in &deletions.layer_links {
        if let Some(i) = repo_index.get(repo.as_str()) {
            if let Some(n) = needer(*i, *l) {
                rows.push(row("delete-layer-link", repo, *l, &n));
            }
        }
    }
    rows.sort();
    Ok(rows)
}
