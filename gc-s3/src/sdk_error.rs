//! The one place where aws-sdk-s3 errors become `StorageError`s and [`RequestError`]s.
//!
//! After the SDK has retried: not found (404, `NoSuchKey`, `NotFound`) is a value for reads;
//! everything else — including a missing bucket, which must never look like an empty registry
//! — is `Backend { backend: "s3" }` whose source is a [`RequestError`]: one short line saying
//! what happened and what to do (the service's code, message and HTTP status with a hint, as
//! `NoSuchBucket: … (HTTP 404): check the bucket …`; or, when the service did not answer in
//! words, what the connection met: no credentials, refused, unknown host, TLS to a plain-HTTP
//! server, an untrusted certificate, a timeout), and the SDK error itself as *its* source. Never
//! the SDK's `Debug` form of an error (it holds the raw response: a listing page's is 160 KB),
//! and never more than [`MAX_MESSAGE`] characters.
//!
//! [`transport_kind`] is also what the client's retry classifier asks: a refused connection, a
//! host that does not resolve, a TLS mismatch or missing credentials are not retried, so such a
//! run fails in well under a second instead of after a minute of backoff.

use crate::error::{FailureKind, RequestError};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use gc_core::storage::StorageError;

pub(crate) const BACKEND: &str = "s3";

/// The longest message this module puts into an error, in characters.
pub(crate) const MAX_MESSAGE: usize = 300;

/// Where requests go, for messages: set once when the client is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `http://127.0.0.1:9000`, or `AWS S3 in eu-west-1`.
    pub(crate) endpoint: String,
    /// The host name requests are sent to (with virtual-host style, the bucket's).
    pub(crate) host: String,
    /// Whether `--endpoint-url` named the endpoint.
    pub(crate) custom_endpoint: bool,
    /// Whether requests are path-style.
    pub(crate) path_style: bool,
    /// The bucket.
    pub(crate) bucket: String,
}

impl Target {
    /// The target of `bucket` at `endpoint_url` (or AWS in `region`).
    pub(crate) fn new(
        bucket: &str,
        endpoint_url: Option<&str>,
        region: &str,
        path_style: bool,
    ) -> Target {
        let (endpoint, base_host) = match endpoint_url {
            Some(url) => (url.trim_end_matches('/').to_string(), url_host(url)),
            None => (
                format!("AWS S3 in {region}"),
                format!("s3.{region}.amazonaws.com"),
            ),
        };
        let host = if path_style {
            base_host
        } else {
            format!("{bucket}.{base_host}")
        };
        Target {
            endpoint,
            host,
            custom_endpoint: endpoint_url.is_some(),
            path_style,
            bucket: bucket.to_string(),
        }
    }
}

/// The host of `http(s)://host[:port][/…]` (brackets kept for IPv6).
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if authority.starts_with('[') {
        return authority
            .split_once(']')
            .map_or(authority.to_string(), |(h, _)| format!("{h}]"));
    }
    authority
        .split_once(':')
        .map_or(authority, |(h, _)| h)
        .to_string()
}

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

/// Map `err`, met while reading `key` (a storage key or prefix) at `what` (the S3 location
/// and operation, for the message).
fn map<E, R>(err: SdkError<E, R>, key: &str, what: &str, target: &Target) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + Send + Sync + 'static,
{
    let status = err.raw_response().map(HasStatus::status);
    let code = err.code();
    if code != Some("NoSuchBucket")
        && (matches!(code, Some("NoSuchKey" | "NotFound")) || status == Some(404))
    {
        return Failure::NotFound;
    }
    Failure::Error(backend(key, request_error(err, what, target)))
}

/// An SDK call's output, `None` when the object does not exist, else the error mapped.
pub(crate) fn found<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    key: &str,
    what: &str,
    target: &Target,
) -> Result<Option<T>, StorageError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + Send + Sync + 'static,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(e) => match map(e, key, what, target) {
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
    target: &Target,
) -> Result<Option<T>, StorageError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + Send + Sync + 'static,
{
    match result {
        Err(e)
            if matches!(e.code(), Some("NoSuchVersion" | "MethodNotAllowed"))
                || e.raw_response().map(HasStatus::status) == Some(405) =>
        {
            Ok(None)
        }
        other => found(other, key, what, target),
    }
}

