//! Two quick benchmarks of gc-s3 alone, on s3-mem-server in this process (no latency proxy, no
//! registry): `gc-bench list` (the listing's LIST requests against `ceil(keys/1000)` and its wall
//! time, per concurrency) and `gc-bench audit` (a whole audit's requests against the minimum and
//! its wall time, per concurrency). They were gc-s3's `list_bench` and `audit_bench` examples;
//! here they share gc-bench's synthetic registries and keep gc-s3 free of test-only
//! dependencies.
//!
//! ```text
//! cargo run --release -p gc-bench -- list --keys 1000,10000,100000 --concurrency 1,8,64 \
//!     [--latency-ms 0] [--root registry] [--pages-per-range 16] [--budget-fraction 0.025] \
//!     [--budget-constant 3]
//! cargo run --release -p gc-bench -- audit --keys 100000 --concurrency 1,8,64 [--latency-ms 0]
//! ```

use anyhow::{ensure, Context, Result};
use clap::Args;
use futures::StreamExt;
use gc_core::storage::Storage;
use gc_s3::{S3Config, S3Storage, StaticCredentials};
use gc_testkit::synth::{generate, Sink, SynthParams};
use s3_mem_server::{sample::registry_keys, S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::time::{Duration, Instant, SystemTime};

const BUCKET: &str = "bench";

/// `gc-bench list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Sizes in keys, comma-separated (k and M suffixes allowed).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000", value_parser = crate::parse_size)]
    keys: Vec<u64>,
    /// Concurrencies, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    concurrency: Vec<usize>,
    /// Latency the server adds to every request, milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Root directory in the bucket.
    #[arg(long, default_value = "registry")]
    root: String,
    /// `ListTuning::pages_per_range`.
    #[arg(long)]
    pages_per_range: Option<f64>,
    /// `ListTuning::budget_fraction`.
    #[arg(long)]
    budget_fraction: Option<f64>,
    /// `ListTuning::budget_constant`.
    #[arg(long)]
    budget_constant: Option<f64>,
}

/// `gc-bench audit`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Size of the synthetic registry in keys (k and M suffixes allowed).
    #[arg(long, default_value = "100000", value_parser = crate::parse_size)]
    keys: u64,
    /// Concurrencies, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    concurrency: Vec<usize>,
    /// Latency the server adds to every request, milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Seed of the synthetic registry.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn config(server: &S3MemServer, root: &str, concurrency: usize) -> S3Config {
    let mut cfg = S3Config::compatible_endpoint(
        BUCKET,
        root,
        server.endpoint(),
        REGION,
        StaticCredentials {
            access_key: ACCESS_KEY.to_string(),
            secret_key: SECRET_KEY.to_string(),
        },
    );
    cfg.concurrency = concurrency.max(1);
    cfg
}

/// `gc-bench list`: per size and concurrency, the keys listed, LIST requests, the minimum,
/// their ratio and the wall time. Exit 1 when a listing lost keys or failed.
pub(crate) fn list(a: &ListArgs) -> Result<u8> {
    let mut tuning = gc_s3::ListTuning::default();
    if let Some(v) = a.pages_per_range {
        tuning.pages_per_range = v;
    }
    if let Some(v) = a.budget_fraction {
        tuning.budget_fraction = v;
    }
    if let Some(v) = a.budget_constant {
        tuning.budget_constant = v;
    }
    let rt = runtime()?;
    println!("keys\tconcurrency\tLIST\tceil(keys/1000)\tratio\tseconds");
    for &n in &a.keys {
        let server = S3MemServer::start().context("starting s3-mem-server")?;
        let t = SystemTime::now();
        let keys = registry_keys(usize::try_from(n).unwrap_or(usize::MAX));
        let expected = keys.len() as u64;
        server.create_bucket(BUCKET);
        let root = a.root.clone();
        server.put_objects_direct(
            BUCKET,
            keys.into_iter()
                .map(|(k, _)| (format!("{root}/{k}"), Vec::<u8>::new(), t)),
        );
        server.set_latency(Duration::from_millis(a.latency_ms));
        for &c in &a.concurrency {
            let mut cfg = config(&server, &a.root, c);
            cfg.listing = tuning;
            let (listed, errors, secs, lists) = rt.block_on(async {
                let storage = S3Storage::connect(cfg).await?;
                let started = Instant::now();
                let (mut listed, mut errors) = (0u64, 0u64);
                let mut stream = storage.list("docker/registry/v2/");
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(_) => listed += 1,
                        Err(e) => {
                            errors += 1;
                            eprintln!("error: {e}");
                        }
                    }
                }
                drop(stream);
                let secs = started.elapsed().as_secs_f64();
                anyhow::Ok((listed, errors, secs, storage.request_counts().list))
            })?;
            let minimum = expected.div_ceil(1000).max(1);
            println!(
                "{expected}\t{c}\t{lists}\t{minimum}\t{:.3}\t{secs:.3}",
                lists as f64 / minimum as f64
            );
            if listed != expected || errors > 0 {
                eprintln!("listed {listed} of {expected} keys with {errors} errors");
                return Ok(1);
            }
        }
    }
    Ok(0)
}

