//! `gc-bench`: gc-audit on S3 at scale, with network latency, against distribution 2.8.2's own
//! `garbage-collect`.
//!
//! ```text
//! cargo build --release -p gc-cli -p gc-bench
//! target/release/gc-bench --sizes 10000,100000,1000000 --latency-ms 10 \
//!     [--registry-timeout 600] [--registry-max-keys 100000] [--concurrency 64] [--seed 1] \
//!     [--audit-runs 3] [--audit-via auto|cli|child] [--gc-audit PATH] [--json-out FILE]
//! ```
//!
//! # What one size does
//!
//! 1. Starts an in-process [`s3_mem_server::S3MemServer`] and writes the deterministic synthetic
//!    registry of `gc_testkit::synth` (`SynthParams::with_keys(size, seed)`) into bucket
//!    `bench` under root directory `registry` (keys `registry/docker/registry/v2/...`), without
//!    HTTP.
//! 2. Starts the latency proxy ([`proxy`]): 127.0.0.1, `TCP_NODELAY` both sides, a one-way
//!    delay of D/2 per direction, i.e. one round trip D (`--latency-ms`) per request/response
//!    exchange, overlapping freely across connections and chunks. Everything below talks to S3
//!    through it.
//! 3. Runs gc-audit against the proxy, each run a separate process measured alone through
//!    `wait4(2)` (wall, user+sys CPU, peak RSS; spawned through a small helper process so that
//!    gc-bench's own memory does not leak into the child's peak RSS, see [`measure`]). The
//!    process is the release `gc-audit scan s3://bench/registry --endpoint-url <proxy> --region
//!    us-east-1 --force-path-style --concurrency N --json -q` with `AWS_ACCESS_KEY_ID`/
//!    `AWS_SECRET_ACCESS_KEY` in its environment when that binary accepts S3 flags (`--audit-via
//!    cli`), otherwise `gc-bench audit-child`, which runs `gc_core::audit::audit` over
//!    `gc_s3::S3Storage` the same way but writes no report files and has no manifest cache
//!    (`--audit-via child`). The CLI is always given `--cache-dir DIR` or `--no-cache`, so the
//!    user's own cache is never touched. Three scans, each `--audit-runs` times (default 3; the
//!    median run is reported, with the largest request counts and peak RSS of all runs):
//!    - **cold**: `--cache-dir` a new, empty directory per run;
//!    - **warm**: the same bucket again, each run on a copy of the cache the last cold run
//!      filled;
//!    - **+1%**: after step 4, `gc_testkit::synth::add_images` pushes ~1 % more images (new
//!      tags in existing repositories and a new repository, fresh manifests and layers; earlier
//!      keys untouched) into the bucket, and each run rescans on a copy of the cache as the
//!      first warm run left it, so the new manifests are misses and the rest hits.
//!
//!    Warm and +1% need the CLI's `--cache-dir` (`--audit-via cli`, or `auto` with a gc-audit
//!    that has it); otherwise only the cold scan runs, uncached, and the table says so. The
//!    server's request log counts what each run sent.
//! 4. For sizes up to `--registry-max-keys`, once per size, after the cold and warm scans and
//!    before the +1% step: runs `docker-registry garbage-collect --dry-run` and then `--dry-run
//!    -m` (s3 driver, same bucket, same proxy, config from `gc_testkit::RegistryConfig::write_s3`,
//!    `AWS_CA_BUNDLE` and `REGISTRY_*` removed from its environment), each killed at
//!    `--registry-timeout` seconds; counts its requests from the server's log, and checks that
//!    the dry run exits 0 (the generated trees must be ones the real GC accepts; its stderr tail
//!    is printed when it does not).
//!
//! # Reading the output
//!
//! Table 1, gc-audit, one row per size and scan (`run` cold, warm, +1%; `cache` `dir` or
//! `none`):
//! - `keys` objects in the bucket (= keys gc-audit lists), `blobs` distinct blobs (manifests
//!   included), `manifests` distinct manifests, `tags` tags with a `current/link` (for +1%:
//!   after the push);
//! - `wall_s` the gc-audit process from spawn to exit (start-up, S3 client, audit, report
//!   files); `audit_s` the summary's `duration_seconds` (the audit alone); `cpu_s` its user+sys,
//!   `us/req` that in microseconds per request received;
//! - `LIST GET HEAD oth` requests the server received from it (`oth`: GetBucketVersioning,
//!   which the summary does not count; `sum.req` is what gc-audit's own summary says it sent:
//!   LIST + GET + HEAD differ from it only by retries it did not count or requests lost); the
//!   targets count all of them;
//! - `hits misses` the summary's `cache_hits`/`cache_misses` (`-` without cache), `tags_etag`
//!   its `tags_resolved_by_etag` (tags whose `current/link` was not read);
//! - `min` the single-pass floor, what an auditor without ETag resolution or cache needs, from
//!   what the generator wrote: LIST pages (`ceil(keys/1000)` + `ceil(repository keys/1000)` for
//!   the last look at `repositories/`) + one GET per tag `current/link` + one per distinct
//!   manifest (`min.L/min.G`); `sum.min` the same floor as gc-audit's summary computed it
//!   (`requests_single_pass_minimum`);
//! - `floor` the new floor, from the generator: LIST pages + one GET per manifest the cache
//!   cannot hold (all when cold, none when warm, the pushed ones for +1%) + per tag whose ETag
//!   cannot tell (none here: s3-mem-server's ETags are MD5s); `sum.flr` gc-audit's own
//!   (`requests_minimum`); `req/flr` requests received over `sum.flr`;
//! - `RSS_MiB` peak resident set of the gc-audit process, `B/key` that over `keys`.
//!
//! Below it: the wall time of each run, the warm rescan's CPU per listed key, and what the +1%
//! step pushed.
//!
//! Table 2, the registry's garbage-collect, one row per run: exit status (or `> N min` when
//! killed at the limit), wall time, requests by kind as the server saw them (for a killed run:
//! the requests until it was killed), and `x_cold`/`x_warm`, its wall time over the cold and
//! the warm scan's `wall_s` (a lower bound, `>`, for a killed run).
//!
//! Table 3, the targets, PASS/FAIL per size (`n/a` where a target is defined for another
//! size; the value is still shown), at D = 10 ms and the default concurrency 64:
//! - cold: requests ≤ 1.05 × gc-audit's own `requests_minimum` (the limit column also shows
//!   the generator's floor, which should be the same number);
//! - warm and +1%: requests ≤ 1.1 × LIST pages + the manifests new to the cache (0 warm, the
//!   pushed ones for +1%);
//! - at 10k keys, against the registry's GC on the same bucket (wall over wall, as `x_cold`/
//!   `x_warm`): cold ≥ 350× faster than `--dry-run` and ≥ 900× than `--dry-run -m`; warm ≥
//!   1,500× and ≥ 3,500×;
//! - at 1M keys (and above): warm ≥ 5× faster than cold (wall); peak RSS ≤ 100 bytes per
//!   listed key, cold and warm.
//!
//! `gc-bench serve --size 1M --latency-ms 10` keeps one generated bucket and the proxy
//! running and prints a `gc-audit scan` command line for them, for profiling by hand.
//!
//! Caveats: the S3 server and the proxy run inside this process and share the machine's cores
//! with the measured process, so CPU-bound phases are slower than against a remote S3; the
//! latency is a pure round-trip delay (no handshake cost, no bandwidth limit). The RSS of the
//! `child` mode includes gc-bench's own code pages (a few MiB more than `gc-audit`).

