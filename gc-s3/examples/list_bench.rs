//! Listing benchmark: LIST requests and wall time of `S3Storage::list` over a registry-shaped
//! bucket served by s3-mem-server on 127.0.0.1.
//!
//! ```text
//! cargo run --release -p gc-s3 --example list_bench -- --keys 1000,10000,100000 \
//!     --concurrency 1,8,64 [--latency-ms 0] [--root registry] [--pages-per-range 16] \
//!     [--budget-fraction 0.025] [--budget-constant 3]
//! ```
//!
//! For each size it prints the keys listed, LIST requests, `ceil(keys/1000)` (the minimum),
//! their ratio and the wall time, per concurrency.

use futures::StreamExt;
use gc_core::storage::Storage;
use gc_s3::{S3Config, S3Storage, StaticCredentials};
use s3_mem_server::{sample::registry_keys, S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::time::{Duration, Instant, SystemTime};

const BUCKET: &str = "bench";

fn list_arg(args: &[String], name: &str, default: &str) -> Vec<u64> {
    let value = args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, String::as_str);
    value
        .split(',')
        .filter_map(|v| v.trim().replace('_', "").parse().ok())
        .collect()
}

fn text_arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default.to_string(), Clone::clone)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes = list_arg(&args, "--keys", "1000,10000,100000");
    let concurrencies = list_arg(&args, "--concurrency", "1,8,64");
    let latency = list_arg(&args, "--latency-ms", "0")
        .first()
        .copied()
        .unwrap_or(0);
    let root = text_arg(&args, "--root", "registry");
    let float = |name: &str| text_arg(&args, name, "").parse::<f64>().ok();
    let mut tuning = gc_s3::ListTuning::default();
    if let Some(v) = float("--pages-per-range") {
        tuning.pages_per_range = v;
    }
    if let Some(v) = float("--budget-fraction") {
        tuning.budget_fraction = v;
    }
    if let Some(v) = float("--budget-constant") {
        tuning.budget_constant = v;
    }
    println!("keys\tconcurrency\tLIST\tceil(keys/1000)\tratio\tseconds");
    for &n in &sizes {
        let server = match S3MemServer::start() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot start s3-mem-server: {e}");
                std::process::exit(2);
            }
        };
        let t = SystemTime::now();
        let keys = registry_keys(usize::try_from(n).unwrap_or(usize::MAX));
        let expected = keys.len() as u64;
        server.create_bucket(BUCKET);
        server.put_objects_direct(
            BUCKET,
            keys.into_iter()
                .map(|(k, _)| (format!("{root}/{k}"), Vec::<u8>::new(), t)),
        );
        server.set_latency(Duration::from_millis(latency));
        for &c in &concurrencies {
            let mut cfg = S3Config::compatible_endpoint(
                BUCKET,
                &root,
                server.endpoint(),
                REGION,
                StaticCredentials {
                    access_key: ACCESS_KEY.to_string(),
                    secret_key: SECRET_KEY.to_string(),
                },
            );
            cfg.concurrency = usize::try_from(c).unwrap_or(1).max(1);
            cfg.listing = tuning;
            let storage = match S3Storage::connect(cfg).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("connect: {e}");
                    std::process::exit(2);
                }
            };
            let started = Instant::now();
            let mut listed = 0u64;
            let mut errors = 0u64;
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
            let lists = storage.request_counts().list;
            let minimum = expected.div_ceil(1000).max(1);
            println!(
                "{expected}\t{c}\t{lists}\t{minimum}\t{:.3}\t{secs:.3}",
                lists as f64 / minimum as f64
            );
            if listed != expected || errors > 0 {
                eprintln!("listed {listed} of {expected} keys with {errors} errors");
                std::process::exit(1);
            }
        }
    }
}
