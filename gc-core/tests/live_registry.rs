//! A registry pushed to while it is audited (SPEC §3 "A live registry"): what a push writes
//! after the listing passed its place is confirmed before anything is reported absent, the
//! last look at `repositories/` takes what landed during the reads, a blob a push is adopting
//! is young, a tag that moved keeps its earlier target out of the reclaimable list, a link
//! caught half written is read again. And the checks still report real damage.

use futures::stream::{BoxStream, StreamExt};
use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::digest::Digest;
use gc_core::fixture::{image_manifest, old_time, Fixture};
use gc_core::layout::Key;
use gc_core::report::{ExitStatus, Report};
use gc_core::storage::{MemStorage, ObjectMeta, RequestCounts, Storage, StorageError};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// When the pushes of a [`ChangingStorage`] land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Landing {
    /// While the first listing runs, after it passed the keys they write: everything but that
    /// listing sees them.
    DuringTheListing,
    /// After the reads, before the last look: only the last look and what follows see them.
    BeforeTheLastLook,
}

/// A storage that is written while it is audited: `before` until the pushes land, `after`
/// from then on. The GETs of a key in `torn` go by its list, one entry per GET from the first:
/// `true` returns empty content (a link caught while the filesystem driver writes it in
/// place), `false` what the key holds; past the list, what it holds. ETags are rewritten by
/// `etags` when set.
#[derive(Debug)]
struct ChangingStorage {
    before: MemStorage,
    after: MemStorage,
    landing: Landing,
    listings: AtomicU32,
    torn: Mutex<HashMap<String, VecDeque<bool>>>,
    /// GETs by key.
    gets: Mutex<HashMap<String, u32>>,
    etags: Option<fn(&str) -> Option<String>>,
}

impl ChangingStorage {
    fn new(before: &Fixture, after: &Fixture, landing: Landing) -> Self {
        ChangingStorage {
            before: before.storage.clone(),
            after: after.storage.clone(),
            landing,
            listings: AtomicU32::new(0),
            torn: Mutex::new(HashMap::new()),
            gets: Mutex::new(HashMap::new()),
            etags: None,
        }
    }

    /// What the reads see now.
    fn current(&self) -> &MemStorage {
        let listings = self.listings.load(Ordering::SeqCst);
        let landed = match self.landing {
            Landing::DuringTheListing => listings >= 1,
            Landing::BeforeTheLastLook => listings >= 2,
        };
        if landed {
            &self.after
        } else {
            &self.before
        }
    }

    fn retag(&self, mut meta: ObjectMeta) -> ObjectMeta {
        if let Some(f) = self.etags {
            meta.e_tag = f(&meta.key);
        }
        meta
    }
}