mod measure;
mod proxy;
mod quick;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gc_testkit::synth::{add_images, generate, S3Sink, SynthParams, SynthStats};
use gc_testkit::{gc_command, GcOutput, RegistryConfig};
use s3_mem_server::{S3MemServer, ServerOptions, ACCESS_KEY, REGION, SECRET_KEY};
use serde_json::{json, Value};

use measure::Measured;
use proxy::LatencyProxy;

const BUCKET: &str = "bench";
const ROOT: &str = "registry";

#[derive(Debug, Parser)]
#[command(
    name = "gc-bench",
    about = "Benchmark gc-audit on S3 (with injected latency) against docker-registry garbage-collect",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Internal: run one audit over S3 in this process and print summary.json to stdout.
    #[command(hide = true)]
    AuditChild(ChildArgs),
    /// Generate one size, start the S3 server and the latency proxy, print how to reach them,
    /// and serve until killed (for profiling gc-audit by hand, e.g. under `perf record`).
    /// Each line read on stdin prints the requests received since the previous line.
    Serve(ServeArgs),
    /// Internal: run a command and write its wait4 measurement to a file (see `measure`).
    #[command(hide = true)]
    MeasureChild(MeasureArgs),
    /// gc-s3's listing alone: LIST requests against ceil(keys/1000) and wall time, per
    /// concurrency, on s3-mem-server in this process (see `quick`).
    List(quick::ListArgs),
    /// One whole audit over S3 per concurrency: requests against the minimum and wall time, on
    /// s3-mem-server in this process (see `quick`).
    Audit(quick::AuditArgs),
}

#[derive(Debug, Args)]
struct MeasureArgs {
    #[arg(long)]
    report: PathBuf,
    #[arg(long)]
    limit_ms: Option<u64>,
    #[arg(last = true, required = true)]
    argv: Vec<String>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Size in keys (k and M suffixes allowed).
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    size: u64,
    /// Round-trip time the proxy adds, milliseconds.
    #[arg(long, default_value_t = 10)]
    latency_ms: u64,
    /// Seed of the synthetic registry.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuditVia {
    /// The gc-audit binary when it accepts S3 flags, else `child`.
    Auto,
    /// The release gc-audit binary (`gc-audit scan s3://...`).
    Cli,
    /// `gc-bench audit-child` (gc-core over gc-s3, no report files).
    Child,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Sizes in keys, comma-separated (k and M suffixes allowed: 10k,100k,1M).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000", value_parser = parse_size)]
    sizes: Vec<u64>,
    /// Round-trip time the proxy adds to every request/response exchange, milliseconds.
    #[arg(long, default_value_t = 10)]
    latency_ms: u64,
    /// Kill a registry garbage-collect run after this many seconds.
    #[arg(long, default_value_t = 600)]
    registry_timeout: u64,
    /// Run the registry's garbage-collect only for sizes up to this many keys (0: never).
    #[arg(long, default_value_t = 100_000, value_parser = parse_size)]
    registry_max_keys: u64,
    /// gc-audit's --concurrency (requests in flight).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// gc-audit runs per size: `wall_s` is the median run's (with its CPU time); requests and
    /// peak RSS are the largest of all runs.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    audit_runs: u64,
    /// Seed of the synthetic registry.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How to run gc-audit.
    #[arg(long, value_enum, default_value_t = AuditVia::Auto)]
    audit_via: AuditVia,
    /// The gc-audit binary (default: `gc-audit` next to this executable).
    #[arg(long, value_name = "PATH")]
    gc_audit: Option<PathBuf>,
    /// Also write every measurement as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ChildArgs {
    #[arg(long)]
    endpoint: String,
    #[arg(long)]
    bucket: String,
    #[arg(long)]
    root: String,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let (num, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000),
        _ => (t.as_str(), 1),
    };
    num.parse::<u64>()
        .map(|n| n * mul)
        .map_err(|e| format!("{s:?}: {e}"))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Sub::AuditChild(a)) => audit_child(&a),
        Some(Sub::Serve(a)) => serve(&a).map(|()| 0),
        Some(Sub::MeasureChild(a)) => {
            measure::measure_child(&a.report, a.limit_ms.map(Duration::from_millis), &a.argv)
                .map(|()| 0)
        }
        Some(Sub::List(a)) => quick::list(&a),
        Some(Sub::Audit(a)) => quick::audit(&a),
        None => bench(&cli.bench).map(|()| 0),
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("gc-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// `gc-bench audit-child`: what `gc-audit scan` does over S3, minus the report files.
fn audit_child(a: &ChildArgs) -> Result<u8> {
    use gc_core::audit::{audit, AuditOptions, NoProgress};
    use gc_s3::{S3Config, S3Storage, StaticCredentials};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut cfg = S3Config::compatible_endpoint(
            a.bucket.clone(),
            &a.root,
            a.endpoint.clone(),
            REGION,
            StaticCredentials {
                access_key: ACCESS_KEY.to_string(),
                secret_key: SECRET_KEY.to_string(),
            },
        );
        cfg.concurrency = a.concurrency;
        let storage = S3Storage::connect(cfg).await?;
        let opts = AuditOptions {
            concurrency: a.concurrency,
            release_memory: true,
            ..AuditOptions::default()
        };
        let outcome = audit(&storage, &opts, &NoProgress).await;
        let text = serde_json::to_string_pretty(&outcome.report.summary)?;
        println!("{text}");
        Ok(outcome.report.exit_status(None).code())
    })
}

