//! `S3Storage` as `ObjectVersions` against s3-mem-server: versioning states, versions listed
//! across pages under a root directory, reads of old versions and of delete markers, damaged
//! and failing pages, and nothing but reads on the wire.

mod common;

use common::{s3_key, storage, BUCKET};
use futures::TryStreamExt;
use gc_core::storage::{ObjectVersion, Storage, StorageError, Versioning};
use gc_s3::S3Storage;
use s3_mem_server::{BucketVersioning, CutAt, FaultKind, Faults, S3MemServer, READ_OPERATIONS};
use std::collections::BTreeMap;
use std::time::SystemTime;

const ROOT: &str = "registry";

/// Every version under `prefix`, through the storage's `ObjectVersions`.
async fn listed(storage: &S3Storage, prefix: &str) -> Result<Vec<ObjectVersion>, StorageError> {
    let versions = storage.versions().expect("S3 storage has versions");
    versions.list_versions(prefix).try_collect().await
}

/// What the server holds under `ROOT/prefix`: (storage key, version id, delete marker, size,
/// latest), sorted.
fn truth(server: &S3MemServer, keys: &[String]) -> Vec<(String, String, bool, u64, bool)> {
    let mut all = Vec::new();
    for key in keys {
        for (i, v) in server
            .object_versions(BUCKET, &s3_key(ROOT, key))
            .into_iter()
            .enumerate()
        {
            all.push((
                key.clone(),
                v.version_id,
                v.delete_marker,
                v.data.len() as u64,
                i == 0,
            ));
        }
    }
    all.sort();
    all
}

fn summary(versions: &[ObjectVersion]) -> Vec<(String, String, bool, u64, bool)> {
    let mut all: Vec<_> = versions
        .iter()
        .map(|v| {
            (
                v.key.clone(),
                v.version_id.clone(),
                v.delete_marker,
                v.size,
                v.is_latest,
            )
        })
        .collect();
    all.sort();
    all
}

/// A bucket with objects under `ROOT` before versioning (null versions), then versioning on:
/// `keys` keys with 1 + i % 4 more versions each, every third deleted (a marker over it),
/// and keys beside the root that must never be listed.
fn seeded(keys: usize) -> (S3MemServer, Vec<String>) {
    let server = common::server();
    let t = SystemTime::now();
    let names: Vec<String> = (0..keys)
        .map(|i| {
            format!(
                "docker/registry/v2/blobs/sha256/{:02x}/{i:06}/data",
                i % 256
            )
        })
        .collect();
    for name in names.iter().step_by(2) {
        server.put_object_direct(BUCKET, &s3_key(ROOT, name), b"null-version".to_vec(), t);
    }
    server.put_object_direct(BUCKET, "registry-old/docker/x", b"beside".to_vec(), t);
    server.put_object_direct(BUCKET, "elsewhere/docker/x", b"beside".to_vec(), t);
    assert!(server.set_versioning(BUCKET, BucketVersioning::Enabled));
    for (i, name) in names.iter().enumerate() {
        for n in 0..=(i % 4) {
            server.put_object_direct(BUCKET, &s3_key(ROOT, name), vec![b'v'; n + 1], t);
        }
    }
    server.put_object_direct(BUCKET, "registry-old/docker/x", b"beside 2".to_vec(), t);
    (server, names)
}

#[tokio::test]
async fn versioning_states() {
    let server = common::server();
    let storage = storage(&server, ROOT, 4).await;
    let versions = storage.versions().expect("versions");
    assert_eq!(
        versions.versioning().await.expect("state"),
        Versioning::Never
    );
    server.set_versioning(BUCKET, BucketVersioning::Enabled);
    assert_eq!(
        versions.versioning().await.expect("state"),
        Versioning::Enabled
    );
    server.set_versioning(BUCKET, BucketVersioning::Suspended);
    assert_eq!(
        versions.versioning().await.expect("state"),
        Versioning::Suspended
    );

    // Refused credentials: an error naming the bucket, not a state.
    let mut cfg = common::config(&server, ROOT, 4);
    if let Some(c) = cfg.static_credentials.as_mut() {
        c.secret_key = "wrong".to_string();
    }
    let refused = S3Storage::connect(cfg).await.expect("connect");
    let err = refused
        .versions()
        .expect("versions")
        .versioning()
        .await
        .expect_err("refused");
    // Refused with the service's code and a hint, naming the bucket (gc-s3's one-line errors).
    assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");
    assert!(err.to_string().contains(BUCKET), "{err}");

    // A missing bucket is an error too.
    let mut cfg = common::config(&server, ROOT, 4);
    cfg.bucket = "no-such-bucket".to_string();
    let missing = S3Storage::connect(cfg).await.expect("connect");
    let err = missing
        .versions()
        .expect("versions")
        .versioning()
        .await
        .expect_err("no bucket");
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
}

