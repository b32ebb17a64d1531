//! Conformance against the real registry: distribution 2.8.2 (Debian's `docker-registry`),
//! started on 127.0.0.1, images pushed through its HTTP API, then its real
//! `garbage-collect` run with and without `--dry-run` and `-m`.
//!
//! For every scenario and both 2.8 models:
//! - `gc-audit gc-plan`'s eligible lines equal the real dry run's, line for line (or both
//!   abort: gc-plan exits 3 when the real run exits 1);
//! - after the real run, the files it deleted are exactly the files the model predicted;
//! - the tags whose `needed_by` appears in gc-unsafe.csv (scanned before the run) are exactly
//!   the tags the real registry can no longer pull after it, and every unsafe digest was
//!   really deleted;
//! - `gc-audit scan` after the run names every broken tag in broken.csv, every dangling child
//!   in dangling.csv, and exits 1 when something broke.
//!
//! Every scenario runs on the filesystem driver; the `on_s3_*` tests run the same checks with
//! the registry on its `s3` driver against s3-mem-server (gc-audit reading the bucket with
//! `s3://` and the object-store deletion model).

mod support;

use anyhow::{Context, Result};
use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::gc::{self, Driver, GcModel, GcPlan, GcVersion};
use gc_core::layout::Key;
use gc_core::manifest::Manifest as ParsedManifest;
use gc_core::report::{REPORT_FILES, SUMMARY_FILE};
use gc_core::storage::{FsStorage, Storage};
use gc_s3::{S3Config, S3Storage, StaticCredentials};
use gc_testkit::gc::run_gc;
use gc_testkit::image::{attestation_for, Blob, Format, Image, MultiArch, Platform};
use gc_testkit::push::{Client, ACCEPT_ALL_MANIFESTS};
use gc_testkit::registry::{Registry, RegistryConfig, S3Backend};
use s3_mem_server::{S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::*;

fn image(format: Format, seed: &str, platform: Platform, layers: &[Blob]) -> Image {
    let mut b = Image::builder(format, seed, platform);
    for l in layers {
        b = b.layer(l.clone());
    }
    b.unique_layers(1).build().expect("image")
}

fn amd64() -> Platform {
    Platform::linux_amd64()
}

fn multi(format: Format, seed: &str, platforms: &[Platform], base: Option<&Blob>) -> MultiArch {
    let mut b = MultiArch::builder(format);
    for (i, p) in platforms.iter().enumerate() {
        let layers: Vec<Blob> = base.into_iter().cloned().collect();
        b = b.image(image(format, &format!("{seed}-{i}"), p.clone(), &layers));
    }
    b.build().expect("index")
}

/// Copy a registry root with its empty directories (they change what 2.8 GC does).
fn copy_root(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_root(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// Every file below `root`, relative, `/`-separated.
fn files(root: &Path) -> BTreeSet<String> {
    walk(root)
        .into_iter()
        .map(|p| {
            p.strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// The `... eligible for deletion` lines of a garbage-collect stdout, sorted.
fn eligible(stdout: &str) -> Vec<String> {
    let mut v: Vec<String> = stdout
        .lines()
        .filter(|l| l.contains("eligible for deletion:"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Where a scenario's storage lives: a filesystem root, or a bucket of the in-process S3
/// server (under [`S3_ROOT`]) that the registry reaches through its `s3` driver.
enum Site<'a> {
    Fs(PathBuf),
    S3 {
        server: &'a S3MemServer,
        bucket: String,
    },
}

/// The `rootdirectory` of registries on S3.
const S3_ROOT: &str = "registry";

impl Site<'_> {
    /// A registry serving this storage on 127.0.0.1.
    fn registry(&self) -> Result<Registry> {
        match self {
            Site::Fs(root) => Registry::start(root),
            Site::S3 { server, bucket } => Registry::start_s3(&S3Backend::new(
                &server.endpoint(),
                bucket,
                &format!("/{S3_ROOT}"),
            )),
        }
    }

    /// A copy of this storage named `name` (a sibling directory, or another bucket).
    fn copy(&self, name: &str) -> Self {
        match self {
            Site::Fs(root) => {
                let to = root.with_file_name(name);
                copy_root(root, &to);
                Site::Fs(to)
            }
            Site::S3 { server, bucket } => {
                server.create_bucket(name);
                let objects: Vec<(String, Vec<u8>, std::time::SystemTime)> = server
                    .keys(bucket)
                    .into_iter()
                    .map(|k| {
                        let data = server.object(bucket, &k).expect("listed object").to_vec();
                        (k, data, std::time::SystemTime::now())
                    })
                    .collect();
                server.put_objects_direct(name, objects);
                Site::S3 {
                    server,
                    bucket: name.to_string(),
                }
            }
        }
    }

    /// A config for running garbage-collect on this storage.
    fn gc_config(&self) -> Result<RegistryConfig> {
        match self {
            Site::Fs(root) => Registry::config_for(root),
            Site::S3 { server, bucket } => {
                RegistryConfig::write_s3(&server.endpoint(), bucket, &format!("/{S3_ROOT}"), 0)
            }
        }
    }

    /// The location argument for gc-audit.
    fn location(&self) -> String {
        match self {
            Site::Fs(root) => root.to_string_lossy().into_owned(),
            Site::S3 { bucket, .. } => format!("s3://{bucket}/{S3_ROOT}"),
        }
    }

    /// Every stored file or object, relative to the registry root.
    fn files(&self) -> BTreeSet<String> {
        match self {
            Site::Fs(root) => files(root),
            Site::S3 { server, bucket } => server
                .keys(bucket)
                .into_iter()
                .filter_map(|k| k.strip_prefix(&format!("{S3_ROOT}/")).map(str::to_string))
                .collect(),
        }
    }

    /// gc-audit's view of this storage, for the library-level prediction.
    fn storage(&self) -> Box<dyn Storage> {
        match self {
            Site::Fs(root) => Box::new(FsStorage::new(root)),
            Site::S3 { server, bucket } => {
                let cfg = S3Config::compatible_endpoint(
                    bucket.as_str(),
                    S3_ROOT,
                    server.endpoint(),
                    REGION,
                    StaticCredentials {
                        access_key: ACCESS_KEY.into(),
                        secret_key: SECRET_KEY.into(),
                    },
                );
                let runtime = tokio::runtime::Runtime::new().expect("runtime");
                Box::new(
                    runtime
                        .block_on(S3Storage::connect(cfg))
                        .expect("S3 storage"),
                )
            }
        }
    }

    /// How the registry's GC deletes on this storage.
    fn driver(&self) -> Driver {
        match self {
            Site::Fs(_) => Driver::Filesystem,
            Site::S3 { .. } => Driver::ObjectStore,
        }
    }

    /// Run gc-audit with `args` then this storage's connection flags.
    fn gc_audit(&self, args: &[&str]) -> Run {
        self.gc_audit_env(args, &[])
    }

    /// [`Site::gc_audit`] with extra environment variables.
    fn gc_audit_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        match self {
            Site::Fs(_) => gc_audit_env(args, env),
            Site::S3 { server, .. } => {
                let endpoint = server.endpoint();
                let flags = [
                    "--endpoint-url",
                    &endpoint,
                    "--region",
                    REGION,
                    "--force-path-style",
                ];
                let credentials = [
                    ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
                    ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
                    ("AWS_EC2_METADATA_DISABLED", "true"),
                ];
                gc_audit_env(&[args, &flags[..]].concat(), &[&credentials, env].concat())
            }
        }
    }

    /// Tags the registry serving this storage cannot pull: (repo:tag).
    fn unpullable_tags(&self, tags: &[(String, String)]) -> Result<BTreeSet<String>> {
        Ok(self
            .unpullable(tags)?
            .into_iter()
            .map(|(r, t)| format!("{r}:{t}"))
            .collect())
    }

    /// Manifests the registry serving this storage cannot pull by digest: (repo@digest).
    fn unpullable_by_digest(&self, refs: &[(String, String)]) -> Result<BTreeSet<String>> {
        Ok(self
            .unpullable(refs)?
            .into_iter()
            .map(|(r, d)| format!("{r}@{d}"))
            .collect())
    }

    /// The (repository, reference) pairs the registry serving this storage cannot pull.
    fn unpullable(&self, refs: &[(String, String)]) -> Result<Vec<(String, String)>> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let registry = self.registry()?;
        let client = registry.client();
        let mut broken = Vec::new();
        for (repo, reference) in refs {
            if !pullable(&client, repo, reference)? {
                broken.push((repo.clone(), reference.clone()));
            }
        }
        Ok(broken)
    }

    /// What `model` predicts for this storage: its plan, the files the real run deletes, and
    /// every (repository, tag).
    fn predict(&self, model: GcModel) -> Result<Prediction> {
        let storage = self.storage();
        let runtime = tokio::runtime::Runtime::new()?;
        let outcome = runtime.block_on(audit(
            storage.as_ref(),
            &AuditOptions::default(),
            &NoProgress,
        ));
        assert!(
            outcome.report.summary.complete,
            "{:?}",
            outcome.report.summary.errors
        );
        let graph = &outcome.graph;
        let tags: Vec<(String, String)> = graph
            .repos()
            .values()
            .flat_map(|r| {
                r.tags
                    .values()
                    .filter(|t| t.current_size.is_some())
                    .map(move |t| (r.name.clone(), t.name.clone()))
            })
            .collect();
        let plan = gc::plan(graph, model, self.driver());
        let mut deleted = BTreeSet::new();
        if let GcPlan::Completes(d) = &plan {
            let all = self.files();
            for b in &d.blobs_in_digest_order(graph) {
                deleted.insert(
                    Key::BlobData {
                        digest: graph.digests().digest(*b).clone(),
                    }
                    .to_path(),
                );
            }
            for m in &d.manifests {
                let digest = graph.digests().digest(m.digest).clone();
                let link = Key::RevisionLink {
                    repo: m.repo.to_string(),
                    digest: digest.clone(),
                }
                .to_path();
                let dir = link.trim_end_matches("link").to_string();
                deleted.extend(all.iter().filter(|f| f.starts_with(&dir)).cloned());
                for t in &m.tag_history {
                    deleted.insert(
                        Key::TagIndexEntry {
                            repo: m.repo.to_string(),
                            tag: t.clone(),
                            digest: digest.clone(),
                        }
                        .to_path(),
                    );
                }
            }
        }
        Ok((plan, deleted, tags))
    }
}

fn pullable(client: &Client, repo: &str, reference: &str) -> Result<bool> {
    let Some(m) = client.get_manifest(repo, reference, ACCEPT_ALL_MANIFESTS)? else {
        return Ok(false);
    };
    if m.status != 200 {
        return Ok(false);
    }
    let Ok(parsed) = ParsedManifest::parse(&m.bytes) else {
        return Ok(false);
    };
    for child in &parsed.children {
        if !pullable(client, repo, &child.digest.to_string())? {
            return Ok(false);
        }
    }
    for blob in parsed.config.iter().chain(parsed.layers.iter()) {
        if !client.blob_exists(repo, &blob.digest.to_string())? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A model's plan, the files it deletes, and every (repository, tag) of the storage.
type Prediction = (GcPlan, BTreeSet<String>, Vec<(String, String)>);

/// Run one scenario on the filesystem driver against both 2.8 models; `edit` damages the
/// pushed storage first.
fn conform(name: &str, push: impl Fn(&Client) -> Result<()>, edit: impl Fn(&Path)) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pushed = Site::Fs(tmp.path().join("pushed"));
    push_through(&pushed, name, push);
    if let Site::Fs(root) = &pushed {
        edit(root);
    }
    check_models(&pushed, name, tmp.path());
}

/// Run one scenario on the `s3` driver (s3-mem-server on 127.0.0.1) against both 2.8 models.
fn conform_s3(name: &str, push: impl Fn(&Client) -> Result<()>) {
    let server = S3MemServer::start().expect("s3 server");
    server.create_bucket("pushed");
    let pushed = Site::S3 {
        server: &server,
        bucket: "pushed".to_string(),
    };
    push_through(&pushed, name, push);
    let tmp = tempfile::tempdir().expect("tempdir");
    check_models(&pushed, &format!("{name} (s3)"), tmp.path());
}

/// Start a registry on `site`, push the scenario, stop it.
fn push_through(site: &Site<'_>, name: &str, push: impl Fn(&Client) -> Result<()>) {
    let registry = site.registry().unwrap_or_else(|e| panic!("{e:#}"));
    push(&registry.client()).unwrap_or_else(|e| panic!("{name}: push: {e:#}"));
    registry.stop().expect("stop");
}

/// The assertions of the module doc, for both 2.8 models, each on its own copy of `pushed`;
/// reports go below `tmp`.
fn check_models(pushed: &Site<'_>, name: &str, tmp: &Path) {
    for remove_untagged in [false, true] {
        let model = GcModel {
            version: GcVersion::V2_8,
            remove_untagged,
        };
        let site = pushed.copy(model.name());
        let config = site.gc_config().expect("config");
        let flag: &[&str] = if remove_untagged { &["-m"] } else { &[] };
        let location = site.location();
        let r = location.as_str();

        // 1. dry run vs gc-plan
        let dry = run_gc(config.path(), true, remove_untagged).expect("dry run");
        let plan_run = site.gc_audit(
            &[
                &["gc-plan", r, "--model", "distribution-2.8", "-q"][..],
                flag,
            ]
            .concat(),
        );
        if !dry.success() {
            assert_eq!(
                plan_run.code, 3,
                "{name} {model}: real GC failed ({}), gc-plan said:\n{}",
                dry.stderr, plan_run.stdout
            );
            // The same error, but for the storage driver's prefixes ("filesystem: ").
            let predicted = plan_run.stdout.lines().next().unwrap_or("");
            let real = dry
                .stderr
                .trim()
                .replace("filesystem: ", "")
                .replace("s3aws: ", "");
            let comparable = |s: &str| {
                s.split(": unexpected end of JSON input")
                    .next()
                    .unwrap_or(s)
                    .split(": not JSON")
                    .next()
                    .unwrap_or(s)
                    .to_string()
            };
            assert_eq!(
                comparable(predicted),
                comparable(&real),
                "{name} {model}: abort messages"
            );
            println!("{name:<28} {model:<20} abort = abort: {real}");
            continue;
        }
        assert!(
            plan_run.code == 0 || plan_run.code == 1,
            "{name} {model}: gc-plan exit {}: {}{}",
            plan_run.code,
            plan_run.stdout,
            plan_run.stderr
        );
        assert_eq!(
            eligible(&plan_run.stdout),
            eligible(&dry.stdout),
            "{name} {model}: dry-run lines differ"
        );

        // 2. scan before: gc-unsafe.csv rows of this model
        let before_out = tmp.join(format!("{}-before", model.name()));
        let scan_before = site.gc_audit(&["scan", r, "--out", before_out.to_str().unwrap(), "-q"]);
        assert!(
            scan_before.code <= 1,
            "{name}: scan before: {}{}",
            scan_before.stdout,
            scan_before.stderr
        );
        let variant_name = format!("{name} {model}");
        same_reports_with_cache_and_every_link_read(&site, &variant_name, r, tmp);
        let unsafe_rows: Vec<Vec<String>> = report(&before_out, "gc-unsafe.csv")
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_string).collect())
            .filter(|f: &Vec<String>| f[0] == model.name())
            .collect();
        let (_, predicted, tags) = site.predict(model).expect("predict");
        let broken_before = site.unpullable_tags(&tags).expect("pull check before");

        // 3. the real run: deleted files equal the prediction
        let files_before = site.files();
        let real = run_gc(config.path(), false, remove_untagged).expect("real run");
        assert!(real.success(), "{name} {model}: {}", real.stderr);
        let files_after = site.files();
        let deleted: BTreeSet<String> = files_before.difference(&files_after).cloned().collect();
        let added: BTreeSet<String> = files_after.difference(&files_before).cloned().collect();
        assert!(added.is_empty(), "{name} {model}: GC added {added:?}");
        assert_eq!(
            deleted, predicted,
            "{name} {model}: deleted files differ from the prediction"
        );

        // 4. what broke is what gc-unsafe.csv said would break
        let broken_after = site.unpullable_tags(&tags).expect("pull check after");
        let newly_broken: BTreeSet<String> =
            broken_after.difference(&broken_before).cloned().collect();
        let needers: BTreeSet<String> = unsafe_rows
            .iter()
            .map(|f| f[6].split(' ').next().unwrap_or("").to_string())
            .collect();
        let unsafe_tags: BTreeSet<String> = needers
            .iter()
            .filter(|n| !n.contains('@'))
            .cloned()
            .collect();
        assert_eq!(
            unsafe_tags, newly_broken,
            "{name} {model}: gc-unsafe.csv vs tags broken by the real run"
        );
        // Needed manifests named by digest (referrers of tagged images) are gone for real.
        let by_digest: Vec<(String, String)> = needers
            .iter()
            .filter_map(|n| {
                n.split_once('@')
                    .map(|(r, d)| (r.to_string(), d.to_string()))
            })
            .collect();
        let lost = site
            .unpullable_by_digest(&by_digest)
            .expect("pull by digest");
        assert_eq!(
            lost.len(),
            by_digest.len(),
            "{name} {model}: {by_digest:?} should no longer pull; lost {lost:?}"
        );
        for f in &unsafe_rows {
            let hex = f[3].trim_start_matches("sha256:");
            assert!(
                deleted.iter().any(|d| d.contains(hex)),
                "{name} {model}: unsafe {} was not deleted",
                f[3]
            );
        }

        // 5. scan after names every broken tag
        let after_out = tmp.join(format!("{}-after", model.name()));
        let scan_after = site.gc_audit(&["scan", r, "--out", after_out.to_str().unwrap(), "-q"]);
        let broken_csv: BTreeSet<String> = report(&after_out, "broken.csv")
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{}:{}", f[0], f[1])
            })
            .collect();
        assert_eq!(
            broken_csv, broken_after,
            "{name} {model}: broken.csv vs tags the registry cannot pull"
        );
        if !broken_after.is_empty() {
            assert_eq!(scan_after.code, 1, "{name} {model}: {}", scan_after.stdout);
        }
        let revisions = predicted
            .iter()
            .filter(|f| f.contains("/_manifests/revisions/"))
            .count();
        let blobs = predicted
            .iter()
            .filter(|f| f.starts_with("docker/registry/v2/blobs/"))
            .count();
        println!(
            "{name:<28} {model:<20} predicted = actual: {blobs} blobs, {revisions} revision files, {} unsafe rows, broken {:?}",
            unsafe_rows.len(),
            newly_broken
        );
    }
}

/// The scan of `r` with a manifest cache (cold, then warm) and with every link read
/// (`--verify-links`: no tag resolved from its ETag) writes the report files a plain scan
/// writes, byte for byte.
///
/// Every scan starts over a second after the last write: a tag history entry written in the
/// second a scan starts counts as tagged during the scan (SPEC §3), which would make scans a
/// second apart differ for reasons of time, not of cache.
fn same_reports_with_cache_and_every_link_read(site: &Site<'_>, name: &str, r: &str, tmp: &Path) {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let cache = tmp.join("manifest-cache");
    let cache_dir = cache.to_str().expect("utf-8 path");
    let plain = tmp.join(format!("{name}-plain").replace(['/', ' ', ':'], "_"));
    let plain = plain.as_path();
    for (variant, flags) in [
        ("plain", &[][..]),
        ("cold cache", &["--cache-dir", cache_dir][..]),
        ("warm cache", &["--cache-dir", cache_dir][..]),
        ("--verify-links", &["--verify-links"][..]),
    ] {
        let out = if variant == "plain" {
            plain.to_path_buf()
        } else {
            let variant_dir = format!("{name}-{}", variant.replace(' ', "-"));
            tmp.join(variant_dir.replace(['/', ' ', ':'], "_"))
        };
        let args = [
            &["scan", r, "--out", out.to_str().unwrap(), "-q"][..],
            flags,
        ]
        .concat();
        let no_cache = if variant == "plain" { "true" } else { "false" };
        let run = site.gc_audit_env(&args, &[("GC_AUDIT_NO_CACHE", no_cache)]);
        assert!(
            run.code <= 1,
            "{name} {variant}: {}{}",
            run.stdout,
            run.stderr
        );
        for f in REPORT_FILES.into_iter().filter(|f| *f != SUMMARY_FILE) {
            assert_text(
                &format!("{name} {variant}: {f}"),
                &report(&out, f),
                &report(plain, f),
            );
        }
        if variant == "warm cache" {
            let summary: serde_json::Value =
                serde_json::from_str(&report(&out, "summary.json")).expect("summary");
            // Every manifest comes from the cache, but those whose bytes are not their
            // digest's: they are never cached.
            let mismatched = summary["findings"]["digest-mismatch"].as_u64().unwrap_or(0);
            assert_eq!(
                summary["cache_misses"].as_u64(),
                Some(mismatched),
                "{name}: the warm scan's misses: {summary}"
            );
            assert!(
                summary["cache_hits"].as_u64() > Some(0),
                "{name}: {summary}"
            );
        }
    }
}

fn no_edit(_: &Path) {}

#[test]
fn single_arch_docker_and_oci_images() {
    conform(
        "single-arch",
        |c| {
            c.push_image(
                "library/hello",
                &image(Format::Docker, "hello", amd64(), &[]),
                Some("latest"),
                None,
            )?;
            c.push_image(
                "oci/app",
                &image(Format::Oci, "app", amd64(), &[]),
                Some("1.0"),
                None,
            )?;
            Ok(())
        },
        no_edit,
    );
}

#[test]
fn multi_arch_tagged_list_and_index() {
    conform("multi-arch tagged", push_multi_arch_tagged, no_edit);
}

fn push_multi_arch_tagged(c: &Client) -> Result<()> {
    let three = [
        amd64(),
        Platform::new("linux", "arm64"),
        Platform::with_variant("linux", "arm", "v7"),
    ];
    c.push_multi_arch(
        "web",
        &multi(Format::Docker, "web", &three, None),
        Some("stable"),
        None,
    )?;
    c.push_multi_arch(
        "api",
        &multi(Format::Oci, "api", &three[..2], None),
        Some("v2"),
        None,
    )?;
    Ok(())
}

#[test]
fn multi_arch_untagged_index() {
    conform(
        "multi-arch untagged",
        |c| {
            c.push_multi_arch(
                "app",
                &multi(
                    Format::Oci,
                    "old",
                    &[amd64(), Platform::new("linux", "arm64")],
                    None,
                ),
                None,
                None,
            )?;
            c.push_image(
                "app",
                &image(Format::Oci, "new", amd64(), &[]),
                Some("latest"),
                None,
            )?;
            Ok(())
        },
        no_edit,
    );
}

#[test]
fn multi_arch_tagged_only_by_a_child() {
    conform(
        "tagged only by a child",
        |c| {
            let m = multi(
                Format::Docker,
                "child",
                &[amd64(), Platform::new("linux", "arm64")],
                None,
            );
            c.push_multi_arch("app", &m, None, None)?;
            c.put_manifest("app", &m.entries[0].image.manifest, Some("amd64-only"))?;
            Ok(())
        },
        no_edit,
    );
}

#[test]
fn buildx_attestation_in_tagged_index() {
    conform("attestation", push_buildx_attestation, no_edit);
}

fn push_buildx_attestation(c: &Client) -> Result<()> {
    let img = image(Format::Oci, "att", amd64(), &[]);
    let att = attestation_for(&img.manifest, "att");
    let digest = img.manifest.digest.clone();
    let m = MultiArch::builder(Format::Oci)
        .image(img)
        .attestation(att, &digest)
        .build()?;
    c.push_multi_arch("buildx/app", &m, Some("latest"), None)?;
    Ok(())
}

#[test]
fn layers_shared_across_images_and_repositories() {
    conform("shared layers", push_shared_layers, no_edit);
}

fn push_shared_layers(c: &Client) -> Result<()> {
    let base = Blob::layer(Format::Docker, "base");
    c.push_image(
        "base/os",
        &image(Format::Docker, "os", amd64(), std::slice::from_ref(&base)),
        Some("12"),
        None,
    )?;
    // Mounted from base/os into app (cross-repo mount), in an untagged and a tagged image.
    c.push_image(
        "app",
        &image(
            Format::Docker,
            "app-old",
            amd64(),
            std::slice::from_ref(&base),
        ),
        None,
        Some("base/os"),
    )?;
    c.push_image(
        "app",
        &image(
            Format::Docker,
            "app-new",
            amd64(),
            std::slice::from_ref(&base),
        ),
        Some("latest"),
        Some("base/os"),
    )?;
    // A multi-arch image whose children share the base with a tagged single-arch image.
    c.push_multi_arch(
        "app",
        &multi(
            Format::Docker,
            "app-multi",
            &[amd64(), Platform::new("linux", "arm64")],
            Some(&base),
        ),
        Some("multi"),
        Some("base/os"),
    )?;
    Ok(())
}

#[test]
fn nested_repository_names() {
    conform(
        "nested names",
        |c| {
            c.push_image(
                "a/b",
                &image(Format::Oci, "ab", amd64(), &[]),
                Some("t"),
                None,
            )?;
            c.push_image(
                "a/b/c",
                &image(Format::Oci, "abc", amd64(), &[]),
                None,
                None,
            )?;
            c.push_image(
                "a/b/c",
                &image(Format::Oci, "abc-tagged", amd64(), &[]),
                Some("t"),
                None,
            )?;
            c.push_image(
                "a-b",
                &image(Format::Oci, "a-b", amd64(), &[]),
                Some("t"),
                None,
            )?;
            c.push_multi_arch(
                "a/b/c/d",
                &multi(
                    Format::Oci,
                    "abcd",
                    &[amd64(), Platform::new("linux", "s390x")],
                    None,
                ),
                Some("t"),
                None,
            )?;
            Ok(())
        },
        no_edit,
    );
}

#[test]
fn tag_moved_to_a_new_manifest() {
    conform(
        "tag moved",
        |c| {
            c.push_image(
                "app",
                &image(Format::Docker, "v1", amd64(), &[]),
                Some("latest"),
                None,
            )?;
            c.push_image(
                "app",
                &image(Format::Docker, "v2", amd64(), &[]),
                Some("latest"),
                None,
            )?;
            c.push_multi_arch(
                "app",
                &multi(Format::Docker, "m1", &[amd64()], None),
                Some("multi"),
                None,
            )?;
            c.push_multi_arch(
                "app",
                &multi(Format::Docker, "m2", &[amd64()], None),
                Some("multi"),
                None,
            )?;
            Ok(())
        },
        no_edit,
    );
}

#[test]
fn oci_referrers_by_digest_and_by_tag() {
    conform("referrers", push_referrers, no_edit);
}

fn push_referrers(c: &Client) -> Result<()> {
    let subject = image(Format::Oci, "subject", amd64(), &[]);
    c.push_image("app", &subject, Some("v1"), None)?;
    let by_digest = Image::builder(Format::Oci, "sbom", amd64())
        .unique_layers(1)
        .subject(subject.manifest.descriptor())
        .artifact_type("application/spdx+json")
        .build()?;
    c.push_image("app", &by_digest, None, None)?;
    let by_tag = Image::builder(Format::Oci, "sig", amd64())
        .unique_layers(1)
        .subject(subject.manifest.descriptor())
        .artifact_type("application/vnd.dev.cosign.artifact.sig.v1+json")
        .build()?;
    c.push_image("app", &by_tag, Some("signature"), None)?;
    Ok(())
}

#[test]
fn cosign_signature_tag() {
    conform(
        "cosign tag",
        |c| {
            let img = image(Format::Docker, "signed", amd64(), &[]);
            c.push_image("app", &img, Some("v1"), None)?;
            let sig = image(Format::Oci, "cosign", amd64(), &[]);
            let tag = format!(
                "sha256-{}.sig",
                img.manifest.digest.trim_start_matches("sha256:")
            );
            c.push_image("app", &sig, Some(&tag), None)?;
            Ok(())
        },
        no_edit,
    );
}

#[test]
fn repository_whose_tags_were_all_deleted_through_the_api() {
    conform("tags deleted (API)", push_then_delete_every_tag, no_edit);
}

fn push_then_delete_every_tag(c: &Client) -> Result<()> {
    let old = c.push_image(
        "app",
        &image(Format::Docker, "gone", amd64(), &[]),
        Some("v1"),
        None,
    )?;
    c.push_image(
        "app",
        &image(Format::Docker, "kept-untagged", amd64(), &[]),
        None,
        None,
    )?;
    c.delete_manifest("app", &old.manifest)?;
    Ok(())
}

#[test]
fn repository_without_tags_directory() {
    // As after deleting every tag on S3, or removing the directory by hand: 2.8 -m stops.
    conform(
        "no tags directory",
        |c| {
            c.push_image(
                "app",
                &image(Format::Docker, "x", amd64(), &[]),
                Some("v1"),
                None,
            )?;
            c.push_image(
                "other",
                &image(Format::Docker, "y", amd64(), &[]),
                Some("v1"),
                None,
            )?;
            Ok(())
        },
        |root| {
            std::fs::remove_dir_all(
                root.join("docker/registry/v2/repositories/app/_manifests/tags"),
            )
            .expect("rm tags");
        },
    );
}

#[test]
fn orphan_blob_upload_without_manifest() {
    conform("orphan upload", push_orphan_upload, no_edit);
}

fn push_orphan_upload(c: &Client) -> Result<()> {
    c.push_blob("app", b"uploaded, never referenced")?;
    c.push_image(
        "app",
        &image(Format::Oci, "x", amd64(), &[]),
        Some("v1"),
        None,
    )?;
    Ok(())
}

#[test]
fn damaged_storage_makes_gc_stop() {
    conform(
        "garbage revision link",
        |c| {
            c.push_image(
                "app",
                &image(Format::Oci, "x", amd64(), &[]),
                Some("v1"),
                None,
            )?;
            Ok(())
        },
        |root| {
            let revisions =
                root.join("docker/registry/v2/repositories/app/_manifests/revisions/sha256");
            let dir = std::fs::read_dir(&revisions)
                .expect("revisions")
                .next()
                .expect("one")
                .expect("entry")
                .path();
            std::fs::write(dir.join("link"), b"not a digest").expect("write");
        },
    );
    conform(
        "unparseable manifest",
        |c| {
            c.push_image(
                "app",
                &image(Format::Oci, "y", amd64(), &[]),
                Some("v1"),
                None,
            )?;
            Ok(())
        },
        |root| {
            let revisions =
                root.join("docker/registry/v2/repositories/app/_manifests/revisions/sha256");
            let hex = std::fs::read_dir(&revisions)
                .expect("revisions")
                .next()
                .expect("one")
                .expect("entry")
                .file_name();
            let hex = hex.to_string_lossy();
            let data: PathBuf = root.join(format!(
                "docker/registry/v2/blobs/sha256/{}/{hex}/data",
                &hex[..2]
            ));
            std::fs::write(data, b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",").expect("write");
        },
    );
}

#[test]
fn on_s3_multi_arch_tagged_list_and_index() {
    conform_s3("multi-arch tagged", push_multi_arch_tagged);
}

#[test]
fn on_s3_buildx_attestation_in_tagged_index() {
    conform_s3("attestation", push_buildx_attestation);
}

#[test]
fn on_s3_layers_shared_across_images_and_repositories() {
    conform_s3("shared layers", push_shared_layers);
}

#[test]
fn on_s3_oci_referrers_by_digest_and_by_tag() {
    conform_s3("referrers", push_referrers);
}

#[test]
fn on_s3_repository_whose_tags_were_all_deleted_through_the_api() {
    conform_s3("tags deleted (API)", push_then_delete_every_tag);
}

#[test]
fn on_s3_orphan_blob_upload_without_manifest() {
    conform_s3("orphan upload", push_orphan_upload);
}

/// Replace the manifest tagged `repo:tag` by `rewrite(bytes)`, stored as the registry stores a
/// manifest (blob data, revision link, the tag's current link and index entry): the API refuses
/// manifests that do not decode, so they only appear through corruption like this.
fn rewrite_tagged(root: &Path, repo: &str, tag: &str, rewrite: impl Fn(&[u8]) -> Vec<u8>) {
    let v2 = root.join("docker/registry/v2");
    let tag_dir = v2.join(format!("repositories/{repo}/_manifests/tags/{tag}"));
    let current = std::fs::read_to_string(tag_dir.join("current/link")).expect("current link");
    let hex = current.trim().trim_start_matches("sha256:").to_string();
    let old =
        std::fs::read(v2.join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]))).expect("manifest");
    let new = rewrite(&old);
    assert_ne!(new, old, "the rewrite changed nothing");
    let digest = gc_core::digest::Digest::sha256_of(&new).to_string();
    let hex = digest.trim_start_matches("sha256:");
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    };
    write(
        v2.join(format!("blobs/sha256/{}/{hex}/data", &hex[..2])),
        &new,
    );
    write(
        v2.join(format!(
            "repositories/{repo}/_manifests/revisions/sha256/{hex}/link"
        )),
        digest.as_bytes(),
    );
    write(tag_dir.join("current/link"), digest.as_bytes());
    write(
        tag_dir.join(format!("index/sha256/{hex}/link")),
        digest.as_bytes(),
    );
}

