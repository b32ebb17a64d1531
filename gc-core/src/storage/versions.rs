//! Object versions: the reads a recovery plan needs from a versioned object store.
//!
//! On a bucket with versioning, a registry's DeleteObject (which names no version) leaves a
//! delete marker over the object, and the old version stays readable by its id. These reads —
//! the bucket's versioning state, a listing of versions and delete markers, and a GET of one
//! version — are all reads: the auditor stays read-only. A backend offers them through
//! [`super::Storage::versions`]; the default has none.

use super::StorageError;
use futures::stream::BoxStream;
use std::time::SystemTime;

/// A bucket's versioning state, as GetBucketVersioning reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// Versioning was never enabled: deletes are final.
    Never,
    /// Versioning is on.
    Enabled,
    /// Versioning was on and is suspended: versions written while it was on are kept.
    Suspended,
}

/// One entry of a versions listing: an object version or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    /// Driver-relative key, no leading `/` (as [`super::ObjectMeta::key`]).
    pub key: String,
    /// The version id (`null` for objects written before versioning was enabled).
    pub version_id: String,
    /// Whether this is the key's newest version (a current delete marker hides the key).
    pub is_latest: bool,
    /// Whether this entry is a delete marker (no content; `size` is 0).
    pub delete_marker: bool,
    /// Size in bytes (0 for delete markers).
    pub size: u64,
    /// When this version (or marker) was written.
    pub last_modified: SystemTime,
    /// The version's entity tag, when it has one (none for delete markers).
    pub e_tag: Option<String>,
}

/// Reads of object versions. Same conventions as [`super::Storage`]: keys are driver-relative,
/// prefixes are empty or end in `/`, not-found is `Ok(None)`, and errors name the key.
#[async_trait::async_trait]
pub trait ObjectVersions: Send + Sync {
    /// The bucket's versioning state.
    async fn versioning(&self) -> Result<Versioning, StorageError>;

    /// Every version and delete marker of every key under `prefix`, in no particular order.
    fn list_versions(&self, prefix: &str) -> BoxStream<'_, Result<ObjectVersion, StorageError>>;

    /// The content of one version of `key`, or `None` if there is no such version (or it is a
    /// delete marker). Versions larger than `max_bytes` are refused with
    /// [`StorageError::TooLarge`] before they are read.
    async fn get_version(
        &self,
        key: &str,
        version_id: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, StorageError>;
}
