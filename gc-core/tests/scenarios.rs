//! Scenario tests: a registry tree built in memory the way pushes write it, optionally damaged,
//! then audited; each test asserts the exact rows it expects.

use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::digest::Digest;
use gc_core::fixture::{image_manifest, index_manifest, old_time, Fixture};
use gc_core::layout::Key;
use gc_core::report::{ExitStatus, Report};
use std::time::Duration;

fn options() -> AuditOptions {
    AuditOptions {
        now: Some(old_time() + Duration::from_secs(30 * 86400)),
        ..AuditOptions::default()
    }
}

async fn scan_with(f: &Fixture, opts: AuditOptions) -> Report {
    audit(&f.storage, &opts, &NoProgress).await.report
}

async fn scan(f: &Fixture) -> Report {
    scan_with(f, options()).await
}

/// (digest, reclaimable_by) of orphaned rows.
fn orphans(r: &Report) -> Vec<(String, String)> {
    r.orphaned
        .iter()
        .map(|o| (o.digest.to_string(), o.reclaimable_by.to_string()))
        .collect()
}

/// (kind, digest, reason) of missing rows.
fn missing(r: &Report) -> Vec<(String, String, String)> {
    r.missing
        .iter()
        .map(|m| (m.kind.clone(), m.digest.clone(), m.reason.clone()))
        .collect()
}

/// (kind, key) of findings.
fn findings(r: &Report) -> Vec<(String, String)> {
    r.findings
        .iter()
        .map(|f| (f.kind.clone(), f.key.clone()))
        .collect()
}

fn s(d: &Digest) -> String {
    d.to_string()
}

