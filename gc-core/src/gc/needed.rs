//! Which planned deletions remove needed content, and who needs it (`gc-unsafe.csv`).
//!
//! Needed means: in the tagged set for `-m` models (an operator who asks for untagged content
//! to go still needs every tag to pull, with its referrers), in the live set for the others
//! (everything pullable by digest). Each unsafe deletion names one thing that breaks: the
//! first tag, in name order, whose image reaches the content (`repo:tag`, plus the platform of
//! the index child it is reached through), else the first revision (`repo@digest`).

use super::{GcModel, GcPlan, Unpredictable};
use crate::graph::{DigestId, Graph, ManifestState, Repo, TagTarget};
use crate::manifest::EdgeKind;
use crate::mark::{DigestSet, GlobalMarks, RepoMarks};
use crate::report::{DigestOrKey, GcUnsafeRow};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Who needs a digest. Borrowed from the graph and the repository's root labels, so a
/// repository's attribution map holds no strings of its own.
#[derive(Debug, Clone, Copy)]
struct Needer<'g> {
    /// Index of the root (`repo:tag` or `repo@digest`) in the repository's label list.
    root: usize,
    /// Platform of the index child the digest is reached through.
    platform: Option<&'g str>,
    /// What the digest is to its needer: `config`, `layer`, `manifest`, `index`.
    kind: &'static str,
}

/// First needer of every digest a repository needs, with the root labels they index. Labels
/// are shared by every row that names them (a tagged multi-arch image has a row per layer).
struct Attribution<'g> {
    repository: Arc<str>,
    labels: Vec<Arc<str>>,
    by: HashMap<DigestId, Needer<'g>>,
    with_platform: HashMap<(usize, &'g str), Arc<str>>,
}

impl<'g> Attribution<'g> {
    fn needed_by(&mut self, n: Needer<'g>) -> Arc<str> {
        let label = &self.labels[n.root];
        match n.platform {
            Some(p) => self
                .with_platform
                .entry((n.root, p))
                .or_insert_with(|| format!("{label} {p}").into())
                .clone(),
            None => label.clone(),
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
fn attribute<'g>(
    graph: &'g Graph,
    repo: &Repo,
    marks: &RepoMarks,
    tagged_only: bool,
) -> Attribution<'g> {
    let mut by: HashMap<DigestId, Needer<'g>> = HashMap::new();
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
            roots.push((format!("{}@{}", repo.name, graph.digests().digest(*r)), *r));
        }
    }
    let mut labels = Vec::with_capacity(roots.len());
    for (label, root) in roots {
        if by.contains_key(&root) {
            continue;
        }
        let index = labels.len();
        labels.push(label);
        let mut stack = vec![(root, None::<&'g str>, manifest_kind(graph, root))];
        while let Some((id, platform, kind)) = stack.pop() {
            if by.contains_key(&id) {
                continue;
            }
            by.insert(
                id,
                Needer {
                    root: index,
                    platform,
                    kind,
                },
            );
            if let Some(node) = graph.parsed(id) {
                for (e, declared) in node.edges_with_platforms().rev() {
                    let (platform, kind) = match e.kind {
                        EdgeKind::Config => (platform, "config"),
                        EdgeKind::Layer => (platform, "layer"),
                        EdgeKind::Child => (declared.or(platform), manifest_kind(graph, e.target)),
                        EdgeKind::Subject => (platform, manifest_kind(graph, e.target)),
                    };
                    if !by.contains_key(&e.target) {
                        stack.push((e.target, platform, kind));
                    }
                }
            }
        }
    }
    Attribution {
        repository: repo.name.as_str().into(),
        labels: labels.into_iter().map(Arc::from).collect(),
        by,
        with_platform: HashMap::new(),
    }
}

/// One deletion of needed content, before it is attributed: action, repository index.
struct Unsafe {
    repo: usize,
    action: &'static str,
    id: DigestId,
}

/// The needed content one plan deletes: its `gc-unsafe.csv` rows and the images they break.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsafeDeletions {
    /// The rows, sorted (one `abort` row when the run stops).
    pub rows: Vec<GcUnsafeRow>,
    /// Every image (`repo:tag` or `repo@digest`) some row breaks, sorted, each once.
    pub images: Vec<Arc<str>>,
}

