//! A fuzzer over real registry trees: nothing in a storage tree may panic gc-audit, hang it,
//! give an exit code outside the contract, or damage a reachable manifest or link without the
//! report naming it.
//!
//! Base trees: the shipped sample (`examples/registry`, made by the real registry) and a tree
//! pushed here through the real `docker-registry` (filesystem driver): single-arch Docker and
//! OCI images, a tag history, shared layers, cross-repository mounts, a multi-arch OCI index
//! with an attestation, a Docker manifest list, a repository nested inside another. The
//! registry is stopped before anything is mutated, and each base is scanned once in-process to
//! know what it holds ([`Known`]).
//!
//! Each case copies a base, applies 1–3 mutations chosen by a seeded RNG
//! (`gc_testkit::mutate`), then runs `gc-audit scan --grace 0s -q` and `gc-audit gc-plan
//! --model distribution-2.8 -m -q` and `--model distribution-3 -q`, each killed after 60 s.
//! Every run must end in time without a panic, scan with 0, 1 or 2, gc-plan with 0 to 3, and
//! every damage must be named (the oracle, [`expectation`]):
//! - **always**, whatever the exit code, by its key in findings.csv or in the errors: a key
//!   replaced by something unreadable (FIFO, socket, link loop, link out of the root or to
//!   `/dev/zero`), a manifest whose bytes changed while a scan still reaches it (its content no
//!   longer hashes to its digest), a link whose content changed (every link is read on the
//!   filesystem, so also when its size did not), a tag link that holds no digest, an added key
//!   under `docker/registry/v2/` that the layout rejects;
//! - **when the audit is complete** (exit 0 or 1; an incomplete audit withholds missing.csv,
//!   dangling.csv and broken.csv by design), by digest and repository in missing.csv,
//!   dangling.csv or broken.csv, or in findings.csv: a removed blob that an intact manifest
//!   still references, a removed layer or revision link that the repository still needs, a
//!   tag pointed at a manifest that does not exist;
//! - **a known gap** ([`Gap`]): damage gc-audit does not name yet (none now). Counted and
//!   printed by every run, checked like the first class when `GC_AUDIT_FUZZ_STRICT=1`.
//!
//! A damage is not checked when another mutation of the case damaged the same key or a
//! directory above it (it may have removed or replaced it). What is still reached after the
//! case's damage ([`Known::reach`]) decides whether a changed manifest is read and whether a
//! removed blob or link is still needed.
//!
//! Case counts: [`DEFAULT_CASES`] here; `GC_AUDIT_FUZZ_CASES=5000` and `GC_AUDIT_FUZZ_SEED=<n>`
//! for long runs, `GC_AUDIT_FUZZ_CASE=<n>` to run one case of a seed again,
//! `GC_AUDIT_FUZZ_VERBOSE=1` to print every case's mutations and exit codes. Every failure
//! names the seed and the case.

mod support;

use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::graph::{ManifestState, TagTarget};
use gc_core::storage::FsStorage;
use gc_testkit::image::{attestation_for, Blob, Format, Image, MultiArch, Platform};
use gc_testkit::mutate::{self, Applied, Damage, How, Known, Reach, Target};
use gc_testkit::push::Client;
use gc_testkit::registry::Registry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Cases in a plain `cargo test` run.
const DEFAULT_CASES: u64 = 300;
/// The seed of a plain run.
const DEFAULT_SEED: u64 = 0x6763_2d61_7564_6974;
/// Longest a single gc-audit run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Base trees

/// A base tree and what a scan of it found.
struct Base {
    name: &'static str,
    root: PathBuf,
    known: Known,
}

fn image(format: Format, seed: &str, platform: Platform, layers: &[Blob]) -> Image {
    let mut b = Image::builder(format, seed, platform);
    for l in layers {
        b = b.layer(l.clone());
    }
    b.unique_layers(1).build().expect("image")
}

