//! `S3Config`: where the registry's bucket is and how hard to push it.
//!
//! Plain data with defaults, so the CLI, a registry `config.yml`
//! ([`crate::registry_config`]) and embedders all build the same thing. Keys in the bucket are
//! `root + "/" + storage key` (or the storage key alone when `root` is empty), which mirrors
//! distribution's `s3Path`: `TrimLeft(TrimRight(rootdirectory, "/") + path, "/")`.

use std::fmt;
use std::time::Duration;

/// Static credentials; the secret never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Timeouts of each request, applied by the SDK.
///
/// The defaults give up on an endpoint that accepts connections and never answers within a
/// minute: each attempt waits [`Timeouts::read`] for an answer, and the request as a whole,
/// retries and backoff included, stops at [`Timeouts::operation`]. A healthy S3 answers a
/// listing page or a manifest in well under a second, so neither bound is near a real request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection (default 5 s).
    pub connect: Duration,
    /// Waiting for data on an open connection (default 10 s).
    pub read: Duration,
    /// One attempt of a request (default 30 s).
    pub attempt: Duration,
    /// A request including all its retries (default 50 s).
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(10),
            attempt: Duration::from_secs(30),
            operation: Duration::from_secs(50),
        }
    }
}

/// Retries, applied by the SDK's standard retry strategy (exponential backoff with jitter;
/// throttling, 5xx, timeouts and dropped connections are retried). The SDK's retry quota is
/// disabled: an audit prefers being slow to being incomplete, and `max_attempts` bounds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Attempts per request, the first included (default 8).
    pub max_attempts: u32,
    /// First backoff (default 200 ms); doubles per attempt.
    pub initial_backoff: Duration,
    /// Largest backoff (default 20 s).
    pub max_backoff: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// How listings split the key space (see [`crate::list`]'s module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListTuning {
    /// Extra listing requests allowed, as a share of the pages listed so far (default 0.05).
    pub budget_fraction: f64,
    /// Extra listing requests allowed up front (default 1).
    pub budget_constant: f64,
    /// Pages of keys a range should hold, estimated from the density seen (default 16).
    pub pages_per_range: f64,
}

impl Default for ListTuning {
    fn default() -> Self {
        ListTuning {
            budget_fraction: 0.05,
            budget_constant: 1.0,
            pages_per_range: 16.0,
        }
    }
}

/// Where the registry's storage is and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Root directory inside the bucket, without leading or trailing `/` (empty: bucket root).
    pub root: String,
    /// Region; required unless `endpoint_url` is set or the AWS default chain provides one.
    pub region: Option<String>,
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`), instead of AWS's.
    pub endpoint_url: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as most S3-compatible servers need.
    pub force_path_style: bool,
    /// A named profile of the shared AWS config files; connecting fails when neither the
    /// config nor the credentials file defines it (as the aws CLI does).
    pub profile: Option<String>,
    /// Credentials to use instead of the AWS default chain.
    pub static_credentials: Option<StaticCredentials>,
    /// Requests in flight at most, listing pages and reads together (default 64).
    pub concurrency: usize,
    /// Request timeouts.
    pub timeouts: Timeouts,
    /// Request retries.
    pub retries: Retries,
    /// Listing split tuning.
    pub listing: ListTuning,
    /// A PEM file of CA certificates to trust besides the platform's (MinIO or Ceph behind a
    /// private CA); when `None`, the `AWS_CA_BUNDLE` environment variable names one.
    pub ca_bundle: Option<std::path::PathBuf>,
}

impl S3Config {
    /// A configuration for `bucket` with root directory `root` (a distribution
    /// `rootdirectory`: leading and trailing `/` are removed) and every other field default.
    pub fn new(bucket: impl Into<String>, root: &str) -> Self {
        S3Config {
            bucket: bucket.into(),
            root: normalize_root(root),
            region: None,
            endpoint_url: None,
            force_path_style: false,
            profile: None,
            static_credentials: None,
            concurrency: 64,
            timeouts: Timeouts::default(),
            retries: Retries::default(),
            listing: ListTuning::default(),
            ca_bundle: None,
        }
    }

    /// A configuration for an S3-compatible server at `endpoint_url` (MinIO, Ceph, a local
    /// test server): path-style requests, `region`, and fixed credentials.
    pub fn compatible_endpoint(
        bucket: impl Into<String>,
        root: &str,
        endpoint_url: impl Into<String>,
        region: impl Into<String>,
        credentials: StaticCredentials,
    ) -> Self {
        let mut cfg = S3Config::new(bucket, root);
        cfg.endpoint_url = Some(endpoint_url.into());
        cfg.region = Some(region.into());
        cfg.force_path_style = true;
        cfg.static_credentials = Some(credentials);
        cfg
    }

    /// The S3 key of a storage key.
    pub fn s3_key(&self, key: &str) -> String {
        if self.root.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.root)
        }
    }

    /// `s3://bucket/root` (or `s3://bucket` when the root is empty).
    pub fn location(&self) -> String {
        if self.root.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.root)
        }
    }
}

/// A distribution `rootdirectory` as a key prefix: `/registry/` → `registry`, `/` → ``.
pub fn normalize_root(root: &str) -> String {
    root.trim_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_mirror_distribution_s3_path() {
        let cfg = S3Config::new("b", "/registry/root/");
        assert_eq!(cfg.root, "registry/root");
        assert_eq!(
            cfg.s3_key("docker/registry/v2/x"),
            "registry/root/docker/registry/v2/x"
        );
        assert_eq!(cfg.location(), "s3://b/registry/root");
        let bare = S3Config::new("b", "/");
        assert_eq!(bare.s3_key("docker/registry/v2/x"), "docker/registry/v2/x");
        assert_eq!(bare.location(), "s3://b");
    }

    #[test]
    fn default_timeouts_give_up_on_a_silent_endpoint_within_a_minute() {
        let t = Timeouts::default();
        assert!(t.operation < Duration::from_secs(60), "{t:?}");
        assert!(t.read < t.attempt && t.attempt <= t.operation, "{t:?}");
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let c = StaticCredentials {
            access_key: "AK".into(),
            secret_key: "very-secret".into(),
        };
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
