//! `gc-audit recover`: audit, plan the recovery of every needed key that is absent, write the
//! plan files, print the summary (SPEC §5a).
//!
//! Same order as `scan`: the plan folder is prepared before the first LIST, filled after the
//! plan, and put in place whole before the summary is printed; the exit status is decided
//! before anything reaches stdout. Nothing is written to the audited storage (or to `--from`):
//! the plan is for the operator to apply.

use crate::config::RecoverConfig;
use crate::progress::Bars;
use crate::recover_script::{self, full_key, Target};
use crate::report_files::ReportDir;
use crate::scan::{cli_audit_options, open_storage};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use gc_core::audit::audit;
use gc_core::recover::{self, Action, RecoverOptions, RecoveryPlan, SourceUsed};
use gc_core::report::Summary;
use gc_core::storage::{RequestCounts, Versioning};
use indicatif::HumanBytes;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

/// The plan files, in the order they are written.
pub(crate) const PLAN_FILES: [&str; 4] = [
    "recover.csv",
    "recover.sh",
    "s3-batch-manifest.csv",
    "summary.json",
];

/// How many tag names a summary line shows.
const TAGS_SHOWN: usize = 12;

/// Run `recover`.
pub(crate) async fn run(config: RecoverConfig) -> Result<Outcome> {
    let bars = Bars::new(config.quiet, crate::logging::verbose());
    let storage = open_storage(&config.location, &bars).await?;
    let from = match &config.from {
        Some(l) => Some(open_storage(l, &bars).await.context("opening --from")?),
        None => None,
    };
    let dir = ReportDir::prepare(&config.out, config.location.audited_root())?;
    let (opts, cache_warnings) = cli_audit_options(
        config.grace,
        config.concurrency,
        config.verify_links,
        &config.cache,
    );
    let outcome = audit(storage.as_ref(), &opts, &bars).await;
    if !outcome.report.summary.complete {
        let errors = outcome.report.summary.errors.join("\n  ");
        bail!("audit incomplete, no recovery planned:\n  {errors}");
    }
    let plan_opts = RecoverOptions {
        verify_content: config.verify_content,
        concurrency: config.concurrency,
        manifest_size_limit: opts.manifest_size_limit,
    };
    let plan = recover::plan(&outcome, storage.as_ref(), from.as_deref(), &plan_opts).await;
    let target = Target::of(&config.location, config.from.as_ref())?;
    let code = plan.exit_code();
    let mut audit_summary = outcome.report.summary;
    let during_audit = std::mem::take(&mut audit_summary.warnings);
    audit_summary.warnings = [config.warnings.clone(), cache_warnings, during_audit].concat();
    let summary = RecoverSummary::new(&plan, &config, &target, audit_summary, code);
    let summary_bytes = {
        let mut b = serde_json::to_vec_pretty(&summary)?;
        b.push(b'\n');
        b
    };
    dir.write_file("recover.csv", &recover_csv(&plan, &target)?)?;
    dir.write_file(
        "recover.sh",
        recover_script::render(&plan, &target).as_bytes(),
    )?;
    dir.write_file("s3-batch-manifest.csv", &batch_manifest(&plan, &target)?)?;
    dir.write_file("summary.json", &summary_bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.path_staged("recover.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", script.display()))?;
    }
    let shown = dir.path().to_path_buf();
    dir.commit()?;
    let stdout = if config.json {
        summary_bytes
    } else {
        render(&plan, &summary, &shown).into_bytes()
    };
    Ok(Outcome { code, stdout })
}

/// `recover.csv`: `key,action,version_id,size,needed_by,source`, sorted by key.
fn recover_csv(plan: &RecoveryPlan, target: &Target) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["key", "action", "version_id", "size", "needed_by", "source"])?;
    for r in &plan.rows {
        let size = r.size.map(|s| s.to_string()).unwrap_or_default();
        w.write_record([
            full_key(target, &r.key).as_str(),
            r.action.as_str(),
            &r.version_id,
            &size,
            &r.needed_by,
            &r.source,
        ])?;
    }
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("writing recover.csv: {}", e.error()))
}