/// `gc-bench serve`.
fn serve(a: &ServeArgs) -> Result<()> {
    let server = S3MemServer::start_with(ServerOptions { worker_threads: 2 })?;
    let params = SynthParams::with_keys(usize::try_from(a.size)?, a.seed);
    let mut sink = S3Sink::new(&server, BUCKET, ROOT);
    let stats = generate(&params, &mut sink)?;
    sink.finish();
    let proxy = LatencyProxy::start(server.addr(), Duration::from_millis(a.latency_ms), 1)?;
    println!(
        "{} keys, {} blobs, {} manifests, {} tags; S3 {} (direct), {} ({} ms proxy)",
        server.object_count(BUCKET),
        stats.blobs,
        stats.manifests,
        stats.tags,
        server.endpoint(),
        proxy.endpoint(),
        a.latency_ms
    );
    println!(
        "AWS_ACCESS_KEY_ID={ACCESS_KEY} AWS_SECRET_ACCESS_KEY={SECRET_KEY} gc-audit scan \
         s3://{BUCKET}/{ROOT} --endpoint-url {} --region {REGION} --force-path-style -q --json \
         --no-cache  (or --cache-dir DIR: run twice for a warm rescan)",
        proxy.endpoint()
    );
    let mut line = String::new();
    loop {
        line.clear();
        if std::io::stdin().read_line(&mut line)? == 0 {
            // No (more) input: serve until killed.
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        let c = Counts::from_ops(&server.operation_counts());
        server.clear_requests();
        println!(
            "LIST {} GET {} HEAD {} other {}",
            c.list, c.get, c.head, c.other
        );
    }
}

/// Requests by kind, from the server's log.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    list: u64,
    get: u64,
    head: u64,
    other: u64,
}

impl Counts {
    fn from_ops(ops: &BTreeMap<String, u64>) -> Counts {
        let mut c = Counts::default();
        for (op, n) in ops {
            match op.as_str() {
                "ListObjectsV2" | "ListObjects" => c.list += n,
                "GetObject" => c.get += n,
                "HeadObject" => c.head += n,
                _ => c.other += n,
            }
        }
        c
    }
    fn total(&self) -> u64 {
        self.list + self.get + self.head + self.other
    }
    fn json(&self) -> Value {
        json!({"LIST": self.list, "GET": self.get, "HEAD": self.head, "other": self.other})
    }
}

/// Which scan of a size a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunKind {
    /// An empty, fresh manifest cache (or none).
    Cold,
    /// The same bucket again, with the cache the cold scan filled.
    Warm,
    /// After ~1 % new images were pushed, with the warm cache.
    Added,
}

impl RunKind {
    fn label(self) -> &'static str {
        match self {
            RunKind::Cold => "cold",
            RunKind::Warm => "warm",
            RunKind::Added => "+1%",
        }
    }
}

/// How a gc-audit run uses the manifest cache.
#[derive(Debug, Clone)]
enum CacheUse {
    /// `--cache-dir DIR`.
    Dir(PathBuf),
    /// `--no-cache` (or `audit-child`, which has no cache).
    Off,
}

#[derive(Debug)]
struct AuditRun {
    via: &'static str,
    kind: RunKind,
    /// Whether the run had a manifest cache.
    cached: bool,
    measured: Measured,
    server: Counts,
    summary: Value,
    /// Wall time of every run, seconds, in run order.
    walls: Vec<f64>,
}

impl AuditRun {
    fn summary_u64(&self, path: &[&str]) -> u64 {
        let mut v = &self.summary;
        for p in path {
            v = &v[*p];
        }
        v.as_u64().unwrap_or(0)
    }

    /// LIST + GET + HEAD of one of the summary's request counts (`requests`,
    /// `requests_minimum`, `requests_single_pass_minimum`).
    fn summary_requests(&self, field: &str) -> u64 {
        ["LIST", "GET", "HEAD"]
            .iter()
            .map(|kind| self.summary_u64(&[field, kind]))
            .sum()
    }

    /// A summary count as a table cell: `-` when the run had no cache.
    fn cache_cell(&self, field: &str) -> String {
        if self.cached {
            self.summary_u64(&[field]).to_string()
        } else {
            "-".to_string()
        }
    }

    /// CPU microseconds per request the server received.
    fn cpu_us_per_request(&self) -> f64 {
        self.measured.cpu().as_secs_f64() * 1e6 / self.server.total().max(1) as f64
    }
}

#[derive(Debug)]
struct GcRunResult {
    label: &'static str,
    measured: Measured,
    server: Counts,
    output: GcOutput,
    stderr_tail: String,
}

/// What the +1 % step pushed.
#[derive(Debug, Clone, Copy)]
struct Added {
    /// Images pushed.
    images: usize,
    /// What they wrote.
    stats: SynthStats,
    /// Seconds it took.
    seconds: f64,
}

#[derive(Debug)]
struct SizeResult {
    size: u64,
    stats: SynthStats,
    keys: u64,
    generate_s: f64,
    /// The cold scan, then (with a cache) the warm and the +1 % rescans.
    audits: Vec<AuditRun>,
    added: Option<Added>,
    registry: Vec<GcRunResult>,
}

/// The bucket a run scanned, as the generator wrote it.
#[derive(Debug, Clone, Copy)]
struct Tree {
    keys: u64,
    stats: SynthStats,
    /// Manifests the run's cache cannot hold yet (all for a cold or uncached run).
    uncached_manifests: u64,
}

impl Tree {
    /// LIST pages: `ceil(keys/1000)` for the listing and `ceil(repository keys/1000)` for the
    /// last look at `repositories/`.
    fn list_pages(&self) -> u64 {
        self.keys.div_ceil(1000).max(1) + self.stats.repository_keys.div_ceil(1000).max(1)
    }

