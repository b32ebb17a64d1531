//! `recover-bench`: what a recovery plan costs on a large registry damaged by the real GC.
//!
//! ```text
//! cargo build --release -p gc-bench --bin recover-bench
//! target/release/recover-bench [--keys 100000] [--seed 1] [--concurrency 64]
//! ```
//!
//! 1. Starts s3-mem-server with bucket versioning enabled and writes a synthetic registry of
//!    about `--keys` keys into it (gc-testkit's generator: repositories of single- and
//!    multi-arch images, shared layers, untagged images), every write a version.
//! 2. Runs the real `docker-registry garbage-collect -m` (distribution 2.8.2, s3 driver) on it:
//!    it sweeps the children of the tagged indexes and leaves a delete marker per deletion.
//! 3. Audits the bucket and plans the recovery with gc-core (as `gc-audit recover` does),
//!    counting requests in gc-s3 and in the server's log, and prints: keys, missing keys N, the
//!    rows per action, the version listings (prefixes, batched, pages), the plan's requests
//!    against the budget N + pages, and the time each step took.
//!
//! Exit status 0 when the plan's requests are within the budget and the plan restores
//! everything (or nothing is missing), 1 otherwise.

use anyhow::{bail, Context, Result};
use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::recover::{self, Action, RecoverOptions};
use gc_s3::{S3Config, S3Storage, StaticCredentials};
use gc_testkit::gc::run_gc;
use gc_testkit::registry::RegistryConfig;
use gc_testkit::synth::{generate, S3Sink, SynthParams};
use s3_mem_server::{BucketVersioning, S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::time::Instant;

const BUCKET: &str = "bench";
const ROOT: &str = "registry";

fn main() -> std::process::ExitCode {
    match run() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("recover-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool> {
    let mut keys = 100_000usize;
    let mut seed = 1u64;
    let mut concurrency = 64usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--keys" => keys = value()?.parse().context("--keys")?,
            "--seed" => seed = value()?.parse().context("--seed")?,
            "--concurrency" => concurrency = value()?.parse().context("--concurrency")?,
            other => bail!(
                "unknown argument {other:?}; usage: recover-bench [--keys N] [--seed S] [--concurrency N]"
            ),
        }
    }

    let server = S3MemServer::start().context("starting s3-mem-server")?;
    server.create_bucket(BUCKET);
    server.set_versioning(BUCKET, BucketVersioning::Enabled);
    let t = Instant::now();
    let params = SynthParams::with_keys(keys, seed);
    let mut sink = S3Sink::new(&server, BUCKET, ROOT);
    let stats = generate(&params, &mut sink)?;
    sink.finish();
    println!(
        "generated: {} keys, {} blobs, {} manifests, {} tags, {} repositories ({:.1}s)",
        stats.keys,
        stats.blobs,
        stats.manifests,
        stats.tags,
        stats.repos,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let config = RegistryConfig::write_s3(&server.endpoint(), BUCKET, &format!("/{ROOT}"), 0)?;
    let gc = run_gc(config.path(), false, true)?;
    if !gc.success() {
        bail!("garbage-collect -m failed: {}", gc.stderr);
    }
    println!(
        "garbage-collect -m (2.8.2, s3 driver): {} keys left ({:.1}s)",
        server.object_count(BUCKET),
        t.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Runtime::new()?;
    let cfg = {
        let mut c = S3Config::compatible_endpoint(
            BUCKET,
            ROOT,
            server.endpoint(),
            REGION,
            StaticCredentials {
                access_key: ACCESS_KEY.into(),
                secret_key: SECRET_KEY.into(),
            },
        );
        c.concurrency = concurrency;
        c
    };
    let storage = runtime.block_on(S3Storage::connect(cfg))?;
    server.clear_requests();
    let t = Instant::now();
    let opts = AuditOptions {
        concurrency,
        ..AuditOptions::default()
    };
    let outcome = runtime.block_on(audit(&storage, &opts, &NoProgress));
    if !outcome.report.summary.complete {
        bail!("audit incomplete: {:?}", outcome.report.summary.errors);
    }
    let audit_requests: u64 = server.operation_counts().values().sum();
    println!(
        "audit: {} missing, {} dangling, {} broken tags; {audit_requests} requests ({:.1}s)",
        outcome.report.summary.missing,
        outcome.report.summary.dangling,
        outcome.report.summary.broken_tags,
        t.elapsed().as_secs_f64()
    );

    server.clear_requests();
    let t = Instant::now();
    let plan_opts = RecoverOptions {
        concurrency,
        ..RecoverOptions::default()
    };
    let plan = runtime.block_on(recover::plan(&outcome, &storage, None, &plan_opts));
    let elapsed = t.elapsed().as_secs_f64();
    if !plan.complete() {
        bail!("plan incomplete: {:?}", plan.errors);
    }
    let ops = server.operation_counts();
    let seen: u64 = ops.values().sum();
    println!(
        "plan: target state {} keys, {} missing ({elapsed:.1}s)",
        plan.needed_keys,
        plan.rows.len()
    );
    for (action, t) in recover::rows::totals(&plan.rows) {
        println!("  {action:<21} {:>8} keys {:>14} bytes", t.keys, t.bytes);
    }
    println!(
        "  manifests restored and parsed: {}, read again for sizes: {}",
        plan.manifests_restored, plan.manifests_reread
    );
    let l = plan.listings;
    println!(
        "  version listings: {} prefixes ({} batched), {} entries, {} pages",
        l.prefixes, l.batched_prefixes, l.entries, l.pages
    );
    println!(
        "  requests: {} by gc-s3 (LIST {}, GET {}, HEAD {}), {seen} seen by the server {ops:?}",
        plan.requests_made(),
        plan.requests.list,
        plan.requests.get,
        plan.requests.head
    );
    let budget = plan.request_budget();
    let within = plan.requests_made() <= budget && seen <= budget;
    println!(
        "  budget N + pages = {} + {} = {budget}: {}",
        plan.rows.len(),
        l.pages,
        if within { "within" } else { "OVER" }
    );
    let restores_all = plan.rows.iter().all(|r| r.action != Action::Unrecoverable);
    println!(
        "  tags restored: {}, tags still broken: {}",
        plan.tags_restored.len(),
        plan.tags_broken.len()
    );
    Ok(within && restores_all)
}
