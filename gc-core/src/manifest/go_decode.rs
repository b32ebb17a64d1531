//! Whether distribution can decode a manifest: the one place that decides it, with Go's rules.
//!
//! gc-audit's own reader ([`super::Manifest::parse`]) is lenient so that reports stay useful;
//! whether a manifest is *unparseable* is decided by distribution, which decodes it into typed
//! Go structs, and when that fails its `garbage-collect` stops ("failed to retrieve manifest
//! for digest …") and a pull fails. [`read`] mirrors that decoding for one registry version.
//!
//! # How distribution reads a manifest
//! `manifestStore.Get` (`registry/storage/manifeststore.go`, v2.8.3 and v3.1.1) first decodes the
//! bytes into a `Versioned` pre-read (`schemaVersion int`, `mediaType string`), then:
//! - `schemaVersion` 1: schema1 (2.8 only; 3.x: "unrecognized manifest schema version 1"). The
//!   2.8 `signedManifestHandler.Unmarshal` hands the bytes to libtrust's `NewJSONSignature`
//!   (a `map[string]interface{}` decode: a number beyond `float64` fails), signs them, and
//!   `SignedManifest.UnmarshalJSON` decodes the original bytes into `schema1.Manifest`
//!   (`manifest/schema1/manifest.go`: `name`, `tag`, `architecture` strings, `fsLayers []FSLayer
//!   {blobSum digest.Digest}`, `history []History{v1Compatibility string}`).
//! - `schemaVersion` 2 by `mediaType`: schema2 (`schema2.DeserializedManifest.UnmarshalJSON`,
//!   which also requires the media type), OCI manifest (`ocischema.DeserializedManifest`,
//!   media type empty or OCI), manifest list and OCI index (2.8: both
//!   `manifestlist.DeserializedManifestList`; 3.x: the list, or `ocischema.DeserializedImageIndex`
//!   for the index). The storage handlers call `UnmarshalJSON` directly, so the
//!   `validateManifest` / `validateIndex` checks of the registered `UnmarshalFunc`s (used on
//!   push) do not run here.
//! - `schemaVersion` 2 with no (or an empty) `mediaType`: decoded as an index first (2.8:
//!   `ManifestList`, 3.x: `ImageIndex`); if that decode fails, `Get` converts the nil result
//!   with `res.(*manifestlist.DeserializedManifestList)` and **panics** (the collector crashes,
//!   exit 2); if `manifests` decoded non-nil (any array, even empty) it is an index; otherwise
//!   the bytes are decoded as an OCI manifest.
//! - any other media type: "unrecognized manifest content type"; any other schema version:
//!   "unrecognized manifest schema version N". Those are [`GoRead::Unsupported`].
//!
//! # The typed fields
//! - 2.8.3: `distribution.Descriptor` (`blobs.go`): `mediaType string`, `size int64`, `digest
//!   digest.Digest` (a string; no validation on decode), `urls []string`, `annotations
//!   map[string]string`, `platform *v1.Platform`. `v1.Platform` (image-spec vendored by 2.8.3,
//!   `specs-go/v1/descriptor.go`): `architecture`, `os`, `os.version`, `variant` strings,
//!   `os.features []string`. `schema2.Manifest{Versioned; config Descriptor; layers
//!   []Descriptor}`, `ocischema.Manifest{…; annotations map[string]string}`,
//!   `manifestlist.ManifestList{Versioned; manifests []ManifestDescriptor}` where
//!   `ManifestDescriptor{Descriptor; platform PlatformSpec}` (its own `platform` hides the
//!   descriptor's; `PlatformSpec` adds `features []string`).
//! - 3.x (v3.1.1, image-spec v1.1.1): descriptors are `v1.Descriptor`, which adds `data []byte`
//!   (base64, or an array of numbers 0–255) and `artifactType string`; the OCI index is
//!   `ocischema.ImageIndex{schemaVersion; mediaType; manifests []v1.Descriptor; annotations
//!   map[string]string}` (children's platform: `*v1.Platform`, no `features`); top-level
//!   annotations of an index are typed in 3.x only. The OCI manifest's `subject` and
//!   `artifactType` are typed in neither version (unknown fields, ignored).
//!
//! # Go's `encoding/json` rules applied (`decode.go`, `scanner.go`, `fold.go`)
//! - syntax, nesting up to 10,000, invalid UTF-8 and lone surrogates: see [`super::json`];
//! - integers: `strconv.ParseInt(text, 10, 64)`: no fractions, no exponents, no strings, in
//!   range (`size` of `1.5`, `1e3`, `"123"`, 2^63 fail; `-1` decodes);
//! - `null` into anything leaves the zero value: never an error;
//! - unknown fields are skipped unexamined; every occurrence of a duplicate key is decoded in
//!   turn (the last wins, but an earlier one's type error is still the error);
//! - keys match field names exactly, else case-insensitively: ASCII letters fold, and U+212A
//!   (Kelvin) and U+017F (long s) match `k` and `s` (Go 1.19's `equalFoldRight`, the compiler
//!   of Debian's 2.8.2; Go ≥ 1.21's `foldRune` gives the same for these ASCII names);
//! - the first type error in document order is the error, in `UnmarshalTypeError`'s words:
//!   `json: cannot unmarshal string into Go struct field Descriptor.layers.size of type int64`.