/// Push the fresh base through the real registry.
fn push_base(c: &Client) -> anyhow::Result<()> {
    let amd64 = Platform::linux_amd64();
    let arm64 = Platform::new("linux", "arm64");
    // Docker single-arch with a tag history: latest moves from 1.0's image to 2.0's.
    let base = Blob::layer(Format::Docker, "fuzz/base");
    let v1 = image(
        Format::Docker,
        "fuzz/os-1",
        amd64.clone(),
        std::slice::from_ref(&base),
    );
    let v2 = image(
        Format::Docker,
        "fuzz/os-2",
        amd64.clone(),
        std::slice::from_ref(&base),
    );
    c.push_image("library/os", &v1, Some("1.0"), None)?;
    c.push_image("library/os", &v1, Some("latest"), None)?;
    c.push_image("library/os", &v2, Some("latest"), None)?;
    c.push_image("library/os", &v2, Some("2.0"), None)?;
    // The base layer mounted into a Docker manifest list.
    let list = MultiArch::builder(Format::Docker)
        .image(image(
            Format::Docker,
            "fuzz/list-a",
            amd64.clone(),
            std::slice::from_ref(&base),
        ))
        .image(image(
            Format::Docker,
            "fuzz/list-b",
            arm64.clone(),
            std::slice::from_ref(&base),
        ))
        .build()?;
    c.push_multi_arch("legacy/list", &list, Some("stable"), Some("library/os"))?;
    // OCI: a base repository, an index with an attestation in team/app, and a repository
    // nested inside it (team/app/api) with a tagged and an untagged image; layers mounted.
    let oci_base = Blob::layer(Format::Oci, "fuzz/oci-base");
    let b = image(
        Format::Oci,
        "fuzz/oci-base-img",
        amd64.clone(),
        std::slice::from_ref(&oci_base),
    );
    c.push_image("team/base", &b, Some("1"), None)?;
    let child = image(
        Format::Oci,
        "fuzz/app-amd64",
        amd64.clone(),
        std::slice::from_ref(&oci_base),
    );
    let att = attestation_for(&child.manifest, "fuzz/app-att");
    let child_digest = child.manifest.digest.clone();
    let index = MultiArch::builder(Format::Oci)
        .image(child)
        .image(image(
            Format::Oci,
            "fuzz/app-arm64",
            arm64,
            std::slice::from_ref(&oci_base),
        ))
        .attestation(att, &child_digest)
        .build()?;
    c.push_multi_arch("team/app", &index, Some("v1"), Some("team/base"))?;
    let api = image(
        Format::Oci,
        "fuzz/api",
        amd64.clone(),
        std::slice::from_ref(&oci_base),
    );
    c.push_image("team/app/api", &api, Some("2.0"), Some("team/base"))?;
    let untagged = image(Format::Oci, "fuzz/api-old", amd64, &[oci_base]);
    c.push_image("team/app/api", &untagged, None, Some("team/base"))?;
    Ok(())
}

