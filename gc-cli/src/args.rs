//! Command-line flags as parsed, before validation (see `config` for the resolved form).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Audit the storage of a CNCF distribution registry (docker registry v2 layout) before and
/// after garbage collection. Reads only: LIST, GET and HEAD.
#[derive(Debug, Parser)]
#[command(name = "gc-audit", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Log on stderr: -v phases, timings, retries and slow requests; -vv each failed attempt;
    /// -vvv everything. RUST_LOG (a tracing filter) overrides. Turns the progress bars off.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Audit a registry's storage and write the report files.
    Scan(ScanArgs),
    /// Predict one `registry garbage-collect` run: its dry-run lines, then the deletions that
    /// break images. Exit 0 = safe, 1 = would delete needed content, 2 = audit incomplete,
    /// 3 = the modelled GC would abort on this storage.
    GcPlan(GcPlanArgs),
    /// Print a shell completion script: gc-audit completions bash >
    /// /etc/bash_completion.d/gc-audit (or zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of gc-audit, or of one of its subcommands: gc-audit man >
    /// /usr/local/share/man/man1/gc-audit.1.
    Man {
        /// A subcommand (scan, gc-plan, …) whose page to print instead.
        subcommand: Option<String>,
    },
    /// Plan the way back after a bad garbage-collect: every key a pull of every tag needs
    /// (and the content of every revision still present) that is absent, and where it comes
    /// back from (the bucket's own versions, or --from a copy). Writes recover.csv,
    /// recover.sh, s3-batch-manifest.csv and summary.json; changes nothing. Exit 0 = nothing
    /// needed is absent, 1 = the plan restores everything, 2 = audit incomplete, 3 = some
    /// needed keys cannot be recovered.
    Recover(RecoverArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RecoverArgs {
    #[command(flatten)]
    pub(crate) storage: StorageArgs,
    /// Another copy of the storage to restore from (a filesystem snapshot or backup, or
    /// s3://BUCKET[/ROOTDIRECTORY] such as a replication target), opened like LOCATION; the
    /// S3 flags apply to both. Without it, an S3 bucket's own versions are used.
    #[arg(long, value_name = "LOCATION2")]
    pub(crate) from: Option<String>,
    /// Plan folder (created if needed).
    #[arg(long, default_value = "gc-audit-recover")]
    pub(crate) out: PathBuf,
    /// Read every source blob and check its digest (by default its size is checked).
    #[arg(long)]
    pub(crate) verify_content: bool,
    /// Blobs and uploads younger than this are "young" (as for scan).
    #[arg(long, default_value = "1h")]
    pub(crate) grace: String,
    /// Print summary.json to stdout instead of the human summary.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bars.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GcPlanArgs {
    #[command(flatten)]
    pub(crate) storage: StorageArgs,
    /// The collector: distribution-2.8 (2.8.2/2.8.3) or distribution-3 (3.0.0-rc.1 and later).
    #[arg(long, value_name = "MODEL")]
    pub(crate) model: String,
    /// Model `--delete-untagged`.
    #[arg(short = 'm', long = "delete-untagged")]
    pub(crate) delete_untagged: bool,
    /// Print only the unsafe deletions and the summary.
    #[arg(long)]
    pub(crate) unsafe_only: bool,
    /// Print the plan as JSON (verdict, deletions, unsafe deletions with needed_by) for
    /// scripts, instead of the dry-run lines.
    #[arg(long)]
    pub(crate) json: bool,
    /// Write the plan (text, or JSON with --json) into FILE, replaced whole, and print only
    /// the verdict.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// No progress bars.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StorageArgs {
    /// /path/to/rootdirectory (holds docker/registry/v2) or s3://BUCKET[/ROOTDIRECTORY].
    /// Not needed with --registry-config.
    pub(crate) location: Option<String>,
    /// Take the storage (filesystem rootdirectory, or s3 bucket, region, regionendpoint,
    /// rootdirectory, accesskey, secretkey) from the registry's own config.yml, with the
    /// REGISTRY_STORAGE_* environment variables applied as the registry applies them.
    #[arg(long, value_name = "FILE")]
    pub(crate) registry_config: Option<std::path::PathBuf>,
    /// Requests in flight (S3: listing pages and reads together; filesystem: concurrent reads).
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// Read every link file and compare it with the digest in its path (by default only
    /// links whose size is wrong are read).
    #[arg(long)]
    pub(crate) verify_links: bool,
    /// S3: an S3-compatible endpoint (MinIO, Ceph RGW, R2, Garage, …) instead of AWS, with
    /// its scheme: http://HOST:PORT or https://HOST[:PORT].
    #[arg(long, value_name = "URL", value_parser = endpoint_url)]
    pub(crate) endpoint_url: Option<String>,
    /// S3: the bucket's region.
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// S3: a profile of the shared AWS config and credentials files (an error if neither
    /// defines it).
    #[arg(long, value_name = "PROFILE")]
    pub(crate) profile: Option<String>,
    /// S3: path-style requests (endpoint/bucket/key), as most S3-compatible servers need.
    #[arg(long)]
    pub(crate) force_path_style: bool,
    /// S3: how long to wait for a connection [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) connect_timeout: Option<Duration>,
    /// S3: how long to wait for an answer on an open connection [default: 10s]. With the
    /// defaults a request gives up after 50 s, retries included.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) read_timeout: Option<Duration>,
    /// S3: attempts per request, the first included [default: 8]. Throttling, 5xx answers,
    /// timeouts and dropped connections are retried; a refused connection, an unknown host, a
    /// TLS mismatch or missing credentials are not.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_attempts: Option<u32>,
    /// S3: a PEM file of CA certificates to trust besides the system's (MinIO or Ceph behind a
    /// private CA). Without it, AWS_CA_BUNDLE is used when set.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_bundle: Option<PathBuf>,
    /// Remember parsed manifests in DIR between runs, so that a rescan reads only the
    /// manifests it has not seen (content-addressed: safe to share between registries and
    /// runs) [default: $XDG_CACHE_HOME/gc-audit, else ~/.cache/gc-audit].
    #[arg(long, value_name = "DIR", env = "GC_AUDIT_CACHE_DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Read every manifest from storage; no cache is read or written (wins over
    /// --cache-dir).
    #[arg(
        long,
        env = "GC_AUDIT_NO_CACHE",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub(crate) no_cache: bool,
}

/// `--endpoint-url`: an http:// or https:// URL with a host.
fn endpoint_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("{s:?} has no scheme: write http://{s} or https://{s}"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with(':') {
        return Err(format!("{s:?} has no host (expected http://HOST:PORT)"));
    }
    Ok(s.to_string())
}

/// A duration flag: `5s`, `500ms`, `1m`.
fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: {e} (expected a duration like 5s, 500ms or 1m)"))?;
    if d.is_zero() {
        return Err(format!("{s:?}: must be more than zero"));
    }
    Ok(d)
}

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    #[command(flatten)]
    pub(crate) storage: StorageArgs,
    /// Report folder (created if needed).
    #[arg(long, default_value = "gc-audit-report")]
    pub(crate) out: PathBuf,
    /// Blobs and uploads younger than this are "young": listed with young=true and left out
    /// of reclaimable totals (an in-flight push may still reference them).
    #[arg(long, default_value = "1h")]
    pub(crate) grace: String,
    /// Print summary.json to stdout instead of the human summary.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also exit 1 when MODEL has rows in gc-unsafe.csv (distribution-2.8, distribution-2.8-m,
    /// distribution-3, distribution-3-m).
    #[arg(long, value_name = "MODEL")]
    pub(crate) fail_on_unsafe: Option<String>,
    /// Write the run as Prometheus metrics to FILE (text format for node_exporter's textfile
    /// collector, replaced atomically), also when the run fails.
    #[arg(long, value_name = "FILE.prom")]
    pub(crate) metrics_out: Option<PathBuf>,
    /// With --metrics-out: per-repository series too (one label value per repository).
    #[arg(long, requires = "metrics_out")]
    pub(crate) metrics_repositories: bool,
    /// No progress bars.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}
