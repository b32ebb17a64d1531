//! Listings planned from a key spread (`Storage::list_spread`): exactly the keys an unplanned
//! listing returns, whatever the spread, and on an unchanged bucket the pages of one listing
//! with several ranges in flight.

mod common;

use futures::StreamExt;
use gc_core::storage::{KeySpread, Storage};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

const ROOT: &str = "registry/root";
const V2: &str = "docker/registry/v2/";

async fn listed(storage: &dyn Storage, spread: Option<&KeySpread>) -> BTreeSet<(String, u64)> {
    let mut keys = BTreeSet::new();
    let mut stream = storage.list_spread(V2, spread);
    let listing = async {
        while let Some(item) = stream.next().await {
            let meta = item.expect("no listing error");
            assert!(keys.insert((meta.key, meta.size)), "listed twice");
        }
    };
    tokio::time::timeout(Duration::from_secs(120), listing)
        .await
        .expect("listing finishes");
    keys
}

#[tokio::test]
async fn an_unchanged_bucket_is_listed_in_one_listings_pages_with_ranges_at_once() {
    for n in [2_500usize, 10_045, 45_000] {
        let server = common::server();
        let keys = common::registry_keys(n);
        common::seed(&server, ROOT, &keys);
        let first = common::storage(&server, ROOT, 64).await;
        let expected = listed(&first, None).await;
        assert_eq!(expected.len(), n);
        let spread = first
            .key_spread(V2)
            .expect("a complete listing records its spread");
        assert_eq!(spread.keys(), n as u64);

        server.set_latency(Duration::from_millis(5));
        server.reset_max_in_flight();
        let again = common::storage(&server, ROOT, 64).await;
        assert_eq!(listed(&again, Some(&spread)).await, expected, "{n} keys");
        let lists = again.request_counts().list;
        let pages = n.div_ceil(1000) as u64;
        assert!(
            lists <= pages + pages / 20 + 1,
            "{n} keys: {lists} LISTs planned, {pages} pages"
        );
        if n <= 20_000 {
            assert_eq!(lists, pages, "{n} keys: a small listing costs its pages");
        }
        assert!(
            server.max_in_flight() > 1,
            "{n} keys: the planned ranges ran one at a time"
        );
        eprintln!(
            "{n} keys: {lists} LISTs, {} at once",
            server.max_in_flight()
        );
    }
}

#[tokio::test]
async fn a_stale_or_foreign_spread_changes_requests_never_keys() {
    let server = common::server();
    let keys = common::registry_keys(12_000);
    common::seed(&server, ROOT, &keys);
    let first = common::storage(&server, ROOT, 64).await;
    listed(&first, None).await;
    let spread = first.key_spread(V2).expect("spread");

    // Keys pushed since, right at and around the spread's marks, and a new repository.
    let t = SystemTime::now();
    for (mark, _) in spread.marks.iter().step_by(7) {
        for suffix in ["", "0", "/x", "~"] {
            let key = format!("{mark}{suffix}.new");
            server.put_object_direct(
                common::BUCKET,
                &common::s3_key(ROOT, &key),
                b"n".to_vec(),
                t,
            );
        }
    }
    for i in 0..1500 {
        let key = format!("{V2}repositories/pushed/_layers/sha256/{i:064}/link");
        server.put_object_direct(
            common::BUCKET,
            &common::s3_key(ROOT, &key),
            b"l".to_vec(),
            t,
        );
    }
    let reference = listed(&common::storage(&server, ROOT, 64).await, None).await;
    assert!(reference.len() > 12_000);

    let foreign = KeySpread {
        marks: (0..40)
            .map(|i| (format!("{V2}blobs/sha256/{:02x}", i * 6), 500))
            .collect(),
    };
    let garbage = KeySpread {
        marks: vec![("zzz".to_string(), 9000), ("aaa".to_string(), 9000)],
    };
    let mut before_root = spread.clone();
    before_root.marks.insert(0, ("a".to_string(), 5000));
    for (what, spread) in [
        ("stale", &spread),
        ("foreign", &foreign),
        ("unsorted", &garbage),
        ("outside the prefix", &before_root),
        ("empty", &KeySpread::default()),
    ] {
        let storage = common::storage(&server, ROOT, 8).await;
        assert!(
            listed(&storage, Some(spread)).await == reference,
            "a {what} spread changed the keys listed"
        );
        let lists = storage.request_counts().list;
        eprintln!("{what} spread: {lists} LISTs for {} keys", reference.len());
    }
}
