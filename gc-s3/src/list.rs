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
//! `T − N/1000 ≤ c + f × T`, i.e. `T ≤ (N/1000 + c) / (1 − f)`: with the defaults (1, 5 %),
//! at most `1.053 × N/1000 + 1.06` requests, at every bucket size; a listing splits only at a
//! full page that is not its last once it has paid 20 pages, so one of at most 20 pages (a
//! bucket of 20,000 keys or less) is not split at all and costs exactly `ceil(N/1000)`. That
//! matters when the manifests come from the cache and the listing is all a rescan costs:
//! every split ends a range with a partly filled page, and a small listing is only a few round
//! trips anyway. Live ranges are also capped by the concurrency.
//!
//! A listing told where an earlier listing's keys lay ([`gc_core::storage::KeySpread`]) skips
//! the density guesses: its ranges are planned from those marks ([`crate::spread`]) and start
//! as fast as the live-range cap lets them, each ending where a page of the earlier listing
//! ended; a range whose upper bound is its last key is done without asking for another page.
//! Splitting from density resumes once no planned range is left waiting. Every listing marks
//! its keys as it goes, and a complete one leaves its spread for
//! [`gc_core::storage::Storage::key_spread`].
//!
//! Every page request takes a permit of the storage's one semaphore, shared with reads. A
//! page that still fails after the SDK's retries ends its range with an error item naming the
//! prefix and the position: its remaining keys are never silently dropped.
//!
//! # Pages that are not what they say
//!
//! A range ends only at a page that says so. The SDK's XML parser accepts a body cut short (a
//! proxy or a broken connection; wherever the cut falls, even inside a key) as a page holding
//! what arrived, with a continuation token past the entries lost. So every page is checked
//! before its keys count: `IsTruncated` and `KeyCount` must be present, `KeyCount` must equal
//! the entries it holds (`Contents` plus `CommonPrefixes`), every entry must have its key, a
//! truncated page must have a `NextContinuationToken`, and the body must end with the closing
//! `</ListBucketResult>` (an interceptor looks at it). A page that fails a check, or whose
//! body could not be read or parsed, is asked for again, up to [`PAGE_ATTEMPTS`] times with
//! backoff (the SDK's own retries of 5xx, throttling and broken connections come first, inside
//! each attempt); after that its range ends with one error item of one short line, and the
//! audit is incomplete. An object listed without `LastModified` is taken as modified now:
//! young, never old enough to be reclaimed.

use crate::config::ListTuning;
use crate::list_xml::LeanListing;
use crate::sdk_error;
use crate::split::{split_points, PAGE};
use crate::spread::{planned_bounds, Recorder};
use crate::storage::Shared;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::list_objects_v2::{ListObjectsV2Error, ListObjectsV2Output};
use gc_core::storage::{KeySpread, ObjectMeta, StorageError};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Attempts at one listing page whose answer is cut short or malformed.
pub const PAGE_ATTEMPTS: u32 = 5;
/// The wait before the second attempt; it doubles before each further one, up to
/// [`MAX_PAGE_BACKOFF`] (so 50, 100, 200 and 400 ms between five attempts).
pub const FIRST_PAGE_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two attempts at a page.
pub const MAX_PAGE_BACKOFF: Duration = Duration::from_secs(1);

/// The most characters of a key an error message gives for the position of a failed page (a
/// longer key keeps its start and end), so the message's end, saying what went wrong, fits.
pub(crate) const POSITION_CHARS: usize = 120;

/// A range splits only where it expects at least this many pages before the split point.
const MIN_PAGES_BEFORE_SPLIT: f64 = 2.0;

/// Keys asked for per listing page (S3's most).
pub(crate) const PAGE_KEYS: i32 = 1000;

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
    /// Keys since the range's last mark (see [`crate::spread`]).
    since_mark: u32,
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
        tracing::trace!(
            after = ?range.after,
            upto = ?range.upto,
            keys = range.keys,
            pages = range.pages,
            "listing range done"
        );
        self.live -= 1;
        let waste = range.pages as f64 - range.keys as f64 / PAGE;
        self.finished_waste += waste.clamp(0.0, 1.0);
    }
}

