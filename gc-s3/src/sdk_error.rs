//! The one place where aws-sdk-s3 errors become `StorageError`s.
//!
//! After the SDK has retried: not found (404, `NoSuchKey`, `NotFound`) is a value for reads;
//! refusals (403 and credential errors) are `PermissionDenied`; throttling (`SlowDown`, 503,
//! 429, …) is `Throttled`; everything else — including a missing bucket, which must never
//! look like an empty registry — is `Backend { backend: "s3" }` with one short line: the
//! service's code, message and HTTP status (`NoSuchBucket: no bucket x (HTTP 404)`), or, when
//! the service did not answer in words, the chain of causes as text. Never the SDK's `Debug`
//! form of an error (it holds the raw response: a listing page's is 160 KB), and never more
//! than [`MAX_MESSAGE`] characters.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use gc_core::storage::StorageError;

pub(crate) const BACKEND: &str = "s3";

/// The longest message this module puts into an error, in characters.
pub(crate) const MAX_MESSAGE: usize = 300;

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

/// Like [`found`], for a read of one version: a version the key does not have (404
/// `NoSuchVersion`) or a delete marker's version id (405 `MethodNotAllowed`, which S3 answers
/// for a GET of a marker) is `None` too.
pub(crate) fn found_version<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    key: &str,
    what: &str,
) -> Result<Option<T>, StorageError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match result {
        Err(e)
            if matches!(e.code(), Some("NoSuchVersion" | "MethodNotAllowed"))
                || e.raw_response().map(HasStatus::status) == Some(405) =>
        {
            Ok(None)
        }
        other => found(other, key, what),
    }
}

/// Like [`map`], for operations where not-found is itself an error (listing).
pub(crate) fn map_strict<E, R>(err: SdkError<E, R>, key: &str, what: &str) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let message = short(&format!("{what}: {}", describe(&err)));
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
        source: short(&format!("{what}: {}", describe(err))).into(),
    }
}

/// An SDK failure for a person: what the service answered (`NoSuchBucket: no bucket x (HTTP
/// 404)`), or, when it did not answer in words (connection, timeout, a body that does not
/// parse), the chain of causes as text, with the HTTP status when there was one.
fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let status = err.raw_response().map(HasStatus::status);
    match (&err, err.code(), status) {
        (SdkError::ServiceError(_), Some(code), Some(status)) => format!(
            "{code}: {} (HTTP {status})",
            err.message().unwrap_or("no message")
        ),
        (_, _, Some(status)) => format!("{} (HTTP {status})", causes(err)),
        (_, _, None) => causes(err),
    }
}

/// Why a response arrived but could not be read or parsed (its body cut short or malformed),
/// or `None` for any other failure. The SDK retries the former only when reading the body
/// failed, and a 200 answer whose body does not parse not at all.
pub(crate) fn damaged_response<E, R>(err: &SdkError<E, R>) -> Option<String>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match err {
        SdkError::ResponseError(_) => Some(format!("body unreadable: {}", causes(err))),
        SdkError::ServiceError(service) if (200..300).contains(&service.raw().status()) => {
            Some(format!("body does not parse: {}", causes(service.err())))
        }
        _ => None,
    }
}

/// `err` and its sources, Display text joined by `: `, each repeated text once (the SDK's
/// layers often say the same thing twice).
fn causes(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    short(&parts.join(": "))
}

/// `text` on one line and at most [`MAX_MESSAGE`] characters (an ellipsis ends a cut).
pub(crate) fn short(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= MAX_MESSAGE {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_MESSAGE - 1).collect();
    cut.push('…');
    cut
}

/// `text` if it has at most `max` characters, else its start and end around an ellipsis,
/// `max` characters in all.
pub(crate) fn abbreviate(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max || max < 3 {
        return text.to_string();
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(count - tail).collect();
    format!("{start}…{end}")
}

/// A storage error for a failure outside the SDK call itself (a body read, a task, a
/// response that is not what it must be).
pub(crate) fn other(key: &str, what: &str, err: impl std::fmt::Display) -> StorageError {
    StorageError::Backend {
        key: key.to_string(),
        backend: BACKEND,
        source: short(&format!("{what}: {err}")).into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: String,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layer(text: &str, source: Option<Layer>) -> Layer {
        Layer {
            text: text.to_string(),
            source: source.map(Box::new),
        }
    }

    #[test]
    fn causes_are_one_short_line_without_repeats() {
        let inner = layer("connection reset\nby peer", None);
        let err = layer("dispatch failure", Some(layer("io error", Some(inner))));
        assert_eq!(
            causes(&err),
            "dispatch failure: io error: connection reset by peer"
        );
        let repeated = layer("timeout", Some(layer("timeout", None)));
        assert_eq!(causes(&repeated), "timeout");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        let long = "x".repeat(10 * MAX_MESSAGE);
        let cut = short(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE);
        assert!(cut.ends_with('…'));
        assert_eq!(short("a\n  b"), "a b");
    }

    #[test]
    fn long_keys_keep_their_start_and_end() {
        assert_eq!(abbreviate("abcdef", 6), "abcdef");
        assert_eq!(abbreviate("abcdefgh", 5), "ab…gh");
        let key = format!("docker/registry/v2/blobs/sha256/ab/{}/data", "0".repeat(64));
        let short = abbreviate(&key, 40);
        assert_eq!(short.chars().count(), 40);
        assert!(short.starts_with("docker/registry/v2/") && short.ends_with("/data"));
    }
}
