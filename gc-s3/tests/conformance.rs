//! gc-core's storage conformance suite over S3Storage and s3-mem-server.

mod common;

use gc_core::storage::conformance::{run_all, FIXTURE};
use std::time::SystemTime;

async fn conforms(root: &str) {
    let server = common::server();
    for (k, v) in FIXTURE {
        server.put_object_direct(
            common::BUCKET,
            &common::s3_key(root, k),
            v.to_vec(),
            SystemTime::now(),
        );
    }
    // Neighbours of the root that must never be listed.
    server.put_object_direct(
        common::BUCKET,
        "registry/rootx/docker/registry/v2/x",
        b"no".to_vec(),
        SystemTime::now(),
    );
    server.put_object_direct(
        common::BUCKET,
        "registry/docker/registry/v2/y",
        b"no".to_vec(),
        SystemTime::now(),
    );
    let storage = common::storage(&server, root, 8).await;
    run_all(&storage).await;
}

#[tokio::test]
async fn s3_storage_conforms_under_a_root_directory() {
    conforms("registry/root").await;
}

#[tokio::test]
async fn s3_storage_conforms_at_the_bucket_root() {
    // The neighbours above are then inside the listed tree, so use a server of our own.
    let server = common::server();
    for (k, v) in FIXTURE {
        server.put_object_direct(common::BUCKET, k, v.to_vec(), SystemTime::now());
    }
    run_all(&common::storage(&server, "", 8).await).await;
}

#[tokio::test]
async fn location_and_name() {
    let server = common::server();
    let storage = common::storage(&server, "/registry/root/", 8).await;
    use gc_core::storage::Storage;
    assert_eq!(storage.location(), "s3://registry-bucket/registry/root");
    assert_eq!(storage.name(), "s3");
}
