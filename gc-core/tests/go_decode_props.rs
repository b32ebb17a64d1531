//! Property test: for generated manifests, valid ones and ones with one field's JSON value
//! replaced, gc-audit's "distribution can decode it" equals a reference decision written here,
//! independently, from the Go types of distribution v2.8.3 and v3.1.1 (see the table in
//! [`accepts`]). `GO_DECODE_CASES=N` runs N cases (default 2,000).

use gc_core::manifest::go_decode::{read, Distribution, GoRead};
use gc_core::manifest::{Manifest, MT_DOCKER_LIST, MT_DOCKER_V2, MT_OCI_INDEX, MT_OCI_MANIFEST};
use proptest::prelude::*;
use serde_json::{json, Value};

/// The kinds generated, and whether the document carries its `mediaType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    DockerV2,
    Oci { media_type: bool },
    DockerList,
    OciIndex { media_type: bool },
}

/// Where the replaced value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A member of a descriptor: the config, the first layer or the first index child.
    Descriptor(Desc, Field),
    /// The first child's `platform.<field>`.
    ChildPlatform(PlatformField),
    /// The first layer's `platform.os` (a `*v1.Platform` in both versions).
    LayerPlatformOs,
    /// The top-level `annotations`.
    TopAnnotations,
    /// The top-level `mediaType`.
    TopMediaType,
    /// An unknown top-level member.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Desc {
    Config,
    Layer,
    Child,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    MediaType,
    Size,
    Digest,
    Urls,
    Annotations,
    Platform,
    Data,
    ArtifactType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlatformField {
    Os,
    OsFeatures,
    Features,
}

/// The replacement values: each a JSON shape with a known answer per Go type.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Null,
    Bool,
    Int(i64),
    /// Beyond int64.
    BigInt(u64),
    Fraction,
    /// A string that is not base64.
    Str,
    /// A valid base64 string.
    Base64,
    EmptyArray,
    StrArray,
    /// `["a", null]`.
    StrNullArray,
    /// `["a", 1]`.
    MixedArray,
    /// `[1, 2]`: valid `[]byte` elements.
    ByteArray,
    EmptyObject,
    /// `{"a": "b"}`: unknown keys for a struct, a valid `map[string]string`.
    StrObject,
    /// `{"a": 1}`.
    NumObject,
    /// `{"os": 7}`: a platform whose `os` is not a string.
    BadOsObject,
}

impl Val {
    fn json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool => json!(true),
            Val::Int(n) => json!(n),
            Val::BigInt(n) => json!(n),
            Val::Fraction => json!(1.5),
            Val::Str => json!("not base64!"),
            Val::Base64 => json!("aGVsbG8="),
            Val::EmptyArray => json!([]),
            Val::StrArray => json!(["a", "b"]),
            Val::StrNullArray => json!(["a", null]),
            Val::MixedArray => json!(["a", 1]),
            Val::ByteArray => json!([1, 2]),
            Val::EmptyObject => json!({}),
            Val::StrObject => json!({"a": "b"}),
            Val::NumObject => json!({"a": 1}),
            Val::BadOsObject => json!({"os": 7}),
        }
    }
}

/// The Go types the reference knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoType {
    String,
    Int64,
    StringSlice,
    StringMap,
    Bytes,
    /// A struct of strings and string slices (a platform), or a pointer to one.
    Platform,
    /// Not a field of the type: ignored.
    Ignored,
}

/// Whether Go's `encoding/json` decodes `v` into a field of type `t`.
fn decodes_into(t: GoType, v: &Val) -> bool {
    use Val::*;
    match t {
        GoType::Ignored => true,
        _ if *v == Null => true,
        GoType::String => matches!(v, Str | Base64),
        GoType::Int64 => matches!(v, Int(_)),
        GoType::StringSlice => matches!(v, EmptyArray | StrArray | StrNullArray),
        GoType::StringMap => matches!(v, EmptyObject | StrObject),
        GoType::Bytes => matches!(v, Base64 | EmptyArray | ByteArray),
        GoType::Platform => matches!(v, EmptyObject | StrObject | NumObject),
    }
}