/// Copy a tree with its empty directories.
fn copy_root(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_root(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// Scan `root` in-process: what it holds, for the oracle. The base must scan complete.
fn known_of(name: &str, root: &Path) -> Known {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let storage = FsStorage::new(root);
    let outcome = runtime.block_on(audit(&storage, &AuditOptions::default(), &NoProgress));
    assert!(
        outcome.report.summary.complete,
        "base {name} scans incomplete: {:?}",
        outcome.report.summary.errors
    );
    let graph = &outcome.graph;
    let d = |id| graph.digests().digest(id).to_string();
    let mut known = Known::default();
    for (&id, state) in graph.manifests() {
        if let ManifestState::Parsed(node) = state {
            if graph.blobs().contains_key(&id) {
                known.manifests.insert(d(id));
                let edges = node
                    .edges
                    .iter()
                    .filter(|e| !e.foreign)
                    .map(|e| d(e.target))
                    .collect();
                known.edges.insert(d(id), edges);
            }
        }
    }
    for (name, repo) in graph.repos() {
        let revisions = repo.revisions.iter().map(|(&id, _)| d(id)).collect();
        known.revisions.insert(name.clone(), revisions);
        let tags = repo
            .tags
            .values()
            .filter_map(|t| match t.target {
                TagTarget::Digest(id) => Some((t.name.clone(), d(id))),
                _ => None,
            })
            .collect();
        known.tags.insert(name.clone(), tags);
    }
    assert!(!known.manifests.is_empty(), "base {name} has no manifest");
    known
}

fn bases(dir: &Path) -> Vec<Base> {
    let sample = dir.join("sample");
    copy_root(&workspace().join("examples/registry"), &sample);
    let pushed = dir.join("pushed");
    let registry = Registry::start(&pushed).unwrap_or_else(|e| panic!("{e:#}"));
    push_base(&registry.client())
        .unwrap_or_else(|e| panic!("push: {e:#}\n{}", registry.log_tail()));
    registry.stop().expect("stop the registry before mutating");
    vec![
        Base {
            name: "sample",
            known: known_of("sample", &sample),
            root: sample,
        },
        Base {
            name: "pushed",
            known: known_of("pushed", &pushed),
            root: pushed,
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Running gc-audit

/// One gc-audit run.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    timed_out: bool,
}

fn run_gc_audit(args: &[&str], dir: &Path, label: &str) -> Ran {
    let out = dir.join(format!("{label}.stdout"));
    let err = dir.join(format!("{label}.stderr"));
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gc-audit"))
        .env("GC_AUDIT_NO_CACHE", "1")
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("run gc-audit");
    let mut pause = Duration::from_millis(1);
    let (code, timed_out) = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break (status.code(), false);
        }
        if start.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Ran {
        code,
        stdout: read(&out),
        stderr: read(&err),
        elapsed: start.elapsed(),
        timed_out,
    }
}

/// The report of a scan, as far as it was written.
#[derive(Default)]
struct Outputs {
    findings: Vec<BTreeMap<String, String>>,
    missing: Vec<BTreeMap<String, String>>,
    dangling: Vec<BTreeMap<String, String>>,
    broken: Vec<BTreeMap<String, String>>,
    /// summary.json errors, stdout and stderr.
    text: String,
}

fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return Vec::new();
    };
    let headers = reader.headers().cloned().unwrap_or_default();
    reader
        .records()
        .filter_map(Result::ok)
        .map(|r| {
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

impl Outputs {
    fn read(out: &Path, scan: &Ran) -> Outputs {
        let mut text = format!("{}\n{}\n", scan.stdout, scan.stderr);
        if let Ok(s) = std::fs::read_to_string(out.join("summary.json")) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&s) {
                for e in v["errors"].as_array().into_iter().flatten() {
                    text.push_str(e.as_str().unwrap_or_default());
                    text.push('\n');
                }
            }
        }
        Outputs {
            findings: csv_rows(&out.join("findings.csv")),
            missing: csv_rows(&out.join("missing.csv")),
            dangling: csv_rows(&out.join("dangling.csv")),
            broken: csv_rows(&out.join("broken.csv")),
            text,
        }
    }

    fn col<'a>(row: &'a BTreeMap<String, String>, c: &str) -> &'a str {
        row.get(c).map(String::as_str).unwrap_or("")
    }

    /// A finding at `key` (or below it), or an error naming it.
    fn names_key(&self, key: &str) -> bool {
        let below = format!("{key}/");
        self.findings.iter().any(|r| {
            let k = Self::col(r, "key");
            k == key || k.starts_with(&below)
        }) || self.text.contains(key)
    }

    /// A row naming `digest` (in `repo`, when given).
    fn names_digest(&self, repo: Option<&str>, digest: &str) -> bool {
        let in_repo =
            |r: &BTreeMap<String, String>| repo.is_none_or(|x| Self::col(r, "repository") == x);
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.missing.iter().any(|r| {
            in_repo(r)
                && (Self::col(r, "digest") == digest || Self::col(r, "manifest_digest") == digest)
        }) || self.dangling.iter().any(|r| {
            in_repo(r)
                && (Self::col(r, "child_digest") == digest
                    || Self::col(r, "index_digest") == digest)
        }) || self
            .broken
            .iter()
            .any(|r| in_repo(r) && Self::col(r, "digest") == digest)
            || self
                .findings
                .iter()
                .any(|r| in_repo(r) && Self::col(r, "key").contains(hex))
    }

    /// A broken.csv row for the tag, or a finding at its current link.
    fn names_tag(&self, repo: &str, tag: &str) -> bool {
        self.broken
            .iter()
            .any(|r| Self::col(r, "repository") == repo && Self::col(r, "tag") == tag)
            || self.names_key(&mutate::tag_key(repo, tag))
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle

/// What the report must say about one damage.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Nothing: the damage is no damage to a reachable manifest or link, or cannot be told
    /// from a legitimate state (a deleted tag, an untagged manifest deleted).
    Nothing,
    /// Named by key, whatever the exit code.
    Key,
    /// Named when the audit is complete.
    WhenComplete(Name),
    /// Named once a known gap of gc-audit is closed (see [`Gap`]; none is known now, the
    /// variant stays for the next one).
    #[allow(dead_code)]
    Gap(Gap),
}

/// Damage that gc-audit does not name yet: counted and printed by every run, checked like
/// [`Expect::Key`] when `GC_AUDIT_FUZZ_STRICT=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    // None known: a tag history link over 4096 bytes was the last (closed: it is a
    // `bad-link` finding like a smaller one).
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    Digest(Option<String>, String),
    Tag(String, String),
}