/// Like [`found`]'s mapping, for operations where not-found is itself an error (listing).
pub(crate) fn map_strict<E, R>(
    err: SdkError<E, R>,
    key: &str,
    what: &str,
    target: &Target,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + Send + Sync + 'static,
{
    backend(key, request_error(err, what, target))
}

fn backend(key: &str, source: RequestError) -> StorageError {
    StorageError::Backend {
        key: key.to_string(),
        backend: BACKEND,
        source: Box::new(source),
    }
}

/// `err` as a [`RequestError`]: `what: reason[: hint]` on one short line, the SDK error kept
/// as the source.
pub(crate) fn request_error<E, R>(err: SdkError<E, R>, what: &str, target: &Target) -> RequestError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + Send + Sync + 'static,
{
    let (kind, reason) = describe(&err, target);
    RequestError::new(
        kind,
        short(&format!("{what}: {reason}")),
        Some(Box::new(err)),
    )
}

/// What an SDK failure is, for a person: what the service answered with a hint
/// (`NoSuchBucket: … (HTTP 404): check …`), or what the connection met.
fn describe<E, R>(err: &SdkError<E, R>, target: &Target) -> (FailureKind, String)
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + 'static,
{
    let status = err.raw_response().map(HasStatus::status);
    match (err, status) {
        (SdkError::ServiceError(_), Some(status)) => {
            service(err.code(), err.message(), status, target)
        }
        (SdkError::ResponseError(_), Some(status)) if !(200..300).contains(&status) => {
            service(None, None, status, target)
        }
        (SdkError::TimeoutError(_), _) => (FailureKind::Timeout, timeout_text(target)),
        _ => {
            let (kind, text) = transport(err, target);
            match status {
                Some(status) => (kind, format!("{text} (HTTP {status})")),
                None => (kind, text),
            }
        }
    }
}

fn timeout_text(target: &Target) -> String {
    format!(
        "no answer from {} in time (see --connect-timeout, --read-timeout, --max-attempts)",
        target.endpoint
    )
}

/// The service's answer `code: message (HTTP status)` (the parts it gave) and what to do.
fn service(
    code: Option<&str>,
    message: Option<&str>,
    status: u16,
    target: &Target,
) -> (FailureKind, String) {
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    let answer = match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m} (HTTP {status})"),
        (Some(c), None) => format!("{c} (HTTP {status})"),
        (None, _) => format!("HTTP {status}{}", status_text(status)),
    };
    let bucket = &target.bucket;
    let (kind, hint): (FailureKind, String) = match code {
        Some("NoSuchBucket") => (
            FailureKind::NoSuchBucket,
            format!(
                "no bucket {bucket} at {}: check the bucket name in LOCATION (or the registry config) and the endpoint",
                target.endpoint
            ),
        ),
        // s3s-based servers answer an unknown key with NotSignedUp.
        Some("InvalidAccessKeyId" | "NotSignedUp") => (
            FailureKind::Denied,
            "the server does not know this access key: check AWS_ACCESS_KEY_ID or the profile's credentials".into(),
        ),
        Some("SignatureDoesNotMatch") => (
            FailureKind::Denied,
            "the secret key does not match the access key: check AWS_SECRET_ACCESS_KEY or the profile's credentials".into(),
        ),
        Some("ExpiredToken" | "InvalidToken" | "TokenRefreshRequired") => (
            FailureKind::Denied,
            "the session token is expired or invalid: refresh the credentials".into(),
        ),
        Some("AuthorizationHeaderMalformed" | "PermanentRedirect" | "IllegalLocationConstraintException") => (
            FailureKind::Service,
            "the bucket is in another region: pass --region".into(),
        ),
        Some(c) if THROTTLING.contains(&c) => (FailureKind::Throttled, throttled_hint()),
        _ if status == 403 => (
            FailureKind::Denied,
            format!("the credentials may not read bucket {bucket}: gc-audit needs s3:ListBucket and s3:GetObject"),
        ),
        _ if matches!(status, 429 | 503) => (FailureKind::Throttled, throttled_hint()),
        _ if status == 301 => (
            FailureKind::Service,
            "the bucket is in another region: pass --region".into(),
        ),
        _ if status == 404 && target.custom_endpoint && !target.path_style => (
            FailureKind::Service,
            "with an S3-compatible endpoint, try --force-path-style".into(),
        ),
        _ => (FailureKind::Service, String::new()),
    };
    if hint.is_empty() {
        (kind, answer)
    } else {
        (kind, format!("{answer}: {hint}"))
    }
}

