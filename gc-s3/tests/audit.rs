//! Whole audits over S3: read-only, equal to the in-memory audit, robust to faults, bounded.

mod common;

use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::fixture::{old_time, Fixture};
use gc_core::layout::Key;
use gc_core::report::{ExitStatus, Report};
use gc_core::storage::Storage;
use s3_mem_server::{FaultKind, Faults, S3MemServer, READ_OPERATIONS};
use std::time::Duration;

const ROOT: &str = "registry/root";

fn options() -> AuditOptions {
    AuditOptions {
        now: Some(old_time() + Duration::from_secs(30 * 86400)),
        ..AuditOptions::default()
    }
}

/// A registry with healthy images, a multi-arch index, untagged manifests, an orphan blob,
/// an upload, and damage (a missing layer, a missing child revision link).
fn tree() -> Fixture {
    let f = Fixture::new();
    for r in 0..5 {
        let repo = format!("team/app{r}");
        for i in 0..4 {
            let image = f.image(&repo, &format!("{r}-{i}"), 2, i % 2 == 0);
            if i < 3 {
                f.tag(&repo, &format!("v{i}"), &image.manifest);
            }
        }
    }
    let amd = f.image("multi/arch", "amd", 2, true);
    let arm = f.image("multi/arch", "arm", 2, true);
    let index = f.index(
        "multi/arch",
        &[
            (&amd.manifest, "linux/amd64"),
            (&arm.manifest, "linux/arm64/v8"),
        ],
        true,
    );
    f.tag("multi/arch", "latest", &index);
    f.blob(b"an orphaned blob");
    f.upload("team/app0", b"pushed but never referenced");
    // Damage: a layer blob gone, and a child's revision link gone.
    let broken = f.image("team/app1", "broken", 2, false);
    f.tag("team/app1", "broken", &broken.manifest);
    f.remove(&Key::BlobData {
        digest: broken.layers[0].clone(),
    });
    f.remove(&Key::RevisionLink {
        repo: "multi/arch".to_string(),
        digest: arm.manifest.clone(),
    });
    f
}

/// Report rows that must agree between backends (orphaned rows without their times).
fn rows(r: &Report) -> impl PartialEq + std::fmt::Debug {
    let orphaned: Vec<_> = r
        .orphaned
        .iter()
        .map(|o| (o.digest.clone(), o.size, o.reclaimable_by))
        .collect();
    (
        orphaned,
        r.missing.clone(),
        r.dangling.clone(),
        r.gc_unsafe.clone(),
        r.broken.clone(),
        r.repos.clone(),
        r.findings.clone(),
        (r.summary.complete, r.summary.totals.clone()),
    )
}

async fn seeded() -> (Fixture, Report, S3MemServer) {
    let f = tree();
    let expected = audit(&f.storage, &options(), &NoProgress).await.report;
    assert!(expected.summary.complete);
    assert!(!expected.missing.is_empty() && !expected.orphaned.is_empty());
    let server = common::server();
    common::copy_into(&server, &f.storage, ROOT).await;
    (f, expected, server)
}

async fn audit_s3(server: &S3MemServer, concurrency: usize, opts: AuditOptions) -> Report {
    let storage = common::storage(server, ROOT, concurrency).await;
    tokio::time::timeout(
        Duration::from_secs(120),
        audit(&storage, &opts, &NoProgress),
    )
    .await
    .expect("audit finishes")
    .report
}

#[tokio::test]
async fn read_only_audit_makes_only_reads_and_matches_the_memory_audit() {
    let (_f, expected, server) = seeded().await;
    server.set_read_only(true);
    server.clear_requests();
    let report = audit_s3(&server, 16, options()).await;
    assert_eq!(rows(&report), rows(&expected));
    assert_eq!(report.summary.backend, "s3");
    assert_eq!(
        report.summary.location,
        "s3://registry-bucket/registry/root"
    );
    let log = server.requests();
    assert!(!log.is_empty());
    for r in &log {
        assert!(
            ["ListObjectsV2", "GetObject", "HeadObject"].contains(&r.operation.as_str())
                && READ_OPERATIONS.contains(&r.operation.as_str()),
            "{r:?}"
        );
        assert!(r.method == "GET" || r.method == "HEAD", "{r:?}");
        assert_ne!(r.status, Some(403), "{r:?}");
    }
    // The storage counted exactly what the server saw.
    let counts = report.summary.requests;
    let seen = |op: &str| log.iter().filter(|r| r.operation == op).count() as u64;
    assert_eq!(counts.list, seen("ListObjectsV2"));
    assert_eq!(counts.get, seen("GetObject"));
    assert_eq!(counts.head, seen("HeadObject"));
}

