//! Errors of this crate's own API (connecting, reading a registry config).
//!
//! Errors of storage reads are `gc_core::storage::StorageError`s, made by the private
//! [`crate::sdk_error`] mapping.

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
}
