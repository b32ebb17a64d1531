//! What tests control and observe: the request log, read-only mode, faults, latency, in-flight.
//!
//! Every HTTP request gets a [`Slot`] in its extensions. The access hook (called by s3s for
//! every routed operation, before the operation runs) fills in the operation, bucket and key,
//! refuses writes in read-only mode and injects faults; the HTTP layer then logs the request
//! with its final status, drops the connection when a fault asked for it, or damages the body
//! of a successful answer ([`crate::body_fault`]) as a faulty proxy would. Requests s3s cannot
//! route are logged too, as operation `"Unrouted"`.

use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::{s3_error, S3Error, S3Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Operations a read-only server still serves.
pub const READ_OPERATIONS: &[&str] = &[
    "GetObject",
    "HeadObject",
    "ListObjectsV2",
    "ListObjects",
    "ListBuckets",
    "HeadBucket",
    "GetBucketVersioning",
    "ListObjectVersions",
];

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// S3 operation name (`"GetObject"`, `"ListObjectsV2"`, …), or `"Unrouted"`.
    pub operation: String,
    /// HTTP method.
    pub method: String,
    /// Bucket, when the request named one.
    pub bucket: Option<String>,
    /// Object key for object operations, `prefix` for listings.
    pub key: Option<String>,
    /// HTTP status sent, or `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
}

/// How an injected fault fails a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 503 `SlowDown` (throttling).
    SlowDown,
    /// 500 `InternalError`.
    InternalError,
    /// Close the TCP connection without answering.
    DropConnection,
    /// Answer 200 with the body cut short at `CutAt`, its `Content-Length` matching the bytes
    /// sent: what a client sees through a proxy that cut the response and re-framed it. The
    /// operation itself runs normally; an error answer is sent unchanged.
    CutBody(CutAt),
    /// Announce the whole body's `Content-Length`, send it only up to `CutAt`, then close the
    /// connection: a response that breaks off mid-body.
    CloseMidBody(CutAt),
    /// Answer a ListObjectsV2 page with its `<KeyCount>` one more than the entries it holds.
    WrongKeyCount,
    /// Answer a ListObjectsV2 page without its `<KeyCount>` element.
    DropKeyCount,
    /// Answer a ListObjectsV2 page without its `<IsTruncated>` element.
    DropIsTruncated,
}

impl FaultKind {
    /// Whether this fault damages a successful answer's body rather than failing the request.
    pub(crate) fn damages_body(self) -> bool {
        matches!(
            self,
            FaultKind::CutBody(_)
                | FaultKind::CloseMidBody(_)
                | FaultKind::WrongKeyCount
                | FaultKind::DropKeyCount
                | FaultKind::DropIsTruncated
        )
    }
}

/// Where [`FaultKind::CutBody`] and [`FaultKind::CloseMidBody`] cut a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutAt {
    /// Right after the last complete `</Contents>` element. With the element order of S3 (and
    /// of this server: `IsTruncated`, `KeyCount` and `NextContinuationToken` come before the
    /// entries) only the trailing elements are lost.
    AfterLastContents,
    /// Right after the complete `</Contents>` element nearest before the middle of the body:
    /// what remains parses as a page holding fewer entries than its `KeyCount` says, with a
    /// continuation token past the entries lost. The dangerous cut.
    AfterMiddleContents,
    /// In the middle of the body, wherever that falls (usually inside an element).
    Middle,
    /// In the middle of the text of the last `<Key>` element: the page's last entry may parse
    /// with a shortened key, and its `KeyCount` still matches.
    InsideLastKey,
}

