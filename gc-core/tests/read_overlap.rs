//! The audit starts the reads the listing names before the listing ends (so that a slow
//! listing's round trips overlap them), still reads each key once, and reports the same as
//! when every read waits for the listing.

use futures::stream::{BoxStream, StreamExt};
use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::fixture::{old_time, Fixture};
use gc_core::storage::{ObjectMeta, RequestCounts, Storage, StorageError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A storage whose listing holds back its last key until a GET arrives (or 5 s pass), and
/// which counts the GETs made while the listing was still open.
#[derive(Debug)]
struct SlowListing<'a> {
    inner: &'a dyn Storage,
    gets: AtomicU64,
    gets_while_listing: AtomicU64,
    listing_open: AtomicBool,
}

#[async_trait::async_trait]
impl Storage for SlowListing<'_> {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta, StorageError>> {
        self.listing_open.store(true, Ordering::SeqCst);
        let items = self.inner.list(prefix);
        let all = futures::stream::once(items.collect::<Vec<_>>());
        let held_back = all.flat_map(move |mut all| {
            let last = all.pop();
            let rest = futures::stream::once(async move {
                for _ in 0..500 {
                    if self.gets.load(Ordering::SeqCst) > 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                self.listing_open.store(false, Ordering::SeqCst);
                last
            })
            .filter_map(futures::future::ready);
            futures::stream::iter(all).chain(rest)
        });
        held_back.boxed()
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        if self.listing_open.load(Ordering::SeqCst) {
            self.gets_while_listing.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.get(key, max_bytes).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        self.inner.head(key).await
    }

    fn request_counts(&self) -> RequestCounts {
        self.inner.request_counts()
    }
}

#[tokio::test]
async fn reads_start_while_the_listing_runs_and_change_nothing() {
    let f = Fixture::new();
    for repo in ["app", "web", "team/api"] {
        for (n, tag) in ["v1", "v2", "latest"].iter().enumerate() {
            let image = f.image(repo, &format!("{repo}{n}"), 2, n % 2 == 0);
            f.tag(repo, tag, &image.manifest);
        }
    }
    let opts = AuditOptions {
        now: Some(old_time() + Duration::from_secs(30 * 86400)),
        ..AuditOptions::default()
    };
    let plain = audit(&f.storage, &opts, &NoProgress).await.report;

    let slow = SlowListing {
        inner: &f.storage,
        gets: AtomicU64::new(0),
        gets_while_listing: AtomicU64::new(0),
        listing_open: AtomicBool::new(false),
    };
    let overlapped = audit(&slow, &opts, &NoProgress).await.report;

    let early = slow.gets_while_listing.load(Ordering::SeqCst);
    assert!(early > 0, "no read started before the listing ended");
    // 9 manifests, each read once, whether early or late; the 9 tags resolved from their
    // ETags (MemStorage gives MD5 ETags, as S3 does).
    assert_eq!(slow.gets.load(Ordering::SeqCst), 9);
    assert_eq!(overlapped.summary.tags_resolved_by_etag, 9);
    assert!(overlapped.summary.complete);
    let rows = |r: &gc_core::report::Report| {
        (
            r.orphaned
                .iter()
                .map(|o| o.digest.to_string())
                .collect::<Vec<_>>(),
            r.repos.clone(),
            r.findings.len(),
            r.summary.totals.clone(),
        )
    };
    assert_eq!(rows(&overlapped), rows(&plain));
}