fn t3(a: &str, b: &Digest, c: &str) -> (String, String, String) {
    (a.to_string(), b.to_string(), c.to_string())
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[tokio::test]
async fn healthy_single_arch_images_have_no_findings() {
    let f = Fixture::new();
    let docker = f.image("library/hello", "d", 2, false);
    let oci = f.image("library/hello", "o", 1, true);
    f.tag("library/hello", "latest", &docker.manifest);
    f.tag("library/hello", "oci", &oci.manifest);
    let r = scan(&f).await;
    assert!(r.summary.complete);
    assert_eq!(
        (
            r.orphaned.len(),
            r.missing.len(),
            r.dangling.len(),
            r.broken.len(),
            r.findings.len()
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(r.exit_status(None), ExitStatus::Clean);
    assert_eq!(r.summary.totals.blobs, 7);
    assert_eq!(r.repos.len(), 1);
    assert_eq!(
        (
            r.repos[0].tags,
            r.repos[0].manifests,
            r.repos[0].untagged_manifests
        ),
        (2, 2, 0)
    );
}

#[tokio::test]
async fn orphan_blob_is_reclaimable_by_gc_and_young_when_recent() {
    let f = Fixture::new();
    let img = f.image("a", "x", 1, false);
    f.tag("a", "t", &img.manifest);
    let orphan = f.upload("a", b"orphan");
    let fresh = Fixture {
        storage: f.storage.clone(),
        time: Some(old_time() + Duration::from_secs(30 * 86400 - 60)),
    };
    let young = fresh.blob(b"just pushed");
    let r = scan(&f).await;
    assert_eq!(
        orphans(&r),
        sorted(vec![(s(&orphan), "gc".into()), (s(&young), "gc".into())])
    );
    let young_row = r
        .orphaned
        .iter()
        .find(|o| o.digest.to_string() == s(&young))
        .unwrap();
    assert!(young_row.young);
    assert_eq!(young_row.last_modified.to_string(), "2026-01-30T23:59:00Z");
    assert_eq!(
        (
            r.summary.reclaimable_by_gc.count,
            r.summary.reclaimable_by_gc.bytes
        ),
        (1, 6)
    );
    assert_eq!((r.summary.young.count, r.summary.young.bytes), (1, 11));
    assert_eq!(
        r.exit_status(None),
        ExitStatus::Clean,
        "orphans are not integrity findings"
    );
}

#[tokio::test]
async fn untagged_image_is_reclaimable_only_by_delete_untagged() {
    let f = Fixture::new();
    let tagged = f.image("a", "tagged", 1, true);
    f.tag("a", "t", &tagged.manifest);
    let untagged = f.image("a", "untagged", 2, true);
    let r = scan(&f).await;
    let expected: Vec<(String, String)> = [
        &untagged.manifest,
        &untagged.config,
        &untagged.layers[0],
        &untagged.layers[1],
    ]
    .iter()
    .map(|d| (s(d), "gc-delete-untagged".to_string()))
    .collect();
    assert_eq!(orphans(&r), sorted(expected));
    assert_eq!(r.repos[0].untagged_manifests, 1);
}

#[tokio::test]
async fn tagged_index_with_untagged_children_is_all_tagged() {
    let f = Fixture::new();
    let amd = f.image("app", "amd64", 2, true);
    let arm = f.image("app", "arm64", 2, true);
    let index = f.index(
        "app",
        &[
            (&amd.manifest, "linux/amd64"),
            (&arm.manifest, "linux/arm64"),
        ],
        true,
    );
    f.tag("app", "v1", &index);
    let r = scan(&f).await;
    assert!(r.orphaned.is_empty(), "{:?}", r.orphaned);
    assert_eq!(r.repos[0].untagged_manifests, 0);
    assert_eq!(r.exit_status(None), ExitStatus::Clean);
}

/// What distribution 2.8 `garbage-collect -m` does to a tagged multi-arch image: the children's
/// revision links go, their unshared config and layers are swept, the index and tag stay.
#[tokio::test]
async fn index_damaged_like_gc_2_8_delete_untagged() {
    let f = Fixture::new();
    let base = b"shared base layer".to_vec();
    let hello = f.image_with_layers("hello", "hello", std::slice::from_ref(&base), false);
    f.tag("hello", "latest", &hello.manifest);
    let amd = f.image_with_layers(
        "web",
        "amd64",
        &[base.clone(), b"amd64 only".to_vec()],
        false,
    );
    let arm = f.image_with_layers("web", "arm", &[base, b"arm only".to_vec()], false);
    let index = f.index(
        "web",
        &[
            (&amd.manifest, "linux/amd64"),
            (&arm.manifest, "linux/arm/v7"),
        ],
        false,
    );
    f.tag("web", "stable", &index);
    for child in [&amd, &arm] {
        f.remove(&Key::RevisionLink {
            repo: "web".into(),
            digest: child.manifest.clone(),
        });
        for d in [&child.config, &child.layers[1]] {
            f.remove(&Key::BlobData { digest: d.clone() });
        }
    }
    let r = scan(&f).await;
    let dangling: Vec<(String, String, String, String)> = r
        .dangling
        .iter()
        .map(|d| {
            (
                d.index_digest.clone(),
                d.child_digest.clone(),
                d.platform.clone(),
                d.reason.clone(),
            )
        })
        .collect();
    assert_eq!(
        dangling,
        sorted(vec![
            (
                s(&index),
                s(&amd.manifest),
                "linux/amd64".into(),
                "not-linked".into()
            ),
            (
                s(&index),
                s(&arm.manifest),
                "linux/arm/v7".into(),
                "not-linked".into()
            ),
        ])
    );
    assert_eq!(
        sorted(missing(&r)),
        sorted(vec![
            t3("child-manifest", &amd.manifest, "not-linked"),
            t3("child-manifest", &arm.manifest, "not-linked"),
            t3("config", &amd.config, "blob-missing"),
            t3("layer", &amd.layers[1], "blob-missing"),
            t3("config", &arm.config, "blob-missing"),
            t3("layer", &arm.layers[1], "blob-missing"),
        ])
    );
    assert!(r
        .missing
        .iter()
        .all(|m| m.repository == "web" && m.tags == "stable"));
    assert_eq!(r.broken.len(), 1);
    assert_eq!(
        (r.broken[0].repository.as_str(), r.broken[0].tag.as_str()),
        ("web", "stable")
    );
    assert_eq!(r.broken[0].digest, s(&index));
    assert_eq!(r.broken[0].problem.to_string().split("; ").count(), 6);
    assert!(r.broken[0].problem.to_string().contains(&format!(
        "child-manifest {} (linux/arm/v7) not-linked",
        arm.manifest
    )));
    let dangling_links = r
        .findings
        .iter()
        .filter(|f| f.kind == "dangling-layer-link")
        .count();
    assert_eq!(dangling_links, 4);
    assert_eq!(r.exit_status(None), ExitStatus::IntegrityFindings);
}

#[tokio::test]
async fn nested_index_without_media_type_is_followed() {
    let f = Fixture::new();
    let img = f.image("n", "leaf", 1, true);
    let inner = f.manifest("n", format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}","platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#, img.manifest).as_bytes());
    let outer = f.index("n", &[(&inner, "linux/amd64")], true);
    f.tag("n", "t", &outer);
    let r = scan(&f).await;
    assert!(r.orphaned.is_empty(), "{:?}", r.orphaned);
    assert_eq!(r.exit_status(None), ExitStatus::Clean);
    // Remove the leaf's layer: the tag through two levels of index breaks.
    f.remove(&Key::BlobData {
        digest: img.layers[0].clone(),
    });
    let r = scan(&f).await;
    assert_eq!(
        missing(&r),
        vec![t3("layer", &img.layers[0], "blob-missing")]
    );
    assert_eq!(r.missing[0].tags, "t");
    assert_eq!(r.broken.len(), 1);
}

#[tokio::test]
async fn layer_not_linked_into_repository_cannot_be_pulled() {
    let f = Fixture::new();
    let img = f.image("a", "x", 2, false);
    f.tag("a", "t", &img.manifest);
    f.remove(&Key::LayerLink {
        repo: "a".into(),
        digest: img.layers[1].clone(),
    });
    let r = scan(&f).await;
    assert_eq!(missing(&r), vec![t3("layer", &img.layers[1], "not-linked")]);
    assert_eq!(
        r.broken[0].problem.to_string(),
        format!("layer {} not-linked", img.layers[1])
    );
}

#[tokio::test]
async fn revision_without_blob_and_tag_to_absent_manifest() {
    let f = Fixture::new();
    let img = f.image("a", "x", 1, false);
    f.tag("a", "t", &img.manifest);
    f.remove(&Key::BlobData {
        digest: img.manifest.clone(),
    });
    let r = scan(&f).await;
    assert_eq!(
        sorted(missing(&r)),
        sorted(vec![
            t3("revision", &img.manifest, "blob-missing"),
            t3("tag-target", &img.manifest, "blob-missing")
        ])
    );
    assert_eq!(
        r.broken[0].problem.to_string(),
        format!("manifest {} blob-missing", img.manifest)
    );
    assert!(findings(&r).contains(&(
        "dangling-tag-history".into(),
        Key::TagIndexEntry {
            repo: "a".into(),
            tag: "t".into(),
            digest: img.manifest.clone()
        }
        .to_path()
    )));
}

#[tokio::test]
async fn garbage_link_files_are_findings() {
    let f = Fixture::new();
    let img = f.image("a", "x", 1, false);
    f.tag("a", "t", &img.manifest);
    f.tag("a", "empty", &img.manifest);
    f.put(
        &Key::TagCurrent {
            repo: "a".into(),
            tag: "t".into(),
        },
        b"sha256:not-a-digest\n".to_vec(),
    );
    f.put(
        &Key::TagCurrent {
            repo: "a".into(),
            tag: "empty".into(),
        },
        Vec::new(),
    );
    let layer_link = Key::LayerLink {
        repo: "a".into(),
        digest: img.layers[0].clone(),
    };
    f.put(&layer_link, b"\x00\xffgarbage".to_vec());
    let r = scan(&f).await;
    let current = |t: &str| {
        Key::TagCurrent {
            repo: "a".into(),
            tag: t.into(),
        }
        .to_path()
    };
    assert_eq!(
        findings(&r),
        sorted(vec![
            ("bad-link".to_string(), current("empty")),
            ("bad-link".to_string(), current("t")),
            ("bad-link".to_string(), layer_link.to_path()),
        ])
    );
    let detail = &r
        .findings
        .iter()
        .find(|f| f.key == current("t"))
        .unwrap()
        .detail;
    assert_eq!(detail, "content sha256:not-a-digest\\n");
    assert_eq!(
        sorted(
            r.missing
                .iter()
                .map(|m| (m.kind.clone(), m.tags.clone(), m.reason.clone()))
                .collect()
        ),
        vec![
            ("layer".to_string(), String::new(), "bad-link".to_string()),
            (
                "tag-target".to_string(),
                "empty".to_string(),
                "bad-link".to_string()
            ),
            (
                "tag-target".to_string(),
                "t".to_string(),
                "bad-link".to_string()
            ),
        ]
    );
    assert_eq!(r.broken.len(), 2);
}

#[tokio::test]
async fn link_with_another_digest_of_the_same_length_is_found_by_its_etag() {
    let f = Fixture::new();
    let img = f.image("a", "x", 1, false);
    f.tag("a", "t", &img.manifest);
    let link = Key::LayerLink {
        repo: "a".into(),
        digest: img.layers[0].clone(),
    };
    f.put(&link, img.config.to_string()); // same length, wrong digest
    let r = scan(&f).await;
    assert_eq!(
        findings(&r),
        vec![("link-mismatch".to_string(), link.to_path())],
        "its ETag is not the MD5 of its path's digest, so it is read"
    );
    assert_eq!(missing(&r), vec![t3("layer", &img.layers[0], "bad-link")]);
    assert_eq!(r.broken.len(), 1);
    assert_eq!(r.summary.links.read, 2, "read, then read again to confirm");
    assert!(r.summary.links.verified_by_etag >= 2);
    let r = scan_with(
        &f,
        AuditOptions {
            verify_links: true,
            ..options()
        },
    )
    .await;
    assert_eq!(
        findings(&r),
        vec![("link-mismatch".to_string(), link.to_path())]
    );
    assert_eq!(missing(&r), vec![t3("layer", &img.layers[0], "bad-link")]);
}

#[tokio::test]
async fn unparseable_manifests_are_findings_and_break_their_tags() {
    let f = Fixture::new();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"#.to_vec(), "not JSON"),
        ("notjson", b"<html>502 Bad Gateway</html>".to_vec(), "not JSON"),
        ("empty", Vec::new(), "empty content"),
        ("array", b"[]".to_vec(), "not an object"),
    ];
    for (tag, bytes, _) in &cases {
        let d = f.manifest("a", bytes);
        f.tag("a", tag, &d);
    }
    let r = scan(&f).await;
    assert!(r.summary.complete);
    let unparseable: Vec<&str> = r
        .findings
        .iter()
        .filter(|x| x.kind == "unparseable-manifest")
        .map(|x| x.detail.as_str())
        .collect();
    assert_eq!(unparseable.len(), 4);
    for (_, _, expect) in &cases {
        assert!(
            unparseable.iter().any(|d| d.contains(expect)),
            "{expect}: {unparseable:?}"
        );
    }
    assert_eq!(r.broken.len(), 4);
    assert!(r
        .broken
        .iter()
        .all(|b| b.problem.to_string().ends_with("unparseable")));
}

#[tokio::test]
async fn huge_manifest_is_not_downloaded() {
    let f = Fixture::new();
    let mut huge = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":""#.to_vec();
    huge.resize(100 << 20, b'a');
    huge.extend_from_slice(br#""}}"#);
    let d = f.manifest("a", &huge);
    f.tag("a", "huge", &d);
    let r = scan(&f).await;
    let blob_key = Key::BlobData { digest: d.clone() }.to_path();
    // 2.8 does not see repository `a` (no _layers/); 3.x would read the manifest gc-audit did not.
    assert_eq!(
        findings(&r),
        vec![
            ("manifest-too-large".to_string(), blob_key.clone()),
            ("gc-unpredictable".to_string(), blob_key.clone()),
            ("gc-unpredictable".to_string(), blob_key.clone()),
            (
                "invisible-to-2.8-gc".to_string(),
                "docker/registry/v2/repositories/a/".to_string()
            ),
        ]
    );
    assert!(
        r.findings[0].detail.starts_with("104857603 bytes"),
        "{}",
        r.findings[0].detail
    );
    assert_eq!(
        r.summary.requests.get, 0,
        "the manifest is not downloaded, the tag is resolved from its ETag"
    );
    assert_eq!(r.summary.tags_resolved_by_etag, 1);
    assert_eq!(
        r.broken[0].problem.to_string(),
        format!("manifest {d} unparseable")
    );
}

#[tokio::test]
async fn manifest_whose_content_does_not_match_its_digest() {
    let f = Fixture::new();
    let img = f.image("a", "x", 1, false);
    f.tag("a", "t", &img.manifest);
    f.put(
        &Key::BlobData {
            digest: img.manifest.clone(),
        },
        b"{\"schemaVersion\":3}".to_vec(),
    );
    let r = scan(&f).await;
    let kinds: Vec<String> = r.findings.iter().map(|f| f.kind.clone()).collect();
    // The registry reads what is there: here a document that is not a manifest
    // (`{"schemaVersion":2}` would be one: an OCI manifest without config, to Go).
    assert_eq!(kinds, vec!["unparseable-manifest", "digest-mismatch"]);
    assert_eq!(
        r.findings[1].detail,
        format!(
            "content hashes to {}",
            Digest::sha256_of(b"{\"schemaVersion\":3}")
        )
    );
    assert_eq!(r.broken.len(), 1);
}

#[tokio::test]
async fn schema1_signed_manifest_references_its_layers() {
    let f = Fixture::new();
    let l1 = f.upload("old", b"layer one");
    let l2 = f.upload("old", b"empty layer");
    let m = format!(
        r#"{{"schemaVersion":1,"name":"old","tag":"v1","architecture":"amd64","fsLayers":[{{"blobSum":"{l2}"}},{{"blobSum":"{l1}"}},{{"blobSum":"{l2}"}}],"history":[],"signatures":[{{"header":{{"alg":"ES256"}},"signature":"c2ln","protected":"cHJv"}}]}}"#
    );
    let d = f.manifest("old", m.as_bytes());
    f.tag("old", "v1", &d);
    let r = scan(&f).await;
    assert!(r.orphaned.is_empty());
    assert!(r.findings.is_empty());
    f.remove(&Key::BlobData { digest: l1.clone() });
    assert_eq!(
        missing(&scan(&f).await),
        vec![t3("layer", &l1, "blob-missing")]
    );
}

#[tokio::test]
async fn absent_foreign_layer_is_allowed() {
    let f = Fixture::new();
    let config = f.upload("win", b"{}");
    let foreign = Digest::sha256_of(b"windows base layer, never uploaded");
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"digest":"{config}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{foreign}","urls":["https://example.invalid/base"]}}]}}"#
    );
    let d = f.manifest("win", m.as_bytes());
    f.tag("win", "ltsc", &d);
    let r = scan(&f).await;
    assert!(r.missing.is_empty() && r.broken.is_empty());
    assert_eq!(
        findings(&r),
        vec![(
            "foreign-layer-absent".to_string(),
            Key::BlobData { digest: foreign }.to_path()
        )]
    );
    assert_eq!(r.exit_status(None), ExitStatus::Clean);
}

