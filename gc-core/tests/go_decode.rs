//! Whether distribution can decode a manifest (`gc_core::manifest::go_decode`), one rule at a
//! time, on bytes; and what a scan and the GC models make of a manifest it cannot decode.
//!
//! Each expectation is Go's, read from distribution v2.8.3 / v3.1.1 and `encoding/json`; the
//! ones a GC outcome depends on are also checked against the real 2.8.2 collector in
//! `tests/registry_gc.rs`.

use gc_core::audit::{audit, AuditOptions, AuditOutcome, NoProgress};
use gc_core::digest::Digest;
use gc_core::fixture::{old_time, Fixture};
use gc_core::gc::{self, GcModel, GcPlan};
use gc_core::manifest::go_decode::{read, Distribution, GoKind, GoRead};
use gc_core::manifest::{Manifest, MT_DOCKER_LIST, MT_DOCKER_V2, MT_OCI_INDEX, MT_OCI_MANIFEST};
use std::time::Duration;

const BOTH: [Distribution; 2] = [Distribution::V2_8, Distribution::V3];

fn dg(n: u8) -> String {
    Digest::sha256_of(&[n]).to_string()
}

/// An OCI image manifest whose first layer has `layer_extra` members.
fn oci_with_layer(layer_extra: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{MT_OCI_MANIFEST}",
          "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},
          "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}"{layer_extra}}}]}}"#,
        dg(1),
        dg(2)
    )
}

/// A manifest list / index (`media_type` `None`: no `mediaType` member) whose first child has
/// `child_extra` members and whose top level has `top_extra` ones.
fn index_with(media_type: Option<&str>, child_extra: &str, top_extra: &str) -> String {
    let mt = media_type
        .map(|m| format!(r#""mediaType":"{m}","#))
        .unwrap_or_default();
    format!(
        r#"{{"schemaVersion":2,{mt}"manifests":[{{"mediaType":"{MT_OCI_MANIFEST}","digest":"{}","size":7,
          "platform":{{"os":"linux","architecture":"amd64"}}{child_extra}}}]{top_extra}}}"#,
        dg(3)
    )
}

fn fails(bytes: &str, version: Distribution) -> Option<String> {
    match read(bytes.as_bytes(), version) {
        GoRead::Fails(why) | GoRead::Panics(why) => Some(why),
        GoRead::Decoded(_) | GoRead::Unsupported(_) => None,
    }
}

#[track_caller]
fn assert_fails_both(bytes: &str, expect: &str) {
    for v in BOTH {
        let why = fails(bytes, v).unwrap_or_else(|| panic!("{v:?} decodes {bytes}"));
        assert!(why.contains(expect), "{v:?}: {why} (expected {expect})");
    }
}

#[track_caller]
fn assert_decodes_both(bytes: &str) {
    for v in BOTH {
        assert!(
            matches!(read(bytes.as_bytes(), v), GoRead::Decoded(_)),
            "{v:?}: {:?} on {bytes}",
            read(bytes.as_bytes(), v)
        );
    }
}