/// The reference: the Go type of `slot` in `kind` for `version`, from the Go sources:
/// - descriptors (`distribution.Descriptor` 2.8.3, `v1.Descriptor` 3.x): mediaType, digest
///   string; size int64; urls []string; annotations map[string]string; platform *v1.Platform;
///   3.x only: data []byte, artifactType string;
/// - index children: `manifestlist.ManifestDescriptor` (its platform a `PlatformSpec`, with
///   `features []string`), except 3.x's OCI index: `v1.Descriptor` (platform without
///   `features`);
/// - an OCI index without media type is decoded as an index (its `manifests` is an array);
/// - top-level annotations: `ocischema.Manifest` both versions, `ocischema.ImageIndex` 3.x;
///   docker schema2 and the manifest list have none;
/// - the top-level mediaType is read by the pre-read into a string.
fn go_type(kind: Kind, slot: Slot, version: Distribution) -> GoType {
    let v3 = version == Distribution::V3;
    let oci_index_3x = v3 && matches!(kind, Kind::OciIndex { .. });
    match slot {
        Slot::Descriptor(desc, field) => match field {
            Field::MediaType | Field::Digest => GoType::String,
            Field::Size => GoType::Int64,
            Field::Urls => GoType::StringSlice,
            Field::Annotations => GoType::StringMap,
            Field::Platform => GoType::Platform,
            Field::Data if v3 => GoType::Bytes,
            Field::ArtifactType if v3 => GoType::String,
            Field::Data | Field::ArtifactType => {
                let _ = desc;
                GoType::Ignored
            }
        },
        Slot::ChildPlatform(PlatformField::Os) => GoType::String,
        Slot::ChildPlatform(PlatformField::OsFeatures) => GoType::StringSlice,
        Slot::ChildPlatform(PlatformField::Features) if oci_index_3x => GoType::Ignored,
        Slot::ChildPlatform(PlatformField::Features) => GoType::StringSlice,
        Slot::LayerPlatformOs => GoType::String,
        Slot::TopAnnotations => match kind {
            Kind::Oci { .. } => GoType::StringMap,
            Kind::OciIndex { .. } if v3 => GoType::StringMap,
            _ => GoType::Ignored,
        },
        Slot::TopMediaType => GoType::String,
        Slot::Unknown => GoType::Ignored,
    }
}

/// Whether `version` decodes the document (a valid one with `slot` set to `v`). A top-level
/// media type replaced by another string makes the kind unsupported, which is not a decode
/// failure; replaced by null, the document is read as a media-type-less one, which decodes.
fn accepts(kind: Kind, slot: Slot, v: &Val, version: Distribution) -> bool {
    decodes_into(go_type(kind, slot, version), v)
}

fn descriptor(n: u8, media_type: &str) -> Value {
    json!({
        "mediaType": media_type,
        "digest": gc_core::digest::Digest::sha256_of(&[n]).to_string(),
        "size": 100 + u64::from(n),
    })
}

/// A valid document of `kind`.
fn valid(kind: Kind) -> Value {
    let image = |mt: Option<&str>, config: &str, layer: &str| {
        let mut m = json!({
            "schemaVersion": 2,
            "config": descriptor(1, config),
            "layers": [descriptor(2, layer), descriptor(3, layer)],
        });
        if let Some(mt) = mt {
            m["mediaType"] = json!(mt);
        }
        m
    };
    let index = |mt: Option<&str>, child: &str| {
        let mut children = vec![descriptor(4, child), descriptor(5, child)];
        for c in &mut children {
            c["platform"] = json!({"os": "linux", "architecture": "amd64"});
        }
        let mut m = json!({"schemaVersion": 2, "manifests": children});
        if let Some(mt) = mt {
            m["mediaType"] = json!(mt);
        }
        m
    };
    match kind {
        Kind::DockerV2 => image(
            Some(MT_DOCKER_V2),
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
        Kind::Oci { media_type } => image(
            media_type.then_some(MT_OCI_MANIFEST),
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        Kind::DockerList => index(Some(MT_DOCKER_LIST), MT_DOCKER_V2),
        Kind::OciIndex { media_type } => index(media_type.then_some(MT_OCI_INDEX), MT_OCI_MANIFEST),
    }
}

/// The key of a member, in the case the case flag asks for (Go matches keys
/// case-insensitively, so upper-casing one must change nothing).
fn key(name: &str, upper: bool) -> String {
    if upper {
        name.to_ascii_uppercase()
    } else {
        name.to_string()
    }
}

/// `doc` with `slot` set to `v`; `None` when the slot does not exist in this kind.
fn mutate(mut doc: Value, kind: Kind, slot: Slot, v: &Val, upper: bool) -> Option<Value> {
    let is_index = matches!(kind, Kind::DockerList | Kind::OciIndex { .. });
    let set = |obj: &mut Value, name: &str, v: Value| {
        let map = obj.as_object_mut()?;
        map.remove(name);
        map.insert(key(name, upper), v);
        Some(())
    };
    match slot {
        Slot::Descriptor(desc, field) => {
            let target = match (desc, is_index) {
                (Desc::Config, false) => &mut doc["config"],
                (Desc::Layer, false) => &mut doc["layers"][0],
                (Desc::Child, true) => &mut doc["manifests"][0],
                _ => return None,
            };
            if field == Field::Platform && desc == Desc::Child {
                return None; // children's platform: see ChildPlatform
            }
            let name = match field {
                Field::MediaType => "mediaType",
                Field::Size => "size",
                Field::Digest => "digest",
                Field::Urls => "urls",
                Field::Annotations => "annotations",
                Field::Platform => "platform",
                Field::Data => "data",
                Field::ArtifactType => "artifactType",
            };
            set(target, name, v.json())?;
        }
        Slot::ChildPlatform(field) => {
            if !is_index {
                return None;
            }
            let name = match field {
                PlatformField::Os => "os",
                PlatformField::OsFeatures => "os.features",
                PlatformField::Features => "features",
            };
            set(&mut doc["manifests"][0]["platform"], name, v.json())?;
        }
        Slot::LayerPlatformOs => {
            if is_index {
                return None;
            }
            doc["layers"][0]["platform"] = json!({});
            set(&mut doc["layers"][0]["platform"], "os", v.json())?;
        }
        Slot::TopAnnotations => set(&mut doc, "annotations", v.json())?,
        Slot::TopMediaType => {
            // Only non-strings and null: another string changes the kind.
            if matches!(v, Val::Str | Val::Base64) {
                return None;
            }
            set(&mut doc, "mediaType", v.json())?;
        }
        Slot::Unknown => set(&mut doc, "x-unknown", v.json())?,
    }
    Some(doc)
}

fn kind_strategy() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::DockerV2),
        any::<bool>().prop_map(|media_type| Kind::Oci { media_type }),
        Just(Kind::DockerList),
        any::<bool>().prop_map(|media_type| Kind::OciIndex { media_type }),
    ]
}

