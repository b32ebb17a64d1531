//! distribution's own garbage-collection tests, re-expressed as gc-audit scenarios.
//!
//! Every test of `registry/storage/garbagecollect_test.go` at v3.1.1 is ported: the same
//! repository state is built with [`Fixture`] (the way the Go test's pushes, tags, deletes and
//! `d.Delete` calls leave the storage), audited, and every GC model is run over it with
//! [`gc::plan`]. The assertions are exact: which revisions (with tag history), blobs and
//! `_layers` links each model deletes, or where it stops. The Go test's own expectation (it
//! compares blob sets before/after and checks that particular manifests or links exist) is
//! quoted next to the model it applies to: `distribution-3` / `distribution-3-m` for the
//! v3.1.1 tests; for the scenarios that are also in v2.8.2's test file, `distribution-2.8` /
//! `distribution-2.8-m` as well (2.8 expectations are derived from the v2.8.2 code:
//! repositories found by `_layers`, no recursion into index children, `_layers` links never
//! deleted, `-m` stops on an untagged manifest of a repository without `_manifests/tags/`).
//! The other models are asserted too wherever the state is the same, so differences between
//! the collectors are visible side by side.
//!
//! Go-test fidelity notes:
//! - `testutil.MakeSchema2Manifest` / `MakeOCIManifest` store a nil `configJSON`: every image
//!   of a Go test has the same config blob, the empty blob (`sha256:e3b0c442…`), linked into
//!   the repository's `_layers`. [`go_manifest`] reproduces that, so whether that shared
//!   config survives is part of every expectation.
//! - `testutil.MakeManifestList` builds child descriptors from the global blob statter:
//!   `mediaType` `application/octet-stream`, platform `CP/M/atari2600/ternary`.
//! - `ocischema.FromDescriptors([]v1.Descriptor{{Digest: d}})` writes children with only a
//!   digest (empty media type, size 0).
//! - `manifestService.Delete` removes the revision link only (the blob stays);
//!   `Tags().Untag` removes the tag's directory; the in-memory driver keeps the then-empty
//!   `_manifests/tags/` directory (an empty-directory key here).

use gc_core::audit::{audit, AuditOptions, AuditOutcome, NoProgress};
use gc_core::digest::Digest;
use gc_core::fixture::{image_manifest, old_time, Fixture};
use gc_core::gc::{self, Deletions, Driver, GcAbort, GcModel, GcPlan, GcVersion};
use gc_core::layout::{Key, REPOSITORIES};
use std::time::Duration;

const V2_8: GcModel = GcModel {
    version: GcVersion::V2_8,
    remove_untagged: false,
};
const V2_8_M: GcModel = GcModel {
    version: GcVersion::V2_8,
    remove_untagged: true,
};
const V3: GcModel = GcModel {
    version: GcVersion::V3,
    remove_untagged: false,
};
const V3_M: GcModel = GcModel {
    version: GcVersion::V3,
    remove_untagged: true,
};

// ---------------------------------------------------------------------------------------
// Helpers: audit, plan, and a plan's deletions as comparable strings.
// ---------------------------------------------------------------------------------------

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

fn plan(o: &AuditOutcome, model: GcModel) -> GcPlan {
    gc::plan(&o.graph, model, o.driver)
}

/// A deleted revision: `repo@digest`, the repository's tags as the collector records them,
/// and the tags whose history entry for it is deleted with it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rev {
    at: String,
    all_tags: Vec<String>,
    tag_history: Vec<String>,
}

/// What a completed run deletes, sorted; `notes` in the order printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Deleted {
    revisions: Vec<Rev>,
    blobs: Vec<String>,
    layer_links: Vec<String>,
    notes: Vec<String>,
}

fn to_deleted(o: &AuditOutcome, d: &Deletions) -> Deleted {
    let s = |id| o.graph.digests().digest(id).to_string();
    Deleted {
        revisions: sorted(
            d.manifests
                .iter()
                .map(|m| Rev {
                    at: format!("{}@{}", m.repo, s(m.digest)),
                    all_tags: gc::all_tags(&o.graph, &m.repo)
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                    tag_history: m.tag_history.to_vec(),
                })
                .collect(),
        ),
        blobs: sorted(d.blobs.iter().map(s).collect()),
        layer_links: sorted(
            d.layer_link_pairs()
                .map(|(r, l)| format!("{r}@{}", s(l)))
                .collect(),
        ),
        notes: d.notes.clone(),
    }
}

/// The deletions of `model`'s run, which must complete.
fn deleted(o: &AuditOutcome, model: GcModel) -> Deleted {
    match plan(o, model) {
        GcPlan::Completes(d) => to_deleted(o, &d),
        other => panic!("{model}: expected the run to complete, got {other:?}"),
    }
}

