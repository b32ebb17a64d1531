//! What one modelled garbage-collect run means for a storage: the plan, the needed content it
//! would delete, and the verdict an operator acts on (SPEC §4, §5).
//!
//! An audit assesses every [`GcModel`] once ([`assess`]) and keeps the [`ModelOutcome`]s in its
//! report, so `gc-plan`, the human summary and embedders read the same verdict and no model
//! runs twice in one process.

use super::needed::{unsafe_deletions, UnsafeDeletions};
use super::{eligible_lines, Deletions, Driver, GcModel, GcPlan};
use crate::graph::Graph;
use crate::mark::GlobalMarks;
use crate::report::{DigestOrKey, GcUnsafeRow};
use std::fmt;
use std::sync::Arc;

/// Whether one modelled run is safe on this storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcVerdict {
    /// It deletes nothing still needed.
    Safe,
    /// It deletes needed content.
    Unsafe {
        /// Deletions of needed content (rows of `gc-unsafe.csv`).
        rows: usize,
        /// The images (`repo:tag` or `repo@digest`) they break, sorted.
        images: Vec<Arc<str>>,
    },
    /// It stops with an error on this storage and deletes nothing.
    Aborts {
        /// A short code (`bad-link`, `unparseable-manifest`, …; see [`super::GcAbort`]).
        reason: &'static str,
        /// The digest the error names, else the key at fault.
        key_or_digest: DigestOrKey,
    },
    /// gc-audit cannot predict it: the collector would read a manifest gc-audit did not.
    Unpredictable {
        /// Why.
        why: String,
    },
}

impl GcVerdict {
    /// The verdict's name in summaries: `safe`, `unsafe`, `aborts`, `unpredictable`.
    pub fn name(&self) -> &'static str {
        match self {
            GcVerdict::Safe => "safe",
            GcVerdict::Unsafe { .. } => "unsafe",
            GcVerdict::Aborts { .. } => "aborts",
            GcVerdict::Unpredictable { .. } => "unpredictable",
        }
    }
}

/// The exit status of the pre-GC check `gc-plan` (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStatus {
    /// 0: the run is safe.
    Safe,
    /// 1: it would delete needed content.
    Unsafe,
    /// 2: the audit is incomplete, or the run cannot be predicted.
    Incomplete,
    /// 3: the run would stop with an error.
    Aborts,
}

impl PlanStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            PlanStatus::Safe => 0,
            PlanStatus::Unsafe => 1,
            PlanStatus::Incomplete => 2,
            PlanStatus::Aborts => 3,
        }
    }
}

/// One model's run on this storage, as the audit assessed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOutcome {
    /// The model.
    pub model: GcModel,
    /// What the run does: its deletions, the error it stops on, or why it cannot be predicted.
    pub plan: GcPlan,
    /// What that means for the content still needed.
    pub verdict: GcVerdict,
}

impl ModelOutcome {
    /// The exit status of `gc-plan` for this model, given the audit saw everything.
    pub fn status(&self) -> PlanStatus {
        match self.verdict {
            GcVerdict::Safe => PlanStatus::Safe,
            GcVerdict::Unsafe { .. } => PlanStatus::Unsafe,
            GcVerdict::Aborts { .. } => PlanStatus::Aborts,
            GcVerdict::Unpredictable { .. } => PlanStatus::Incomplete,
        }
    }

    /// The deletions, when the run completes.
    pub fn deletions(&self) -> Option<&Deletions> {
        self.plan.deletions()
    }

    /// The `… eligible for deletion: …` lines of a completed run, as the real `--dry-run`
    /// prints them (sorted); empty when the run does not complete.
    pub fn eligible_lines(&self, graph: &Graph) -> Vec<String> {
        self.deletions()
            .map(|d| eligible_lines(graph, self.model, d))
            .unwrap_or_default()
    }

    /// The one-line summary of a completed run: `distribution-2.8-m: N blobs marked, N blobs
    /// (size) and N manifests eligible for deletion[, N layer links]; N unsafe deletions
    /// breaking N images`. `None` when the run does not complete.
    pub fn summary_line(&self, graph: &Graph) -> Option<String> {
        let d = self.deletions()?;
        let blob_bytes: u64 = d
            .blobs
            .iter()
            .filter_map(|b| graph.blobs().get(&b).map(|i| i.size))
            .sum();
        let layer_links = match d.layer_link_count() {
            0 => String::new(),
            1 => ", 1 layer link".to_string(),
            n => format!(", {n} layer links"),
        };
        let (rows, images) = match &self.verdict {
            GcVerdict::Unsafe { rows, images } => (*rows, images.len()),
            _ => (0, 0),
        };
        let n = |count: usize, one: &str, many: &str| {
            format!("{count} {}", if count == 1 { one } else { many })
        };
        Some(format!(
            "{}: {} marked, {} ({}) and {} eligible for deletion{layer_links}; {} breaking {}",
            self.model,
            n(d.marked, "blob", "blobs"),
            n(d.blobs.len(), "blob", "blobs"),
            HumanBytes(blob_bytes),
            n(d.manifests.len(), "manifest", "manifests"),
            n(rows, "unsafe deletion", "unsafe deletions"),
            n(images, "image", "images"),
        ))
    }
}

/// Run `model` over the graph once and judge it: the outcome, and its `gc-unsafe.csv` rows.
pub fn assess(
    graph: &Graph,
    marks: &GlobalMarks,
    model: GcModel,
    driver: Driver,
) -> (ModelOutcome, Vec<GcUnsafeRow>) {
    let plan = super::plan(graph, model, driver);
    let (verdict, rows) = match unsafe_deletions(graph, marks, model, &plan) {
        Err(u) => (GcVerdict::Unpredictable { why: u.why }, Vec::new()),
        Ok(UnsafeDeletions { rows, images }) => {
            let verdict = match &plan {
                GcPlan::Aborts(a) => GcVerdict::Aborts {
                    reason: a.reason,
                    key_or_digest: DigestOrKey::parse(a.digest.as_deref().unwrap_or(&a.key)),
                },
                _ if rows.is_empty() => GcVerdict::Safe,
                _ => GcVerdict::Unsafe {
                    rows: rows.len(),
                    images,
                },
            };
            (verdict, rows)
        }
    };
    (
        ModelOutcome {
            model,
            plan,
            verdict,
        },
        rows,
    )
}

/// Bytes as indicatif's `HumanBytes` prints them (`1.50 MiB`), which the dry-run summary line
/// has always used.
struct HumanBytes(u64);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let n = self.0;
        if n < 1024 {
            return write!(f, "{n} B");
        }
        let mut value = n as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::HumanBytes;

    #[test]
    fn human_bytes_print_as_indicatif_prints_them() {
        let mut n: u64 = 0;
        let mut values = vec![0, 1, 1023, 1024, 1025, 1536, u64::MAX];
        while n < u64::MAX / 3 {
            n = n * 3 + 7;
            values.extend([n, n.saturating_sub(1), n.saturating_add(1)]);
        }
        for shift in 10..63 {
            values.extend([(1u64 << shift) - 1, 1u64 << shift, (1u64 << shift) + 1]);
            values.push(((1u64 << shift) as f64 * 1023.996) as u64 >> 10);
        }
        for v in values {
            assert_eq!(
                HumanBytes(v).to_string(),
                indicatif::HumanBytes(v).to_string(),
                "{v}"
            );
        }
    }
}
