//! The real docker-registry 2.8.2 with the `s3` storage driver against s3-mem-server: serving
//! and garbage-collect through [`RegistryConfig::write_s3`] / [`Registry::start_s3`], and
//! garbage-collect on synthetic trees written with [`S3Sink`]. They fail (never skip) when
//! `docker-registry` is not installed.

use anyhow::Result;
use gc_testkit::image::{Format, Image, Platform};
use gc_testkit::synth::{generate, S3Sink, SynthParams};
use gc_testkit::{run_gc, Registry, RegistryConfig, S3Backend, ACCEPT_ALL_MANIFESTS};
use s3_mem_server::S3MemServer;

/// Pushing through the s3 driver: 2.8.2 writes every blob upload as an S3 multipart upload and
/// commits it with CopyObject, then serves what it wrote.
#[test]
fn registry_accepts_pushes_on_s3() -> Result<()> {
    let server = S3MemServer::start()?;
    server.create_bucket("pushed");
    let reg = Registry::start_s3(&S3Backend::new(&server.endpoint(), "pushed", "/registry"))?;
    let client = reg.client();
    let image = Image::builder(Format::Oci, "s3-push", Platform::linux_amd64())
        .unique_layers(2)
        .build()?;
    let pushed = client.push_image("team/app", &image, Some("v1"), None)?;
    let got = client
        .get_manifest("team/app", "v1", ACCEPT_ALL_MANIFESTS)?
        .expect("team/app:v1 is served");
    assert_eq!(got.digest, pushed.manifest);
    for layer in &image.layers {
        let key = format!(
            "registry/docker/registry/v2/blobs/sha256/{}/{}/data",
            &layer.digest[7..9],
            &layer.digest[7..]
        );
        let stored = server
            .object("pushed", &key)
            .expect("layer stored under blobs/");
        assert_eq!(stored.as_ref(), layer.bytes.as_slice());
    }
    let ops = server.operation_counts();
    for op in [
        "CreateMultipartUpload",
        "CompleteMultipartUpload",
        "CopyObject",
    ] {
        assert!(ops.contains_key(op), "{op} not used: {ops:?}");
    }
    reg.stop()?;
    Ok(())
}

/// Serving reads over the s3 driver, on a tree written straight into the bucket.
#[test]
fn registry_serves_and_collects_on_s3() -> Result<()> {
    let server = S3MemServer::start()?;
    let mut sink = S3Sink::new(&server, "reg", "/registry");
    let stats = generate(&SynthParams::with_keys(1_000, 9), &mut sink)?;
    sink.finish();
    let reg = Registry::start_s3(&S3Backend::new(&server.endpoint(), "reg", "/registry"))?;
    assert_eq!(reg.s3().map(|b| b.bucket.as_str()), Some("reg"));
    let client = reg.client();
    let latest = server
        .object(
            "reg",
            "registry/docker/registry/v2/repositories/team0/app0/_manifests/tags/latest/current/link",
        )
        .expect("tag written");
    let got = client
        .get_manifest("team0/app0", "latest", ACCEPT_ALL_MANIFESTS)?
        .expect("team0/app0:latest is served");
    assert_eq!(got.digest.as_bytes(), latest.as_ref());
    let mut tags = client.tags("team0/app0")?;
    tags.sort();
    assert_eq!(tags.len() as u64, stats.tags / stats.repos);
    assert!(tags.contains(&"latest".to_string()), "{tags:?}");
    let keys = server.keys("reg");

    let config = reg.stop()?;
    assert_eq!(config.s3().map(|b| b.bucket.as_str()), Some("reg"));
    let gc = run_gc(config.path(), true, true)?;
    gc.ensure_success()?;
    assert_eq!(gc.output.repositories.len() as u64, stats.repos);
    assert!(!gc.output.eligible_manifests.is_empty());
    // A dry run deletes nothing.
    assert_eq!(server.keys("reg"), keys);
    Ok(())
}

#[test]
fn garbage_collect_accepts_a_synthetic_tree_on_s3() -> Result<()> {
    let server = S3MemServer::start()?;
    let mut sink = S3Sink::new(&server, "bench", "registry");
    let stats = generate(&SynthParams::with_keys(3_000, 5), &mut sink)?;
    assert_eq!(sink.finish(), stats.keys);
    let config = RegistryConfig::write_s3(&server.endpoint(), "bench", "/registry", 0)?;
    for m in [false, true] {
        let gc = run_gc(config.path(), true, m)?;
        gc.ensure_success()?;
        assert_eq!(gc.output.repositories.len() as u64, stats.repos);
        let summary = gc.output.summary.expect("summary line");
        assert!(summary.blobs_eligible > 0, "{summary:?}");
        if m {
            assert!(summary.manifests_eligible > 0, "{summary:?}");
        }
    }
    let ops = server.operation_counts();
    assert!(
        ops.keys().all(
            |op| ["ListObjectsV2", "ListObjects", "GetObject", "HeadObject"].contains(&op.as_str())
        ),
        "{ops:?}"
    );
    Ok(())
}
