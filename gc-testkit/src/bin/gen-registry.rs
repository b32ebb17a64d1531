//! `gen-registry --keys N --out DIR [--seed S]`: write a synthetic registry tree of about N
//! keys into DIR (which must not exist yet), deterministic from the seed.

use anyhow::{bail, Context, Result};
use gc_testkit::synth::{generate, FsSink, SynthParams};

fn main() -> Result<()> {
    let mut keys = 100_000usize;
    let mut seed = 1u64;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--keys" => keys = value()?.parse().context("--keys")?,
            "--seed" => seed = value()?.parse().context("--seed")?,
            "--out" => out = Some(value()?),
            other => bail!(
                "unknown argument {other:?}; usage: gen-registry --keys N --out DIR [--seed S]"
            ),
        }
    }
    let out = out.context("--out DIR is required")?;
    if std::path::Path::new(&out).exists() {
        bail!("{out} exists; give a new folder");
    }
    let params = SynthParams::with_keys(keys, seed);
    let stats = generate(&params, &mut FsSink::new(&out))?;
    println!(
        "{out}: {} keys, {} blobs, {} manifests, {} tags, {} repositories ({params:?})",
        stats.keys, stats.blobs, stats.manifests, stats.tags, stats.repos
    );
    Ok(())
}
