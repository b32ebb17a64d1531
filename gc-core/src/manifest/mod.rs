//! Manifest parsing: every kind a distribution registry stores, reduced to typed references.
//!
//! The auditor needs the edges of a manifest (config, layers, index children with their
//! platform, `subject`), not its whole model, and it must get them from documents that strict
//! parsers reject: descriptors without `mediaType`, OCI documents without `mediaType`, schema1
//! (signed and unsigned), the withdrawn OCI artifact manifest, unknown media types. So this
//! module reads the JSON tree itself (oci-spec refuses several of these; see the research notes)
//! and is lenient per field: a bad descriptor is recorded in [`Manifest::problems`] and skipped,
//! while a document that is not a manifest at all is a [`ManifestError`].
//!
//! Whether a manifest is *unparseable* is not this reader's call but distribution's:
//! [`go_decode`] decides, with Go's rules, whether 2.8 and 3.x can decode the bytes, and the
//! verdict travels with the references in [`Manifest::undecodable`]: each GC model follows its
//! own version's verdict, and a scan follows 2.8's (the conformance-tested version:
//! `unparseable-manifest`, broken tags, dangling children), reporting a 3.x-only failure as a
//! `bad-descriptor` finding. The text is scanned once,
//! the way Go scans it ([`json`]: nesting up to 10,000, invalid UTF-8 replaced, duplicate keys
//! kept), and both readers work on that tree.
//!
//! Detection follows distribution (`manifestStore.Get`, see [`go_decode`]): `schemaVersion` 1
//! is schema1; for 2, the `mediaType` decides, and without one (or with an empty one) a
//! document whose `manifests` is an array is an OCI index, any other an OCI image manifest.
//! Keys match field names as Go matches them (case-insensitively, see
//! [`go_decode::key_matches`]), and the references read are the ones Go's types have: config
//! and layers for image manifests, `manifests` for indexes, `blobs` only for the artifact media
//! type, `fsLayers` for schema1; `subject` for every schema 2 kind (the referrers API's edge).

pub mod go_decode;
pub mod json;

use crate::digest::Digest;
use go_decode::Distribution;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Docker schema1 unsigned.
pub const MT_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema1 signed.
pub const MT_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker schema2 image manifest.
pub const MT_DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI artifact manifest (image-spec 1.1 release candidates only).
pub const MT_OCI_ARTIFACT: &str = "application/vnd.oci.artifact.manifest.v1+json";

/// What kind of document a manifest is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManifestKind {
    /// Docker image manifest schema 1 (`fsLayers`).
    Schema1 {
        /// Whether it carries JWS signatures.
        signed: bool,
    },
    /// Docker image manifest schema 2.
    DockerV2,
    /// Docker manifest list.
    DockerList,
    /// OCI image manifest.
    OciManifest,
    /// OCI image index.
    OciIndex,
    /// OCI artifact manifest (withdrawn from the spec; parsed defensively).
    OciArtifact,
    /// `schemaVersion` 2 with a media type we do not know; references read best-effort.
    Unknown(String),
}

impl ManifestKind {
    /// Whether this is a multi-arch index (manifest list or OCI index).
    pub fn is_index(&self) -> bool {
        matches!(self, ManifestKind::DockerList | ManifestKind::OciIndex)
    }

    /// A short stable name for reports.
    pub fn name(&self) -> &str {
        match self {
            ManifestKind::Schema1 { signed: true } => "schema1-signed",
            ManifestKind::Schema1 { signed: false } => "schema1",
            ManifestKind::DockerV2 => "docker-v2",
            ManifestKind::DockerList => "docker-manifest-list",
            ManifestKind::OciManifest => "oci-manifest",
            ManifestKind::OciIndex => "oci-index",
            ManifestKind::OciArtifact => "oci-artifact",
            ManifestKind::Unknown(_) => "unknown",
        }
    }
}

