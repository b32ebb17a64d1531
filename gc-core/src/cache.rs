//! The manifest cache: what a manifest's bytes parse to, kept between runs by digest and size.
//!
//! A manifest is content-addressed: the bytes stored at a digest never change, so neither does
//! what they parse to. A scheduled audit that remembers the parse of every manifest it read
//! needs to GET only the manifests it has not seen (SPEC §2 still holds: a cached manifest is
//! one whose blob the listing shows with the size it had when it was read).
//!
//! This module owns the contract between the audit and a store:
//! - [`ManifestStore`], the store: opaque values under a [`CacheKey`] (entry format, digest,
//!   size). The SQLite store of the `gc-cache` crate is the one the CLI uses;
//!   [`MemoryManifestStore`] keeps entries in memory (tests, embedders that audit repeatedly in
//!   one process).
//! - The entry: [`CachedParse`] (the parsed [`Manifest`] with its parse problems and
//!   decodability verdicts, or why the bytes are no manifest), encoded as JSON behind an MD5 of
//!   the key and the JSON, so that an entry damaged on disk is a miss, never a wrong manifest.
//!
//! Rules the audit follows (see `audit`): an entry is written only for bytes that hash to their
//! digest (a digest-mismatch manifest is never cached, nor one whose algorithm cannot be
//! checked); an entry is used only when the manifest's blob is listed with the entry's size; a
//! store that fails is a warning and the run reads from storage instead. [`ENTRY_FORMAT`] names
//! the version of gc-audit that wrote an entry, so versions sharing a store never read each
//! other's parses.

use crate::manifest::Manifest;
use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

/// The format of the entries this build writes and reads: the gc-audit version (whose parser
/// produced them) and the layout of [`CachedParse`]. Layout 2 leaves out fields that hold
/// their default value (see [`Manifest`]).
pub const ENTRY_FORMAT: &str = concat!("gc-audit-", env!("CARGO_PKG_VERSION"), "/parse-2");

/// The format of the entry that keeps, per storage location, how its keys were spread when
/// it was last listed ([`crate::storage::KeySpread`]): a listing hint, never part of a report.
/// It lives beside the manifests under the key `location:<the storage's location>`, size 0.
pub const SPREAD_FORMAT: &str = concat!("gc-audit-", env!("CARGO_PKG_VERSION"), "/key-spread-1");

/// Where an entry lives: content-addressed, so shared safely across registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey<'a> {
    /// [`ENTRY_FORMAT`] of the build that wrote it.
    pub format: &'a str,
    /// The manifest's digest, `<alg>:<hex>`.
    pub digest: &'a str,
    /// The size of the manifest's blob.
    pub size: u64,
}

/// Why a store could not read or write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manifest cache {location}: {message}")]
pub struct CacheError {
    /// The store's location.
    pub location: String,
    /// What went wrong.
    pub message: String,
}

/// A persistent map from [`CacheKey`] to encoded entries. Implementations must be safe to
/// use from several processes at once (or say they are not in their documentation); a value
/// they return may be damaged (the audit checks every entry it decodes).
pub trait ManifestStore: Send + Sync + fmt::Debug {
    /// The entry stored under `key`, if any.
    fn get(&self, key: &CacheKey<'_>) -> Result<Option<Vec<u8>>, CacheError>;
    /// The entries stored under `keys`, one answer per key in their order. A store that pays a
    /// fixed price per read (a transaction, a lock) pays it once here; by default each key is
    /// a [`ManifestStore::get`].
    fn get_many(&self, keys: &[CacheKey<'_>]) -> Vec<Result<Option<Vec<u8>>, CacheError>> {
        keys.iter().map(|key| self.get(key)).collect()
    }
    /// Store `value` under `key`, replacing what is there; may be buffered until
    /// [`ManifestStore::flush`].
    fn put(&self, key: &CacheKey<'_>, value: Vec<u8>) -> Result<(), CacheError>;
    /// Write what is buffered. The audit calls it once its reads are done.
    fn flush(&self) -> Result<(), CacheError>;
    /// Where the store is, for messages and `summary.json`.
    fn location(&self) -> String;
}

/// What a manifest's bytes parse to, as the audit records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CachedParse {
    /// A manifest (with its parse problems and decodability verdicts).
    Parsed(Box<Manifest>),
    /// Not a manifest at all: why.
    Unparseable(String),
}

/// Why an entry could not be decoded (damaged, or written by a build with another layout
/// under the same format name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Shorter than its checksum.
    #[error("entry of {0} bytes is truncated")]
    Truncated(usize),
    /// The checksum does not match the key and content.
    #[error("entry checksum does not match")]
    Checksum,
    /// The content is not an entry of this format.
    #[error("entry does not decode: {0}")]
    Decode(String),
}

impl CacheKey<'_> {
    /// MD5 of the key's fields: what an entry's checksum covers of its key, and what a store
    /// may index entries by (the SQLite store's row id is its first 64 bits).
    pub fn fingerprint(&self) -> [u8; 16] {
        let mut h = Md5::new();
        h.update(self.format.as_bytes());
        h.update([0]);
        h.update(self.digest.as_bytes());
        h.update([0]);
        h.update(self.size.to_le_bytes());
        h.finalize().into()
    }
}

