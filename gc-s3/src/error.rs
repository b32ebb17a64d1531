//! Errors of this crate's own API (connecting, checking access, reading a registry config), and
//! [`RequestError`], the source of every S3 failure this crate reports.
//!
//! Errors of storage reads are `gc_core::storage::StorageError`s, made by the private
//! [`crate::sdk_error`] mapping; their source is a [`RequestError`] whenever the SDK failed.
//! A [`RequestError`] displays as one line of at most 300 characters that says what happened
//! and what to do, and keeps the SDK's error as its [`std::error::Error::source`] for code that
//! wants the details. Neither type's `Debug` form shows the SDK's error (whose `Debug` text
//! holds the raw response and runs to kilobytes).

use std::fmt;

/// Failure to set up an S3 storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3Error {
    /// No region was given, none came from the AWS default chain, and there is no endpoint.
    #[error(
        "no AWS region for bucket {bucket}: pass --region, set AWS_REGION, \
         or name an S3-compatible endpoint"
    )]
    MissingRegion {
        /// The bucket.
        bucket: String,
    },
    /// The configuration cannot work.
    #[error("invalid S3 configuration: {0}")]
    InvalidConfig(String),
    /// The access check ([`crate::S3Storage::check_access`]) failed.
    #[error("{0}")]
    Request(#[source] RequestError),
}

/// What kind of failure a request met, for deciding what to tell the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The AWS default credential chain found no credentials.
    NoCredentials,
    /// Credentials were configured but could not be loaded (a broken profile, STS failing).
    Credentials,
    /// Nothing listens at the endpoint.
    ConnectionRefused,
    /// The endpoint's host name does not resolve.
    Dns,
    /// `https://` was used against a server that speaks plain HTTP.
    TlsToPlainHttp,
    /// The server's certificate is not trusted (a private CA without `--ca-bundle`).
    Certificate,
    /// Any other TLS failure.
    Tls,
    /// No answer in time (connect, read, attempt or operation timeout).
    Timeout,
    /// The service refused the credentials or the request (HTTP 403, `AccessDenied`, …).
    Denied,
    /// The bucket does not exist.
    NoSuchBucket,
    /// The service kept throttling.
    Throttled,
    /// Any other answer of the service.
    Service,
    /// Anything else (a connection dropped, a body that could not be read).
    Other,
}

/// One S3 request's failure: a short line for a person, its kind, and the SDK error behind it.
#[derive(thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    kind: FailureKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl RequestError {
    pub(crate) fn new(
        kind: FailureKind,
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        RequestError {
            kind,
            message,
            source,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }
}

impl fmt::Debug for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}