#[tokio::test]
async fn untagged_referrer_of_a_tagged_image_is_tagged() {
    let f = Fixture::new();
    let img = f.image("a", "x", 1, true);
    f.tag("a", "t", &img.manifest);
    let empty = f.upload("a", b"{}");
    let sig_layer = f.upload("a", b"signature payload");
    let sig = f.manifest(
        "a",
        image_manifest(
            &empty,
            std::slice::from_ref(&sig_layer),
            true,
            Some(&img.manifest),
        )
        .as_bytes(),
    );
    // A referrer of the referrer (e.g. a signature of an SBOM).
    let sig2 = f.manifest(
        "a",
        image_manifest(&empty, &[], true, Some(&sig)).as_bytes(),
    );
    let unrelated = f.image("a", "unrelated", 1, true);
    let r = scan(&f).await;
    let reclaimable: Vec<String> = r.orphaned.iter().map(|o| o.digest.to_string()).collect();
    assert_eq!(
        reclaimable,
        sorted(vec![
            s(&unrelated.manifest),
            s(&unrelated.config),
            s(&unrelated.layers[0])
        ])
    );
    assert!(!reclaimable.contains(&s(&sig)) && !reclaimable.contains(&s(&sig2)));
}

#[tokio::test]
async fn dangling_subject_is_missing_but_does_not_break_the_pull() {
    let f = Fixture::new();
    let empty = f.upload("c", b"{}");
    // A referrer of an absent image, and an index that is both a referrer of it and its parent.
    let gone = Digest::sha256_of(b"deleted image");
    let referrer = f.manifest(
        "c",
        image_manifest(&empty, &[], true, Some(&gone)).as_bytes(),
    );
    f.tag("c", "sbom", &referrer);
    let loop_index = f.manifest(
        "c",
        index_manifest(&[(&referrer, "linux/amd64")], true)
            .replace(
                "\"manifests\"",
                &format!("\"subject\":{{\"digest\":\"{referrer}\"}},\"manifests\""),
            )
            .as_bytes(),
    );
    f.tag("c", "loop", &loop_index);
    let r = scan(&f).await;
    assert_eq!(missing(&r), vec![t3("subject", &gone, "blob-missing")]);
    assert_eq!(r.missing[0].manifest_digest, s(&referrer));
    assert!(
        r.broken.is_empty(),
        "a missing subject does not stop a pull: {:?}",
        r.broken
    );
}

