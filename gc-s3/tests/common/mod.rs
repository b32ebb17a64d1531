//! Shared test support: an s3-mem-server, a connected `S3Storage`, seeded trees.
#![allow(dead_code)]

use gc_core::storage::{MemStorage, Storage};
use gc_s3::{Retries, S3Config, S3Storage, StaticCredentials};
use s3_mem_server::{S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::time::{Duration, SystemTime};

pub const BUCKET: &str = "registry-bucket";

/// A server with an empty bucket.
pub fn server() -> S3MemServer {
    let server = S3MemServer::start().expect("start s3-mem-server");
    server.create_bucket(BUCKET);
    server
}

/// A configuration for `server`, with retries fast enough for tests.
pub fn config(server: &S3MemServer, root: &str, concurrency: usize) -> S3Config {
    let mut cfg = S3Config::compatible_endpoint(
        BUCKET,
        root,
        server.endpoint(),
        REGION,
        StaticCredentials {
            access_key: ACCESS_KEY.to_string(),
            secret_key: SECRET_KEY.to_string(),
        },
    );
    cfg.concurrency = concurrency;
    cfg.retries = Retries {
        max_attempts: 6,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
    };
    cfg
}

pub async fn storage(server: &S3MemServer, root: &str, concurrency: usize) -> S3Storage {
    S3Storage::connect(config(server, root, concurrency))
        .await
        .expect("connect")
}

/// The S3 key of a storage key under `root`.
pub fn s3_key(root: &str, key: &str) -> String {
    if root.is_empty() {
        key.to_string()
    } else {
        format!("{root}/{key}")
    }
}

/// Copy every object of `mem` into the server's bucket under `root`, keeping modification times.
pub async fn copy_into(server: &S3MemServer, mem: &MemStorage, root: &str) {
    for key in mem.keys() {
        let meta = mem.head(&key).await.expect("head").expect("exists");
        let data = mem.get(&key, u64::MAX).await.expect("get").expect("exists");
        server.put_object_direct(BUCKET, &s3_key(root, &key), data, meta.last_modified);
    }
}

#[allow(unused_imports)]
pub use s3_mem_server::sample::{hex64, registry_keys};

/// Seed `keys` into the bucket under `root`.
pub fn seed(server: &S3MemServer, root: &str, keys: &[(String, usize)]) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    server.put_objects_direct(
        BUCKET,
        keys.iter()
            .map(|(k, size)| (s3_key(root, k), vec![b'x'; *size], t)),
    );
}