/// A platform of an index child.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    /// `os`.
    pub os: String,
    /// `architecture`.
    pub architecture: String,
    /// `variant`, if any.
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A reference from a manifest to other content.
///
/// Serialized (for the manifest cache) without the fields that hold their default value
/// (`None`, `false`, empty): they are most of a plain layer's descriptor, and a missing field
/// reads back as its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// The referenced digest.
    pub digest: Digest,
    /// Declared size, if present and valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Declared media type, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Foreign / non-distributable: has `urls`, or a foreign or non-distributable media type.
    /// Such content need not be in the blob store.
    #[serde(default, skip_serializing_if = "is_false")]
    pub foreign: bool,
    /// For index children: the platform, if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// For index children: a buildx attestation manifest
    /// (`vnd.docker.reference.type: attestation-manifest`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub attestation: bool,
}

/// For `skip_serializing_if`: a `false` flag is left out.
fn is_false(flag: &bool) -> bool {
    !*flag
}

/// The references of one manifest.
///
/// Serialized, like [`Descriptor`], without the fields that hold their default value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The kind of document.
    pub kind: ManifestKind,
    /// The image config (schema2, OCI manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Descriptor>,
    /// Layers (schema1 `fsLayers`, schema2/OCI `layers`, artifact `blobs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Descriptor>,
    /// Index children (manifest list / OCI index `manifests`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Descriptor>,
    /// OCI `subject`: the manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// OCI `artifactType`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Per-field problems found while reading (bad descriptors, which were skipped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Why distribution cannot decode these bytes, per version (both `None`: it can, or it
    /// refuses the kind, which [`Manifest::kind`] shows).
    #[serde(default, skip_serializing_if = "Undecodable::is_decodable")]
    pub undecodable: Undecodable,
}

/// Why distribution 2.8 and 3.x cannot decode a manifest: Go's error (or panic) text, per
/// version; `None` when that version decodes it or refuses its kind for another reason
/// ("unrecognized manifest content type", schema1 on 3.x).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Undecodable {
    /// distribution 2.8.
    pub v2_8: Option<String>,
    /// distribution 3.x.
    pub v3: Option<String>,
}

impl Undecodable {
    /// Both versions decode it.
    pub fn is_decodable(&self) -> bool {
        self.v2_8.is_none() && self.v3.is_none()
    }

    /// Why `version` cannot decode it.
    pub fn get(&self, version: Distribution) -> Option<&str> {
        match version {
            Distribution::V2_8 => self.v2_8.as_deref(),
            Distribution::V3 => self.v3.as_deref(),
        }
    }

    /// The verdict of `go_decode` for both versions of a scanned document.
    pub fn of(doc: &json::Document) -> Undecodable {
        let why = |v| {
            go_decode::read_document(doc, v)
                .undecodable()
                .map(str::to_string)
        };
        Undecodable {
            v2_8: why(Distribution::V2_8),
            v3: why(Distribution::V3),
        }
    }

    /// Whether a scan calls the manifest unparseable: distribution 2.8 cannot decode it (pulls
    /// from a 2.8 registry fail and its collector stops). Scans follow 2.8, the version the
    /// conformance tests run; a failure of 3.x alone is [`Undecodable::only_3x`].
    pub fn is_unparseable(&self) -> bool {
        self.v2_8.is_some()
    }

    /// The `unparseable-manifest` detail, in one line naming the versions and Go's error:
    /// `None` unless 2.8 cannot decode it.
    pub fn unparseable_detail(&self) -> Option<String> {
        let a = self.v2_8.as_deref()?;
        Some(match self.v3.as_deref() {
            Some(b) if a == b => format!("distribution 2.8 and 3.x cannot decode it: {a}"),
            Some(b) => format!("distribution cannot decode it: 2.8: {a}; 3.x: {b}"),
            None => format!("distribution 2.8 cannot decode it: {a}"),
        })
    }

    /// When only 3.x cannot decode it (fields 3.x types and 2.8 ignores: a descriptor's
    /// `data` or `artifactType`, an OCI index's annotations): a one-line detail for a
    /// `bad-descriptor` finding; the 3.x GC models stop on it.
    pub fn only_3x(&self) -> Option<String> {
        match (&self.v2_8, &self.v3) {
            (None, Some(b)) => Some(format!("distribution 3.x cannot decode it (2.8 can): {b}")),
            _ => None,
        }
    }
}

