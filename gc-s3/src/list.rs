//! Listing a prefix with few ListObjectsV2 requests, many in flight.
//!
//! # Why
//!
//! A registry holds millions of keys and ListObjectsV2 returns 1,000 per request, one request
//! after another along its continuation tokens. Listing sequentially is slow; splitting the key
//! space into a fixed number of ranges is fast but wasteful on small buckets (every range ends
//! with a partly filled page, so a 256-way split costs 256 requests on a bucket of 1,000 keys).
//!
//! # How
//!
//! The prefix is listed as ranges `(after, upto]` of keys, each a chain of pages: the first
//! page starts after `after` (`start-after`), the next ones follow the continuation token, and
//! a range stops at the first page that is not truncated or holds a key past `upto` (those keys
//! belong to the next range and are dropped). Listing starts with one range over everything.
//! Whenever a page comes back full, its range may split the rest of its key space: the split
//! points come from the density of the keys on that page ([`crate::split`]), about
//! [`ListTuning::pages_per_range`] pages apart; the range keeps the first part (continuing its
//! own chain) and each further part becomes a new range listed concurrently.
//!
//! Splits are paid for by a budget, which gives the bound on requests: a range of `M` keys
//! costs at most `⌊M/1000⌋ + 1` requests, so `R` ranges cost at most `N/1000 + R`. A new range
//! is started only while `live ranges + waste of finished ranges ≤ c + f × pages so far`
//! (`c` = [`ListTuning::budget_constant`], `f` = [`ListTuning::budget_fraction`]), and the
//! left side never grows except by starting a range. So at the end
//! `T − N/1000 ≤ c + f × T`, i.e. `T ≤ (N/1000 + c) / (1 − f)`: with the defaults (3, 2.5 %),
//! at most `1.026 × N/1000 + 3.1` requests, at every bucket size, and a bucket of at most
//! 1,000 keys costs exactly one. Live ranges are also capped by the concurrency.
//!
//! Every page request takes a permit of the storage's one semaphore, shared with reads. A
//! page that still fails after the SDK's retries ends its range with an error item naming the
//! prefix and the position: its remaining keys are never silently dropped.

use crate::config::ListTuning;
use crate::sdk_error;
use crate::split::{split_points, PAGE};
use crate::storage::Shared;
use gc_core::storage::{ObjectMeta, StorageError};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// A range splits only where it expects at least this many pages before the split point.
const MIN_PAGES_BEFORE_SPLIT: f64 = 2.0;

/// Batches of listed objects (one per page), or errors.
pub(crate) type Batch = Result<Vec<ObjectMeta>, StorageError>;

/// One range of keys being listed.
#[derive(Debug, Clone, Default)]
struct Range {
    /// List keys strictly after this one (first page only).
    after: Option<String>,
    /// Keys up to and including this one belong to the range; `None`: to the end.
    upto: Option<String>,
    /// Continuation token of the next page.
    token: Option<String>,
    /// First key of the last page, and last key seen.
    first: Option<String>,
    last: Option<String>,
    /// Keys of the last page that belonged to the range.
    page_keys: u64,
    /// Keys that belonged to the range, and pages requested.
    keys: u64,
    pages: u64,
}

/// One listed page.
#[derive(Debug)]
struct Page {
    objects: Vec<(String, u64, SystemTime, Option<String>)>,
    next_token: Option<String>,
}

/// The split budget (see the module documentation).
#[derive(Debug)]
struct Budget {
    tuning: ListTuning,
    max_live: usize,
    live: usize,
    pages: u64,
    finished_waste: f64,
}

impl Budget {
    /// How many new ranges may start now.
    fn available(&self) -> usize {
        let allowance =
            self.tuning.budget_constant + self.tuning.budget_fraction * self.pages as f64;
        let used = self.live as f64 + self.finished_waste;
        let by_budget = (allowance - used).floor().max(0.0) as usize;
        by_budget.min(self.max_live.saturating_sub(self.live))
    }

    fn finish(&mut self, range: &Range) {
        if std::env::var_os("GC_S3_DEBUG").is_some() {
            eprintln!(
                "range done: after={:?} upto={:?} keys={} pages={}",
                range.after, range.upto, range.keys, range.pages
            );
        }
        self.live -= 1;
        let waste = range.pages as f64 - range.keys as f64 / PAGE;
        self.finished_waste += waste.clamp(0.0, 1.0);
    }
}

/// Pages listed but not yet taken by the consumer. When the consumer is the slower side (it
/// is on a busy machine: it parses every key), the ranges wait rather than pile up pages in
/// memory (a page is ~200 KB of keys and ETags).
const PAGES_BUFFERED: usize = 4;

/// Start listing `prefix` (a storage prefix: empty or ending in `/`) in the background.
pub(crate) fn spawn(shared: Arc<Shared>, prefix: String) -> mpsc::Receiver<Batch> {
    let (tx, rx) = mpsc::channel(PAGES_BUFFERED);
    tokio::spawn(drive(shared, prefix, tx));
    rx
}

