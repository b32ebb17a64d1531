//! The report folder: prepared before the scan, filled after it, summary.json last, and put in
//! place whole when the run ends (SPEC §4).
//!
//! Files are written into a fresh sibling of `--out` (`.<name>.tmp-<pid>-<random>`) and that
//! folder is renamed to `--out` only when the run has ended, so an interrupted run (Ctrl-C, a
//! crash, SIGKILL) leaves the previous report exactly as it was, and a reader never sees a
//! report mixed from two runs. `--out` must not be inside the audited filesystem root (the
//! auditor never writes into what it audits) nor contain it (replacing the folder would delete
//! the registry), and an existing `--out` is replaced only when it is empty or a gc-audit
//! report folder.
//!
//! Rows come sorted from gc-core; this module only serializes them. Each CSV has an explicit
//! header so that an empty report still says what its columns are.

use anyhow::{bail, Context, Result};
use gc_core::report::{
    BrokenRow, CsvRow, DanglingRow, FindingRow, GcUnsafeRow, MissingRow, OrphanedRow, RepoRow,
    Report, REPORT_FILES, REPUSH_FILE, SUMMARY_FILE, WITHHELD_WHEN_INCOMPLETE,
};
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Serialize rows of type `R` (or references to them) as CSV into `out`, header first; returns
/// `out`, flushed.
pub(crate) fn write_csv_rows<R: CsvRow, W: Write>(
    rows: impl IntoIterator<Item = impl Serialize>,
    out: W,
) -> Result<W> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    w.write_record(R::HEADER)?;
    for row in rows {
        w.serialize(row)?;
    }
    w.flush().context("flushing CSV")?;
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("flushing CSV: {}", e.error()))
}

/// Serialize rows as CSV bytes, header first.
#[cfg(test)]
pub(crate) fn csv_bytes<R: CsvRow>(rows: &[R]) -> Result<Vec<u8>> {
    write_csv_rows::<R, _>(rows, Vec::new())
}

/// The report folder, written whole into a staging folder beside `--out` and swapped into
/// place by [`ReportDir::commit`].
#[derive(Debug)]
pub(crate) struct ReportDir {
    /// `--out` as the operator wrote it (shown in the summary).
    shown: PathBuf,
    /// `--out`, absolute, its parent canonical.
    target: PathBuf,
    /// The fresh sibling `.<name>.tmp-<pid>-<random>` the files are written into. Dropped (and
    /// removed) when the run fails; a crashed run's is removed by the next run's `prepare`.
    staging: tempfile::TempDir,
}

/// Prefix of the staging folders of `--out` named `name`.
fn staging_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Prefix of the folder an earlier report is moved to while the new one is renamed in.
fn old_prefix(name: &str) -> String {
    format!(".{name}.old-")
}

/// Whether the process that left `.<name>.tmp-<pid>-…` / `.<name>.old-<pid>` may still run.
/// Only Linux's `/proc` is asked; elsewhere every leftover counts as dead.
fn may_be_running(pid_and_rest: &str) -> bool {
    let pid = pid_and_rest.split('-').next().unwrap_or("");
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    pid != std::process::id().to_string() && Path::new("/proc").join(pid).exists()
}