/// Which requests fail, and how. The default injects nothing.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fail every n-th routed request (counted from when these faults were set).
    pub fail_every_nth: Option<u32>,
    /// Fail the first `k` attempts of each distinct (operation, bucket, key/prefix, start); a
    /// listing page's start is its continuation token, start-after, or key and version-id
    /// markers.
    pub fail_first_attempts: Option<u32>,
    /// Fail `k` of every `n` routed requests (`Some((k, n))`), spread evenly: the `i`-th
    /// request counted (from 0) fails when `(i × k) mod n < k`, so the first one fails.
    pub fail_fraction: Option<(u32, u32)>,
    /// Only requests of these operations (`"ListObjectsV2"`, …) are counted and failed by the
    /// three rules above; empty means every operation.
    pub operations: Vec<String>,
    /// No request identity (as for `fail_first_attempts`) is failed by the three rules above
    /// more than this many times: a client that retries that often always gets through.
    pub max_failures_per_request: Option<u32>,
    /// How the requests picked by the rules above fail; cycled through in order
    /// (`[SlowDown, DropConnection]` alternates). Empty means `SlowDown`.
    pub kinds: Vec<FaultKind>,
    /// Requests touching keys under these prefixes fail every time, with `InternalError`:
    /// object requests on such a key, and listing pages that would return such a key.
    pub fail_forever_prefixes: Vec<String>,
    /// Object requests (not listings) on keys under these prefixes fail every time, with
    /// `InternalError`: a key that lists but cannot be read.
    pub fail_objects_forever: Vec<String>,
}

/// The fault decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Pass,
    Fail(FaultKind),
}

/// Per-request scratch space shared between the HTTP layer and the s3s hooks.
#[derive(Debug, Default)]
pub(crate) struct SlotData {
    pub(crate) operation: Option<String>,
    pub(crate) bucket: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) drop_connection: bool,
    /// A fault that damages the body of a successful answer ([`FaultKind::damages_body`]).
    pub(crate) damage_body: Option<FaultKind>,
}

/// See [`SlotData`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot(pub(crate) Arc<Mutex<SlotData>>);

impl Slot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SlotData> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Shared state of one server.
#[derive(Debug, Default)]
pub(crate) struct Control {
    log: Mutex<Vec<RequestRecord>>,
    read_only: AtomicBool,
    faults: Mutex<FaultState>,
    latency_micros: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    omit_last_modified: AtomicBool,
}

#[derive(Debug, Default)]
struct FaultState {
    faults: Faults,
    counter: u64,
    failures: u64,
    attempts: HashMap<String, u32>,
    failed: HashMap<String, u32>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Control {
    pub(crate) fn record(&self, record: RequestRecord) {
        lock(&self.log).push(record);
    }

    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.log).clone()
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    pub(crate) fn set_read_only(&self, on: bool) {
        self.read_only.store(on, Ordering::SeqCst);
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = FaultState {
            faults,
            ..FaultState::default()
        };
    }

    pub(crate) fn set_omit_last_modified(&self, on: bool) {
        self.omit_last_modified.store(on, Ordering::SeqCst);
    }

    /// Whether listings and HEAD/GET answers leave out objects' `LastModified`.
    pub(crate) fn omit_last_modified(&self) -> bool {
        self.omit_last_modified.load(Ordering::SeqCst)
    }

