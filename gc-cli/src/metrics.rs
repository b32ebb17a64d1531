//! `scan --metrics-out FILE.prom`: the run in Prometheus text exposition format (SPEC §5b), for
//! node_exporter's textfile collector.
//!
//! A scheduled audit belongs in the operator's monitoring: alert when the last complete audit is
//! too old (`time() - gc_audit_last_success_timestamp_seconds`), when integrity findings appear,
//! or when the GC model they run turns unsafe. The file is the classic text format (no
//! timestamps, no OpenMetrics `# EOF`, which the textfile collector rejects), written whole to a
//! temporary file in the same directory and renamed over the old one, so the collector never
//! reads half a file. Names follow Prometheus conventions: the `gc_audit_` prefix, base units
//! (`_bytes`, `_seconds`), `_total` only for counters that accumulate across runs (runs and
//! requests, carried over from the previous file), and low-cardinality labels (no digests;
//! repositories only with `--metrics-repositories`).
//!
//! The last-success timestamp is this run's end when the audit is complete, else the previous
//! file's value (absent when there never was one), so an incomplete run does not hide that the
//! last good audit is getting old.

use anyhow::{Context, Result};
use gc_core::gc::{GcModel, GcVerdict};
use gc_core::report::{ReclaimableBy, Report};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const STATES: [&str; 4] = ["safe", "unsafe", "aborts", "unpredictable"];

/// A label value escaped for the text format (`\`, `"` and newlines).
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// The text of one metrics file, built family by family.
#[derive(Debug, Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// Start a family: its `# HELP` and `# TYPE` lines.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample of the family just started.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.text, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A family of one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// The values kept from the previous file: what a run that is not complete must not reset.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Previous {
    last_success: Option<f64>,
    /// Counter samples by `name{labels}`.
    counters: BTreeMap<String, f64>,
}

impl Previous {
    /// Read the previous file at `path` (nothing when it is absent or unreadable: the counters
    /// then start again, which Prometheus takes as a reset).
    pub(crate) fn read(path: &Path) -> Previous {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Previous::default();
        };
        let mut previous = Previous::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if series == "gc_audit_last_success_timestamp_seconds" {
                previous.last_success = Some(value);
            } else if series.starts_with("gc_audit_") && series.contains("_total") {
                previous.counters.insert(series.to_string(), value);
            }
        }
        previous
    }

    fn counter(&self, series: &str) -> f64 {
        self.counters.get(series).copied().unwrap_or(0.0)
    }
}