/// The `gc-unsafe.csv` rows of one plan. `Err` when the plan cannot be predicted.
///
/// Linear in the marks: a blob's repository is found by walking each repository's needed set
/// once, in name order; attribution maps are built one repository at a time and dropped.
pub fn unsafe_deletions(
    graph: &Graph,
    marks: &GlobalMarks,
    model: GcModel,
    plan: &GcPlan,
) -> Result<UnsafeDeletions, Unpredictable> {
    let tagged_only = model.remove_untagged;
    let deletions = match plan {
        GcPlan::Unpredictable(u) => return Err(u.clone()),
        GcPlan::Aborts(a) => {
            let rows = vec![GcUnsafeRow {
                model: model.name(),
                action: "abort",
                repository: a.repository.as_deref().unwrap_or_default().into(),
                digest: DigestOrKey::parse(a.digest.as_deref().unwrap_or(&a.key)),
                kind: a.reason,
                size: None,
                needed_by: "".into(),
            }];
            return Ok(UnsafeDeletions {
                rows,
                images: Vec::new(),
            });
        }
        GcPlan::Completes(d) => d,
    };
    let repo_index: HashMap<&str, usize> = marks
        .repos
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    let mut found: Vec<Unsafe> = Vec::new();
    let in_repo = |name: &str, id: DigestId| {
        repo_index
            .get(name)
            .copied()
            .filter(|&i| needed_set(&marks.repos[i].1, tagged_only).contains(id))
    };
    for m in &deletions.manifests {
        if let Some(repo) = in_repo(&m.repo, m.digest) {
            found.push(Unsafe {
                repo,
                action: "delete-revision",
                id: m.digest,
            });
        }
    }
    for (name, l) in deletions.layer_link_pairs() {
        if let Some(repo) = in_repo(name, l) {
            found.push(Unsafe {
                repo,
                action: "delete-layer-link",
                id: l,
            });
        }
    }
    // Needed blobs that are deleted: each goes to the first repository (in name order) that
    // needs it.
    let global = if tagged_only {
        &marks.tagged
    } else {
        &marks.live
    };
    let mut pending: HashSet<DigestId> = deletions
        .blobs
        .iter()
        .filter(|&b| global.contains(b))
        .collect();
    for (repo, (_, m)) in marks.repos.iter().enumerate() {
        if pending.is_empty() {
            break;
        }
        for id in needed_set(m, tagged_only).iter() {
            if pending.remove(&id) {
                found.push(Unsafe {
                    repo,
                    action: "delete-blob",
                    id,
                });
            }
        }
    }

    found.sort_by_key(|u| u.repo);
    let size = |id: DigestId| graph.blobs().get(&id).map(|b| b.size);
    let mut rows = Vec::with_capacity(found.len());
    let mut images: BTreeSet<Arc<str>> = BTreeSet::new();
    let mut current: Option<(usize, Attribution<'_>)> = None;
    for u in &found {
        let (name, m) = &marks.repos[u.repo];
        if current.as_ref().map(|(r, _)| *r) != Some(u.repo) {
            current = Some((
                u.repo,
                attribute(graph, &graph.repos()[name], m, tagged_only),
            ));
        }
        let mut row = |attribution: &mut Attribution<'_>| {
            let n = *attribution.by.get(&u.id)?;
            images.insert(attribution.labels[n.root].clone());
            Some(GcUnsafeRow {
                model: model.name(),
                action: u.action,
                repository: attribution.repository.clone(),
                digest: DigestOrKey::Digest(graph.digests().digest(u.id)),
                kind: n.kind,
                size: size(u.id),
                needed_by: attribution.needed_by(n),
            })
        };
        if let Some(r) = current.as_mut().and_then(|(_, a)| row(a)) {
            rows.push(r);
            continue;
        }
        // The repository's set holds it but no root reaches it (cannot happen while marking
        // and attribution follow the same edges): a blob can still be attributed to a later
        // repository that needs it.
        if u.action == "delete-blob" {
            for (name, m) in &marks.repos[u.repo + 1..] {
                if !needed_set(m, tagged_only).contains(u.id) {
                    continue;
                }
                let mut attribution = attribute(graph, &graph.repos()[name], m, tagged_only);
                if let Some(r) = row(&mut attribution) {
                    rows.push(r);
                    break;
                }
            }
        }
    }
    rows.sort_unstable();
    Ok(UnsafeDeletions {
        rows,
        images: images.into_iter().collect(),
    })
}

/// The set a model needs kept: the tagged closure for `-m` models, the live one otherwise.
fn needed_set(m: &RepoMarks, tagged_only: bool) -> &DigestSet {
    if tagged_only {
        &m.tagged
    } else {
        &m.live
    }
}