#[tokio::test]
async fn repository_without_layers_is_invisible_to_gc_2_8() {
    let f = Fixture::new();
    let img = f.image("src", "x", 1, false);
    f.tag("src", "t", &img.manifest);
    // A second repository holding the same manifest, with its blobs linked by revision only.
    let key = Key::RevisionLink {
        repo: "mirror".into(),
        digest: img.manifest.clone(),
    };
    f.put(&key, img.manifest.to_string());
    f.tag("mirror", "t", &img.manifest);
    let r = scan(&f).await;
    assert!(findings(&r).contains(&(
        "invisible-to-2.8-gc".to_string(),
        "docker/registry/v2/repositories/mirror/".to_string()
    )));
    assert_eq!(
        sorted(missing(&r)),
        sorted(vec![
            t3("config", &img.config, "not-linked"),
            t3("layer", &img.layers[0], "not-linked")
        ])
    );
}

#[tokio::test]
async fn uploads_without_start_time_or_older_than_a_week_are_stale() {
    let f = Fixture::new();
    let repo = "a".to_string();
    f.put(
        &Key::UploadData {
            repo: repo.clone(),
            id: "old".into(),
        },
        vec![0u8; 10],
    );
    f.put(
        &Key::UploadStartedAt {
            repo: repo.clone(),
            id: "old".into(),
        },
        b"2026-01-01T00:00:00Z".to_vec(),
    );
    f.put(
        &Key::UploadData {
            repo: repo.clone(),
            id: "nostart".into(),
        },
        vec![0u8; 3],
    );
    f.put(
        &Key::UploadStartedAt {
            repo: repo.clone(),
            id: "recent".into(),
        },
        b"2026-01-30T12:00:00+01:00".to_vec(),
    );
    f.put(
        &Key::UploadStartedAt {
            repo: repo.clone(),
            id: "garbage".into(),
        },
        b"yesterday".to_vec(),
    );
    let r = scan(&f).await;
    let stale: Vec<(String, String)> = r
        .findings
        .iter()
        .filter(|x| x.kind == "stale-upload")
        .map(|x| (x.key.clone(), x.detail.clone()))
        .collect();
    let key = |id: &str| {
        Key::UploadStartedAt {
            repo: repo.clone(),
            id: id.into(),
        }
        .to_path()
    };
    assert_eq!(
        stale,
        vec![
            (
                key("garbage"),
                "startedat is not an RFC 3339 time: the registry never purges it".to_string()
            ),
            (
                key("nostart"),
                "no startedat: the registry never purges it, 3 bytes of data".to_string()
            ),
            (
                key("old"),
                "started 30days ago, 10 bytes of data".to_string()
            ),
        ]
    );
}

