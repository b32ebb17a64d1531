//! Tags resolved from their listed ETag, and manifests remembered by the cache: both only save
//! requests. Every report is the same with them and without them, on healthy and damaged
//! trees; a tag whose ETag tells nothing is read; a damaged or outdated cache entry is a miss;
//! and a warm rescan reads no manifest it has cached.

use futures::stream::{BoxStream, StreamExt};
use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::cache::{CacheError, CacheKey, ManifestStore, MemoryManifestStore, ENTRY_FORMAT};
use gc_core::fixture::{image_manifest, old_time, Fixture};
use gc_core::layout::Key;
use gc_core::report::Report;
use gc_core::storage::{MemStorage, ObjectMeta, Storage, StorageError};
use gc_core::Digest;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A [`MemStorage`] (whose listing gives MD5 ETags, as S3 does for one-part objects) that logs
/// every GET and can give chosen keys another ETag.
#[derive(Debug)]
struct Logged {
    inner: MemStorage,
    gets: Mutex<Vec<String>>,
    etag: fn(&str, Option<String>) -> Option<String>,
}

impl Logged {
    fn new(f: &Fixture) -> Self {
        Logged {
            inner: f.storage.clone(),
            gets: Mutex::new(Vec::new()),
            etag: |_, e| e,
        }
    }

    fn take_gets(&self) -> Vec<String> {
        std::mem::take(&mut *self.gets.lock().unwrap())
    }
}

#[async_trait::async_trait]
impl Storage for Logged {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta, StorageError>> {
        let etag = self.etag;
        self.inner
            .list(prefix)
            .map(move |item| {
                item.map(|mut meta| {
                    meta.e_tag = etag(&meta.key, meta.e_tag.take());
                    meta
                })
            })
            .boxed()
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.gets.lock().unwrap().push(key.to_string());
        self.inner.get(key, max_bytes).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        self.inner.head(key).await
    }
}

fn options() -> AuditOptions {
    AuditOptions {
        now: Some(old_time() + Duration::from_secs(30 * 86400)),
        ..AuditOptions::default()
    }
}

fn with_cache(store: &Arc<MemoryManifestStore>) -> AuditOptions {
    let store: Arc<dyn ManifestStore> = store.clone();
    AuditOptions {
        manifest_cache: Some(store),
        ..options()
    }
}

/// Everything a report says about the registry (not how it was read: requests, cache and
/// ETag counts, times of the run).
fn fingerprint(r: &Report) -> String {
    let s = &r.summary;
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?} {:?} {:?} {:?} {} {} {} {:?} {:?} {:?} {}",
        r.orphaned,
        r.missing,
        r.dangling,
        r.gc_unsafe,
        r.broken,
        r.repos,
        r.findings,
        s.totals,
        s.reclaimable_by_gc,
        s.reclaimable_by_gc_delete_untagged,
        s.young,
        s.gc_models,
        s.complete,
        s.missing,
        s.broken_tags,
        s.findings,
        s.withheld,
        s.errors,
        s.exit_status,
    )
}

fn is_manifest_read(key: &str) -> bool {
    key.contains("/blobs/") && key.ends_with("/data")
}

fn is_tag_read(key: &str) -> bool {
    key.ends_with("/current/link")
}

/// The distinct tag `current/link`s among `gets` (a tag whose target looks absent is read
/// again before it is reported).
fn tags_read(gets: &[String]) -> u64 {
    let tags: std::collections::BTreeSet<&String> =
        gets.iter().filter(|k| is_tag_read(k)).collect();
    tags.len() as u64
}

