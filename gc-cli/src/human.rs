//! The short human summary printed to stdout after a scan.

use gc_core::gc::{GcModel, GcVerdict};
use gc_core::report::{ExitStatus, PullProblem, PullProblems, Report};
use indicatif::HumanBytes;
use std::fmt::Write;
use std::path::Path;

const MAX_BROKEN_SHOWN: usize = 10;

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One line per broken tag: the problem count by kind and reason, details in broken.csv.
fn short_problem(problems: &PullProblems) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for p in problems.iter() {
        let kind = match p {
            PullProblem::CurrentLinkNotDigest(_) => "current link not-a-digest".to_string(),
            PullProblem::Content { what, why, .. } => format!("{what} {why}"),
        };
        *counts.entry(kind).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One model's line: safe, would break images, would stop, or cannot be predicted.
fn gc_verdict(verdict: Option<&GcVerdict>) -> String {
    match verdict {
        None => "not assessed".to_string(),
        Some(GcVerdict::Aborts {
            reason,
            key_or_digest,
        }) => format!("would stop with an error ({reason} at {key_or_digest})"),
        Some(GcVerdict::Unpredictable { .. }) => {
            "cannot be predicted (see findings.csv, gc-unpredictable)".to_string()
        }
        Some(GcVerdict::Safe) => "safe: deletes nothing still needed".to_string(),
        Some(GcVerdict::Unsafe { rows, images }) => {
            let shown: Vec<&str> = images.iter().take(3).map(|i| &**i).collect();
            let more = if images.len() > 3 {
                format!(", … {} more", images.len() - 3)
            } else {
                String::new()
            };
            format!(
                "UNSAFE: {} would break {} ({}{more})",
                plural(*rows as u64, "deletion", "deletions"),
                plural(images.len() as u64, "image", "images"),
                shown.join(", ")
            )
        }
    }
}

/// What to do about what the report found: which modelled collector is safe when one is
/// not, and how to bring broken tags back.
fn next_steps(report: &Report, o: &mut String) {
    let mut steps = Vec::new();
    let safe: Vec<&str> = GcModel::ALL
        .into_iter()
        .filter(|m| report.gc_verdict(*m) == Some(&GcVerdict::Safe))
        .map(GcModel::name)
        .collect();
    for model in GcModel::ALL {
        if let Some(GcVerdict::Unsafe { images, .. }) = report.gc_verdict(model) {
            let alternative = match safe.as_slice() {
                [] => "no modelled garbage-collect is safe on this storage; fix what breaks first"
                    .to_string(),
                [one] => format!("{one} deletes nothing still needed"),
                [first @ .., last] => format!(
                    "{} and {last} delete nothing still needed",
                    first.join(", ")
                ),
            };
            steps.push(format!(
                "do not run {model}: it would break {}; {alternative} (gc-audit gc-plan --model … lists each deletion)",
                plural(images.len() as u64, "image", "images"),
            ));
        }
    }
    if !report.broken.is_empty() {
        steps.push(format!(
            "re-push the {} in repush.txt (one repository:tag per line) from a registry that still has them, e.g. `regctl image copy SRC/REPO:TAG DST/REPO:TAG` or `crane copy SRC/REPO:TAG DST/REPO:TAG`; after a bad garbage-collect, `gc-audit recover` plans a restore from bucket versions or a backup (--from)",
            plural(report.broken.len() as u64, "broken tag", "broken tags"),
        ));
    }
    if steps.is_empty() {
        return;
    }
    let _ = writeln!(o, "next steps:");
    for step in steps {
        let _ = writeln!(o, "  - {step}");
    }
}

/// Render the summary. `written` are the report files written into `dir`.
pub(crate) fn render(
    report: &Report,
    dir: &Path,
    written: &[&str],
    status: ExitStatus,
    notes: &[String],
) -> String {
    let s = &report.summary;
    let t = &s.totals;
    let mut o = String::new();
    let _ = writeln!(o, "gc-audit {} — {} ({})", s.version, s.location, s.backend);
    let _ = writeln!(
        o,
        "storage: {}, {}, {} ({}), {} read, {} keys listed in {:.1}s",
        plural(t.repositories, "repository", "repositories"),
        plural(t.tags, "tag", "tags"),
        plural(t.blobs, "blob", "blobs"),
        HumanBytes(t.bytes),
        plural(t.manifests, "manifest", "manifests"),
        t.keys,
        s.duration_seconds
    );
    for w in &s.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    if s.writes_during_scan > 0 {
        let _ = writeln!(
            o,
            "the registry was written during the scan: {} newer than its start; the report describes it as of {} (as_of)",
            plural(s.writes_during_scan, "key", "keys"),
            s.as_of
        );
    }
    if s.links.unverified > 0 {
        let _ = writeln!(
            o,
            "{} checked by size only: {} (--verify-links reads them)",
            plural(s.links.unverified, "link", "links"),
            s.links
                .unverified_why
                .as_deref()
                .unwrap_or("their ETags tell nothing")
        );
    }
    if !s.complete && s.findings.contains_key("no-registry") {
        let _ = writeln!(
            o,
            "\nAUDIT INCOMPLETE: no registry at this location (a mistyped root?). Nothing was checked."
        );
        for e in s.errors.iter().take(5) {
            let _ = writeln!(o, "  {e}");
        }
    } else if !s.complete {
        let _ = writeln!(
            o,
            "\nAUDIT INCOMPLETE: {} failed. Reclaimable and integrity reports are withheld; see findings.csv (kinds read-error, special-file, symlink-outside-root, symlink-loop, dangling-symlink).",
            plural(s.errors.len() as u64, "listing or read", "listings or reads")
        );
        for e in s.errors.iter().take(5) {
            let _ = writeln!(o, "  {e}");
        }
    } else {
        let _ = writeln!(o, "\nintegrity");
        let _ = writeln!(o, "  missing content   {:>6}   missing.csv", s.missing);
        let _ = writeln!(o, "  dangling children {:>6}   dangling.csv", s.dangling);
        let _ = writeln!(
            o,
            "  broken tags       {:>6}   broken.csv (the re-push list)",
            s.broken_tags
        );
        for row in report.broken.iter().take(MAX_BROKEN_SHOWN) {
            let _ = writeln!(
                o,
                "    {}:{}  {}",
                row.repository,
                row.tag,
                short_problem(&row.problem)
            );
        }
        if report.broken.len() > MAX_BROKEN_SHOWN {
            let _ = writeln!(
                o,
                "    … {} more in broken.csv",
                report.broken.len() - MAX_BROKEN_SHOWN
            );
        }
        let _ = writeln!(o, "\nbefore garbage-collect (gc-unsafe.csv)");
        for model in GcModel::ALL {
            let _ = writeln!(
                o,
                "  {:<20} {}",
                model.name(),
                gc_verdict(report.gc_verdict(model))
            );
        }
        let _ = writeln!(o, "\nreclaimable (orphaned.csv)");
        let _ = writeln!(
            o,
            "  by garbage-collect                   {:>14}  {}",
            plural(s.reclaimable_by_gc.count, "blob", "blobs"),
            HumanBytes(s.reclaimable_by_gc.bytes)
        );
        let _ = writeln!(
            o,
            "  only by garbage-collect -m           {:>14}  {}",
            plural(s.reclaimable_by_gc_delete_untagged.count, "blob", "blobs"),
            HumanBytes(s.reclaimable_by_gc_delete_untagged.bytes)
        );
        let _ = writeln!(
            o,
            "  young (inside the {} grace), not counted {:>10}  {}",
            humantime::format_duration(std::time::Duration::from_secs(s.grace_seconds)),
            plural(s.young.count, "blob", "blobs"),
            HumanBytes(s.young.bytes)
        );
    }
    let total_findings: u64 = s.findings.values().sum();
    let kinds: Vec<String> = s.findings.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let severities: Vec<String> = ["error", "warning", "info"]
        .iter()
        .filter_map(|sev| {
            s.findings_by_severity.get(*sev).map(|n| match *sev {
                "info" => format!("{n} info"),
                _ => plural(*n, sev, &format!("{sev}s")),
            })
        })
        .collect();
    let _ = writeln!(
        o,
        "\nfindings {total_findings} (findings.csv{}){}{}",
        if severities.is_empty() {
            String::new()
        } else {
            format!("; {}", severities.join(", "))
        },
        if kinds.is_empty() { "" } else { ": " },
        kinds.join(", ")
    );
    let minimum = if s.backend == "s3" {
        let heads = match s.requests_minimum.head {
            0 => String::new(),
            n => format!(", HEAD {n}"),
        };
        format!(
            " (minimum for this bucket: LIST {}, GET {}{heads})",
            s.requests_minimum.list, s.requests_minimum.get
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "requests LIST {}, GET {}, HEAD {}{minimum}",
        s.requests.list, s.requests.get, s.requests.head
    );
    if let Some(cache) = &s.manifest_cache {
        let _ = writeln!(
            o,
            "manifest cache {cache}: {} remembered, {} read",
            s.cache_hits, s.cache_misses
        );
    }
    for note in notes {
        let _ = writeln!(o, "{note}");
    }
    let _ = writeln!(o, "reports in {}: {}", dir.display(), written.join(" "));
    if s.complete {
        next_steps(report, &mut o);
    }
    let verdict = match status {
        ExitStatus::Clean => "complete, no integrity findings",
        ExitStatus::IntegrityFindings => "complete, with integrity findings",
        ExitStatus::Incomplete => "audit incomplete",
    };
    let _ = writeln!(o, "exit status {}: {verdict}", status.code());
    o
}
