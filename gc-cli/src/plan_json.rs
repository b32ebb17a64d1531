//! `gc-plan --json`: one modelled run as a JSON document for scripts — the verdict, the
//! deletions it would make, and the needed content among them with who needs it.

use gc_core::gc::{GcPlan, ModelOutcome, PlanStatus};
use gc_core::graph::Graph;
use gc_core::report::{GcUnsafeRow, Report};
use serde::Serialize;

/// The layout version of the document.
const PLAN_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub(crate) struct PlanDocument<'a> {
    schema_version: u32,
    model: &'static str,
    location: &'a str,
    /// `safe`, `unsafe`, `aborts`, `unpredictable`.
    verdict: &'static str,
    /// gc-plan's exit status (SPEC §5).
    exit_status: u8,
    /// The dry-run summary line, when the run completes.
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    abort: Option<Abort<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deletions: Option<Deletions<'a>>,
    /// Deletions of needed content, as gc-unsafe.csv lists them for this model.
    unsafe_deletions: Vec<&'a GcUnsafeRow>,
    /// The images they break, sorted.
    images_broken: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
struct Abort<'a> {
    reason: &'static str,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<&'a str>,
    /// What the real collector prints.
    message: &'a str,
}

#[derive(Debug, Serialize)]
struct Deletions<'a> {
    marked: usize,
    blobs: Vec<Blob>,
    manifests: Vec<Manifest<'a>>,
    layer_links: Vec<LayerLink<'a>>,
}

#[derive(Debug, Serialize)]
struct Blob {
    digest: String,
    size: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Manifest<'a> {
    repository: &'a str,
    digest: String,
    tag_history: &'a [String],
}

#[derive(Debug, Serialize)]
struct LayerLink<'a> {
    repository: &'a str,
    digest: String,
}

/// The document of `assessed`, a model of `report` over `graph`.
pub(crate) fn document<'a>(
    report: &'a Report,
    graph: &Graph,
    assessed: &'a ModelOutcome,
    status: PlanStatus,
) -> PlanDocument<'a> {
    let model = assessed.model;
    let digest = |id| graph.digests().digest(id).to_string();
    let abort = match &assessed.plan {
        GcPlan::Aborts(a) => Some(Abort {
            reason: a.reason,
            key: &a.key,
            digest: a.digest.as_deref(),
            message: &a.message,
        }),
        _ => None,
    };
    let deletions = assessed.deletions().map(|d| Deletions {
        marked: d.marked,
        blobs: d
            .blobs_in_digest_order(graph)
            .into_iter()
            .map(|b| Blob {
                digest: digest(b),
                size: graph.blobs().get(&b).map(|i| i.size),
            })
            .collect(),
        manifests: d
            .manifests
            .iter()
            .map(|m| Manifest {
                repository: &m.repo,
                digest: digest(m.digest),
                tag_history: &m.tag_history,
            })
            .collect(),
        layer_links: d
            .layer_link_pairs()
            .map(|(repository, l)| LayerLink {
                repository,
                digest: digest(l),
            })
            .collect(),
    });
    let images_broken = match &assessed.verdict {
        gc_core::gc::GcVerdict::Unsafe { images, .. } => images.iter().map(|i| &**i).collect(),
        _ => Vec::new(),
    };
    PlanDocument {
        schema_version: PLAN_SCHEMA_VERSION,
        model: model.name(),
        location: &report.summary.location,
        verdict: assessed.verdict.name(),
        exit_status: status.code(),
        summary: assessed.summary_line(graph),
        abort,
        deletions,
        unsafe_deletions: report
            .gc_unsafe
            .iter()
            .filter(|r| r.model == model.name() && r.action != "abort")
            .collect(),
        images_broken,
    }
}