/// An edit of a parsed manifest.
type JsonEdit = fn(&mut serde_json::Value);

/// A rewrite of a manifest's bytes.
type Rewrite = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// A JSON rewrite: `edit` the parsed manifest.
fn json_edit(edit: impl Fn(&mut serde_json::Value)) -> impl Fn(&[u8]) -> Vec<u8> {
    move |bytes| {
        let mut v: serde_json::Value = serde_json::from_slice(bytes).expect("pushed manifest");
        edit(&mut v);
        serde_json::to_vec(&v).expect("serialize")
    }
}

/// A schema1 manifest (unsigned) with the layers of the pushed image manifest `bytes`, and
/// `extra` members.
fn schema1_of(bytes: &[u8], extra: &str) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_slice(bytes).expect("pushed manifest");
    let layers: Vec<String> = v["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            format!(
                r#"{{"blobSum":"{}"}}"#,
                l["digest"].as_str().expect("digest")
            )
        })
        .collect();
    let history = vec![r#"{"v1Compatibility":"{}"}"#; layers.len()].join(",");
    format!(
        r#"{{"schemaVersion":1,"name":"app","tag":"v1","architecture":"amd64","fsLayers":[{}],"history":[{history}]{extra}}}"#,
        layers.join(",")
    )
    .into_bytes()
}