fn throttled_hint() -> String {
    "still throttled after retries: lower --concurrency or raise --max-attempts".into()
}

fn status_text(status: u16) -> &'static str {
    match status {
        400 => " Bad Request",
        401 => " Unauthorized",
        403 => " Forbidden",
        404 => " Not Found",
        405 => " Method Not Allowed",
        500 => " Internal Server Error",
        502 => " Bad Gateway",
        503 => " Service Unavailable",
        504 => " Gateway Timeout",
        _ => "",
    }
}

/// A failure before any answer (or a broken one): what the connection met, and what to do.
fn transport(err: &(dyn std::error::Error + 'static), target: &Target) -> (FailureKind, String) {
    let kind = transport_kind(err);
    let endpoint = &target.endpoint;
    let text = match kind {
        Some(FailureKind::NoCredentials) => {
            "no AWS credentials found (tried: environment variables, shared config and credentials \
             files, web identity token, ECS container, EC2 instance metadata): set \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile"
                .to_string()
        }
        Some(FailureKind::Credentials) => format!(
            "AWS credentials could not be loaded ({}): check the profile or AWS_* variables",
            causes_after_dispatch(err)
        ),
        Some(FailureKind::ConnectionRefused) => format!(
            "connection refused by {endpoint}: nothing listens there; check --endpoint-url \
             (scheme, host, port) and that the server runs"
        ),
        Some(FailureKind::Dns) if target.custom_endpoint && !target.path_style => format!(
            "cannot resolve host {}: virtual-host style puts the bucket in the host name; \
             pass --force-path-style",
            target.host
        ),
        Some(FailureKind::Dns) => format!(
            "cannot resolve host {}: check the host name{}",
            target.host,
            if target.custom_endpoint {
                " in --endpoint-url"
            } else {
                ", the network and --region"
            }
        ),
        Some(FailureKind::TlsToPlainHttp) => format!(
            "TLS handshake with {endpoint} failed: the server speaks plain HTTP; use http:// \
             in --endpoint-url"
        ),
        Some(FailureKind::Certificate) => format!(
            "the TLS certificate of {endpoint} is not trusted ({}): pass --ca-bundle FILE (or \
             set AWS_CA_BUNDLE) with the CA that signed it",
            certificate_detail(err)
        ),
        Some(FailureKind::Timeout) => timeout_text(target),
        _ => causes_after_dispatch(err),
    };
    (kind.unwrap_or(FailureKind::Other), text)
}

/// The kind of a failure that happened before (or instead of) an answer, when this module
/// recognises it in the chain of sources: credentials, connection refused, DNS, TLS, timeout.
pub(crate) fn transport_kind(err: &(dyn std::error::Error + 'static)) -> Option<FailureKind> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut timeout = false;
    while let Some(e) = next {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            return Some(match c {
                CredentialsError::CredentialsNotLoaded(_) => FailureKind::NoCredentials,
                _ => FailureKind::Credentials,
            });
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return Some(FailureKind::ConnectionRefused);
            }
            if io.kind() == std::io::ErrorKind::TimedOut {
                timeout = true;
            }
        }
        if let Some(c) = e.downcast_ref::<aws_sdk_s3::error::ConnectorError>() {
            timeout |= c.is_timeout();
        }
        let text = e.to_string();
        if text == "dns error" || text.contains("failed to lookup address") {
            return Some(FailureKind::Dns);
        }
        if text.contains("InvalidContentType") || text.contains("corrupt message") {
            return Some(FailureKind::TlsToPlainHttp);
        }
        if text.contains("invalid peer certificate") {
            return Some(FailureKind::Certificate);
        }
        timeout |= text.contains("timed out") || text.contains("timeout");
        next = e.source();
    }
    timeout.then_some(FailureKind::Timeout)
}