#[tokio::test]
async fn cosign_tag_whose_subject_is_gone() {
    let f = Fixture::new();
    let img = f.image("a", "x", 1, false);
    f.tag("a", "t", &img.manifest);
    let sig = f.image("a", "sig", 1, true);
    f.tag(
        "a",
        &format!("sha256-{}.sig", img.manifest.encoded()),
        &sig.manifest,
    );
    let gone = Digest::sha256_of(b"gone");
    f.tag(
        "a",
        &format!("sha256-{}.att", gone.encoded()),
        &sig.manifest,
    );
    let r = scan(&f).await;
    let orphaned_sigs: Vec<String> = r
        .findings
        .iter()
        .filter(|x| x.kind == "orphaned-signature-tag")
        .map(|x| x.detail.clone())
        .collect();
    assert_eq!(
        orphaned_sigs,
        vec![format!(
            "subject {gone} is not a manifest of this repository"
        )]
    );
}

#[tokio::test]
async fn odd_keys_are_findings() {
    let f = Fixture::new();
    let img = f.image("a", "x", 1, false);
    f.tag("a", "t", &img.manifest);
    let hex = img.layers[0].encoded();
    let keys = [
        format!("docker/registry/v2/blobs/sha256/zz/{hex}/data"),
        "docker/registry/v2/blobs/sha256/ab/abc/data".to_string(),
        "docker/registry/v2/repositories/Bad_Name/_layers/sha256/x/link".to_string(),
        "docker/registry/v2/repositories/a/_manifests/tags/-x/current/link".to_string(),
        "docker/registry/v2/repositories/a/notes.txt".to_string(),
        "docker/registry/v2/strange".to_string(),
    ];
    for k in &keys {
        f.storage.put_at(k.clone(), b"x".to_vec(), old_time());
    }
    let r = scan(&f).await;
    assert!(r.summary.complete);
    assert_eq!(
        sorted(findings(&r)),
        sorted(vec![
            ("fanout-mismatch".to_string(), keys[0].clone()),
            ("bad-digest-in-path".to_string(), keys[1].clone()),
            ("bad-repository-name".to_string(), keys[2].clone()),
            ("bad-tag-name".to_string(), keys[3].clone()),
            ("unrecognized-key".to_string(), keys[4].clone()),
            ("unrecognized-key".to_string(), keys[5].clone()),
        ])
    );
}