#[async_trait::async_trait]
impl Storage for ChangingStorage {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn location(&self) -> String {
        "memory:".to_string()
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta, StorageError>> {
        let n = self.listings.fetch_add(1, Ordering::SeqCst);
        let source = match (self.landing, n) {
            (Landing::DuringTheListing, 0) => &self.before,
            _ => self.current(),
        };
        source
            .list(prefix)
            .map(move |item| item.map(|m| self.retag(m)))
            .boxed()
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, StorageError> {
        if let Ok(mut gets) = self.gets.lock() {
            *gets.entry(key.to_string()).or_default() += 1;
        }
        if let Ok(mut torn) = self.torn.lock() {
            if let Some(true) = torn.get_mut(key).and_then(VecDeque::pop_front) {
                return Ok(Some(Vec::new()));
            }
        }
        self.current().get(key, max_bytes).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let meta = self.current().head(key).await?;
        Ok(meta.map(|m| self.retag(m)))
    }

    fn request_counts(&self) -> RequestCounts {
        let (a, b) = (self.before.request_counts(), self.after.request_counts());
        RequestCounts {
            list: a.list + b.list,
            get: a.get + b.get,
            head: a.head + b.head,
        }
    }
}

/// Options with the default grace, measured from the run's start (pushes are dated now).
fn live() -> AuditOptions {
    AuditOptions::default()
}

async fn scan(storage: &dyn Storage) -> Report {
    audit(storage, &live(), &NoProgress).await.report
}

/// The same base registry in two fixtures, dated long ago: one tagged image `base:v1`, and an
/// old blob an interrupted push left in `base` (data and `_layers` link, no manifest).
fn base_pair() -> (Fixture, Fixture, Digest) {
    let fixtures = (Fixture::new(), Fixture::new());
    let mut leftover = None;
    for f in [&fixtures.0, &fixtures.1] {
        let img = f.image("base", "base", 2, false);
        f.tag("base", "v1", &img.manifest);
        leftover = Some(f.upload("base", b"layer left by an interrupted push"));
    }
    let leftover = leftover.unwrap_or_else(|| Digest::sha256_of(b""));
    (fixtures.0, fixtures.1, leftover)
}

/// A fixture writing objects dated a little after now: pushes that land during the audit.
fn now(f: &Fixture) -> Fixture {
    Fixture {
        storage: f.storage.clone(),
        time: Some(SystemTime::now() + Duration::from_secs(2)),
    }
}

fn assert_clean(r: &Report) {
    assert!(r.summary.complete, "{:?}", r.summary.errors);
    assert_eq!(
        (r.missing.len(), r.dangling.len(), r.broken.len()),
        (0, 0, 0),
        "false integrity rows: {:?} {:?} {:?}",
        r.missing,
        r.dangling,
        r.broken
    );
    assert_eq!(r.exit_status(None), ExitStatus::Clean);
}

/// Clean, and no link reported bad: every read that caught one being written was read again.
fn assert_clean_without_bad_links(r: &Report) {
    assert_clean(r);
    assert!(
        r.findings.iter().all(|f| f.kind != "bad-link"),
        "{:?}",
        r.findings
    );
}

fn orphan(r: &Report, d: &Digest) -> Option<(String, bool)> {
    r.orphaned
        .iter()
        .find(|o| o.digest == *d)
        .map(|o| (o.reclaimable_by.to_string(), o.young))
}

#[tokio::test]
async fn a_blob_written_after_the_listing_passed_it_is_confirmed_not_missing() {
    let (before, after, _) = base_pair();
    // A push during the listing: its blobs were written after the listing passed blobs/,
    // its links, revision and tag before it reached repositories/.
    let pushed = now(&after).image("app", "new", 2, true);
    now(&after).tag("app", "latest", &pushed.manifest);
    for key in after.storage.keys() {
        let is_new_blob = [&pushed.config, &pushed.layers[0], &pushed.layers[1]]
            .iter()
            .any(|d| {
                key == Key::BlobData {
                    digest: (*d).clone(),
                }
                .to_path()
            });
        if !is_new_blob
            && before
                .storage
                .get(&key, 1 << 20)
                .await
                .ok()
                .flatten()
                .is_none()
        {
            let data = after.storage.get(&key, 1 << 20).await.ok().flatten();
            now(&before).storage.put(key, data.unwrap_or_default());
        }
    }
    let storage = ChangingStorage::new(&before, &after, Landing::DuringTheListing);
    let r = scan(&storage).await;
    assert_clean(&r);
    assert_eq!(
        r.summary.requests.head, 3,
        "one HEAD per blob the listing lacked"
    );
    assert!(
        r.summary.writes_during_scan >= 5,
        "{}",
        r.summary.writes_during_scan
    );
}

#[tokio::test]
async fn an_image_pushed_during_the_reads_is_seen_by_the_last_look_and_adopts_an_old_blob() {
    let (before, after, leftover) = base_pair();
    // Between the reads and the last look, `app:latest` is pushed, mounting the old leftover
    // blob from `base` as its layer.
    let config = now(&after).upload("app", b"{\"os\":\"linux\"}");
    now(&after).link_layer("app", &leftover);
    let manifest = now(&after).manifest(
        "app",
        image_manifest(&config, std::slice::from_ref(&leftover), true, None).as_bytes(),
    );
    now(&after).tag("app", "latest", &manifest);
    let storage = ChangingStorage::new(&before, &after, Landing::BeforeTheLastLook);
    let r = scan(&storage).await;
    assert_clean(&r);
    assert_eq!(
        orphan(&r, &leftover),
        None,
        "referenced before as_of: not an orphan"
    );
    assert!(r.summary.as_of >= r.summary.started_at && r.summary.as_of <= r.summary.finished_at);
    assert_eq!(r.summary.totals.tags, 2);

    // Without the last look's news the same blob was an old orphan, reclaimable by GC.
    let quiet = scan(&before.storage).await;
    assert_eq!(orphan(&quiet, &leftover), Some(("gc".to_string(), false)));
}

#[tokio::test]
async fn an_old_blob_a_push_is_mounting_is_young_not_reclaimable() {
    let (before, after, leftover) = base_pair();
    // The mount has landed (a fresh `_layers` link in `app`); the manifest has not yet.
    now(&after).link_layer("app", &leftover);
    now(&before).link_layer("app", &leftover);
    let storage = ChangingStorage::new(&before, &after, Landing::BeforeTheLastLook);
    let r = scan(&storage).await;
    assert_clean(&r);
    assert_eq!(orphan(&r, &leftover), Some(("gc".to_string(), true)));
    assert_eq!(r.summary.reclaimable_by_gc.count, 0);
}

#[tokio::test]
async fn a_tag_moved_during_the_scan_keeps_its_earlier_image_out_of_reclaimable() {
    let (before, after, _) = base_pair();
    let old = before.image("app", "one", 1, false);
    before.tag("app", "t", &old.manifest);
    let old_again = after.image("app", "one", 1, false);
    assert_eq!(old.manifest, old_again.manifest);
    let new = now(&after).image("app", "two", 1, false);
    now(&after).tag("app", "t", &new.manifest);
    let storage = ChangingStorage::new(&before, &after, Landing::BeforeTheLastLook);
    let r = scan(&storage).await;
    assert_clean(&r);
    // `t` named `old` when it was read and `new` by the last look: both were tagged within
    // the audit's window, so neither's layers are reported reclaimable.
    assert_eq!(orphan(&r, &old.layers[0]), None);
    assert_eq!(orphan(&r, &new.layers[0]), None);
    let broken_or_missing = r.broken.len() + r.missing.len();
    assert_eq!(broken_or_missing, 0);
}

#[tokio::test]
async fn a_link_caught_half_written_is_read_again_not_reported() {
    let (before, _after, _) = base_pair();
    let img = before.image("app", "x", 1, false);
    before.tag("app", "t", &img.manifest);
    let storage = ChangingStorage::new(&before, &before, Landing::DuringTheListing);
    let storage = ChangingStorage {
        // A filesystem: no ETags, every link is read.
        etags: Some(|_| None),
        ..storage
    };
    let layer_link = Key::LayerLink {
        repo: "app".into(),
        digest: img.layers[0].clone(),
    }
    .to_path();
    let current = Key::TagCurrent {
        repo: "app".into(),
        tag: "t".into(),
    }
    .to_path();
    if let Ok(mut torn) = storage.torn.lock() {
        torn.insert(layer_link, [true].into());
        torn.insert(current, [true].into());
    }
    let r = scan(&storage).await;
    assert_clean_without_bad_links(&r);
    assert!(
        r.summary.links.read >= 6,
        "every link read: {:?}",
        r.summary.links
    );
    assert_eq!(r.summary.links.verified_by_etag, 0);
}

/// Filesystem-like: no ETags, every link is read.
fn without_etags(storage: ChangingStorage) -> ChangingStorage {
    ChangingStorage {
        etags: Some(|_| None),
        ..storage
    }
}

#[tokio::test]
async fn a_tag_moved_during_the_scan_and_caught_half_written_when_read_again_is_read_once_more() {
    // The CI failure of 2026-12-03: `t` moved during the scan, so the last look read it again,
    // and that read caught the filesystem driver rewriting it; the tag was reported broken.
    let (before, after, _) = base_pair();
    let old = before.image("app", "one", 1, false);
    before.tag("app", "t", &old.manifest);
    after.image("app", "one", 1, false);
    let new = now(&after).image("app", "two", 1, false);
    now(&after).tag("app", "t", &new.manifest);
    let storage = without_etags(ChangingStorage::new(
        &before,
        &after,
        Landing::BeforeTheLastLook,
    ));
    let current = Key::TagCurrent {
        repo: "app".into(),
        tag: "t".into(),
    }
    .to_path();
    if let Ok(mut torn) = storage.torn.lock() {
        // Whole when first read; empty when read again after the last look; whole after.
        torn.insert(current, [false, true].into());
    }
    let r = scan(&storage).await;
    assert_clean_without_bad_links(&r);
}

#[tokio::test]
async fn links_caught_half_written_by_several_reads_are_read_until_whole() {
    let (before, _after, _) = base_pair();
    let img = before.image("app", "x", 1, false);
    before.tag("app", "t", &img.manifest);
    let storage = without_etags(ChangingStorage::new(
        &before,
        &before,
        Landing::DuringTheListing,
    ));
    let layer_link = Key::LayerLink {
        repo: "app".into(),
        digest: img.layers[0].clone(),
    };
    let revision = Key::RevisionLink {
        repo: "app".into(),
        digest: img.manifest.clone(),
    };
    let current = Key::TagCurrent {
        repo: "app".into(),
        tag: "t".into(),
    };
    if let Ok(mut torn) = storage.torn.lock() {
        torn.insert(layer_link.to_path(), [true; 3].into());
        torn.insert(revision.to_path(), [true; 5].into());
        torn.insert(current.to_path(), [true; 4].into());
    }
    let r = scan(&storage).await;
    assert_clean_without_bad_links(&r);
}

#[tokio::test]
async fn links_that_stay_empty_are_reported_after_their_rereads() {
    let (before, _after, _) = base_pair();
    let img = before.image("app", "x", 1, false);
    before.tag("app", "t", &img.manifest);
    let layer_link = Key::LayerLink {
        repo: "app".into(),
        digest: img.layers[0].clone(),
    };
    before.put(&layer_link, "");
    let storage = without_etags(ChangingStorage::new(
        &before,
        &before,
        Landing::DuringTheListing,
    ));
    let r = scan(&storage).await;
    assert_eq!(r.exit_status(None), ExitStatus::IntegrityFindings);
    assert_eq!(r.missing.len(), 1, "{:?}", r.missing);
    assert_eq!(r.missing[0].reason, "bad-link");
    assert_eq!(r.broken.len(), 1);
    // Read by the check, at once again, then after each of the four pauses.
    let reads = storage
        .gets
        .lock()
        .map(|g| g.get(&layer_link.to_path()).copied());
    assert_eq!(reads.ok().flatten(), Some(6));
}

#[tokio::test]
async fn a_manifest_caught_being_rewritten_is_read_again_and_corruption_is_still_reported() {
    // Two pushes of one manifest both write its data in place on a filesystem: a read can
    // find it empty although its revision link and tag are there.
    let (before, _after, _) = base_pair();
    let img = before.image("app", "x", 1, false);
    before.tag("app", "t", &img.manifest);
    let storage = without_etags(ChangingStorage::new(
        &before,
        &before,
        Landing::DuringTheListing,
    ));
    let data = Key::BlobData {
        digest: img.manifest.clone(),
    }
    .to_path();
    if let Ok(mut torn) = storage.torn.lock() {
        torn.insert(data.clone(), [true, true].into());
    }
    let r = scan(&storage).await;
    assert_clean_without_bad_links(&r);
    assert!(
        r.findings.iter().all(|f| f.kind != "digest-mismatch"),
        "{:?}",
        r.findings
    );
    let reads = storage.gets.lock().map(|g| g.get(&data).copied());
    assert_eq!(reads.ok().flatten(), Some(3));

    // Corrupt as stored (its listed size, other bytes): reported after one read.
    let stored = before.storage.get(&data, 1 << 20).await.ok().flatten();
    let mut bytes = stored.unwrap_or_default();
    if let Some(b) = bytes.iter_mut().find(|b| **b == b'{') {
        *b = b' ';
    }
    before.storage.put(data.clone(), bytes);
    let storage = without_etags(ChangingStorage::new(
        &before,
        &before,
        Landing::DuringTheListing,
    ));
    let r = scan(&storage).await;
    assert!(
        r.findings.iter().any(|f| f.kind == "digest-mismatch"),
        "{:?}",
        r.findings
    );
    let reads = storage.gets.lock().map(|g| g.get(&data).copied());
    assert_eq!(reads.ok().flatten(), Some(1));
}

#[tokio::test]
async fn a_tag_whose_current_link_is_not_written_yet_is_a_push_in_flight() {
    let (before, _after, _) = base_pair();
    let img = before.image("app", "x", 1, false);
    let index = Key::TagIndexEntry {
        repo: "app".into(),
        tag: "next".into(),
        digest: img.manifest.clone(),
    };
    now(&before).put(&index, img.manifest.to_string());
    let r = scan(&before.storage).await;
    assert!(
        r.findings.iter().all(|f| f.kind != "tag-without-current"),
        "{:?}",
        r.findings
    );
    // The same history, old: a tag that lost its current link.
    before.put(&index, img.manifest.to_string());
    let r = scan(&before.storage).await;
    assert!(r.findings.iter().any(|f| f.kind == "tag-without-current"));
}

#[tokio::test]
async fn an_upload_that_finished_during_the_scan_is_not_stale() {
    let (before, after, _) = base_pair();
    let startedat = Key::UploadStartedAt {
        repo: "base".into(),
        id: "2b4f3a1c-0000-4000-8000-000000000001".into(),
    };
    let data = Key::UploadData {
        repo: "base".into(),
        id: "2b4f3a1c-0000-4000-8000-000000000001".into(),
    };
    before.put(&startedat, "2026-01-01T00:00:00Z");
    before.put(&data, "partial");
    // Gone by the time it is read: finished.
    let storage = ChangingStorage::new(&before, &after, Landing::DuringTheListing);
    let r = scan(&storage).await;
    assert_clean(&r);
    assert!(
        r.findings.iter().all(|f| f.kind != "stale-upload"),
        "{:?}",
        r.findings
    );
}

#[tokio::test]
async fn real_damage_is_still_reported_after_it_is_confirmed() {
    let (before, after, _) = base_pair();
    let img = before.image("app", "x", 1, false);
    before.tag("app", "t", &img.manifest);
    after.image("app", "x", 1, false);
    after.tag("app", "t", &img.manifest);
    for f in [&before, &after] {
        f.remove(&Key::BlobData {
            digest: img.layers[0].clone(),
        });
    }
    let storage = ChangingStorage::new(&before, &after, Landing::DuringTheListing);
    let r = scan(&storage).await;
    assert_eq!(r.exit_status(None), ExitStatus::IntegrityFindings);
    assert_eq!(r.missing.len(), 1);
    assert_eq!(r.missing[0].reason, "blob-missing");
    assert_eq!(r.broken.len(), 1);
    assert_eq!(r.summary.requests.head, 1, "the absence was confirmed");
}

#[tokio::test]
async fn a_location_without_a_registry_is_an_incomplete_audit() {
    let empty = MemStorage::new();
    let r = scan(&empty).await;
    assert!(!r.summary.complete);
    assert_eq!(r.exit_status(None), ExitStatus::Incomplete);
    assert!(
        r.summary.errors[0].starts_with("no registry under memory:"),
        "{:?}",
        r.summary.errors
    );
    assert!(r.findings.iter().any(|f| f.kind == "no-registry"));

    // Keys elsewhere, an empty docker/registry/v2: still no registry.
    empty.put("docker/registry/v2/", "");
    empty.put("backup/docker/registry/v2/blobs/x", "y");
    let r = scan(&empty).await;
    assert_eq!(r.exit_status(None), ExitStatus::Incomplete);
}

/// Multipart-style ETags: nothing to verify a link with.
fn multipart_etag(_key: &str) -> Option<String> {
    Some("\"0f343b0931126a20f133d67c2b018a3b-2\"".to_string())
}

/// SSE-KMS-style ETags: MD5-shaped, but not MD5s of the content.
fn kms_etag(key: &str) -> Option<String> {
    Some(format!(
        "\"{}\"",
        &Digest::sha256_of(key.as_bytes()).encoded()[..32]
    ))
}

#[tokio::test]
async fn links_whose_etags_tell_nothing_are_checked_by_size_and_counted_unverified() {
    let (before, _after, _) = base_pair();
    for i in 0..6 {
        let img = before.image("app", &format!("img{i}"), 3, i % 2 == 0);
        before.tag("app", &format!("t{i}"), &img.manifest);
    }
    for (etags, why) in [
        (multipart_etag as fn(&str) -> Option<String>, "not MD5s"),
        (kms_etag, "SSE-KMS"),
    ] {
        let storage = ChangingStorage {
            etags: Some(etags),
            ..ChangingStorage::new(&before, &before, Landing::DuringTheListing)
        };
        let r = scan(&storage).await;
        assert_clean(&r);
        let links = &r.summary.links;
        assert_eq!(links.verified_by_etag, 0);
        assert!(links.unverified >= 30, "{links:?}");
        assert!(links.read <= 8, "at most a sample is read: {links:?}");
        assert!(
            links
                .unverified_why
                .as_deref()
                .is_some_and(|w| w.contains(why)),
            "{links:?}"
        );
    }
}

#[tokio::test]
async fn times_are_what_the_summary_says() {
    let (before, _after, _) = base_pair();
    let r = scan(&before.storage).await;
    assert_clean(&r);
    assert_eq!(r.summary.writes_during_scan, 0);
    let as_of = humantime::parse_rfc3339(&r.summary.as_of).unwrap_or(old_time());
    assert!(as_of > old_time() && as_of <= SystemTime::now());
    assert!(
        r.summary.as_of.ends_with('Z') && r.summary.as_of.len() == 24,
        "{}",
        r.summary.as_of
    );
}