/// A text rewrite: `members` inserted first in the manifest's top-level object.
fn prepend_members(members: &'static [u8]) -> impl Fn(&[u8]) -> Vec<u8> {
    move |bytes| {
        let open = bytes.iter().position(|b| *b == b'{').expect("an object");
        [&bytes[..=open], members, b",", &bytes[open + 1..]].concat()
    }
}

/// A text rewrite: `members` appended last in the manifest's top-level object.
fn append_members(members: &'static [u8]) -> impl Fn(&[u8]) -> Vec<u8> {
    move |bytes| {
        let close = bytes.iter().rposition(|b| *b == b'}').expect("an object");
        [&bytes[..close], b",", members, &bytes[close..]].concat()
    }
}

fn push_image_tagged(format: Format) -> impl Fn(&Client) -> Result<()> {
    move |c| {
        c.push_image(
            "app",
            &image(format, "decode", amd64(), &[]),
            Some("v1"),
            None,
        )?;
        Ok(())
    }
}

fn push_index_tagged(c: &Client) -> Result<()> {
    let two = [amd64(), Platform::new("linux", "arm64")];
    c.push_multi_arch(
        "app",
        &multi(Format::Oci, "decode", &two, None),
        Some("v1"),
        None,
    )?;
    Ok(())
}