/// What the metrics file describes: the report of a finished audit, or a run that failed
/// before it had one (no credentials, an unreachable endpoint).
#[derive(Debug)]
pub(crate) enum Run<'a> {
    /// The audit ran; its report and exit status.
    Audited { report: &'a Report, exit_status: u8 },
    /// The run failed before auditing (exit status 2).
    Failed { location: &'a str },
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Render the metrics of `run`, ended at `now`, carrying over from `previous`.
pub(crate) fn render(
    run: &Run<'_>,
    now: SystemTime,
    previous: &Previous,
    per_repository: bool,
) -> String {
    let mut m = Exposition::default();
    let now = unix_seconds(now);
    let (report, exit_status) = match run {
        Run::Audited {
            report,
            exit_status,
        } => (Some(*report), *exit_status),
        Run::Failed { .. } => (None, 2),
    };
    let complete = report.is_some_and(|r| r.summary.complete);
    let location = match (run, report) {
        (_, Some(r)) => r.summary.location.as_str(),
        (Run::Failed { location }, None) => location,
        (Run::Audited { .. }, None) => "",
    };

    m.family(
        "gc_audit_info",
        "gauge",
        "The audited location and the tool version (always 1).",
    );
    let backend = report.map_or("", |r| r.summary.backend.as_str());
    m.sample(
        "gc_audit_info",
        &[
            ("location", location),
            ("backend", backend),
            ("version", env!("CARGO_PKG_VERSION")),
        ],
        1.0,
    );
    m.single(
        "gc_audit_last_run_timestamp_seconds",
        "gauge",
        "When the last scan ended, complete or not (Unix time).",
        now,
    );
    let last_success = if complete {
        Some(now)
    } else {
        previous.last_success
    };
    if let Some(t) = last_success {
        m.single(
            "gc_audit_last_success_timestamp_seconds",
            "gauge",
            "When the last complete scan ended (Unix time); alert on time() minus this.",
            t,
        );
    }
    m.single(
        "gc_audit_complete",
        "gauge",
        "1 if the last scan read everything it needed, else 0 (its reports are withheld).",
        f64::from(u8::from(complete)),
    );
    m.single(
        "gc_audit_exit_status",
        "gauge",
        "The last scan's exit status: 0 clean, 1 integrity findings, 2 incomplete or failed.",
        f64::from(exit_status),
    );
    m.family(
        "gc_audit_runs_total",
        "counter",
        "Scans run, by whether they were complete.",
    );
    for result in ["complete", "incomplete"] {
        let series = format!("gc_audit_runs_total{{result=\"{result}\"}}");
        let this = f64::from(u8::from((result == "complete") == complete));
        m.sample(
            "gc_audit_runs_total",
            &[("result", result)],
            previous.counter(&series) + this,
        );
    }
    let Some(report) = report else {
        return m.text;
    };
    let s = &report.summary;
    m.single(
        "gc_audit_duration_seconds",
        "gauge",
        "How long the last scan took.",
        s.duration_seconds,
    );

    m.family(
        "gc_audit_requests_total",
        "counter",
        "Storage requests made by scans, by kind (LIST, GET, HEAD).",
    );
    for (kind, n) in [
        ("LIST", s.requests.list),
        ("GET", s.requests.get),
        ("HEAD", s.requests.head),
    ] {
        let series = format!("gc_audit_requests_total{{kind=\"{kind}\"}}");
        m.sample(
            "gc_audit_requests_total",
            &[("kind", kind)],
            previous.counter(&series) + n as f64,
        );
    }

    m.family(
        "gc_audit_manifest_cache_total",
        "counter",
        "Manifest cache lookups by scans: hit (not read), miss (read from storage).",
    );
    for (result, n) in [("hit", s.cache_hits), ("miss", s.cache_misses)] {
        let series = format!("gc_audit_manifest_cache_total{{result=\"{result}\"}}");
        m.sample(
            "gc_audit_manifest_cache_total",
            &[("result", result)],
            previous.counter(&series) + n as f64,
        );
    }

    let t = &s.totals;
    for (name, help, value) in [
        (
            "gc_audit_storage_blobs",
            "Blobs in the blob store.",
            t.blobs,
        ),
        (
            "gc_audit_storage_bytes",
            "Bytes of the blob store.",
            t.bytes,
        ),
        ("gc_audit_repositories", "Repositories.", t.repositories),
        ("gc_audit_tags", "Tags.", t.tags),
        ("gc_audit_manifests", "Manifests read.", t.manifests),
        ("gc_audit_keys_listed", "Storage keys listed.", t.keys),
    ] {
        m.single(name, "gauge", help, value as f64);
    }

    if complete {
        write_states(&mut m, report);
        for (name, help, value) in [
            (
                "gc_audit_missing_references",
                "References from live manifests to absent content (rows of missing.csv).",
                s.missing,
            ),
            (
                "gc_audit_dangling_index_children",
                "Index children that cannot be pulled (rows of dangling.csv).",
                s.dangling,
            ),
            (
                "gc_audit_broken_tags",
                "Tags whose image cannot be pulled (rows of broken.csv).",
                s.broken_tags,
            ),
        ] {
            m.single(name, "gauge", help, value as f64);
        }
        m.family(
            "gc_audit_findings",
            "gauge",
            "Rows of findings.csv, by kind.",
        );
        for (kind, n) in &s.findings {
            m.sample("gc_audit_findings", &[("kind", kind)], *n as f64);
        }
        write_models(&mut m, report);
        if per_repository {
            write_repositories(&mut m, report);
        }
    }
    m.text
}

/// Blobs and bytes by state: live, tagged, reclaimable by gc, by gc -m, young.
fn write_states(m: &mut Exposition, report: &Report) {
    let t = &report.summary.totals;
    let (mut outside_live, mut untagged) = ((0u64, 0u64), (0u64, 0u64));
    for row in report.orphaned.iter() {
        let slot = match row.reclaimable_by {
            ReclaimableBy::Gc => &mut outside_live,
            ReclaimableBy::GcDeleteUntagged => &mut untagged,
        };
        slot.0 += 1;
        slot.1 += row.size;
    }
    let live = (
        t.blobs.saturating_sub(outside_live.0),
        t.bytes.saturating_sub(outside_live.1),
    );
    let tagged = (
        live.0.saturating_sub(untagged.0),
        live.1.saturating_sub(untagged.1),
    );
    let s = &report.summary;
    let states = [
        ("live", live),
        ("tagged", tagged),
        (
            "reclaimable_by_gc",
            (s.reclaimable_by_gc.count, s.reclaimable_by_gc.bytes),
        ),
        (
            "reclaimable_by_gc_delete_untagged",
            (
                s.reclaimable_by_gc_delete_untagged.count,
                s.reclaimable_by_gc_delete_untagged.bytes,
            ),
        ),
        ("young", (s.young.count, s.young.bytes)),
    ];
    m.family(
        "gc_audit_blobs",
        "gauge",
        "Blobs by state: live (reachable from a tag or manifest revision), tagged (reachable \
         from a tag), reclaimable by gc or only by gc --delete-untagged (older than the grace \
         period), young (orphaned but within the grace period).",
    );
    for (state, (count, _)) in states {
        m.sample("gc_audit_blobs", &[("state", state)], count as f64);
    }
    m.family(
        "gc_audit_blobs_bytes",
        "gauge",
        "Bytes of the blobs by state (see gc_audit_blobs).",
    );
    for (state, (_, bytes)) in states {
        m.sample("gc_audit_blobs_bytes", &[("state", state)], bytes as f64);
    }
}

/// Per GC model: safe or not, its state, and what its run would break (read from the
/// report's typed verdicts; the bytes from its gc-unsafe.csv rows).
fn write_models(m: &mut Exposition, report: &Report) {
    struct Row {
        name: &'static str,
        state: Option<&'static str>,
        deletions: usize,
        bytes: u64,
        images: usize,
    }
    let rows: Vec<Row> = GcModel::ALL
        .iter()
        .map(|&model| {
            let verdict = report.gc_verdict(model);
            let (deletions, images) = match verdict {
                Some(GcVerdict::Unsafe { rows, images }) => (*rows, images.len()),
                _ => (0, 0),
            };
            let bytes = if deletions > 0 {
                report
                    .gc_unsafe
                    .iter()
                    .filter(|r| r.model == model.name())
                    .filter_map(|r| r.size)
                    .sum()
            } else {
                0
            };
            Row {
                name: model.name(),
                state: verdict.map(GcVerdict::name),
                deletions,
                bytes,
                images,
            }
        })
        .collect();
    m.family(
        "gc_audit_gc_model_safe",
        "gauge",
        "1 if this garbage-collect run would delete nothing still needed, else 0.",
    );
    for r in &rows {
        let safe = f64::from(u8::from(r.state == Some("safe")));
        m.sample("gc_audit_gc_model_safe", &[("model", r.name)], safe);
    }
    m.family(
        "gc_audit_gc_model_state",
        "gauge",
        "The verdict on this garbage-collect run: 1 for its state (safe, unsafe, aborts, \
         unpredictable), 0 for the others.",
    );
    for r in &rows {
        for state in STATES {
            let on = f64::from(u8::from(r.state == Some(state)));
            m.sample(
                "gc_audit_gc_model_state",
                &[("model", r.name), ("state", state)],
                on,
            );
        }
    }
    type Field = fn(&Row) -> f64;
    let families: [(&str, &str, Field); 3] = [
        (
            "gc_audit_gc_model_unsafe_deletions",
            "Deletions of needed content this garbage-collect run would make (rows of gc-unsafe.csv).",
            |r| r.deletions as f64,
        ),
        (
            "gc_audit_gc_model_broken_bytes",
            "Bytes of needed content this garbage-collect run would delete.",
            |r| r.bytes as f64,
        ),
        (
            "gc_audit_gc_model_broken_images",
            "Images (tags or manifests) this garbage-collect run would break.",
            |r| r.images as f64,
        ),
    ];
    for (name, help, field) in families {
        m.family(name, "gauge", help);
        for r in &rows {
            m.sample(name, &[("model", r.name)], field(r));
        }
    }
}

/// Per repository (only with `--metrics-repositories`: one series per repository).
fn write_repositories(m: &mut Exposition, report: &Report) {
    type Field = fn(&gc_core::report::RepoRow) -> u64;
    let families: [(&str, &str, Field); 4] = [
        (
            "gc_audit_repository_bytes",
            "Bytes of the blobs a repository's live manifests reference.",
            |r| r.bytes,
        ),
        (
            "gc_audit_repository_exclusive_bytes",
            "Bytes only this repository's live manifests reference.",
            |r| r.exclusive_bytes,
        ),
        ("gc_audit_repository_tags", "Tags of a repository.", |r| {
            r.tags
        }),
        (
            "gc_audit_repository_manifests",
            "Manifests of a repository.",
            |r| r.manifests,
        ),
    ];
    for (name, help, field) in families {
        m.family(name, "gauge", help);
        for repo in &report.repos {
            m.sample(
                name,
                &[("repository", &repo.repository)],
                field(repo) as f64,
            );
        }
    }
}

/// Write the metrics of `run` to `path`, carrying over from the file there.
pub(crate) fn write(path: &Path, run: &Run<'_>, per_repository: bool) -> Result<()> {
    let previous = Previous::read(path);
    let text = render(run, SystemTime::now(), &previous, per_repository);
    crate::atomic_file::write_atomically(path, text.as_bytes())
        .with_context(|| format!("--metrics-out {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("a\nb"), r"a\nb");
    }

    #[test]
    fn a_failed_run_keeps_the_last_success_and_counts_itself() {
        let previous = Previous {
            last_success: Some(1_700_000_000.0),
            counters: [
                ("gc_audit_runs_total{result=\"complete\"}".to_string(), 4.0),
                (
                    "gc_audit_runs_total{result=\"incomplete\"}".to_string(),
                    1.0,
                ),
            ]
            .into_iter()
            .collect(),
        };
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let text = render(&Run::Failed { location: "s3://b" }, now, &previous, false);
        assert!(
            text.contains("gc_audit_last_success_timestamp_seconds 1700000000\n"),
            "{text}"
        );
        assert!(
            text.contains("gc_audit_last_run_timestamp_seconds 1800000000\n"),
            "{text}"
        );
        assert!(text.contains("gc_audit_complete 0\n"), "{text}");
        assert!(text.contains("gc_audit_exit_status 2\n"), "{text}");
        assert!(
            text.contains("gc_audit_runs_total{result=\"complete\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("gc_audit_runs_total{result=\"incomplete\"} 2\n"),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gc.prom");
        crate::atomic_file::write_atomically(&file, text.as_bytes()).unwrap();
        assert_eq!(
            Previous::read(&file),
            Previous {
                last_success: Some(1_700_000_000.0),
                counters: [
                    ("gc_audit_runs_total{result=\"complete\"}".to_string(), 4.0),
                    (
                        "gc_audit_runs_total{result=\"incomplete\"}".to_string(),
                        2.0
                    ),
                ]
                .into_iter()
                .collect(),
            }
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left");
    }
}