impl ReportDir {
    /// Prepare a run's report folder before the scan starts: resolve `--out`, refuse one that
    /// is inside the audited filesystem root `audited` (or holds it), refuse to replace an
    /// existing folder that is not a gc-audit report (not empty and without summary.json),
    /// clean up what crashed runs left beside it, and create the staging folder (which proves
    /// the parent is writable). Nothing of the previous report is touched until
    /// [`ReportDir::commit`].
    pub(crate) fn prepare(out: &Path, audited: Option<&Path>) -> Result<ReportDir> {
        let shown = out.to_path_buf();
        let target = resolve_out(out)?;
        let parent = target
            .parent()
            .with_context(|| format!("--out {}: has no parent folder", out.display()))?
            .to_path_buf();
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("--out {}: needs a folder name in UTF-8", out.display()))?
            .to_string();
        if let Some(root) = audited {
            let root = std::fs::canonicalize(root)
                .with_context(|| format!("resolving the audited root {}", root.display()))?;
            if target.starts_with(&root) {
                bail!(
                    "--out {}: is inside the audited root {}; the auditor never writes into \
                    the storage it audits: choose a folder outside it",
                    out.display(),
                    root.display()
                );
            }
            if root.starts_with(&target) {
                bail!(
                    "--out {}: holds the audited root {}; replacing the report folder would \
                    delete the registry: choose a folder outside it",
                    out.display(),
                    root.display()
                );
            }
        }
        if target.exists() {
            refuse_foreign_folder(&target, out)?;
        }
        std::fs::create_dir_all(&parent).with_context(|| {
            format!(
                "--out {}: cannot create {}",
                out.display(),
                parent.display()
            )
        })?;
        remove_leftovers(&parent, &name, &target)?;
        let prefix = format!("{}{}-", staging_prefix(&name), std::process::id());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // A report folder like one `mkdir` makes (the umask still applies), not 0700.
            builder.permissions(std::fs::Permissions::from_mode(0o755));
        }
        let staging = builder.tempdir_in(&parent).with_context(|| {
            format!(
                "--out {}: cannot create a folder in {} (not writable?)",
                out.display(),
                parent.display()
            )
        })?;
        Ok(ReportDir {
            shown,
            target,
            staging,
        })
    }

    /// Put the written report in place of `--out`, whole: move the previous report aside,
    /// rename the new one to `--out`, then remove the previous one. A crash between the two
    /// renames leaves the previous report as `.<name>.old-<pid>`, which the next `prepare`
    /// moves back. (Two renames rather than Linux's `renameat2(RENAME_EXCHANGE)`: portable,
    /// no `unsafe`, and the one gap is recovered.)
    pub(crate) fn commit(self) -> Result<()> {
        let ReportDir {
            shown,
            target,
            staging,
        } = self;
        let staged = staging.keep();
        // Checked again: something else may have been put at `--out` during the scan. This
        // run's report then stays where it is (the next run removes it).
        if target.exists() {
            if let Err(e) = refuse_foreign_folder(&target, &shown) {
                return Err(e.context(format!(
                    "not replacing --out; this run's report is left in {}",
                    staged.display()
                )));
            }
        }
        let result = swap_in(&staged, &target);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staged);
        }
        result
            .with_context(|| format!("--out {}: putting the new report in place", shown.display()))
    }

    /// `--out` as given (where the report is once committed).
    pub(crate) fn path(&self) -> &Path {
        &self.shown
    }

    /// Write one file of another command's report (recover's plan files) into the staging
    /// folder.
    pub(crate) fn write_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.staging.path().join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    }

    /// Where file `name` is written before the commit.
    pub(crate) fn path_staged(&self, name: &str) -> PathBuf {
        self.staging.path().join(name)
    }

    /// Stream `rows` into their file (never the whole file in memory: orphaned.csv of a large
    /// registry is tens of megabytes).
    fn write_csv<R: CsvRow>(&self, rows: impl IntoIterator<Item = impl Serialize>) -> Result<()> {
        let path = self.staging.path().join(R::FILE);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        write_csv_rows::<R, _>(rows, BufWriter::new(file))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Write every file the report allows into the staging folder, summary.json last. Returns
    /// the files written; [`ReportDir::commit`] puts them in place.
    pub(crate) fn write(&self, report: &Report) -> Result<Vec<&'static str>> {
        let mut written = Vec::new();
        if report.summary.complete {
            // orphaned.csv is most of the bytes (36 MB of 44 at a million keys): written on a
            // thread of its own (here, after the others, when none starts) while the other
            // files are written.
            let (orphaned, others) = gc_core::beside::beside(
                "gc-audit-orphaned-csv",
                || self.write_csv::<OrphanedRow>(report.orphaned.iter()),
                || {
                    self.write_csv::<MissingRow>(&report.missing)?;
                    self.write_csv::<DanglingRow>(&report.dangling)?;
                    self.write_csv::<GcUnsafeRow>(&report.gc_unsafe)?;
                    self.write_csv::<BrokenRow>(&report.broken)?;
                    self.write_csv::<RepoRow>(&report.repos)
                },
            );
            orphaned?;
            others?;
            written.extend(WITHHELD_WHEN_INCOMPLETE);
            let path = self.staging.path().join(REPUSH_FILE);
            std::fs::write(&path, repush_list(report))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        self.write_csv::<FindingRow>(&report.findings)?;
        written.push(FindingRow::FILE);
        let path = self.staging.path().join(SUMMARY_FILE);
        std::fs::write(&path, summary_json(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(SUMMARY_FILE);
        Ok(written)
    }
}

/// `--out` as an absolute path: its longest existing ancestor canonical (symbolic links
/// resolved), the rest appended. Creates nothing, so that an `--out` inside the audited root
/// is refused before anything is written there.
fn resolve_out(out: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(out)
        .with_context(|| format!("--out {}: cannot resolve", out.display()))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => bail!("--out {}: cannot resolve", out.display()),
        }
    }
    let mut resolved = std::fs::canonicalize(existing)
        .with_context(|| format!("--out {}: cannot resolve", out.display()))?;
    for component in rest.iter().rev() {
        if component == ".." {
            resolved.pop();
        } else if component != "." {
            resolved.push(component);
        }
    }
    Ok(resolved)
}