/// Healthy images, a multi-arch index with a missing child link, untagged manifests, an
/// orphan, a tag moved twice, and damage: a missing layer, a tag naming nothing in its
/// repository, an unparseable manifest, a manifest whose bytes are not its digest's.
fn damaged_tree() -> (Fixture, Digest) {
    let f = Fixture::new();
    for r in 0..3 {
        let repo = format!("team/app{r}");
        for i in 0..4 {
            let image = f.image(&repo, &format!("{r}-{i}"), 2, i % 2 == 0);
            if i < 3 {
                f.tag(&repo, &format!("v{i}"), &image.manifest);
            }
            if i == 3 {
                // Moved: its history names earlier targets too.
                f.tag(&repo, "v0", &image.manifest);
            }
        }
    }
    let amd = f.image("multi/arch", "amd", 2, true);
    let arm = f.image("multi/arch", "arm", 2, true);
    let index = f.index(
        "multi/arch",
        &[
            (&amd.manifest, "linux/amd64"),
            (&arm.manifest, "linux/arm64"),
        ],
        true,
    );
    f.tag("multi/arch", "latest", &index);
    f.remove(&Key::RevisionLink {
        repo: "multi/arch".to_string(),
        digest: arm.manifest.clone(),
    });
    f.blob(b"an orphaned blob");
    let broken = f.image("team/app1", "broken", 2, false);
    f.tag("team/app1", "broken", &broken.manifest);
    f.remove(&Key::BlobData {
        digest: broken.layers[0].clone(),
    });
    // A tag whose current/link names a manifest of another repository.
    let elsewhere = f.image("other", "elsewhere", 1, true);
    f.put(
        &Key::TagCurrent {
            repo: "team/app2".to_string(),
            tag: "stray".to_string(),
        },
        elsewhere.manifest.to_string(),
    );
    let garbage = f.manifest("team/app0", b"{\"schemaVersion\": 2, \"layers\": 7");
    f.tag("team/app0", "garbage", &garbage);
    // A manifest whose blob holds other bytes than its digest's.
    let real = f.image("team/app0", "real", 1, false);
    let other = image_manifest(&real.config, &real.layers, true, None);
    f.put(
        &Key::BlobData {
            digest: real.manifest.clone(),
        },
        other.into_bytes(),
    );
    f.tag("team/app0", "mismatch", &real.manifest);
    (f, real.manifest)
}

fn healthy_tree() -> Fixture {
    let f = Fixture::new();
    for r in 0..4 {
        let repo = format!("repo{r}");
        for i in 0..5 {
            let image = f.image(&repo, &format!("h{r}-{i}"), 3, i % 2 == 1);
            f.tag(&repo, &format!("t{i}"), &image.manifest);
        }
    }
    let a = f.image("multi", "a", 2, true);
    let b = f.image("multi", "b", 2, true);
    let index = f.index(
        "multi",
        &[(&a.manifest, "linux/amd64"), (&b.manifest, "linux/arm64")],
        true,
    );
    f.tag("multi", "latest", &index);
    f
}

#[tokio::test]
async fn reports_are_the_same_with_and_without_etag_resolution_and_cache() {
    for (name, f) in [("healthy", healthy_tree()), ("damaged", damaged_tree().0)] {
        let storage = Logged::new(&f);
        let plain = AuditOptions {
            resolve_tags_by_etag: false,
            ..options()
        };
        let reference = audit(&storage, &plain, &NoProgress).await.report;
        let expected = fingerprint(&reference);
        let tags = reference.summary.totals.tags;
        assert!(tags >= 5, "{name}: {tags} tags");
        assert_eq!(reference.summary.tags_resolved_by_etag, 0);
        let tag_gets = tags_read(&storage.take_gets());
        assert_eq!(tag_gets, tags, "{name}: every tag read without resolution");

        let resolved = audit(&storage, &options(), &NoProgress).await.report;
        assert_eq!(fingerprint(&resolved), expected, "{name}: ETag resolution");
        let tag_gets = tags_read(&storage.take_gets());
        let by_etag = resolved.summary.tags_resolved_by_etag;
        assert_eq!(by_etag + tag_gets, tags, "{name}");
        let unresolvable = u64::from(name == "damaged"); // the stray tag
        assert_eq!(tag_gets, unresolvable, "{name}: only the stray tag is read");

        let store = Arc::new(MemoryManifestStore::new());
        for run in ["cold", "warm"] {
            for resolve in [true, false] {
                let opts = AuditOptions {
                    resolve_tags_by_etag: resolve,
                    ..with_cache(&store)
                };
                let r = audit(&storage, &opts, &NoProgress).await.report;
                assert_eq!(
                    fingerprint(&r),
                    expected,
                    "{name}: {run} cache, resolve {resolve}"
                );
                storage.take_gets();
            }
        }
    }
}

