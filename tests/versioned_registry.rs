//! The real docker-registry 2.8.2 (`s3` driver) on a versioned s3-mem-server bucket: what its
//! deletes leave behind, read back through `S3Storage`'s `ObjectVersions`.
//!
//! The driver deletes without version ids (DeleteObjects for a directory, DeleteObject for a
//! file), so on a versioned bucket every key that a manifest delete or `garbage-collect -m`
//! removes gets a delete marker over the version it had: hidden from listings and reads, still
//! there to restore. Fails (never skips) when `docker-registry` is not installed.

use futures::TryStreamExt;
use gc_core::storage::{ObjectVersion, Storage, Versioning};
use gc_s3::{Retries, S3Config, S3Storage, StaticCredentials};
use gc_testkit::image::{Blob, Format, Image, MultiArch, Platform};
use gc_testkit::{run_gc, Registry, S3Backend, ACCEPT_ALL_MANIFESTS};
use s3_mem_server::{BucketVersioning, S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::collections::BTreeMap;
use std::time::Duration;

const BUCKET: &str = "versioned-registry";

fn blob_key(digest: &str) -> String {
    let hex = digest.trim_start_matches("sha256:");
    format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2])
}

async fn storage(server: &S3MemServer) -> S3Storage {
    let mut cfg = S3Config::compatible_endpoint(
        BUCKET,
        "registry",
        server.endpoint(),
        REGION,
        StaticCredentials {
            access_key: ACCESS_KEY.to_string(),
            secret_key: SECRET_KEY.to_string(),
        },
    );
    cfg.retries = Retries {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
    };
    S3Storage::connect(cfg).await.expect("connect")
}