#[tokio::test]
async fn retried_faults_do_not_change_the_report() {
    let (_f, expected, server) = seeded().await;

    // Every request's first two attempts fail (dropped connection, then 503 SlowDown).
    server.set_faults(Faults {
        fail_first_attempts: Some(2),
        kinds: vec![FaultKind::DropConnection, FaultKind::SlowDown],
        ..Faults::default()
    });
    let report = audit_s3(&server, 16, options()).await;
    assert_eq!(rows(&report), rows(&expected));
    // Retried attempts are counted: three attempts per request.
    let r = report.summary.requests;
    assert_eq!((r.list + r.get + r.head) % 3, 0, "{r:?}");

    // Every third request fails, cycling 503, dropped connection and 500. At concurrency 1 a
    // retry directly follows its failed attempt, so no request fails twice in a row.
    server.set_faults(Faults {
        fail_every_nth: Some(3),
        kinds: vec![
            FaultKind::SlowDown,
            FaultKind::DropConnection,
            FaultKind::InternalError,
        ],
        ..Faults::default()
    });
    let report = audit_s3(&server, 1, options()).await;
    assert_eq!(rows(&report), rows(&expected));
    assert_eq!(report.exit_status(None), expected.exit_status(None));
}

#[tokio::test]
async fn a_read_that_fails_forever_makes_the_audit_incomplete_and_names_the_key() {
    let (f, _expected, server) = seeded().await;
    // The manifest of team/app2:v0 cannot be read.
    let tag = Key::TagCurrent {
        repo: "team/app2".to_string(),
        tag: "v0".to_string(),
    };
    let digest = f
        .storage
        .get(&tag.to_path(), 1024)
        .await
        .expect("get")
        .expect("tag link");
    let digest = String::from_utf8(digest).expect("utf-8");
    let manifest_key = Key::BlobData {
        digest: digest.parse().expect("digest"),
    }
    .to_path();
    server.set_faults(Faults {
        fail_objects_forever: vec![common::s3_key(ROOT, &manifest_key)],
        ..Faults::default()
    });
    let report = audit_s3(&server, 8, options()).await;
    assert!(!report.summary.complete);
    assert_eq!(report.exit_status(None), ExitStatus::Incomplete);
    assert!(
        report
            .summary
            .errors
            .iter()
            .any(|e| e.contains(&manifest_key)),
        "{:?}",
        report.summary.errors
    );
    assert!(
        report.orphaned.is_empty(),
        "an incomplete audit withholds reclaimable rows"
    );
}

#[tokio::test]
async fn a_listing_that_fails_forever_makes_the_audit_incomplete() {
    let (_f, _expected, server) = seeded().await;
    server.set_faults(Faults {
        fail_forever_prefixes: vec![format!("{ROOT}/docker/registry/v2/repositories/team/app3/")],
        ..Faults::default()
    });
    let report = audit_s3(&server, 8, options()).await;
    assert!(!report.summary.complete);
    assert_eq!(report.exit_status(None), ExitStatus::Incomplete);
    assert!(
        report
            .summary
            .errors
            .iter()
            .any(|e| e.contains("docker/registry/v2/") && e.contains("ListObjectsV2")),
        "{:?}",
        report.summary.errors
    );
}

#[tokio::test]
async fn requests_in_flight_never_exceed_the_concurrency() {
    let (_f, expected, server) = seeded().await;
    // Enough keys for a listing that splits, plus the audit's reads.
    let extra = common::registry_keys(30_000);
    let extra: Vec<_> = extra
        .into_iter()
        .filter(|(k, _)| k.contains("/blobs/"))
        .collect();
    common::seed(&server, ROOT, &extra);
    server.set_latency(Duration::from_millis(15));
    server.reset_max_in_flight();
    let opts = AuditOptions {
        concurrency: 64,
        ..options()
    };
    let storage = common::storage(&server, ROOT, 8).await;
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        audit(&storage, &opts, &NoProgress),
    )
    .await
    .expect("audit finishes")
    .report;
    assert!(report.summary.complete);
    assert_eq!(report.missing, expected.missing);
    let max = server.max_in_flight();
    assert!(max <= 8, "{max} requests in flight at concurrency 8");
    assert!(
        max >= 4,
        "only {max} in flight: the bound is not being used"
    );
    eprintln!(
        "max in flight {max}, requests {:?}",
        storage.request_counts()
    );
}

#[tokio::test]
async fn a_missing_bucket_is_an_incomplete_audit_that_says_what_s3_answered() {
    let server = common::server();
    let mut cfg = common::config(&server, ROOT, 8);
    cfg.bucket = "no-such-bucket".to_string();
    let storage = gc_s3::S3Storage::connect(cfg).await.expect("connect");
    let report = audit(&storage, &options(), &NoProgress).await.report;
    assert_eq!(report.exit_status(None), ExitStatus::Incomplete);
    let error = report.summary.errors.join("\n");
    assert!(
        error.contains("s3://no-such-bucket")
            && error.contains("NoSuchBucket: ")
            && error.contains("(HTTP 404)"),
        "{error}"
    );
    // The service's answer, not the SDK's debug dump of the raw response.
    assert!(
        !error.contains("ServiceError(") && !error.contains("raw: Response"),
        "{error}"
    );
}

