//! Deterministic content builders: blobs, image configs, single-arch manifests (Docker schema2 and
//! OCI image manifest), multi-arch indexes (Docker manifest list and OCI image index) and
//! buildx-style attestation manifests.
//!
//! Everything is derived from string seeds, so the same seeds always give the same bytes and the
//! same digests (no clock, no randomness, no external images). JSON is serialized from structs,
//! so the field order does not depend on serde_json features; documents are pretty-printed with
//! two-space indentation.
//!
//! This module only builds bytes; pushing them is [`crate::push`]'s job.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{bail, Result};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// Media types used by the builders.
pub mod media_types {
    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list (multi-arch).
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index (multi-arch).
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI gzip layer.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// in-toto attestation statement (buildx provenance / SBOM layers).
    pub const IN_TOTO: &str = "application/vnd.in-toto+json";
}

use media_types::*;

/// Fixed timestamp written into every config, so configs do not depend on the clock.
pub const CREATED: &str = "2024-01-01T00:00:00Z";

/// Annotation key buildx puts on an attestation manifest's index entry.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// Annotation key naming the manifest an attestation describes.
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256:");
    for b in Sha256::digest(bytes) {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// `len` pseudo-random bytes derived from `seed` (a SHA-256 counter chain).
pub fn seeded_bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter: u64 = 0;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed.as_bytes());
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// Which family of media types a manifest uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Docker schema2 manifest / manifest list.
    Docker,
    /// OCI image manifest / image index.
    Oci,
}

impl Format {
    /// Media type of a single-arch manifest.
    pub fn manifest_type(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_MANIFEST,
            Format::Oci => OCI_MANIFEST,
        }
    }
    /// Media type of a multi-arch index.
    pub fn index_type(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_MANIFEST_LIST,
            Format::Oci => OCI_INDEX,
        }
    }
    /// Media type of an image config.
    pub fn config_type(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_CONFIG,
            Format::Oci => OCI_CONFIG,
        }
    }
    /// Media type of a layer.
    pub fn layer_type(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_LAYER,
            Format::Oci => OCI_LAYER,
        }
    }
}

/// An image platform as written in an index entry (`architecture`, `os`, optional `variant`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Platform {
    /// e.g. `amd64`, `arm64`, `arm`, `unknown`.
    pub architecture: String,
    /// e.g. `linux`, `unknown`.
    pub os: String,
    /// e.g. `v7`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch`.
    pub fn new(os: &str, architecture: &str) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: None,
        }
    }
    /// `os/arch/variant`.
    pub fn with_variant(os: &str, architecture: &str, variant: &str) -> Platform {
        Platform {
            variant: Some(variant.to_string()),
            ..Platform::new(os, architecture)
        }
    }
    /// `unknown/unknown`, the platform buildx gives attestation manifests.
    pub fn unknown() -> Platform {
        Platform::new("unknown", "unknown")
    }
    /// linux/amd64.
    pub fn linux_amd64() -> Platform {
        Platform::new("linux", "amd64")
    }
}

