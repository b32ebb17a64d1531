//! The sample registry tree (`examples/registry`) written by the `make-sample` binary: what is
//! pushed, in which order, the real `garbage-collect --delete-untagged` run that damages
//! `team/web`, and the copy of the storage tree with its digest list.
//!
//! Push order (every byte derived from fixed seeds, so two runs give identical trees):
//! 1. `library/hello`: Docker schema2 image, 2 layers (the first is the *base layer*), tags
//!    `1.0` and `latest`.
//! 2. `team/web`: Docker manifest list tagged `stable`: linux/amd64 and linux/arm/v7, each with
//!    its own config, the base layer (mounted from library/hello) and one unique layer.
//! 3. Registry stopped; real `docker-registry garbage-collect --delete-untagged` (2.8.2 deletes
//!    the team/web children's revision links and their configs and unique layers); registry
//!    restarted.
//! 4. `team/app/api`: OCI index tagged `v2`: linux/amd64 and linux/arm64 (own config, base layer
//!    mounted, one unique layer) plus a buildx attestation manifest for the amd64 child.
//! 5. `team/app/api`: an untagged OCI image pushed by digest (own config, one layer).
//! 6. `team/app/api`: an orphan blob, uploaded (so linked in `_layers`) but referenced by nothing.
//!
//! The copy leaves out empty directories (git would not keep them anyway), so the tree on disk
//! is the tree a checkout gives.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use crate::gc::run_gc;
use crate::image::{attestation_for, seeded_bytes, Blob, Format, Image, MultiArch, Platform};
use crate::push::{Client, ACCEPT_ALL_MANIFESTS};
use crate::registry::Registry;

/// Kind of a sample entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Multi-arch index / manifest list.
    Index,
    /// Single-arch manifest.
    Manifest,
    /// Image config blob.
    Config,
    /// Layer blob.
    Layer,
    /// A blob nothing references.
    Blob,
}

impl Kind {
    /// Lower-case name used in the digest list.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Index => "index",
            Kind::Manifest => "manifest",
            Kind::Config => "config",
            Kind::Layer => "layer",
            Kind::Blob => "blob",
        }
    }
}

/// One digest of the sample with its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Repository.
    pub repo: String,
    /// Role: tags (`1.0,latest`, `stable`), platform (`linux/arm/v7`), `base`,
    /// `attestation:linux/amd64`, `untagged`, `orphan`.
    pub role: String,
    /// Kind.
    pub kind: Kind,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// What [`build_sample`] made.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Every digest, in push order.
    pub entries: Vec<Entry>,
    /// stdout of the garbage-collect run, blob lines sorted (see [`crate::gc::stable_gc_stdout`]).
    pub gc_stdout: String,
    /// The deletions the GC run logged to stderr, sorted (messages only: the log lines carry
    /// times, and blobs are deleted in random order).
    pub gc_deletions: Vec<String>,
    /// Files left under `_uploads` directories (expected: none).
    pub upload_leftovers: Vec<PathBuf>,
}

fn push(entries: &mut Vec<Entry>, repo: &str, role: &str, kind: Kind, digest: &str) {
    entries.push(Entry {
        repo: repo.to_string(),
        role: role.to_string(),
        kind,
        digest: digest.to_string(),
    });
}

fn push_image_entries(entries: &mut Vec<Entry>, repo: &str, role: &str, image: &Image, base: &str) {
    push(entries, repo, role, Kind::Manifest, &image.manifest.digest);
    push(entries, repo, role, Kind::Config, &image.config.digest);
    for layer in &image.layers {
        let r = if layer.digest == base { "base" } else { role };
        push(entries, repo, r, Kind::Layer, &layer.digest);
    }
}

const HELLO: &str = "library/hello";
const WEB: &str = "team/web";
const API: &str = "team/app/api";

fn check_set(what: &str, got: &BTreeSet<String>, want: &BTreeSet<String>) -> Result<()> {
    if got != want {
        bail!("{what}: 2.8.2 did not behave as expected\n  got:  {got:?}\n  want: {want:?}");
    }
    Ok(())
}