/// The error `model`'s run stops on, which must stop.
fn aborted(o: &AuditOutcome, model: GcModel) -> GcAbort {
    match plan(o, model) {
        GcPlan::Aborts(a) => a,
        other => panic!("{model}: expected the run to stop, got {other:?}"),
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn nothing() -> Deleted {
    Deleted::default()
}

fn blobs(ds: &[&Digest]) -> Vec<String> {
    sorted(ds.iter().map(|d| d.to_string()).collect())
}

fn links(repo: &str, ds: &[&Digest]) -> Vec<String> {
    sorted(ds.iter().map(|d| format!("{repo}@{d}")).collect())
}

fn rev(repo: &str, d: &Digest, all_tags: &[&str], tag_history: &[&str]) -> Rev {
    Rev {
        at: format!("{repo}@{d}"),
        all_tags: all_tags.iter().map(|t| t.to_string()).collect(),
        tag_history: tag_history.iter().map(|t| t.to_string()).collect(),
    }
}

/// 3.x's `manifest tags path of repository <repo> does not exist`, once per skipped manifest.
fn no_tags_notes(repo: &str, n: usize) -> Vec<String> {
    vec![format!("manifest tags path of repository {repo} does not exist"); n]
}

/// 2.8 `-m` stopping on the first untagged revision of a repository without `tags/`:
/// `failed to retrieve tags unknown repository name=<repo>` (v2.8.2 garbagecollect.go L75-78,
/// tagstore.go L35-40).
fn assert_no_tags_directory_abort(o: &AuditOutcome, repo: &str, first_untagged: &Digest) {
    let a = aborted(o, V2_8_M);
    assert_eq!(
        (
            a.reason,
            a.repository.as_deref(),
            a.digest.clone(),
            a.key.as_str()
        ),
        (
            "no-tags-directory",
            Some(repo),
            Some(first_untagged.to_string()),
            format!("{REPOSITORIES}{repo}/_manifests/tags/").as_str()
        )
    );
}

// ---------------------------------------------------------------------------------------
// Helpers: pushes as the Go tests make them.
// ---------------------------------------------------------------------------------------

/// An image pushed the way the Go tests push one.
#[derive(Debug, Clone)]
struct GoImage {
    manifest: Digest,
    config: Digest,
    layers: Vec<Digest>,
    size: usize,
}

/// `testutil.CreateRandomLayers(n)` + `testutil.UploadBlobs`: `n` distinct layer blobs
/// uploaded into `repo` (blob data and `_layers` link).
fn go_layers(f: &Fixture, repo: &str, seed: &str, n: usize) -> Vec<Digest> {
    (0..n)
        .map(|i| f.upload(repo, format!("random layer {seed} {i}").as_bytes()))
        .collect()
}

/// `testutil.MakeSchema2Manifest` / `MakeOCIManifest` over `layers`, then
/// `manifestService.Put`: the config is the nil `configJSON`, i.e. the empty blob, put into
/// the repository's blob store (data + `_layers` link); the manifest gets a revision link.
fn go_manifest(f: &Fixture, repo: &str, layers: &[Digest], oci: bool) -> GoImage {
    let config = f.upload(repo, b"");
    let bytes = image_manifest(&config, layers, oci, None);
    let manifest = f.manifest(repo, bytes.as_bytes());
    GoImage {
        manifest,
        config,
        layers: layers.to_vec(),
        size: bytes.len(),
    }
}

/// `uploadRandomSchema2Image` (`oci = false`) / `uploadRandomOCIImage` (`oci = true`).
fn go_image(f: &Fixture, repo: &str, seed: &str, oci: bool) -> GoImage {
    let layers = go_layers(f, repo, seed, 2);
    go_manifest(f, repo, &layers, oci)
}

/// v2.8.2 `uploadRandomSchema1Image`: two layers and a signed schema1 manifest
/// (`testutil.MakeSchema1Manifest`: name `who`, tag `cares`, one history entry per layer).
fn go_schema1_image(f: &Fixture, repo: &str, seed: &str) -> GoImage {
    let layers = go_layers(f, repo, seed, 2);
    go_schema1_manifest(f, repo, &layers)
}

fn go_schema1_manifest(f: &Fixture, repo: &str, layers: &[Digest]) -> GoImage {
    let fs_layers: Vec<String> = layers
        .iter()
        .map(|l| format!(r#"{{"blobSum":"{l}"}}"#))
        .collect();
    let history: Vec<&str> = layers.iter().map(|_| r#"{"v1Compatibility":""}"#).collect();
    let bytes = format!(
        r#"{{"schemaVersion":1,"name":"who","tag":"cares","architecture":"","fsLayers":[{}],"history":[{}],"signatures":[{{"header":{{"jwk":{{"crv":"P-256","kty":"EC"}},"alg":"ES256"}},"signature":"c2ln","protected":"cHJvdGVjdGVk"}}]}}"#,
        fs_layers.join(","),
        history.join(",")
    );
    let manifest = f.manifest(repo, bytes.as_bytes());
    GoImage {
        manifest,
        config: Digest::sha256_of(b""),
        layers: layers.to_vec(),
        size: bytes.len(),
    }
}

/// `testutil.MakeManifestList` + `manifestService.Put`: a Docker manifest list whose child
/// descriptors come from the global blob statter (`application/octet-stream`).
fn go_manifest_list(f: &Fixture, repo: &str, children: &[&GoImage]) -> Digest {
    let entries: Vec<String> = children
        .iter()
        .map(|c| {
            format!(
                r#"{{"mediaType":"application/octet-stream","size":{},"digest":"{}","platform":{{"architecture":"atari2600","os":"CP/M","variant":"ternary","features":["VLIW","superscalaroutoforderdevnull"]}}}}"#,
                c.size, c.manifest
            )
        })
        .collect();
    let bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{}]}}"#,
        entries.join(",")
    );
    f.manifest(repo, bytes.as_bytes())
}

/// `ocischema.FromDescriptors([]v1.Descriptor{{Digest: …}, …})` + `manifestService.Put`:
/// an OCI index whose children carry only their digest.
fn go_oci_index(f: &Fixture, repo: &str, children: &[&Digest]) -> Digest {
    let entries: Vec<String> = children
        .iter()
        .map(|d| format!(r#"{{"mediaType":"","digest":"{d}","size":0}}"#))
        .collect();
    let bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        entries.join(",")
    );
    f.manifest(repo, bytes.as_bytes())
}

/// `manifestService.Delete(dgst)`: removes the revision link; the blob stays.
fn delete_manifest(f: &Fixture, repo: &str, d: &Digest) {
    assert!(f.remove(&Key::RevisionLink {
        repo: repo.to_string(),
        digest: d.clone(),
    }));
}

/// `Tags().Untag(tag)`: removes `_manifests/tags/<tag>/` (current link and history).
fn untag(f: &Fixture, repo: &str, tag: &str, history: &[&Digest]) {
    assert!(f.remove(&Key::TagCurrent {
        repo: repo.to_string(),
        tag: tag.to_string(),
    }));
    for d in history {
        assert!(f.remove(&Key::TagIndexEntry {
            repo: repo.to_string(),
            tag: tag.to_string(),
            digest: (*d).clone(),
        }));
    }
}

/// An empty directory left behind (the in-memory and filesystem drivers keep directories).
fn empty_dir(f: &Fixture, path: String) {
    assert!(path.ends_with('/'));
    f.storage.put_at(path, Vec::new(), old_time());
}

// ---------------------------------------------------------------------------------------
// v3.1.1 garbagecollect_test.go, test by test.
// ---------------------------------------------------------------------------------------

/// Go: TestNoDeletionNoEffect (v3.1.1; in v2.8.2 too, with schema1 images 1 and 2: see
/// `no_deletion_no_effect_v2_8_file`). Three untagged schema2 images and an untagged
/// manifest list over the first two; GC without `-m` must not change the blob store:
/// "if len(before) != len(after) { t.Fatalf("Garbage collection affected storage…") }".
#[tokio::test]
async fn no_deletion_no_effect() {
    let repo = "palailogos";
    let f = Fixture::new();
    let image1 = go_image(&f, repo, "1", false);
    let image2 = go_image(&f, repo, "2", false);
    let image3 = go_image(&f, repo, "3", false);
    let list = go_manifest_list(&f, repo, &[&image1, &image2]);
    let o = scan(&f).await;

    assert_eq!(deleted(&o, V3), nothing());
    assert_eq!(deleted(&o, V2_8), nothing());

    // Not in the Go test: with -m nothing is tagged and the repository has no tags/ at all.
    // 3.x skips every manifest (neither marked nor deleted) and sweeps everything else;
    // 2.8 stops on the first revision.
    let all_layers: Vec<&Digest> = [&image1, &image2, &image3]
        .iter()
        .flat_map(|i| i.layers.iter())
        .collect();
    let mut all_blobs = all_layers.clone();
    all_blobs.extend([
        &image1.manifest,
        &image2.manifest,
        &image3.manifest,
        &list,
        &image1.config,
    ]);
    let mut all_links = all_layers.clone();
    all_links.push(&image1.config);
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            revisions: vec![],
            blobs: blobs(&all_blobs),
            layer_links: links(repo, &all_links),
            notes: no_tags_notes(repo, 4),
        }
    );
    let first = sorted(vec![
        &image1.manifest,
        &image2.manifest,
        &image3.manifest,
        &list,
    ])[0];
    assert_no_tags_directory_abort(&o, repo, first);
}