#[tokio::test]
async fn a_warm_rescan_reads_no_cached_manifest_and_no_tag() {
    let f = healthy_tree();
    let storage = Logged::new(&f);
    let store = Arc::new(MemoryManifestStore::new());
    let cold = audit(&storage, &with_cache(&store), &NoProgress)
        .await
        .report;
    let manifests = cold.summary.totals.manifests;
    let gets = storage.take_gets();
    assert_eq!(
        gets.iter().filter(|k| is_manifest_read(k)).count() as u64,
        manifests
    );
    assert_eq!(
        gets.iter().filter(|k| is_tag_read(k)).count(),
        0,
        "{gets:?}"
    );
    assert_eq!(cold.summary.cache_hits, 0);
    assert_eq!(cold.summary.cache_misses, manifests);
    assert_eq!(store.len() as u64, manifests);
    assert_eq!(cold.summary.tags_resolved_by_etag, cold.summary.totals.tags);
    assert_eq!(cold.summary.requests_minimum.get, manifests);
    assert_eq!(
        cold.summary.requests_single_pass_minimum.get,
        manifests + cold.summary.totals.tags
    );
    assert_eq!(cold.summary.manifest_cache.as_deref(), Some("memory"));

    let warm = audit(&storage, &with_cache(&store), &NoProgress)
        .await
        .report;
    let gets = storage.take_gets();
    assert!(
        gets.is_empty(),
        "a warm rescan of a quiet tree reads nothing: {gets:?}"
    );
    assert_eq!(warm.summary.requests.get, 0);
    assert_eq!(warm.summary.cache_hits, manifests);
    assert_eq!(warm.summary.cache_misses, 0);
    assert_eq!(warm.summary.requests_minimum.get, 0);
    assert_eq!(fingerprint(&warm), fingerprint(&cold));

    // A new image: only its manifest is read.
    let new = f.image("repo0", "new", 2, false);
    f.tag("repo0", "new", &new.manifest);
    let after = audit(&storage, &with_cache(&store), &NoProgress)
        .await
        .report;
    let gets = storage.take_gets();
    assert_eq!(
        gets,
        vec![Key::BlobData {
            digest: new.manifest
        }
        .to_path()]
    );
    assert_eq!(after.summary.cache_misses, 1);
    assert_eq!(after.summary.cache_hits, manifests);
}

#[tokio::test]
async fn a_tag_whose_etag_matches_nothing_is_read_and_reported() {
    let (f, _) = damaged_tree();
    let storage = Logged::new(&f);
    let r = audit(&storage, &options(), &NoProgress).await.report;
    let stray = Key::TagCurrent {
        repo: "team/app2".to_string(),
        tag: "stray".to_string(),
    }
    .to_path();
    let tag_gets: std::collections::BTreeSet<String> = storage
        .take_gets()
        .into_iter()
        .filter(|k| is_tag_read(k))
        .collect();
    assert_eq!(tag_gets.into_iter().collect::<Vec<_>>(), vec![stray]);
    assert_eq!(r.summary.tags_resolved_by_etag, r.summary.totals.tags - 1);
    assert!(
        r.broken
            .iter()
            .any(|b| b.repository == "team/app2" && b.tag == "stray"),
        "{:?}",
        r.broken
    );
}

#[tokio::test]
async fn tags_whose_etags_are_not_md5s_are_read() {
    let f = healthy_tree();
    let reference = audit(&Logged::new(&f), &options(), &NoProgress)
        .await
        .report;
    for etag in [
        (|_: &str, _| Some("\"0f343b0931126a20f133d67c2b018a3b-2\"".to_string()))
            as fn(&str, Option<String>) -> Option<String>,
        |_, _| None,
        |_, _| Some("W/\"not-an-md5\"".to_string()),
    ] {
        let storage = Logged {
            etag,
            ..Logged::new(&f)
        };
        let r = audit(&storage, &options(), &NoProgress).await.report;
        let tag_gets = tags_read(&storage.take_gets());
        assert_eq!(tag_gets, r.summary.totals.tags);
        assert_eq!(r.summary.tags_resolved_by_etag, 0);
        assert_eq!(fingerprint(&r), fingerprint(&reference));
    }
}