    /// The single-pass floor: LIST pages + one GET per tag `current/link` and per distinct
    /// manifest.
    fn single_pass_minimum(&self) -> Counts {
        Counts {
            list: self.list_pages(),
            get: self.stats.tags + self.stats.manifests,
            head: 0,
            other: 0,
        }
    }

    /// The floor with ETag resolution and the cache: LIST pages + one GET per manifest not
    /// cached + per tag whose ETag cannot tell (none on s3-mem-server, whose ETags are MD5s).
    fn minimum(&self) -> Counts {
        Counts {
            list: self.list_pages(),
            get: self.uncached_manifests,
            head: 0,
            other: 0,
        }
    }
}

fn add_stats(a: SynthStats, b: SynthStats) -> SynthStats {
    SynthStats {
        keys: a.keys + b.keys,
        blobs: a.blobs + b.blobs,
        manifests: a.manifests + b.manifests,
        tags: a.tags + b.tags,
        repos: a.repos + b.repos,
        repository_keys: a.repository_keys + b.repository_keys,
    }
}

impl SizeResult {
    fn run(&self, kind: RunKind) -> Option<&AuditRun> {
        self.audits.iter().find(|a| a.kind == kind)
    }

    fn cold(&self) -> &AuditRun {
        &self.audits[0]
    }

    /// What `run` scanned.
    fn tree(&self, run: &AuditRun) -> Tree {
        let cold = Tree {
            keys: self.keys,
            stats: self.stats,
            uncached_manifests: self.stats.manifests,
        };
        match (run.kind, self.added) {
            (RunKind::Added, Some(added)) => Tree {
                keys: self.keys + added.stats.keys,
                stats: add_stats(self.stats, added.stats),
                uncached_manifests: if run.cached {
                    added.stats.manifests
                } else {
                    self.stats.manifests + added.stats.manifests
                },
            },
            (RunKind::Warm, _) if run.cached => Tree {
                uncached_manifests: 0,
                ..cold
            },
            _ => cold,
        }
    }
}

fn bench(args: &BenchArgs) -> Result<()> {
    if args.sizes.is_empty() {
        bail!("--sizes is empty");
    }
    let latency = Duration::from_millis(args.latency_ms);
    let gc_audit = gc_audit_path(args)?;
    let auditor = resolve_via(args, &gc_audit)?;
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    eprintln!(
        "gc-bench: latency {} ms round trip, concurrency {}, gc-audit via {}{}",
        args.latency_ms,
        args.concurrency,
        match auditor.via {
            AuditVia::Cli => format!("{}", gc_audit.display()),
            _ => "gc-bench audit-child".to_string(),
        },
        if auditor.cache {
            ""
        } else {
            " (no manifest cache: cold scans only)"
        }
    );
    let mut results = Vec::new();
    for &size in &args.sizes {
        results.push(run_size(args, size, latency, &auditor, &gc_audit)?);
        // Print as we go, so that a long run shows its numbers early.
        eprintln!("{}", render(args, &results, &command_line));
    }
    let text = render(args, &results, &command_line);
    println!("{text}");
    if let Some(path) = &args.json_out {
        let v = to_json(args, &results, &command_line);
        std::fs::write(path, serde_json::to_vec_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn gc_audit_path(args: &BenchArgs) -> Result<PathBuf> {
    if let Some(p) = &args.gc_audit {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().context("locating gc-bench")?;
    Ok(exe.with_file_name("gc-audit"))
}

/// How gc-audit is run, as resolved from `--audit-via` and what the binary accepts.
#[derive(Debug, Clone, Copy)]
struct Auditor {
    via: AuditVia,
    /// `gc-audit scan` takes `--cache-dir` and `--no-cache` (warm and +1 % rescans).
    cache: bool,
}

/// `auto`: the CLI when its `scan --help` lists the S3 flags. The cache rows need the CLI's
/// `--cache-dir`/`--no-cache`; without them (or via `child`) only the cold scan runs, uncached.
fn resolve_via(args: &BenchArgs, path: &Path) -> Result<Auditor> {
    let help = || -> Option<String> {
        let o = Command::new(path)
            .args(["scan", "--help"])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let help = String::from_utf8_lossy(&o.stdout).into_owned();
        (o.status.success()
            && help.contains("--endpoint-url")
            && help.contains("--force-path-style"))
        .then_some(help)
    };
    let cli = |help: String| Auditor {
        via: AuditVia::Cli,
        cache: help.contains("--cache-dir") && help.contains("--no-cache"),
    };
    let child = Auditor {
        via: AuditVia::Child,
        cache: false,
    };
    Ok(match args.audit_via {
        AuditVia::Auto => match path.is_file().then(help).flatten() {
            Some(h) => cli(h),
            None => child,
        },
        AuditVia::Cli => match help() {
            Some(h) => cli(h),
            None => bail!(
                "--audit-via cli: {} is missing or has no S3 flags (build it: cargo build --release -p gc-cli)",
                path.display()
            ),
        },
        AuditVia::Child => child,
    })
}

fn run_size(
    args: &BenchArgs,
    size: u64,
    latency: Duration,
    auditor: &Auditor,
    gc_audit: &Path,
) -> Result<SizeResult> {
    eprintln!("gc-bench: [{size}] generating");
    let server = S3MemServer::start_with(ServerOptions { worker_threads: 2 })?;
    let t = Instant::now();
    let params = SynthParams::with_keys(usize::try_from(size)?, args.seed);
    let mut sink = S3Sink::new(&server, BUCKET, ROOT);
    let stats = generate(&params, &mut sink)?;
    sink.finish();
    let generate_s = t.elapsed().as_secs_f64();
    let keys = server.object_count(BUCKET) as u64;
    eprintln!(
        "gc-bench: [{size}] {keys} keys, {} blobs, {} manifests, {} tags, {} repositories in {generate_s:.1} s",
        stats.blobs, stats.manifests, stats.tags, stats.repos
    );
    let proxy = LatencyProxy::start(server.addr(), latency, 1)?;
    let work = tempfile::Builder::new().prefix("gc-bench-").tempdir()?;
    let ctx = RunContext {
        args,
        auditor,
        gc_audit,
        proxy: &proxy,
        server: &server,
        work: work.path(),
        size,
    };

    // Cold: a new, empty cache directory per run; the last one seeds the warm runs.
    let mut audits = Vec::new();
    let mut cold_cache = None;
    let cold = ctx.runs(RunKind::Cold, |i| {
        if !auditor.cache {
            return Ok(CacheUse::Off);
        }
        let dir = work.path().join(format!("cache-cold-{i}"));
        cold_cache = Some(dir.clone());
        Ok(CacheUse::Dir(dir))
    })?;
    audits.push(cold);

    // Warm: each run on a copy of what the cold scan left, so that every run starts alike.
    let mut warm_cache = None;
    if let Some(filled) = &cold_cache {
        let warm = ctx.runs(RunKind::Warm, |i| {
            let dir = work.path().join(format!("cache-warm-{i}"));
            copy_dir(filled, &dir)?;
            if i == 0 {
                warm_cache = Some(dir.clone());
            }
            Ok(CacheUse::Dir(dir))
        })?;
        audits.push(warm);
    }

    let mut registry = Vec::new();
    if size <= args.registry_max_keys {
        for (label, m) in [("--dry-run", false), ("--dry-run -m", true)] {
            eprintln!(
                "gc-bench: [{size}] docker-registry garbage-collect {label} (limit {} s)",
                args.registry_timeout
            );
            server.clear_requests();
            let mut run = run_registry_gc(args, &proxy, work.path(), m)?;
            run.label = label;
            run.server = Counts::from_ops(&server.operation_counts());
            eprintln!(
                "gc-bench: [{size}] garbage-collect {label}: {} in {:.1} s, {} requests",
                if run.measured.timed_out {
                    "killed".to_string()
                } else {
                    run.measured.status.to_string()
                },
                run.measured.wall.as_secs_f64(),
                run.server.total()
            );
            registry.push(run);
        }
    }

    // +1 %: push ~1 % new images into the same bucket, rescan on copies of the warm cache
    // (its first run's, as that run left it): the new manifests are misses.
    let mut added = None;
    if let Some(warmed) = &warm_cache {
        let images = (params.repos * params.images_per_repo / 100).max(1);
        let t = Instant::now();
        let mut sink = S3Sink::new(&server, BUCKET, ROOT);
        let stats = add_images(&params, images, args.seed.wrapping_add(1), &mut sink)?;
        sink.finish();
        let a = Added {
            images,
            stats,
            seconds: t.elapsed().as_secs_f64(),
        };
        eprintln!(
            "gc-bench: [{size}] +1%: {images} images, {} keys, {} manifests, {} tags in {:.1} s",
            stats.keys, stats.manifests, stats.tags, a.seconds
        );
        added = Some(a);
        let plus = ctx.runs(RunKind::Added, |i| {
            let dir = work.path().join(format!("cache-added-{i}"));
            copy_dir(warmed, &dir)?;
            Ok(CacheUse::Dir(dir))
        })?;
        audits.push(plus);
    }
    drop(proxy);
    drop(server);
    Ok(SizeResult {
        size,
        stats,
        keys,
        generate_s,
        audits,
        added,
        registry,
    })
}

/// Copy the files of directory `from` (one level: the cache is a directory of files) to a new
/// directory `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let entries = std::fs::read_dir(from)
        .with_context(|| format!("reading the cache directory {}", from.display()))?;
    for entry in entries {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!("copying {} to {}", entry.path().display(), target.display())
            })?;
        }
    }
    Ok(())
}

