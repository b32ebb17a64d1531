//! Listing pages cut short or malformed on the way (a proxy, a broken connection, a faulty
//! server): every key arrives after retries, or the listing ends with a short error item;
//! never fewer keys without an error. Also objects listed without `LastModified`, and
//! `survey_root`.

mod common;

use futures::StreamExt;
use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::fixture::{old_time, Fixture};
use gc_core::storage::{RootSurvey, Storage, StorageError};
use s3_mem_server::{CutAt, FaultKind, Faults, S3MemServer};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

const ROOT: &str = "registry/root";
const V2: &str = "docker/registry/v2/";
/// Keys listed under the cuts a proxy makes (after a whole entry, or anywhere).
const KEYS: usize = 10_000;
/// Keys listed under the other kinds of damage (smaller, to keep the test quick).
const FEW_KEYS: usize = 3_000;

/// How many keys to list under `kind`.
fn keys_for(kind: FaultKind) -> usize {
    match kind {
        FaultKind::CutBody(CutAt::AfterLastContents | CutAt::Middle) => KEYS,
        _ => FEW_KEYS,
    }
}

/// Every kind of damaged answer a listing page can get.
const DAMAGE: &[FaultKind] = &[
    FaultKind::CutBody(CutAt::AfterLastContents),
    FaultKind::CutBody(CutAt::AfterMiddleContents),
    FaultKind::CutBody(CutAt::InsideLastKey),
    FaultKind::CutBody(CutAt::Middle),
    FaultKind::CloseMidBody(CutAt::AfterMiddleContents),
    FaultKind::WrongKeyCount,
    FaultKind::DropKeyCount,
    FaultKind::DropIsTruncated,
];

/// Damage 30 % of the listing pages (3 of every 10, spread evenly), each at most `max` times.
fn thirty_percent(kind: FaultKind, max: Option<u32>) -> Faults {
    Faults {
        fail_fraction: Some((3, 10)),
        max_failures_per_request: max,
        operations: vec!["ListObjectsV2".to_string()],
        kinds: vec![kind],
        ..Faults::default()
    }
}

/// Damage every listing page, every time.
fn every_page(kind: FaultKind) -> Faults {
    Faults {
        fail_every_nth: Some(1),
        operations: vec!["ListObjectsV2".to_string()],
        kinds: vec![kind],
        ..Faults::default()
    }
}