#[tokio::test]
async fn a_link_edited_to_another_digest_of_the_same_length_is_found_by_its_etag() {
    let f = healthy_tree();
    let a = f.image("repo0", "edited-a", 1, false);
    let b = f.image("repo0", "edited-b", 1, false);
    f.tag("repo0", "edited", &a.manifest);
    // The revision link of a now holds b's digest: same size, another ETag.
    f.put(
        &Key::RevisionLink {
            repo: "repo0".to_string(),
            digest: a.manifest.clone(),
        },
        b.manifest.to_string(),
    );
    // A tag edited to another revision of its repository: resolved from its ETag to it.
    f.put(
        &Key::TagCurrent {
            repo: "repo1".to_string(),
            tag: "t0".to_string(),
        },
        a.manifest.to_string(),
    );
    let storage = Logged::new(&f);
    let r = audit(&storage, &options(), &NoProgress).await.report;
    let gets = storage.take_gets();
    let revision = Key::RevisionLink {
        repo: "repo0".to_string(),
        digest: a.manifest.clone(),
    }
    .to_path();
    assert!(gets.contains(&revision), "{gets:?}");
    assert!(
        r.findings
            .iter()
            .any(|x| x.kind == "link-mismatch" && x.key == revision),
        "{:?}",
        r.findings
    );
    let plain = AuditOptions {
        resolve_tags_by_etag: false,
        ..options()
    };
    let read = audit(&storage, &plain, &NoProgress).await.report;
    assert_eq!(fingerprint(&r), fingerprint(&read));
    // repo1:t0 names a manifest repo1 has no revision of: broken either way.
    assert!(r
        .broken
        .iter()
        .any(|b| b.repository == "repo1" && b.tag == "t0"));
}

#[tokio::test]
async fn a_damaged_cache_entry_is_a_miss_and_is_written_again() {
    let f = healthy_tree();
    let storage = Logged::new(&f);
    let store = Arc::new(MemoryManifestStore::new());
    let cold = audit(&storage, &with_cache(&store), &NoProgress)
        .await
        .report;
    let mut damaged = 0;
    store.edit_values(|_, _, value| {
        if damaged < 3 {
            let last = value.len() - 3;
            value[last] ^= 0x20;
            damaged += 1;
        }
    });
    storage.take_gets();
    let r = audit(&storage, &with_cache(&store), &NoProgress)
        .await
        .report;
    assert_eq!(fingerprint(&r), fingerprint(&cold));
    assert_eq!(r.summary.cache_misses, 3);
    let reads = storage
        .take_gets()
        .iter()
        .filter(|k| is_manifest_read(k))
        .count();
    assert_eq!(reads, 3);
    assert_eq!(
        r.summary
            .warnings
            .iter()
            .filter(|w| w.contains("is unusable"))
            .count(),
        3,
        "{:?}",
        r.summary.warnings
    );
    let again = audit(&storage, &with_cache(&store), &NoProgress)
        .await
        .report;
    assert_eq!(again.summary.cache_misses, 0);
    assert!(again.summary.warnings.is_empty());
}

#[tokio::test]
async fn an_entry_for_another_size_is_not_used_and_a_mismatch_is_never_cached() {
    let f = healthy_tree();
    let victim = f.image("repo2", "victim", 1, true);
    f.tag("repo2", "victim", &victim.manifest);
    let storage = Logged::new(&f);
    let store = Arc::new(MemoryManifestStore::new());
    audit(&storage, &with_cache(&store), &NoProgress).await;
    let cached_size = image_manifest(&victim.config, &victim.layers, true, None).len() as u64;
    // The blob now holds other bytes, of another size: the entry must not stand for them.
    let other = image_manifest(&victim.config, &victim.layers, false, None);
    assert_ne!(other.len() as u64, cached_size);
    let victim_key = Key::BlobData {
        digest: victim.manifest.clone(),
    };
    f.put(&victim_key, other.clone().into_bytes());
    storage.take_gets();
    let with = audit(&storage, &with_cache(&store), &NoProgress)
        .await
        .report;
    assert_eq!(storage.take_gets(), vec![victim_key.to_path()]);
    let without = audit(&storage, &options(), &NoProgress).await.report;
    assert_eq!(fingerprint(&with), fingerprint(&without));
    assert!(
        with.findings.iter().any(|x| x.kind == "digest-mismatch"),
        "{:?}",
        with.findings
    );
    let digest = victim.manifest.to_string();
    let key = |size| CacheKey {
        format: ENTRY_FORMAT,
        digest: &digest,
        size,
    };
    assert!(
        store.get(&key(other.len() as u64)).unwrap().is_none(),
        "never cached"
    );
    assert!(store.get(&key(cached_size)).unwrap().is_some());
}