/// The part of a certificate error that says why (`UnknownIssuer`, …).
fn certificate_detail(err: &(dyn std::error::Error + 'static)) -> String {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if let Some(rest) = text.split_once("invalid peer certificate: ") {
            return rest.1.to_string();
        }
        next = e.source();
    }
    "invalid peer certificate".to_string()
}

/// The chain of causes as text, without the SDK's own words for its layers ("dispatch
/// failure", "io error", "other"), which say nothing to an operator.
fn causes_after_dispatch(err: &(dyn std::error::Error + 'static)) -> String {
    let text = causes(err);
    let mut rest = text.as_str();
    for layer in [
        "dispatch failure: ",
        "io error: ",
        "other: ",
        "response error: ",
    ] {
        rest = rest.strip_prefix(layer).unwrap_or(rest);
    }
    rest.to_string()
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
    backend(
        key,
        RequestError::new(FailureKind::Other, short(&format!("{what}: {err}")), None),
    )
}

/// Like [`other`], keeping `err` as the source.
pub(crate) fn other_error(
    key: &str,
    what: &str,
    err: impl std::error::Error + Send + Sync + 'static,
) -> StorageError {
    let message = short(&format!("{what}: {}", causes(&err)));
    backend(
        key,
        RequestError::new(FailureKind::Other, message, Some(Box::new(err))),
    )
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

    fn target(path_style: bool) -> Target {
        Target::new(
            "b",
            Some("http://minio.local:9000/"),
            "us-east-1",
            path_style,
        )
    }

    #[test]
    fn targets_name_the_host_requests_go_to() {
        assert_eq!(target(false).host, "b.minio.local");
        assert_eq!(target(true).host, "minio.local");
        assert_eq!(target(true).endpoint, "http://minio.local:9000");
        let aws = Target::new("b", None, "eu-west-1", false);
        assert_eq!(aws.endpoint, "AWS S3 in eu-west-1");
        assert_eq!(aws.host, "b.s3.eu-west-1.amazonaws.com");
        assert_eq!(url_host("https://[::1]:9000/x"), "[::1]");
    }

    #[test]
    fn service_answers_keep_their_code_and_give_a_hint() {
        let t = target(true);
        let (kind, text) = service(Some("AccessDenied"), Some("Access Denied"), 403, &t);
        assert_eq!(kind, FailureKind::Denied);
        assert_eq!(
            text,
            "AccessDenied: Access Denied (HTTP 403): the credentials may not read bucket b: \
             gc-audit needs s3:ListBucket and s3:GetObject"
        );
        let (kind, text) = service(Some("NoSuchBucket"), None, 404, &t);
        assert_eq!(kind, FailureKind::NoSuchBucket);
        assert!(
            text.starts_with("NoSuchBucket (HTTP 404): no bucket b at http://minio.local:9000"),
            "{text}"
        );
        let (_, text) = service(None, None, 403, &t);
        assert!(
            text.starts_with("HTTP 403 Forbidden: the credentials may not read"),
            "{text}"
        );
        let (kind, text) = service(
            Some("SlowDown"),
            Some("Please reduce your request rate."),
            503,
            &t,
        );
        assert_eq!(kind, FailureKind::Throttled);
        assert!(
            text.ends_with("lower --concurrency or raise --max-attempts"),
            "{text}"
        );
        let (_, text) = service(None, None, 404, &target(false));
        assert!(text.ends_with("try --force-path-style"), "{text}");
        for (code, status) in [
            ("InvalidAccessKeyId", 403),
            ("SignatureDoesNotMatch", 403),
            ("NoSuchBucket", 404),
        ] {
            let (_, text) = service(Some(code), Some(""), status, &t);
            assert!(
                !text.contains("no message") && text.starts_with(code),
                "{text}"
            );
        }
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
