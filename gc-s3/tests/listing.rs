//! Listing: exactly the seeded keys, and within a few percent of one LIST per 1,000 keys.
//!
//! The bound asserted is the one `gc_s3::list` proves for its default tuning:
//! `LIST ≤ (N/1000 + 1) / 0.95 ≤ 1.06 × ceil(N/1000) + 2`, and exactly `ceil(N/1000)` below
//! 20 pages (no split).

mod common;

use futures::StreamExt;
use gc_core::storage::{Storage, StorageError};
use s3_mem_server::Faults;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

const ROOT: &str = "registry/root";
const V2: &str = "docker/registry/v2/";

fn bound(keys: usize) -> u64 {
    let pages = keys.div_ceil(1000).max(1) as f64;
    (1.06 * pages + 2.0).floor() as u64
}

async fn listed(storage: &dyn Storage) -> (BTreeSet<(String, u64)>, Vec<StorageError>) {
    let mut keys = BTreeSet::new();
    let mut errors = Vec::new();
    let mut stream = storage.list(V2);
    while let Some(item) = stream.next().await {
        match item {
            Ok(meta) => assert!(keys.insert((meta.key, meta.size)), "listed twice"),
            Err(e) => errors.push(e),
        }
    }
    (keys, errors)
}

#[tokio::test]
async fn listing_returns_exactly_the_seeded_keys_with_few_requests() {
    let server = common::server();
    let keys = common::registry_keys(20_000);
    common::seed(&server, ROOT, &keys);
    // Neighbours of the root directory that must not appear.
    let t = SystemTime::now();
    server.put_object_direct(
        common::BUCKET,
        "registry/rootx/docker/registry/v2/blobs/x",
        b"n".to_vec(),
        t,
    );
    server.put_object_direct(
        common::BUCKET,
        "registry/root/docker/registry/v20/x",
        b"n".to_vec(),
        t,
    );
    server.put_object_direct(common::BUCKET, "aaa/docker/registry/v2/x", b"n".to_vec(), t);
    let expected: BTreeSet<(String, u64)> =
        keys.iter().map(|(k, s)| (k.clone(), *s as u64)).collect();
    for concurrency in [64, 4, 1] {
        let storage = common::storage(&server, ROOT, concurrency).await;
        let (got, errors) = tokio::time::timeout(Duration::from_secs(120), listed(&storage))
            .await
            .expect("listing finishes");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "listed keys differ from the seeded ones");
        let lists = storage.request_counts().list;
        assert!(
            lists <= bound(keys.len()),
            "concurrency {concurrency}: {lists} LISTs for {} keys",
            keys.len()
        );
        eprintln!(
            "concurrency {concurrency}: {lists} LISTs for {} keys",
            keys.len()
        );
    }
}

#[tokio::test]
async fn request_bound_holds_at_every_size() {
    for n in [0usize, 1, 999, 1000, 1001, 2500, 7000, 33_000] {
        let server = common::server();
        let keys = common::registry_keys(n);
        common::seed(&server, ROOT, &keys);
        let storage = common::storage(&server, ROOT, 64).await;
        let (got, errors) = listed(&storage).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(got.len(), keys.len());
        let lists = storage.request_counts().list;
        if keys.len() <= 20_000 {
            assert_eq!(lists, keys.len().div_ceil(1000).max(1) as u64, "{n} keys");
        }
        assert!(lists <= bound(keys.len()), "{lists} LISTs for {n} keys");
        eprintln!("{} keys: {lists} LISTs", keys.len());
    }
}

#[tokio::test]
async fn a_range_that_fails_is_an_error_naming_the_prefix_not_a_silent_gap() {
    let server = common::server();
    let keys = common::registry_keys(5000);
    common::seed(&server, ROOT, &keys);
    let broken = format!("{ROOT}/{V2}repositories/library/");
    server.set_faults(Faults {
        fail_forever_prefixes: vec![broken],
        ..Faults::default()
    });
    let storage = common::storage(&server, ROOT, 8).await;
    let (got, errors) = tokio::time::timeout(Duration::from_secs(60), listed(&storage))
        .await
        .expect("listing finishes");
    assert!(!errors.is_empty());
    for e in &errors {
        assert_eq!(e.key(), V2, "{e}");
        assert!(e.to_string().contains("ListObjectsV2"), "{e}");
    }
    // Whatever was listed is real, and the gap is reported above, not hidden.
    let all: BTreeSet<(String, u64)> = keys.iter().map(|(k, s)| (k.clone(), *s as u64)).collect();
    assert!(got.is_subset(&all));
    assert!(got.len() < all.len());
}