#[tokio::test]
async fn unreadable_storage_makes_the_audit_incomplete() {
    let f = Fixture::new();
    let img = f.image("a", "x", 1, false);
    f.tag("a", "t", &img.manifest);
    f.upload("a", b"orphan");
    f.storage.fail_prefix(
        Key::BlobData {
            digest: img.manifest.clone(),
        }
        .to_path(),
    );
    let r = scan(&f).await;
    assert!(!r.summary.complete);
    assert_eq!(r.exit_status(None), ExitStatus::Incomplete);
    assert!(
        r.orphaned.is_empty() && r.missing.is_empty() && r.repos.is_empty(),
        "rows are withheld"
    );
    assert_eq!(
        r.summary.withheld,
        vec![
            "orphaned.csv",
            "missing.csv",
            "dangling.csv",
            "gc-unsafe.csv",
            "broken.csv",
            "repos.csv",
            "repush.txt"
        ]
    );
    assert_eq!(
        r.findings.iter().filter(|x| x.kind == "read-error").count(),
        1
    );
    assert!(
        r.summary.errors[0].contains(&img.manifest.encoded()),
        "{:?}",
        r.summary.errors
    );
}

#[tokio::test]
async fn repository_bytes_and_exclusive_bytes() {
    let f = Fixture::new();
    let shared = b"shared".to_vec(); // 6 bytes
    let a = f.image_with_layers("a", "a", &[shared.clone(), b"only a".to_vec()], false);
    let b = f.image_with_layers("b", "b", &[shared], false);
    f.tag("a", "t", &a.manifest);
    f.tag("b", "t", &b.manifest);
    let r = scan(&f).await;
    let a_row = &r.repos[0];
    let mut a_all = 0;
    for d in [&a.manifest, &a.config, &a.layers[0], &a.layers[1]] {
        let key = Key::BlobData { digest: d.clone() }.to_path();
        a_all += gc_core::storage::Storage::head(&f.storage, &key)
            .await
            .unwrap()
            .unwrap()
            .size;
    }
    assert_eq!(a_row.bytes, a_all);
    assert_eq!(a_row.exclusive_bytes, a_all - 6);
}