/// Pages listed but not yet taken by the consumer. When the consumer is the slower side (it
/// is on a busy machine: it parses every key), the ranges wait rather than pile up pages in
/// memory (a page is ~200 KB of keys and ETags).
const PAGES_BUFFERED: usize = 4;

/// Ranges listed at once, at most, in a storage's first complete listing. Pages are cheap to
/// wait for next to the reads they feed (a 1M-key bucket is ~1,100 pages against ~100,000
/// GETs), but each page in flight holds its body and its parsed keys (~0.5 MB), and while the
/// audit builds its graph from them, pages listed at once leave the heap more fragmented: at
/// 1M keys, 16 ranges instead of 8 kept 6 MB more resident after the listing, a trim
/// included, and so at the analysis's peak.
const MAX_LIVE_RANGES: usize = 8;

/// Ranges listed at once, at most, once the storage has completed a listing: a re-listing
/// (the audit's last look at `repositories/`) passes over nearly every key it lists, as old,
/// and keeps nothing from its pages, while its time is round trips, one page after another in
/// each range: at 1M keys, 16 ranges instead of 8 took the last look from 1.55 to 1.1 s.
const MAX_LIVE_RANGES_RELISTING: usize = 16;

/// Start listing `prefix` (a storage prefix: empty or ending in `/`) in the background, with
/// its ranges planned from `spread` when it says where the keys lie ([`crate::spread`]).
pub(crate) fn spawn(
    shared: Arc<Shared>,
    prefix: String,
    spread: Option<&KeySpread>,
) -> mpsc::Receiver<Batch> {
    let (tx, rx) = mpsc::channel(PAGES_BUFFERED);
    let root = shared.s3_prefix("");
    let bounds = spread.map_or_else(Vec::new, |s| planned_bounds(s, &root, &prefix));
    tokio::spawn(drive(shared, prefix, bounds, tx));
    rx
}

/// The ranges `(start, b₁]`, `(b₁, b₂]`, …, `(bₖ, end)` of `bounds` (one range over
/// everything when there are none).
fn planned_ranges(bounds: Vec<String>) -> VecDeque<Range> {
    let mut ranges = VecDeque::with_capacity(bounds.len() + 1);
    let mut after = None;
    for upto in bounds {
        ranges.push_back(Range {
            after: after.take(),
            upto: Some(upto.clone()),
            ..Range::default()
        });
        after = Some(upto);
    }
    ranges.push_back(Range {
        after,
        ..Range::default()
    });
    ranges
}

