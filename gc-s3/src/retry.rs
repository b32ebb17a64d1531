//! Which requests are being retried, and why: for the log and for the progress display.
//!
//! The SDK retries quietly; an operator watching a scan that has slowed down (an endpoint
//! throttling with `SlowDown`, a flaky network) should see that it is retrying rather than a
//! spinner that seems frozen. [`RetryWatch`] is an interceptor that notes each failed attempt's
//! reason in the request's own state, and on the next attempt counts the request as retrying
//! under that reason in the shared [`RetryTracker`] until the request ends. It also logs each
//! retry, and each request that took long, through `tracing`.

use aws_sdk_s3::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::{BoxError, ProvideErrorMetadata};
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A request that took longer than this is logged as slow.
const SLOW_REQUEST: Duration = Duration::from_secs(5);

/// Requests being retried now, by the reason of their last failure.
#[derive(Debug, Default)]
pub struct RetryTracker {
    retrying: Mutex<BTreeMap<String, u64>>,
}

impl RetryTracker {
    /// Requests being retried now, by reason (`SlowDown`, `timeout`, `HTTP 503`, …), sorted by
    /// reason.
    pub fn retrying(&self) -> Vec<(String, u64)> {
        self.retrying
            .lock()
            .map(|m| m.iter().map(|(r, n)| (r.clone(), *n)).collect())
            .unwrap_or_default()
    }

    /// `retrying 3 requests: SlowDown` (reasons joined by `, `), or `None` when nothing is
    /// being retried.
    pub fn summary(&self) -> Option<String> {
        let retrying = self.retrying();
        let total: u64 = retrying.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return None;
        }
        let reasons: Vec<&str> = retrying.iter().map(|(r, _)| r.as_str()).collect();
        let noun = if total == 1 { "request" } else { "requests" };
        Some(format!("retrying {total} {noun}: {}", reasons.join(", ")))
    }

    fn begin(&self, reason: &str) {
        if let Ok(mut m) = self.retrying.lock() {
            *m.entry(reason.to_string()).or_default() += 1;
        }
    }

    fn end(&self, reason: &str) {
        if let Ok(mut m) = self.retrying.lock() {
            if let Some(n) = m.get_mut(reason) {
                *n -= 1;
                if *n == 0 {
                    m.remove(reason);
                }
            }
        }
    }
}

/// The reason of a request's last failed attempt.
#[derive(Debug, Clone)]
struct LastFailure(String);
impl Storable for LastFailure {
    type Storer = StoreReplace<Self>;
}

/// The reason a request is counted under in the tracker, while it is retried.
#[derive(Debug, Clone)]
struct CountedAs(String);
impl Storable for CountedAs {
    type Storer = StoreReplace<Self>;
}

/// When the request started.
#[derive(Debug, Clone, Copy)]
struct Started(Instant);
impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// The interceptor (see the module documentation).
#[derive(Debug)]
pub(crate) struct RetryWatch {
    tracker: std::sync::Arc<RetryTracker>,
}

impl RetryWatch {
    pub(crate) fn new(tracker: std::sync::Arc<RetryTracker>) -> Self {
        RetryWatch { tracker }
    }
}

/// A short reason for a failed attempt: the service's error code, else what failed.
fn reason(context: &FinalizerInterceptorContextRef<'_>) -> Option<String> {
    use aws_sdk_s3::operation::{
        get_object::GetObjectError, head_object::HeadObjectError,
        list_objects_v2::ListObjectsV2Error,
    };
    let Some(Err(err)) = context.output_or_error() else {
        return None;
    };
    let status = context.response().map(|r| r.status().as_u16());
    if let Some(op) = err.as_operation_error() {
        let code = op
            .downcast_ref::<ListObjectsV2Error>()
            .and_then(|e| e.code())
            .or_else(|| op.downcast_ref::<GetObjectError>().and_then(|e| e.code()))
            .or_else(|| op.downcast_ref::<HeadObjectError>().and_then(|e| e.code()));
        if let Some(code) = code {
            return Some(code.to_string());
        }
    }
    if err.is_timeout_error() || err.as_connector_error().is_some_and(|c| c.is_timeout()) {
        return Some("timeout".to_string());
    }
    if let Some(status) = status.filter(|s| *s >= 400) {
        return Some(format!("HTTP {status}"));
    }
    if err.is_connector_error() {
        return Some("connection error".to_string());
    }
    Some("response error".to_string())
}

impl Intercept for RetryWatch {
    fn name(&self) -> &'static str {
        "gc-s3-retry-watch"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_before_attempt(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        if attempt < 2 {
            return Ok(());
        }
        let reason = cfg
            .load::<LastFailure>()
            .map_or_else(|| "unknown".to_string(), |f| f.0.clone());
        tracing::info!(
            attempt,
            %reason,
            uri = context.request().uri(),
            "retrying request"
        );
        let counted = cfg.load::<CountedAs>().map(|c| c.0.clone());
        if counted.as_deref() != Some(reason.as_str()) {
            if let Some(old) = counted {
                self.tracker.end(&old);
            }
            self.tracker.begin(&reason);
            cfg.interceptor_state().store_put(CountedAs(reason));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(reason) = reason(context) {
            tracing::debug!(%reason, "attempt failed");
            cfg.interceptor_state().store_put(LastFailure(reason));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(CountedAs(reason)) = cfg.load::<CountedAs>() {
            self.tracker.end(reason);
        }
        if let Some(Started(start)) = cfg.load::<Started>() {
            let took = start.elapsed();
            let attempts = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
            let ok = matches!(context.output_or_error(), Some(Ok(_)));
            if took >= SLOW_REQUEST {
                tracing::info!(?took, attempts, ok, "slow request");
            } else {
                tracing::trace!(?took, attempts, ok, "request done");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_requests_being_retried_by_reason() {
        let t = RetryTracker::default();
        assert_eq!(t.summary(), None);
        t.begin("SlowDown");
        assert_eq!(t.summary().as_deref(), Some("retrying 1 request: SlowDown"));
        t.begin("SlowDown");
        t.begin("timeout");
        assert_eq!(
            t.summary().as_deref(),
            Some("retrying 3 requests: SlowDown, timeout")
        );
        t.end("SlowDown");
        t.end("SlowDown");
        t.end("timeout");
        assert_eq!(t.summary(), None);
    }
}