impl fmt::Display for Platform {
    /// `os/arch[/variant]`, e.g. `linux/arm/v7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor as written into manifests and indexes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Platform (index entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Artifact type (OCI 1.1 index entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations (sorted by key).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A blob: bytes, its media type (used only in descriptors: the registry stores none) and digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// Media type written into descriptors that reference this blob.
    pub media_type: String,
    /// Content.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl Blob {
    /// A blob of `bytes` with `media_type`.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    /// A layer of 1-3 KiB of pseudo-random bytes derived from `seed` (not a real tar: registries
    /// do not look inside layers).
    pub fn layer(format: Format, seed: &str) -> Blob {
        let sizer = seeded_bytes(&format!("{seed}#size"), 2);
        let len = 1024 + (usize::from(u16::from_be_bytes([sizer[0], sizer[1]])) % 2048);
        Blob::new(
            format.layer_type(),
            seeded_bytes(&format!("layer:{seed}"), len),
        )
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// A descriptor of this blob (no platform, no annotations).
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            size: self.size(),
            digest: self.digest.clone(),
            platform: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig {
    env: Vec<String>,
    cmd: Vec<String>,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
    created_by: String,
}

#[derive(Serialize)]
struct ImageConfigJson {
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    os: String,
    created: &'static str,
    config: ContainerConfig,
    rootfs: RootFs,
    history: Vec<History>,
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs (strings, numbers, maps with string keys) cannot fail.
    serde_json::to_vec_pretty(value).expect("serializing a plain struct to JSON")
}

/// A deterministic image config for `platform` whose `rootfs.diff_ids` are the layers' digests
/// (the layers are not real tars, so their digests stand in for the uncompressed digests).
/// `seed` goes into a label so that configs with the same layers still differ.
pub fn image_config(format: Format, platform: &Platform, layers: &[Blob], seed: &str) -> Blob {
    let mut labels = BTreeMap::new();
    labels.insert("org.example.gc-testkit.seed".to_string(), seed.to_string());
    let json = ImageConfigJson {
        architecture: platform.architecture.clone(),
        variant: platform.variant.clone(),
        os: platform.os.clone(),
        created: CREATED,
        config: ContainerConfig {
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_string()],
            cmd: vec!["/bin/sh".to_string()],
            labels,
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|l| l.digest.clone()).collect(),
        },
        history: layers
            .iter()
            .enumerate()
            .map(|(i, _)| History {
                created: CREATED,
                created_by: format!("gc-testkit {seed} layer {i}"),
            })
            .collect(),
    };
    Blob::new(format.config_type(), to_json(&json))
}