async fn drive(shared: Arc<Shared>, prefix: String, bounds: Vec<String>, tx: mpsc::Sender<Batch>) {
    let s3_prefix = shared.s3_prefix(&prefix);
    let root_len = shared.s3_prefix("").len();
    let mut budget = Budget {
        tuning: shared.listing,
        max_live: shared.concurrency.min(if shared.has_completed_a_listing() {
            MAX_LIVE_RANGES_RELISTING
        } else {
            MAX_LIVE_RANGES
        }),
        live: 1,
        pages: 0,
        finished_waste: 0.0,
    };
    let mut recorder = Recorder::default();
    let mut planned = planned_ranges(bounds);
    let mut tasks = JoinSet::new();
    let first = planned.pop_front().unwrap_or_default();
    match shared.take_first_page(&s3_prefix) {
        // The access check read this listing's first page (no start-after, as the first
        // range's): no request for it again.
        Some(page) => tasks.spawn(async move { (first, Ok(listed_page(page))) }),
        None => tasks.spawn(fetch(shared.clone(), s3_prefix.clone(), first)),
    };
    loop {
        // Planned ranges start as soon as there is room for them.
        while budget.live < budget.max_live {
            let Some(range) = planned.pop_front() else {
                break;
            };
            budget.live += 1;
            tasks.spawn(fetch(shared.clone(), s3_prefix.clone(), range));
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (mut range, result) = match joined {
            Ok(done) => done,
            Err(e) => {
                // A page task panicked or was cancelled: its range is lost, so say so.
                let err = sdk_error::other(&prefix, "listing task failed", e);
                recorder.fail();
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
                recorder.fail();
                if tx.send(Err(err)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let full = page.objects.len() as f64 >= PAGE;
        let mark_every = Recorder::mark_every(budget.pages);
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
            range.since_mark += 1;
            if range.since_mark >= mark_every {
                recorder.mark(storage_key, range.since_mark);
                range.since_mark = 0;
            }
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
        // A range whose last key is its upper bound is done, even if the page was full.
        let at_upper = range.upto.is_some() && range.last == range.upto;
        let more = !passed_upper && !at_upper && page.next_token.is_some();
        if !more {
            if let Some(last) = range.last.as_deref().and_then(|k| k.get(root_len..)) {
                recorder.mark(last, range.since_mark);
            }
            budget.finish(&range);
            continue;
        }
        range.token = page.next_token;
        if full && planned.is_empty() {
            for new in split(&mut range, &mut budget) {
                tasks.spawn(fetch(shared.clone(), s3_prefix.clone(), new));
            }
        }
        tasks.spawn(fetch(shared.clone(), s3_prefix.clone(), range));
    }
    if let Some(spread) = recorder.finish() {
        shared.record_spread(&prefix, spread);
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
        .map(|k| format!(" after {}", sdk_error::abbreviate(k, POSITION_CHARS)))
        .unwrap_or_default();
    let what = format!(
        "{}: ListObjectsV2 of {s3_prefix}{position}",
        shared.location_bucket()
    );
    let request = PageRequest {
        prefix: s3_prefix,
        delimiter: None,
        max_keys: PAGE_KEYS,
        token: range.token.as_deref(),
        start_after: range.after.as_deref().filter(|_| range.token.is_none()),
    };
    let page = list_page(shared, &request, &storage_prefix, &what).await?;
    Ok(listed_page(page))
}

/// A checked page's objects as the listing hands them on.
fn listed_page(page: CheckedPage) -> Page {
    // Read once per page: an object without LastModified is as young as can be.
    let now = SystemTime::now();
    let objects = page
        .objects
        .into_iter()
        .filter_map(|o| {
            let last_modified = o
                .last_modified
                .and_then(|t| SystemTime::try_from(t).ok())
                .unwrap_or(now);
            let size = u64::try_from(o.size.unwrap_or(0)).unwrap_or(0);
            o.key.map(|k| (k, size, last_modified, o.e_tag))
        })
        .collect();
    Page {
        objects,
        next_token: page.next_token,
    }
}

/// One ListObjectsV2 request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRequest<'a> {
    /// The S3 prefix listed.
    pub(crate) prefix: &'a str,
    /// Group keys by this delimiter into common prefixes.
    pub(crate) delimiter: Option<&'a str>,
    /// At most this many entries.
    pub(crate) max_keys: i32,
    /// Continue a listing from this token.
    pub(crate) token: Option<&'a str>,
    /// Start after this key (when there is no token).
    pub(crate) start_after: Option<&'a str>,
}

/// A page that passed every check of [`list_page`].
#[derive(Debug)]
pub(crate) struct CheckedPage {
    /// The listed objects, each with its key.
    pub(crate) objects: Vec<aws_sdk_s3::types::Object>,
    /// The common prefixes (with a delimiter).
    pub(crate) common_prefixes: Vec<String>,
    /// The token of the next page, present exactly when the page is truncated.
    pub(crate) next_token: Option<String>,
}

/// One listing page, checked (see the module documentation), asked for again while its
/// answer is cut short or malformed. Errors name `key` (the storage key or prefix) and
/// `what` (the bucket, the operation and the position), in one short line.
pub(crate) async fn list_page(
    shared: &Shared,
    request: &PageRequest<'_>,
    key: &str,
    what: &str,
) -> Result<CheckedPage, StorageError> {
    let mut attempt = 1;
    let mut backoff = FIRST_PAGE_BACKOFF;
    loop {
        let reason = match list_page_once(shared, request, key, what).await? {
            Ok(page) => return Ok(page),
            Err(reason) => reason,
        };
        if attempt >= PAGE_ATTEMPTS {
            let message = format!(
                "response cut short or malformed after {PAGE_ATTEMPTS} attempts ({reason})"
            );
            return Err(sdk_error::other(key, what, message));
        }
        attempt += 1;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_PAGE_BACKOFF);
    }
}

/// One attempt (the SDK's retries included): the page, or why its answer is damaged (worth
/// asking again), or an error that asking again will not mend.
async fn list_page_once(
    shared: &Shared,
    request: &PageRequest<'_>,
    key: &str,
    what: &str,
) -> Result<Result<CheckedPage, String>, StorageError> {
    let _permit = shared
        .permits
        .acquire()
        .await
        .map_err(|e| sdk_error::other(key, what, e))?;
    send_page_request(shared, request)
        .await
        .map_err(|err| sdk_error::map_strict(err, key, what, &shared.target))
}

/// Send one ListObjectsV2 request (the caller holds a permit): the checked page, or why its
/// answer is damaged (worth asking again), or the SDK's error.
pub(crate) async fn send_page_request(
    shared: &Shared,
    request: &PageRequest<'_>,
) -> Result<Result<CheckedPage, String>, SdkError<ListObjectsV2Error, HttpResponse>> {
    let mut builder = shared
        .client
        .list_objects_v2()
        .bucket(&shared.bucket)
        .prefix(request.prefix)
        .max_keys(request.max_keys);
    if let Some(delimiter) = request.delimiter {
        builder = builder.delimiter(delimiter);
    }
    if let Some(token) = request.token {
        builder = builder.continuation_token(token);
    } else if let Some(after) = request.start_after {
        builder = builder.start_after(after);
    }
    let body_end = BodyEnd::new(LIST_ROOT);
    let mut request = builder.customize().interceptor(body_end.clone());
    if let Some(lean) = LeanListing::new() {
        request = request.interceptor(lean);
    }
    let sent = request.send().await;
    match sent {
        Ok(output) => Ok(check_page(output, body_end.whole())),
        Err(err) => match sdk_error::damaged_response(&err) {
            Some(reason) => Ok(Err(reason)),
            None => Err(err),
        },
    }
}

/// The page in `output` if it is whole and consistent (`body_whole`: whether the body ended
/// with the closing root element), else what is wrong with it.
fn check_page(
    output: ListObjectsV2Output,
    body_whole: Option<bool>,
) -> Result<CheckedPage, String> {
    let truncated = output.is_truncated.ok_or("no IsTruncated")?;
    let key_count = output.key_count.ok_or("no KeyCount")?;
    let objects = output.contents.unwrap_or_default();
    let prefixes = output.common_prefixes.unwrap_or_default();
    let entries = objects.len() + prefixes.len();
    if usize::try_from(key_count).ok() != Some(entries) {
        return Err(format!("KeyCount {key_count} but {entries} entries"));
    }
    if objects.iter().any(|o| o.key.is_none()) {
        return Err("an entry without Key".to_string());
    }
    let common_prefixes = prefixes
        .into_iter()
        .map(|p| p.prefix)
        .collect::<Option<Vec<String>>>()
        .ok_or("a CommonPrefixes without Prefix")?;
    let next_token = match (truncated, output.next_continuation_token) {
        (false, _) => None,
        (true, Some(token)) => Some(token),
        (true, None) => return Err("IsTruncated but no NextContinuationToken".to_string()),
    };
    // Last, as the least specific: a body cut after its last entry passes every check above.
    match body_whole {
        Some(true) => {}
        Some(false) => return Err("body ends before </ListBucketResult>".to_string()),
        None => return Err("body not seen".to_string()),
    }
    Ok(CheckedPage {
        objects,
        common_prefixes,
        next_token,
    })
}

/// The root element of a ListObjectsV2 answer.
const LIST_ROOT: &str = "ListBucketResult";

/// Whether an XML body ends with the closing tag of `root` (namespace prefix and trailing
/// whitespace allowed): the SDK's parser accepts a body cut anywhere.
fn ends_whole(body: &[u8], root: &str) -> bool {
    let body = body.trim_ascii_end();
    let Some(open) = body.iter().rposition(|&b| b == b'<') else {
        return false;
    };
    let Some(tag) = body[open..]
        .strip_prefix(b"</")
        .and_then(|t| t.strip_suffix(b">"))
    else {
        return false;
    };
    let name = tag.trim_ascii();
    let local = name
        .iter()
        .position(|&b| b == b':')
        .map_or(name, |colon| &name[colon + 1..]);
    local == root.as_bytes()
}

/// Records whether the last response body it saw deserialized was whole ([`ends_whole`]
/// with its root element). One per request; the SDK keeps a buffered body's bytes for this
/// hook.
#[derive(Debug, Clone)]
pub(crate) struct BodyEnd {
    root: &'static str,
    whole: Arc<Mutex<Option<bool>>>,
}

impl BodyEnd {
    /// A recorder for answers whose root element is `root`.
    pub(crate) fn new(root: &'static str) -> Self {
        BodyEnd {
            root,
            whole: Arc::default(),
        }
    }

    /// Whether the body ended with the root's closing tag; `None` if no body was seen.
    pub(crate) fn whole(&self) -> Option<bool> {
        *self.whole.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Intercept for BodyEnd {
    fn name(&self) -> &'static str {
        "gc-s3-listing-body-end"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let whole = context
            .response()
            .body()
            .bytes()
            .map(|b| ends_whole(b, self.root));
        *self.whole.lock().unwrap_or_else(|e| e.into_inner()) = whole;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::types::{CommonPrefix, Object};

    fn page(truncated: Option<bool>, key_count: Option<i32>, keys: &[&str]) -> ListObjectsV2Output {
        ListObjectsV2Output::builder()
            .set_is_truncated(truncated)
            .set_key_count(key_count)
            .set_contents(Some(
                keys.iter()
                    .map(|k| Object::builder().key(*k).build())
                    .collect(),
            ))
            .build()
    }

    #[test]
    fn only_whole_consistent_pages_pass() {
        let ok = check_page(page(Some(false), Some(2), &["a", "b"]), Some(true));
        assert!(ok.is_ok_and(|p| p.objects.len() == 2 && p.next_token.is_none()));
        let cases = [
            (
                page(None, Some(2), &["a", "b"]),
                Some(true),
                "no IsTruncated",
            ),
            (page(Some(false), None, &["a"]), Some(true), "no KeyCount"),
            (
                page(Some(true), Some(1000), &["a"]),
                Some(true),
                "KeyCount 1000 but 1 entries",
            ),
            (
                page(Some(true), Some(1), &["a"]),
                Some(true),
                "no NextContinuationToken",
            ),
            (
                page(Some(false), Some(1), &["a"]),
                Some(false),
                "ends before",
            ),
            (page(Some(false), Some(1), &["a"]), None, "not seen"),
        ];
        for (output, whole, reason) in cases {
            let got = check_page(output, whole).err().unwrap_or_default();
            assert!(got.contains(reason), "{got} / {reason}");
        }
        let keyless = ListObjectsV2Output::builder()
            .is_truncated(false)
            .key_count(1)
            .contents(Object::builder().build())
            .build();
        assert!(check_page(keyless, Some(true)).is_err());
        let with_prefixes = ListObjectsV2Output::builder()
            .is_truncated(false)
            .key_count(2)
            .contents(Object::builder().key("k").build())
            .common_prefixes(CommonPrefix::builder().prefix("p/").build())
            .build();
        let got = check_page(with_prefixes, Some(true));
        assert!(got.is_ok_and(|p| p.common_prefixes == ["p/"]));
    }

    #[test]
    fn a_body_is_whole_only_with_its_closing_root_tag() {
        let ends = |body: &[u8]| ends_whole(body, LIST_ROOT);
        assert!(ends(b"<ListBucketResult><Contents/></ListBucketResult>\n"));
        assert!(ends(b"<s3:ListBucketResult></s3:ListBucketResult >"));
        assert!(!ends(b"<ListBucketResult><Contents></Contents>"));
        assert!(!ends(b"<ListBucketResult><Contents><Key>ab"));
        assert!(!ends(b"<ListBucketResult></ListBucketRes"));
        assert!(!ends(b""));
        assert!(ends_whole(
            b"<ListVersionsResult></ListVersionsResult>",
            "ListVersionsResult"
        ));
        assert!(!ends_whole(
            b"<ListVersionsResult></ListBucketResult>",
            "ListVersionsResult"
        ));
    }
}
