//! Integration tests against the real docker-registry 2.8.2. They fail (never skip) when
//! `docker-registry` is not installed: the error carries the install command.

use std::collections::BTreeSet;

use anyhow::{ensure, Context as _, Result};
use gc_testkit::image::{
    attestation_for, media_types, seeded_bytes, sha256_digest, Blob, Format, Image, MultiArch,
    Platform,
};
use gc_testkit::{run_gc, Registry, ACCEPT_ALL_MANIFESTS};

fn set<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

struct Fixture {
    base: Blob,
    single: Image,
    untagged: Image,
    multi: MultiArch,
    orphan: String,
}

const SINGLE: &str = "demo/single";
const MULTI: &str = "demo/multi/app";

/// Push: demo/single:latest (Docker, base + 1 layer), an untagged OCI image in demo/single, an
/// orphan blob in demo/single, and demo/multi/app:v1 (OCI index: amd64 + arm64 sharing the
/// base layer, plus an attestation for amd64).
fn push_fixture(reg: &Registry) -> Result<Fixture> {
    let client = reg.client();
    let base = Blob::layer(Format::Docker, "test/base");
    let single = Image::builder(Format::Docker, "test/single", Platform::linux_amd64())
        .layer(base.clone())
        .unique_layers(1)
        .build()?;
    let pushed = client.push_image(SINGLE, &single, Some("latest"), None)?;
    assert_eq!(pushed.manifest, single.manifest.digest);
    assert!(pushed.mounted.is_empty());

    let untagged = Image::builder(Format::Oci, "test/untagged", Platform::linux_amd64())
        .unique_layers(1)
        .build()?;
    client.push_image(SINGLE, &untagged, None, None)?;
    let orphan = client.push_blob(SINGLE, &seeded_bytes("test/orphan", 1200))?;

    let child = |seed: &str, platform: Platform| {
        Image::builder(Format::Oci, seed, platform)
            .layer(Blob {
                media_type: media_types::OCI_LAYER.to_string(),
                ..base.clone()
            })
            .unique_layers(1)
            .build()
    };
    let amd64 = child("test/multi/amd64", Platform::linux_amd64())?;
    let arm64 = child("test/multi/arm64", Platform::new("linux", "arm64"))?;
    let att = attestation_for(&amd64.manifest, "test/multi/att");
    let multi = MultiArch::builder(Format::Oci)
        .image(amd64.clone())
        .image(arm64)
        .attestation(att, &amd64.manifest.digest)
        .build()?;
    let pushed = client.push_multi_arch(MULTI, &multi, Some("v1"), Some(SINGLE))?;
    assert_eq!(pushed.index, multi.index.digest);
    // The base layer was mounted into both platform children, nothing else.
    assert_eq!(pushed.children[0].mounted, vec![base.digest.clone()]);
    assert_eq!(pushed.children[1].mounted, vec![base.digest.clone()]);
    assert!(pushed.children[2].mounted.is_empty());
    Ok(Fixture {
        base,
        single,
        untagged,
        multi,
        orphan,
    })
}