/// Why content is not a manifest at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Zero bytes.
    #[error("empty content")]
    Empty,
    /// Not valid JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("JSON document is not an object")]
    NotAnObject,
    /// No usable `schemaVersion`.
    #[error("missing or non-integer schemaVersion")]
    NoSchemaVersion,
    /// A `schemaVersion` other than 1 or 2.
    #[error("unsupported schemaVersion {0}")]
    UnsupportedSchemaVersion(i64),
}

impl Manifest {
    /// Parse manifest bytes.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ManifestError::Empty);
        }
        let doc = json::parse(bytes).map_err(|e| ManifestError::NotJson(e.0))?;
        let value = lenient_value(&doc.value);
        let obj = value.as_object().ok_or(ManifestError::NotAnObject)?;
        let version = obj
            .get("schemaVersion")
            .and_then(Value::as_i64)
            .ok_or(ManifestError::NoSchemaVersion)?;
        let media_type = obj
            .get("mediaType")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty());
        let reader = Reader::default();
        let kind = match version {
            1 => {
                let signed =
                    obj.contains_key("signatures") || media_type == Some(MT_SCHEMA1_SIGNED);
                ManifestKind::Schema1 { signed }
            }
            2 => match media_type {
                Some(MT_DOCKER_V2) => ManifestKind::DockerV2,
                Some(MT_DOCKER_LIST) => ManifestKind::DockerList,
                Some(MT_OCI_MANIFEST) => ManifestKind::OciManifest,
                Some(MT_OCI_INDEX) => ManifestKind::OciIndex,
                Some(MT_OCI_ARTIFACT) => ManifestKind::OciArtifact,
                Some(other) => ManifestKind::Unknown(other.to_string()),
                None if matches!(obj.get("manifests"), Some(Value::Array(_))) => {
                    ManifestKind::OciIndex
                }
                None => ManifestKind::OciManifest,
            },
            other => return Err(ManifestError::UnsupportedSchemaVersion(other)),
        };
        let mut m = match kind {
            ManifestKind::Schema1 { .. } => reader.schema1(obj, kind),
            kind => reader.schema2(obj, kind),
        };
        m.undecodable = Undecodable::of(&doc);
        Ok(m)
    }

    /// Every edge of this manifest: config, layers, children, subject.
    pub fn references(&self) -> impl Iterator<Item = (EdgeKind, &Descriptor)> {
        self.config
            .iter()
            .map(|d| (EdgeKind::Config, d))
            .chain(self.layers.iter().map(|d| (EdgeKind::Layer, d)))
            .chain(self.children.iter().map(|d| (EdgeKind::Child, d)))
            .chain(self.subject.iter().map(|d| (EdgeKind::Subject, d)))
    }
}

/// The kind of an edge from a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Image config blob.
    Config,
    /// Layer blob.
    Layer,
    /// Child manifest of an index.
    Child,
    /// The `subject` manifest of a referrer.
    Subject,
}

impl EdgeKind {
    /// The name used in `missing.csv`'s `kind` column.
    pub fn report_name(self) -> &'static str {
        match self {
            EdgeKind::Config => "config",
            EdgeKind::Layer => "layer",
            EdgeKind::Child => "child-manifest",
            EdgeKind::Subject => "subject",
        }
    }
}

#[derive(Default)]
struct Reader {
    problems: Vec<String>,
}

impl Reader {
    fn schema1(mut self, obj: &Map<String, Value>, kind: ManifestKind) -> Manifest {
        let mut layers = Vec::new();
        for (i, entry) in self.array_field(obj, "fsLayers").iter().enumerate() {
            let sum = entry.get("blobSum").and_then(Value::as_str);
            match sum.map(Digest::parse) {
                Some(Ok(digest)) => layers.push(Descriptor {
                    digest,
                    size: None,
                    media_type: None,
                    foreign: false,
                    platform: None,
                    attestation: false,
                }),
                Some(Err(e)) => self.problems.push(format!("fsLayers[{i}].blobSum: {e}")),
                None => self.problems.push(format!("fsLayers[{i}]: no blobSum")),
            }
        }
        Manifest {
            kind,
            config: None,
            layers,
            children: Vec::new(),
            subject: None,
            artifact_type: None,
            problems: self.problems,
            undecodable: Undecodable::default(),
        }
    }

