//! `Storage` over S3 for gc-audit.
//!
//! Placeholder crate: the S3 backend is built in its own issue. It exists now so that the
//! workspace has its final shape and the CLI can name it.
#![deny(missing_docs)]
