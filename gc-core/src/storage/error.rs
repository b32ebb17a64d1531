//! Errors a storage backend returns: each names the key or prefix it was about.

/// A failure to read storage. Not-found is not an error (it is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The object is larger than the caller's limit; it was not read.
    #[error("{key}: object of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The key.
        key: String,
        /// Its size.
        size: u64,
        /// The limit the caller set.
        limit: u64,
    },
    /// Access was refused.
    #[error("{key}: permission denied ({backend})")]
    PermissionDenied {
        /// The key or prefix.
        key: String,
        /// Backend name.
        backend: &'static str,
    },
    /// The backend kept throttling after retries.
    #[error("{key}: throttled by {backend} after retries")]
    Throttled {
        /// The key or prefix.
        key: String,
        /// Backend name.
        backend: &'static str,
    },
    /// A key that cannot be represented (non-UTF-8 file name, a symbolic link, …).
    #[error("{key}: {reason}")]
    BadKey {
        /// The key or path as far as it could be rendered.
        key: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The caller passed a prefix that is neither empty nor ends in `/`.
    #[error("invalid list prefix {0:?}: must be empty or end with '/'")]
    InvalidPrefix(String),
    /// Any other backend failure.
    #[error("{key}: {backend} error: {source}")]
    Backend {
        /// The key or prefix.
        key: String,
        /// Backend name.
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StorageError {
    /// The key or prefix this error is about.
    pub fn key(&self) -> &str {
        match self {
            StorageError::TooLarge { key, .. }
            | StorageError::PermissionDenied { key, .. }
            | StorageError::Throttled { key, .. }
            | StorageError::BadKey { key, .. }
            | StorageError::Backend { key, .. } => key,
            StorageError::InvalidPrefix(p) => p,
        }
    }
}