/// Go: TestNoDeletionNoEffect as in v2.8.2: images 1 and 2 are schema1
/// (`uploadRandomSchema1Image`), image 3 schema2, the list over 1 and 2. 2.8 leaves the blob
/// store as it is; 3.x cannot read schema1 (manifeststore.go v3.1.1 L131: "unrecognized
/// manifest schema version %d") and stops on the first schema1 manifest it marks.
#[tokio::test]
async fn no_deletion_no_effect_v2_8_file() {
    let repo = "palailogos";
    let f = Fixture::new();
    let image1 = go_schema1_image(&f, repo, "1");
    let image2 = go_schema1_image(&f, repo, "2");
    let image3 = go_image(&f, repo, "3", false);
    let list = go_manifest_list(&f, repo, &[&image1, &image2]);
    let o = scan(&f).await;

    assert_eq!(deleted(&o, V2_8), nothing());

    // 3.x marks revisions in digest order: a schema1 revision stops it at once; the list
    // stops it on its first child (image1), which exists in the repository and is recursed.
    let mut order = [&image1.manifest, &image2.manifest, &list];
    order.sort();
    let stop = if order[0] == &list {
        &image1.manifest
    } else {
        order[0]
    };
    let a = aborted(&o, V3);
    assert_eq!(
        (a.reason, a.digest.clone(), a.repository.as_deref()),
        ("unsupported-manifest", Some(stop.to_string()), Some(repo))
    );
    assert!(
        a.message
            .ends_with("unrecognized manifest schema version 1"),
        "{}",
        a.message
    );

    // -m: no tags/ directory. 3.x skips every manifest without reading it, so it does not
    // stop on schema1; 2.8 stops on the first revision.
    let mut all_blobs: Vec<&Digest> = [&image1, &image2, &image3]
        .iter()
        .flat_map(|i| i.layers.iter())
        .collect();
    let mut all_links = all_blobs.clone();
    all_links.push(&image3.config);
    all_blobs.extend([
        &image1.manifest,
        &image2.manifest,
        &image3.manifest,
        &list,
        &image3.config,
    ]);
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            revisions: vec![],
            blobs: blobs(&all_blobs),
            layer_links: links(repo, &all_links),
            notes: no_tags_notes(repo, 4),
        }
    );
    let first = sorted(vec![
        &image1.manifest,
        &image2.manifest,
        &image3.manifest,
        &list,
    ])[0];
    assert_no_tags_directory_abort(&o, repo, first);
}

/// The two manifests of TestDeleteManifestIfTagNotFound, built in `f`: two sets of three
/// layers, two schema2 manifests, and tag `test` written once per manifest in enumeration
/// (digest) order, so `current` is the last and the history holds both.
/// Returns (first, last) in digest order.
fn delete_manifest_if_tag_not_found_state(
    f: &Fixture,
    repo: &str,
    schema1: bool,
) -> (GoImage, GoImage) {
    let layers1 = go_layers(f, repo, "1", 3);
    let layers2 = go_layers(f, repo, "2", 3);
    let (m1, m2) = if schema1 {
        (
            go_schema1_manifest(f, repo, &layers1),
            go_schema1_manifest(f, repo, &layers2),
        )
    } else {
        (
            go_manifest(f, repo, &layers1, false),
            go_manifest(f, repo, &layers2, false),
        )
    };
    // manifestEnumerator.Enumerate(… repo.Tags(ctx).Tag(ctx, "test", {Digest: dgst}) …)
    let (first, last) = if m1.manifest < m2.manifest {
        (m1, m2)
    } else {
        (m2, m1)
    };
    f.tag(repo, "test", &first.manifest);
    f.tag(repo, "test", &last.manifest);
    (first, last)
}

/// Go: TestDeleteManifestIfTagNotFound (v3.1.1; in v2.8.2 too, with schema1 manifests: see
/// `delete_manifest_if_tag_not_found_v2_8_file`). Both manifests were tagged `test` in turn;
/// only the last is current. `-m` must delete something: "if len(before1) == len(after1)
/// {…}" and "if len(before2) == len(after2) {…}" (blob and manifest counts both change); the
/// dry run before it must not (the plan is what the dry run prints: see `eligible_lines_*`).
#[tokio::test]
async fn delete_manifest_if_tag_not_found() {
    let repo = "deletemanifests";
    let f = Fixture::new();
    let (first, last) = delete_manifest_if_tag_not_found_state(&f, repo, false);
    let o = scan(&f).await;

    // The superseded manifest goes with its tag history entry, its blob and its layers; the
    // config is the shared empty blob, kept by the current one.
    let mut gone = vec![&first.manifest];
    gone.extend(first.layers.iter());
    let expected_2_8_m = Deleted {
        revisions: vec![rev(repo, &first.manifest, &["test"], &["test"])],
        blobs: blobs(&gone),
        layer_links: vec![],
        notes: vec![],
    };
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            layer_links: links(repo, &first.layers.iter().collect::<Vec<_>>()),
            ..expected_2_8_m.clone()
        }
    );
    assert_eq!(deleted(&o, V2_8_M), expected_2_8_m);
    assert_ne!(first.manifest, last.manifest);

    assert_eq!(deleted(&o, V3), nothing());
    assert_eq!(deleted(&o, V2_8), nothing());
}

/// Go: TestDeleteManifestIfTagNotFound as in v2.8.2 (schema1 manifests, no config blob).
/// 2.8 `-m` deletes the superseded manifest; 3.x stops on the first schema1 manifest it
/// must read to mark its references.
#[tokio::test]
async fn delete_manifest_if_tag_not_found_v2_8_file() {
    let repo = "deletemanifests";
    let f = Fixture::new();
    let (first, last) = delete_manifest_if_tag_not_found_state(&f, repo, true);
    let o = scan(&f).await;

    let mut gone = vec![&first.manifest];
    gone.extend(first.layers.iter());
    assert_eq!(
        deleted(&o, V2_8_M),
        Deleted {
            revisions: vec![rev(repo, &first.manifest, &["test"], &["test"])],
            blobs: blobs(&gone),
            layer_links: vec![],
            notes: vec![],
        }
    );
    assert_eq!(deleted(&o, V2_8), nothing());
    // Without -m 3.x marks (and reads) every revision: it stops on the first in digest
    // order. With -m the first is untagged and only recorded: it stops on the current one.
    for (model, stop) in [(V3, &first.manifest), (V3_M, &last.manifest)] {
        let a = aborted(&o, model);
        assert_eq!(
            (a.reason, a.digest.clone()),
            ("unsupported-manifest", Some(stop.to_string())),
            "{model}"
        );
    }
}