async fn listed(storage: &dyn Storage) -> (BTreeSet<String>, Vec<StorageError>) {
    let mut keys = BTreeSet::new();
    let mut errors = Vec::new();
    let mut stream = storage.list(V2);
    let run = async {
        while let Some(item) = stream.next().await {
            match item {
                Ok(meta) => assert!(keys.insert(meta.key.clone()), "{} twice", meta.key),
                Err(e) => errors.push(e),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("listing finishes");
    (keys, errors)
}

/// One line, short, and none of the SDK's debug text.
fn assert_concise(e: &StorageError) {
    let text = e.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.chars().count() < 300, "{} chars: {text}", text.len());
    for debug in ["ServiceError", "raw: Response", "SdkBody", "Unhandled {"] {
        assert!(!text.contains(debug), "{text}");
    }
}

fn seeded(keys: usize) -> (S3MemServer, BTreeSet<String>) {
    let server = common::server();
    let keys = common::registry_keys(keys);
    common::seed(&server, ROOT, &keys);
    let expected = keys.into_iter().map(|(k, _)| k).collect();
    (server, expected)
}

#[tokio::test]
async fn damaged_pages_are_retried_until_every_key_arrives() {
    for &kind in DAMAGE {
        let (server, expected) = seeded(keys_for(kind));
        let clean = common::storage(&server, ROOT, 8).await;
        let (got, errors) = listed(&clean).await;
        assert!(errors.is_empty() && got == expected, "{errors:?}");
        let clean_lists = clean.request_counts().list;
        // At most two damaged answers per page: retries always get through.
        server.set_faults(thirty_percent(kind, Some(2)));
        let storage = common::storage(&server, ROOT, 8).await;
        let (got, errors) = listed(&storage).await;
        assert!(errors.is_empty(), "{kind:?}: {errors:?}");
        assert_eq!(got.len(), expected.len(), "{kind:?}");
        assert!(got == expected, "{kind:?}: listed keys differ");
        let lists = storage.request_counts().list;
        assert!(
            lists > clean_lists,
            "{kind:?}: {lists} LISTs, no page was damaged"
        );
        eprintln!("{kind:?}: {lists} LISTs ({clean_lists} without damage)");
    }
}

#[tokio::test]
async fn damaged_pages_never_end_a_listing_quietly() {
    for &kind in DAMAGE {
        let (server, expected) = seeded(keys_for(kind));
        // 30 % damaged with no cap: whatever the timing, every key or an error.
        server.set_faults(thirty_percent(kind, None));
        let storage = common::storage(&server, ROOT, 8).await;
        let (got, errors) = listed(&storage).await;
        assert!(
            got.is_subset(&expected),
            "{kind:?}: a key that does not exist"
        );
        assert!(
            got.len() == expected.len() || !errors.is_empty(),
            "{kind:?}: {} of {} keys and no error",
            got.len(),
            expected.len()
        );
        errors.iter().for_each(assert_concise);
    }
}

#[tokio::test]
async fn a_page_damaged_every_time_ends_its_range_with_one_short_error() {
    let (server, expected) = seeded(3000);
    for &kind in DAMAGE {
        server.set_faults(every_page(kind));
        server.clear_requests();
        let storage = common::storage(&server, ROOT, 4).await;
        let (got, errors) = listed(&storage).await;
        assert!(got.is_subset(&expected), "{kind:?}");
        // The first page never arrives, so there is one range and one error.
        assert!(got.is_empty(), "{kind:?}: {} keys", got.len());
        assert_eq!(errors.len(), 1, "{kind:?}: {errors:?}");
        let e = &errors[0];
        assert_concise(e);
        assert_eq!(e.key(), V2, "{e}");
        let text = e.to_string();
        assert!(
            text.contains(
                "s3://registry-bucket: ListObjectsV2 of registry/root/docker/registry/v2/"
            ),
            "{text}"
        );
        let attempts = server.requests().len();
        if let FaultKind::CloseMidBody(_) = kind {
            // A broken connection: the SDK's own retries (6 attempts in these tests), and what
            // the connection met, without the SDK's names for its layers.
            assert!(text.contains("connection closed"), "{text}");
            assert!(!text.contains("dispatch failure"), "{text}");
            assert_eq!(attempts, 6, "{kind:?}");
        } else {
            let reason = match kind {
                FaultKind::CutBody(CutAt::AfterMiddleContents | CutAt::Middle) => {
                    "(KeyCount 1000 but "
                }
                FaultKind::WrongKeyCount => "(KeyCount 1001 but 1000 entries)",
                FaultKind::DropKeyCount => "(no KeyCount)",
                FaultKind::DropIsTruncated => "(no IsTruncated)",
                _ => "(body ends before </ListBucketResult>)",
            };
            let expected = format!("response cut short or malformed after 5 attempts {reason}");
            assert!(text.contains(&expected), "{text}");
            assert_eq!(attempts, 5, "{kind:?}");
        }
        eprintln!("{kind:?}: {text}");
    }
}

#[tokio::test]
async fn objects_listed_without_last_modified_are_young() {
    let (server, expected) = seeded(1500);
    server.set_omit_last_modified(true);
    let storage = common::storage(&server, ROOT, 4).await;
    let before = SystemTime::now();
    let mut stream = storage.list(V2);
    let mut count = 0;
    while let Some(item) = stream.next().await {
        let meta = item.expect("listed");
        assert!(
            meta.last_modified >= before,
            "{}: {:?}",
            meta.key,
            meta.last_modified
        );
        assert!(meta.last_modified <= SystemTime::now());
        count += 1;
    }
    assert_eq!(count, expected.len());
    let key = expected.iter().next().expect("a key");
    let head = storage.head(key).await.expect("head").expect("exists");
    assert!(head.last_modified >= before, "{:?}", head.last_modified);
}

#[tokio::test]
async fn survey_root_names_what_lies_under_and_beside_the_root() {
    let server = common::server();
    let t = SystemTime::now();
    for key in [
        "registry/docker/registry/v2/blobs/sha256/ab/abc/data",
        "registry/docker/registry/v2/repositories/a/_layers/x",
        "registry/notes.txt",
        "backup/registry.tar",
        "top.txt",
    ] {
        server.put_object_direct(common::BUCKET, key, b"x".to_vec(), t);
    }
    // A mistyped root at the top of the bucket: nothing under it, the real one beside it.
    let wrong = common::storage(&server, "wrong", 4).await;
    let survey = wrong.survey_root().await.expect("survey");
    assert!(survey.under_root.is_empty(), "{survey:?}");
    assert_eq!(survey.beside_root, ["backup/", "registry/", "top.txt"]);
    assert_eq!(wrong.request_counts().list, 2);

    // The right root: its entries, and its neighbours.
    let right = common::storage(&server, "registry", 4).await;
    let survey = right.survey_root().await.expect("survey");
    assert_eq!(survey.under_root, ["docker/", "notes.txt"]);
    assert_eq!(survey.beside_root, ["backup/", "registry/", "top.txt"]);

    // A root one level too deep; and no root at all (nothing beside the top of a bucket).
    let deep = common::storage(&server, "registry/docker/registry", 4).await;
    let survey = deep.survey_root().await.expect("survey");
    assert_eq!(survey.under_root, ["v2/"]);
    assert_eq!(survey.beside_root, ["registry/"]);
    let top = common::storage(&server, "", 4).await;
    let survey = top.survey_root().await.expect("survey");
    assert_eq!(survey.under_root, ["backup/", "registry/", "top.txt"]);
    assert!(survey.beside_root.is_empty());
    assert_eq!(top.request_counts().list, 1);

    // Damaged pages are retried here too.
    server.set_faults(Faults {
        fail_first_attempts: Some(2),
        kinds: vec![FaultKind::CutBody(CutAt::AfterMiddleContents)],
        ..Faults::default()
    });
    let survey = wrong.survey_root().await.expect("survey");
    assert_eq!(survey.beside_root, ["backup/", "registry/", "top.txt"]);

    // At most MAX_ENTRIES of each.
    server.clear_faults();
    for i in 0..RootSurvey::MAX_ENTRIES + 10 {
        server.put_object_direct(common::BUCKET, &format!("wrong/k{i:03}"), b"x".to_vec(), t);
    }
    let survey = wrong.survey_root().await.expect("survey");
    assert_eq!(survey.under_root.len(), RootSurvey::MAX_ENTRIES);
    assert_eq!(survey.under_root[0], "k000");
}

fn options() -> AuditOptions {
    AuditOptions {
        now: Some(old_time() + Duration::from_secs(30 * 86400)),
        ..AuditOptions::default()
    }
}

/// A registry with a few images and an orphan, plus 4,000 blob keys (listed, never read).
async fn registry_server() -> S3MemServer {
    let f = Fixture::new();
    for r in 0..3 {
        let repo = format!("team/app{r}");
        for i in 0..3 {
            let image = f.image(&repo, &format!("{r}-{i}"), 2, i % 2 == 0);
            f.tag(&repo, &format!("v{i}"), &image.manifest);
        }
    }
    f.blob(b"an orphaned blob");
    let server = common::server();
    common::copy_into(&server, &f.storage, ROOT).await;
    let blobs: Vec<_> = common::registry_keys(40_000)
        .into_iter()
        .filter(|(k, _)| k.contains("/blobs/"))
        .take(4000)
        .collect();
    common::seed(&server, ROOT, &blobs);
    server
}

async fn audit_s3(server: &S3MemServer) -> gc_core::report::Report {
    let storage = common::storage(server, ROOT, 8).await;
    tokio::time::timeout(
        Duration::from_secs(120),
        audit(&storage, &options(), &NoProgress),
    )
    .await
    .expect("audit finishes")
    .report
}

#[tokio::test]
async fn an_audit_over_damaged_pages_is_whole_or_incomplete_never_short() {
    let server = registry_server().await;
    let bucket_keys = server.object_count(common::BUCKET) as u64;
    let clean = audit_s3(&server).await;
    assert!(clean.summary.complete);
    assert_eq!(clean.summary.totals.keys, bucket_keys);

    for &kind in &[
        FaultKind::CutBody(CutAt::AfterLastContents),
        FaultKind::CutBody(CutAt::AfterMiddleContents),
        FaultKind::CutBody(CutAt::InsideLastKey),
    ] {
        server.set_faults(thirty_percent(kind, None));
        let report = audit_s3(&server).await;
        if report.summary.complete {
            assert_eq!(report.summary.totals, clean.summary.totals, "{kind:?}");
            assert_eq!(report.missing, clean.missing, "{kind:?}");
            assert_eq!(report.broken, clean.broken, "{kind:?}");
            assert_eq!(report.orphaned.len(), clean.orphaned.len(), "{kind:?}");
        } else {
            eprintln!("{kind:?}: incomplete: {:?}", report.summary.errors);
        }
        for e in &report.summary.errors {
            assert!(!e.contains('\n') && e.chars().count() < 400, "{e}");
        }

        server.set_faults(every_page(kind));
        let report = audit_s3(&server).await;
        assert!(
            !report.summary.complete,
            "{kind:?}: complete without a listing"
        );
        assert!(report.orphaned.is_empty(), "{kind:?}");
        let errors = report.summary.errors.join("\n");
        assert!(errors.contains("after 5 attempts"), "{kind:?}: {errors}");
    }
}
