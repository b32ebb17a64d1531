//! From a complete graph to report rows: orphaned, missing, dangling, broken, repos, findings.
//!
//! Pure: no I/O, no clock (the caller passes `now`). Each repository is checked on its own,
//! because a pull is per repository: a layer present in the blob store but not linked into the
//! repository's `_layers/` cannot be pulled from it, and neither can a child manifest without a
//! revision link there. Global sets (live, tagged) are unions of the per-repository closures.

use crate::graph::{DigestId, Edge, Graph, LinkState, ManifestState, Repo, TagTarget};
use crate::layout::Key;
use crate::manifest::{EdgeKind, ManifestKind};
use crate::mark::{close_over, DigestSet, Follow, GlobalMarks, RepoMarks};
use crate::report::{
    BrokenRow, DanglingRow, Finding, FindingKind, MissingRow, Orphaned, PullFailure, PullProblem,
    PullProblems, ReclaimableBy, RepoRow, Report,
};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// How far in the future an upload's `startedat` may be before it is a finding rather than
/// clock skew between the registry and the auditor.
const FUTURE_STARTED_AT_SKEW: Duration = Duration::from_secs(5 * 60);

/// Settings of the analysis.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnalysisOptions {
    /// The time the audit treats as now.
    pub now: SystemTime,
    /// Blobs younger than this are `young`.
    pub grace: Duration,
    /// Uploads older than this are stale (the registry's purge age, 168 h by default).
    pub stale_upload_age: Duration,
}

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

struct RepoCheck<'a> {
    graph: &'a Graph,
    repo: &'a Repo,
    marks: &'a RepoMarks,
    /// Manifest → tags whose pull closure contains it.
    tags_of: HashMap<DigestId, Vec<&'a str>>,
}

impl<'a> RepoCheck<'a> {
    fn new(graph: &'a Graph, repo: &'a Repo, marks: &'a RepoMarks) -> Self {
        let mut tags_of: HashMap<DigestId, Vec<&str>> = HashMap::new();
        for tag in repo.tags.values() {
            if let TagTarget::Digest(t) = tag.target {
                let mut set = DigestSet::default();
                close_over(graph, [t], Follow::Pull, &mut set);
                for m in set.iter().filter(|m| graph.manifests().contains_key(m)) {
                    tags_of.entry(m).or_default().push(&tag.name);
                }
            }
        }
        RepoCheck {
            graph,
            repo,
            marks,
            tags_of,
        }
    }

    fn d(&self, id: DigestId) -> String {
        self.graph.digests().digest(id).to_string()
    }

    fn tags(&self, m: DigestId) -> String {
        self.tags_of
            .get(&m)
            .map(|t| t.join(" "))
            .unwrap_or_default()
    }

    /// Manifests read that the repository reaches (live or tagged), ascending.
    fn reached_manifests(&self) -> Vec<DigestId> {
        let mut all = self.marks.live.clone();
        all.union_with(&self.marks.tagged);
        all.iter()
            .filter(|m| self.graph.manifests().contains_key(m))
            .collect()
    }