/// An existing `--out` may be replaced only when it is a folder that is empty, holds a
/// gc-audit report (summary.json), or holds nothing but files named like report files (a run
/// that ended before summary.json): `--out ~` must not cost anyone their home folder.
fn refuse_foreign_folder(target: &Path, out: &Path) -> Result<()> {
    if !target.is_dir() {
        bail!("--out {}: exists and is not a folder", out.display());
    }
    if target.join(SUMMARY_FILE).is_file() {
        return Ok(());
    }
    let entries = std::fs::read_dir(target)
        .with_context(|| format!("--out {}: cannot read", out.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("--out {}: cannot read", out.display()))?;
        let is_report_file = entry.file_type().is_ok_and(|t| t.is_file())
            && entry
                .file_name()
                .to_str()
                .is_some_and(|n| REPORT_FILES.contains(&n));
        if !is_report_file {
            bail!(
                "--out {}: exists and is not a gc-audit report folder (no summary.json, and it \
                 holds {:?}); the report folder is replaced whole, so name a new or empty folder",
                out.display(),
                entry.file_name()
            );
        }
    }
    Ok(())
}

/// Remove what crashed runs left beside `--out`: staging folders, and earlier reports moved
/// aside (moved back instead when `--out` itself is gone, since that is the last report).
/// Leftovers of a process that is still running are not touched.
fn remove_leftovers(parent: &Path, name: &str, target: &Path) -> Result<()> {
    let entries = std::fs::read_dir(parent)
        .with_context(|| format!("reading {} for leftovers of earlier runs", parent.display()))?;
    let (tmp, old) = (staging_prefix(name), old_prefix(name));
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", parent.display()))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let path = entry.path();
        if let Some(rest) = file_name.strip_prefix(&tmp) {
            if !may_be_running(rest) {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing the leftover {}", path.display()))?;
            }
        } else if let Some(rest) = file_name.strip_prefix(&old) {
            if may_be_running(rest) {
                continue;
            }
            if target.exists() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing the leftover {}", path.display()))?;
            } else {
                std::fs::rename(&path, target)
                    .with_context(|| format!("restoring the earlier report {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Rename `staged` to `target`, moving an existing `target` aside first and removing it after.
fn swap_in(staged: &Path, target: &Path) -> Result<()> {
    if !target.exists() {
        std::fs::rename(staged, target)
            .with_context(|| format!("renaming {} to {}", staged.display(), target.display()))?;
        return Ok(());
    }
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .context("report folder without a name")?;
    let aside = target.with_file_name(format!("{}{}", old_prefix(name), std::process::id()));
    std::fs::rename(target, &aside)
        .with_context(|| format!("moving the previous report to {}", aside.display()))?;
    if let Err(e) = std::fs::rename(staged, target) {
        // Put the previous report back rather than leave no report at all.
        let _ = std::fs::rename(&aside, target);
        return Err(e)
            .with_context(|| format!("renaming {} to {}", staged.display(), target.display()));
    }
    std::fs::remove_dir_all(&aside)
        .with_context(|| format!("removing the previous report {}", aside.display()))?;
    Ok(())
}

/// summary.json bytes, pretty, with a trailing newline.
/// `repush.txt`: one `repository:tag` per line of broken.csv, for scripts that copy the
/// images back from a source registry.
pub(crate) fn repush_list(report: &Report) -> String {
    let mut tags: Vec<String> = report
        .broken
        .iter()
        .map(|b| format!("{}:{}", b.repository, b.tag))
        .collect();
    tags.dedup();
    tags.iter().map(|t| format!("{t}\n")).collect()
}

pub(crate) fn summary_json(report: &Report) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(&report.summary)?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gc_core::report::{ReclaimableBy, Rfc3339};

    #[test]
    fn empty_reports_still_have_headers() {
        let bytes = csv_bytes::<GcUnsafeRow>(&[]).unwrap();
        assert_eq!(
            bytes,
            b"model,action,repository,digest,kind,size,needed_by\n"
        );
    }

    #[test]
    fn rows_are_rfc4180() {
        let rows = vec![FindingRow {
            repository: "a/b".into(),
            key: "k,ey".into(),
            kind: "bad-link".into(),
            detail: "content \"x\"".into(),
        }];
        let bytes = csv_bytes(&rows).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "repository,key,kind,detail\na/b,\"k,ey\",bad-link,\"content \"\"x\"\"\"\n"
        );
    }

    #[test]
    fn orphaned_row_bytes() {
        let rows = vec![OrphanedRow {
            digest: gc_core::digest::Digest::sha256_of(b""),
            size: 12,
            last_modified: Rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600),
            ),
            reclaimable_by: ReclaimableBy::GcDeleteUntagged,
            young: false,
        }];
        assert_eq!(
            String::from_utf8(csv_bytes(&rows).unwrap()).unwrap(),
            "digest,size,last_modified,reclaimable_by,young\n\
             sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855,12,\
             2026-01-01T00:00:00Z,gc-delete-untagged,false\n"
        );
    }

    /// A parent folder holding a previous report `report` (summary.json, a stale CSV and a
    /// file of the operator's).
    fn previous_report() -> (tempfile::TempDir, PathBuf) {
        let parent = tempfile::tempdir().unwrap();
        let out = parent.path().join("report");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("summary.json"), "{\"complete\": true}\n").unwrap();
        std::fs::write(out.join("orphaned.csv"), "stale").unwrap();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        (parent, out)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_report_folder_is_replaced_whole_only_when_the_run_ends() {
        let (parent, out) = previous_report();
        let dir = ReportDir::prepare(&out, None).unwrap();
        assert_eq!(names(&out), ["notes.txt", "orphaned.csv", "summary.json"]);
        let written = dir.write(&Report::default()).unwrap();
        assert_eq!(written, ["findings.csv", "summary.json"]);
        assert_eq!(
            std::fs::read_to_string(out.join("summary.json")).unwrap(),
            "{\"complete\": true}\n",
            "the previous report is untouched until commit"
        );
        dir.commit().unwrap();
        assert_eq!(names(&out), ["findings.csv", "summary.json"]);
        assert_eq!(
            std::fs::read(out.join("summary.json")).unwrap(),
            summary_json(&Report::default()).unwrap()
        );
        assert_eq!(names(parent.path()), ["report"], "nothing left beside it");
    }

    #[test]
    fn a_run_that_fails_leaves_the_previous_report_and_no_staging_folder() {
        let (parent, out) = previous_report();
        let dir = ReportDir::prepare(&out, None).unwrap();
        dir.write(&Report::default()).unwrap();
        drop(dir);
        assert_eq!(names(&out), ["notes.txt", "orphaned.csv", "summary.json"]);
        assert_eq!(names(parent.path()), ["report"]);
    }

    #[test]
    fn leftovers_of_crashed_runs_are_removed_and_a_report_moved_aside_comes_back() {
        let parent = tempfile::tempdir().unwrap();
        let out = parent.path().join("report");
        // No process has a pid this large (Linux caps them at 2^22).
        let tmp = parent.path().join(".report.tmp-999999999-abc123");
        let aside = parent.path().join(".report.old-999999999");
        for d in [&tmp, &aside] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(aside.join("summary.json"), "previous").unwrap();
        std::fs::create_dir(parent.path().join(".other.tmp-999999999-x")).unwrap();
        let dir = ReportDir::prepare(&out, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("summary.json")).unwrap(),
            "previous",
            "a crash between the two renames loses no report"
        );
        assert!(!tmp.exists() && !aside.exists());
        assert!(parent.path().join(".other.tmp-999999999-x").exists());
        drop(dir);
    }

    #[test]
    fn a_folder_that_is_not_a_report_is_never_replaced() {
        let parent = tempfile::tempdir().unwrap();
        let home = parent.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::fs::write(home.join(".bashrc"), "mine").unwrap();
        let err = format!("{:#}", ReportDir::prepare(&home, None).unwrap_err());
        assert!(
            err.contains("--out") && err.contains("not a gc-audit report folder"),
            "{err}"
        );
        assert_eq!(names(&home), [".bashrc"]);
        assert_eq!(names(parent.path()), ["home"], "no staging folder made");
        // Empty, or only report files of an interrupted older run: fine.
        let empty = parent.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        ReportDir::prepare(&empty, None).unwrap().commit().unwrap();
        let partial = parent.path().join("partial");
        std::fs::create_dir(&partial).unwrap();
        std::fs::write(partial.join("orphaned.csv"), "stale").unwrap();
        let dir = ReportDir::prepare(&partial, None).unwrap();
        dir.write(&Report::default()).unwrap();
        dir.commit().unwrap();
        assert_eq!(names(&partial), ["findings.csv", "summary.json"]);
    }

    #[test]
    fn a_folder_put_at_out_during_the_run_is_not_replaced() {
        let parent = tempfile::tempdir().unwrap();
        let out = parent.path().join("report");
        let dir = ReportDir::prepare(&out, None).unwrap();
        dir.write(&Report::default()).unwrap();
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("data.db"), "someone else's").unwrap();
        let err = format!("{:#}", dir.commit().unwrap_err());
        assert!(err.contains("this run's report is left in"), "{err}");
        assert_eq!(names(&out), ["data.db"]);
        let left: Vec<String> = names(parent.path())
            .into_iter()
            .filter(|n| n.starts_with(".report.tmp-"))
            .collect();
        assert_eq!(left.len(), 1, "the new report is kept: {left:?}");
    }

    #[test]
    fn out_inside_or_around_the_audited_root_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("registry");
        std::fs::create_dir_all(root.join("docker/registry/v2")).unwrap();
        for out in [
            root.join("report"),
            root.join("docker/../r"),
            parent.path().to_path_buf(),
        ] {
            let err = format!("{:#}", ReportDir::prepare(&out, Some(&root)).unwrap_err());
            assert!(
                err.starts_with("--out ") && err.contains("audited root"),
                "{err}"
            );
        }
        assert_eq!(names(&root), ["docker"], "nothing written into the root");
        ReportDir::prepare(&parent.path().join("report"), Some(&root)).unwrap();
    }
}