/// Build the sample in a temporary root by driving the real registry, then replace `out_dir`
/// (the storage root: it will hold `docker/registry/v2`) with a copy. `out_dir` must be absent,
/// empty, or hold only `docker/`.
pub fn build_sample(out_dir: &Path) -> Result<Sample> {
    check_out_dir(out_dir)?;
    let work = tempfile::Builder::new()
        .prefix("gc-testkit-sample-")
        .tempdir()
        .context("creating a temporary directory")?;
    let root = work.path().join("root");
    let mut entries = Vec::new();

    // a. library/hello
    let base = Blob::layer(Format::Docker, "sample/base");
    let hello = Image::builder(
        Format::Docker,
        "sample/library/hello",
        Platform::linux_amd64(),
    )
    .layer(base.clone())
    .unique_layers(1)
    .build()?;
    // b. team/web
    let web_child = |seed: &str, platform: Platform| {
        Image::builder(Format::Docker, seed, platform)
            .layer(base.clone())
            .unique_layers(1)
            .build()
    };
    let web = MultiArch::builder(Format::Docker)
        .image(web_child("sample/team/web/amd64", Platform::linux_amd64())?)
        .image(web_child(
            "sample/team/web/armv7",
            Platform::with_variant("linux", "arm", "v7"),
        )?)
        .build()?;

    let registry = Registry::start(&root)?;
    let client = registry.client();
    client.push_image(HELLO, &hello, Some("1.0"), None)?;
    client.put_manifest(HELLO, &hello.manifest, Some("latest"))?;
    push_image_entries(&mut entries, HELLO, "1.0,latest", &hello, &base.digest);

    let pushed = client.push_multi_arch(WEB, &web, Some("stable"), Some(HELLO))?;
    for child in &pushed.children {
        if child.mounted != vec![base.digest.clone()] {
            bail!(
                "team/web: expected only the base layer to be mounted, got {:?}",
                child.mounted
            );
        }
    }
    push(&mut entries, WEB, "stable", Kind::Index, &web.index.digest);
    for e in &web.entries {
        push_image_entries(
            &mut entries,
            WEB,
            &e.image.platform.to_string(),
            &e.image,
            &base.digest,
        );
    }

    // c. the real GC, with the registry stopped.
    let config = registry.stop()?;
    let gc = run_gc(config.path(), false, true)?;
    gc.ensure_success()?;
    let children: BTreeSet<String> = web
        .entries
        .iter()
        .map(|e| e.image.manifest.digest.clone())
        .collect();
    let swept: BTreeSet<String> = web
        .entries
        .iter()
        .flat_map(|e| e.image.blobs())
        .filter(|b| b.digest != base.digest)
        .map(|b| b.digest.clone())
        .collect();
    check_set(
        "manifests eligible for deletion",
        &gc.output.eligible_manifests,
        &children,
    )?;
    check_set(
        "blobs eligible for deletion",
        &gc.output.eligible_blobs,
        &swept,
    )?;
    drop(config);

    // d-f. team/app/api
    let registry = Registry::start(&root)?;
    let client = registry.client();
    check_after_gc(&client, &web, &base)?;
    let oci_base = Blob {
        media_type: Format::Oci.layer_type().to_string(),
        ..base.clone()
    };
    let api_child = |seed: &str, platform: Platform| {
        Image::builder(Format::Oci, seed, platform)
            .layer(oci_base.clone())
            .unique_layers(1)
            .build()
    };
    let amd64 = api_child("sample/team/app/api/amd64", Platform::linux_amd64())?;
    let arm64 = api_child("sample/team/app/api/arm64", Platform::new("linux", "arm64"))?;
    let attestation = attestation_for(&amd64.manifest, "sample/team/app/api/amd64-attestation");
    let api = MultiArch::builder(Format::Oci)
        .image(amd64.clone())
        .image(arm64)
        .attestation(attestation, &amd64.manifest.digest)
        .build()?;
    client.push_multi_arch(API, &api, Some("v2"), Some(HELLO))?;
    push(&mut entries, API, "v2", Kind::Index, &api.index.digest);
    for e in &api.entries {
        let role = if e.is_attestation() {
            format!("attestation:{}", amd64.platform)
        } else {
            e.image.platform.to_string()
        };
        push_image_entries(&mut entries, API, &role, &e.image, &base.digest);
    }

    let untagged = Image::builder(
        Format::Oci,
        "sample/team/app/api/untagged",
        Platform::linux_amd64(),
    )
    .unique_layers(1)
    .build()?;
    client.push_image(API, &untagged, None, None)?;
    push_image_entries(&mut entries, API, "untagged", &untagged, &base.digest);

    let orphan = client.push_blob(API, &seeded_bytes("sample/team/app/api/orphan", 1536))?;
    push(&mut entries, API, "orphan", Kind::Blob, &orphan);
    registry.stop()?;

    // Copy the tree.
    let dst = out_dir.join("docker");
    if dst.exists() {
        fs::remove_dir_all(&dst).with_context(|| format!("removing {}", dst.display()))?;
    }
    copy_tree(&root.join("docker"), &dst)?;
    let mut upload_leftovers = Vec::new();
    find_uploads(&dst, false, &mut upload_leftovers)?;

    Ok(Sample {
        entries,
        gc_stdout: gc.stable_stdout(),
        gc_deletions: {
            let mut d = gc.deletion_log();
            d.sort();
            d
        },
        upload_leftovers,
    })
}