/// Go: TestDeleteManifestIndexWithDanglingReferences (v3.1.1 only). A tagged OCI index over
/// two OCI images, the second deleted by digest (revision link gone, blob kept). `-m` must
/// delete blobs but no manifest: "if len(before1) == len(after1) {…did not affect blobs…}",
/// "if len(before2) != len(after2) {…affected manifest storage…}".
#[tokio::test]
async fn delete_manifest_index_with_dangling_references() {
    let repo = "deletemanifests";
    let f = Fixture::new();
    let image1 = go_image(&f, repo, "1", true);
    let image2 = go_image(&f, repo, "2", true);
    let ii = go_oci_index(&f, repo, &[&image1.manifest, &image2.manifest]);
    f.tag(repo, "test", &ii);
    delete_manifest(&f, repo, &image2.manifest);
    let o = scan(&f).await;

    // 3.x: the index marks both children; image1 exists in the repository and is recursed
    // (config, layers); image2 does not (no revision link), so its layers are swept with
    // their links. Its manifest blob is marked and stays.
    let layers2: Vec<&Digest> = image2.layers.iter().collect();
    let expected_3 = Deleted {
        revisions: vec![],
        blobs: blobs(&layers2),
        layer_links: links(repo, &layers2),
        notes: vec![],
    };
    assert_eq!(deleted(&o, V3_M), expected_3);
    assert_eq!(deleted(&o, V3), expected_3);

    // 2.8 (not in its test file): the index marks the children's digests only. Without -m
    // image1 marks its own config and layers; with -m image1 is an untagged revision, so it
    // is deleted and nothing marks the config or any layer.
    assert_eq!(
        deleted(&o, V2_8),
        Deleted {
            layer_links: vec![],
            ..expected_3.clone()
        }
    );
    let mut gone = vec![&image1.config];
    gone.extend(image1.layers.iter());
    gone.extend(image2.layers.iter());
    assert_eq!(
        deleted(&o, V2_8_M),
        Deleted {
            revisions: vec![rev(repo, &image1.manifest, &["test"], &[])],
            blobs: blobs(&gone),
            layer_links: vec![],
            notes: vec![],
        }
    );
}

/// Go: TestDeleteManifestIndexIfTagNotFound (v3.1.1 only). A tagged OCI index over two
/// untagged OCI images: `-m` keeps everything ("if len(before1) != len(beforeUntag1) {…}",
/// "if len(before2) != len(beforeUntag2) {…}"); after `Untag("test")` `-m` deletes blobs and
/// manifests ("if len(beforeUntag1) == len(after1) {…}", "if len(beforeUntag2) ==
/// len(after2) {…}").
#[tokio::test]
async fn delete_manifest_index_if_tag_not_found() {
    let repo = "deletemanifests";
    let f = Fixture::new();
    let image1 = go_image(&f, repo, "1", true);
    let image2 = go_image(&f, repo, "2", true);
    let d4 = go_oci_index(&f, repo, &[&image1.manifest, &image2.manifest]);
    f.tag(repo, "test", &d4);
    let o = scan(&f).await;

    assert_eq!(deleted(&o, V3_M), nothing());
    assert_eq!(deleted(&o, V3), nothing());
    assert_eq!(deleted(&o, V2_8), nothing());
    // 2.8 -m: the multi-arch bug. The children are untagged revisions: deleted, their config
    // and layers unmarked; the index marks only the children's manifest blobs.
    let mut children_content = vec![&image1.config];
    children_content.extend(image1.layers.iter());
    children_content.extend(image2.layers.iter());
    assert_eq!(
        deleted(&o, V2_8_M),
        Deleted {
            revisions: sorted(vec![
                rev(repo, &image1.manifest, &["test"], &[]),
                rev(repo, &image2.manifest, &["test"], &[]),
            ]),
            blobs: blobs(&children_content),
            layer_links: vec![],
            notes: vec![],
        }
    );

    // Untag: the in-memory driver deletes tags/test/ and keeps the empty tags/ directory,
    // so Tags().All is empty, not "unknown repository".
    untag(&f, repo, "test", &[&d4]);
    empty_dir(&f, format!("{REPOSITORIES}{repo}/_manifests/tags/"));
    let o = scan(&f).await;

    let mut everything = children_content.clone();
    everything.extend([&image1.manifest, &image2.manifest, &d4]);
    let all_revisions = sorted(vec![
        rev(repo, &image1.manifest, &[], &[]),
        rev(repo, &image2.manifest, &[], &[]),
        rev(repo, &d4, &[], &[]),
    ]);
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            revisions: all_revisions.clone(),
            blobs: blobs(&everything),
            layer_links: links(repo, &children_content),
            notes: vec![],
        }
    );
    assert_eq!(
        deleted(&o, V2_8_M),
        Deleted {
            revisions: all_revisions,
            blobs: blobs(&everything),
            layer_links: vec![],
            notes: vec![],
        }
    );
    assert_eq!(deleted(&o, V3), nothing());
    assert_eq!(deleted(&o, V2_8), nothing());
}

/// Not a Go test: TestDeleteManifestIndexIfTagNotFound's untag on an object store, where a
/// directory with no objects does not exist: after the last tag goes, `_manifests/tags/` is
/// gone. 3.x `-m` then skips every manifest (garbagecollect.go v3.1.1 L80-87) — blobs swept,
/// revision links kept; 2.8 `-m` stops.
#[tokio::test]
async fn delete_manifest_index_if_tag_not_found_without_tags_directory() {
    let repo = "deletemanifests";
    let f = Fixture::new();
    let image1 = go_image(&f, repo, "1", true);
    let image2 = go_image(&f, repo, "2", true);
    let d4 = go_oci_index(&f, repo, &[&image1.manifest, &image2.manifest]);
    f.tag(repo, "test", &d4);
    untag(&f, repo, "test", &[&d4]);
    let o = scan(&f).await;

    let mut content = vec![&image1.config];
    content.extend(image1.layers.iter());
    content.extend(image2.layers.iter());
    let mut everything = content.clone();
    everything.extend([&image1.manifest, &image2.manifest, &d4]);
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            revisions: vec![],
            blobs: blobs(&everything),
            layer_links: links(repo, &content),
            notes: no_tags_notes(repo, 3),
        }
    );
    let first = sorted(vec![&image1.manifest, &image2.manifest, &d4])[0];
    assert_no_tags_directory_abort(&o, repo, first);
}

/// Go: TestGCWithUnusedLayerLinkPath (v3.1.1 only). One untagged schema2 image in a
/// repository that never had a tag (no `_manifests/tags/`); `-m` must remove the layers'
/// `_layers` links: "_, err = d.Stat(ctx, layerLinkPath); if _, ok :=
/// err.(driver.PathNotFoundError); !ok { t.Fatalf("layer link path %s should be not found"…".
#[tokio::test]
async fn gc_with_unused_layer_link_path() {
    let repo = "unusedlayerlink";
    let f = Fixture::new();
    let image = go_image(&f, repo, "1", false);
    let o = scan(&f).await;

    // The manifest is skipped (no tags/), nothing is marked: every blob goes, and every
    // `_layers` link, the config's included; the revision link stays.
    let content = [&image.config, &image.layers[0], &image.layers[1]];
    let mut everything = content.to_vec();
    everything.push(&image.manifest);
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            revisions: vec![],
            blobs: blobs(&everything),
            layer_links: links(repo, &content),
            notes: no_tags_notes(repo, 1),
        }
    );
    assert_no_tags_directory_abort(&o, repo, &image.manifest);
    assert_eq!(deleted(&o, V3), nothing());
    assert_eq!(deleted(&o, V2_8), nothing());
}