async fn drive(shared: Arc<Shared>, prefix: String, tx: mpsc::Sender<Batch>) {
    let s3_prefix = shared.s3_prefix(&prefix);
    let root_len = shared.s3_prefix("").len();
    let mut budget = Budget {
        tuning: shared.listing,
        max_live: shared.concurrency,
        live: 1,
        pages: 0,
        finished_waste: 0.0,
    };
    let mut tasks = JoinSet::new();
    tasks.spawn(fetch(shared.clone(), s3_prefix.clone(), Range::default()));
    while let Some(joined) = tasks.join_next().await {
        let (mut range, result) = match joined {
            Ok(done) => done,
            Err(e) => {
                // A page task panicked or was cancelled: its range is lost, so say so.
                let err = sdk_error::other(&prefix, "listing task failed", e);
                if tx.send(Err(err)).await.is_err() {
                    return;
                }
                budget.live -= 1;
                continue;
            }
        };
        budget.pages += 1;
        range.pages += 1;
        let page = match result {
            Ok(page) => page,
            Err(err) => {
                budget.finish(&range);
                if tx.send(Err(err)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let full = page.objects.len() as f64 >= PAGE;
        let mut batch = Vec::with_capacity(page.objects.len());
        let mut passed_upper = false;
        range.first = None;
        range.page_keys = 0;
        for (key, size, last_modified, e_tag) in page.objects {
            if range.upto.as_ref().is_some_and(|u| key > *u) {
                passed_upper = true;
                break;
            }
            let Some(storage_key) = key.get(root_len..).filter(|_| key.starts_with(&s3_prefix))
            else {
                // The server returned a key outside the prefix asked for: never report it.
                continue;
            };
            batch.push(ObjectMeta {
                key: storage_key.to_string(),
                size,
                last_modified,
                e_tag,
            });
            range.keys += 1;
            range.page_keys += 1;
            if range.first.is_none() {
                range.first = Some(key.clone());
            }
            range.last = Some(key);
        }
        if !batch.is_empty() && tx.send(Ok(batch)).await.is_err() {
            return; // The consumer is gone; dropping the JoinSet aborts the other pages.
        }
        let more = !passed_upper && page.next_token.is_some();
        if !more {
            budget.finish(&range);
            continue;
        }
        range.token = page.next_token;
        if full {
            for new in split(&mut range, &mut budget) {
                tasks.spawn(fetch(shared.clone(), s3_prefix.clone(), new));
            }
        }
        tasks.spawn(fetch(shared.clone(), s3_prefix.clone(), range));
    }
}

/// Split the rest of `range` if the budget allows: returns the new ranges and narrows `range`.
fn split(range: &mut Range, budget: &mut Budget) -> Vec<Range> {
    let available = budget.available();
    let (Some(first), Some(last)) = (&range.first, &range.last) else {
        return Vec::new();
    };
    if available == 0 {
        return Vec::new();
    }
    let points = split_points(
        first,
        last,
        range.page_keys,
        range.upto.as_deref(),
        budget.tuning.pages_per_range,
        MIN_PAGES_BEFORE_SPLIT,
        available.div_ceil(2),
    );
    let Some(first_point) = points.first().cloned() else {
        return Vec::new();
    };
    let mut new = Vec::with_capacity(points.len());
    let mut bounds = points.iter().skip(1).cloned().map(Some).collect::<Vec<_>>();
    bounds.push(range.upto.clone());
    let mut after = first_point.clone();
    for upto in bounds {
        new.push(Range {
            after: Some(after.clone()),
            upto: upto.clone(),
            ..Range::default()
        });
        if let Some(u) = upto {
            after = u;
        }
    }
    range.upto = Some(first_point);
    budget.live += new.len();
    new
}

async fn fetch(
    shared: Arc<Shared>,
    s3_prefix: String,
    range: Range,
) -> (Range, Result<Page, StorageError>) {
    let result = fetch_page(&shared, &s3_prefix, &range).await;
    (range, result)
}

async fn fetch_page(shared: &Shared, s3_prefix: &str, range: &Range) -> Result<Page, StorageError> {
    let storage_prefix = shared.storage_key(s3_prefix);
    let position = range
        .last
        .as_deref()
        .or(range.after.as_deref())
        .map(|k| format!(" after {k}"))
        .unwrap_or_default();
    let what = format!(
        "{}: ListObjectsV2 of {s3_prefix}{position}",
        shared.location_bucket()
    );
    let _permit = shared
        .permits
        .acquire()
        .await
        .map_err(|e| sdk_error::other(&storage_prefix, &what, e))?;
    let mut request = shared
        .client
        .list_objects_v2()
        .bucket(&shared.bucket)
        .prefix(s3_prefix)
        .max_keys(PAGE as i32);
    if let Some(token) = &range.token {
        request = request.continuation_token(token);
    } else if let Some(after) = &range.after {
        request = request.start_after(after);
    }
    let output = request
        .send()
        .await
        .map_err(|e| sdk_error::map_strict(e, &storage_prefix, &what))?;
    let next_token = if output.is_truncated() == Some(true) {
        output.next_continuation_token().map(str::to_string)
    } else {
        None
    };
    let objects = output
        .contents
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| {
            let last_modified = o
                .last_modified
                .and_then(|t| SystemTime::try_from(t).ok())
                .unwrap_or(UNIX_EPOCH);
            let size = u64::try_from(o.size.unwrap_or(0)).unwrap_or(0);
            o.key.map(|k| (k, size, last_modified, o.e_tag))
        })
        .collect();
    Ok(Page {
        objects,
        next_token,
    })
}
