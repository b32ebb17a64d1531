//! The CSV contract of SPEC §5: each row type's file name and header, and the list of report
//! files. The writer (gc-cli) serializes rows with these headers; a test checks each header
//! is the row's serde field order, so the two cannot drift apart.

use super::{BrokenRow, DanglingRow, FindingRow, GcUnsafeRow, MissingRow, OrphanedRow, RepoRow};
use serde::Serialize;

/// A row type of a report file: its file name and header, declared beside the row type so the
/// writer, `withheld` and the contract test read one list.
pub trait CsvRow: Serialize {
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
pub const REPORT_FILES: [&str; 9] = [
    OrphanedRow::FILE,
    MissingRow::FILE,
    DanglingRow::FILE,
    GcUnsafeRow::FILE,
    BrokenRow::FILE,
    RepoRow::FILE,
    FindingRow::FILE,
    REPUSH_FILE,
    SUMMARY_FILE,
];

/// The re-push list: one `repository:tag` of broken.csv per line.
pub const REPUSH_FILE: &str = "repush.txt";

/// The run's summary file.
pub const SUMMARY_FILE: &str = "summary.json";

/// The files an incomplete audit does not write: absence of data could make any of them wrong
/// (SPEC §4). `summary.json` lists them as `withheld`.
pub const WITHHELD_WHEN_INCOMPLETE: [&str; 7] = [
    OrphanedRow::FILE,
    MissingRow::FILE,
    DanglingRow::FILE,
    GcUnsafeRow::FILE,
    BrokenRow::FILE,
    RepoRow::FILE,
    REPUSH_FILE,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::report::{DigestOrKey, PullProblems, ReclaimableBy, Rfc3339};

    /// The header serde writes for `row`.
    fn serde_header<R: Serialize>(row: &R) -> Vec<String> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(true)
            .from_writer(Vec::new());
        w.serialize(row).unwrap();
        let bytes = w.into_inner().unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let first = text.lines().next().unwrap().to_string();
        first.split(',').map(str::to_string).collect()
    }

    fn check<R: CsvRow>(row: R) {
        assert_eq!(serde_header(&row), R::HEADER, "{}", R::FILE);
    }

    #[test]
    fn every_header_is_its_rows_serde_field_order() {
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        check(OrphanedRow {
            digest: d.clone(),
            size: 1,
            last_modified: Rfc3339(std::time::UNIX_EPOCH),
            reclaimable_by: ReclaimableBy::Gc,
            young: false,
        });
        check(MissingRow {
            repository: "r".into(),
            manifest_digest: "m".into(),
            tags: "t".into(),
            kind: "layer".into(),
            digest: "d".into(),
            reason: "blob-missing".into(),
        });
        check(DanglingRow {
            repository: "r".into(),
            index_digest: "i".into(),
            tags: "t".into(),
            child_digest: "c".into(),
            platform: "p".into(),
            reason: "not-linked".into(),
        });
        check(GcUnsafeRow {
            model: "distribution-2.8",
            action: "delete-blob",
            repository: "r".into(),
            digest: DigestOrKey::Digest(d),
            kind: "layer",
            size: Some(1),
            needed_by: "r:t".into(),
        });
        check(BrokenRow {
            repository: "r".into(),
            tag: "t".into(),
            digest: "d".into(),
            problem: PullProblems::default(),
        });
        check(RepoRow {
            repository: "r".into(),
            tags: 1,
            manifests: 1,
            untagged_manifests: 0,
            bytes: 1,
            exclusive_bytes: 1,
        });
        check(FindingRow {
            repository: "r".into(),
            key: "k".into(),
            kind: "bad-link".into(),
            detail: "d".into(),
        });
    }

    #[test]
    fn withheld_files_are_report_files() {
        assert!(WITHHELD_WHEN_INCOMPLETE
            .iter()
            .all(|f| REPORT_FILES.contains(f)));
        assert!(!WITHHELD_WHEN_INCOMPLETE.contains(&SUMMARY_FILE));
    }
}