/// The checksum of an entry: MD5 of the key's fingerprint and the JSON (integrity against
/// damage, not an authentication: the store is the user's own file).
fn checksum(key: &CacheKey<'_>, json: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(key.fingerprint());
    h.update(json);
    h.finalize().into()
}

/// Encode `parse` as the entry for `key`.
pub fn encode_entry(key: &CacheKey<'_>, parse: &CachedParse) -> Vec<u8> {
    encode_value(key, parse)
}

/// Decode the entry `bytes` stored under `key`.
pub fn decode_entry(key: &CacheKey<'_>, bytes: &[u8]) -> Result<CachedParse, EntryError> {
    decode_value(key, bytes)
}

/// Encode `value` as the entry for `key`: its checksum, then its JSON.
pub(crate) fn encode_value<T: Serialize>(key: &CacheKey<'_>, value: &T) -> Vec<u8> {
    // Serializing plain data to a Vec cannot fail; an empty entry would be a miss anyway.
    let json = serde_json::to_vec(value).unwrap_or_default();
    let mut out = Vec::with_capacity(16 + json.len());
    out.extend_from_slice(&checksum(key, &json));
    out.extend_from_slice(&json);
    out
}

/// Decode the entry `bytes` stored under `key`.
pub(crate) fn decode_value<T: serde::de::DeserializeOwned>(
    key: &CacheKey<'_>,
    bytes: &[u8],
) -> Result<T, EntryError> {
    if bytes.len() < 16 {
        return Err(EntryError::Truncated(bytes.len()));
    }
    let (sum, json) = bytes.split_at(16);
    if sum != checksum(key, json) {
        return Err(EntryError::Checksum);
    }
    serde_json::from_slice(json).map_err(|e| EntryError::Decode(e.to_string()))
}

/// A [`ManifestStore`] in memory: for tests, and for programs that audit repeatedly in one
/// process.
#[derive(Debug, Default)]
pub struct MemoryManifestStore {
    entries: Mutex<HashMap<(String, String, u64), Vec<u8>>>,
}

impl MemoryManifestStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Apply `f` to every stored value (tests damage entries with it).
    pub fn edit_values(&self, mut f: impl FnMut(&str, u64, &mut Vec<u8>)) {
        if let Ok(mut entries) = self.entries.lock() {
            for ((_, digest, size), value) in entries.iter_mut() {
                f(digest, *size, value);
            }
        }
    }

    fn poisoned(&self) -> CacheError {
        CacheError {
            location: self.location(),
            message: "a thread panicked while holding it".to_string(),
        }
    }
}

impl ManifestStore for MemoryManifestStore {
    fn get(&self, key: &CacheKey<'_>) -> Result<Option<Vec<u8>>, CacheError> {
        let entries = self.entries.lock().map_err(|_| self.poisoned())?;
        let k = (key.format.to_string(), key.digest.to_string(), key.size);
        Ok(entries.get(&k).cloned())
    }

    fn put(&self, key: &CacheKey<'_>, value: Vec<u8>) -> Result<(), CacheError> {
        let mut entries = self.entries.lock().map_err(|_| self.poisoned())?;
        let k = (key.format.to_string(), key.digest.to_string(), key.size);
        entries.insert(k, value);
        Ok(())
    }

