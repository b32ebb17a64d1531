//! One repository's findings, one function per family (visibility to each collector, links,
//! tags, uploads, legacy signatures, foreign layers).

use super::repo_check::RepoCheck;
use super::AnalysisOptions;
use crate::graph::{LinkState, TagTarget};
use crate::layout::Key;
use crate::report::{Finding, FindingKind};
use std::time::{Duration, SystemTime};

/// How far in the future an upload's `startedat` may be before it is a finding rather than
/// clock skew between the registry and the auditor.
const FUTURE_STARTED_AT_SKEW: Duration = Duration::from_secs(5 * 60);

impl RepoCheck<'_> {
    /// Every finding of the repository, one family at a time.
    pub(super) fn findings(&self, opts: &AnalysisOptions, out: &mut Vec<Finding>) {
        self.visibility_findings(opts, out);
        self.link_findings(out);
        self.tag_findings(opts, out);
        self.upload_findings(opts, out);
        self.legacy_signature_findings(out);
        self.foreign_layer_findings(out);
    }

    fn finding(&self, key: String, kind: FindingKind, detail: String) -> Finding {
        Finding {
            repository: Some(self.repo.name.clone()),
            key,
            kind,
            detail,
        }
    }

    /// Whether `t` is younger than the grace.
    fn young(&self, opts: &AnalysisOptions, t: Option<SystemTime>) -> bool {
        t.is_some_and(|t| opts.now.duration_since(t).unwrap_or_default() < opts.grace)
    }

    /// A repository one collector version cannot see.
    fn visibility_findings(&self, opts: &AnalysisOptions, out: &mut Vec<Finding>) {
        let repo = self.repo;
        // A repository whose every key is young is in its first push: its `_layers/` or
        // `_manifests/` may simply not be written yet.
        let first_push = self.young(opts, repo.oldest_key);
        let repo_key = crate::layout::repository_prefix(&repo.name);
        if repo.has_manifests_dir && !repo.has_layers_dir && !first_push {
            out.push(self.finding(
                repo_key.clone(),
                FindingKind::InvisibleToGc28,
                "has _manifests/ but no _layers/: distribution 2.8 garbage-collect does not see this repository and sweeps what only it references".to_string(),
            ));
        }
        if repo.has_layers_dir && !repo.has_manifests_dir && !first_push {
            out.push(self.finding(
                repo_key,
                FindingKind::InvisibleToGc3,
                "has _layers/ but no _manifests/: distribution 3.x does not list this repository"
                    .to_string(),
            ));
        }
    }

    /// `_layers` and revision links that hold something else, or point at no blob.
    fn link_findings(&self, out: &mut Vec<Finding>) {
        let repo = self.repo;
        let name = &self.repo.name;
        for (&l, state) in repo.layer_links.iter() {
            let dangling = !self.graph.blobs().contains_key(&l);
            if state == LinkState::Good && !dangling {
                continue;
            }
            let key = Key::LayerLink {
                repo: name.clone(),
                digest: self.graph.digests().digest(l),
            }
            .to_path();
            if let LinkState::Bad(content) = state {
                out.push(self.finding(
                    key.clone(),
                    link_finding_kind(content),
                    format!("content {content}, expected {}", self.d(l)),
                ));
            }
            if dangling {
                out.push(self.finding(
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
                    digest: self.graph.digests().digest(r),
                }
                .to_path();
                out.push(self.finding(
                    key,
                    link_finding_kind(content),
                    format!("content {content}, expected {}", self.d(r)),
                ));
            }
        }
    }

    /// Tags: bad or missing current links, dangling history, orphaned signature tags.
    fn tag_findings(&self, opts: &AnalysisOptions, out: &mut Vec<Finding>) {
        let repo = self.repo;
        let name = &self.repo.name;
        for tag in repo.tags.values() {
            let current = Key::TagCurrent {
                repo: name.clone(),
                tag: tag.name.clone(),
            }
            .to_path();
            match &tag.target {
                TagTarget::BadLink(content) => out.push(self.finding(
                    current.clone(),
                    FindingKind::BadLink,
                    format!("content {content}"),
                )),
                // A push writes the tag's history entry, then its current link.
                TagTarget::NoCurrent if !self.young(opts, tag.history_modified) => {
                    out.push(self.finding(
                        current.clone(),
                        FindingKind::TagWithoutCurrent,
                        format!("tag {} has history but no current link", tag.name),
                    ))
                }
                _ => {}
            }
            let mut history = tag.history.clone();
            history.sort_unstable();
            for h in history {
                if !self.graph.blobs().contains_key(&h) {
                    let key = Key::TagIndexEntry {
                        repo: name.clone(),
                        tag: tag.name.clone(),
                        digest: self.graph.digests().digest(h),
                    }
                    .to_path();
                    out.push(self.finding(
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
                    out.push(self.finding(
                        current,
                        FindingKind::OrphanedSignatureTag,
                        format!("subject {subject} is not a manifest of this repository"),
                    ));
                }
            }
        }
    }

    /// Uploads the registry will never purge.
    fn upload_findings(&self, opts: &AnalysisOptions, out: &mut Vec<Finding>) {
        let repo = self.repo;
        let name = &self.repo.name;
        for (id, upload) in &repo.uploads {
            let key = Key::UploadStartedAt {
                repo: name.clone(),
                id: id.clone(),
            }
            .to_path();
            let stale = match (upload.has_started_at, upload.started_at) {
                // Caught while the upload was being started: in flight, not stale.
                (_, None) if self.young(opts, upload.last_modified) => None,
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
                out.push(self.finding(key, FindingKind::StaleUpload, format!("{detail}{size}")));
            }
        }
    }

    /// Schema1 signature links from registry 2.4 or older.
    fn legacy_signature_findings(&self, out: &mut Vec<Finding>) {
        let repo = self.repo;
        let name = &self.repo.name;
        for &(m, s) in &repo.legacy_signatures {
            let key = Key::LegacySignatureLink {
                repo: name.clone(),
                digest: self.graph.digests().digest(m),
                signature: self.graph.digests().digest(s),
            }
            .to_path();
            out.push(self.finding(
                key,
                FindingKind::LegacySignatureLink,
                "schema1 signature link from registry 2.4 or older".to_string(),
            ));
        }
    }

    /// Foreign layers absent from the blob store (allowed).
    fn foreign_layer_findings(&self, out: &mut Vec<Finding>) {
        for &m in &self.reached_manifests {
            if let Some(node) = self.graph.parsed(m) {
                for edge in &node.edges {
                    if edge.foreign && !self.graph.blobs().contains_key(&edge.target) {
                        let key = Key::BlobData {
                            digest: self.graph.digests().digest(edge.target),
                        }
                        .to_path();
                        out.push(self.finding(
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