/// Manifests whose fields Go's `encoding/json` rejects: the real 2.8 GC stops on them with
/// the error gc-plan predicts, word for word.
#[test]
fn manifests_go_cannot_decode_make_gc_stop() {
    let cases: Vec<(&str, Format, JsonEdit)> = vec![
        ("size a string", Format::Oci, |v| {
            v["layers"][0]["size"] = "123".into()
        }),
        ("size a fraction", Format::Oci, |v| {
            v["layers"][0]["size"] = 1.5.into()
        }),
        ("size 2^63", Format::Docker, |v| {
            v["config"]["size"] = 9_223_372_036_854_775_808u64.into()
        }),
        ("mediaType a number", Format::Oci, |v| {
            v["layers"][0]["mediaType"] = 7.into()
        }),
        ("mediaType an object", Format::Docker, |v| {
            v["config"]["mediaType"] = serde_json::json!({})
        }),
        ("urls a string", Format::Docker, |v| {
            v["layers"][0]["urls"] = "https://example.invalid/l".into()
        }),
        ("urls with a number", Format::Oci, |v| {
            v["layers"][0]["urls"] = serde_json::json!(["https://example.invalid/l", 1])
        }),
        ("platform a string", Format::Oci, |v| {
            v["config"]["platform"] = "linux".into()
        }),
        ("annotation a number", Format::Oci, |v| {
            v["layers"][0]["annotations"] = serde_json::json!({"a": 1})
        }),
        ("top-level mediaType a number", Format::Oci, |v| {
            v["mediaType"] = 7.into()
        }),
    ];
    for (name, format, edit) in cases {
        conform(name, push_image_tagged(format), move |root| {
            rewrite_tagged(root, "app", "v1", json_edit(edit))
        });
    }
    conform("index child os a number", push_index_tagged, |root| {
        rewrite_tagged(
            root,
            "app",
            "v1",
            json_edit(|v| v["manifests"][0]["platform"]["os"] = 7.into()),
        )
    });
    // 2.8 reads an OCI index's children as manifestlist.ManifestDescriptor: `features` typed.
    conform("index child features a string", push_index_tagged, |root| {
        rewrite_tagged(
            root,
            "app",
            "v1",
            json_edit(|v| v["manifests"][0]["platform"]["features"] = "sse4".into()),
        )
    });
    // Go 1.19 matches U+017F (long s) to `s`: `ſize` is `size`.
    conform(
        "long s key folds to size",
        push_image_tagged(Format::Oci),
        |root| {
            rewrite_tagged(
                root,
                "app",
                "v1",
                json_edit(|v| v["layers"][0]["\u{17f}ize"] = "1".into()),
            )
        },
    );
    // Schema1: libtrust decodes the whole document into map[string]interface{} first.
    conform(
        "schema1 number beyond float64",
        push_image_tagged(Format::Oci),
        |root| rewrite_tagged(root, "app", "v1", |bytes| schema1_of(bytes, ",\"x\":1e400")),
    );
    // Go decodes every occurrence of a key: a type error in one the last overrides still fails.
    conform(
        "duplicate mediaType, bad first",
        push_image_tagged(Format::Oci),
        |root| rewrite_tagged(root, "app", "v1", prepend_members(b"\"mediaType\":7")),
    );
}