use super::json::{Document, Json};

/// The registry versions whose decoding differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// distribution 2.8.x (conformance-tested against Debian's 2.8.2).
    V2_8,
    /// distribution 3.x.
    V3,
}

/// What distribution's manifest store makes of some bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoRead {
    /// Decoded, as this kind.
    Decoded(GoKind),
    /// Not a kind this version serves: "unrecognized manifest content type …" or
    /// "unrecognized manifest schema version N".
    Unsupported(String),
    /// Decoding fails with this error (Go's text).
    Fails(String),
    /// Decoding panics the process (Go's panic text).
    Panics(String),
}

impl GoRead {
    /// The reason the manifest cannot be decoded, if decoding fails or panics.
    pub fn undecodable(&self) -> Option<&str> {
        match self {
            GoRead::Fails(why) | GoRead::Panics(why) => Some(why),
            GoRead::Decoded(_) | GoRead::Unsupported(_) => None,
        }
    }
}

/// The Go type a manifest decoded into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoKind {
    /// `schema1.SignedManifest`.
    Schema1,
    /// `schema2.DeserializedManifest`.
    Schema2,
    /// A manifest list (2.8: also an OCI index with its media type).
    ManifestList,
    /// `ocischema.DeserializedManifest`.
    OciManifest,
    /// An OCI index (3.x `ocischema.DeserializedImageIndex`; 2.8 decodes an index with its
    /// media type as a [`GoKind::ManifestList`] and one without as this).
    OciIndex,
}

/// What distribution `version` makes of `bytes`.
pub fn read(bytes: &[u8], version: Distribution) -> GoRead {
    match super::json::parse(bytes) {
        Ok(doc) => read_document(&doc, version),
        Err(e) => GoRead::Fails(e.0),
    }
}

/// [`read`], on an already scanned document.
pub fn read_document(doc: &Document, version: Distribution) -> GoRead {
    let v = &doc.value;
    let t = Types::of(version);
    if let Err(e) = decode(v, &Ty::Struct(t.versioned)) {
        return GoRead::Fails(e);
    }
    let schema_version = last_set(v, "schemaVersion")
        .and_then(|j| match j {
            Json::Number(n) => n.parse::<i64>().ok(),
            _ => None,
        })
        .unwrap_or(0);
    let media_type = match last_set(v, "mediaType") {
        Some(Json::String(s)) => s.as_str(),
        _ => "",
    };
    let fails = |ty: &'static St, kind: GoKind| match decode(v, &Ty::Struct(ty)) {
        Ok(()) => GoRead::Decoded(kind),
        Err(e) => GoRead::Fails(e),
    };
    match (schema_version, version) {
        (1, Distribution::V2_8) => {
            if let Some(n) = &doc.first_float_overflow {
                return GoRead::Fails(format!(
                    "json: cannot unmarshal number {n} into Go value of type float64"
                ));
            }
            fails(&SCHEMA1, GoKind::Schema1)
        }
        (2, _) => match media_type {
            super::MT_DOCKER_V2 => fails(t.schema2, GoKind::Schema2),
            super::MT_OCI_MANIFEST => fails(t.oci_manifest, GoKind::OciManifest),
            super::MT_DOCKER_LIST => fails(t.list, GoKind::ManifestList),
            super::MT_OCI_INDEX => match version {
                Distribution::V2_8 => fails(t.list, GoKind::ManifestList),
                Distribution::V3 => fails(t.index, GoKind::OciIndex),
            },
            "" => {
                if let Err(e) = decode(v, &Ty::Struct(t.index)) {
                    return GoRead::Panics(format!(
                        "panic: interface conversion: distribution.Manifest is nil, not {} ({e})",
                        t.index_go_type
                    ));
                }
                if matches!(
                    last_field(v, "manifests"),
                    Some(Json::Array(_) | Json::DeepArray)
                ) {
                    GoRead::Decoded(GoKind::OciIndex)
                } else {
                    fails(t.oci_manifest, GoKind::OciManifest)
                }
            }
            other => GoRead::Unsupported(format!("unrecognized manifest content type {other}")),
        },
        (n, _) => GoRead::Unsupported(format!("unrecognized manifest schema version {n}")),
    }
}

