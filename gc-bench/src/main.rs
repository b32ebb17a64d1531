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
//! 3. Runs gc-audit `--audit-runs` times (default 3) against the proxy, each run a separate
//!    process measured alone through `wait4(2)` (wall, user+sys CPU, peak RSS; spawned through
//!    a small helper process so that gc-bench's own memory does not leak into the child's peak
//!    RSS, see [`measure`]); the median run is reported, with the largest request counts and
//!    peak RSS of all runs. The process is the release `gc-audit scan s3://bench/registry
//!    --endpoint-url <proxy> --region us-east-1 --force-path-style --concurrency N --json -q`
//!    with `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` in its environment when that binary
//!    accepts S3 flags (`--audit-via cli`), otherwise `gc-bench audit-child`, which runs
//!    `gc_core::audit::audit` over `gc_s3::S3Storage` the same way but writes no report files
//!    (`--audit-via child`). The server's request log counts what it received.
//! 4. For sizes up to `--registry-max-keys`: runs `docker-registry garbage-collect --dry-run`
//!    and then `--dry-run -m` (s3 driver, same bucket, same proxy, config from
//!    `gc_testkit::RegistryConfig::write_s3`, `AWS_CA_BUNDLE` and `REGISTRY_*` removed from its
//!    environment), each killed at `--registry-timeout` seconds; counts its requests from the
//!    server's log, and checks that the dry run exits 0 (the generated trees must be ones the
//!    real GC accepts; its stderr tail is printed when it does not).
//!
//! # Reading the output
//!
//! Table 1, gc-audit, one row per size:
//! - `keys` objects in the bucket (= keys gc-audit lists), `blobs` distinct blobs (manifests
//!   included), `manifests` distinct manifests, `tags` tags with a `current/link`;
//! - `wall_s` the gc-audit process from spawn to exit (start-up, S3 client, audit, report
//!   files); `audit_s` the summary's `duration_seconds` (the audit alone); `cpu_s` its user+sys;
//! - `LIST GET HEAD` requests the server received from it (`sum.req` is what gc-audit's own
//!   summary says it sent: they differ only by retries it did not count or requests lost);
//! - `min` the fewest requests any auditor needs: `ceil(keys/1000)` LIST pages + one GET per
//!   tag `current/link` + one GET per distinct manifest (`min.L/min.G`); `sum.min` the same
//!   number as gc-audit's summary (`requests_minimum`) computed it from what it saw;
//!   `req/min` total requests over `min`;
//! - `RSS_MiB` peak resident set of the gc-audit process, `B/key` that over `keys`.
//!
//! Table 2, the registry's garbage-collect, one row per run: exit status (or `> N min` when
//! killed at the limit), wall time, requests by kind as the server saw them (for a killed run:
//! the requests until it was killed), and `x_slower`, its wall time over gc-audit's `wall_s`
//! (a lower bound, `>`, for a killed run).
//!
//! Table 3, the targets, PASS/FAIL per size (`n/a` where a target is defined for another
//! size; the value is still shown):
//! - requests ≤ 1.05 × `min`;
//! - `wall_s` ≤ 1.5 × (requests × D / concurrency) + `cpu_s` (the latency-bound time of the
//!   requests made, spread over the concurrency, plus gc-audit's own CPU time);
//! - at 10k keys: ≥ 250× faster than `--dry-run` and ≥ 600× faster than `--dry-run -m`;
//! - at 1M keys (and above): peak RSS ≤ 100 bytes per listed key.
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
use gc_testkit::synth::{generate, S3Sink, SynthParams, SynthStats};
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
         s3://{BUCKET}/{ROOT} --endpoint-url {} --region {REGION} --force-path-style -q --json",
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

#[derive(Debug)]
struct AuditRun {
    via: &'static str,
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
}

#[derive(Debug)]
struct GcRunResult {
    label: &'static str,
    measured: Measured,
    server: Counts,
    output: GcOutput,
    stderr_tail: String,
}

#[derive(Debug)]
struct SizeResult {
    size: u64,
    stats: SynthStats,
    keys: u64,
    generate_s: f64,
    audit: AuditRun,
    registry: Vec<GcRunResult>,
}

impl SizeResult {
    fn minimum(&self) -> Counts {
        Counts {
            list: self.keys.div_ceil(1000).max(1),
            get: self.stats.tags + self.stats.manifests,
            head: 0,
            other: 0,
        }
    }
}

