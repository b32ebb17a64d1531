//! The one place where aws-sdk-s3 errors become `StorageError`s.
//!
//! After the SDK has retried: not found (404, `NoSuchKey`, `NotFound`) is a value for reads;
//! refusals (403 and credential errors) are `PermissionDenied`; throttling (`SlowDown`, 503,
//! 429, …) is `Throttled`; everything else — including a missing bucket, which must never
//! look like an empty registry — is `Backend { backend: "s3" }` with the SDK's full message.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use gc_core::storage::StorageError;

pub(crate) const BACKEND: &str = "s3";

/// What an SDK failure means to a reader.
#[derive(Debug)]
enum Failure {
    /// The object does not exist.
    NotFound,
    /// Anything else, already mapped.
    Error(StorageError),
}

const THROTTLING: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "BandwidthLimitExceeded",
];

const DENIED: &[&str] = &[
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
    "AccountProblem",
];

/// Map `err`, met while reading `key` (a storage key or prefix) at `what` (the S3 location
/// and operation, for the message).
fn map<E, R>(err: SdkError<E, R>, key: &str, what: &str) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let status = err.raw_response().map(HasStatus::status);
    let code = err.code().map(str::to_string);
    let code = code.as_deref();
    if code == Some("NoSuchBucket") {
        return Failure::Error(backend(key, what, &err));
    }
    if matches!(code, Some("NoSuchKey" | "NotFound")) || status == Some(404) {
        return Failure::NotFound;
    }
    if code.is_some_and(|c| DENIED.contains(&c)) || status == Some(403) {
        return Failure::Error(StorageError::PermissionDenied {
            key: key.to_string(),
            backend: BACKEND,
        });
    }
    if code.is_some_and(|c| THROTTLING.contains(&c)) || matches!(status, Some(429 | 503)) {
        return Failure::Error(StorageError::Throttled {
            key: key.to_string(),
            backend: BACKEND,
        });
    }
    Failure::Error(backend(key, what, &err))
}

/// An SDK call's output, `None` when the object does not exist, else the error mapped.
pub(crate) fn found<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    key: &str,
    what: &str,
) -> Result<Option<T>, StorageError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(e) => match map(e, key, what) {
            Failure::NotFound => Ok(None),
            Failure::Error(e) => Err(e),
        },
    }
}

/// Like [`map`], for operations where not-found is itself an error (listing).
pub(crate) fn map_strict<E, R>(err: SdkError<E, R>, key: &str, what: &str) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let message = format!("{what}: {}", describe(&err));
    match map(err, key, what) {
        Failure::Error(e) => e,
        Failure::NotFound => StorageError::Backend {
            key: key.to_string(),
            backend: BACKEND,
            source: message.into(),
        },
    }
}

fn backend<E, R>(key: &str, what: &str, err: &SdkError<E, R>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    StorageError::Backend {
        key: key.to_string(),
        backend: BACKEND,
        source: format!("{what}: {}", describe(err)).into(),
    }
}

/// An SDK failure for a person: what the service answered (`NoSuchBucket: no bucket x (HTTP
/// 404)`), or, when it did not answer (connection, timeout, bad response), the whole chain
/// of causes.
fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match (&err, err.code()) {
        (SdkError::ServiceError(service), Some(code)) => format!(
            "{code}: {} (HTTP {})",
            err.message().unwrap_or("no message"),
            service.raw().status()
        ),
        _ => DisplayErrorContext(err).to_string(),
    }
}

/// A storage error for a failure outside the SDK call itself (a body read, a task).
pub(crate) fn other(key: &str, what: &str, err: impl std::fmt::Display) -> StorageError {
    StorageError::Backend {
        key: key.to_string(),
        backend: BACKEND,
        source: format!("{what}: {err}").into(),
    }
}

/// The HTTP status of a raw response.
pub(crate) trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}
