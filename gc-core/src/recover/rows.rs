//! The rows of a recovery plan (`recover.csv`) and their totals per action.

use super::sources::Found;
use serde::Serialize;
use std::collections::BTreeMap;

/// What the plan does to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Delete the key's newest version, a delete marker, by its version id: the version
    /// below becomes current again. Nothing is copied.
    RemoveDeleteMarker,
    /// Copy a noncurrent version of the key over it.
    CopyVersion,
    /// Copy the same key from the `--from` location.
    CopyFrom,
    /// No usable source.
    Unrecoverable,
}

impl Action {
    /// The name in `recover.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RemoveDeleteMarker => "remove-delete-marker",
            Action::CopyVersion => "copy-version",
            Action::CopyFrom => "copy-from",
            Action::Unrecoverable => "unrecoverable",
        }
    }

    /// Every action, in report order.
    pub const ALL: [Action; 4] = [
        Action::RemoveDeleteMarker,
        Action::CopyVersion,
        Action::CopyFrom,
        Action::Unrecoverable,
    ];
}

/// One row of `recover.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    /// Driver-relative key (no root directory prefix; the CLI adds it for S3).
    pub key: String,
    /// What to do.
    pub action: Action,
    /// The delete marker's id (`remove-delete-marker`) or the source version's id
    /// (`copy-version`); empty otherwise.
    pub version_id: String,
    /// The size the referencing manifest names (else the source's size), when known.
    pub size: Option<u64>,
    /// One `repo:tag` (or `repo@digest`) the key's absence breaks.
    pub needed_by: String,
    /// Where the content comes from (the version restored, the `--from` object), or, for an
    /// unrecoverable key, what was found and why it is not used.
    pub source: String,
    /// The source version's ETag, when listed (lets a script check a copy is done).
    pub source_e_tag: Option<String>,
    /// Every tag whose pull needs the key.
    pub tags: Vec<String>,
}

impl PlanRow {
    /// A row from a lookup's result. `location` names the source storage (the audited
    /// bucket, or `--from`); `None` for a key that is there after all.
    pub(crate) fn new(
        key: String,
        found: &Found,
        size: Option<u64>,
        needed_by: String,
        tags: Vec<String>,
        location: &str,
    ) -> Option<PlanRow> {
        let object = format!("{}/{key}", location.trim_end_matches('/'));
        let (action, version_id, source, source_size, e_tag) = match found {
            Found::Present => return None,
            Found::RemoveMarker {
                marker,
                version,
                size,
            } => (
                Action::RemoveDeleteMarker,
                marker.clone(),
                format!("{object}?versionId={version}"),
                Some(*size),
                None,
            ),
            Found::CopyVersion {
                version,
                size,
                e_tag,
            } => (
                Action::CopyVersion,
                version.clone(),
                format!("{object}?versionId={version}"),
                Some(*size),
                e_tag.clone(),
            ),
            Found::CopyFrom { size } => {
                (Action::CopyFrom, String::new(), object, Some(*size), None)
            }
            Found::Unrecoverable { why } => (
                Action::Unrecoverable,
                String::new(),
                why.clone(),
                None,
                None,
            ),
        };
        Some(PlanRow {
            key,
            action,
            version_id,
            size: size.or(source_size),
            needed_by,
            source,
            source_e_tag: e_tag,
            tags,
        })
    }
}

/// Keys and bytes of one action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KeysBytes {
    /// Keys.
    pub keys: u64,
    /// Bytes (as the rows' sizes say).
    pub bytes: u64,
}

/// Keys and bytes per action, by the action's name.
pub fn totals(rows: &[PlanRow]) -> BTreeMap<&'static str, KeysBytes> {
    let mut out: BTreeMap<&'static str, KeysBytes> = Action::ALL
        .iter()
        .map(|a| (a.as_str(), KeysBytes::default()))
        .collect();
    for r in rows {
        let t = out.entry(r.action.as_str()).or_default();
        t.keys += 1;
        t.bytes += r.size.unwrap_or(0);
    }
    out
}