/// Go: TestGCWithUnknownRepository (v3.1.1 only). A tagged image whose
/// `_manifests/tags/` directory was then deleted; `-m` must not fail: "if err != nil {
/// t.Fatalf("got error: %v, expected nil", err) }" (fixed in 3.x by PR #4331; 2.8 stops with
/// "failed to retrieve tags unknown repository").
#[tokio::test]
async fn gc_with_unknown_repository() {
    let repo = "nonexistentrepo";
    let f = Fixture::new();
    let image = go_image(&f, repo, "1", false);
    f.tag(repo, "image", &image.manifest);
    // d.Delete(ctx, manifestTagsPath)
    untag(&f, repo, "image", &[&image.manifest]);
    let o = scan(&f).await;

    let content = [&image.config, &image.layers[0], &image.layers[1]];
    let mut everything = content.to_vec();
    everything.push(&image.manifest);
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            revisions: vec![],
            blobs: blobs(&everything),
            layer_links: links(repo, &content),
            notes: no_tags_notes(repo, 1),
        }
    );
    let a = aborted(&o, V2_8_M);
    assert_eq!(
        a.message,
        "failed to garbage collect: failed to mark: failed to retrieve tags unknown repository name=nonexistentrepo"
    );
    assert_no_tags_directory_abort(&o, repo, &image.manifest);
    assert_eq!(deleted(&o, V3), nothing());
    assert_eq!(deleted(&o, V2_8), nothing());
}

/// Go: TestGCWithMissingManifests (v3.1.1; in v2.8.2 too, with a schema1 image: see
/// `gc_with_missing_manifests_v2_8_file`). One untagged image, then the repository's whole
/// `_manifests` directory deleted; GC must succeed and leave no blob: "blobs :=
/// allBlobs(t, registry); if len(blobs) > 0 { t.Errorf("unexpected blobs after gc") }".
#[tokio::test]
async fn gc_with_missing_manifests() {
    let repo = "testrepo";
    let f = Fixture::new();
    let image = go_image(&f, repo, "1", false);
    delete_manifest(&f, repo, &image.manifest); // the only key under _manifests/
    let o = scan(&f).await;

    let everything = blobs(&[
        &image.manifest,
        &image.config,
        &image.layers[0],
        &image.layers[1],
    ]);
    // 3.x finds repositories by _manifests: this one is never visited, so its _layers links
    // are not considered. 2.8 finds it by _layers and tolerates the missing revisions
    // directory (PathNotFoundError, v2.8.2 garbagecollect.go L101-108).
    for model in GcModel::ALL {
        assert_eq!(
            deleted(&o, model),
            Deleted {
                blobs: everything.clone(),
                ..nothing()
            },
            "{model}"
        );
    }
}

/// Go: TestGCWithMissingManifests as in v2.8.2 (schema1 image, no config blob).
#[tokio::test]
async fn gc_with_missing_manifests_v2_8_file() {
    let repo = "testrepo";
    let f = Fixture::new();
    let image = go_schema1_image(&f, repo, "1");
    delete_manifest(&f, repo, &image.manifest);
    let o = scan(&f).await;
    let everything = blobs(&[&image.manifest, &image.layers[0], &image.layers[1]]);
    for model in GcModel::ALL {
        assert_eq!(
            deleted(&o, model),
            Deleted {
                blobs: everything.clone(),
                ..nothing()
            },
            "{model}"
        );
    }
}

/// Not a Go test: "missing manifest" the other way round — the revision link is there but
/// the manifest blob is gone. The link enumerator skips it (`lbs.Stat` returns
/// ErrBlobUnknown: "we expect this error to occur so we move on", linkedblobstore.go v3.1.1
/// L255-263), so nothing marks the config and layers, `-m` never looks up its tags, and the
/// dangling revision link stays.
#[tokio::test]
async fn revision_link_without_manifest_blob_is_skipped() {
    let repo = "testrepo";
    let f = Fixture::new();
    let image = go_image(&f, repo, "1", false);
    f.remove(&Key::BlobData {
        digest: image.manifest.clone(),
    });
    let o = scan(&f).await;
    let content = [&image.config, &image.layers[0], &image.layers[1]];
    let expected_3 = Deleted {
        revisions: vec![],
        blobs: blobs(&content),
        layer_links: links(repo, &content),
        notes: vec![],
    };
    let expected_2_8 = Deleted {
        layer_links: vec![],
        ..expected_3.clone()
    };
    assert_eq!(deleted(&o, V3), expected_3);
    assert_eq!(deleted(&o, V3_M), expected_3);
    assert_eq!(deleted(&o, V2_8), expected_2_8);
    assert_eq!(deleted(&o, V2_8_M), expected_2_8);
}

/// Go: TestDeletionHasEffect (v3.1.1 and v2.8.2). Three untagged images, 2 and 3 deleted by
/// digest; GC without `-m` keeps image 1 ("if _, ok := blobs[image1.manifestDigest]; !ok
/// {…}", same for its layers) and sweeps the layers of 2 and 3 ("if _, ok := blobs[layer];
/// ok { t.Fatalf("manifest 2 layer is present…") }").
#[tokio::test]
async fn deletion_has_effect() {
    let repo = "komnenos";
    let f = Fixture::new();
    let image1 = go_image(&f, repo, "1", false);
    let image2 = go_image(&f, repo, "2", false);
    let image3 = go_image(&f, repo, "3", false);
    delete_manifest(&f, repo, &image2.manifest);
    delete_manifest(&f, repo, &image3.manifest);
    let o = scan(&f).await;

    let layers23: Vec<&Digest> = image2.layers.iter().chain(image3.layers.iter()).collect();
    let mut gone = layers23.clone();
    gone.extend([&image2.manifest, &image3.manifest]);
    let expected_2_8 = Deleted {
        blobs: blobs(&gone),
        ..nothing()
    };
    assert_eq!(deleted(&o, V2_8), expected_2_8);
    assert_eq!(
        deleted(&o, V3),
        Deleted {
            layer_links: links(repo, &layers23),
            ..expected_2_8
        }
    );

    // Not in the Go test: -m in a repository without tags/.
    let mut links_all = layers23.clone();
    links_all.extend(image1.layers.iter());
    links_all.push(&image1.config);
    let mut everything = links_all.clone();
    everything.extend([&image1.manifest, &image2.manifest, &image3.manifest]);
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            revisions: vec![],
            blobs: blobs(&everything),
            layer_links: links(repo, &links_all),
            notes: no_tags_notes(repo, 1),
        }
    );
    assert_no_tags_directory_abort(&o, repo, &image1.manifest);
}

/// Go: TestDeletionWithSharedLayer (v3.1.1 and v2.8.2). Manifest 2 shares one layer of
/// manifest 1 and is deleted by digest; every layer of manifest 1 must stay ("for dgst :=
/// range randomLayers1 { if _, ok := blobs[dgst]; !ok { t.Fatalf("random layer 1 blob
/// missing…") } }"). The Go test never calls MarkAndSweep (it checks the blob store right
/// after the delete); here the GC it is named after runs, without `-m` as in its siblings.
#[tokio::test]
async fn deletion_with_shared_layer() {
    let repo = "tzimiskes";
    let f = Fixture::new();
    let layers1 = go_layers(&f, repo, "1", 3);
    let layers2 = go_layers(&f, repo, "2", 3);
    let manifest1 = go_manifest(&f, repo, &layers1, false);
    let shared = layers1[0].clone();
    let mut refs2 = layers2.clone();
    refs2.push(shared);
    let manifest2 = go_manifest(&f, repo, &refs2, false);
    delete_manifest(&f, repo, &manifest2.manifest);
    let o = scan(&f).await;

    let only2: Vec<&Digest> = layers2.iter().collect();
    let mut gone = only2.clone();
    gone.push(&manifest2.manifest);
    let expected_2_8 = Deleted {
        blobs: blobs(&gone),
        ..nothing()
    };
    assert_eq!(deleted(&o, V2_8), expected_2_8);
    assert_eq!(
        deleted(&o, V3),
        Deleted {
            layer_links: links(repo, &only2),
            ..expected_2_8
        }
    );

    // Not in the Go test: -m in a repository without tags/.
    let mut links_all: Vec<&Digest> = layers1.iter().chain(layers2.iter()).collect();
    links_all.push(&manifest1.config);
    let mut everything = links_all.clone();
    everything.extend([&manifest1.manifest, &manifest2.manifest]);
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            revisions: vec![],
            blobs: blobs(&everything),
            layer_links: links(repo, &links_all),
            notes: no_tags_notes(repo, 1),
        }
    );
    assert_no_tags_directory_abort(&o, repo, &manifest1.manifest);
}

