//! Whole-audit benchmark over S3: requests made against the minimum, and wall time per
//! concurrency, on a synthetic registry (gc-testkit `synth`) served by s3-mem-server on
//! 127.0.0.1, optionally with a fixed latency added to every request by the server.
//!
//! ```text
//! cargo run --release -p gc-s3 --example audit_bench -- --keys 100000 --concurrency 1,8,64 [--latency-ms 0]
//! ```
//!
//! Prints per concurrency: keys listed, LIST/GET/HEAD made, the minimum (ceil(keys/1000)
//! LIST, one GET per tag current link and per distinct manifest), the ratio, and wall time.

use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_s3::{S3Config, S3Storage, StaticCredentials};
use gc_testkit::synth::{generate, Sink, SynthParams};
use s3_mem_server::{S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::time::{Duration, Instant, SystemTime};

const BUCKET: &str = "bench";
const ROOT: &str = "registry";

/// Collects generated objects for one bulk load into the server.
struct Collect(Vec<(String, Vec<u8>, SystemTime)>);

impl Sink for Collect {
    fn put(&mut self, key: &str, data: &[u8]) -> anyhow::Result<()> {
        // Old enough that nothing is young.
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        self.0.push((format!("{ROOT}/{key}"), data.to_vec(), at));
        Ok(())
    }
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let keys: usize = arg(&args, "--keys", "100000").replace('_', "").parse()?;
    let latency = Duration::from_millis(arg(&args, "--latency-ms", "0").parse()?);
    let concurrencies: Vec<usize> = arg(&args, "--concurrency", "1,8,64")
        .split(',')
        .filter_map(|c| c.parse().ok())
        .collect();

    let server = S3MemServer::start()?;
    server.create_bucket(BUCKET);
    let mut sink = Collect(Vec::new());
    let stats = generate(&SynthParams::with_keys(keys, 1), &mut sink)?;
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
    for c in concurrencies {
        let mut cfg = S3Config::compatible_endpoint(
            BUCKET,
            ROOT,
            server.endpoint(),
            REGION,
            StaticCredentials {
                access_key: ACCESS_KEY.into(),
                secret_key: SECRET_KEY.into(),
            },
        );
        cfg.concurrency = c;
        let storage = S3Storage::connect(cfg).await?;
        let started = Instant::now();
        let outcome = audit(
            &storage,
            &AuditOptions {
                concurrency: c,
                ..AuditOptions::default()
            },
            &NoProgress,
        )
        .await;
        let wall = started.elapsed().as_secs_f64();
        let s = &outcome.report.summary;
        anyhow::ensure!(s.complete, "audit incomplete: {:?}", s.errors);
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
            made as f64 / min as f64
        );
    }
    Ok(())
}