/// A store whose every call fails: the run warns once and reads from storage.
#[derive(Debug)]
struct FailingStore;

impl ManifestStore for FailingStore {
    fn get(&self, _: &CacheKey<'_>) -> Result<Option<Vec<u8>>, CacheError> {
        Err(CacheError {
            location: "nowhere".to_string(),
            message: "disk I/O error".to_string(),
        })
    }
    fn put(&self, _: &CacheKey<'_>, _: Vec<u8>) -> Result<(), CacheError> {
        self.get(&CacheKey {
            format: "",
            digest: "",
            size: 0,
        })
        .map(|_| ())
    }
    fn flush(&self) -> Result<(), CacheError> {
        Ok(())
    }
    fn location(&self) -> String {
        "nowhere".to_string()
    }
}

/// Audit the damaged tree with `store` as its cache: the report is the one without a cache,
/// complete, with one warning, which contains `warning`.
async fn one_warning_and_the_same_report(store: Arc<dyn ManifestStore>, warning: &str) -> Report {
    let (f, _) = damaged_tree();
    let storage = Logged::new(&f);
    let reference = audit(&storage, &options(), &NoProgress).await.report;
    let opts = AuditOptions {
        manifest_cache: Some(store),
        ..options()
    };
    let r = audit(&storage, &opts, &NoProgress).await.report;
    assert_eq!(fingerprint(&r), fingerprint(&reference));
    assert_eq!(r.summary.warnings.len(), 1, "{:?}", r.summary.warnings);
    assert!(
        r.summary.warnings[0].contains(warning),
        "{:?}",
        r.summary.warnings
    );
    assert!(r.summary.complete);
    r
}

#[tokio::test]
async fn a_failing_store_is_a_warning_never_a_different_report() {
    one_warning_and_the_same_report(Arc::new(FailingStore), "disk I/O error").await;
}

/// A store whose reads panic (a bug in an embedder's store): its manifest lookups, which
/// kills the lookup thread, and with `spread_too` also the read of the listing's key spread
/// (before the lookup thread starts; without it that entry is absent).
#[derive(Debug)]
struct PanickingStore {
    spread_too: bool,
}

impl ManifestStore for PanickingStore {
    fn get(&self, key: &CacheKey<'_>) -> Result<Option<Vec<u8>>, CacheError> {
        if key.format != ENTRY_FORMAT && !self.spread_too {
            return Ok(None);
        }
        panic!("a store that panics on every read");
    }
    fn put(&self, _: &CacheKey<'_>, _: Vec<u8>) -> Result<(), CacheError> {
        Ok(())
    }
    fn flush(&self) -> Result<(), CacheError> {
        Ok(())
    }
    fn location(&self) -> String {
        "panicking".to_string()
    }
}

#[tokio::test]
async fn a_store_that_panics_on_every_read_is_one_warning_and_the_same_report() {
    let r = one_warning_and_the_same_report(
        Arc::new(PanickingStore { spread_too: true }),
        "panicking: its read of the listing's key spread panicked",
    )
    .await;
    assert_eq!(r.summary.cache_hits, 0);
}

#[tokio::test]
async fn a_lookup_thread_that_dies_is_a_warning_and_every_manifest_is_read() {
    let (f, _) = damaged_tree();
    let storage = Logged::new(&f);
    let reference = audit(&storage, &options(), &NoProgress).await.report;
    storage.take_gets();
    let opts = AuditOptions {
        manifest_cache: Some(Arc::new(PanickingStore { spread_too: false })),
        ..options()
    };
    let r = audit(&storage, &opts, &NoProgress).await.report;
    assert_eq!(fingerprint(&r), fingerprint(&reference));
    let manifest_reads = storage
        .take_gets()
        .iter()
        .filter(|k| is_manifest_read(k))
        .count() as u64;
    assert_eq!(manifest_reads, r.summary.totals.manifests);
    assert_eq!(r.summary.warnings.len(), 1, "{:?}", r.summary.warnings);
    assert!(
        r.summary.warnings[0].contains("panicking: its lookup thread stopped"),
        "{:?}",
        r.summary.warnings
    );
    assert_eq!(r.summary.cache_hits, 0);
    assert!(r.summary.complete);
}
