//! `make-sample [OUT_DIR]`: build the sample registry tree (default `examples/registry`) by
//! driving the real docker-registry 2.8.2, and write `sample-digests.txt` and
//! `sample-gc-m.log` next to it. See `gc_testkit::sample` for what the tree contains.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use gc_testkit::sample::build_sample;

fn run() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let out_dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("examples/registry"));
    if args.next().is_some() {
        anyhow::bail!("usage: make-sample [OUT_DIR]");
    }
    let sample = build_sample(&out_dir)?;
    let side = out_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let digests = sample.digests_text(&out_dir);
    let digests_path = side.join("sample-digests.txt");
    fs::write(&digests_path, &digests)
        .with_context(|| format!("writing {}", digests_path.display()))?;
    let log_path = side.join("sample-gc-m.log");
    fs::write(&log_path, &sample.gc_stdout)
        .with_context(|| format!("writing {}", log_path.display()))?;

    print!("{digests}");
    println!("# garbage-collect --delete-untagged deletions (stderr):");
    for d in &sample.gc_deletions {
        println!("#   {d}");
    }
    if sample.upload_leftovers.is_empty() {
        println!("# no files left under _uploads");
    } else {
        println!("# WARNING: files left under _uploads:");
        for p in &sample.upload_leftovers {
            println!("#   {}", p.display());
        }
    }
    println!(
        "# wrote {}, {} and {}",
        out_dir.display(),
        digests_path.display(),
        log_path.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make-sample: {e:#}");
            ExitCode::FAILURE
        }
    }
}