fn is_digest(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    gc_core::digest::Digest::parse(s)
        .ok()
        .map(|d| d.to_string())
}

/// The oracle for one damage (see the module doc), given what is still reached.
fn expectation(d: &Damage, known: &Known, reach: &Reach) -> Expect {
    match (&d.how, &d.target) {
        (How::Unreadable, _) => {
            // The key itself; what was below it is gone (and hidden by the incomplete audit).
            Expect::Key
        }
        (How::Added, _) => {
            // gc-audit lists `docker/registry/v2/` only: what lies beside it is not the
            // registry's.
            let listed = d.key.starts_with(gc_core::layout::ROOT);
            if listed && gc_core::layout::Key::parse(&d.key).is_err() {
                Expect::Key
            } else {
                Expect::Nothing
            }
        }
        (How::Changed { .. }, Target::Manifest { digest }) => {
            if reach.any(digest) {
                Expect::Key
            } else {
                Expect::Nothing
            }
        }
        (
            How::Changed { new_size },
            Target::LayerLink { digest, .. }
            | Target::RevisionLink { digest, .. }
            | Target::TagHistory { digest, .. },
        ) => {
            // Every link is read on the filesystem (SPEC §2), so a changed link is named
            // even when its size did not change.
            let _ = new_size; // any size: a link over 4096 bytes is a bad link too
            if d.content.as_deref() == Some(digest.as_bytes()) {
                Expect::Nothing
            } else {
                Expect::Key
            }
        }
        (How::Changed { .. }, Target::TagCurrent { repo, tag, .. }) => match &d.content {
            None => Expect::Key, // too large to hold a digest
            Some(bytes) => match is_digest(bytes) {
                None => Expect::Key,
                Some(digest) if known.manifests.contains(&digest) => Expect::Nothing,
                Some(_) => Expect::WhenComplete(Name::Tag(repo.clone(), tag.clone())),
            },
        },
        (How::Gone, Target::Manifest { digest } | Target::Blob { digest }) => {
            if reach.any(digest) {
                Expect::WhenComplete(Name::Digest(None, digest.clone()))
            } else {
                Expect::Nothing
            }
        }
        (How::Gone, Target::LayerLink { repo, digest }) => {
            if reach.in_repo(repo, digest) && !known.manifests.contains(digest) {
                Expect::WhenComplete(Name::Digest(Some(repo.clone()), digest.clone()))
            } else {
                Expect::Nothing
            }
        }
        (How::Gone, Target::RevisionLink { repo, digest }) => {
            if reach.in_repo(repo, digest) {
                Expect::WhenComplete(Name::Digest(Some(repo.clone()), digest.clone()))
            } else {
                Expect::Nothing
            }
        }
        _ => Expect::Nothing,
    }
}