/// Go: TestOrphanBlobDeleted (v3.1.1 and v2.8.2). A layer uploaded into the repository and
/// never referenced, next to an untagged image; GC without `-m` must delete it ("if _, ok :=
/// blobs[dgst]; ok { t.Fatalf("Orphan layer is present…") }"). 3.x also deletes its `_layers`
/// link.
#[tokio::test]
async fn orphan_blob_deleted() {
    let repo = "michael_z_doukas";
    let f = Fixture::new();
    let orphan = go_layers(&f, repo, "orphan", 1).remove(0);
    let image = go_image(&f, repo, "1", false);
    let o = scan(&f).await;

    assert_eq!(
        deleted(&o, V2_8),
        Deleted {
            blobs: blobs(&[&orphan]),
            ..nothing()
        }
    );
    assert_eq!(
        deleted(&o, V3),
        Deleted {
            blobs: blobs(&[&orphan]),
            layer_links: links(repo, &[&orphan]),
            ..nothing()
        }
    );

    // Not in the Go test: -m in a repository without tags/.
    let content = [&orphan, &image.config, &image.layers[0], &image.layers[1]];
    let mut everything = content.to_vec();
    everything.push(&image.manifest);
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            revisions: vec![],
            blobs: blobs(&everything),
            layer_links: links(repo, &content),
            notes: no_tags_notes(repo, 1),
        }
    );
    assert_no_tags_directory_abort(&o, repo, &image.manifest);
}

/// The state of TestTaggedManifestlistWithUntaggedManifest: two untagged schema2 images and
/// a manifest list over them tagged `test`.
fn tagged_list_with_untagged_manifests(f: &Fixture, repo: &str) -> (GoImage, GoImage, Digest) {
    let image1 = go_image(f, repo, "1", false);
    let image2 = go_image(f, repo, "2", false);
    let list = go_manifest_list(f, repo, &[&image1, &image2]);
    f.tag(repo, "test", &list);
    (image1, image2, list)
}

/// Go: TestTaggedManifestlistWithUntaggedManifest (v3.1.1 only; the 2.8 behaviour is the
/// motivating bug). `-m` must keep every blob ("if len(before) != len(after) {…}") and the
/// three manifests. 3.x recurses from the tagged list into its children (markManifestReferences,
/// garbagecollect.go v3.1.1 L217-240) and then drops them from the deletion list
/// (unmarkReferencedManifest, L202-215). 2.8 `-m` deletes both children's revision links and
/// their config and layers: the tag stays and no platform can be pulled.
#[tokio::test]
async fn tagged_manifestlist_with_untagged_manifest() {
    let repo = "foo/taggedlist/untaggedmanifest";
    let f = Fixture::new();
    let (image1, image2, _list) = tagged_list_with_untagged_manifests(&f, repo);
    let o = scan(&f).await;

    assert_eq!(deleted(&o, V3_M), nothing());
    let mut swept = vec![&image1.config];
    swept.extend(image1.layers.iter());
    swept.extend(image2.layers.iter());
    assert_eq!(
        deleted(&o, V2_8_M),
        Deleted {
            revisions: sorted(vec![
                rev(repo, &image1.manifest, &["test"], &[]),
                rev(repo, &image2.manifest, &["test"], &[]),
            ]),
            blobs: blobs(&swept),
            layer_links: vec![],
            notes: vec![],
        }
    );
    assert_eq!(deleted(&o, V3), nothing());
    assert_eq!(deleted(&o, V2_8), nothing());
}

/// Go: TestUnTaggedManifestlistWithUntaggedManifest (v3.1.1 only). Nothing is tagged (the
/// repository has no tags/ at all); `-m` must leave no blob: "if len(after) != 0 {…}". 3.x
/// gets there by skipping every manifest (garbagecollect.go v3.1.1 L80-87): all blobs and
/// `_layers` links go, the three revision links stay. 2.8 stops.
#[tokio::test]
async fn untagged_manifestlist_with_untagged_manifest() {
    let repo = "foo/untaggedlist/untaggedmanifest";
    let f = Fixture::new();
    let image1 = go_image(&f, repo, "1", false);
    let image2 = go_image(&f, repo, "2", false);
    let list = go_manifest_list(&f, repo, &[&image1, &image2]);
    let o = scan(&f).await;

    let mut content = vec![&image1.config];
    content.extend(image1.layers.iter());
    content.extend(image2.layers.iter());
    let mut everything = content.clone();
    everything.extend([&image1.manifest, &image2.manifest, &list]);
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            revisions: vec![],
            blobs: blobs(&everything),
            layer_links: links(repo, &content),
            notes: no_tags_notes(repo, 3),
        }
    );
    let first = sorted(vec![&image1.manifest, &image2.manifest, &list])[0];
    assert_no_tags_directory_abort(&o, repo, first);
    assert_eq!(deleted(&o, V3), nothing());
    assert_eq!(deleted(&o, V2_8), nothing());
}

/// Go: TestUnTaggedManifestlistWithTaggedManifest (v3.1.1 only). Both images tagged, the
/// list over them untagged; `-m` must delete the list ("if _, ok := after[dgst]; ok {
/// t.Fatal("Untagged manifestlist still exists") }") and keep both manifests' revisions
/// ("if _, ok := afterManifests[image1.manifestDigest]; !ok {…}"). 2.8 does the same.
#[tokio::test]
async fn untagged_manifestlist_with_tagged_manifest() {
    let repo = "foo/untaggedlist/taggedmanifest";
    let f = Fixture::new();
    let (o, list) = untagged_list_with_tagged_manifests(&f, repo).await;

    let expected = Deleted {
        revisions: vec![rev(repo, &list, &["image1", "image2"], &[])],
        blobs: blobs(&[&list]),
        layer_links: vec![],
        notes: vec![],
    };
    assert_eq!(deleted(&o, V3_M), expected);
    assert_eq!(deleted(&o, V2_8_M), expected);
    assert_eq!(deleted(&o, V3), nothing());
    assert_eq!(deleted(&o, V2_8), nothing());
}

async fn untagged_list_with_tagged_manifests(f: &Fixture, repo: &str) -> (AuditOutcome, Digest) {
    let image1 = go_image(f, repo, "1", false);
    let image2 = go_image(f, repo, "2", false);
    f.tag(repo, "image1", &image1.manifest);
    f.tag(repo, "image2", &image2.manifest);
    let list = go_manifest_list(f, repo, &[&image1, &image2]);
    (scan(f).await, list)
}

