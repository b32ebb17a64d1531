//! `gc-audit recover` end to end on the filesystem driver, against the real registry
//! (distribution 2.8.2): push multi-arch images (a Docker manifest list, an OCI index with a
//! buildx attestation, layers shared across images and mounted across repositories, a nested
//! index), copy the tree (the backup), run the real `garbage-collect -m` (it sweeps the
//! children of the tagged indexes), then plan with `recover ROOT --from COPY`, apply the plan
//! by running recover.sh, and check: `scan` exits 0, every tag pulls through the restarted
//! registry with the bytes first pushed, a second `recover` plans nothing, and a second run of
//! recover.sh changes nothing. A backup that lacks some keys leaves those `unrecoverable`,
//! naming the tag each breaks, and the rest planned.
//!
//! The same on the `s3` driver against s3-mem-server with bucket versioning: the plan removes
//! the delete markers the GC left (or copies a version over a key when a marker is not
//! enough), applied here with the SDK as the aws CLI would (`DeleteObject` with a version id,
//! `CopyObject` from `?versionId=`); a bucket that never had versioning leaves every swept key
//! unrecoverable; versioning enabled only after the pushes restores the `null` versions.

mod support;

use anyhow::Result;
use gc_core::manifest::Manifest as ParsedManifest;
use gc_testkit::gc::run_gc;
use gc_testkit::image::{
    attestation_for, media_types, sha256_digest, Blob, Format, Image, Manifest, MultiArch, Platform,
};
use gc_testkit::push::{Client, ACCEPT_ALL_MANIFESTS};
use gc_testkit::registry::{Registry, S3Backend};
use s3_mem_server::{BucketVersioning, S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use support::*;

fn image(format: Format, seed: &str, platform: Platform, layers: &[Blob]) -> Image {
    let mut b = Image::builder(format, seed, platform);
    for l in layers {
        b = b.layer(l.clone());
    }
    b.unique_layers(1).build().expect("image")
}

fn multi(format: Format, seed: &str, platforms: &[Platform], base: Option<&Blob>) -> MultiArch {
    let mut b = MultiArch::builder(format);
    for (i, p) in platforms.iter().enumerate() {
        let layers: Vec<Blob> = base.into_iter().cloned().collect();
        b = b.image(image(format, &format!("{seed}-{i}"), p.clone(), &layers));
    }
    b.build().expect("index")
}

/// Every tag pushed: (repository, tag).
fn push_everything(c: &Client) -> Result<Vec<(String, String)>> {
    let two = [Platform::linux_amd64(), Platform::new("linux", "arm64")];
    let three = [
        Platform::linux_amd64(),
        Platform::new("linux", "arm64"),
        Platform::with_variant("linux", "arm", "v7"),
    ];
    let base = Blob::layer(Format::Docker, "base");
    // A single-arch base image, its layer shared with a Docker manifest list in another
    // repository (mounted across).
    c.push_image(
        "base/os",
        &image(
            Format::Docker,
            "os",
            Platform::linux_amd64(),
            std::slice::from_ref(&base),
        ),
        Some("12"),
        None,
    )?;
    c.push_multi_arch(
        "web",
        &multi(Format::Docker, "web", &three, Some(&base)),
        Some("stable"),
        Some("base/os"),
    )?;
    // An OCI index with a buildx attestation child.
    let img = image(Format::Oci, "att", Platform::linux_amd64(), &[]);
    let att = attestation_for(&img.manifest, "att");
    let digest = img.manifest.digest.clone();
    let with_att = MultiArch::builder(Format::Oci)
        .image(img)
        .attestation(att, &digest)
        .build()?;
    c.push_multi_arch("buildx/app", &with_att, Some("latest"), None)?;
    // A nested index: an OCI index whose only child is another index.
    let inner = multi(Format::Oci, "inner", &two, None);
    c.push_multi_arch("nest", &inner, None, None)?;
    let d = inner.index.descriptor();
    let outer_bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","size":{},"digest":"{}"}}]}}"#,
        media_types::OCI_INDEX,
        d.media_type,
        d.size,
        d.digest
    )
    .into_bytes();
    let outer = Manifest {
        media_type: media_types::OCI_INDEX.to_string(),
        digest: sha256_digest(&outer_bytes),
        bytes: outer_bytes,
    };
    c.put_manifest("nest", &outer, Some("outer"))?;
    Ok(vec![
        ("base/os".into(), "12".into()),
        ("web".into(), "stable".into()),
        ("buildx/app".into(), "latest".into()),
        ("nest".into(), "outer".into()),
    ])
}