/// After the GC: the index and its tag still resolve, the children are gone from the API,
/// the base layer is still served.
fn check_after_gc(client: &Client, web: &MultiArch, base: &Blob) -> Result<()> {
    let index = client
        .get_manifest(WEB, "stable", ACCEPT_ALL_MANIFESTS)?
        .with_context(|| "team/web:stable no longer resolves after GC")?;
    if index.digest != web.index.digest {
        bail!("team/web:stable resolves to {} after GC", index.digest);
    }
    for e in &web.entries {
        if client.manifest_exists(WEB, &e.image.manifest.digest)? {
            bail!(
                "team/web child {} still pullable after GC",
                e.image.manifest.digest
            );
        }
    }
    if !client.blob_exists(WEB, &base.digest)? {
        bail!("base layer not served from team/web after GC");
    }
    Ok(())
}

fn check_out_dir(out_dir: &Path) -> Result<()> {
    if !out_dir.exists() {
        return fs::create_dir_all(out_dir)
            .with_context(|| format!("creating {}", out_dir.display()));
    }
    for entry in fs::read_dir(out_dir).with_context(|| format!("reading {}", out_dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", out_dir.display()))?;
        if entry.file_name() != "docker" {
            bail!(
                "refusing to replace {}: it holds {:?}, which is not registry storage",
                out_dir.display(),
                entry.file_name()
            );
        }
    }
    Ok(())
}

fn sorted_entries(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let mut entries = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

/// Copy regular files from `src` to `dst`, creating only directories that end up non-empty.
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    for entry in sorted_entries(src)? {
        let path = entry.path();
        let target = dst.join(entry.file_name());
        let ft = entry
            .file_type()
            .with_context(|| format!("stat {}", path.display()))?;
        if ft.is_dir() {
            copy_tree(&path, &target)?;
        } else if ft.is_file() {
            fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
            fs::copy(&path, &target)
                .with_context(|| format!("copying {} to {}", path.display(), target.display()))?;
        } else {
            bail!(
                "unexpected non-regular file in registry storage: {}",
                path.display()
            );
        }
    }
    Ok(())
}

fn find_uploads(dir: &Path, inside: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in sorted_entries(dir)? {
        let path = entry.path();
        let is_uploads = inside || entry.file_name() == "_uploads";
        if path.is_dir() {
            find_uploads(&path, is_uploads, out)?;
        } else if is_uploads {
            out.push(path);
        }
    }
    Ok(())
}

fn state(root: &Path, entry: &Entry) -> String {
    let v2 = root.join("docker/registry/v2");
    let hex = entry.digest.trim_start_matches("sha256:");
    let blob = v2
        .join("blobs/sha256")
        .join(hex.get(..2).unwrap_or(""))
        .join(hex)
        .join("data");
    let repo = v2.join("repositories").join(&entry.repo);
    let link = match entry.kind {
        Kind::Index | Kind::Manifest => repo
            .join("_manifests/revisions/sha256")
            .join(hex)
            .join("link"),
        _ => repo.join("_layers/sha256").join(hex).join("link"),
    };
    let mut missing = Vec::new();
    if !blob.is_file() {
        missing.push("blob-missing");
    }
    if !link.is_file() {
        missing.push(match entry.kind {
            Kind::Index | Kind::Manifest => "revision-link-missing",
            _ => "layer-link-missing",
        });
    }
    if missing.is_empty() {
        "ok".to_string()
    } else {
        missing.join(",")
    }
}

impl Sample {
    /// The digest list: a comment header, then `<repo> <role> <kind> <digest> <state>` per entry
    /// in push order; `<state>` is read from the tree at `root`: `ok`, or which of
    /// `blob-missing`, `revision-link-missing` / `layer-link-missing` apply.
    pub fn digests_text(&self, root: &Path) -> String {
        let mut text = String::from(
            "# gc-testkit make-sample: every digest of examples/registry, in push order.\n\
             # columns: repository role kind digest state\n\
             # role: tags, platform, base (the layer shared by all images), attestation:<platform>,\n\
             #       untagged (pushed by digest only), orphan (uploaded, referenced by nothing)\n\
             # state (read from the tree): ok, or what is missing: blob-missing,\n\
             #       revision-link-missing (manifests), layer-link-missing (blobs)\n\
             # team/web was damaged by a real distribution 2.8.2 `garbage-collect --delete-untagged`\n\
             # run (see sample-gc-m.log) before team/app/api was pushed.\n",
        );
        for e in &self.entries {
            let _ = writeln!(
                text,
                "{} {} {} {} {}",
                e.repo,
                e.role,
                e.kind.as_str(),
                e.digest,
                state(root, e)
            );
        }
        text
    }
}
