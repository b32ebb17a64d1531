//! Building the aws-sdk-s3 client: AWS default chain, overrides, retries, timeouts, counting.
//!
//! Region, credentials and profile come from `aws-config`'s default chain unless the
//! [`S3Config`] overrides them. Every attempt the SDK transmits (retries included) passes the
//! [`CountAndGuard`] interceptor, which counts it by kind and refuses any method other than
//! GET and HEAD, so this crate cannot write to the bucket it audits even by mistake.

use crate::config::S3Config;
use crate::error::S3Error;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_s3::error::BoxError;
use gc_core::storage::RequestCounter;
use std::sync::Arc;

/// Region used with an S3-compatible endpoint when none is configured; such servers accept
/// any region (distribution's own driver requires one, and `us-east-1` is the usual choice).
const ENDPOINT_DEFAULT_REGION: &str = "us-east-1";

/// Counts transmitted attempts and refuses anything but reads.
#[derive(Debug)]
pub(crate) struct CountAndGuard {
    pub(crate) counter: Arc<RequestCounter>,
}

impl Intercept for CountAndGuard {
    fn name(&self) -> &'static str {
        "gc-s3-count-and-guard"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        match request.method() {
            "HEAD" => self.counter.head(),
            "GET" if is_listing(request.uri()) => self.counter.list(),
            "GET" => self.counter.get(),
            other => {
                return Err(
                    format!("gc-s3 is read-only and refuses to send a {other} request").into(),
                )
            }
        }
        Ok(())
    }
}

/// Whether a GET URI is a ListObjectsV2 request (`?list-type=2`).
fn is_listing(uri: &str) -> bool {
    uri.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|p| p == "list-type=2" || p.starts_with("list-type="))
    })
}

/// Build the client for `cfg`, counting into `counter`.
pub(crate) async fn build(
    cfg: &S3Config,
    counter: Arc<RequestCounter>,
) -> Result<aws_sdk_s3::Client, S3Error> {
    if cfg.bucket.is_empty() {
        return Err(S3Error::InvalidConfig("empty bucket name".to_string()));
    }
    if cfg.concurrency == 0 {
        return Err(S3Error::InvalidConfig(
            "concurrency must be at least 1".to_string(),
        ));
    }
    if cfg.retries.max_attempts == 0 {
        return Err(S3Error::InvalidConfig(
            "max_attempts must be at least 1".to_string(),
        ));
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &cfg.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &cfg.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &cfg.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(creds) = &cfg.static_credentials {
        loader = loader.credentials_provider(Credentials::new(
            creds.access_key.clone(),
            creds.secret_key.clone(),
            None,
            None,
            "gc-audit-static",
        ));
    }
    let sdk = loader.load().await;
    let region = match (sdk.region(), &cfg.endpoint_url) {
        (Some(r), _) => r.clone(),
        (None, Some(_)) => Region::new(ENDPOINT_DEFAULT_REGION),
        (None, None) => {
            return Err(S3Error::MissingRegion {
                bucket: cfg.bucket.clone(),
            })
        }
    };
    let t = &cfg.timeouts;
    let r = &cfg.retries;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .region(region)
        .force_path_style(cfg.force_path_style)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(r.max_attempts)
                .with_initial_backoff(r.initial_backoff)
                .with_max_backoff(r.max_backoff),
        )
        .retry_partition(
            RetryPartition::custom("gc-audit")
                .token_bucket(TokenBucket::unlimited())
                .build(),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(t.connect)
                .read_timeout(t.read)
                .operation_attempt_timeout(t.attempt)
                .operation_timeout(t.operation)
                .build(),
        )
        .interceptor(CountAndGuard { counter })
        .build();
    Ok(aws_sdk_s3::Client::from_conf(conf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_requests_are_recognised() {
        assert!(is_listing("http://h/b?list-type=2&prefix=a%2F"));
        assert!(is_listing("/b?prefix=x&list-type=2"));
        assert!(!is_listing("http://h/b/key?x-id=GetObject"));
        assert!(!is_listing("http://h/b/list-type=2"));
    }
}