/// `s3-batch-manifest.csv`: `Bucket,Key,VersionId` of the copy-version rows, keys
/// URL-encoded, no header (S3 Batch Operations' CSV manifest).
fn batch_manifest(plan: &RecoveryPlan, target: &Target) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if let Some(bucket) = target.bucket() {
        for r in plan.rows.iter().filter(|r| r.action == Action::CopyVersion) {
            w.write_record([
                bucket,
                &recover_script::url_encode(&full_key(target, &r.key), false),
                &r.version_id,
            ])?;
        }
    }
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("writing s3-batch-manifest.csv: {}", e.error()))
}

/// `summary.json` of a recover run.
#[derive(Debug, Serialize)]
struct RecoverSummary {
    schema_version: u32,
    command: &'static str,
    location: String,
    from: Option<String>,
    complete: bool,
    exit_status: u8,
    /// Where absent keys were looked for: `versions` (with the bucket's versioning state),
    /// `from`, or `none` (with why).
    source: SourceJson,
    verify_content: bool,
    /// Keys of the target state (what every tag's pull and every present revision needs).
    target_keys: u64,
    /// Needed keys absent (rows of recover.csv).
    missing_keys: u64,
    actions: BTreeMap<&'static str, recover::KeysBytes>,
    tags_restored: Vec<String>,
    tags_broken: BTreeMap<String, u64>,
    manifests_restored: u64,
    manifests_reread: u64,
    /// What planning cost, after the audit.
    requests: PlanRequests,
    errors: Vec<String>,
    finished_at: String,
    /// The audit the plan is built on (scan's summary.json).
    audit: Summary,
}

#[derive(Debug, Serialize)]
struct SourceJson {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    versioning: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

#[derive(Debug, Serialize)]
struct PlanRequests {
    /// Requests to the audited storage (LIST includes ListObjectVersions pages where the
    /// backend counts them there).
    audited: RequestCounts,
    from: Option<RequestCounts>,
    /// All of them together.
    total: u64,
    /// Version listings: prefixes listed, entries, pages.
    version_listings: recover::ListingStats,
    /// With the bucket's versions as the source: the budget, one request per absent key plus
    /// the version listings' pages. (A `--from` copy is read once per absent key, and present
    /// manifests are read again for their descriptors' sizes: `manifests_reread`.)
    budget: Option<u64>,
}

pub(crate) fn versioning_name(v: Versioning) -> &'static str {
    match v {
        Versioning::Never => "never",
        Versioning::Enabled => "enabled",
        Versioning::Suspended => "suspended",
    }
}

