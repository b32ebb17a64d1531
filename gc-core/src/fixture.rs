//! Build registry trees in a [`MemStorage`] the way the registry writes them, for tests.
//!
//! Each method writes the keys a real push writes (blob data, `_layers` link, revision link,
//! tag `current/link` and history entry), so scenario tests read like the pushes they model,
//! and damage is applied afterwards by removing or overwriting keys.

use crate::digest::Digest;
use crate::layout::Key;
use crate::manifest::{MT_DOCKER_LIST, MT_DOCKER_V2, MT_OCI_INDEX, MT_OCI_MANIFEST};
use crate::storage::MemStorage;
use std::time::{Duration, SystemTime};

/// A time well before any grace period: 2026-01-01T00:00:00Z.
pub fn old_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// A registry tree under construction.
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    /// The storage written to.
    pub storage: MemStorage,
    /// Modification time given to new objects.
    pub time: Option<SystemTime>,
}

/// A pushed single-arch image.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// Manifest digest.
    pub manifest: Digest,
    /// Config digest.
    pub config: Digest,
    /// Layer digests.
    pub layers: Vec<Digest>,
}

impl Fixture {
    /// An empty tree whose objects are dated [`old_time`].
    pub fn new() -> Self {
        Fixture {
            storage: MemStorage::new(),
            time: Some(old_time()),
        }
    }

    /// Write `data` at `key`.
    pub fn put(&self, key: &Key, data: impl Into<Vec<u8>>) {
        match self.time {
            Some(t) => self.storage.put_at(key.to_path(), data, t),
            None => self.storage.put(key.to_path(), data),
        }
    }

    /// Remove `key`.
    pub fn remove(&self, key: &Key) -> bool {
        self.storage.remove(&key.to_path())
    }

    /// Write a blob into the blob store only.
    pub fn blob(&self, data: &[u8]) -> Digest {
        let digest = Digest::sha256_of(data);
        self.put(
            &Key::BlobData {
                digest: digest.clone(),
            },
            data,
        );
        digest
    }

    /// Upload a blob into `repo`: blob data plus `_layers` link.
    pub fn upload(&self, repo: &str, data: &[u8]) -> Digest {
        let digest = self.blob(data);
        self.link_layer(repo, &digest);
        digest
    }

    /// Write `repo`'s `_layers` link for `digest`.
    pub fn link_layer(&self, repo: &str, digest: &Digest) {
        let key = Key::LayerLink {
            repo: repo.to_string(),
            digest: digest.clone(),
        };
        self.put(&key, digest.to_string());
    }

    /// Put manifest bytes into `repo` by digest: blob data plus revision link.
    pub fn manifest(&self, repo: &str, bytes: &[u8]) -> Digest {
        let digest = self.blob(bytes);
        let key = Key::RevisionLink {
            repo: repo.to_string(),
            digest: digest.clone(),
        };
        self.put(&key, digest.to_string());
        digest
    }

    /// Point `repo:tag` at `digest` (history entry, then `current/link`).
    pub fn tag(&self, repo: &str, tag: &str, digest: &Digest) {
        let index = Key::TagIndexEntry {
            repo: repo.to_string(),
            tag: tag.to_string(),
            digest: digest.clone(),
        };
        self.put(&index, digest.to_string());
        let current = Key::TagCurrent {
            repo: repo.to_string(),
            tag: tag.to_string(),
        };
        self.put(&current, digest.to_string());
    }

    /// Push a single-arch image with `layers` layer blobs (content derived from `seed`), as
    /// Docker schema2 (`oci = false`) or OCI.
    pub fn image(&self, repo: &str, seed: &str, layers: usize, oci: bool) -> PushedImage {
        let layer_blobs: Vec<Vec<u8>> = (0..layers)
            .map(|i| format!("layer {seed} {i}").into_bytes())
            .collect();
        self.image_with_layers(repo, seed, &layer_blobs, oci)
    }

    /// Push a single-arch image with the given layer contents.
    pub fn image_with_layers(
        &self,
        repo: &str,
        seed: &str,
        layers: &[Vec<u8>],
        oci: bool,
    ) -> PushedImage {
        let config_bytes =
            format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
        let config = self.upload(repo, config_bytes.as_bytes());
        let layers: Vec<Digest> = layers.iter().map(|l| self.upload(repo, l)).collect();
        let bytes = image_manifest(&config, &layers, oci, None);
        let manifest = self.manifest(repo, bytes.as_bytes());
        PushedImage {
            manifest,
            config,
            layers,
        }
    }

    /// Push an index over existing child manifests with their platforms.
    pub fn index(&self, repo: &str, children: &[(&Digest, &str)], oci: bool) -> Digest {
        self.manifest(repo, index_manifest(children, oci).as_bytes())
    }
}

/// JSON of a single-arch image manifest.
pub fn image_manifest(
    config: &Digest,
    layers: &[Digest],
    oci: bool,
    subject: Option<&Digest>,
) -> String {
    let (mt, cmt, lmt) = if oci {
        (
            MT_OCI_MANIFEST,
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    } else {
        (
            MT_DOCKER_V2,
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    };
    let layers: Vec<String> = layers
        .iter()
        .map(|l| format!(r#"{{"mediaType":"{lmt}","size":1,"digest":"{l}"}}"#))
        .collect();
    let subject = subject
        .map(|s| {
            format!(r#","subject":{{"mediaType":"{MT_OCI_MANIFEST}","size":1,"digest":"{s}"}}"#)
        })
        .unwrap_or_default();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{mt}","config":{{"mediaType":"{cmt}","size":1,"digest":"{config}"}},"layers":[{}]{subject}}}"#,
        layers.join(",")
    )
}

/// JSON of an index; platform `os/arch[/variant]`.
pub fn index_manifest(children: &[(&Digest, &str)], oci: bool) -> String {
    let (mt, cmt) = if oci {
        (MT_OCI_INDEX, MT_OCI_MANIFEST)
    } else {
        (MT_DOCKER_LIST, MT_DOCKER_V2)
    };
    let entries: Vec<String> = children
        .iter()
        .map(|(d, platform)| {
            let mut parts = platform.split('/');
            let os = parts.next().unwrap_or("");
            let arch = parts.next().unwrap_or("");
            let variant = parts.next().map(|v| format!(r#","variant":"{v}""#)).unwrap_or_default();
            format!(
                r#"{{"mediaType":"{cmt}","size":1,"digest":"{d}","platform":{{"architecture":"{arch}","os":"{os}"{variant}}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{mt}","manifests":[{}]}}"#,
        entries.join(",")
    )
}