/// Manifests Go decodes although they look odd: the real 2.8 GC completes and deletes what
/// gc-plan says, and gc-audit calls none of them unparseable.
#[test]
fn manifests_go_decodes_are_collected_normally() {
    let deep: &'static [u8] = Box::leak(
        format!("\"x\":{}{}", "[".repeat(5_000), "]".repeat(5_000))
            .into_bytes()
            .into_boxed_slice(),
    );
    let cases: Vec<(&str, Rewrite)> = vec![
        ("nested 5000 deep", Box::new(prepend_members(deep))),
        (
            "invalid UTF-8, lone surrogate",
            Box::new(prepend_members(b"\"x\":\"\xff\xfe\\ud800\"")),
        ),
        (
            "keys in another case",
            Box::new(|bytes: &[u8]| {
                String::from_utf8_lossy(bytes)
                    .replace("\"layers\"", "\"LAYERS\"")
                    .replace("\"config\"", "\"Config\"")
                    .into_bytes()
            }),
        ),
        (
            "duplicate keys, the last wins",
            Box::new(prepend_members(
                b"\"mediaType\":\"application/x-junk\",\"schemaVersion\":null",
            )),
        ),
        (
            // Go decodes a repeated key into what the first left: the layer keeps its digest.
            "repeated keys merge",
            Box::new(append_members(
                b"\"config\":{\"size\":9},\"layers\":[{\"size\":5,\"urls\":null}]",
            )),
        ),
        (
            "3.x-only field data not base64",
            Box::new(json_edit(|v| v["layers"][0]["data"] = "!".into())),
        ),
        (
            "schema1 with numbers float64 holds",
            Box::new(|bytes: &[u8]| schema1_of(bytes, ",\"x\":[1e308,1e-400]")),
        ),
        (
            "negative size, null fields",
            Box::new(json_edit(|v| {
                v["layers"][0]["size"] = (-1).into();
                v["layers"][0]["urls"] = serde_json::Value::Null;
                v["annotations"] = serde_json::Value::Null;
            })),
        ),
    ];
    for (name, rewrite) in cases {
        conform(name, push_image_tagged(Format::Oci), |root| {
            rewrite_tagged(root, "app", "v1", &rewrite)
        });
        let tmp = tempfile::tempdir().expect("tempdir");
        let site = Site::Fs(tmp.path().join("pushed"));
        push_through(&site, name, push_image_tagged(Format::Oci));
        if let Site::Fs(root) = &site {
            rewrite_tagged(root, "app", "v1", &rewrite);
        }
        let out = tmp.path().join("out");
        let scan = site.gc_audit(&[
            "scan",
            &site.location(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ]);
        assert!(scan.code <= 1, "{name}: {}{}", scan.stdout, scan.stderr);
        let findings = report(&out, "findings.csv");
        assert!(
            !findings.contains("unparseable-manifest"),
            "{name}: {findings}"
        );
        assert_eq!(report(&out, "broken.csv").lines().count(), 1, "{name}");
    }
}