    fn missing(&self, out: &mut Vec<MissingRow>) {
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
        for m in self.reached_manifests() {
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

    fn dangling(&self, out: &mut Vec<DanglingRow>) {
        for index in self.reached_manifests() {
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

    fn broken(&self, out: &mut Vec<BrokenRow>) {
        for tag in self.repo.tags.values() {
            let target = match &tag.target {
                TagTarget::Digest(t) => *t,
                TagTarget::BadLink(content) => {
                    out.push(BrokenRow {
                        repository: self.repo.name.clone(),
                        tag: tag.name.clone(),
                        digest: String::new(),
                        problem: PullProblems::new([PullProblem::CurrentLinkNotDigest(
                            content.clone(),
                        )]),
                    });
                    continue;
                }
                TagTarget::Unread | TagTarget::NoCurrent => continue,
            };
            let problem = |what, id: DigestId, platform: Option<&str>, why| PullProblem::Content {
                what,
                digest: self.graph.digests().digest(id).clone(),
                platform: platform.map(Into::into),
                why,
            };
            let mut problems: Vec<PullProblem> = Vec::new();
            if let Some(why) = reference_problem(self.graph, self.repo, EdgeKind::Child, target) {
                problems.push(problem("manifest", target, None, why));
            }
            let mut set = DigestSet::default();
            close_over(self.graph, [target], Follow::Pull, &mut set);
            for m in set.iter() {
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

    fn findings(&self, opts: &AnalysisOptions, out: &mut Vec<Finding>) {
        let repo = self.repo;
        let name = &repo.name;
        let finding = |key: String, kind: FindingKind, detail: String| Finding {
            repository: Some(name.clone()),
            key,
            kind,
            detail,
        };
        let repo_key = format!("{}{}/", crate::layout::REPOSITORIES, name);
        let young = |t: Option<SystemTime>| {
            t.is_some_and(|t| opts.now.duration_since(t).unwrap_or_default() < opts.grace)
        };
        // A repository whose every key is young is in its first push: its `_layers/` or
        // `_manifests/` may simply not be written yet.
        let first_push = young(repo.oldest_key);
        if repo.has_manifests_dir && !repo.has_layers_dir && !first_push {
            out.push(finding(
                repo_key.clone(),
                FindingKind::InvisibleToGc28,
                "has _manifests/ but no _layers/: distribution 2.8 garbage-collect does not see this repository and sweeps what only it references".to_string(),
            ));
        }
        if repo.has_layers_dir && !repo.has_manifests_dir && !first_push {
            out.push(finding(
                repo_key,
                FindingKind::InvisibleToGc3,
                "has _layers/ but no _manifests/: distribution 3.x does not list this repository"
                    .to_string(),
            ));
        }
        for (&l, state) in repo.layer_links.iter() {
            let dangling = !self.graph.blobs().contains_key(&l);
            if state == LinkState::Good && !dangling {
                continue;
            }
            let key = Key::LayerLink {
                repo: name.clone(),
                digest: self.graph.digests().digest(l).clone(),
            }
            .to_path();
            if let LinkState::Bad(content) = state {
                out.push(finding(
                    key.clone(),
                    link_finding_kind(content),
                    format!("content {content}, expected {}", self.d(l)),
                ));
            }
            if dangling {
                out.push(finding(
                    key,
                    FindingKind::DanglingLayerLink,
                    format!("blob {} is not in the blob store", self.d(l)),
                ));
            }
        }
        for (&r, state) in repo.revisions.iter() {
            if let LinkState::Bad(content) = state {
                let key = Key::RevisionLink {
                    repo: name.clone(),
                    digest: self.graph.digests().digest(r).clone(),
                }
                .to_path();
                out.push(finding(
                    key,
                    link_finding_kind(content),
                    format!("content {content}, expected {}", self.d(r)),
                ));
            }
        }
        for tag in repo.tags.values() {
            let current = Key::TagCurrent {
                repo: name.clone(),
                tag: tag.name.clone(),
            }
            .to_path();
            match &tag.target {
                TagTarget::BadLink(content) => out.push(finding(
                    current.clone(),
                    FindingKind::BadLink,
                    format!("content {content}"),
                )),
                // A push writes the tag's history entry, then its current link.
                TagTarget::NoCurrent if !young(tag.history_modified) => out.push(finding(
                    current.clone(),
                    FindingKind::TagWithoutCurrent,
                    format!("tag {} has history but no current link", tag.name),
                )),
                _ => {}
            }
            let mut history = tag.history.clone();
            history.sort_unstable();
            for h in history {
                if !self.graph.blobs().contains_key(&h) {
                    let key = Key::TagIndexEntry {
                        repo: name.clone(),
                        tag: tag.name.clone(),
                        digest: self.graph.digests().digest(h).clone(),
                    }
                    .to_path();
                    out.push(finding(
                        key,
                        FindingKind::DanglingTagHistory,
                        format!(
                            "manifest {} of tag history is not in the blob store",
                            self.d(h)
                        ),
                    ));
                }
            }
            if let Some(subject) = cosign_subject(&tag.name) {
                let present = self.graph.digests().get(&subject).is_some_and(|id| {
                    repo.revisions.contains_key(&id) && self.graph.blobs().contains_key(&id)
                });
                if !present {
                    out.push(finding(
                        current,
                        FindingKind::OrphanedSignatureTag,
                        format!("subject {subject} is not a manifest of this repository"),
                    ));
                }
            }
        }
        for (id, upload) in &repo.uploads {
            let key = Key::UploadStartedAt {
                repo: name.clone(),
                id: id.clone(),
            }
            .to_path();
            let stale = match (upload.has_started_at, upload.started_at) {
                // Caught while the upload was being started: in flight, not stale.
                (_, None) if young(upload.last_modified) => None,
                (false, _) => Some("no startedat: the registry never purges it".to_string()),
                (true, None) => Some(
                    "startedat is not an RFC 3339 time: the registry never purges it".to_string(),
                ),
                // The registry purges only uploads started before its cut-off: one that
                // claims to start in the future (beyond clock skew) is never purged.
                (true, Some(t))
                    if opts
                        .now
                        .checked_add(FUTURE_STARTED_AT_SKEW)
                        .is_some_and(|limit| t > limit) =>
                {
                    Some(format!(
                        "startedat {} is in the future: the registry never purges it",
                        humantime::format_rfc3339_seconds(t)
                    ))
                }
                (true, Some(t)) => {
                    let age = opts.now.duration_since(t).unwrap_or_default();
                    (age > opts.stale_upload_age).then(|| {
                        format!(
                            "started {} ago",
                            humantime::format_duration(Duration::from_secs(age.as_secs()))
                        )
                    })
                }
            };
            if let Some(detail) = stale {
                let size = upload
                    .data_size
                    .map(|s| format!(", {s} bytes of data"))
                    .unwrap_or_default();
                out.push(finding(
                    key,
                    FindingKind::StaleUpload,
                    format!("{detail}{size}"),
                ));
            }
        }
        for &(m, s) in &repo.legacy_signatures {
            let key = Key::LegacySignatureLink {
                repo: name.clone(),
                digest: self.graph.digests().digest(m).clone(),
                signature: self.graph.digests().digest(s).clone(),
            }
            .to_path();
            out.push(finding(
                key,
                FindingKind::LegacySignatureLink,
                "schema1 signature link from registry 2.4 or older".to_string(),
            ));
        }
        for m in self.reached_manifests() {
            if let Some(node) = self.graph.parsed(m) {
                for edge in &node.edges {
                    if edge.foreign && !self.graph.blobs().contains_key(&edge.target) {
                        let key = Key::BlobData {
                            digest: self.graph.digests().digest(edge.target).clone(),
                        }
                        .to_path();
                        out.push(finding(
                            key,
                            FindingKind::ForeignLayerAbsent,
                            format!(
                                "foreign layer of manifest {} (allowed: pulled from its urls)",
                                self.d(m)
                            ),
                        ));
                    }
                }
            }
        }
    }

    fn repo_row(&self, refcount: &[u32]) -> RepoRow {
        let mut all = self.marks.live.clone();
        all.union_with(&self.marks.tagged);
        let (mut bytes, mut exclusive) = (0, 0);
        for id in all.iter() {
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

fn link_finding_kind(content: &str) -> FindingKind {
    if crate::digest::Digest::parse(content.trim_matches('"')).is_ok() {
        FindingKind::LinkMismatch
    } else {
        FindingKind::BadLink
    }
}

/// The subject of a cosign tag `sha256-<hex>.sig|.att|.sbom`.
pub(crate) fn cosign_subject(tag: &str) -> Option<crate::digest::Digest> {
    let (stem, ext) = tag.rsplit_once('.')?;
    if !matches!(ext, "sig" | "att" | "sbom") {
        return None;
    }
    let hex = stem.strip_prefix("sha256-")?;
    crate::digest::Digest::from_parts("sha256", hex).ok()
}

/// Whether a parsed manifest is one distribution cannot decode (as scans count it: 2.8).
fn unparseable(node: &crate::graph::ManifestNode) -> bool {
    node.undecodable()
        .is_some_and(crate::manifest::Undecodable::is_unparseable)
}

/// Manifest-level findings: each manifest once, under the first repository that reaches it.
fn manifest_findings(
    graph: &Graph,
    marks: &GlobalMarks,
    content_mismatch: &HashMap<DigestId, String>,
    out: &mut Vec<Finding>,
) {
    let mut ids: Vec<DigestId> = graph.manifests().keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let mut found: Vec<(FindingKind, String)> = Vec::new();
        if let Some(actual) = content_mismatch.get(&id) {
            found.push((
                FindingKind::DigestMismatch,
                format!("content hashes to {actual}"),
            ));
        }
        match &graph.manifests()[&id] {
            ManifestState::Parsed(node) => {
                if let Some(u) = node.undecodable() {
                    if let Some(why) = u.unparseable_detail() {
                        found.push((FindingKind::UnparseableManifest, why));
                    }
                    if let Some(why) = u.only_3x() {
                        found.push((FindingKind::BadDescriptor, why));
                    }
                }
                if let ManifestKind::Unknown(mt) = &node.kind {
                    found.push((FindingKind::UnknownMediaType, format!("media type {mt}; references read best-effort")));
                }
                for p in node.problems() {
                    found.push((FindingKind::BadDescriptor, p.clone()));
                }
            }
            ManifestState::Unparseable(why) => found.push((FindingKind::UnparseableManifest, why.clone())),
            // Reported as the read error.
            ManifestState::ReadFailed => {}
            ManifestState::TooLarge(size) => found.push((
                FindingKind::ManifestTooLarge,
                format!("{size} bytes: over the manifest size limit, not read; its references are unknown"),
            )),
        }
        if found.is_empty() {
            continue;
        }
        let repository = marks
            .repos
            .iter()
            .find(|(_, m)| m.live.contains(id) || m.tagged.contains(id))
            .map(|(n, _)| n.clone());
        let key = Key::BlobData {
            digest: graph.digests().digest(id).clone(),
        }
        .to_path();
        for (kind, detail) in found {
            out.push(Finding {
                repository: repository.clone(),
                key: key.clone(),
                kind,
                detail,
            });
        }
    }
}

/// Build every report row from a complete graph. `findings` holds what the listing and reads
/// found already; the analysis adds its own and sorts them all into the report.
pub(crate) fn analyse(
    graph: &Graph,
    marks: &GlobalMarks,
    mut findings: Vec<Finding>,
    content_mismatch: &HashMap<DigestId, String>,
    opts: &AnalysisOptions,
) -> Report {
    let mut report = Report::default();
    let mut refcount = vec![0u32; graph.digests().len()];
    for (_, m) in &marks.repos {
        let mut all = m.live.clone();
        all.union_with(&m.tagged);
        for id in all.iter() {
            refcount[id.index()] += 1;
        }
    }
    for (name, m) in &marks.repos {
        let repo = &graph.repos()[name];
        let check = RepoCheck::new(graph, repo, m);
        check.missing(&mut report.missing);
        check.dangling(&mut report.dangling);
        check.broken(&mut report.broken);
        check.findings(opts, &mut findings);
        report.repos.push(check.repo_row(&refcount));
    }
    manifest_findings(graph, marks, content_mismatch, &mut findings);

    // Tags that moved during the audit: what they named then counts as tagged for the
    // reclaimable list (it was tagged within the audit's window).
    let mut earlier_tagged = DigestSet::default();
    let earlier = graph
        .repos()
        .values()
        .flat_map(|r| r.tags.values())
        .flat_map(|t| t.earlier_targets.iter().copied());
    close_over(graph, earlier, Follow::All, &mut earlier_tagged);
    let reclaimable = |id: DigestId| {
        if !marks.live.contains(id) {
            Some(ReclaimableBy::Gc)
        } else if !marks.tagged.contains(id) && !earlier_tagged.contains(id) {
            Some(ReclaimableBy::GcDeleteUntagged)
        } else {
            None
        }
    };
    // Counted first so the list takes exactly its space: on a registry that is mostly garbage
    // it is the largest thing the report holds.
    let orphans = graph
        .blobs()
        .keys()
        .filter(|&id| reclaimable(id).is_some())
        .count();
    report.orphaned = Orphaned::new(graph.digests().shared(), orphans);
    for (id, blob) in graph.blobs().iter() {
        let Some(reclaimable_by) = reclaimable(id) else {
            continue;
        };
        let age = opts
            .now
            .duration_since(blob.last_modified)
            .unwrap_or_default();
        // Young when the blob is, or when a young link points at it (a push adopting it).
        let young = age < opts.grace || graph.young_links().contains(id);
        report
            .orphaned
            .push(id, blob.size, blob.last_modified, reclaimable_by, young);
    }
    report.orphaned.sort();
    report.missing.sort_unstable();
    report.missing.dedup();
    report.dangling.sort_unstable();
    report.dangling.dedup();
    report.broken.sort_unstable();
    report.repos.sort_unstable();
    findings.sort_unstable();
    findings.dedup();
    report.findings = findings.iter().map(Into::into).collect();
    report
}