#[tokio::test]
async fn versions_list_across_pages_under_the_root() {
    let (server, names) = seeded(1200);
    // Markers over every third key, written as the registry's driver deletes.
    let markers: Vec<String> = names.iter().step_by(3).cloned().collect();
    let client = plain_client(&server);
    for name in &markers {
        client
            .delete_object()
            .bucket(BUCKET)
            .key(s3_key(ROOT, name))
            .send()
            .await
            .expect("delete");
    }
    let storage = storage(&server, ROOT, 4).await;
    assert_eq!(storage.object_key(&names[0]), s3_key(ROOT, &names[0]));
    server.set_read_only(true);
    server.clear_requests();
    let before = storage.request_counts();
    let got = listed(&storage, "").await.expect("list versions");
    let expected = truth(&server, &names);
    // 1200 keys × 2.5 versions + 600 null versions + 400 markers = 4000 entries: 4 pages.
    assert_eq!(expected.len(), 1200 * 5 / 2 + 600 + 400);
    assert_eq!(summary(&got), expected);
    assert!(got.iter().all(|v| v.key.starts_with("docker/registry/v2/")));
    let log = server.requests();
    let pages = log
        .iter()
        .filter(|r| r.operation == "ListObjectVersions")
        .count() as u64;
    assert_eq!(pages, 4);
    assert_eq!(log.len() as u64, pages, "{log:?}");
    assert_eq!(storage.request_counts().list - before.list, pages);

    // Markers and old versions have what S3 gives them.
    let by_key: BTreeMap<&str, Vec<&ObjectVersion>> =
        got.iter().fold(BTreeMap::new(), |mut m, v| {
            m.entry(v.key.as_str()).or_default().push(v);
            m
        });
    for name in &markers {
        let versions = &by_key[name.as_str()];
        let latest: Vec<_> = versions.iter().filter(|v| v.is_latest).collect();
        assert_eq!(latest.len(), 1);
        assert!(latest[0].delete_marker && latest[0].size == 0 && latest[0].e_tag.is_none());
        assert!(versions
            .iter()
            .filter(|v| !v.delete_marker)
            .all(|v| v.e_tag.is_some() && v.size > 0));
    }
    let first = &by_key[names[0].as_str()];
    assert!(first.iter().any(|v| v.version_id == "null" && v.size == 12));

    // A prefix below the root lists only its keys.
    let sub = "docker/registry/v2/blobs/sha256/00/";
    let got_sub = listed(&storage, sub).await.expect("list sub");
    let sub_names: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with(sub))
        .cloned()
        .collect();
    assert_eq!(summary(&got_sub), truth(&server, &sub_names));
    assert!(!got_sub.is_empty());
    for r in server.requests() {
        assert!(READ_OPERATIONS.contains(&r.operation.as_str()), "{r:?}");
        assert_eq!(r.method, "GET", "{r:?}");
        assert_ne!(r.status, Some(403), "{r:?}");
    }

    // A prefix that is not one is refused before any request.
    let err = listed(&storage, "docker").await.expect_err("bad prefix");
    assert!(matches!(err, StorageError::InvalidPrefix(_)), "{err}");
}

