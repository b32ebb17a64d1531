//! Validated configuration: flags resolved into what the run needs, with errors that name the
//! flag to fix.

use crate::args::{GcPlanArgs, RecoverArgs, ScanArgs, StorageArgs};
use crate::cache::CacheChoice;
use anyhow::{bail, Context, Result};
use gc_core::gc::GcModel;
use gc_s3::registry_config::{ConfigWarning, RegistryConfig};
use gc_s3::{RegistryStorage, S3Config};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the registry's storage is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Location {
    /// A filesystem root (the folder holding `docker/registry/v2`).
    Fs(PathBuf),
    /// An S3 bucket and root directory, with how to reach it.
    S3(Box<S3Config>),
}

impl Location {
    /// The filesystem root the audit reads, which no report folder may be inside or around;
    /// `None` for a bucket.
    pub(crate) fn audited_root(&self) -> Option<&Path> {
        match self {
            Location::Fs(root) => Some(root.as_path()),
            Location::S3(_) => None,
        }
    }

    /// The location as a person writes it: the path, or `s3://bucket/root`.
    pub(crate) fn display(&self) -> String {
        match self {
            Location::Fs(path) => path.display().to_string(),
            Location::S3(cfg) => cfg.location(),
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Location> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, root) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                bail!("LOCATION {s:?}: no bucket name after s3://");
            }
            return Ok(Location::S3(Box::new(S3Config::new(bucket, root))));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            bail!("{}", unsupported_scheme(s, scheme));
        }
        Location::filesystem(s, "LOCATION")
    }

    fn filesystem(s: &str, what: &str) -> Result<Location> {
        let path = PathBuf::from(s);
        if path.is_file() {
            bail!("{what} {s:?} is a file, not a directory: pass the registry's rootdirectory (the folder that contains docker/)");
        }
        if !path.is_dir() {
            bail!("{what} {s:?}: no such directory");
        }
        if !path.join(LAYOUT).is_dir() {
            let hint = match (enclosing_root(&path), root_below(&path)) {
                (Some(root), _) => format!(
                    "it is inside the registry root {}: did you mean {}?",
                    root.display(),
                    root.display()
                ),
                (None, Some(root)) => format!("did you mean {}?", root.display()),
                (None, None) => {
                    "pass the registry's rootdirectory (the folder that contains docker/)".into()
                }
            };
            bail!("{what} {s:?} does not hold {LAYOUT}: {hint}");
        }
        Ok(Location::Fs(path))
    }

    /// Resolve LOCATION or --registry-config (with the registry's `REGISTRY_STORAGE_*`
    /// environment applied), then apply the S3 flags. Returns the location and the warnings
    /// about the registry config (unknown keys, defaults used), each naming the file; a
    /// default that a flag replaces is not warned about. The warnings are printed on stderr
    /// as soon as the config is read, so that they come before any progress bar and before
    /// an error they may explain (a typo'd `rootdirectory`).
    pub(crate) fn from_args(args: &StorageArgs) -> Result<(Location, Vec<String>)> {
        let mut warnings = Vec::new();
        let mut location = match (&args.location, &args.registry_config) {
            (Some(_), Some(_)) => bail!("give LOCATION or --registry-config, not both"),
            (None, None) => bail!("LOCATION is required (or --registry-config FILE)"),
            (Some(l), None) => Location::parse(l)?,
            (None, Some(file)) => {
                let config = RegistryConfig::from_file(file)
                    .with_context(|| format!("--registry-config {}", file.display()))?;
                let replaced_by_flag = |parameter: &str| match parameter {
                    "region" => args.region.is_some(),
                    "secure" => args.endpoint_url.is_some(),
                    _ => false,
                };
                for w in &config.warnings {
                    match w {
                        ConfigWarning::Default { parameter, .. } if replaced_by_flag(parameter) => {
                        }
                        ConfigWarning::Default { .. } => {
                            warnings.push(format!("--registry-config {}: {w}", file.display()))
                        }
                        _ => warnings.push(w.to_string()),
                    }
                }
                print_warnings(&warnings);
                let storage = config.storage;
                match (&storage, storage.to_s3_config()) {
                    (RegistryStorage::Filesystem { rootdirectory }, _) => {
                        Location::filesystem(rootdirectory, "the config's rootdirectory")?
                    }
                    (_, Some(cfg)) => Location::S3(Box::new(cfg)),
                    (_, None) => bail!(
                        "--registry-config {}: unsupported storage driver",
                        file.display()
                    ),
                }
            }
        };
        match &mut location {
            Location::S3(cfg) => {
                if args.endpoint_url.is_some() {
                    cfg.endpoint_url = args.endpoint_url.clone();
                }
                if args.region.is_some() {
                    cfg.region = args.region.clone();
                }
                if args.profile.is_some() {
                    cfg.profile = args.profile.clone();
                }
                cfg.force_path_style |= args.force_path_style;
                cfg.concurrency = args.concurrency;
                if let Some(t) = args.connect_timeout {
                    cfg.timeouts.connect = t;
                }
                if let Some(t) = args.read_timeout {
                    cfg.timeouts.read = t;
                    // An attempt may wait its read timeout a few times over (connect, headers,
                    // body); the request as a whole keeps room for the retries.
                    cfg.timeouts.attempt = cfg.timeouts.attempt.max(t * 3);
                    cfg.timeouts.operation = cfg.timeouts.operation.max(t * 5);
                }
                if let Some(n) = args.max_attempts {
                    cfg.retries.max_attempts = n;
                }
                if args.ca_bundle.is_some() {
                    cfg.ca_bundle = args.ca_bundle.clone();
                }
            }
            Location::Fs(_) => {
                let s3_flags = args.endpoint_url.is_some()
                    || args.region.is_some()
                    || args.profile.is_some()
                    || args.force_path_style
                    || args.connect_timeout.is_some()
                    || args.read_timeout.is_some()
                    || args.max_attempts.is_some()
                    || args.ca_bundle.is_some();
                if s3_flags {
                    bail!("--endpoint-url, --region, --profile, --force-path-style, --connect-timeout, --read-timeout, --max-attempts and --ca-bundle are for s3:// locations");
                }
            }
        }
        Ok((location, warnings))
    }
}