/// Pull `reference` of `repo` whole: every manifest (children at any depth) and blob, as
/// digest → sha256 of the bytes served. Errors when anything fails to pull.
fn pull(c: &Client, repo: &str, reference: &str, out: &mut BTreeMap<String, String>) -> Result<()> {
    let m = c
        .get_manifest(repo, reference, ACCEPT_ALL_MANIFESTS)?
        .ok_or_else(|| anyhow::anyhow!("{repo}:{reference}: manifest unknown"))?;
    anyhow::ensure!(m.status == 200, "{repo}:{reference}: status {}", m.status);
    let digest = sha256_digest(&m.bytes);
    let parsed = ParsedManifest::parse(&m.bytes)?;
    out.insert(format!("{repo}@{digest}"), digest);
    for child in &parsed.children {
        pull(c, repo, &child.digest.to_string(), out)?;
    }
    for blob in parsed.config.iter().chain(parsed.layers.iter()) {
        let bytes = c
            .get_blob(repo, &blob.digest.to_string())?
            .ok_or_else(|| anyhow::anyhow!("{repo}: blob {} unknown", blob.digest))?;
        out.insert(format!("{repo}@{}", blob.digest), sha256_digest(&bytes));
    }
    Ok(())
}

fn pull_all(c: &Client, tags: &[(String, String)]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (repo, tag) in tags {
        pull(c, repo, tag, &mut out)?;
    }
    Ok(out)
}

/// Copy a registry root with its empty directories.
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