fn bench(args: &BenchArgs) -> Result<()> {
    if args.sizes.is_empty() {
        bail!("--sizes is empty");
    }
    let latency = Duration::from_millis(args.latency_ms);
    let via = resolve_via(args)?;
    let gc_audit = gc_audit_path(args)?;
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    eprintln!(
        "gc-bench: latency {} ms round trip, concurrency {}, gc-audit via {}",
        args.latency_ms,
        args.concurrency,
        match via {
            AuditVia::Cli => format!("{}", gc_audit.display()),
            _ => "gc-bench audit-child".to_string(),
        }
    );
    let mut results = Vec::new();
    for &size in &args.sizes {
        results.push(run_size(args, size, latency, via, &gc_audit)?);
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

/// `auto`: the CLI when its `scan --help` lists the S3 flags.
fn resolve_via(args: &BenchArgs) -> Result<AuditVia> {
    let path = gc_audit_path(args)?;
    let cli_ok = || -> bool {
        Command::new(&path)
            .args(["scan", "--help"])
            .stdin(Stdio::null())
            .output()
            .map(|o| {
                let help = String::from_utf8_lossy(&o.stdout);
                o.status.success()
                    && help.contains("--endpoint-url")
                    && help.contains("--force-path-style")
            })
            .unwrap_or(false)
    };
    Ok(match args.audit_via {
        AuditVia::Auto if path.is_file() && cli_ok() => AuditVia::Cli,
        AuditVia::Auto => AuditVia::Child,
        AuditVia::Cli if !cli_ok() => bail!(
            "--audit-via cli: {} is missing or has no S3 flags (build it: cargo build --release -p gc-cli)",
            path.display()
        ),
        v => v,
    })
}

fn run_size(
    args: &BenchArgs,
    size: u64,
    latency: Duration,
    via: AuditVia,
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

    let mut runs = Vec::new();
    for _ in 0..args.audit_runs {
        server.clear_requests();
        let connections = proxy.connections();
        let run = run_audit(args, via, gc_audit, &proxy, work.path())?;
        let run = AuditRun {
            server: Counts::from_ops(&server.operation_counts()),
            ..run
        };
        eprintln!(
            "gc-bench: [{size}] gc-audit ({}) {:.2} s, {} requests on {} connections, peak RSS {} MiB",
            run.via,
            run.measured.wall.as_secs_f64(),
            run.server.total(),
            proxy.connections() - connections,
            run.measured.max_rss >> 20
        );
        runs.push(run);
    }
    let audit = median_run(runs);

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
    drop(proxy);
    drop(server);
    Ok(SizeResult {
        size,
        stats,
        keys,
        generate_s,
        audit,
        registry,
    })
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

fn run_audit(
    args: &BenchArgs,
    via: AuditVia,
    gc_audit: &Path,
    proxy: &LatencyProxy,
    work: &Path,
) -> Result<AuditRun> {
    let stdout_path = work.join("audit.stdout");
    let stderr_path = work.join("audit.stderr");
    let concurrency = args.concurrency.to_string();
    let mut cmd;
    let name = match via {
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
                .env_remove("AWS_SESSION_TOKEN");
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
    target: &'static str,
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

fn verdicts(args: &BenchArgs, r: &SizeResult) -> Vec<Verdict> {
    let mut v = Vec::new();
    let a = &r.audit;
    let min = r.minimum().total();
    let req = a.server.total();
    v.push(Verdict {
        target: "requests <= 1.05 x minimum",
        value: format!("{req} ({:.3}x)", req as f64 / min as f64),
        limit: format!("{:.0}", 1.05 * min as f64),
        result: pass(req as f64 <= 1.05 * min as f64),
    });
    let wall = a.measured.wall.as_secs_f64();
    let cpu = a.measured.cpu().as_secs_f64();
    let bound =
        1.5 * (req as f64 * args.latency_ms as f64 / 1000.0 / args.concurrency as f64) + cpu;
    v.push(Verdict {
        target: "wall <= 1.5 x req x D / conc + cpu",
        value: format!("{wall:.2} s"),
        limit: format!("{bound:.2} s"),
        result: pass(wall <= bound),
    });
    for (label, factor) in [("--dry-run", 250.0), ("--dry-run -m", 600.0)] {
        let target = if label == "--dry-run" {
            ">= 250x faster than --dry-run (10k)"
        } else {
            ">= 600x faster than --dry-run -m (10k)"
        };
        let Some(g) = r.registry.iter().find(|g| g.label == label) else {
            if r.size == 10_000 {
                v.push(Verdict {
                    target,
                    value: "not run".to_string(),
                    limit: format!("{factor}x"),
                    result: "n/a",
                });
            }
            continue;
        };
        let ratio = g.measured.wall.as_secs_f64() / wall;
        let applies = r.size == 10_000;
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
            limit: format!("{factor}x"),
            result,
        });
    }
    let per_key = a.measured.max_rss as f64 / r.keys.max(1) as f64;
    v.push(Verdict {
        target: "peak RSS <= 100 B/key (1M)",
        value: format!("{per_key:.0} B/key"),
        limit: "100 B/key".to_string(),
        result: if r.size >= 1_000_000 {
            pass(per_key <= 100.0)
        } else {
            "n/a"
        },
    });
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
        "targets: requests <= 1.05 x minimum; wall <= 1.5 x (requests x latency / concurrency) + CPU time; \
         at 10k keys >= 250x faster than registry --dry-run and >= 600x faster than --dry-run -m; \
         peak RSS <= 100 bytes per listed key at 1M keys"
    );
    let _ = writeln!(s, "\n1. gc-audit scan over S3 (via the latency proxy)");
    let _ = writeln!(
        s,
        "{:>9} {:>8} {:>9} {:>6} | {:>7} {:>7} {:>6} | {:>5} {:>7} {:>4} | {:>7} {:>5} {:>7} {:>7} | {:>7} {:>7} | {:>7} {:>6} | via",
        "keys", "blobs", "manifests", "tags", "wall_s", "audit_s", "cpu_s", "LIST", "GET", "HEAD",
        "min", "min.L", "min.G", "req/min", "sum.req", "sum.min", "RSS_MiB", "B/key"
    );
    for r in results {
        let a = &r.audit;
        let min = r.minimum();
        let sum_req = a.summary_u64(&["requests", "LIST"])
            + a.summary_u64(&["requests", "GET"])
            + a.summary_u64(&["requests", "HEAD"]);
        let sum_min = a.summary_u64(&["requests_minimum", "LIST"])
            + a.summary_u64(&["requests_minimum", "GET"])
            + a.summary_u64(&["requests_minimum", "HEAD"]);
        let _ = writeln!(
            s,
            "{:>9} {:>8} {:>9} {:>6} | {:>7.2} {:>7.2} {:>6.2} | {:>5} {:>7} {:>4} | {:>7} {:>5} {:>7} {:>7.3} | {:>7} {:>7} | {:>7.1} {:>6.0} | {}",
            r.keys,
            r.stats.blobs,
            r.stats.manifests,
            r.stats.tags,
            a.measured.wall.as_secs_f64(),
            a.summary["duration_seconds"].as_f64().unwrap_or(f64::NAN),
            a.measured.cpu().as_secs_f64(),
            a.server.list,
            a.server.get,
            a.server.head,
            min.total(),
            min.list,
            min.get,
            a.server.total() as f64 / min.total() as f64,
            sum_req,
            sum_min,
            a.measured.max_rss as f64 / (1 << 20) as f64,
            a.measured.max_rss as f64 / r.keys.max(1) as f64,
            a.via
        );
    }
    for r in results.iter().filter(|r| r.audit.walls.len() > 1) {
        let walls: Vec<String> = r.audit.walls.iter().map(|w| format!("{w:.2}")).collect();
        let _ = writeln!(
            s,
            "{:>9} wall_s is the median of {} runs: {} s; requests and RSS the largest",
            r.keys,
            walls.len(),
            walls.join(", ")
        );
    }
    let mut any_registry = false;
    for r in results {
        for g in &r.registry {
            if !any_registry {
                any_registry = true;
                let _ = writeln!(
                    s,
                    "\n2. docker-registry garbage-collect (distribution 2.8.2, s3 driver, same bucket and proxy; limit {} s)",
                    args.registry_timeout
                );
                let _ = writeln!(
                    s,
                    "{:>9} {:<13} {:>12} | {:>8} | {:>7} {:>7} {:>7} {:>7} | {:>9} | {:>8}",
                    "keys",
                    "run",
                    "exit",
                    "wall_s",
                    "LIST",
                    "GET",
                    "HEAD",
                    "total",
                    "x_slower",
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
            let ratio = m.wall.as_secs_f64() / r.audit.measured.wall.as_secs_f64();
            let _ = writeln!(
                s,
                "{:>9} {:<13} {:>12} | {:>8.1} | {:>7} {:>7} {:>7} {:>7} | {:>9} | {:>8.1}",
                r.keys,
                g.label,
                exit,
                m.wall.as_secs_f64(),
                g.server.list,
                g.server.get,
                g.server.head,
                g.server.total(),
                if m.timed_out {
                    format!("> {ratio:.0}")
                } else {
                    format!("{ratio:.0}")
                },
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
        "{:>9} {:<40} {:>22} {:>12}  result",
        "keys", "target", "value", "limit"
    );
    for r in results {
        for v in verdicts(args, r) {
            let _ = writeln!(
                s,
                "{:>9} {:<40} {:>22} {:>12}  {}",
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
                "minimum": r.minimum().json(),
                "gc_audit": {
                    "via": r.audit.via,
                    "process": measured(&r.audit.measured),
                    "wall_seconds_of_each_run": r.audit.walls,
                    "server_requests": r.audit.server.json(),
                    "summary": r.audit.summary,
                },
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
                "targets": verdicts(args, r).iter().map(|v| json!({
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