/// The access check reads the listing's first page before the audit begins, and the listing
/// uses that page. A tag moved in between (after the check, in an earlier second than the
/// audit's start) is still moved during the run: the audit's clock starts at the check, so
/// the last look reads the tag again and its new target is not reclaimable.
#[tokio::test]
async fn a_tag_moved_between_the_access_check_and_the_audit_is_read_again() {
    let f = Fixture::new();
    let repo = "team/app";
    let old = f.image(repo, "old", 2, true).manifest;
    f.tag(repo, "v1", &old);
    // Pushed earlier, untagged; the tag is about to name it.
    let new = f.image(repo, "new", 2, true);
    let server = common::server();
    common::copy_into(&server, &f.storage, ROOT).await;

    let storage = common::storage(&server, ROOT, 8).await;
    server.clear_requests();
    storage
        .check_access(gc_core::layout::ROOT)
        .await
        .expect("access");
    let moved_at = std::time::SystemTime::now();
    for key in [
        Key::TagIndexEntry {
            repo: repo.to_string(),
            tag: "v1".to_string(),
            digest: new.manifest.clone(),
        },
        Key::TagCurrent {
            repo: repo.to_string(),
            tag: "v1".to_string(),
        },
    ] {
        server.put_object_direct(
            common::BUCKET,
            &common::s3_key(ROOT, &key.to_path()),
            new.manifest.to_string().into_bytes(),
            moved_at,
        );
    }
    // The audit starts in a later whole second than the move (S3 keeps seconds).
    let second = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    };
    while second(std::time::SystemTime::now()) == second(moved_at) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = audit(&storage, &options(), &NoProgress).await.report;
    assert!(report.summary.complete, "{:?}", report.findings);
    // The run began when the check's page was asked for, before the move; its end and
    // duration are measured from that start too.
    let s = &report.summary;
    let at = |t: &str| humantime::parse_rfc3339(t).expect("RFC 3339");
    assert!(
        at(&s.started_at) <= moved_at,
        "{} is after the move",
        s.started_at
    );
    assert!(at(&s.started_at) <= at(&s.as_of) && at(&s.as_of) <= at(&s.finished_at));
    let span = at(&s.finished_at)
        .duration_since(at(&s.started_at))
        .expect("finished after started");
    assert!(
        (span.as_secs_f64() - s.duration_seconds).abs() < 0.002,
        "{span:?} against duration_seconds {}",
        s.duration_seconds
    );
    // The check's page was the listing's first: one page for the whole small tree, one for
    // the last look.
    assert_eq!(server.operation_counts().get("ListObjectsV2"), Some(&2));
    let reclaimable: Vec<_> = report.orphaned.iter().map(|o| o.digest).collect();
    for digest in std::iter::once(&new.manifest)
        .chain(&new.layers)
        .chain([&new.config])
    {
        assert!(
            !reclaimable.contains(digest),
            "{digest} is tagged (v1) yet reported reclaimable: {reclaimable:?}"
        );
    }
}

#[tokio::test]
async fn a_rescan_lists_from_the_spread_its_cache_kept_and_reports_the_same() {
    // Enough keys for several pages in `repositories/` and in the whole listing.
    let f = Fixture::new();
    for r in 0..60 {
        for i in 0..5 {
            f.image(&format!("team/app{r}"), &format!("{r}-{i}"), 3, i % 2 == 0);
        }
    }
    let server = common::server();
    common::copy_into(&server, &f.storage, ROOT).await;
    let uncached = audit_s3(&server, 16, options()).await;
    assert!(uncached.summary.complete);
    let pages = uncached.summary.totals.keys.div_ceil(1000);
    assert!(pages >= 3, "{pages} pages: too few to plan");

    let cache = std::sync::Arc::new(gc_core::cache::MemoryManifestStore::new());
    let opts = AuditOptions {
        manifest_cache: Some(cache.clone()),
        ..options()
    };
    let cold = audit_s3(&server, 16, opts.clone()).await;
    server.set_latency(Duration::from_millis(5));
    server.reset_max_in_flight();
    let warm = audit_s3(&server, 16, opts).await;
    assert_eq!(rows(&cold), rows(&uncached));
    assert_eq!(rows(&warm), rows(&uncached));
    assert_eq!(warm.summary.requests.get, 0, "a warm rescan reads nothing");
    // The same pages, several at once: the planned listing's ranges.
    assert!(
        warm.summary.requests.list <= cold.summary.requests.list,
        "warm {} LISTs, cold {}",
        warm.summary.requests.list,
        cold.summary.requests.list
    );
    assert!(
        server.max_in_flight() > 1,
        "the rescan listed one page at a time"
    );
}
