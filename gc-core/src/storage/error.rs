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
    /// A filesystem entry that is not a regular file or a directory (a FIFO, a socket, a
    /// device, also when reached through a symbolic link): never opened, since reading it could
    /// block forever or never end.
    #[error("{key}: {what}, not a regular file: not read")]
    NotAFile {
        /// The key (the path of the entry, or of the symbolic link to it).
        key: String,
        /// What it is (`FIFO`, `socket`, `character device`, …).
        what: &'static str,
    },
    /// A symbolic link whose target is outside the storage root: not followed.
    #[error("{key}: symbolic link to {target}, outside the storage root: not followed")]
    SymlinkOutsideRoot {
        /// The key of the link.
        key: String,
        /// Where it leads (resolved when it can be).
        target: String,
    },
    /// A symbolic link that leads back to itself or to a directory above it.
    #[error("{key}: symbolic link loop: not followed")]
    SymlinkLoop {
        /// The key of the link (or of the path that runs into the loop).
        key: String,
    },
    /// A symbolic link whose target does not exist.
    #[error("{key}: symbolic link to {target}, which does not exist")]
    DanglingSymlink {
        /// The key of the link.
        key: String,
        /// What it names.
        target: String,
    },
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
            | StorageError::NotAFile { key, .. }
            | StorageError::SymlinkOutsideRoot { key, .. }
            | StorageError::SymlinkLoop { key }
            | StorageError::DanglingSymlink { key, .. }
            | StorageError::Backend { key, .. } => key,
            StorageError::InvalidPrefix(p) => p,
        }
    }
}