/// Counts over a run of the fuzzer.
#[derive(Default)]
struct Stats {
    scan_codes: BTreeMap<String, u64>,
    plan_codes: BTreeMap<String, u64>,
    mutations: BTreeMap<String, u64>,
    checked_key: u64,
    checked_complete: u64,
    skipped_incomplete: u64,
    /// Per known gap: damages met, and how many of them were named all the same.
    gaps: BTreeMap<Gap, (u64, u64)>,
    slowest: Duration,
    /// Time spent in gc-audit runs.
    in_runs: Duration,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        for (k, v) in other.scan_codes {
            *self.scan_codes.entry(k).or_default() += v;
        }
        for (k, v) in other.plan_codes {
            *self.plan_codes.entry(k).or_default() += v;
        }
        for (k, v) in other.mutations {
            *self.mutations.entry(k).or_default() += v;
        }
        for (k, (met, named)) in other.gaps {
            let e = self.gaps.entry(k).or_default();
            e.0 += met;
            e.1 += named;
        }
        self.checked_key += other.checked_key;
        self.checked_complete += other.checked_complete;
        self.skipped_incomplete += other.skipped_incomplete;
        self.slowest = self.slowest.max(other.slowest);
        self.in_runs += other.in_runs;
    }
}

fn code_name(r: &Ran) -> String {
    match (r.timed_out, r.code) {
        (true, _) => "timeout".to_string(),
        (false, Some(c)) => c.to_string(),
        (false, None) => "signal".to_string(),
    }
}