/// Go: TestTaggedManifestlistWithDeletedReference (v3.1.1 only). Despite its name the list
/// is never tagged; both images are deleted by digest. `-m` must leave no blob: "if
/// len(after) != 0 {…}". The repository has no tags/: 3.x skips the list and sweeps
/// everything; 2.8 stops. Without `-m` the list is marked with its children's digests, and
/// (3.x) not recursed into them since they no longer exist in the repository.
#[tokio::test]
async fn tagged_manifestlist_with_deleted_reference() {
    let repo = "foo/untaggedlist/deleteref";
    let f = Fixture::new();
    let image1 = go_image(&f, repo, "1", false);
    let image2 = go_image(&f, repo, "2", false);
    let list = go_manifest_list(&f, repo, &[&image1, &image2]);
    delete_manifest(&f, repo, &image1.manifest);
    delete_manifest(&f, repo, &image2.manifest);
    let o = scan(&f).await;

    let mut content = vec![&image1.config];
    content.extend(image1.layers.iter());
    content.extend(image2.layers.iter());
    let mut everything = content.clone();
    everything.extend([&image1.manifest, &image2.manifest, &list]);
    assert_eq!(
        deleted(&o, V3_M),
        Deleted {
            revisions: vec![],
            blobs: blobs(&everything),
            layer_links: links(repo, &content),
            notes: no_tags_notes(repo, 1),
        }
    );
    assert_no_tags_directory_abort(&o, repo, &list);
    assert_eq!(
        deleted(&o, V3),
        Deleted {
            blobs: blobs(&content),
            layer_links: links(repo, &content),
            ..nothing()
        }
    );
    assert_eq!(
        deleted(&o, V2_8),
        Deleted {
            blobs: blobs(&content),
            ..nothing()
        }
    );
}

// ---------------------------------------------------------------------------------------
// Where the collectors stop.
// ---------------------------------------------------------------------------------------

/// A revision link whose content is not a digest: the link enumerator's `readlink` fails
/// ("invalid checksum digest format") and every collector stops (linkedblobstore.go
/// v3.1.1 L249-253; same code in v2.8.2).
#[tokio::test]
async fn bad_revision_link_stops_every_model() {
    let repo = "a";
    let f = Fixture::new();
    let image = go_image(&f, repo, "1", false);
    f.tag(repo, "t", &image.manifest);
    let key = Key::RevisionLink {
        repo: repo.to_string(),
        digest: image.manifest.clone(),
    };
    f.put(&key, b"garbage".to_vec());
    let o = scan(&f).await;
    for model in GcModel::ALL {
        let a = aborted(&o, model);
        assert_eq!(
            (
                a.reason,
                a.repository.as_deref(),
                a.digest.clone(),
                a.key.clone(),
                a.message.as_str()
            ),
            (
                "bad-link",
                Some(repo),
                Some(image.manifest.to_string()),
                key.to_path(),
                "failed to garbage collect: failed to mark: invalid checksum digest format"
            ),
            "{model}"
        );
    }
}

/// A tagged manifest that is not JSON: every collector marks it, fails to `Get` it and stops
/// ("failed to retrieve manifest for digest …", garbagecollect.go v2.8.2 L87-90, v3.1.1
/// L219-222). A healthy image keeps the repository visible to 2.8 (`_layers`).
#[tokio::test]
async fn unparseable_tagged_manifest_stops_every_model() {
    let repo = "a";
    let f = Fixture::new();
    let image = go_image(&f, repo, "1", false);
    f.tag(repo, "ok", &image.manifest);
    let bad = f.manifest(repo, b"<html>502 Bad Gateway</html>");
    f.tag(repo, "bad", &bad);
    let o = scan(&f).await;
    for model in GcModel::ALL {
        let a = aborted(&o, model);
        assert_eq!(
            (
                a.reason,
                a.repository.as_deref(),
                a.digest.clone(),
                a.key.clone()
            ),
            (
                "unparseable-manifest",
                Some(repo),
                Some(bad.to_string()),
                Key::BlobData {
                    digest: bad.clone()
                }
                .to_path()
            ),
            "{model}"
        );
        assert!(
            a.message.starts_with(&format!(
                "failed to garbage collect: failed to mark: failed to retrieve manifest for digest {bad}: "
            )),
            "{model}: {}",
            a.message
        );
    }
}

/// A tagged schema1 manifest: 2.8 reads it (`fsLayers` are its references) and completes;
/// 3.x only reads `schemaVersion` 2 and stops ("unrecognized manifest schema version 1",
/// manifeststore.go v3.1.1 L131).
#[tokio::test]
async fn schema1_tagged_manifest_stops_only_3x() {
    let repo = "old";
    let f = Fixture::new();
    let image = go_schema1_image(&f, repo, "1");
    f.tag(repo, "v1", &image.manifest);
    let o = scan(&f).await;
    assert_eq!(deleted(&o, V2_8), nothing());
    assert_eq!(deleted(&o, V2_8_M), nothing());
    for model in [V3, V3_M] {
        let a = aborted(&o, model);
        assert_eq!(
            (a.reason, a.repository.as_deref(), a.digest.clone()),
            (
                "unsupported-manifest",
                Some(repo),
                Some(image.manifest.to_string())
            ),
            "{model}"
        );
        assert_eq!(
            a.message,
            format!("failed to garbage collect: failed to mark: failed to retrieve manifest for digest {}: unrecognized manifest schema version 1", image.manifest)
        );
    }
}

/// A `data` file under blobs/ whose path is not a digest: the sweep's blob enumeration
/// fails in `digestFromPath` ("error enumerating blobs", garbagecollect.go v3.1.1
/// L158-167, v2.8.2 L129-138) and every collector stops.
#[tokio::test]
async fn bad_blob_path_stops_every_model() {
    let repo = "a";
    let f = Fixture::new();
    let image = go_image(&f, repo, "1", false);
    f.tag(repo, "t", &image.manifest);
    let bad = "docker/registry/v2/blobs/sha256/ab/abc/data".to_string();
    f.storage.put_at(bad.clone(), b"x".to_vec(), old_time());
    let o = scan(&f).await;
    for model in GcModel::ALL {
        let a = aborted(&o, model);
        assert_eq!(
            (
                a.reason,
                a.repository.clone(),
                a.digest.clone(),
                a.key.clone()
            ),
            ("bad-blob-path", None, None, bad.clone()),
            "{model}"
        );
    }
}