/// The layout a filesystem root holds.
const LAYOUT: &str = "docker/registry/v2";

/// How many directory levels below a LOCATION are searched for a registry root.
const ROOT_SEARCH_DEPTH: usize = 3;

/// At most this many directories are looked at in that search (a LOCATION of `/` must not
/// walk the disk).
const ROOT_SEARCH_DIRS: usize = 2000;

/// The registry root `path` lies inside (`…/docker/registry/v2/repositories` → `…`).
fn enclosing_root(path: &std::path::Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    absolute
        .ancestors()
        .skip(1)
        .find(|a| a.join(LAYOUT).is_dir())
        .map(std::path::Path::to_path_buf)
}

/// The shallowest registry root below `path` (breadth first, a few levels, a bounded number of
/// directories, sorted by name so the answer is stable).
fn root_below(path: &std::path::Path) -> Option<PathBuf> {
    let mut level = vec![path.to_path_buf()];
    let mut seen = 0;
    for _ in 0..ROOT_SEARCH_DEPTH {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut children: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            children.sort();
            for child in children {
                if child.join(LAYOUT).is_dir() {
                    return Some(child);
                }
                seen += 1;
                if seen > ROOT_SEARCH_DIRS {
                    return None;
                }
                next.push(child);
            }
        }
        level = next;
    }
    None
}

/// The message for a LOCATION with a scheme gc-audit does not read.
fn unsupported_scheme(s: &str, scheme: &str) -> String {
    let what = match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => "a URL: gc-audit reads the registry's storage, not the registry API",
        "gs" | "gcs" => "Google Cloud Storage, which gc-audit does not read",
        "az" | "azure" | "abfs" | "abfss" | "wasb" | "wasbs" => {
            "Azure storage, which gc-audit does not read"
        }
        "docker" | "oci" | "registry" => {
            "a registry reference: gc-audit reads the registry's storage, not the registry API"
        }
        _ => "a scheme gc-audit does not read",
    };
    format!(
        "LOCATION {s:?} is {what}; give the storage: a filesystem rootdirectory \
         (/var/lib/registry) or s3://BUCKET[/ROOTDIRECTORY] (S3-compatible servers with \
         --endpoint-url), or --registry-config FILE"
    )
}

/// Print the registry-config warnings on stderr (before any progress bar).
pub(crate) fn print_warnings(warnings: &[String]) {
    for w in warnings {
        crate::say(format_args!("gc-audit: warning: {w}"));
    }
}