fn slot_strategy() -> impl Strategy<Value = Slot> {
    let desc = prop_oneof![Just(Desc::Config), Just(Desc::Layer), Just(Desc::Child)];
    let field = prop_oneof![
        Just(Field::MediaType),
        Just(Field::Size),
        Just(Field::Digest),
        Just(Field::Urls),
        Just(Field::Annotations),
        Just(Field::Platform),
        Just(Field::Data),
        Just(Field::ArtifactType),
    ];
    prop_oneof![
        6 => (desc, field).prop_map(|(d, f)| Slot::Descriptor(d, f)),
        1 => prop_oneof![
            Just(PlatformField::Os),
            Just(PlatformField::OsFeatures),
            Just(PlatformField::Features)
        ]
        .prop_map(Slot::ChildPlatform),
        1 => Just(Slot::LayerPlatformOs),
        1 => Just(Slot::TopAnnotations),
        1 => Just(Slot::TopMediaType),
        1 => Just(Slot::Unknown),
    ]
}

fn val_strategy() -> impl Strategy<Value = Val> {
    prop_oneof![
        Just(Val::Null),
        Just(Val::Bool),
        any::<i64>().prop_map(Val::Int),
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(Val::BigInt),
        Just(Val::Fraction),
        Just(Val::Str),
        Just(Val::Base64),
        Just(Val::EmptyArray),
        Just(Val::StrArray),
        Just(Val::StrNullArray),
        Just(Val::MixedArray),
        Just(Val::ByteArray),
        Just(Val::EmptyObject),
        Just(Val::StrObject),
        Just(Val::NumObject),
        Just(Val::BadOsObject),
    ]
}

fn cases() -> u32 {
    std::env::var("GO_DECODE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn decodable_equals_the_reference(
        kind in kind_strategy(),
        slot in slot_strategy(),
        v in val_strategy(),
        upper in any::<bool>(),
        nesting in prop_oneof![Just(0usize), 1usize..300, 5_000usize..9_990],
    ) {
        let Some(doc) = mutate(valid(kind), kind, slot, &v, upper) else {
            return Ok(());
        };
        let mut bytes = serde_json::to_vec(&doc).expect("serialize");
        if nesting > 0 {
            // An unknown member nested `nesting` deep: valid for Go up to 10,000 levels.
            let deep = format!("\"x-deep\":{}{},", "[".repeat(nesting), "]".repeat(nesting));
            bytes.splice(1..1, deep.into_bytes());
        }
        for version in [Distribution::V2_8, Distribution::V3] {
            let expected = accepts(kind, slot, &v, version);
            let got = read(&bytes, version);
            prop_assert_eq!(
                got.undecodable().is_none(),
                expected,
                "{:?} {:?} = {:?} ({:?}): {:?} on {}",
                kind, slot, v, version, got, String::from_utf8_lossy(&bytes[..bytes.len().min(600)])
            );
            let parsed = Manifest::parse(&bytes);
            match &parsed {
                Ok(m) => prop_assert_eq!(m.undecodable.get(version).is_none(), expected),
                // The lenient reader refuses only what Go cannot decode either.
                Err(e) => prop_assert!(!matches!(got, GoRead::Decoded(_)), "{}", e),
            }
        }
    }
}

#[test]
fn the_reference_is_not_trivial() {
    // A valid document of every kind decodes; the reference says so too.
    for kind in [
        Kind::DockerV2,
        Kind::Oci { media_type: true },
        Kind::Oci { media_type: false },
        Kind::DockerList,
        Kind::OciIndex { media_type: true },
        Kind::OciIndex { media_type: false },
    ] {
        let bytes = serde_json::to_vec(&valid(kind)).unwrap();
        for version in [Distribution::V2_8, Distribution::V3] {
            assert!(
                matches!(read(&bytes, version), GoRead::Decoded(_)),
                "{kind:?}"
            );
        }
    }
    let slot = Slot::Descriptor(Desc::Layer, Field::Size);
    assert!(!accepts(
        Kind::DockerV2,
        slot,
        &Val::Str,
        Distribution::V2_8
    ));
    assert!(accepts(
        Kind::DockerV2,
        slot,
        &Val::Int(-1),
        Distribution::V2_8
    ));
}