/// An index without a media type whose `manifests` does not decode: 2.8's `manifestStore.Get`
/// converts the failed decode's nil result and panics; gc-plan predicts the stop.
#[test]
fn index_without_media_type_that_does_not_decode_panics_the_collector() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = Site::Fs(tmp.path().join("pushed"));
    push_through(&site, "panic", push_index_tagged);
    if let Site::Fs(root) = &site {
        rewrite_tagged(
            root,
            "app",
            "v1",
            json_edit(|v| {
                v.as_object_mut().expect("object").remove("mediaType");
                v["manifests"][0]["size"] = "1".into();
            }),
        );
    }
    let config = site.gc_config().expect("config");
    let dry = run_gc(config.path(), true, false).expect("dry run");
    let panic = "panic: interface conversion: distribution.Manifest is nil, not *manifestlist.DeserializedManifestList";
    assert!(
        !dry.success() && dry.stderr.contains(panic),
        "{}",
        dry.stderr
    );
    let plan = site.gc_audit(&[
        "gc-plan",
        &site.location(),
        "--model",
        "distribution-2.8",
        "-q",
    ]);
    assert_eq!(plan.code, 3, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.starts_with(panic), "{}", plan.stdout);
}

#[test]
fn registry_binary_is_installed() {
    gc_testkit::registry::registry_binary()
        .context("the conformance tests need the real registry")
        .unwrap_or_else(|e| panic!("{e:#}"));
}