    pub(crate) fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_micros.store(micros, Ordering::SeqCst);
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(Ordering::SeqCst))
    }

    /// A request starts; the guard ends it.
    pub(crate) fn enter(self: &Arc<Self>) -> InFlight {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self.clone())
    }

    pub(crate) fn max_in_flight(&self) -> u64 {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn reset_max_in_flight(&self) {
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Whether a listed key falls under a fail-forever prefix.
    pub(crate) fn fails_forever(&self, key: &str) -> bool {
        lock(&self.faults)
            .faults
            .fail_forever_prefixes
            .iter()
            .any(|p| key.starts_with(p.as_str()))
    }

    /// Whether an object request on `key` fails forever.
    fn object_fails_forever(&self, key: &str) -> bool {
        let st = lock(&self.faults);
        st.faults
            .fail_forever_prefixes
            .iter()
            .chain(&st.faults.fail_objects_forever)
            .any(|p| key.starts_with(p.as_str()))
    }

    /// The counting rules: every n-th request, k of every n, and first attempts per request
    /// identity; only for the operations the faults name.
    fn decide(&self, operation: &str, identity: String) -> Decision {
        let mut st = lock(&self.faults);
        let ops = &st.faults.operations;
        if !ops.is_empty() && !ops.iter().any(|o| o == operation) {
            return Decision::Pass;
        }
        st.counter += 1;
        let mut fail = st
            .faults
            .fail_every_nth
            .is_some_and(|n| n > 0 && st.counter.is_multiple_of(u64::from(n)));
        if let Some((k, n)) = st.faults.fail_fraction.filter(|&(_, n)| n > 0) {
            fail |= ((st.counter - 1) * u64::from(k)) % u64::from(n) < u64::from(k);
        }
        if let Some(k) = st.faults.fail_first_attempts {
            let seen = st.attempts.entry(identity.clone()).or_insert(0);
            *seen += 1;
            fail |= *seen <= k;
        }
        if !fail {
            return Decision::Pass;
        }
        if let Some(max) = st.faults.max_failures_per_request {
            let failed = st.failed.entry(identity).or_insert(0);
            if *failed >= max {
                return Decision::Pass;
            }
            *failed += 1;
        }
        let kind = match st.faults.kinds.len() {
            0 => FaultKind::SlowDown,
            n => st.faults.kinds[(st.failures % n as u64) as usize],
        };
        st.failures += 1;
        Decision::Fail(kind)
    }
}

/// Decrements the in-flight count when dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Control>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The error a fault produces (the HTTP layer drops the connection instead when asked).
/// Body faults are not errors: the caller marks the slot instead (see [`Gate`]).
pub(crate) fn fault_error(kind: FaultKind, slot: Option<&Slot>) -> S3Error {
    match kind {
        FaultKind::SlowDown => s3_error!(SlowDown, "injected fault: slow down"),
        FaultKind::InternalError => s3_error!(InternalError, "injected fault"),
        FaultKind::DropConnection => {
            if let Some(slot) = slot {
                slot.lock().drop_connection = true;
            }
            s3_error!(InternalError, "injected fault: connection dropped")
        }
        FaultKind::CutBody(_)
        | FaultKind::CloseMidBody(_)
        | FaultKind::WrongKeyCount
        | FaultKind::DropKeyCount
        | FaultKind::DropIsTruncated => s3_error!(InternalError, "injected fault: {kind:?}"),
    }
}

/// The query parameter `name` of a URI query string, percent-decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    fn hex_value(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escaped = (b == b'%')
            .then(|| {
                Some((
                    hex_value(*bytes.get(i + 1)?)?,
                    hex_value(*bytes.get(i + 2)?)?,
                ))
            })
            .flatten();
        match (b, escaped) {
            (_, Some((hi, lo))) => {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The s3s access hook: records, refuses writes when read-only, injects faults.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) control: Arc<Control>,
}

#[async_trait::async_trait]
impl S3Access for Gate {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let operation = cx.s3_op().name().to_string();
        let operation = operation.as_str();
        let (bucket, mut key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let query = cx.uri().query().map(str::to_string);
        if key.is_none() {
            key = query_param(query.as_deref(), "prefix");
        }
        let slot = cx.extensions_mut().get::<Slot>().cloned();
        if let Some(slot) = &slot {
            let mut data = slot.lock();
            data.operation = Some(operation.to_string());
            data.bucket = bucket.clone();
            data.key = key.clone();
        }
        if self.control.read_only.load(Ordering::SeqCst) && !READ_OPERATIONS.contains(&operation) {
            return Err(s3_error!(
                AccessDenied,
                "read-only server refuses {operation}"
            ));
        }
        if let Some(k) = key.as_deref() {
            let is_object = matches!(cx.s3_path(), S3Path::Object { .. });
            if is_object && self.control.object_fails_forever(k) {
                return Err(fault_error(FaultKind::InternalError, slot.as_ref()));
            }
        }
        // Where a listing page starts: ListObjectsV2's token or start key, ListObjectVersions'
        // key and version markers.
        let start = query_param(query.as_deref(), "continuation-token")
            .or_else(|| query_param(query.as_deref(), "start-after"))
            .or_else(|| {
                let key = query_param(query.as_deref(), "key-marker")?;
                let version = query_param(query.as_deref(), "version-id-marker");
                Some(format!("{key} {}", version.unwrap_or_default()))
            })
            .unwrap_or_default();
        let identity = format!(
            "{operation} {} {} {start}",
            bucket.as_deref().unwrap_or(""),
            key.as_deref().unwrap_or("")
        );
        match self.control.decide(operation, identity) {
            Decision::Pass => Ok(()),
            Decision::Fail(kind) if kind.damages_body() => {
                // The operation runs; the HTTP layer damages its answer.
                match &slot {
                    Some(slot) => {
                        slot.lock().damage_body = Some(kind);
                        Ok(())
                    }
                    None => Err(fault_error(kind, None)),
                }
            }
            Decision::Fail(kind) => Err(fault_error(kind, slot.as_ref())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        let q = Some("list-type=2&prefix=a%2Fb%2F&start-after=x");
        assert_eq!(query_param(q, "prefix").as_deref(), Some("a/b/"));
        assert_eq!(query_param(q, "start-after").as_deref(), Some("x"));
        assert_eq!(query_param(q, "delimiter"), None);
    }

    #[test]
    fn every_nth_and_first_attempts() {
        let c = Control::default();
        c.set_faults(Faults {
            fail_every_nth: Some(3),
            kinds: vec![FaultKind::SlowDown, FaultKind::DropConnection],
            ..Faults::default()
        });
        let got: Vec<_> = (0..6).map(|i| c.decide("Op", format!("k{i}"))).collect();
        assert_eq!(got[2], Decision::Fail(FaultKind::SlowDown));
        assert_eq!(got[5], Decision::Fail(FaultKind::DropConnection));
        assert_eq!(got.iter().filter(|d| **d == Decision::Pass).count(), 4);

        c.set_faults(Faults {
            fail_first_attempts: Some(2),
            ..Faults::default()
        });
        let got: Vec<_> = (0..3).map(|_| c.decide("Op", "same".to_string())).collect();
        assert_eq!(
            got,
            vec![
                Decision::Fail(FaultKind::SlowDown),
                Decision::Fail(FaultKind::SlowDown),
                Decision::Pass
            ]
        );
    }

    #[test]
    fn fraction_is_spread_evenly_and_operations_filter() {
        let c = Control::default();
        c.set_faults(Faults {
            fail_fraction: Some((3, 10)),
            operations: vec!["ListObjectsV2".to_string()],
            ..Faults::default()
        });
        let got: Vec<_> = (0..100)
            .map(|i| c.decide("ListObjectsV2", format!("k{i}")))
            .collect();
        assert_eq!(got.iter().filter(|d| **d != Decision::Pass).count(), 30);
        assert_ne!(got[0], Decision::Pass);
        // Never two failures in a row at 30 %.
        assert!(got
            .windows(2)
            .all(|w| w[0] == Decision::Pass || w[1] == Decision::Pass));
        assert!((0..20).all(|i| c.decide("GetObject", format!("g{i}")) == Decision::Pass));

        c.set_faults(Faults {
            fail_every_nth: Some(1),
            max_failures_per_request: Some(2),
            ..Faults::default()
        });
        let got: Vec<_> = (0..4).map(|_| c.decide("Op", "same".to_string())).collect();
        assert_eq!(got.iter().filter(|d| **d == Decision::Pass).count(), 2);
        assert_eq!(got[2], Decision::Pass);
    }
}