impl RecoverSummary {
    fn new(
        plan: &RecoveryPlan,
        config: &RecoverConfig,
        target: &Target,
        audit: Summary,
        code: u8,
    ) -> RecoverSummary {
        let source = match &plan.source {
            SourceUsed::Versions(v) => SourceJson {
                kind: "versions",
                versioning: Some(versioning_name(*v)),
                location: None,
                why: (*v == Versioning::Never)
                    .then(|| "versioning was never enabled on the bucket".to_string()),
            },
            SourceUsed::From(l) => SourceJson {
                kind: "from",
                versioning: None,
                location: Some(l.clone()),
                why: None,
            },
            SourceUsed::None(why) => SourceJson {
                kind: "none",
                versioning: None,
                location: None,
                why: Some(why.clone()),
            },
        };
        RecoverSummary {
            schema_version: 1,
            command: "recover",
            location: audit.location.clone(),
            from: config.from.as_ref().map(|_| target.backup_location()),
            complete: plan.complete(),
            exit_status: code,
            source,
            verify_content: config.verify_content,
            target_keys: plan.needed_keys,
            missing_keys: plan.rows.len() as u64,
            actions: recover::rows::totals(&plan.rows),
            tags_restored: plan.tags_restored.clone(),
            tags_broken: plan.tags_broken.clone(),
            manifests_restored: plan.manifests_restored,
            manifests_reread: plan.manifests_reread,
            requests: PlanRequests {
                audited: plan.requests,
                from: plan.from_requests,
                total: plan.requests_made(),
                version_listings: plan.listings,
                budget: matches!(plan.source, SourceUsed::Versions(_))
                    .then(|| plan.request_budget()),
            },
            errors: plan.errors.clone(),
            finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            audit,
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn names(tags: impl ExactSizeIterator<Item = String>) -> String {
    let n = tags.len();
    let mut shown: Vec<String> = tags.take(TAGS_SHOWN).collect();
    if n > TAGS_SHOWN {
        shown.push(format!("… {} more", n - TAGS_SHOWN));
    }
    shown.join(", ")
}

/// The human summary.
fn render(plan: &RecoveryPlan, s: &RecoverSummary, dir: &std::path::Path) -> String {
    let mut o = String::new();
    let source = match &plan.source {
        SourceUsed::Versions(Versioning::Never) => {
            "none: versioning was never enabled on the bucket (give --from a copy)".to_string()
        }
        SourceUsed::Versions(v) => {
            format!("the bucket's versions (versioning {})", versioning_name(*v))
        }
        SourceUsed::From(l) => format!("--from {l}"),
        SourceUsed::None(why) => format!("none: {why}"),
    };
    let _ = writeln!(o, "gc-audit recover — {}", s.location);
    let _ = writeln!(o, "source: {source}");
    let _ = writeln!(
        o,
        "target state: {} keys (every tag's pull, every present revision's content); {} absent",
        s.target_keys, s.missing_keys
    );
    for (action, t) in &s.actions {
        if t.keys > 0 {
            let _ = writeln!(
                o,
                "  {action:<21} {:>7} keys {:>11}",
                t.keys,
                HumanBytes(t.bytes).to_string()
            );
        }
    }
    if !plan.tags_restored.is_empty() {
        let _ = writeln!(
            o,
            "restores {}: {}",
            plural(plan.tags_restored.len(), "tag", "tags"),
            names(plan.tags_restored.iter().cloned())
        );
    }
    if !plan.tags_broken.is_empty() {
        let _ = writeln!(
            o,
            "stays broken: {} (unrecoverable keys: {})",
            plural(plan.tags_broken.len(), "tag", "tags"),
            names(plan.tags_broken.iter().map(|(t, n)| format!("{t} {n}")))
        );
        let _ = writeln!(
            o,
            "  re-push them; the unrecoverable rows of recover.csv say what was found"
        );
    }
    for e in &plan.errors {
        let _ = writeln!(o, "error: {e}");
    }
    let r = &s.requests;
    let reread = match s.manifests_reread {
        0 => String::new(),
        n => format!("; {n} present manifests read again for their layers' sizes"),
    };
    match (r.budget, r.from) {
        (Some(budget), _) => {
            let _ = writeln!(
                o,
                "requests for the plan: {} (budget {budget}: {} absent keys + {} version listing pages{reread})",
                r.total, s.missing_keys, r.version_listings.pages
            );
        }
        (None, Some(from)) => {
            let _ = writeln!(
                o,
                "requests for the plan: {} ({} to --from for {} absent keys{reread})",
                r.total,
                from.list + from.get + from.head,
                s.missing_keys
            );
        }
        (None, None) => {
            let _ = writeln!(o, "requests for the plan: {}{reread}", r.total);
        }
    }
    let _ = writeln!(o, "plan in {}: {}", dir.display(), PLAN_FILES.join(" "));
    if plan.planned().next().is_some() {
        let _ = writeln!(
            o,
            "next: read {0}/recover.sh, run it, then gc-audit scan",
            dir.display()
        );
    }
    let verdict = match s.exit_status {
        0 => "nothing needed is absent",
        1 => "the plan restores everything needed",
        2 => "incomplete",
        _ => "some needed keys cannot be recovered",
    };
    let _ = writeln!(o, "exit status {}: {verdict}", s.exit_status);
    o
}