/// recover.csv rows as maps by column name.
fn plan_rows(out: &Path) -> Vec<BTreeMap<String, String>> {
    let text = report(out, "recover.csv");
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().expect("header").clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        ["key", "action", "version_id", "size", "needed_by", "source"]
    );
    r.records()
        .map(|rec| {
            let rec = rec.expect("row");
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn run_script(script: &Path) -> (i32, String, String) {
    let out = Command::new("bash").arg(script).output().expect("bash");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_swept_registry_is_restored_from_a_copy_and_pulls_the_bytes_first_pushed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("registry");
    let backup = tmp.path().join("backup");
    let registry = Registry::start(&root).unwrap_or_else(|e| panic!("{e:#}"));
    let client = registry.client();
    let tags = push_everything(&client).unwrap_or_else(|e| panic!("push: {e:#}"));
    let pushed = pull_all(&client, &tags).expect("pull before");
    let config = registry.stop().expect("stop");
    copy_root(&root, &backup);

    let gc = run_gc(config.path(), false, true).expect("garbage-collect -m");
    assert!(gc.success(), "{}", gc.stderr);
    let r = root.to_str().unwrap();
    let scan = gc_audit(&[
        "scan",
        r,
        "--out",
        tmp.path().join("scan0").to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(
        scan.code, 1,
        "the -m run breaks the indexes: {}",
        scan.stdout
    );

    // A backup missing two keys: those are unrecoverable, the rest planned.
    let partial = tmp.path().join("partial");
    copy_root(&backup, &partial);
    let full_out = tmp.path().join("plan-full");
    let full = gc_audit(&[
        "recover",
        r,
        "--from",
        backup.to_str().unwrap(),
        "--out",
        full_out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(full.code, 1, "{}{}", full.stdout, full.stderr);
    let rows = plan_rows(&full_out);
    assert!(rows.len() >= 10, "{rows:?}");
    assert!(rows.iter().all(|r| r["action"] == "copy-from"), "{rows:?}");
    let mut keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str()).collect();
    let sorted = {
        let mut k = keys.clone();
        k.sort();
        k
    };
    assert_eq!(keys, sorted, "recover.csv is sorted by key");
    let tag_names: Vec<String> = tags.iter().map(|(r, t)| format!("{r}:{t}")).collect();
    for row in &rows {
        assert!(tag_names.contains(&row["needed_by"]), "{row:?}");
        let copy = std::fs::metadata(backup.join(&row["key"])).expect("in the backup");
        assert_eq!(row["size"], copy.len().to_string(), "{row:?}");
        assert!(
            !root.join(&row["key"]).exists(),
            "planned but present: {row:?}"
        );
    }
    // Every broken tag's index children come back: revision links of the children of
    // web:stable, buildx/app:latest and nest:outer (the inner index and its children).
    for repo in ["web", "buildx/app", "nest"] {
        assert!(
            rows.iter().any(|r| r["key"].starts_with(&format!(
                "docker/registry/v2/repositories/{repo}/_manifests/revisions/"
            ))),
            "{repo}: {rows:?}"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&report(&full_out, "summary.json")).expect("summary");
    assert_eq!(summary["exit_status"], 1);
    assert_eq!(summary["missing_keys"], rows.len());
    assert_eq!(summary["actions"]["copy-from"]["keys"], rows.len());
    assert!(
        summary["requests"]["from"]["GET"].as_u64().unwrap()
            + summary["requests"]["from"]["HEAD"].as_u64().unwrap()
            <= rows.len() as u64
    );
    assert!(full.stdout.contains("restores"), "{}", full.stdout);
    assert_eq!(report(&full_out, "s3-batch-manifest.csv"), "");

    let lost: Vec<&str> = keys
        .drain(..)
        .filter(|k| k.contains("/blobs/"))
        .take(2)
        .collect();
    for k in &lost {
        std::fs::remove_file(partial.join(k)).expect("remove from partial backup");
    }
    let partial_out = tmp.path().join("plan-partial");
    let part = gc_audit(&[
        "recover",
        r,
        "--from",
        partial.to_str().unwrap(),
        "--out",
        partial_out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(part.code, 3, "{}{}", part.stdout, part.stderr);
    let prow = plan_rows(&partial_out);
    let unrecoverable: Vec<&BTreeMap<String, String>> = prow
        .iter()
        .filter(|r| r["action"] == "unrecoverable")
        .collect();
    let mut got: Vec<&str> = unrecoverable.iter().map(|r| r["key"].as_str()).collect();
    got.sort();
    let mut want = lost.clone();
    want.sort();
    assert_eq!(got, want);
    assert!(unrecoverable
        .iter()
        .all(|r| tag_names.contains(&r["needed_by"])));
    assert_eq!(prow.len(), rows.len());
    assert!(part.stdout.contains("stays broken"), "{}", part.stdout);

    // Apply the full plan: recover.sh uses only cp and mkdir here.
    let script = full_out.join("recover.sh");
    let text = std::fs::read_to_string(&script).expect("recover.sh");
    assert!(text.contains("set -euo pipefail"));
    assert!(!text.contains("aws "), "{text}");
    let (code, stdout, stderr) = run_script(&script);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout.matches("copying ").count(), rows.len(), "{stdout}");

    let after = gc_audit(&[
        "scan",
        r,
        "--out",
        tmp.path().join("scan1").to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(after.code, 0, "{}", after.stdout);
    let registry = Registry::start(&root).unwrap_or_else(|e| panic!("{e:#}"));
    let pulled = pull_all(&registry.client(), &tags).expect("every tag pulls after the plan");
    assert_eq!(pulled, pushed, "every manifest and blob as first pushed");
    registry.stop().expect("stop");

    // Nothing left to plan; the script run again changes nothing.
    let again_out = tmp.path().join("plan-again");
    let again = gc_audit(&[
        "recover",
        r,
        "--from",
        backup.to_str().unwrap(),
        "--out",
        again_out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert!(plan_rows(&again_out).is_empty());
    let before = snapshot(&root);
    let (code, stdout, stderr) = run_script(&script);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout.matches("present, skipped").count(),
        rows.len(),
        "{stdout}"
    );
    assert_eq!(
        snapshot(&root),
        before,
        "a second run of recover.sh changes nothing"
    );
}

/// The registry's `rootdirectory` in the buckets.
const S3_ROOT: &str = "registry";

fn s3_registry(server: &S3MemServer, bucket: &str) -> Registry {
    Registry::start_s3(&S3Backend::new(
        &server.endpoint(),
        bucket,
        &format!("/{S3_ROOT}"),
    ))
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// gc-audit with the server's credentials in the environment, against `s3://bucket/registry`.
fn gc_audit_s3(server: &S3MemServer, command: &str, bucket: &str, out: &Path) -> Run {
    let location = format!("s3://{bucket}/{S3_ROOT}");
    let endpoint = server.endpoint();
    let out = Command::new(env!("CARGO_BIN_EXE_gc-audit"))
        .env("GC_AUDIT_NO_CACHE", "1")
        .args([
            command,
            &location,
            "--endpoint-url",
            &endpoint,
            "--region",
            REGION,
            "--force-path-style",
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run gc-audit");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A writing SDK client for the test server (gc-s3's own client refuses every write), to
/// apply a plan as the aws CLI would.
fn sdk(server: &S3MemServer) -> (tokio::runtime::Runtime, aws_sdk_s3::Client) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "test",
        ))
        .build();
    (runtime, aws_sdk_s3::Client::from_conf(config))
}

/// Apply recover.csv: DeleteObject of each marker by its version id, CopyObject of each
/// version over its key.
fn apply(server: &S3MemServer, bucket: &str, rows: &[BTreeMap<String, String>]) {
    let (runtime, client) = sdk(server);
    for r in rows {
        let (key, version) = (r["key"].as_str(), r["version_id"].as_str());
        match r["action"].as_str() {
            "remove-delete-marker" => {
                runtime
                    .block_on(
                        client
                            .delete_object()
                            .bucket(bucket)
                            .key(key)
                            .version_id(version)
                            .send(),
                    )
                    .unwrap_or_else(|e| panic!("delete marker of {key}: {e:?}"));
            }
            "copy-version" => {
                runtime
                    .block_on(
                        client
                            .copy_object()
                            .bucket(bucket)
                            .key(key)
                            .copy_source(format!("{bucket}/{key}?versionId={version}"))
                            .send(),
                    )
                    .unwrap_or_else(|e| panic!("copy version of {key}: {e:?}"));
            }
            other => panic!("{other} row in a plan that restores everything: {r:?}"),
        }
    }
}

/// Tags pushed: (repository, tag).
type Tags = Vec<(String, String)>;

fn push_web(c: &Client) -> Result<Tags> {
    let two = [Platform::linux_amd64(), Platform::new("linux", "arm64")];
    c.push_multi_arch(
        "web",
        &multi(Format::Oci, "web", &two, None),
        Some("stable"),
        None,
    )?;
    Ok(vec![("web".into(), "stable".into())])
}

/// Push through the registry on `bucket`, pull everything, stop, run the real `-m` GC.
fn push_and_sweep(
    server: &S3MemServer,
    bucket: &str,
    push: fn(&Client) -> Result<Tags>,
    before_gc: impl FnOnce(),
) -> (Vec<(String, String)>, BTreeMap<String, String>) {
    let registry = s3_registry(server, bucket);
    let client = registry.client();
    let tags = push(&client).unwrap_or_else(|e| panic!("push: {e:#}"));
    let pushed = pull_all(&client, &tags).expect("pull before");
    let config = registry.stop().expect("stop");
    before_gc();
    let gc = run_gc(config.path(), false, true).expect("garbage-collect -m");
    assert!(gc.success(), "{}", gc.stderr);
    (tags, pushed)
}

/// After the plan is applied: scan exits 0, every tag pulls as first pushed, a second plan is
/// empty.
fn assert_restored(
    server: &S3MemServer,
    bucket: &str,
    tmp: &Path,
    tags: &[(String, String)],
    pushed: &BTreeMap<String, String>,
) {
    let scan = gc_audit_s3(server, "scan", bucket, &tmp.join("scan-after"));
    assert_eq!(scan.code, 0, "{}{}", scan.stdout, scan.stderr);
    let registry = s3_registry(server, bucket);
    let pulled = pull_all(&registry.client(), tags).expect("every tag pulls after the plan");
    assert_eq!(&pulled, pushed, "every manifest and blob as first pushed");
    registry.stop().expect("stop");
    let again = gc_audit_s3(server, "recover", bucket, &tmp.join("plan-again"));
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(plan_rows(&tmp.join("plan-again")).is_empty());
}

#[test]
fn on_a_versioned_bucket_the_plan_removes_the_gcs_delete_markers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = S3MemServer::start().expect("s3 server");
    server.create_bucket("reg");
    assert!(server.set_versioning("reg", BucketVersioning::Enabled));
    let (tags, pushed) = push_and_sweep(&server, "reg", push_everything, || {});

    let scan = gc_audit_s3(&server, "scan", "reg", &tmp.path().join("scan"));
    assert_eq!(scan.code, 1, "{}{}", scan.stdout, scan.stderr);
    assert!(
        scan.stdout.contains(
            "have a version to restore; plan it with: gc-audit recover s3://reg/registry"
        ),
        "{}",
        scan.stdout
    );
    let scan_summary: serde_json::Value =
        serde_json::from_str(&report(&tmp.path().join("scan"), "summary.json")).expect("summary");
    let hint = &scan_summary["recoverable_versions"];
    assert_eq!(hint["versioning"], "enabled");
    assert!(hint["recoverable"].as_u64() > Some(0));
    assert_eq!(hint["recoverable"], hint["missing_keys"]);

    let first_out = tmp.path().join("plan-first");
    let first = gc_audit_s3(&server, "recover", "reg", &first_out);
    assert_eq!(first.code, 1, "{}{}", first.stdout, first.stderr);
    let first_rows = plan_rows(&first_out);
    assert!(first_rows.len() >= 10, "{first_rows:?}");
    assert!(
        first_rows
            .iter()
            .all(|r| r["action"] == "remove-delete-marker"),
        "{first_rows:?}"
    );
    // A blob overwritten with other bytes and deleted again: its newest version is of the
    // wrong size, so the plan copies the right (older) version instead of removing a marker.
    let wrong = first_rows
        .iter()
        .find(|r| r["key"].contains("/blobs/"))
        .expect("a blob row")
        .clone();
    {
        let (runtime, c) = sdk(&server);
        runtime
            .block_on(
                c.put_object()
                    .bucket("reg")
                    .key(&wrong["key"])
                    .body(b"other bytes".to_vec().into())
                    .send(),
            )
            .expect("put");
        runtime
            .block_on(c.delete_object().bucket("reg").key(&wrong["key"]).send())
            .expect("delete");
    }
    server.clear_requests();
    let out = tmp.path().join("plan");
    let plan = gc_audit_s3(&server, "recover", "reg", &out);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    let rows = plan_rows(&out);
    assert_eq!(rows.len(), first_rows.len());
    let tag_names: Vec<String> = tags.iter().map(|(r, t)| format!("{r}:{t}")).collect();
    for r in &rows {
        assert!(
            r["key"].starts_with("registry/docker/registry/v2/"),
            "{r:?}"
        );
        assert!(tag_names.contains(&r["needed_by"]), "{r:?}");
        let versions = server.object_versions("reg", &r["key"]);
        match r["action"].as_str() {
            "remove-delete-marker" => {
                assert!(versions[0].delete_marker);
                assert_eq!(versions[0].version_id, r["version_id"]);
                assert_eq!(versions[1].data.len().to_string(), r["size"]);
            }
            "copy-version" => {
                assert_eq!(r["key"], wrong["key"]);
                let used = versions
                    .iter()
                    .find(|v| v.version_id == r["version_id"])
                    .expect("version");
                assert_eq!(used.data.len().to_string(), r["size"]);
                assert_ne!(used.data.as_ref(), b"other bytes");
            }
            other => panic!("{other}: {r:?}"),
        }
    }
    assert_eq!(
        rows.iter()
            .filter(|r| r["action"] == "copy-version")
            .count(),
        1
    );
    assert_eq!(
        report(&out, "s3-batch-manifest.csv"),
        format!(
            "reg,{},{}\n",
            wrong["key"],
            rows.iter().find(|r| r["action"] == "copy-version").unwrap()["version_id"]
        )
    );
    // Requests: within the budget (one per missing key plus the listing pages), and what the
    // server saw agrees with summary.json.
    let summary: serde_json::Value =
        serde_json::from_str(&report(&out, "summary.json")).expect("summary");
    let total = summary["requests"]["total"].as_u64().unwrap();
    let budget = summary["requests"]["budget"]
        .as_u64()
        .expect("a budget for a versions plan");
    assert!(total <= budget, "{total} > {budget}");
    assert_eq!(
        budget,
        rows.len() as u64
            + summary["requests"]["version_listings"]["pages"]
                .as_u64()
                .unwrap()
    );
    let ops = server.operation_counts();
    let writes: Vec<&String> = ops
        .keys()
        .filter(|op| !s3_mem_server::READ_OPERATIONS.contains(&op.as_str()))
        .collect();
    assert!(writes.is_empty(), "recover wrote to the bucket: {writes:?}");
    let audit = &summary["audit"]["requests"];
    let seen_by_server: u64 = ops.values().sum();
    let audited: u64 = ["LIST", "GET", "HEAD"]
        .iter()
        .map(|k| audit[k].as_u64().unwrap())
        .sum();
    assert_eq!(ops.get("GetBucketVersioning"), Some(&1), "{ops:?}");
    // gc-s3 counts GetBucketVersioning with the plan's requests.
    assert_eq!(seen_by_server, audited + total, "{ops:?} {summary}");
    assert_eq!(
        ops.get("ListObjectVersions").copied().unwrap_or(0),
        summary["requests"]["version_listings"]["pages"]
            .as_u64()
            .unwrap(),
        "{ops:?}"
    );
    let script = report(&out, "recover.sh");
    assert!(script.contains("set -euo pipefail"));
    assert!(
        script.contains(&format!("--endpoint-url '{}'", server.endpoint())),
        "{script}"
    );
    assert!(script.contains(&format!("--region '{REGION}'")), "{script}");
    for r in &rows {
        let line = match r["action"].as_str() {
            "remove-delete-marker" => {
                format!("remove_marker 'reg' '{}' '{}'", r["key"], r["version_id"])
            }
            _ => format!("copy_version 'reg' '{}' '{}'", r["key"], r["version_id"]),
        };
        assert!(script.contains(&line), "{line}\n{script}");
    }
    assert!(script.contains("s3api delete-object --bucket \"$1\" --key \"$2\" --version-id \"$3\""));
    assert!(script.contains(
        "s3api copy-object --bucket \"$1\" --key \"$2\" --copy-source \"$1/$5?versionId=$3\""
    ));

    apply(&server, "reg", &rows);
    assert_restored(&server, "reg", tmp.path(), &tags, &pushed);
}

#[test]
fn a_bucket_that_never_had_versioning_leaves_every_swept_key_unrecoverable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = S3MemServer::start().expect("s3 server");
    server.create_bucket("plain");
    push_and_sweep(&server, "plain", push_web, || {});
    let scan = gc_audit_s3(&server, "scan", "plain", &tmp.path().join("scan"));
    assert_eq!(scan.code, 1);
    assert!(
        !scan.stdout.contains("bucket versioning"),
        "{}",
        scan.stdout
    );
    let out = tmp.path().join("plan");
    let plan = gc_audit_s3(&server, "recover", "plain", &out);
    assert_eq!(plan.code, 3, "{}{}", plan.stdout, plan.stderr);
    let rows = plan_rows(&out);
    // Two children: each its revision link, config and two layers... at least their links
    // and blobs.
    assert!(rows.len() >= 6, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r["action"] == "unrecoverable" && r["needed_by"] == "web:stable"),
        "{rows:?}"
    );
    assert!(
        plan.stdout.contains("stays broken: 1 tag ("),
        "{}",
        plan.stdout
    );
    let summary: serde_json::Value =
        serde_json::from_str(&report(&out, "summary.json")).expect("summary");
    assert_eq!(summary["source"]["versioning"], "never");
    assert_eq!(summary["requests"]["version_listings"]["prefixes"], 0);
}

#[test]
fn versioning_enabled_after_the_pushes_restores_the_null_versions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = S3MemServer::start().expect("s3 server");
    server.create_bucket("late");
    let (tags, pushed) = push_and_sweep(&server, "late", push_web, || {
        assert!(server.set_versioning("late", BucketVersioning::Enabled));
    });
    let out = tmp.path().join("plan");
    let plan = gc_audit_s3(&server, "recover", "late", &out);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    let rows = plan_rows(&out);
    assert!(rows.len() >= 6, "{rows:?}");
    for r in &rows {
        assert_eq!(r["action"], "remove-delete-marker", "{r:?}");
        assert!(r["source"].ends_with("?versionId=null"), "{r:?}");
        assert_ne!(r["version_id"], "null");
    }
    apply(&server, "late", &rows);
    assert_restored(&server, "late", tmp.path(), &tags, &pushed);
}