/// Collects generated objects for one bulk load into the server.
struct Collect(Vec<(String, Vec<u8>, SystemTime)>);

impl Sink for Collect {
    fn put(&mut self, key: &str, data: &[u8]) -> Result<()> {
        // Old enough that nothing is young.
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        self.0.push((format!("registry/{key}"), data.to_vec(), at));
        Ok(())
    }
}

/// `gc-bench audit`: per concurrency, keys listed, LIST/GET/HEAD made, the minimum, the ratio
/// and the wall time of a whole audit.
pub(crate) fn audit(a: &AuditArgs) -> Result<u8> {
    use gc_core::audit::{audit, AuditOptions, NoProgress};
    let keys = usize::try_from(a.keys).unwrap_or(usize::MAX);
    let latency = Duration::from_millis(a.latency_ms);
    let server = S3MemServer::start().context("starting s3-mem-server")?;
    server.create_bucket(BUCKET);
    let mut sink = Collect(Vec::new());
    let stats = generate(&SynthParams::with_keys(keys, a.seed), &mut sink)?;
    server.put_objects_direct(BUCKET, sink.0);
    server.set_latency(latency);
    println!(
        "synthetic registry: {} keys, {} blobs, {} manifests, {} tags, {} repositories; latency {latency:?}",
        stats.keys, stats.blobs, stats.manifests, stats.tags, stats.repos
    );
    println!(
        "{:>11} {:>8} {:>7} {:>7} {:>5} {:>12} {:>12} {:>8} {:>9}",
        "concurrency", "keys", "LIST", "GET", "HEAD", "min LIST", "min GET", "ratio", "wall s"
    );
    let rt = runtime()?;
    for &c in &a.concurrency {
        let cfg = config(&server, "registry", c);
        let (outcome, wall) = rt.block_on(async {
            let storage = S3Storage::connect(cfg).await?;
            let started = Instant::now();
            let opts = AuditOptions {
                concurrency: c.max(1),
                ..AuditOptions::default()
            };
            let outcome = audit(&storage, &opts, &NoProgress).await;
            anyhow::Ok((outcome, started.elapsed().as_secs_f64()))
        })?;
        let s = &outcome.report.summary;
        ensure!(s.complete, "audit incomplete: {:?}", s.errors);
        let made = s.requests.list + s.requests.get + s.requests.head;
        let min = s.requests_minimum.list + s.requests_minimum.get;
        println!(
            "{c:>11} {:>8} {:>7} {:>7} {:>5} {:>12} {:>12} {:>8.3} {wall:>9.2}",
            s.totals.keys,
            s.requests.list,
            s.requests.get,
            s.requests.head,
            s.requests_minimum.list,
            s.requests_minimum.get,
            made as f64 / min.max(1) as f64
        );
    }
    Ok(0)
}