/// Run one case; failures are appended to `failures`.
#[allow(clippy::too_many_arguments)]
fn run_case(
    seed: u64,
    case: u64,
    bases: &[Base],
    work: &Path,
    outside: &Path,
    strict: bool,
    stats: &mut Stats,
    failures: &mut Vec<String>,
) {
    let mut rng = fastrand::Rng::with_seed(seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let base = &bases[rng.usize(..bases.len())];
    let dir = tempfile::tempdir_in(work).expect("case dir");
    let root = dir.path().join("root");
    copy_root(&base.root, &root);
    let n = rng.usize(1..=3);
    let mut applied: Vec<Applied> = Vec::new();
    for _ in 0..n {
        match mutate::mutate(&mut rng, &root, &base.known, outside) {
            Ok(a) => applied.push(a),
            Err(e) => failures.push(format!("seed {seed:#x} case {case}: mutating: {e:#}")),
        }
    }
    for a in &applied {
        *stats
            .mutations
            .entry(format!("{:?}", a.mutation))
            .or_default() += 1;
    }
    let what = applied
        .iter()
        .map(|a| format!("{:?} at {} ({})", a.mutation, a.key, a.detail))
        .collect::<Vec<_>>()
        .join("; ");
    let tag = format!("seed {seed:#x} case {case} (base {}: {what})", base.name);

    let out = dir.path().join("out");
    let root_s = root.to_str().expect("utf-8 temp path");
    let out_s = out.to_str().expect("utf-8 temp path");
    let scan = run_gc_audit(
        &["scan", root_s, "--grace", "0s", "-q", "--out", out_s],
        dir.path(),
        "scan",
    );
    let plans = [
        run_gc_audit(
            &["gc-plan", root_s, "--model", "distribution-2.8", "-m", "-q"],
            dir.path(),
            "plan-2.8-m",
        ),
        run_gc_audit(
            &["gc-plan", root_s, "--model", "distribution-3", "-q"],
            dir.path(),
            "plan-3",
        ),
    ];
    *stats.scan_codes.entry(code_name(&scan)).or_default() += 1;
    for (ran, label, allowed) in [
        (&scan, "scan", &[0, 1, 2][..]),
        (&plans[0], "gc-plan distribution-2.8 -m", &[0, 1, 2, 3][..]),
        (&plans[1], "gc-plan distribution-3", &[0, 1, 2, 3][..]),
    ] {
        stats.slowest = stats.slowest.max(ran.elapsed);
        stats.in_runs += ran.elapsed;
        if label != "scan" {
            *stats.plan_codes.entry(code_name(ran)).or_default() += 1;
        }
        let panicked = ran.stderr.contains("panicked") || ran.code == Some(101);
        if ran.timed_out {
            failures.push(format!(
                "{tag}: {label} ran over {RUN_TIMEOUT:?} and was killed"
            ));
        } else if panicked {
            failures.push(format!("{tag}: {label} panicked:\n{}", ran.stderr));
        } else if !ran.code.is_some_and(|c| allowed.contains(&c)) {
            failures.push(format!(
                "{tag}: {label} exit {:?}, not one of {allowed:?}\nstdout:\n{}\nstderr:\n{}",
                ran.code, ran.stdout, ran.stderr
            ));
        }
    }
    if std::env::var("GC_AUDIT_FUZZ_VERBOSE").is_ok_and(|v| v == "1") {
        let errors: Vec<&str> = scan
            .stdout
            .lines()
            .chain(scan.stderr.lines())
            .filter(|l| l.contains("error") || l.contains("incomplete"))
            .take(3)
            .collect();
        eprintln!(
            "{tag}: scan {} gc-plan {} {}\n  {}",
            code_name(&scan),
            code_name(&plans[0]),
            code_name(&plans[1]),
            errors.join("\n  ")
        );
    }
    if scan.timed_out || scan.code.is_none() {
        return;
    }

    // The oracle.
    let outputs = Outputs::read(&out, &scan);
    let complete = matches!(scan.code, Some(0 | 1));
    let damaged: Vec<&str> = applied
        .iter()
        .flat_map(|a| a.damage.iter())
        .filter(|d| d.how != How::Added)
        .map(|d| d.key.as_str())
        .collect();
    let below = |key: &str, of: &str| key == of || key.starts_with(&format!("{of}/"));
    let reach = base
        .known
        .reach(&|k: &str| damaged.iter().any(|d| below(k, d)));
    for (i, a) in applied.iter().enumerate() {
        for d in &a.damage {
            // Another mutation of the case damaged this key or a directory above it.
            let overridden = applied
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, b)| b.damage.iter())
                .any(|o| below(&d.key, &o.key));
            if overridden {
                continue;
            }
            let expect = match expectation(d, &base.known, &reach) {
                Expect::Gap(_) if strict => Expect::Key,
                other => other,
            };
            let (named, why) = match &expect {
                Expect::Nothing => continue,
                Expect::Gap(gap) => {
                    let counts = stats.gaps.entry(*gap).or_default();
                    counts.0 += 1;
                    if outputs.names_key(&d.key) {
                        counts.1 += 1;
                    }
                    continue;
                }
                Expect::Key => {
                    stats.checked_key += 1;
                    (
                        outputs.names_key(&d.key),
                        "by its key in findings.csv or the errors",
                    )
                }
                Expect::WhenComplete(_) if !complete => {
                    stats.skipped_incomplete += 1;
                    continue;
                }
                Expect::WhenComplete(name) => {
                    stats.checked_complete += 1;
                    let named = outputs.names_key(&d.key)
                        || match name {
                            Name::Digest(repo, digest) => {
                                outputs.names_digest(repo.as_deref(), digest)
                            }
                            Name::Tag(repo, t) => outputs.names_tag(repo, t),
                        };
                    (named, "in missing/dangling/broken.csv or findings.csv")
                }
            };
            if !named {
                failures.push(format!(
                    "{tag}: {:?} {:?} at {} is not named {why} (scan exit {:?}, expected {expect:?})\nfindings.csv:\n{}\nmissing.csv:\n{}\nbroken.csv:\n{}\nstdout:\n{}",
                    d.how,
                    d.target,
                    d.key,
                    scan.code,
                    std::fs::read_to_string(out.join("findings.csv")).unwrap_or_default(),
                    std::fs::read_to_string(out.join("missing.csv")).unwrap_or_default(),
                    std::fs::read_to_string(out.join("broken.csv")).unwrap_or_default(),
                    scan.stdout,
                ));
            }
        }
    }
}