#[test]
fn size_is_an_int64_from_a_json_integer() {
    for bad in [
        r#""123""#,
        "1.5",
        "1e3",
        "1E0",
        "9223372036854775808",
        "18446744073709551616",
        "-9223372036854775809",
        "true",
        "[]",
        "{}",
    ] {
        assert_fails_both(
            &oci_with_layer(&format!(r#","size":{bad}"#)),
            "into Go struct field Descriptor.layers.size of type int64",
        );
    }
    assert_eq!(
        fails(&oci_with_layer(r#","size":"123""#), Distribution::V2_8).as_deref(),
        Some("json: cannot unmarshal string into Go struct field Descriptor.layers.size of type int64")
    );
    assert_eq!(
        fails(&oci_with_layer(r#","size":1.5"#), Distribution::V2_8).as_deref(),
        Some("json: cannot unmarshal number 1.5 into Go struct field Descriptor.layers.size of type int64")
    );
    for good in [
        "0",
        "-0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "null",
    ] {
        assert_decodes_both(&oci_with_layer(&format!(r#","size":{good}"#)));
    }
}

#[test]
fn media_type_digest_and_strings_take_strings_or_null() {
    for bad in ["7", "[]", r#"["a"]"#, "{}", "false"] {
        assert_fails_both(
            &oci_with_layer(&format!(r#","mediaType":{bad}"#)),
            "into Go struct field Descriptor.layers.mediaType of type string",
        );
        assert_fails_both(
            &oci_with_layer(&format!(r#","digest":{bad}"#)),
            "Descriptor.layers.digest of type digest.Digest",
        );
    }
    // A digest is not validated when decoding; null keeps the zero value.
    assert_decodes_both(&oci_with_layer(r#","digest":"not a digest""#));
    assert_decodes_both(&oci_with_layer(r#","mediaType":null,"digest":null"#));
}

#[test]
fn urls_are_a_slice_of_strings() {
    for (bad, what) in [
        (
            r#""https://x""#,
            "string into Go struct field Descriptor.layers.urls of type []string",
        ),
        (
            "[1]",
            "number into Go struct field Descriptor.layers.urls of type string",
        ),
        (
            "[[]]",
            "array into Go struct field Descriptor.layers.urls of type string",
        ),
        (
            "{}",
            "object into Go struct field Descriptor.layers.urls of type []string",
        ),
    ] {
        assert_fails_both(&oci_with_layer(&format!(r#","urls":{bad}"#)), what);
    }
    for good in ["null", "[]", r#"["https://x",null]"#] {
        assert_decodes_both(&oci_with_layer(&format!(r#","urls":{good}"#)));
    }
}

#[test]
fn annotations_are_a_map_of_strings() {
    for (bad, what) in [
        (
            r#"{"a":1}"#,
            "number into Go struct field Descriptor.layers.annotations of type string",
        ),
        (
            r#"{"a":{}}"#,
            "object into Go struct field Descriptor.layers.annotations of type string",
        ),
        (
            "[]",
            "array into Go struct field Descriptor.layers.annotations of type map[string]string",
        ),
        (r#""a""#, "of type map[string]string"),
    ] {
        assert_fails_both(&oci_with_layer(&format!(r#","annotations":{bad}"#)), what);
    }
    for good in ["null", "{}", r#"{"a":null,"b":"c"}"#] {
        assert_decodes_both(&oci_with_layer(&format!(r#","annotations":{good}"#)));
    }
}

#[test]
fn platform_is_a_struct_of_strings() {
    for (bad, what) in [
        (
            r#""linux""#,
            "string into Go struct field Descriptor.layers.platform of type v1.Platform",
        ),
        (
            "[]",
            "array into Go struct field Descriptor.layers.platform of type v1.Platform",
        ),
        (
            r#"{"os":7}"#,
            "number into Go struct field Platform.layers.platform.os of type string",
        ),
        (
            r#"{"os.features":"x"}"#,
            "Platform.layers.platform.os.features of type []string",
        ),
    ] {
        assert_fails_both(&oci_with_layer(&format!(r#","platform":{bad}"#)), what);
    }
    for good in ["null", "{}", r#"{"os":null,"x":1}"#] {
        assert_decodes_both(&oci_with_layer(&format!(r#","platform":{good}"#)));
    }
    // Index children: `manifestlist.PlatformSpec` (a struct, not a pointer).
    assert_fails_both(
        &index_with(Some(MT_DOCKER_LIST), r#","platform":{"os":7}"#, ""),
        "number into Go struct field PlatformSpec.manifests.platform.os of type string",
    );
    assert_fails_both(
        &index_with(Some(MT_DOCKER_LIST), r#","platform":"linux""#, ""),
        "string into Go struct field ManifestDescriptor.manifests.platform of type manifestlist.PlatformSpec",
    );
}

#[test]
fn unknown_fields_are_ignored_whatever_they_hold() {
    for extra in [
        r#","x":"123""#,
        r#","x":1e400"#,
        r#","subject":7"#,
        r#","blobs":"x""#,
        r#","manifests":[1]"#,
    ] {
        // At the top level of a schema2 manifest and in a descriptor.
        let top =
            oci_with_layer("").replacen("\"layers\"", &format!("{},\"layers\"", &extra[1..]), 1);
        assert_decodes_both(&top);
        assert_decodes_both(&oci_with_layer(extra));
    }
    // `subject` and `artifactType` are not fields of ocischema.Manifest in either version.
    let m = oci_with_layer("").replacen(
        "\"layers\"",
        "\"subject\":{\"size\":\"x\"},\"artifactType\":7,\"layers\"",
        1,
    );
    assert_decodes_both(&m);
}

#[test]
fn duplicate_keys_decode_in_turn_the_last_wins() {
    // The last mediaType decides the kind...
    let m = oci_with_layer("").replacen("{", &format!("{{\"mediaType\":\"{MT_DOCKER_V2}\","), 1);
    assert_eq!(
        read(m.as_bytes(), Distribution::V2_8),
        GoRead::Decoded(GoKind::OciManifest)
    );
    // ...but an earlier occurrence with a type error is still the error.
    assert_fails_both(
        &oci_with_layer(r#","size":"1","size":1"#),
        "cannot unmarshal string",
    );
    // A later null leaves a string as it was.
    let m = oci_with_layer("").replacen("\"layers\"", "\"mediaType\":null,\"layers\"", 1);
    assert_eq!(
        read(m.as_bytes(), Distribution::V3),
        GoRead::Decoded(GoKind::OciManifest)
    );
}

#[test]
fn keys_match_fields_case_insensitively() {
    let m = oci_with_layer(r#","SIZE":"1""#);
    assert_fails_both(&m, "Descriptor.layers.size of type int64");
    // U+017F (long s) folds to s, U+212A (Kelvin) to k; U+0131 (dotless i) folds to nothing.
    assert_fails_both(&oci_with_layer(",\"\u{17f}ize\":\"1\""), "of type int64");
    assert_decodes_both(&oci_with_layer(",\"s\u{131}ze\":\"1\""));
    // Non-letters must match exactly.
    assert_decodes_both(&oci_with_layer(r#","platform":{"os_features":"x"}"#));
    // The pre-read folds too: `MEDIATYPE` selects the kind.
    let m = oci_with_layer("").replacen("\"mediaType\"", "\"MEDIATYPE\"", 1);
    assert_eq!(
        read(m.as_bytes(), Distribution::V2_8),
        GoRead::Decoded(GoKind::OciManifest)
    );
    let parsed = Manifest::parse(m.as_bytes()).unwrap();
    assert_eq!(parsed.layers.len(), 1);
}

#[test]
fn invalid_utf8_and_lone_surrogates_in_strings_are_replaced_not_rejected() {
    let m = oci_with_layer(",\"annotations\":{\"a\":\"\\ud800 \\udfff\"}").into_bytes();
    let mut m2 = m.clone();
    let at = m2.windows(3).position(|w| w == b"\"a\"").unwrap();
    m2.splice(at + 1..at + 1, [0xff, 0xfe, 0xc3]);
    for bytes in [m, m2] {
        for v in BOTH {
            assert_eq!(read(&bytes, v), GoRead::Decoded(GoKind::OciManifest));
        }
        assert!(Manifest::parse(&bytes).unwrap().undecodable.is_decodable());
    }
    // Outside strings it is a syntax error.
    let mut bad = oci_with_layer("").into_bytes();
    bad.insert(1, 0xff);
    assert!(matches!(read(&bad, Distribution::V2_8), GoRead::Fails(_)));
}

#[test]
fn nesting_up_to_ten_thousand_levels_is_valid() {
    let nested = |depth: usize| {
        // The top-level object is one level; the unknown field's arrays the rest.
        oci_with_layer("").replacen(
            "{",
            &format!(
                "{{\"x\":{}{},",
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            ),
            1,
        )
    };
    for depth in [129, 200, 5_000, 10_000] {
        assert_decodes_both(&nested(depth));
        let m = Manifest::parse(nested(depth).as_bytes()).unwrap();
        assert!(m.undecodable.is_decodable(), "{depth}");
    }
    assert_fails_both(&nested(10_001), "exceeded max depth");
    assert!(Manifest::parse(nested(10_001).as_bytes()).is_err());
}

#[test]
fn the_versioned_pre_read() {
    for (bad, what) in [
        (
            r#""2""#,
            "string into Go struct field Versioned.schemaVersion of type int",
        ),
        (
            "2.0",
            "number 2.0 into Go struct field Versioned.schemaVersion of type int",
        ),
        ("2e0", "number 2e0"),
    ] {
        let m = oci_with_layer("").replacen(
            "\"schemaVersion\":2",
            &format!("\"schemaVersion\":{bad}"),
            1,
        );
        assert_eq!(
            fails(&m, Distribution::V2_8)
                .as_deref()
                .map(|w| w.contains(what)),
            Some(true),
            "{m}"
        );
        assert!(fails(&m, Distribution::V3).is_some());
    }
    assert_eq!(
        fails(
            &oci_with_layer("").replacen(&format!("\"{MT_OCI_MANIFEST}\""), "7", 1),
            Distribution::V2_8
        )
        .as_deref(),
        Some(
            "json: cannot unmarshal number into Go struct field Versioned.mediaType of type string"
        )
    );
    for (doc, expect) in [
        (
            r#"{"schemaVersion":null}"#,
            "unrecognized manifest schema version 0",
        ),
        (r#"{}"#, "unrecognized manifest schema version 0"),
        ("null", "unrecognized manifest schema version 0"),
        (
            r#"{"schemaVersion":3}"#,
            "unrecognized manifest schema version 3",
        ),
        (
            r#"{"schemaVersion":2,"mediaType":"application/x-other"}"#,
            "unrecognized manifest content type application/x-other",
        ),
    ] {
        for v in BOTH {
            assert_eq!(
                read(doc.as_bytes(), v),
                GoRead::Unsupported(expect.to_string())
            );
        }
    }
    for doc in ["[]", r#""x""#, "7", "", "{", r#"{"schemaVersion":2}x"#] {
        for v in BOTH {
            assert!(matches!(read(doc.as_bytes(), v), GoRead::Fails(_)), "{doc}");
        }
    }
}

#[test]
fn kinds_without_a_media_type_are_told_apart_as_get_does() {
    let kind = |doc: &str| read(doc.as_bytes(), Distribution::V2_8);
    assert_eq!(
        kind(&index_with(None, "", "")),
        GoRead::Decoded(GoKind::OciIndex)
    );
    assert_eq!(
        kind(r#"{"schemaVersion":2,"mediaType":"","manifests":[]}"#),
        GoRead::Decoded(GoKind::OciIndex)
    );
    assert_eq!(
        kind(r#"{"schemaVersion":2,"manifests":null,"layers":[]}"#),
        GoRead::Decoded(GoKind::OciManifest)
    );
    assert_eq!(
        kind(r#"{"schemaVersion":2}"#),
        GoRead::Decoded(GoKind::OciManifest)
    );
    // An index that has config and layers too is still an index (no validateIndex on reads).
    assert_eq!(
        kind(r#"{"schemaVersion":2,"manifests":[],"config":{},"layers":[]}"#),
        GoRead::Decoded(GoKind::OciIndex)
    );
    // The index decode fails: Get's type assertion on the nil result panics.
    match kind(&index_with(None, r#","size":"7""#, "")) {
        GoRead::Panics(why) => assert!(why.starts_with(
            "panic: interface conversion: distribution.Manifest is nil, not *manifestlist.DeserializedManifestList"
        )),
        other => panic!("{other:?}"),
    }
    match read(
        index_with(None, r#","size":"7""#, "").as_bytes(),
        Distribution::V3,
    ) {
        GoRead::Panics(why) => assert!(why.contains("*ocischema.DeserializedImageIndex")),
        other => panic!("{other:?}"),
    }
    // An OCI manifest without media type whose layers do not decode: an error, no panic.
    assert!(matches!(
        kind(r#"{"schemaVersion":2,"layers":{}}"#),
        GoRead::Fails(_)
    ));
}

#[test]
fn schema1_on_2_8_and_3x() {
    let s1 = format!(
        r#"{{"schemaVersion":1,"name":"a","tag":"t","architecture":"amd64","fsLayers":[{{"blobSum":"{}"}}],
          "history":[{{"v1Compatibility":"{{}}"}}],"x":[1e308]}}"#,
        dg(1)
    );
    assert_eq!(
        read(s1.as_bytes(), Distribution::V2_8),
        GoRead::Decoded(GoKind::Schema1)
    );
    assert_eq!(
        read(s1.as_bytes(), Distribution::V3),
        GoRead::Unsupported("unrecognized manifest schema version 1".into())
    );
    // libtrust decodes the whole document into map[string]interface{}: float64 must hold
    // every number.
    assert_eq!(
        fails(&s1.replace("1e308", "1e309"), Distribution::V2_8).as_deref(),
        Some("json: cannot unmarshal number 1e309 into Go value of type float64")
    );
    assert_eq!(
        fails(
            &s1.replace(r#""tag":"t""#, r#""tag":1"#),
            Distribution::V2_8
        )
        .as_deref(),
        Some("json: cannot unmarshal number into Go struct field Manifest.tag of type string")
    );
    assert!(fails(&s1.replace("\"{}\"", "{}"), Distribution::V2_8)
        .unwrap()
        .contains("History.history.v1Compatibility of type string"));
    // A number beyond float64 in a schema2 manifest's unknown field is never decoded.
    assert_decodes_both(&oci_with_layer(r#","x":1e400"#));
}

#[test]
fn where_2_8_and_3x_differ() {
    let only_3x = |doc: &str, what: &str| {
        assert_eq!(fails(doc, Distribution::V2_8), None, "2.8 decodes {doc}");
        let why = fails(doc, Distribution::V3).unwrap_or_else(|| panic!("3.x decodes {doc}"));
        assert!(why.contains(what), "{why}");
    };
    // v1.Descriptor adds `data` ([]byte: base64 or numbers 0-255) and `artifactType`.
    only_3x(
        &oci_with_layer(r#","data":"not base64!""#),
        "illegal base64 data",
    );
    only_3x(&oci_with_layer(r#","data":"aGk""#), "illegal base64 data");
    only_3x(
        &oci_with_layer(r#","data":[1,256]"#),
        "number 256 into Go struct field Descriptor.layers.data of type uint8",
    );
    only_3x(&oci_with_layer(r#","data":7"#), "of type []uint8");
    only_3x(
        &oci_with_layer(r#","artifactType":7"#),
        "Descriptor.layers.artifactType of type string",
    );
    for good in [r#""aGk=""#, r#""aGk=\n""#, r#""""#, "[1,255]", "null"] {
        assert_decodes_both(&oci_with_layer(&format!(r#","data":{good}"#)));
    }
    // 3.x types an OCI index's top-level annotations; 2.8's ManifestList has none.
    only_3x(
        &index_with(Some(MT_OCI_INDEX), "", r#","annotations":{"a":1}"#),
        "Go struct field ImageIndex.annotations of type string",
    );
    // 2.8 reads an OCI index's children as ManifestDescriptor (PlatformSpec has `features`),
    // 3.x as v1.Descriptor (v1.Platform has none: unknown, ignored).
    let features = index_with(Some(MT_OCI_INDEX), r#","platform":{"features":"x"}"#, "");
    assert!(fails(&features, Distribution::V2_8).is_some());
    assert_eq!(fails(&features, Distribution::V3), None);
    // The docker manifest list has PlatformSpec in both.
    assert_fails_both(
        &index_with(Some(MT_DOCKER_LIST), r#","platform":{"features":"x"}"#, ""),
        "PlatformSpec.manifests.platform.features of type []string",
    );
}

#[test]
fn the_lenient_reader_keeps_references_of_what_go_cannot_decode() {
    let m = Manifest::parse(oci_with_layer(r#","size":"123""#).as_bytes()).unwrap();
    assert_eq!(m.layers.len(), 1);
    assert!(m.config.is_some());
    assert_eq!(
        m.undecodable.unparseable_detail().as_deref(),
        Some("distribution 2.8 and 3.x cannot decode it: json: cannot unmarshal string into Go struct field Descriptor.layers.size of type int64")
    );
}

fn options() -> AuditOptions {
    AuditOptions {
        now: Some(old_time() + Duration::from_secs(30 * 86400)),
        ..AuditOptions::default()
    }
}

async fn scan(f: &Fixture) -> AuditOutcome {
    let o = audit(&f.storage, &options(), &NoProgress).await;
    assert!(o.report.summary.complete, "{:?}", o.report.summary.errors);
    o
}

/// An image whose manifest Go cannot decode: a finding naming the field and the Go type, a
/// broken tag, every GC model stops on it; its layers are still references (not orphans).
#[tokio::test]
async fn a_manifest_go_cannot_decode_is_unparseable_everywhere() {
    let f = Fixture::new();
    let config = f.blob(b"{}");
    let layer = f.blob(b"layer");
    f.link_layer("a", &config);
    f.link_layer("a", &layer);
    let bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MT_DOCKER_V2}","config":{{"digest":"{config}","size":2}},
          "layers":[{{"digest":"{layer}","size":"5","urls":"x"}}]}}"#
    );
    let bad = f.manifest("a", bytes.as_bytes());
    f.tag("a", "t", &bad);
    let o = scan(&f).await;
    let r = &o.report;
    let unparseable: Vec<&str> = r
        .findings
        .iter()
        .filter(|x| x.kind == "unparseable-manifest")
        .map(|x| x.detail.as_str())
        .collect();
    assert_eq!(
        unparseable,
        vec!["distribution 2.8 and 3.x cannot decode it: json: cannot unmarshal string into Go struct field Descriptor.layers.size of type int64"]
    );
    assert_eq!(r.broken.len(), 1);
    assert_eq!(
        r.broken[0].problem.to_string(),
        format!("manifest {bad} unparseable")
    );
    assert!(r.orphaned.is_empty(), "{:?}", r.orphaned);
    for model in GcModel::ALL {
        match gc::plan(&o.graph, model, o.driver) {
            GcPlan::Aborts(a) => {
                assert_eq!(a.reason, "unparseable-manifest", "{model}");
                assert_eq!(a.digest, Some(bad.to_string()), "{model}");
                assert_eq!(
                    a.message,
                    format!("failed to garbage collect: failed to mark: failed to retrieve manifest for digest {bad}: json: cannot unmarshal string into Go struct field Descriptor.layers.size of type int64"),
                    "{model}"
                );
            }
            other => panic!("{model}: {other:?}"),
        }
    }
}

/// An index `t` in repository `a` whose one child manifest has config `extra` members.
async fn index_over_child(config_extra: &str) -> (AuditOutcome, Digest) {
    let f = Fixture::new();
    let config = f.blob(b"{}");
    f.link_layer("a", &config);
    let child = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MT_OCI_MANIFEST}","config":{{"digest":"{config}","size":2{config_extra}}},"layers":[]}}"#
    );
    let child = f.manifest("a", child.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MT_OCI_INDEX}","manifests":[{{"mediaType":"{MT_OCI_MANIFEST}","digest":"{child}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
    );
    let index = f.manifest("a", index.as_bytes());
    f.tag("a", "t", &index);
    (scan(&f).await, child)
}

/// A child of a tagged index that 2.8 cannot decode dangles (`unparseable`) and breaks the
/// tag; the models that read every revision (no `-m`) stop on it.
#[tokio::test]
async fn an_undecodable_child_dangles_and_breaks_its_index_tag() {
    let (o, child) = index_over_child(r#","urls":[1]"#).await;
    let r = &o.report;
    assert_eq!(r.dangling.len(), 1, "{:?}", r.dangling);
    assert_eq!(r.dangling[0].reason, "unparseable");
    assert_eq!(r.broken.len(), 1);
    assert!(
        r.broken[0]
            .problem
            .to_string()
            .contains(&format!("manifest {child} unparseable")),
        "{}",
        r.broken[0].problem
    );
    for model in GcModel::ALL.into_iter().filter(|m| !m.remove_untagged) {
        match gc::plan(&o.graph, model, o.driver) {
            GcPlan::Aborts(a) => assert_eq!(a.digest, Some(child.to_string()), "{model}"),
            other => panic!("{model}: {other:?}"),
        }
    }
}

/// A manifest only 3.x cannot decode (a descriptor's `data` that is not base64): scans follow
/// 2.8, which serves it (a `bad-descriptor` finding naming 3.x, no broken tag), and only the
/// 3.x models stop on it.
#[tokio::test]
async fn a_manifest_only_3x_cannot_decode_stops_only_the_3x_models() {
    let (o, child) = index_over_child(r#","data":"!""#).await;
    let r = &o.report;
    assert!(r.dangling.is_empty(), "{:?}", r.dangling);
    assert!(r.broken.is_empty(), "{:?}", r.broken);
    let details: Vec<(&str, &str)> = r
        .findings
        .iter()
        .map(|x| (x.kind.as_str(), x.detail.as_str()))
        .collect();
    assert_eq!(
        details,
        vec![(
            "bad-descriptor",
            "distribution 3.x cannot decode it (2.8 can): illegal base64 data at input byte 0"
        )]
    );
    for model in GcModel::ALL {
        let plan = gc::plan(&o.graph, model, o.driver);
        match model.version {
            gc::GcVersion::V2_8 => {
                assert!(matches!(plan, GcPlan::Completes(_)), "{model}: {plan:?}")
            }
            gc::GcVersion::V3 => match plan {
                GcPlan::Aborts(a) => assert_eq!(a.digest, Some(child.to_string()), "{model}"),
                other => panic!("{model}: {other:?}"),
            },
        }
    }
}