/// `--grace`: a duration like `1h`, `30m` or `0s`.
fn parse_grace(text: &str) -> Result<Duration> {
    humantime::parse_duration(text)
        .with_context(|| format!("--grace {text:?}: expected a duration like 1h, 30m or 0s"))
}

/// `--concurrency`: at least one request in flight.
fn check_concurrency(concurrency: usize) -> Result<()> {
    if concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    Ok(())
}

/// Everything `scan` needs.
#[derive(Debug, Clone)]
pub(crate) struct ScanConfig {
    pub(crate) location: Location,
    pub(crate) out: PathBuf,
    pub(crate) grace: Duration,
    pub(crate) concurrency: usize,
    pub(crate) verify_links: bool,
    /// `--cache-dir`, `--no-cache`.
    pub(crate) cache: CacheChoice,
    pub(crate) json: bool,
    pub(crate) fail_on_unsafe: Option<GcModel>,
    pub(crate) quiet: bool,
    /// `--metrics-out`.
    pub(crate) metrics_out: Option<PathBuf>,
    /// `--metrics-repositories`.
    pub(crate) metrics_repositories: bool,
    /// Warnings about the registry config (printed already), for summary.json.
    pub(crate) warnings: Vec<String>,
}

impl ScanConfig {
    pub(crate) fn from_args(args: &ScanArgs) -> Result<ScanConfig> {
        let grace = parse_grace(&args.grace)?;
        check_concurrency(args.storage.concurrency)?;
        let fail_on_unsafe = match &args.fail_on_unsafe {
            Some(m) => Some(
                m.parse::<GcModel>()
                    .map_err(|e| anyhow::anyhow!("--fail-on-unsafe: {e}"))?,
            ),
            None => None,
        };
        let (location, warnings) = Location::from_args(&args.storage)?;
        Ok(ScanConfig {
            location,
            warnings,
            out: args.out.clone(),
            grace,
            concurrency: args.storage.concurrency,
            verify_links: args.storage.verify_links,
            cache: CacheChoice::from_args(&args.storage),
            json: args.json,
            fail_on_unsafe,
            quiet: args.quiet,
            metrics_out: args.metrics_out.clone(),
            metrics_repositories: args.metrics_repositories,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations() {
        assert_eq!(
            Location::parse("s3://bucket/a/b/").unwrap(),
            Location::S3(Box::new(S3Config::new("bucket", "a/b")))
        );
        assert_eq!(
            Location::parse("s3://bucket").unwrap(),
            Location::S3(Box::new(S3Config::new("bucket", "")))
        );
        assert!(Location::parse("s3://").is_err());
    }

    fn storage_args(registry_config: &std::path::Path) -> StorageArgs {
        StorageArgs {
            location: None,
            registry_config: Some(registry_config.to_path_buf()),
            concurrency: 64,
            verify_links: false,
            cache_dir: None,
            no_cache: false,
            endpoint_url: None,
            region: None,
            profile: None,
            force_path_style: false,
            connect_timeout: None,
            read_timeout: None,
            max_attempts: None,
            ca_bundle: None,
        }
    }

    #[test]
    fn registry_config_warnings_name_the_file_and_skip_defaults_a_flag_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yml");
        std::fs::write(
            &file,
            "storage:\n  s3:\n    bucket: b\n    regionendpoint: minio:9000\n    rootdir: /r\n",
        )
        .unwrap();
        let f = file.display();
        let (location, warnings) = Location::from_args(&storage_args(&file)).unwrap();
        assert!(matches!(location, Location::S3(_)));
        assert_eq!(
            warnings,
            [
                format!("{f}: unknown key storage.s3.rootdir, which the registry ignores (did you mean rootdirectory?)"),
                format!("--registry-config {f}: storage.s3.region is not set: using the region of the AWS environment or profile, else us-east-1 (the registry itself refuses to start without one)"),
                format!("--registry-config {f}: storage.s3.rootdirectory is not set: auditing from the top of bucket b"),
                format!("--registry-config {f}: storage.s3.secure is not set: using https for the regionendpoint, as the driver does"),
            ]
        );
        let mut flags = storage_args(&file);
        flags.region = Some("eu-west-1".into());
        flags.endpoint_url = Some("http://127.0.0.1:9000".into());
        let (_, warnings) = Location::from_args(&flags).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings
            .iter()
            .all(|w| !w.contains(".region ") && !w.contains(".secure ")));
    }

    #[test]
    fn filesystem_location_must_hold_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let err = Location::parse(dir.path().to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("docker/registry/v2"), "{err}");
        std::fs::create_dir_all(dir.path().join("docker/registry/v2")).unwrap();
        assert!(Location::parse(dir.path().to_str().unwrap()).is_ok());
    }
}