#[test]
fn fuzz_real_registry_trees() {
    let seed = env_u64("GC_AUDIT_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("GC_AUDIT_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let only = env_u64("GC_AUDIT_FUZZ_CASE");
    let strict = std::env::var("GC_AUDIT_FUZZ_STRICT").is_ok_and(|v| v == "1");
    // Each case writes and removes a tree: in memory where the machine has a tmpfs, since on
    // a busy disk removing a few hundred files costs more than the case's three runs.
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir())
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let started = Instant::now();
    let bases = bases(&tmp.path().join("bases"));
    let built = started.elapsed();
    // What links out of a tree may point at: a directory with a file, outside every root.
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("data"), b"outside the root").expect("write");
    let work = tmp.path().join("cases");
    std::fs::create_dir_all(&work).expect("mkdir");

    let range = match only {
        Some(c) => c..c + 1,
        None => 0..cases,
    };
    let ran = range.end - range.start;
    // Cases are independent: one worker per core (at most 4), each taking every n-th case.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4) as u64;
    let mut stats = Stats::default();
    let mut failures = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (bases, work, outside) = (&bases, &work, &outside);
                let range = range.clone();
                scope.spawn(move || {
                    let mut stats = Stats::default();
                    let mut failures = Vec::new();
                    for case in range.skip(w as usize).step_by(workers as usize) {
                        run_case(
                            seed,
                            case,
                            bases,
                            work,
                            outside,
                            strict,
                            &mut stats,
                            &mut failures,
                        );
                    }
                    (stats, failures)
                })
            })
            .collect();
        for h in handles {
            let (s, f) = h.join().expect("a fuzzer worker panicked");
            stats.merge(s);
            failures.extend(f);
        }
    });
    let elapsed = started.elapsed();
    eprintln!(
        "fuzz_trees: seed {seed:#x}, {ran} cases in {elapsed:.1?} (bases built in {built:.1?}); \
         {:.1?} in gc-audit runs over {workers} workers, slowest run {:.1?}\n  scan exit codes {:?}\n  gc-plan exit codes {:?}\n  \
         damages checked by key {}, checked on a complete audit {}, not checked (audit \
         incomplete) {}\n  known gaps (met, named anyway; checked with GC_AUDIT_FUZZ_STRICT=1): \
         {:?}\n  mutations {:?}\n  failures {}",
        stats.in_runs,
        stats.slowest,
        stats.scan_codes,
        stats.plan_codes,
        stats.checked_key,
        stats.checked_complete,
        stats.skipped_incomplete,
        stats.gaps,
        stats.mutations,
        failures.len()
    );
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(10).collect();
        panic!(
            "{} failure(s) (first {} below; rerun one with GC_AUDIT_FUZZ_SEED={seed:#x} \
             GC_AUDIT_FUZZ_CASE=<case>):\n\n{}",
            failures.len(),
            shown.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n\n")
        );
    }
}