#[tokio::test]
async fn registry_deletes_on_a_versioned_bucket_leave_markers_over_old_versions() {
    let server = S3MemServer::start().expect("server");
    server.create_bucket(BUCKET);
    let reg = Registry::start_s3(&S3Backend::new(&server.endpoint(), BUCKET, "/registry"))
        .expect("docker-registry starts on s3 (apt-get install docker-registry)");
    let client = reg.client();

    // Pushed before versioning is enabled: its keys are `null` versions.
    let early = Image::builder(Format::Oci, "versioned-early", Platform::linux_amd64())
        .unique_layers(1)
        .build()
        .expect("image");
    let early_pushed = client
        .push_image("team/early", &early, Some("v1"), None)
        .expect("push early");
    server.set_versioning(BUCKET, BucketVersioning::Enabled);

    // A tagged multi-arch index: `garbage-collect -m` in 2.8.2 sweeps its children.
    let base = Blob::layer(Format::Oci, "versioned-shared-base");
    let platforms = [Platform::linux_amd64(), Platform::new("linux", "arm64")];
    let mut builder = MultiArch::builder(Format::Oci);
    for (i, p) in platforms.iter().enumerate() {
        let image = Image::builder(Format::Oci, &format!("versioned-multi-{i}"), p.clone())
            .layer(base.clone())
            .unique_layers(1)
            .build()
            .expect("image");
        builder = builder.image(image);
    }
    let multi = builder.build().expect("index");
    let pushed_multi = client
        .push_multi_arch("team/multi", &multi, Some("stable"), None)
        .expect("push index");
    // An image whose manifest is deleted through the API.
    let doomed = Image::builder(Format::Docker, "versioned-doomed", Platform::linux_amd64())
        .unique_layers(2)
        .build()
        .expect("image");
    let doomed_pushed = client
        .push_image("team/doomed", &doomed, Some("old"), None)
        .expect("push doomed");
    client
        .delete_manifest("team/doomed", &doomed_pushed.manifest)
        .expect("delete doomed");
    client
        .delete_manifest("team/early", &early_pushed.manifest)
        .expect("delete early");
    let config = reg.stop().expect("stop registry");
    let gc = run_gc(config.path(), false, true).expect("garbage-collect runs");
    gc.ensure_success().expect("garbage-collect -m succeeds");
    let ops = server.operation_counts();
    assert!(
        ops.contains_key("DeleteObjects") || ops.contains_key("DeleteObject"),
        "{ops:?}"
    );

    // Every blob of the deleted images, and every child manifest the -m sweep removed, is gone
    // for plain reads and kept as a version under a delete marker.
    let mut swept: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for blob in early.blobs().into_iter().chain(doomed.blobs()) {
        swept.insert(blob.digest.clone(), blob.bytes.clone());
    }
    // In 2.8.2 `-m` skips the untagged children when marking, so their configs and layers
    // are swept (the index marks only the child manifests themselves).
    let mut children_swept = 0;
    for entry in &multi.entries {
        for blob in entry.image.blobs() {
            if gc.output.eligible_blobs.contains(&blob.digest) {
                swept.insert(blob.digest.clone(), blob.bytes.clone());
                children_swept += 1;
            }
        }
    }
    assert!(
        children_swept >= multi.entries.len() * 2,
        "garbage-collect -m sweeps the blobs of a tagged index's children in 2.8.2: {:?}",
        gc.output.eligible_blobs
    );
    assert!(swept.len() > early.blobs().len() + doomed.blobs().len());
    for (digest, bytes) in &swept {
        let key = format!("registry/{}", blob_key(digest));
        assert_eq!(server.object(BUCKET, &key), None, "{key} still current");
        let versions = server.object_versions(BUCKET, &key);
        assert!(versions[0].delete_marker, "{key}: {versions:?}");
        assert!(
            versions[1..]
                .iter()
                .any(|v| !v.delete_marker && v.data.as_ref() == bytes.as_slice()),
            "{key}: no old version with the pushed bytes"
        );
    }

    // The same through gc-s3, which only reads.
    server.set_read_only(true);
    let storage = storage(&server).await;
    let versions = storage.versions().expect("S3 storage has versions");
    assert_eq!(
        versions.versioning().await.expect("state"),
        Versioning::Enabled
    );
    let listed: Vec<ObjectVersion> = versions
        .list_versions("docker/registry/v2/blobs/")
        .try_collect()
        .await
        .expect("list versions");
    let by_key: BTreeMap<&str, Vec<&ObjectVersion>> =
        listed.iter().fold(BTreeMap::new(), |mut m, v| {
            m.entry(v.key.as_str()).or_default().push(v);
            m
        });
    for (digest, bytes) in &swept {
        let key = blob_key(digest);
        let entries = by_key.get(key.as_str()).expect("listed");
        let marker = entries
            .iter()
            .find(|v| v.is_latest)
            .expect("a latest entry");
        assert!(marker.delete_marker, "{key}: {entries:?}");
        let old = entries
            .iter()
            .find(|v| !v.delete_marker && v.size == bytes.len() as u64)
            .expect("an old version of the pushed size");
        let got = versions
            .get_version(&key, &old.version_id, 1 << 20)
            .await
            .expect("get version");
        assert_eq!(got.as_deref(), Some(bytes.as_slice()), "{key}");
        assert_eq!(storage.get(&key, 1 << 20).await.expect("get"), None);
        assert_eq!(
            versions
                .get_version(&key, &marker.version_id, 1 << 20)
                .await
                .expect("get marker"),
            None
        );
    }
    // The early image's blobs were written before versioning: the `null` version.
    for blob in early.blobs() {
        let entries = &by_key[blob_key(&blob.digest).as_str()];
        assert!(
            entries
                .iter()
                .any(|v| v.version_id == "null" && !v.delete_marker),
            "{entries:?}"
        );
    }
    // What the index itself marks stays current: the index and its child manifests.
    let kept = std::iter::once(&pushed_multi.index)
        .chain(pushed_multi.children.iter().map(|c| &c.manifest));
    for digest in kept {
        let entries = &by_key[blob_key(digest).as_str()];
        assert!(
            entries.iter().any(|v| v.is_latest && !v.delete_marker),
            "{digest}: {entries:?}"
        );
    }
    assert!(server.requests().iter().all(|r| r.status != Some(403)));

    // Removing the markers over team/multi's keys (as a recovery would) brings its tag back
    // whole: the registry serves the index, every child and every blob with the pushed bytes.
    let repo_versions: Vec<ObjectVersion> = versions
        .list_versions("docker/registry/v2/repositories/team/multi/")
        .try_collect()
        .await
        .expect("list versions");
    let multi_blobs: BTreeMap<String, Vec<u8>> = multi
        .entries
        .iter()
        .flat_map(|e| {
            let child = &e.image.manifest;
            std::iter::once((child.digest.clone(), child.bytes.clone())).chain(
                e.image
                    .blobs()
                    .into_iter()
                    .map(|b| (b.digest.clone(), b.bytes.clone())),
            )
        })
        .collect();
    let markers: Vec<(String, String)> = repo_versions
        .iter()
        .chain(
            listed
                .iter()
                .filter(|v| multi_blobs.keys().any(|d| blob_key(d) == v.key)),
        )
        .filter(|v| v.is_latest && v.delete_marker)
        .map(|v| (format!("registry/{}", v.key), v.version_id.clone()))
        .collect();
    assert!(
        markers
            .iter()
            .any(|(k, _)| k.contains("/_manifests/revisions/")),
        "-m removes the children's revision links: {markers:?}"
    );
    server.set_read_only(false);
    let plain = plain_client(&server);
    for (key, marker) in &markers {
        plain
            .delete_object()
            .bucket(BUCKET)
            .key(key)
            .version_id(marker)
            .send()
            .await
            .expect("remove delete marker");
    }
    let reg = Registry::start_s3(&S3Backend::new(&server.endpoint(), BUCKET, "/registry"))
        .expect("registry restarts");
    let client = reg.client();
    let index = client
        .get_manifest("team/multi", "stable", ACCEPT_ALL_MANIFESTS)
        .expect("get index")
        .expect("team/multi:stable is served");
    assert_eq!(index.bytes, multi.index.bytes);
    for entry in &multi.entries {
        let child = &entry.image.manifest;
        let got = client
            .get_manifest("team/multi", &child.digest, ACCEPT_ALL_MANIFESTS)
            .expect("get child")
            .expect("the child is served again");
        assert_eq!(got.bytes, child.bytes);
        for blob in entry.image.blobs() {
            let got = client
                .get_blob("team/multi", &blob.digest)
                .expect("get blob")
                .expect("the blob is served again");
            assert_eq!(got, blob.bytes);
        }
    }
    reg.stop().expect("stop registry");
}

/// A plain SDK client for the server: the recovery runs outside gc-audit, whose own client
/// refuses anything but reads.
fn plain_client(server: &S3MemServer) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
