//! The report folder: prepared before the scan, filled after it, summary.json last.
//!
//! Rows come sorted from gc-core; this module only serializes them. Each CSV has an explicit
//! header so that an empty report still says what its columns are.

use anyhow::{Context, Result};
use gc_core::report::{
    BrokenRow, DanglingRow, FindingRow, GcUnsafeRow, MissingRow, OrphanedRow, RepoRow, Report,
};
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A row type and its file.
pub(crate) trait CsvRow: Serialize {
    /// File name in the report folder.
    const FILE: &'static str;
    /// Header row: the field names, in order.
    const HEADER: &'static [&'static str];
}

macro_rules! csv_row {
    ($row:ty, $file:literal, [$($col:literal),*]) => {
        impl CsvRow for $row {
            const FILE: &'static str = $file;
            const HEADER: &'static [&'static str] = &[$($col),*];
        }
    };
}

csv_row!(
    OrphanedRow,
    "orphaned.csv",
    ["digest", "size", "last_modified", "reclaimable_by", "young"]
);
csv_row!(
    MissingRow,
    "missing.csv",
    [
        "repository",
        "manifest_digest",
        "tags",
        "kind",
        "digest",
        "reason"
    ]
);
csv_row!(
    DanglingRow,
    "dangling.csv",
    [
        "repository",
        "index_digest",
        "tags",
        "child_digest",
        "platform",
        "reason"
    ]
);
csv_row!(
    GcUnsafeRow,
    "gc-unsafe.csv",
    [
        "model",
        "action",
        "repository",
        "digest",
        "kind",
        "size",
        "needed_by"
    ]
);
csv_row!(
    BrokenRow,
    "broken.csv",
    ["repository", "tag", "digest", "problem"]
);
csv_row!(
    RepoRow,
    "repos.csv",
    [
        "repository",
        "tags",
        "manifests",
        "untagged_manifests",
        "bytes",
        "exclusive_bytes"
    ]
);
csv_row!(
    FindingRow,
    "findings.csv",
    ["repository", "key", "kind", "detail"]
);

/// Every file gc-audit writes into the report folder.
pub(crate) const REPORT_FILES: [&str; 8] = [
    OrphanedRow::FILE,
    MissingRow::FILE,
    DanglingRow::FILE,
    GcUnsafeRow::FILE,
    BrokenRow::FILE,
    RepoRow::FILE,
    FindingRow::FILE,
    "summary.json",
];

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

/// The report folder.
#[derive(Debug)]
pub(crate) struct ReportDir {
    dir: PathBuf,
}

impl ReportDir {
    /// Create `dir` if needed, prove it is writable, and remove report files of an earlier
    /// run so that nothing stale can be mistaken for this run's result.
    pub(crate) fn prepare(dir: &Path) -> Result<ReportDir> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: cannot create", dir.display()))?;
        let probe = dir.join(".gc-audit-write-test");
        std::fs::write(&probe, b"")
            .with_context(|| format!("--out {}: not writable", dir.display()))?;
        std::fs::remove_file(&probe)
            .with_context(|| format!("--out {}: cannot remove probe", dir.display()))?;
        for f in REPORT_FILES {
            let path = dir.join(f);
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing the earlier report {}", path.display()))?;
            }
        }
        Ok(ReportDir {
            dir: dir.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Stream `rows` into their file (never the whole file in memory: orphaned.csv of a large
    /// registry is tens of megabytes).
    fn write_csv<R: CsvRow>(&self, rows: impl IntoIterator<Item = impl Serialize>) -> Result<()> {
        let path = self.dir.join(R::FILE);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        write_csv_rows::<R, _>(rows, BufWriter::new(file))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Write every file the report allows; summary.json last. Returns the files written.
    pub(crate) fn write(&self, report: &Report) -> Result<Vec<&'static str>> {
        let mut written = Vec::new();
        if report.summary.complete {
            self.write_csv::<OrphanedRow>(report.orphaned.iter())?;
            self.write_csv::<MissingRow>(&report.missing)?;
            self.write_csv::<DanglingRow>(&report.dangling)?;
            self.write_csv::<GcUnsafeRow>(&report.gc_unsafe)?;
            self.write_csv::<BrokenRow>(&report.broken)?;
            self.write_csv::<RepoRow>(&report.repos)?;
            written.extend([
                OrphanedRow::FILE,
                MissingRow::FILE,
                DanglingRow::FILE,
                GcUnsafeRow::FILE,
                BrokenRow::FILE,
                RepoRow::FILE,
            ]);
        }
        self.write_csv::<FindingRow>(&report.findings)?;
        written.push(FindingRow::FILE);
        let path = self.dir.join("summary.json");
        std::fs::write(&path, summary_json(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        written.push("summary.json");
        Ok(written)
    }
}

/// summary.json bytes, pretty, with a trailing newline.
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

    #[test]
    fn prepare_removes_stale_reports_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("orphaned.csv"), "stale").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        ReportDir::prepare(dir.path()).unwrap();
        assert!(!dir.path().join("orphaned.csv").exists());
        assert!(dir.path().join("notes.txt").exists());
    }
}