/// Not a Go test. A repository with `_manifests` but no `_layers` directory (here: a second
/// repository holding a tagged manifest by revision link only). 3.x enumerates every
/// repository's `_layers` links after marking it and returns the enumerator's error as is
/// (garbagecollect.go v3.1.1 L122-138: "err = layerEnumerator.Enumerate(ctx, …) … return
/// err"); unlike the manifest enumeration (L112-121) a PathNotFoundError is not tolerated.
/// On the filesystem (and in-memory) driver `Walk` is `WalkFallback`, whose first
/// `driver.List(ctx, from)` of a missing directory returns PathNotFoundError
/// (driver/walk.go v3.1.1 `doWalkFallback`: "children, err := driver.List(ctx, from); if err
/// != nil { return false, err }"; filesystem driver.go L267-276), so the run stops with
/// "failed to mark: Path not found: /docker/registry/v2/repositories/mirror/_layers". The
/// S3 driver's `Walk` returns nil for an empty prefix (s3.go v3.1.1 L1049-1061), so on an
/// object store the run completes.
#[tokio::test]
async fn repository_without_layers_directory_stops_3x_on_filesystem() {
    let f = Fixture::new();
    let image = go_image(&f, "src", "1", false);
    f.tag("src", "t", &image.manifest);
    f.put(
        &Key::RevisionLink {
            repo: "mirror".into(),
            digest: image.manifest.clone(),
        },
        image.manifest.to_string(),
    );
    f.tag("mirror", "t", &image.manifest);
    let o = scan(&f).await;
    assert_eq!(o.driver, Driver::Filesystem);

    // 2.8 does not see `mirror` (no _layers) and keeps everything `src` marks.
    assert_eq!(deleted(&o, V2_8), nothing());
    assert_eq!(deleted(&o, V2_8_M), nothing());
    // Object store: 3.x completes.
    for model in [V3, V3_M] {
        match gc::plan(&o.graph, model, Driver::ObjectStore) {
            GcPlan::Completes(d) => assert_eq!(to_deleted(&o, &d), nothing(), "{model}"),
            other => panic!("{model}: {other:?}"),
        }
    }
    // Filesystem: 3.x stops at `mirror` ("mirror" sorts before "src").
    for model in [V3, V3_M] {
        match plan(&o, model) {
            GcPlan::Aborts(a) => {
                assert_eq!(a.repository.as_deref(), Some("mirror"), "{model}");
                assert!(
                    a.key.starts_with(&format!("{REPOSITORIES}mirror/_layers")),
                    "{model}: {}",
                    a.key
                );
            }
            other => panic!(
                "{model}: 3.x on the filesystem driver stops with `failed to mark: Path not \
                 found: /docker/registry/v2/repositories/mirror/_layers`; the model predicts {other:?}"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Dry-run output and unsafe deletions.
// ---------------------------------------------------------------------------------------

/// TestDeleteManifestIfTagNotFound's dry run (`DryRun: true, RemoveUntagged: true`), as the
/// two collectors print its eligibility lines: 2.8 `manifest eligible for deletion: <digest>`
/// (garbagecollect.go v2.8.2 L71), 3.x the whole ManifestDel struct with `%s` (v3.1.1 L208)
/// and one `<repo>: layer link eligible for deletion: <digest>` per link (L187).
#[tokio::test]
async fn eligible_lines_of_delete_manifest_if_tag_not_found() {
    let repo = "deletemanifests";
    let f = Fixture::new();
    let (first, _last) = delete_manifest_if_tag_not_found_state(&f, repo, false);
    let o = scan(&f).await;

    let mut blob_lines: Vec<String> = std::iter::once(&first.manifest)
        .chain(first.layers.iter())
        .map(|d| format!("blob eligible for deletion: {d}"))
        .collect();
    blob_lines.sort();

    let d = plan(&o, V2_8_M);
    let mut expected = blob_lines.clone();
    expected.push(format!(
        "manifest eligible for deletion: {}",
        first.manifest
    ));
    assert_eq!(
        gc::eligible_lines(&o.graph, V2_8_M, d.deletions().unwrap()),
        expected
    );

    let d = plan(&o, V3_M);
    let mut expected = blob_lines;
    let mut layer_lines: Vec<String> = first
        .layers
        .iter()
        .map(|l| format!("deletemanifests: layer link eligible for deletion: {l}"))
        .collect();
    layer_lines.sort();
    expected.extend(layer_lines);
    expected.push(format!(
        "manifest eligible for deletion: {{deletemanifests {} [test]}}",
        first.manifest
    ));
    assert_eq!(
        gc::eligible_lines(&o.graph, V3_M, d.deletions().unwrap()),
        expected
    );
}

/// TestUnTaggedManifestlistWithTaggedManifest's 3.x `-m` dry run: the ManifestDel of the
/// list carries every tag of the repository, space-separated by `%s` of a `[]string`.
#[tokio::test]
async fn eligible_lines_of_untagged_manifestlist_with_tagged_manifest() {
    let repo = "foo/untaggedlist/taggedmanifest";
    let f = Fixture::new();
    let (o, list) = untagged_list_with_tagged_manifests(&f, repo).await;
    let d = plan(&o, V3_M);
    assert_eq!(
        gc::eligible_lines(&o.graph, V3_M, d.deletions().unwrap()),
        vec![
            format!("blob eligible for deletion: {list}"),
            format!("manifest eligible for deletion: {{{repo} {list} [image1 image2]}}"),
        ]
    );
    let d = plan(&o, V2_8_M);
    assert_eq!(
        gc::eligible_lines(&o.graph, V2_8_M, d.deletions().unwrap()),
        vec![
            format!("blob eligible for deletion: {list}"),
            format!("manifest eligible for deletion: {list}"),
        ]
    );
}

/// gc-unsafe rows of a tagged multi-arch index with untagged children (the state of
/// TestTaggedManifestlistWithUntaggedManifest, with distinct configs and real platforms):
/// 2.8 `-m` deletes both children's revisions and every config and layer, each needed by
/// `app:v1 <platform>`; 3.x `-m` deletes nothing needed.
#[tokio::test]
async fn tagged_index_with_untagged_children_unsafe_deletions() {
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
    let o = scan(&f).await;

    type Row = (String, String, String, String, String, Option<u64>, String);
    let rows = |model: GcModel| -> Vec<Row> {
        let p = plan(&o, model);
        let mut rows: Vec<Row> = gc::unsafe_deletions(&o.graph, &o.marks, model, &p)
            .unwrap()
            .rows
            .into_iter()
            .map(|r| {
                (
                    r.model.to_string(),
                    r.action.to_string(),
                    r.repository.to_string(),
                    r.digest.to_string(),
                    r.kind.to_string(),
                    r.size,
                    r.needed_by.to_string(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    let mut expected: Vec<Row> = Vec::new();
    for (img, platform) in [(&amd, "linux/amd64"), (&arm, "linux/arm64")] {
        let mut content = vec![
            ("delete-revision", &img.manifest, "manifest"),
            ("delete-blob", &img.config, "config"),
        ];
        content.extend(img.layers.iter().map(|l| ("delete-blob", l, "layer")));
        for (action, d, kind) in content {
            let size = gc_core::storage::Storage::head(
                &f.storage,
                &Key::BlobData { digest: d.clone() }.to_path(),
            )
            .await
            .unwrap()
            .unwrap()
            .size;
            expected.push((
                "distribution-2.8-m".into(),
                action.into(),
                "app".into(),
                d.to_string(),
                kind.into(),
                Some(size),
                format!("app:v1 {platform}"),
            ));
        }
    }
    expected.sort();
    assert_eq!(rows(V2_8_M), expected);
    assert_eq!(rows(V3_M), Vec::<Row>::new());
    assert_eq!(rows(V2_8), Vec::<Row>::new());
    assert_eq!(rows(V3), Vec::<Row>::new());
}