#[tokio::test]
async fn damaged_and_failing_version_pages_are_asked_for_again() {
    let (server, names) = seeded(900);
    let storage = storage(&server, ROOT, 4).await;
    let expected = truth(&server, &names);
    for kinds in [
        vec![FaultKind::CutBody(CutAt::Middle)],
        vec![FaultKind::DropIsTruncated],
        vec![FaultKind::SlowDown, FaultKind::DropConnection],
        vec![FaultKind::CloseMidBody(CutAt::Middle)],
    ] {
        server.set_faults(Faults {
            fail_every_nth: Some(2),
            max_failures_per_request: Some(3),
            operations: vec!["ListObjectVersions".to_string()],
            kinds: kinds.clone(),
            ..Faults::default()
        });
        let got = listed(&storage, "").await.expect("listed despite faults");
        assert_eq!(summary(&got), expected, "{kinds:?}");
    }
    // Every page's first two attempts throttled: each page is its own request to the server.
    server.set_faults(Faults {
        fail_first_attempts: Some(2),
        operations: vec!["ListObjectVersions".to_string()],
        ..Faults::default()
    });
    server.clear_requests();
    let got = listed(&storage, "")
        .await
        .expect("listed despite throttling");
    assert_eq!(summary(&got), expected);
    let log = server.requests();
    let refused = log.iter().filter(|r| r.status == Some(503)).count();
    let pages = log.iter().filter(|r| r.status == Some(200)).count();
    assert!(pages >= 3, "{log:?}");
    assert_eq!(refused, 2 * pages, "{log:?}");
    // A page that never comes whole ends the stream with an error, not a short listing.
    server.set_faults(Faults {
        fail_every_nth: Some(1),
        operations: vec!["ListObjectVersions".to_string()],
        kinds: vec![FaultKind::CutBody(CutAt::Middle)],
        ..Faults::default()
    });
    let err = listed(&storage, "").await.expect_err("never whole");
    let text = err.to_string();
    assert!(
        text.contains("ListObjectVersions") && text.contains("attempts"),
        "{text}"
    );
    server.clear_faults();
}

#[tokio::test]
async fn get_version_reads_old_versions_and_not_markers() {
    let server = common::server();
    let key = "docker/registry/v2/blobs/sha256/ab/abcd/data";
    let t = SystemTime::now();
    server.put_object_direct(BUCKET, &s3_key(ROOT, key), b"before versioning".to_vec(), t);
    server.set_versioning(BUCKET, BucketVersioning::Enabled);
    server.put_object_direct(BUCKET, &s3_key(ROOT, key), b"second".to_vec(), t);
    let client = plain_client(&server);
    let deleted = client
        .delete_object()
        .bucket(BUCKET)
        .key(s3_key(ROOT, key))
        .send()
        .await
        .expect("delete");
    let marker = deleted.version_id().expect("marker").to_string();
    let storage = storage(&server, ROOT, 4).await;
    server.set_read_only(true);
    let versions = storage.versions().expect("versions");

    // The key is gone for plain reads...
    assert_eq!(storage.get(key, 1 << 20).await.expect("get"), None);
    // ...and every version of it is still there.
    let listed = listed(&storage, "docker/").await.expect("list");
    assert_eq!(listed.len(), 3);
    let second = listed
        .iter()
        .find(|v| !v.delete_marker && v.version_id != "null")
        .expect("second version");
    assert_eq!(
        versions
            .get_version(key, &second.version_id, 1 << 20)
            .await
            .expect("get"),
        Some(b"second".to_vec())
    );
    assert_eq!(
        versions
            .get_version(key, "null", 1 << 20)
            .await
            .expect("get"),
        Some(b"before versioning".to_vec())
    );
    // A delete marker, a version the key never had, a key that never was: none.
    assert_eq!(
        versions
            .get_version(key, &marker, 1 << 20)
            .await
            .expect("marker"),
        None
    );
    assert_eq!(
        versions
            .get_version(key, "v-nope", 1 << 20)
            .await
            .expect("no version"),
        None
    );
    assert_eq!(
        versions
            .get_version("docker/nothing", "null", 1 << 20)
            .await
            .expect("no key"),
        None
    );
    // Over the limit: refused from the Content-Length, not read.
    let err = versions
        .get_version(key, "null", 4)
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            StorageError::TooLarge {
                size: 17,
                limit: 4,
                ..
            }
        ),
        "{err}"
    );
    let counts = storage.request_counts();
    assert_eq!(
        counts.get,
        1 + 6,
        "one plain GET and six of versions: {counts:?}"
    );
    for r in server.requests() {
        if r.operation == "DeleteObject" {
            continue; // The driver's delete above, before read-only mode.
        }
        assert!(READ_OPERATIONS.contains(&r.operation.as_str()), "{r:?}");
        assert_ne!(r.status, Some(403), "{r:?}");
    }
}

/// A plain SDK client for the server, to delete as the registry's driver does (the storage's
/// own client refuses anything but reads).
fn plain_client(server: &S3MemServer) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(s3_mem_server::REGION))
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            s3_mem_server::ACCESS_KEY,
            s3_mem_server::SECRET_KEY,
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