/// A manifest document (single-arch manifest or index): media type, bytes and digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The `Content-Type` to push it with (equals its `mediaType` field).
    pub media_type: String,
    /// The exact bytes pushed (the digest is over these).
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl Manifest {
    fn new(media_type: &str, bytes: Vec<u8>) -> Manifest {
        Manifest {
            media_type: media_type.to_string(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    /// A descriptor of this manifest (no platform, no annotations).
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            size: self.bytes.len() as u64,
            digest: self.digest.clone(),
            platform: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifestJson<'a> {
    schema_version: u32,
    media_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<&'a str>,
    config: Descriptor,
    layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson<'a> {
    schema_version: u32,
    media_type: &'a str,
    manifests: Vec<&'a Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// A single-arch image: its manifest, config and layers (in manifest order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Format of the manifest.
    pub format: Format,
    /// Platform written into the config (and into index entries).
    pub platform: Platform,
    /// The config blob.
    pub config: Blob,
    /// The layer blobs, in manifest order.
    pub layers: Vec<Blob>,
    /// The manifest.
    pub manifest: Manifest,
}

impl Image {
    /// Every blob of the image (config first, then layers).
    pub fn blobs(&self) -> Vec<&Blob> {
        std::iter::once(&self.config)
            .chain(self.layers.iter())
            .collect()
    }

    /// Start building an image of `format` for `platform`; `seed` makes it unique.
    pub fn builder(format: Format, seed: &str, platform: Platform) -> ImageBuilder {
        ImageBuilder {
            format,
            seed: seed.to_string(),
            platform,
            layers: Vec::new(),
            config: None,
            subject: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// Builder for [`Image`]. Layers are used in the order they are added.
#[derive(Clone, Debug)]
pub struct ImageBuilder {
    format: Format,
    seed: String,
    platform: Platform,
    layers: Vec<Blob>,
    config: Option<Blob>,
    subject: Option<Descriptor>,
    artifact_type: Option<String>,
    annotations: BTreeMap<String, String>,
}

impl ImageBuilder {
    /// Add an existing layer (e.g. a base layer shared with other images).
    pub fn layer(mut self, layer: Blob) -> Self {
        self.layers.push(layer);
        self
    }

    /// Add `n` layers unique to this image (seeded by the image seed and their position).
    pub fn unique_layers(mut self, n: usize) -> Self {
        for i in 0..n {
            let seed = format!("{}/layer{}", self.seed, self.layers.len() + i);
            self.layers.push(Blob::layer(self.format, &seed));
        }
        self
    }

    /// Use this config blob instead of the generated [`image_config`].
    pub fn config(mut self, config: Blob) -> Self {
        self.config = Some(config);
        self
    }

    /// OCI only: set `subject` (this manifest becomes a referrer of the subject).
    pub fn subject(mut self, subject: Descriptor) -> Self {
        self.subject = Some(subject);
        self
    }

    /// OCI only: set `artifactType`.
    pub fn artifact_type(mut self, artifact_type: &str) -> Self {
        self.artifact_type = Some(artifact_type.to_string());
        self
    }

    /// OCI only: add a manifest annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    /// Build the image. Fails if OCI-only fields were set on a Docker image.
    pub fn build(self) -> Result<Image> {
        if self.format == Format::Docker
            && (self.subject.is_some()
                || self.artifact_type.is_some()
                || !self.annotations.is_empty())
        {
            bail!(
                "subject, artifactType and annotations are OCI-only (image seed {})",
                self.seed
            );
        }
        let config = match self.config {
            Some(c) => c,
            None => image_config(self.format, &self.platform, &self.layers, &self.seed),
        };
        let media_type = self.format.manifest_type();
        let json = ImageManifestJson {
            schema_version: 2,
            media_type,
            artifact_type: self.artifact_type.as_deref(),
            config: config.descriptor(),
            layers: self.layers.iter().map(Blob::descriptor).collect(),
            subject: self.subject.as_ref(),
            annotations: &self.annotations,
        };
        let manifest = Manifest::new(media_type, to_json(&json));
        Ok(Image {
            format: self.format,
            platform: self.platform,
            config,
            layers: self.layers,
            manifest,
        })
    }
}

/// A buildx-style attestation manifest describing `target` (a platform manifest): an OCI image
/// manifest whose config is a small `unknown/unknown` image config and whose only layer is an
/// in-toto statement (`application/vnd.in-toto+json`) naming `target`'s digest.
pub fn attestation_for(target: &Manifest, seed: &str) -> Image {
    let hex = target.digest.trim_start_matches("sha256:");
    let statement = format!(
        concat!(
            "{{\"_type\":\"https://in-toto.io/Statement/v0.1\",",
            "\"predicateType\":\"https://slsa.dev/provenance/v0.2\",",
            "\"subject\":[{{\"name\":\"pkg:docker/gc-testkit/{}\",\"digest\":{{\"sha256\":\"{}\"}}}}],",
            "\"predicate\":{{\"builder\":{{\"id\":\"gc-testkit\"}},\"buildType\":\"gc-testkit\"}}}}"
        ),
        seed, hex
    );
    let layer = Blob::new(IN_TOTO, statement.into_bytes());
    let mut layer_desc_annotations = BTreeMap::new();
    layer_desc_annotations.insert(
        "in-toto.io/predicate-type".to_string(),
        "https://slsa.dev/provenance/v0.2".to_string(),
    );
    let platform = Platform::unknown();
    let config = image_config(Format::Oci, &platform, std::slice::from_ref(&layer), seed);
    // The builder writes plain layer descriptors; buildx annotates the in-toto layer, so build
    // the manifest by hand here.
    let mut layer_desc = layer.descriptor();
    layer_desc.annotations = layer_desc_annotations;
    let json = ImageManifestJson {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        artifact_type: None,
        config: config.descriptor(),
        layers: vec![layer_desc],
        subject: None,
        annotations: &BTreeMap::new(),
    };
    Image {
        format: Format::Oci,
        platform,
        config,
        layers: vec![layer],
        manifest: Manifest::new(OCI_MANIFEST, to_json(&json)),
    }
}

/// One entry of a multi-arch index: the child image and the descriptor written for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The child image.
    pub image: Image,
    /// Its descriptor in the index (with `platform`, and annotations for attestations).
    pub descriptor: Descriptor,
}

impl IndexEntry {
    /// True for a buildx attestation entry.
    pub fn is_attestation(&self) -> bool {
        self.descriptor
            .annotations
            .get(REFERENCE_TYPE)
            .is_some_and(|v| v == "attestation-manifest")
    }
}

/// A multi-arch image: the index document and its entries, in index order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiArch {
    /// Docker manifest list or OCI index.
    pub format: Format,
    /// Entries in index order.
    pub entries: Vec<IndexEntry>,
    /// The index document.
    pub index: Manifest,
}

impl MultiArch {
    /// Start building an index of `format`.
    pub fn builder(format: Format) -> IndexBuilder {
        IndexBuilder {
            format,
            entries: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }

    /// The entry for `platform` (not attestations).
    pub fn platform(&self, platform: &Platform) -> Option<&IndexEntry> {
        self.entries
            .iter()
            .find(|e| !e.is_attestation() && &e.image.platform == platform)
    }
}

/// Builder for [`MultiArch`].
#[derive(Clone, Debug)]
pub struct IndexBuilder {
    format: Format,
    entries: Vec<IndexEntry>,
    annotations: BTreeMap<String, String>,
}

impl IndexBuilder {
    /// Add a platform image; its index entry carries the image's platform.
    pub fn image(mut self, image: Image) -> Self {
        let mut descriptor = image.manifest.descriptor();
        descriptor.platform = Some(image.platform.clone());
        self.entries.push(IndexEntry { image, descriptor });
        self
    }

    /// Add a buildx attestation manifest (see [`attestation_for`]) describing the manifest with
    /// digest `describes`: platform `unknown/unknown`, annotations
    /// `vnd.docker.reference.type: attestation-manifest` and `vnd.docker.reference.digest`.
    pub fn attestation(mut self, attestation: Image, describes: &str) -> Self {
        let mut descriptor = attestation.manifest.descriptor();
        descriptor.platform = Some(Platform::unknown());
        descriptor
            .annotations
            .insert(REFERENCE_DIGEST.to_string(), describes.to_string());
        descriptor.annotations.insert(
            REFERENCE_TYPE.to_string(),
            "attestation-manifest".to_string(),
        );
        self.entries.push(IndexEntry {
            image: attestation,
            descriptor,
        });
        self
    }

    /// OCI only: add an index annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    /// Build the index document.
    pub fn build(self) -> Result<MultiArch> {
        if self.format == Format::Docker && !self.annotations.is_empty() {
            bail!("index annotations are OCI-only");
        }
        let media_type = self.format.index_type();
        let json = IndexJson {
            schema_version: 2,
            media_type,
            manifests: self.entries.iter().map(|e| &e.descriptor).collect(),
            annotations: &self.annotations,
        };
        let index = Manifest::new(media_type, to_json(&json));
        Ok(MultiArch {
            format: self.format,
            entries: self.entries,
            index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn builders_are_deterministic() {
        let build = || {
            let base = Blob::layer(Format::Docker, "base");
            Image::builder(Format::Docker, "x", Platform::linux_amd64())
                .layer(base)
                .unique_layers(1)
                .build()
        };
        let a = build().unwrap();
        let b = build().unwrap();
        assert_eq!(a, b);
        assert!((1024..3072).contains(&a.layers[1].bytes.len()));
        assert_ne!(a.layers[0].digest, a.layers[1].digest);
        let text = String::from_utf8(a.manifest.bytes.clone()).unwrap();
        assert!(text.starts_with("{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\""));
    }

    #[test]
    fn docker_rejects_subject() {
        let i = Image::builder(Format::Oci, "s", Platform::linux_amd64())
            .unique_layers(1)
            .build()
            .unwrap();
        let r = Image::builder(Format::Docker, "d", Platform::linux_amd64())
            .subject(i.manifest.descriptor())
            .build();
        assert!(r.is_err());
    }

    #[test]
    fn attestation_entry_shape() {
        let child = Image::builder(Format::Oci, "c", Platform::linux_amd64())
            .unique_layers(1)
            .build()
            .unwrap();
        let att = attestation_for(&child.manifest, "att");
        let idx = MultiArch::builder(Format::Oci)
            .image(child.clone())
            .attestation(att, &child.manifest.digest)
            .build()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&idx.index.bytes).unwrap();
        let e = &v["manifests"][1];
        assert_eq!(e["platform"]["os"], "unknown");
        assert_eq!(e["annotations"][REFERENCE_TYPE], "attestation-manifest");
        assert_eq!(
            e["annotations"][REFERENCE_DIGEST],
            child.manifest.digest.as_str()
        );
        assert!(idx.entries[1].is_attestation());
        assert_eq!(idx.platform(&Platform::linux_amd64()).unwrap().image, child);
    }
}