/// The last member of top-level object `v` whose key sets field `name` (exactly or folded):
/// what Go ends up with in a slice field, where `null` resets it.
fn last_field<'a>(v: &'a Json, name: &str) -> Option<&'a Json> {
    let Json::Object(members) = v else {
        return None;
    };
    members
        .iter()
        .rev()
        .find(|(k, _)| key_matches(name, k))
        .map(|(_, v)| v)
}

/// The same for a string or integer field, where `null` leaves the value as it was.
fn last_set<'a>(v: &'a Json, name: &str) -> Option<&'a Json> {
    let Json::Object(members) = v else {
        return None;
    };
    members
        .iter()
        .rev()
        .find(|(k, v)| key_matches(name, k) && *v != Json::Null)
        .map(|(_, v)| v)
}

/// Whether JSON key `key` sets the field named `name` (an ASCII name): equal, or equal under
/// Go's folding (ASCII letters case-insensitively; U+212A for `k`, U+017F for `s`).
pub fn key_matches(name: &str, key: &str) -> bool {
    if name == key {
        return true;
    }
    let mut key_chars = key.chars();
    for n in name.bytes() {
        let Some(k) = key_chars.next() else {
            return false;
        };
        let matches = if k.is_ascii() {
            let k = k as u8;
            k == n || (n.is_ascii_alphabetic() && k.eq_ignore_ascii_case(&n))
        } else {
            matches!(
                (n.to_ascii_lowercase(), k),
                (b'k', '\u{212a}') | (b's', '\u{17f}')
            )
        };
        if !matches {
            return false;
        }
    }
    key_chars.next().is_none()
}

/// A Go struct type, its fields flattened (embedded structs' fields promoted, hidden ones
/// dropped) in Go's field order.
#[derive(Debug)]
struct St {
    /// `reflect.Type.Name()`: the struct's name in error messages.
    name: &'static str,
    /// `reflect.Type.String()`: the type in error messages.
    go_type: &'static str,
    fields: &'static [(&'static str, Ty)],
}