    fn schema2(mut self, obj: &Map<String, Value>, kind: ManifestKind) -> Manifest {
        // The fields Go's type for this kind has; an unknown kind is read best-effort.
        let (image, index, artifact) = match &kind {
            ManifestKind::DockerV2 | ManifestKind::OciManifest => (true, false, false),
            ManifestKind::DockerList | ManifestKind::OciIndex => (false, true, false),
            ManifestKind::OciArtifact => (false, false, true),
            _ => (true, true, true),
        };
        let config = match obj.get("config") {
            None | Some(Value::Null) => None,
            Some(_) if !image => None,
            Some(v) => self.descriptor("config", v),
        };
        let mut layers = if image {
            self.descriptors(obj, "layers")
        } else {
            Vec::new()
        };
        if artifact {
            layers.extend(self.descriptors(obj, "blobs"));
        }
        let children = if index {
            self.descriptors(obj, "manifests")
        } else {
            Vec::new()
        };
        let subject = match obj.get("subject") {
            None | Some(Value::Null) => None,
            Some(v) => self.descriptor("subject", v),
        };
        let needs = |field: &str| !obj.contains_key(field);
        match kind {
            ManifestKind::DockerV2 | ManifestKind::OciManifest if needs("config") => {
                self.problems.push("no config".to_string())
            }
            ManifestKind::DockerList | ManifestKind::OciIndex if needs("manifests") => {
                self.problems.push("no manifests".to_string())
            }
            _ => {}
        }
        Manifest {
            kind,
            config,
            layers,
            children,
            subject,
            artifact_type: obj
                .get("artifactType")
                .and_then(Value::as_str)
                .map(str::to_string),
            problems: self.problems,
            undecodable: Undecodable::default(),
        }
    }

    /// The array in `field`: empty when absent or null; when it is not an array, a problem
    /// (whether distribution can decode the manifest is [`go_decode`]'s call).
    fn array_field<'a>(&mut self, obj: &'a Map<String, Value>, field: &str) -> &'a [Value] {
        match obj.get(field) {
            None | Some(Value::Null) => &[],
            Some(Value::Array(a)) => a,
            Some(other) => {
                self.problems.push(format!(
                    "{field}: expected an array, found {}",
                    json_type(other)
                ));
                &[]
            }
        }
    }

    fn descriptors(&mut self, obj: &Map<String, Value>, field: &'static str) -> Vec<Descriptor> {
        self.array_field(obj, field)
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.descriptor(&format!("{field}[{i}]"), v))
            .collect()
    }

    fn descriptor(&mut self, at: &str, v: &Value) -> Option<Descriptor> {
        let Some(obj) = v.as_object() else {
            self.problems.push(format!("{at}: not an object"));
            return None;
        };
        let digest = match obj.get("digest").and_then(Value::as_str).map(Digest::parse) {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.problems.push(format!("{at}.digest: {e}"));
                return None;
            }
            None => {
                self.problems.push(format!("{at}: no digest"));
                return None;
            }
        };
        let media_type = obj
            .get("mediaType")
            .and_then(Value::as_str)
            .map(str::to_string);
        let has_urls = obj
            .get("urls")
            .and_then(Value::as_array)
            .is_some_and(|u| !u.is_empty());
        let foreign = has_urls
            || media_type
                .as_deref()
                .is_some_and(|m| m.contains(".foreign.") || m.contains(".nondistributable."));
        let platform = obj
            .get("platform")
            .and_then(Value::as_object)
            .map(|p| Platform {
                os: str_field(p, "os"),
                architecture: str_field(p, "architecture"),
                variant: p.get("variant").and_then(Value::as_str).map(str::to_string),
            });
        let attestation = obj
            .get("annotations")
            .and_then(|a| a.get("vnd.docker.reference.type"))
            .and_then(Value::as_str)
            == Some("attestation-manifest");
        Some(Descriptor {
            digest,
            size: obj.get("size").and_then(Value::as_u64),
            media_type,
            foreign,
            platform,
            attestation,
        })
    }
}

