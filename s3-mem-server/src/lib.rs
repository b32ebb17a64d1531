//! In-memory S3 protocol server for tests (being built).