/// Everything `gc-plan` needs.
#[derive(Debug, Clone)]
pub(crate) struct GcPlanConfig {
    pub(crate) location: Location,
    pub(crate) model: GcModel,
    pub(crate) concurrency: usize,
    pub(crate) verify_links: bool,
    /// `--cache-dir`, `--no-cache`.
    pub(crate) cache: CacheChoice,
    pub(crate) unsafe_only: bool,
    pub(crate) json: bool,
    pub(crate) out: Option<PathBuf>,
    pub(crate) quiet: bool,
}

impl GcPlanConfig {
    pub(crate) fn from_args(args: &GcPlanArgs) -> Result<GcPlanConfig> {
        // `--model distribution-2.8 -m` and `--model distribution-2.8-m` are the same run.
        let named = args.model.parse::<GcModel>().map_err(|e| {
            anyhow::anyhow!("--model: {e} (or a version with -m for --delete-untagged)")
        })?;
        let model = if args.delete_untagged {
            named.with_delete_untagged()
        } else {
            named
        };
        check_concurrency(args.storage.concurrency)?;
        // The warnings are on stderr already; gc-plan writes no summary.json to carry them.
        let (location, _warnings) = Location::from_args(&args.storage)?;
        Ok(GcPlanConfig {
            location,
            model,
            concurrency: args.storage.concurrency,
            verify_links: args.storage.verify_links,
            cache: CacheChoice::from_args(&args.storage),
            unsafe_only: args.unsafe_only,
            json: args.json,
            out: args.out.clone(),
            quiet: args.quiet,
        })
    }
}

/// Everything `recover` needs.
#[derive(Debug, Clone)]
pub(crate) struct RecoverConfig {
    pub(crate) location: Location,
    pub(crate) from: Option<Location>,
    pub(crate) out: PathBuf,
    pub(crate) grace: Duration,
    pub(crate) concurrency: usize,
    pub(crate) verify_links: bool,
    /// `--cache-dir`, `--no-cache`.
    pub(crate) cache: CacheChoice,
    pub(crate) verify_content: bool,
    pub(crate) json: bool,
    pub(crate) quiet: bool,
    /// Warnings about the registry config (printed already), for summary.json.
    pub(crate) warnings: Vec<String>,
}

impl RecoverConfig {
    pub(crate) fn from_args(args: &RecoverArgs) -> Result<RecoverConfig> {
        let grace = parse_grace(&args.grace)?;
        check_concurrency(args.storage.concurrency)?;
        let (location, warnings) = Location::from_args(&args.storage)?;
        let from = match &args.from {
            None => None,
            Some(f) => {
                let mut from = match f.strip_prefix("s3://") {
                    Some(_) => Location::parse(f)?,
                    None => Location::filesystem(f, "--from")?,
                };
                if let Location::S3(cfg) = &mut from {
                    // Reached as LOCATION is (an S3 LOCATION's endpoint, region and
                    // credentials, flags applied), else by the flags alone.
                    match &location {
                        Location::S3(main) => {
                            cfg.endpoint_url = main.endpoint_url.clone();
                            cfg.region = main.region.clone();
                            cfg.profile = main.profile.clone();
                            cfg.force_path_style = main.force_path_style;
                            cfg.static_credentials = main.static_credentials.clone();
                        }
                        Location::Fs(_) => {
                            cfg.endpoint_url = args.storage.endpoint_url.clone();
                            cfg.region = args.storage.region.clone();
                            cfg.profile = args.storage.profile.clone();
                            cfg.force_path_style = args.storage.force_path_style;
                        }
                    }
                    cfg.concurrency = args.storage.concurrency;
                }
                if from == location {
                    bail!("--from {f:?} is LOCATION itself: give another copy");
                }
                Some(from)
            }
        };
        Ok(RecoverConfig {
            location,
            from,
            out: args.out.clone(),
            grace,
            concurrency: args.storage.concurrency,
            verify_links: args.storage.verify_links,
            cache: CacheChoice::from_args(&args.storage),
            verify_content: args.verify_content,
            json: args.json,
            quiet: args.quiet,
            warnings,
        })
    }
}