    fn flush(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn location(&self) -> String {
        "memory".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn key(size: u64) -> CacheKey<'static> {
        CacheKey {
            format: ENTRY_FORMAT,
            digest: DIGEST,
            size,
        }
    }

    #[test]
    fn entries_round_trip_and_damage_is_detected() {
        let bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,
            "digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":3,"urls":["https://x"],
            "digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}]}"#;
        let parse = CachedParse::Parsed(Box::new(Manifest::parse(bytes).unwrap()));
        let entry = encode_entry(&key(10), &parse);
        assert_eq!(decode_entry(&key(10), &entry), Ok(parse.clone()));
        // The same bytes under another key, a flipped byte, a cut entry: never a manifest.
        assert_eq!(decode_entry(&key(11), &entry), Err(EntryError::Checksum));
        let mut flipped = entry.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 1;
        assert_eq!(decode_entry(&key(10), &flipped), Err(EntryError::Checksum));
        assert_eq!(
            decode_entry(&key(10), &entry[..5]),
            Err(EntryError::Truncated(5))
        );
        let unparseable = CachedParse::Unparseable("not JSON: x".to_string());
        let entry = encode_entry(&key(3), &unparseable);
        assert_eq!(decode_entry(&key(3), &entry), Ok(unparseable));
    }

    #[test]
    fn entries_leave_out_default_fields_and_read_every_field_back() {
        let digest = |c: char| -> crate::digest::Digest {
            format!("sha256:{}", c.to_string().repeat(64))
                .parse()
                .unwrap()
        };
        let plain = crate::manifest::Descriptor {
            digest: digest('a'),
            size: None,
            media_type: None,
            foreign: false,
            platform: None,
            attestation: false,
        };
        let full = crate::manifest::Descriptor {
            digest: digest('b'),
            size: Some(7),
            media_type: Some("m".to_string()),
            foreign: true,
            platform: Some(crate::manifest::Platform {
                os: "linux".to_string(),
                architecture: "arm64".to_string(),
                variant: Some("v8".to_string()),
            }),
            attestation: true,
        };
        let every_field = Manifest {
            kind: crate::manifest::ManifestKind::Unknown("x".to_string()),
            config: Some(full.clone()),
            layers: vec![plain.clone(), full.clone()],
            children: vec![full.clone(), plain.clone()],
            subject: Some(plain.clone()),
            artifact_type: Some("t".to_string()),
            problems: vec!["p".to_string()],
            undecodable: crate::manifest::Undecodable {
                v2_8: None,
                v3: Some("why".to_string()),
            },
        };
        for manifest in [
            every_field.clone(),
            Manifest {
                layers: vec![plain.clone()],
                ..every_field.clone()
            },
        ] {
            let parse = CachedParse::Parsed(Box::new(manifest));
            assert_eq!(
                decode_entry(&key(1), &encode_entry(&key(1), &parse)),
                Ok(parse)
            );
        }
        let bare = Manifest {
            kind: crate::manifest::ManifestKind::OciManifest,
            config: None,
            layers: vec![plain],
            children: vec![],
            subject: None,
            artifact_type: None,
            problems: vec![],
            undecodable: crate::manifest::Undecodable::default(),
        };
        let parse = CachedParse::Parsed(Box::new(bare));
        let entry = encode_entry(&key(1), &parse);
        assert_eq!(
            std::str::from_utf8(&entry[16..]).unwrap(),
            format!(
                r#"{{"Parsed":{{"kind":"OciManifest","layers":[{{"digest":"sha256:{}"}}]}}}}"#,
                "a".repeat(64)
            )
        );
        assert_eq!(decode_entry(&key(1), &entry), Ok(parse));
    }

    #[test]
    fn the_memory_store_keeps_entries_by_format_digest_and_size() {
        let store = MemoryManifestStore::new();
        store.put(&key(1), b"one".to_vec()).unwrap();
        assert_eq!(store.get(&key(1)).unwrap(), Some(b"one".to_vec()));
        assert_eq!(store.get(&key(2)).unwrap(), None);
        let other = CacheKey {
            format: "another",
            ..key(1)
        };
        assert_eq!(store.get(&other).unwrap(), None);
        assert_eq!(store.len(), 1);
    }
}