/// What every gc-audit run of one size shares.
struct RunContext<'a> {
    args: &'a BenchArgs,
    auditor: &'a Auditor,
    gc_audit: &'a Path,
    proxy: &'a LatencyProxy,
    server: &'a S3MemServer,
    work: &'a Path,
    size: u64,
}

impl RunContext<'_> {
    /// `--audit-runs` runs of `kind`, `cache(i)` giving run `i`'s cache; the median.
    fn runs(
        &self,
        kind: RunKind,
        mut cache: impl FnMut(u64) -> Result<CacheUse>,
    ) -> Result<AuditRun> {
        let mut runs = Vec::new();
        for i in 0..self.args.audit_runs {
            let cache = cache(i)?;
            self.server.clear_requests();
            let connections = self.proxy.connections();
            let run = run_audit(self, kind, &cache)?;
            let run = AuditRun {
                server: Counts::from_ops(&self.server.operation_counts()),
                ..run
            };
            eprintln!(
                "gc-bench: [{}] gc-audit ({}, {}) {:.2} s, {} requests on {} connections, {} cache hits, peak RSS {} MiB",
                self.size,
                run.via,
                kind.label(),
                run.measured.wall.as_secs_f64(),
                run.server.total(),
                self.proxy.connections() - connections,
                run.summary_u64(&["cache_hits"]),
                run.measured.max_rss >> 20
            );
            runs.push(run);
        }
        Ok(median_run(runs))
    }
}

/// The run of median wall time, with the largest request counts and peak RSS of all runs.
fn median_run(mut runs: Vec<AuditRun>) -> AuditRun {
    let walls: Vec<f64> = runs.iter().map(|r| r.measured.wall.as_secs_f64()).collect();
    let max_rss = runs.iter().map(|r| r.measured.max_rss).max().unwrap_or(0);
    let most = |kind: fn(&Counts) -> u64| runs.iter().map(|r| kind(&r.server)).max().unwrap_or(0);
    let server = Counts {
        list: most(|c| c.list),
        get: most(|c| c.get),
        head: most(|c| c.head),
        other: most(|c| c.other),
    };
    runs.sort_by_key(|r| r.measured.wall);
    let mut median = runs.swap_remove(runs.len() / 2);
    median.measured.max_rss = max_rss;
    median.server = server;
    median.walls = walls;
    median
}

