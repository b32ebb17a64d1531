//! From a complete graph to report rows: orphaned, missing, dangling, broken, repos, findings.
//!
//! Pure: no I/O, no clock (the caller passes `now`). Each repository is checked on its own,
//! because a pull is per repository: a layer present in the blob store but not linked into the
//! repository's `_layers/` cannot be pulled from it, and neither can a child manifest without a
//! revision link there. Global sets (live, tagged) are unions of the per-repository closures.

mod repo_check;
mod repo_findings;

use crate::graph::{DigestId, Graph, ManifestState};
use crate::layout::Key;
use crate::manifest::ManifestKind;
use crate::mark::{close_over, DigestSet, Follow, GlobalMarks};
use crate::report::{Finding, FindingKind, Orphaned, ReclaimableBy, Report};
use repo_check::RepoCheck;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

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
            digest: graph.digests().digest(id),
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

/// Build every report row from a complete graph but the findings and the GC models' rows: the
/// analysis adds its findings to `findings`, which the caller sorts into the report.
pub(crate) fn analyse(
    graph: &Graph,
    marks: &GlobalMarks,
    findings: &mut Vec<Finding>,
    content_mismatch: &HashMap<DigestId, String>,
    opts: &AnalysisOptions,
) -> Report {
    let mut report = Report::default();
    // How many repositories reach each digest, saturating: only "exactly one" matters
    // (exclusive bytes), so a byte a digest is enough.
    let mut refcount = vec![0u8; graph.digests().len()];
    // Each repository counts once what it reaches (live ∪ tagged).
    for (_, m) in &marks.repos {
        for id in m.live.iter() {
            refcount[id.index()] = refcount[id.index()].saturating_add(1);
        }
        for id in m.tagged.iter().filter(|&id| !m.live.contains(id)) {
            refcount[id.index()] = refcount[id.index()].saturating_add(1);
        }
    }
    for (name, m) in &marks.repos {
        let repo = &graph.repos()[name];
        let check = RepoCheck::new(graph, repo, m);
        check.missing(&mut report.missing);
        check.dangling(&mut report.dangling);
        check.broken(&mut report.broken);
        check.findings(opts, findings);
        report.repos.push(check.repo_row(&refcount));
    }
    manifest_findings(graph, marks, content_mismatch, findings);

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
    report
}