/// The Go types that manifests' fields have.
#[derive(Debug, Clone, Copy)]
enum Ty {
    /// A string kind, by its Go type name (`string`, `digest.Digest`).
    Str(&'static str),
    /// A signed integer kind (`int64`, `int`).
    Int(&'static str),
    /// `[]string`.
    StrSlice,
    /// `map[string]string`.
    StrMap,
    /// `[]byte`: a base64 string or an array of 0–255.
    Bytes,
    /// A struct.
    Struct(&'static St),
    /// A pointer to a struct.
    Ptr(&'static St),
    /// A slice of structs.
    Slice(&'static St, &'static str),
}

impl Ty {
    fn go_type(&self) -> &'static str {
        match self {
            Ty::Str(t) | Ty::Int(t) => t,
            Ty::StrSlice => "[]string",
            Ty::StrMap => "map[string]string",
            Ty::Bytes => "[]uint8",
            Ty::Struct(s) | Ty::Ptr(s) => s.go_type,
            Ty::Slice(_, t) => t,
        }
    }
}

/// Where the decoder is, for error messages: Go's `errorContext`.
#[derive(Default)]
struct Context {
    /// The struct whose field is being decoded.
    within: Option<&'static str>,
    /// JSON names of the fields descended through.
    path: Vec<&'static str>,
}

impl Context {
    fn type_error(&self, value: &str, go_type: &str) -> String {
        match self.within {
            Some(st) => format!(
                "json: cannot unmarshal {value} into Go struct field {st}.{} of type {go_type}",
                self.path.join(".")
            ),
            None => format!("json: cannot unmarshal {value} into Go value of type {go_type}"),
        }
    }
}

fn decode(v: &Json, ty: &Ty) -> Result<(), String> {
    decode_in(v, ty, &mut Context::default())
}

fn decode_in(v: &Json, ty: &Ty, cx: &mut Context) -> Result<(), String> {
    let mismatch = |cx: &Context| Err(cx.type_error(v.go_kind(), ty.go_type()));
    match (ty, v) {
        (_, Json::Null) => Ok(()),
        (Ty::Str(_), Json::String(_)) => Ok(()),
        (Ty::Int(t), Json::Number(n)) => match n.parse::<i64>() {
            Ok(_) => Ok(()),
            Err(_) => Err(cx.type_error(&format!("number {n}"), t)),
        },
        (Ty::StrSlice, Json::Array(items)) => items
            .iter()
            .try_for_each(|item| decode_in(item, &Ty::Str("string"), cx)),
        (Ty::StrMap, Json::Object(members)) => members
            .iter()
            .try_for_each(|(_, item)| decode_in(item, &Ty::Str("string"), cx)),
        (Ty::Bytes, Json::String(s)) => base64_std(s),
        (Ty::Bytes, Json::Array(items)) => items.iter().try_for_each(|item| match item {
            Json::Null => Ok(()),
            Json::Number(n) => match n.parse::<u8>() {
                Ok(_) => Ok(()),
                Err(_) => Err(cx.type_error(&format!("number {n}"), "uint8")),
            },
            other => Err(cx.type_error(other.go_kind(), "uint8")),
        }),
        (Ty::Struct(st) | Ty::Ptr(st), Json::Object(members)) => {
            for (key, item) in members {
                let field = st
                    .fields
                    .iter()
                    .find(|(name, _)| *name == key.as_str())
                    .or_else(|| st.fields.iter().find(|(name, _)| key_matches(name, key)));
                let Some((name, field_ty)) = field else {
                    continue;
                };
                let saved = cx.within.replace(st.name);
                cx.path.push(name);
                let r = decode_in(item, field_ty, cx);
                cx.path.pop();
                cx.within = saved;
                r?;
            }
            Ok(())
        }
        (Ty::Slice(st, _), Json::Array(items)) => items
            .iter()
            .try_for_each(|item| decode_in(item, &Ty::Struct(st), cx)),
        // Contents below the tree's depth: no typed field is that deep.
        (Ty::StrSlice | Ty::Bytes | Ty::Slice(..), Json::DeepArray) => Ok(()),
        (Ty::StrMap | Ty::Struct(_) | Ty::Ptr(_), Json::DeepObject) => Ok(()),
        _ => mismatch(cx),
    }
}

/// Go's `base64.StdEncoding.Decode` as `encoding/json` uses it for `[]byte`: padded standard
/// alphabet, CR and LF ignored.
fn base64_std(s: &str) -> Result<(), String> {
    let bad = |at: usize| Err(format!("illegal base64 data at input byte {at}"));
    let chars: Vec<(usize, u8)> = s
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b != b'\r' && *b != b'\n')
        .collect();
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    for (q, quantum) in chars.chunks(4).enumerate() {
        let last = (q + 1) * 4 >= chars.len();
        let pad_from = quantum.iter().position(|(_, b)| *b == b'=');
        let data = pad_from.unwrap_or(quantum.len());
        if let Some(&(at, _)) = quantum[..data].iter().find(|(_, b)| !alphabet(*b)) {
            return bad(at);
        }
        match pad_from {
            None if quantum.len() == 4 => {}
            None => return bad(s.len()),
            Some(p) => {
                let (at, _) = quantum[p];
                // `xx==` or `xxx=`, and only in the last quantum.
                if p < 2
                    || !last
                    || quantum.len() != 4
                    || quantum[p..].iter().any(|(_, b)| *b != b'=')
                {
                    return bad(at);
                }
            }
        }
    }
    Ok(())
}

/// The types one version decodes into.
struct Types {
    versioned: &'static St,
    schema2: &'static St,
    oci_manifest: &'static St,
    list: &'static St,
    index: &'static St,
    /// The type `Get` asserts the index decode's result to, for the panic's text.
    index_go_type: &'static str,
}

impl Types {
    fn of(version: Distribution) -> Types {
        match version {
            Distribution::V2_8 => Types {
                versioned: &VERSIONED_2_8,
                schema2: &SCHEMA2_2_8,
                oci_manifest: &OCI_MANIFEST_2_8,
                list: &LIST_2_8,
                index: &LIST_2_8,
                index_go_type: "*manifestlist.DeserializedManifestList",
            },
            Distribution::V3 => Types {
                versioned: &VERSIONED_3,
                schema2: &SCHEMA2_3,
                oci_manifest: &OCI_MANIFEST_3,
                list: &LIST_3,
                index: &INDEX_3,
                index_go_type: "*ocischema.DeserializedImageIndex",
            },
        }
    }
}

const SCHEMA_VERSION: (&str, Ty) = ("schemaVersion", Ty::Int("int"));
const MEDIA_TYPE: (&str, Ty) = ("mediaType", Ty::Str("string"));
const DIGEST: (&str, Ty) = ("digest", Ty::Str("digest.Digest"));
const SIZE: (&str, Ty) = ("size", Ty::Int("int64"));
const URLS: (&str, Ty) = ("urls", Ty::StrSlice);
const ANNOTATIONS: (&str, Ty) = ("annotations", Ty::StrMap);

/// `v1.Platform` (image-spec as vendored by 2.8.3, and v1.1.1 for 3.x: the same fields).
static PLATFORM: St = St {
    name: "Platform",
    go_type: "v1.Platform",
    fields: &[
        ("architecture", Ty::Str("string")),
        ("os", Ty::Str("string")),
        ("os.version", Ty::Str("string")),
        ("os.features", Ty::StrSlice),
        ("variant", Ty::Str("string")),
    ],
};

/// `manifestlist.PlatformSpec` (both versions).
static PLATFORM_SPEC: St = St {
    name: "PlatformSpec",
    go_type: "manifestlist.PlatformSpec",
    fields: &[
        ("architecture", Ty::Str("string")),
        ("os", Ty::Str("string")),
        ("os.version", Ty::Str("string")),
        ("os.features", Ty::StrSlice),
        ("variant", Ty::Str("string")),
        ("features", Ty::StrSlice),
    ],
};

/// `manifest.Versioned` (2.8.3 `manifest/versioned.go`).
static VERSIONED_2_8: St = St {
    name: "Versioned",
    go_type: "manifest.Versioned",
    fields: &[SCHEMA_VERSION, MEDIA_TYPE],
};

/// `distribution.Descriptor` (2.8.3 `blobs.go`).
static DESCRIPTOR_2_8: St = St {
    name: "Descriptor",
    go_type: "distribution.Descriptor",
    fields: &[
        MEDIA_TYPE,
        SIZE,
        DIGEST,
        URLS,
        ANNOTATIONS,
        ("platform", Ty::Ptr(&PLATFORM)),
    ],
};

/// `manifestlist.ManifestDescriptor` at 2.8.3: `distribution.Descriptor` with its own
/// `platform`.
static MANIFEST_DESCRIPTOR_2_8: St = St {
    name: "ManifestDescriptor",
    go_type: "manifestlist.ManifestDescriptor",
    fields: &[
        MEDIA_TYPE,
        SIZE,
        DIGEST,
        URLS,
        ANNOTATIONS,
        ("platform", Ty::Struct(&PLATFORM_SPEC)),
    ],
};

/// `schema2.Manifest` at 2.8.3.
static SCHEMA2_2_8: St = St {
    name: "Manifest",
    go_type: "schema2.Manifest",
    fields: &[
        SCHEMA_VERSION,
        MEDIA_TYPE,
        ("config", Ty::Struct(&DESCRIPTOR_2_8)),
        (
            "layers",
            Ty::Slice(&DESCRIPTOR_2_8, "[]distribution.Descriptor"),
        ),
    ],
};

/// `ocischema.Manifest` at 2.8.3.
static OCI_MANIFEST_2_8: St = St {
    name: "Manifest",
    go_type: "ocischema.Manifest",
    fields: &[
        SCHEMA_VERSION,
        MEDIA_TYPE,
        ("config", Ty::Struct(&DESCRIPTOR_2_8)),
        (
            "layers",
            Ty::Slice(&DESCRIPTOR_2_8, "[]distribution.Descriptor"),
        ),
        ANNOTATIONS,
    ],
};

/// `manifestlist.ManifestList` at 2.8.3 (manifest lists and OCI indexes).
static LIST_2_8: St = St {
    name: "ManifestList",
    go_type: "manifestlist.ManifestList",
    fields: &[
        SCHEMA_VERSION,
        MEDIA_TYPE,
        (
            "manifests",
            Ty::Slice(
                &MANIFEST_DESCRIPTOR_2_8,
                "[]manifestlist.ManifestDescriptor",
            ),
        ),
    ],
};

/// `schema1.FSLayer` (2.8.3 `manifest/schema1/manifest.go`).
static FS_LAYER: St = St {
    name: "FSLayer",
    go_type: "schema1.FSLayer",
    fields: &[("blobSum", Ty::Str("digest.Digest"))],
};

/// `schema1.History`.
static HISTORY: St = St {
    name: "History",
    go_type: "schema1.History",
    fields: &[("v1Compatibility", Ty::Str("string"))],
};

/// `schema1.Manifest` (2.8.3).
static SCHEMA1: St = St {
    name: "Manifest",
    go_type: "schema1.Manifest",
    fields: &[
        SCHEMA_VERSION,
        MEDIA_TYPE,
        ("name", Ty::Str("string")),
        ("tag", Ty::Str("string")),
        ("architecture", Ty::Str("string")),
        ("fsLayers", Ty::Slice(&FS_LAYER, "[]schema1.FSLayer")),
        ("history", Ty::Slice(&HISTORY, "[]schema1.History")),
    ],
};

/// The anonymous pre-read struct of 3.x's `manifestStore.Get` (`specs.Versioned` and
/// `mediaType`).
static VERSIONED_3: St = St {
    name: "",
    go_type: "struct { specs.Versioned; MediaType string \"json:\\\"mediaType,omitempty\\\"\" }",
    fields: &[SCHEMA_VERSION, MEDIA_TYPE],
};

/// `v1.Descriptor` (image-spec v1.1.1 `specs-go/v1/descriptor.go`).
static DESCRIPTOR_3: St = St {
    name: "Descriptor",
    go_type: "v1.Descriptor",
    fields: &[
        MEDIA_TYPE,
        DIGEST,
        SIZE,
        URLS,
        ANNOTATIONS,
        ("data", Ty::Bytes),
        ("platform", Ty::Ptr(&PLATFORM)),
        ("artifactType", Ty::Str("string")),
    ],
};

/// `manifestlist.ManifestDescriptor` at 3.x: `v1.Descriptor` with its own `platform`.
static MANIFEST_DESCRIPTOR_3: St = St {
    name: "ManifestDescriptor",
    go_type: "manifestlist.ManifestDescriptor",
    fields: &[
        MEDIA_TYPE,
        DIGEST,
        SIZE,
        URLS,
        ANNOTATIONS,
        ("data", Ty::Bytes),
        ("artifactType", Ty::Str("string")),
        ("platform", Ty::Struct(&PLATFORM_SPEC)),
    ],
};

/// `schema2.Manifest` at 3.x.
static SCHEMA2_3: St = St {
    name: "Manifest",
    go_type: "schema2.Manifest",
    fields: &[
        SCHEMA_VERSION,
        MEDIA_TYPE,
        ("config", Ty::Struct(&DESCRIPTOR_3)),
        ("layers", Ty::Slice(&DESCRIPTOR_3, "[]v1.Descriptor")),
    ],
};

/// `ocischema.Manifest` at 3.x.
static OCI_MANIFEST_3: St = St {
    name: "Manifest",
    go_type: "ocischema.Manifest",
    fields: &[
        SCHEMA_VERSION,
        MEDIA_TYPE,
        ("config", Ty::Struct(&DESCRIPTOR_3)),
        ("layers", Ty::Slice(&DESCRIPTOR_3, "[]v1.Descriptor")),
        ANNOTATIONS,
    ],
};

/// `manifestlist.ManifestList` at 3.x.
static LIST_3: St = St {
    name: "ManifestList",
    go_type: "manifestlist.ManifestList",
    fields: &[
        SCHEMA_VERSION,
        MEDIA_TYPE,
        (
            "manifests",
            Ty::Slice(&MANIFEST_DESCRIPTOR_3, "[]manifestlist.ManifestDescriptor"),
        ),
    ],
};

/// `ocischema.ImageIndex` at 3.x.
static INDEX_3: St = St {
    name: "ImageIndex",
    go_type: "ocischema.ImageIndex",
    fields: &[
        SCHEMA_VERSION,
        MEDIA_TYPE,
        ("manifests", Ty::Slice(&DESCRIPTOR_3, "[]v1.Descriptor")),
        ANNOTATIONS,
    ],
};