/// One gc-audit run of `kind` with `cache`.
fn run_audit(ctx: &RunContext<'_>, kind: RunKind, cache: &CacheUse) -> Result<AuditRun> {
    let RunContext {
        args,
        auditor,
        gc_audit,
        proxy,
        work,
        ..
    } = *ctx;
    let stdout_path = work.join("audit.stdout");
    let stderr_path = work.join("audit.stderr");
    let concurrency = args.concurrency.to_string();
    let mut cmd;
    let name = match auditor.via {
        AuditVia::Cli => {
            cmd = Command::new(gc_audit);
            cmd.arg("scan")
                .arg(format!("s3://{BUCKET}/{ROOT}"))
                .args(["--endpoint-url", &proxy.endpoint()])
                .args(["--region", REGION, "--force-path-style"])
                .args(["--concurrency", &concurrency])
                .arg("--out")
                .arg(work.join("report"))
                .args(["--json", "-q"])
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env_remove("AWS_PROFILE")
                .env_remove("AWS_SESSION_TOKEN")
                .env_remove("GC_AUDIT_CACHE_DIR")
                .env_remove("GC_AUDIT_NO_CACHE");
            // Always explicit, so that the user's own cache is never touched (a gc-audit
            // without these flags has no cache).
            match cache {
                CacheUse::Dir(dir) => {
                    cmd.arg("--cache-dir").arg(dir);
                }
                CacheUse::Off if auditor.cache => {
                    cmd.arg("--no-cache");
                }
                CacheUse::Off => {}
            }
            "gc-audit"
        }
        _ => {
            cmd = Command::new(std::env::current_exe()?);
            cmd.arg("audit-child")
                .args(["--endpoint", &proxy.endpoint()])
                .args(["--bucket", BUCKET, "--root", ROOT])
                .args(["--concurrency", &concurrency]);
            "audit-child"
        }
    };
    let measured = measure::run_isolated(
        &cmd,
        std::fs::File::create(&stdout_path)?,
        std::fs::File::create(&stderr_path)?,
        None,
    )?;
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let code = measured.status.code();
    if !matches!(code, Some(0 | 1)) {
        bail!(
            "{name} exited with {}; stderr:\n{}",
            measured.status,
            tail(&stderr, 3000)
        );
    }
    let summary: Value = serde_json::from_str(&stdout).with_context(|| {
        format!(
            "{name}: stdout is not summary.json:\n{}",
            tail(&stdout, 2000)
        )
    })?;
    if summary["complete"] != Value::Bool(true) {
        bail!("{name}: the audit is incomplete: {}", summary["errors"]);
    }
    Ok(AuditRun {
        via: name,
        kind,
        cached: matches!(cache, CacheUse::Dir(_)),
        measured,
        server: Counts::default(),
        summary,
        walls: Vec::new(),
    })
}

fn run_registry_gc(
    args: &BenchArgs,
    proxy: &LatencyProxy,
    work: &Path,
    delete_untagged: bool,
) -> Result<GcRunResult> {
    let config = RegistryConfig::write_s3(&proxy.endpoint(), BUCKET, ROOT, 0)?;
    let tag = if delete_untagged { "gc-m" } else { "gc" };
    let stdout_path = work.join(format!("{tag}.stdout"));
    let stderr_path = work.join(format!("{tag}.stderr"));
    let cmd = gc_command(config.path(), true, delete_untagged)?;
    let measured = measure::run_isolated(
        &cmd,
        std::fs::File::create(&stdout_path)?,
        std::fs::File::create(&stderr_path)?,
        Some(Duration::from_secs(args.registry_timeout)),
    )?;
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    Ok(GcRunResult {
        label: "",
        measured,
        server: Counts::default(),
        output: GcOutput::parse(&stdout),
        stderr_tail: tail(&stderr, 2000).to_string(),
    })
}

fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// A verdict line of table 3.
struct Verdict {
    target: String,
    value: String,
    limit: String,
    result: &'static str,
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn verdicts(r: &SizeResult) -> Vec<Verdict> {
    let mut v = Vec::new();
    let cold = r.cold();
    // Requests: the cold scan against the floor (gc-audit's own and the generator's), the
    // rescans against their LIST pages plus the manifests new to the cache.
    let cold_floor = cold.summary_requests("requests_minimum");
    let gen_floor = r.tree(cold).minimum().total();
    let req = cold.server.total();
    let limit = 1.05 * cold_floor as f64;
    v.push(Verdict {
        target: "cold: requests <= 1.05 x floor".to_string(),
        value: format!("{req} ({:.3}x)", req as f64 / cold_floor.max(1) as f64),
        limit: format!("{limit:.0} (floor {cold_floor}, gen {gen_floor})"),
        result: pass(req as f64 <= limit && cold_floor > 0),
    });
    for kind in [RunKind::Warm, RunKind::Added] {
        let target = format!("{}: requests <= 1.1 x LIST + new manifests", kind.label());
        let Some(run) = r.run(kind) else {
            v.push(Verdict {
                target,
                value: "not run (no cache)".to_string(),
                limit: String::new(),
                result: "n/a",
            });
            continue;
        };
        let list = run.summary_u64(&["requests_minimum", "LIST"]);
        let new = r.tree(run).uncached_manifests;
        let limit = 1.1 * list as f64 + new as f64;
        let req = run.server.total();
        v.push(Verdict {
            target,
            value: req.to_string(),
            limit: format!("{limit:.0} (1.1 x {list} + {new})"),
            result: pass(req as f64 <= limit),
        });
    }
    // At 10k keys: wall over wall against the registry's GC on the same bucket.
    for (kind, label, factor) in [
        (RunKind::Cold, "--dry-run", 350.0),
        (RunKind::Cold, "--dry-run -m", 900.0),
        (RunKind::Warm, "--dry-run", 1500.0),
        (RunKind::Warm, "--dry-run -m", 3500.0),
    ] {
        let target = format!(
            "{}: >= {factor:.0}x faster than {label} (10k)",
            kind.label()
        );
        let applies = r.size == 10_000;
        let (Some(g), Some(run)) = (r.registry.iter().find(|g| g.label == label), r.run(kind))
        else {
            if applies {
                let ran_gc = r.registry.iter().any(|g| g.label == label);
                v.push(Verdict {
                    target,
                    value: if ran_gc {
                        "scan not run (no cache)"
                    } else {
                        "registry GC not run"
                    }
                    .to_string(),
                    limit: format!("{factor:.0}x"),
                    result: "n/a",
                });
            }
            continue;
        };
        let ratio = g.measured.wall.as_secs_f64() / run.measured.wall.as_secs_f64();
        let failed_run = !g.measured.timed_out && !g.measured.status.success();
        let (value, result) = if g.measured.timed_out {
            let res = if !applies {
                "n/a"
            } else if ratio >= factor {
                "PASS"
            } else {
                "UNDECIDED (killed)"
            };
            (format!("> {ratio:.0}x"), res)
        } else if failed_run {
            (format!("{ratio:.0}x (registry GC failed)"), "n/a")
        } else {
            (
                format!("{ratio:.0}x"),
                if applies {
                    pass(ratio >= factor)
                } else {
                    "n/a"
                },
            )
        };
        v.push(Verdict {
            target,
            value,
            limit: format!("{factor:.0}x"),
            result,
        });
    }
    // At 1M keys: the warm rescan against the cold scan, and peak RSS per listed key.
    let at_1m = r.size >= 1_000_000;
    let target = "warm: >= 5x faster than cold (1M)".to_string();
    match r.run(RunKind::Warm) {
        Some(warm) => {
            let ratio = cold.measured.wall.as_secs_f64() / warm.measured.wall.as_secs_f64();
            v.push(Verdict {
                target,
                value: format!("{ratio:.1}x"),
                limit: "5x".to_string(),
                result: if at_1m { pass(ratio >= 5.0) } else { "n/a" },
            });
        }
        None => v.push(Verdict {
            target,
            value: "not run (no cache)".to_string(),
            limit: "5x".to_string(),
            result: "n/a",
        }),
    }
    for run in r
        .audits
        .iter()
        .filter(|a| matches!(a.kind, RunKind::Cold | RunKind::Warm))
    {
        let per_key = run.measured.max_rss as f64 / r.tree(run).keys.max(1) as f64;
        v.push(Verdict {
            target: format!("{}: peak RSS <= 100 B/key (1M)", run.kind.label()),
            value: format!("{per_key:.0} B/key"),
            limit: "100 B/key".to_string(),
            result: if at_1m { pass(per_key <= 100.0) } else { "n/a" },
        });
    }
    v
}

fn fmt_limit(limit: u64) -> String {
    if limit.is_multiple_of(60) {
        format!("> {} min", limit / 60)
    } else {
        format!("> {limit} s")
    }
}

fn render(args: &BenchArgs, results: &[SizeResult], command_line: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "command: {command_line}");
    let _ = writeln!(
        s,
        "latency {} ms round trip per request (proxy, D/2 each way), gc-audit concurrency {}, seed {}, {} cores",
        args.latency_ms,
        args.concurrency,
        args.seed,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        s,
        "targets: cold requests <= 1.05 x floor; warm and +1% requests <= 1.1 x LIST pages + new manifests; \
         at 10k keys cold >= 350x / 900x and warm >= 1500x / 3500x faster than registry --dry-run / --dry-run -m; \
         at 1M keys warm >= 5x faster than cold and peak RSS <= 100 bytes per listed key (cold, warm)"
    );
    let _ = writeln!(s, "\n1. gc-audit scan over S3 (via the latency proxy)");
    let _ = writeln!(
        s,
        "{:>9} {:>8} {:>9} {:>6} {:<4} {:<5} | {:>7} {:>7} {:>6} {:>6} | {:>5} {:>7} {:>4} {:>3} | {:>6} {:>6} {:>9} | {:>7} {:>5} {:>7} {:>7} | {:>6} {:>7} {:>7} | {:>7} | {:>7} {:>6} | via",
        "keys", "blobs", "manifests", "tags", "run", "cache", "wall_s", "audit_s", "cpu_s", "us/req",
        "LIST", "GET", "HEAD", "oth", "hits", "misses", "tags_etag", "min", "min.L", "min.G", "sum.min",
        "floor", "sum.flr", "req/flr", "sum.req", "RSS_MiB", "B/key"
    );
    for r in results {
        for a in &r.audits {
            let tree = r.tree(a);
            let single = tree.single_pass_minimum();
            let floor = tree.minimum();
            let sum_floor = a.summary_requests("requests_minimum");
            let _ = writeln!(
                s,
                "{:>9} {:>8} {:>9} {:>6} {:<4} {:<5} | {:>7.2} {:>7.2} {:>6.2} {:>6.0} | {:>5} {:>7} {:>4} {:>3} | {:>6} {:>6} {:>9} | {:>7} {:>5} {:>7} {:>7} | {:>6} {:>7} {:>7.3} | {:>7} | {:>7.1} {:>6.0} | {}",
                tree.keys,
                tree.stats.blobs,
                tree.stats.manifests,
                tree.stats.tags,
                a.kind.label(),
                if a.cached { "dir" } else { "none" },
                a.measured.wall.as_secs_f64(),
                a.summary["duration_seconds"].as_f64().unwrap_or(f64::NAN),
                a.measured.cpu().as_secs_f64(),
                a.cpu_us_per_request(),
                a.server.list,
                a.server.get,
                a.server.head,
                a.server.other,
                a.cache_cell("cache_hits"),
                a.cache_cell("cache_misses"),
                a.summary_u64(&["tags_resolved_by_etag"]),
                single.total(),
                single.list,
                single.get,
                a.summary_requests("requests_single_pass_minimum"),
                floor.total(),
                sum_floor,
                a.server.total() as f64 / sum_floor.max(1) as f64,
                a.summary_requests("requests"),
                a.measured.max_rss as f64 / (1 << 20) as f64,
                a.measured.max_rss as f64 / tree.keys.max(1) as f64,
                a.via
            );
        }
    }
    for r in results {
        for a in r.audits.iter().filter(|a| a.walls.len() > 1) {
            let walls: Vec<String> = a.walls.iter().map(|w| format!("{w:.2}")).collect();
            let _ = writeln!(
                s,
                "{:>9} {:<4} wall_s is the median of {} runs: {} s; requests and RSS the largest",
                r.keys,
                a.kind.label(),
                walls.len(),
                walls.join(", ")
            );
        }
        if let Some(warm) = r.run(RunKind::Warm) {
            let keys = r.tree(warm).keys;
            let cpu = warm.measured.cpu().as_secs_f64();
            let _ = writeln!(
                s,
                "{:>9} warm CPU per listed key: {:.2} us ({cpu:.2} s over {keys} keys)",
                r.keys,
                cpu * 1e6 / keys.max(1) as f64,
            );
        }
        if let Some(added) = r.added {
            let _ = writeln!(
                s,
                "{:>9} +1%: {} images pushed ({} keys, {} manifests, {} tags) before the +1% rescan",
                r.keys, added.images, added.stats.keys, added.stats.manifests, added.stats.tags
            );
        }
        if !r.cold().cached {
            let _ = writeln!(
                s,
                "{:>9} no manifest cache ({}): cold scans only; the warm and +1% rows need gc-audit with --cache-dir (--audit-via cli)",
                r.keys,
                r.cold().via
            );
        }
    }
    let mut any_registry = false;
    for r in results {
        let warm = r.run(RunKind::Warm);
        for g in &r.registry {
            if !any_registry {
                any_registry = true;
                let _ = writeln!(
                    s,
                    "\n2. docker-registry garbage-collect (distribution 2.8.2, s3 driver, same bucket and proxy, before the +1% step; limit {} s)",
                    args.registry_timeout
                );
                let _ = writeln!(
                    s,
                    "{:>9} {:<13} {:>12} | {:>8} | {:>7} {:>7} {:>7} {:>7} | {:>8} {:>8} | {:>8}",
                    "keys",
                    "run",
                    "exit",
                    "wall_s",
                    "LIST",
                    "GET",
                    "HEAD",
                    "total",
                    "x_cold",
                    "x_warm",
                    "RSS_MiB"
                );
            }
            let m = &g.measured;
            let exit = if m.timed_out {
                fmt_limit(args.registry_timeout)
            } else {
                m.status
                    .code()
                    .map_or_else(|| m.status.to_string(), |c| c.to_string())
            };
            let slower = |run: Option<&AuditRun>| match run {
                None => "-".to_string(),
                Some(a) => {
                    let ratio = m.wall.as_secs_f64() / a.measured.wall.as_secs_f64();
                    if m.timed_out {
                        format!("> {ratio:.0}")
                    } else {
                        format!("{ratio:.0}")
                    }
                }
            };
            let _ = writeln!(
                s,
                "{:>9} {:<13} {:>12} | {:>8.1} | {:>7} {:>7} {:>7} {:>7} | {:>8} {:>8} | {:>8.1}",
                r.keys,
                g.label,
                exit,
                m.wall.as_secs_f64(),
                g.server.list,
                g.server.get,
                g.server.head,
                g.server.total(),
                slower(Some(r.cold())),
                slower(warm),
                m.max_rss as f64 / (1 << 20) as f64,
            );
        }
    }
    for r in results {
        for g in &r.registry {
            let m = &g.measured;
            if !m.timed_out && !m.status.success() {
                let _ = writeln!(
                    s,
                    "   ! {} keys: garbage-collect {} failed ({}): {}",
                    r.keys,
                    g.label,
                    m.status,
                    g.stderr_tail.trim()
                );
            } else if let Some(sum) = g.output.summary {
                let _ = writeln!(
                    s,
                    "   {} keys, {}: {} blobs marked, {} blobs and {} manifests eligible for deletion",
                    r.keys, g.label, sum.marked, sum.blobs_eligible, sum.manifests_eligible
                );
            }
        }
    }
    let _ = writeln!(s, "\n3. targets");
    let _ = writeln!(
        s,
        "{:>9} {:<46} {:>20} {:>32}  result",
        "keys", "target", "value", "limit"
    );
    for r in results {
        for v in verdicts(r) {
            let _ = writeln!(
                s,
                "{:>9} {:<46} {:>20} {:>32}  {}",
                r.keys, v.target, v.value, v.limit, v.result
            );
        }
    }
    s
}