#[test]
fn dry_run_delete_untagged_lists_children_of_tagged_index() -> Result<()> {
    let root = tempfile::tempdir()?;
    let reg = Registry::start(root.path())?;
    let client = reg.client();
    let fx = push_fixture(&reg)?;

    // Pull back.
    let index = client
        .get_manifest(MULTI, "v1", ACCEPT_ALL_MANIFESTS)?
        .context("demo/multi/app:v1 not found")?;
    assert_eq!(index.bytes, fx.multi.index.bytes);
    assert_eq!(index.digest, fx.multi.index.digest);
    assert_eq!(index.content_type, media_types::OCI_INDEX);
    for e in &fx.multi.entries {
        let m = client
            .get_manifest(MULTI, &e.image.manifest.digest, ACCEPT_ALL_MANIFESTS)?
            .context("child not found")?;
        assert_eq!(m.bytes, e.image.manifest.bytes);
        for b in e.image.blobs() {
            assert!(client.blob_exists(MULTI, &b.digest)?, "{}", b.digest);
        }
    }
    let single = client
        .get_manifest(SINGLE, "latest", ACCEPT_ALL_MANIFESTS)?
        .context("demo/single:latest not found")?;
    assert_eq!(single.bytes, fx.single.manifest.bytes);
    assert_eq!(single.content_type, media_types::DOCKER_MANIFEST);
    assert_eq!(
        client.get_blob(SINGLE, &fx.single.layers[1].digest)?,
        Some(fx.single.layers[1].bytes.clone())
    );
    assert!(client.manifest_exists(SINGLE, &fx.untagged.manifest.digest)?);
    assert!(client
        .get_manifest(SINGLE, "nope", ACCEPT_ALL_MANIFESTS)?
        .is_none());
    assert!(!client.blob_exists(MULTI, &sha256_digest(b"absent"))?);
    assert_eq!(client.tags(SINGLE)?, vec!["latest".to_string()]);
    assert_eq!(client.tags(MULTI)?, vec!["v1".to_string()]);

    let config = reg.stop()?;
    let gc = run_gc(config.path(), true, true)?;
    gc.ensure_success()?;
    let out = &gc.output;
    assert_eq!(
        out.repositories,
        vec![MULTI.to_string(), SINGLE.to_string()]
    );

    // Every child of the tagged index is "untagged" for 2.8.2, as is the untagged image.
    let children = set(fx
        .multi
        .entries
        .iter()
        .map(|e| e.image.manifest.digest.clone()));
    assert_eq!(out.eligible_manifests_by_repo[MULTI], children);
    assert_eq!(
        out.eligible_manifests_by_repo[SINGLE],
        set([fx.untagged.manifest.digest.clone()])
    );
    let mut all_manifests = children.clone();
    all_manifests.insert(fx.untagged.manifest.digest.clone());
    assert_eq!(out.eligible_manifests, all_manifests);

    // Blobs: the children's configs and unique layers (the attestation's too), the untagged
    // image's manifest, config and layer, the orphan. Not the base layer, not the child
    // manifest blobs (the index marks their digests), not the tagged single-arch image.
    let mut want = BTreeSet::new();
    for e in &fx.multi.entries {
        want.extend(
            e.image
                .blobs()
                .into_iter()
                .filter(|b| b.digest != fx.base.digest)
                .map(|b| b.digest.clone()),
        );
    }
    want.insert(fx.untagged.manifest.digest.clone());
    want.extend(fx.untagged.blobs().into_iter().map(|b| b.digest.clone()));
    want.insert(fx.orphan.clone());
    assert_eq!(out.eligible_blobs, want);
    assert!(!out.eligible_blobs.contains(&fx.base.digest));
    for c in &children {
        assert!(!out.eligible_blobs.contains(c));
        assert!(out.marked_blobs.contains(c));
    }
    assert_eq!(
        out.marked_manifests,
        set([
            fx.multi.index.digest.clone(),
            fx.single.manifest.digest.clone()
        ])
    );
    let summary = out.summary.context("no summary line")?;
    assert_eq!(summary.blobs_eligible, want.len() as u64);
    assert_eq!(summary.manifests_eligible, all_manifests.len() as u64);
    // index + 3 children + single manifest + config + 2 layers
    assert_eq!(summary.marked, 8);
    assert!(
        gc.stderr.trim().is_empty(),
        "dry run wrote to stderr: {}",
        gc.stderr
    );

    // Without --delete-untagged only the orphan blob is eligible.
    let gc = run_gc(config.path(), true, false)?;
    gc.ensure_success()?;
    assert!(gc.output.eligible_manifests.is_empty());
    assert_eq!(gc.output.eligible_blobs, set([fx.orphan.clone()]));

    // A dry run deleted nothing: everything still pulls.
    let reg = Registry::start(root.path())?;
    let client = reg.client();
    for e in &fx.multi.entries {
        assert!(client.manifest_exists(MULTI, &e.image.manifest.digest)?);
        for b in e.image.blobs() {
            assert!(client.blob_exists(MULTI, &b.digest)?);
        }
    }
    assert!(client.blob_exists(SINGLE, &fx.orphan)?);
    Ok(())
}

#[test]
fn real_delete_untagged_breaks_tagged_manifest_list() -> Result<()> {
    let root = tempfile::tempdir()?;
    let reg = Registry::start(root.path())?;
    let client = reg.client();
    let base = Blob::layer(Format::Docker, "real/base");
    let child = |seed: &str, platform: Platform| {
        Image::builder(Format::Docker, seed, platform)
            .layer(base.clone())
            .unique_layers(1)
            .build()
    };
    let list = MultiArch::builder(Format::Docker)
        .image(child("real/amd64", Platform::linux_amd64())?)
        .image(child(
            "real/armv7",
            Platform::with_variant("linux", "arm", "v7"),
        )?)
        .build()?;
    client.push_multi_arch("web", &list, Some("stable"), None)?;
    let config = reg.stop()?;

    let gc = run_gc(config.path(), false, true)?;
    gc.ensure_success()?;
    let deletions = gc.deletion_log();
    // 2 revision links + 2 configs + 2 unique layers; the base layer is swept too, since
    // nothing marks it (only the children reference it).
    ensure!(
        deletions
            .iter()
            .filter(|d| d.starts_with("deleting manifest:"))
            .count()
            == 2,
        "{deletions:?}"
    );
    ensure!(
        deletions
            .iter()
            .filter(|d| d.starts_with("Deleting blob:"))
            .count()
            == 5,
        "{deletions:?}"
    );
    assert!(gc.output.eligible_blobs.contains(&base.digest));

    let reg = Registry::start(root.path())?;
    let client = reg.client();
    let index = client
        .get_manifest("web", "stable", ACCEPT_ALL_MANIFESTS)?
        .context("tag gone")?;
    assert_eq!(index.digest, list.index.digest);
    for e in &list.entries {
        assert!(!client.manifest_exists("web", &e.image.manifest.digest)?);
        for b in e.image.blobs() {
            assert!(!client.blob_exists("web", &b.digest)?, "{}", b.digest);
        }
        // The child manifest blob itself survives (the index marked it), only unlinked.
        let hex = e.image.manifest.digest.trim_start_matches("sha256:");
        let data = root
            .path()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data");
        assert!(data.is_file(), "{}", data.display());
    }
    Ok(())
}