fn str_field(obj: &Map<String, Value>, field: &str) -> String {
    obj.get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Field names of the manifest types, to which keys are folded the way Go matches them.
const FIELD_NAMES: &[&str] = &[
    "schemaVersion",
    "mediaType",
    "config",
    "layers",
    "manifests",
    "blobs",
    "subject",
    "artifactType",
    "annotations",
    "digest",
    "size",
    "urls",
    "platform",
    "architecture",
    "os",
    "variant",
    "fsLayers",
    "blobSum",
    "signatures",
];

/// Fields where Go leaves the value as it was on a later `null` (strings, integers, structs).
const NULL_KEEPS: &[&str] = &[
    "schemaVersion",
    "mediaType",
    "config",
    "artifactType",
    "digest",
    "size",
    "architecture",
    "os",
    "variant",
    "blobSum",
];

/// The scanned tree as the lenient reader reads it: keys that Go would match to a field
/// renamed to the field's name, duplicates resolved as Go resolves them ([`decode_again`]),
/// numbers as serde_json's.
/// Containers below the tree's depth read as `null` (no field is that deep).
fn lenient_value(v: &json::Json) -> Value {
    use json::Json as J;
    match v {
        J::Null | J::DeepArray | J::DeepObject => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => n
            .parse::<u64>()
            .map(Value::from)
            .or_else(|_| n.parse::<i64>().map(Value::from))
            .ok()
            .or_else(|| {
                n.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or(Value::Null),
        J::String(s) => Value::String(s.clone()),
        J::Array(items) => Value::Array(items.iter().map(lenient_value).collect()),
        J::Object(members) => {
            let mut map = Map::new();
            for (key, item) in members {
                let name = FIELD_NAMES
                    .iter()
                    .find(|n| **n == key.as_str())
                    .or_else(|| FIELD_NAMES.iter().find(|n| go_decode::key_matches(n, key)))
                    .map_or(key.as_str(), |n| *n);
                let value = lenient_value(item);
                match map.get_mut(name) {
                    Some(first) => decode_again(first, value, NULL_KEEPS.contains(&name)),
                    None => {
                        map.insert(name.to_string(), value);
                    }
                }
            }
            Value::Object(map)
        }
    }
}

/// What Go's decoder makes of a repeated key, decoding the new value into what the earlier
/// occurrence left (`decode.go`: `object` reuses the struct, map or pointed-to struct,
/// `array` decodes into the existing elements and then sets the length): objects merge,
/// arrays merge element by element and take the new length, `null` resets a slice, map or
/// pointer but leaves a string, integer or struct (`null_keeps`) as it was; anything else
/// replaces.
fn decode_again(first: &mut Value, new: Value, null_keeps: bool) {
    match (first, new) {
        (_, Value::Null) if null_keeps => {}
        (Value::Object(first), Value::Object(new)) => {
            for (key, value) in new {
                match first.get_mut(&key) {
                    Some(old) => decode_again(old, value, NULL_KEEPS.contains(&key.as_str())),
                    None => {
                        first.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(first), Value::Array(new)) => {
            first.truncate(new.len());
            for (i, value) in new.into_iter().enumerate() {
                match first.get_mut(i) {
                    // Elements are descriptors or strings: null leaves them.
                    Some(old) => decode_again(old, value, true),
                    None => first.push(value),
                }
            }
        }
        (first, new) => *first = new,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dg(n: u8) -> String {
        Digest::sha256_of(&[n]).to_string()
    }

    #[test]
    fn docker_schema2_gives_config_and_layers() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MT_DOCKER_V2}",
              "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":"{}"}},
              "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"{}"}}]}}"#,
            dg(1),
            dg(2)
        );
        let m = Manifest::parse(m.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::DockerV2);
        assert_eq!(m.config.unwrap().digest.to_string(), dg(1));
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].size, Some(3));
        assert!(m.problems.is_empty());
    }

    #[test]
    fn oci_index_without_media_type_is_detected_and_children_keep_platforms() {
        let m = format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}},
              {{"digest":"{}","platform":{{"os":"unknown","architecture":"unknown"}},
                "annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}},
              {{"mediaType":"{MT_OCI_INDEX}","digest":"{}"}}]}}"#,
            dg(1),
            dg(2),
            dg(3)
        );
        let m = Manifest::parse(m.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::OciIndex);
        assert!(m.kind.is_index());
        let platforms: Vec<String> = m
            .children
            .iter()
            .map(|c| {
                c.platform
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(platforms, vec!["linux/arm/v7", "unknown/unknown", ""]);
        assert!(m.children[1].attestation);
        assert!(!m.children[0].attestation);
    }

    #[test]
    fn oci_manifest_with_subject_and_no_layers() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MT_OCI_MANIFEST}","artifactType":"application/vnd.example+json",
              "config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},
              "subject":{{"mediaType":"{MT_OCI_MANIFEST}","digest":"{}","size":9}}}}"#,
            dg(1),
            dg(9)
        );
        let m = Manifest::parse(m.as_bytes()).unwrap();
        assert_eq!(m.subject.as_ref().unwrap().digest.to_string(), dg(9));
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.example+json")
        );
        let kinds: Vec<EdgeKind> = m.references().map(|(k, _)| k).collect();
        assert_eq!(kinds, vec![EdgeKind::Config, EdgeKind::Subject]);
    }

    #[test]
    fn schema1_signed_and_unsigned() {
        let unsigned = format!(
            r#"{{"schemaVersion":1,"name":"a","tag":"t","fsLayers":[{{"blobSum":"{}"}},{{"blobSum":"{}"}}],"history":[]}}"#,
            dg(1),
            dg(1)
        );
        let m = Manifest::parse(unsigned.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::Schema1 { signed: false });
        assert_eq!(m.layers.len(), 2);
        let signed = format!(
            r#"{{"schemaVersion":1,"fsLayers":[{{"blobSum":"{}"}}],"signatures":[{{"header":{{}},"signature":"x","protected":"y"}}]}}"#,
            dg(3)
        );
        assert_eq!(
            Manifest::parse(signed.as_bytes()).unwrap().kind,
            ManifestKind::Schema1 { signed: true }
        );
    }

    #[test]
    fn foreign_layers_are_marked() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MT_DOCKER_V2}","config":{{"digest":"{}"}},"layers":[
              {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}"}},
              {{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","urls":["https://example.invalid/l"]}},
              {{"digest":"{}"}}]}}"#,
            dg(1),
            dg(2),
            dg(3),
            dg(4)
        );
        let m = Manifest::parse(m.as_bytes()).unwrap();
        let foreign: Vec<bool> = m.layers.iter().map(|l| l.foreign).collect();
        assert_eq!(foreign, vec![true, true, false]);
    }

    #[test]
    fn artifact_manifest_blobs_are_layers() {
        let m = format!(
            r#"{{"mediaType":"{MT_OCI_ARTIFACT}","schemaVersion":2,"blobs":[{{"digest":"{}"}}],"subject":{{"digest":"{}"}}}}"#,
            dg(1),
            dg(2)
        );
        let m = Manifest::parse(m.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::OciArtifact);
        assert_eq!(m.layers.len(), 1);
        assert!(m.subject.is_some());
    }

    #[test]
    fn bad_descriptors_are_problems_not_errors() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MT_OCI_MANIFEST}","config":{{"digest":"sha256:XYZ"}},
              "layers":[{{"size":1}}, 7, {{"digest":"{}"}}]}}"#,
            dg(1)
        );
        let m = Manifest::parse(m.as_bytes()).unwrap();
        assert!(m.config.is_none());
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.problems.len(), 3, "{:?}", m.problems);
    }

    #[test]
    fn unknown_media_type_keeps_best_effort_references() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/x-weird","layers":[{{"digest":"{}"}}]}}"#,
            dg(1)
        );
        let m = Manifest::parse(m.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::Unknown("application/x-weird".into()));
        assert_eq!(m.layers.len(), 1);
    }

    #[test]
    fn garbage_is_an_error() {
        let cases: Vec<(&[u8], &str)> = vec![
            (b"", "empty"),
            (b"  \n", "empty"),
            (b"{\"schemaVersion\":2,\"config\"", "not JSON"),
            (b"\xff\xfe\x00", "not JSON"),
            (b"[1,2]", "not an object"),
            (b"{}", "schemaVersion"),
            (b"{\"schemaVersion\":\"2\"}", "schemaVersion"),
            (b"{\"schemaVersion\":3}", "unsupported"),
        ];
        for (input, expect) in cases {
            let err = Manifest::parse(input).unwrap_err().to_string();
            assert!(err.contains(expect), "{input:?}: {err}");
        }
    }

    #[test]
    fn fields_of_the_wrong_type_are_problems_and_go_decides_decodability() {
        // Go decodes `{"schemaVersion":2}` as an OCI manifest without config.
        let m = Manifest::parse(b"{\"schemaVersion\":2}").unwrap();
        assert_eq!(m.kind, ManifestKind::OciManifest);
        assert!(m.undecodable.is_decodable());
        assert_eq!(m.problems, vec!["no config"]);
        // `manifests` a string, no media type: the index decode fails and `Get` panics.
        let m = Manifest::parse(b"{\"schemaVersion\":2,\"manifests\":\"x\"}").unwrap();
        assert!(m
            .undecodable
            .v2_8
            .as_deref()
            .unwrap()
            .starts_with("panic: "));
        let m = Manifest::parse(b"{\"schemaVersion\":1,\"fsLayers\":{}}").unwrap();
        assert_eq!(
            m.problems,
            vec!["fsLayers: expected an array, found an object"]
        );
        assert_eq!(
            m.undecodable.unparseable_detail().as_deref(),
            Some("distribution 2.8 cannot decode it: json: cannot unmarshal object into Go struct field Manifest.fsLayers of type []schema1.FSLayer")
        );
        // Fields of another kind are not read: Go's type for an OCI index has no `layers`.
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MT_OCI_INDEX}","manifests":[],"layers":"x","config":{{"digest":"{}"}}}}"#,
            dg(1)
        );
        let m = Manifest::parse(m.as_bytes()).unwrap();
        assert!(m.undecodable.is_decodable());
        assert_eq!(m.references().count(), 0);
    }

    #[test]
    fn keys_fold_and_duplicates_resolve_as_in_go() {
        let m = format!(
            r#"{{"SchemaVersion":2,"MEDIATYPE":"{MT_DOCKER_V2}","mediaType":null,"Config":{{"Digest":"{}"}},
              "layers":[{{"digest":"{}"}}],"layers":[{{"\u017fize":3,"digest":"{}"}}]}}"#,
            dg(1),
            dg(2),
            dg(3)
        );
        let m = Manifest::parse(m.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::DockerV2);
        assert!(m.undecodable.is_decodable(), "{:?}", m.undecodable);
        assert_eq!(m.config.unwrap().digest.to_string(), dg(1));
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].digest.to_string(), dg(3));
        assert_eq!(m.layers[0].size, Some(3));
    }

    #[test]
    fn repeated_keys_decode_into_what_the_first_left() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MT_OCI_MANIFEST}","config":{{"digest":"{}","size":1}},
              "layers":[{{"digest":"{}","size":1,"urls":["u"]}},{{"digest":"{}"}}],
              "annotations":{{"a":"b"}},
              "config":{{"size":2}},"config":null,"layers":[{{"size":5,"urls":null}}]}}"#,
            dg(1),
            dg(2),
            dg(3)
        );
        let m = Manifest::parse(m.as_bytes()).unwrap();
        assert!(m.undecodable.is_decodable());
        let config = m.config.unwrap();
        assert_eq!((config.digest.to_string(), config.size), (dg(1), Some(2)));
        let layers: Vec<(String, Option<u64>, bool)> = m
            .layers
            .iter()
            .map(|l| (l.digest.to_string(), l.size, l.foreign))
            .collect();
        assert_eq!(layers, vec![(dg(2), Some(5), false)]);
    }

    #[test]
    fn deep_unknown_fields_are_valid() {
        for depth in [200, 5_000, 9_999] {
            let m = format!(
                r#"{{"schemaVersion":2,"mediaType":"{MT_OCI_MANIFEST}","config":{{"digest":"{}"}},"x":{}{}}}"#,
                dg(1),
                "[".repeat(depth),
                "]".repeat(depth)
            );
            let m = Manifest::parse(m.as_bytes()).unwrap();
            assert!(m.undecodable.is_decodable(), "{depth}");
            assert!(m.problems.is_empty(), "{depth}: {:?}", m.problems);
        }
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(matches!(
            Manifest::parse(deep.as_bytes()),
            Err(ManifestError::NotJson(_))
        ));
    }
}