fn to_json(args: &BenchArgs, results: &[SizeResult], command_line: &str) -> Value {
    let measured = |m: &Measured| {
        json!({
            "wall_seconds": m.wall.as_secs_f64(),
            "user_seconds": m.user.as_secs_f64(),
            "sys_seconds": m.sys.as_secs_f64(),
            "max_rss_bytes": m.max_rss,
            "exit": m.status.code(),
            "timed_out": m.timed_out,
        })
    };
    let audit_json = |r: &SizeResult, a: &AuditRun| {
        let tree = r.tree(a);
        json!({
            "run": a.kind.label(),
            "via": a.via,
            "manifest_cache": a.cached,
            "keys": tree.keys,
            "manifests": tree.stats.manifests,
            "tags": tree.stats.tags,
            "single_pass_minimum": tree.single_pass_minimum().json(),
            "minimum": tree.minimum().json(),
            "process": measured(&a.measured),
            "cpu_microseconds_per_request": a.cpu_us_per_request(),
            "wall_seconds_of_each_run": a.walls,
            "server_requests": a.server.json(),
            "summary": a.summary,
        })
    };
    let sizes: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "size": r.size,
                "keys": r.keys,
                "blobs": r.stats.blobs,
                "manifests": r.stats.manifests,
                "tags": r.stats.tags,
                "repositories": r.stats.repos,
                "generate_seconds": r.generate_s,
                "gc_audit_runs": r.audits.iter().map(|a| audit_json(r, a)).collect::<Vec<_>>(),
                "added": r.added.map(|a| json!({
                    "images": a.images,
                    "keys": a.stats.keys,
                    "blobs": a.stats.blobs,
                    "manifests": a.stats.manifests,
                    "tags": a.stats.tags,
                    "seconds": a.seconds,
                })),
                "registry": r.registry.iter().map(|g| json!({
                    "run": g.label,
                    "process": measured(&g.measured),
                    "server_requests": g.server.json(),
                    "summary_line": g.output.summary.map(|s| json!({
                        "marked": s.marked,
                        "blobs_eligible": s.blobs_eligible,
                        "manifests_eligible": s.manifests_eligible,
                    })),
                })).collect::<Vec<_>>(),
                "targets": verdicts(r).iter().map(|v| json!({
                    "target": v.target, "value": v.value, "limit": v.limit, "result": v.result,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "command": command_line,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "seed": args.seed,
        "registry_timeout_seconds": args.registry_timeout,
        "sizes": sizes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("10k"), Ok(10_000));
        assert_eq!(parse_size("1M"), Ok(1_000_000));
        assert_eq!(parse_size("100_000"), Ok(100_000));
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn limits_read_as_minutes() {
        assert_eq!(fmt_limit(600), "> 10 min");
        assert_eq!(fmt_limit(90), "> 90 s");
    }
}
