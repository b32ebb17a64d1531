//! The live-registry harness (issue 15): the real registry (distribution 2.8.2, filesystem or
//! `s3` driver) pushed to continuously through its HTTP API while `gc-audit scan` runs back to
//! back, and the checks every such scan must pass, since the registry stays healthy throughout.
//!
//! A listing is not a snapshot (SPEC §3 "A live registry"): pushes land while a scan lists and
//! reads, and a scan that takes what it listed for the truth reports references to blobs written
//! after their prefix was listed as missing, and blobs adopted by an in-flight push (a mount, a
//! re-upload of a layer an interrupted push left) as reclaimable. This module owns:
//! - the pusher: a few threads with seeded RNGs pushing, until told to stop, new single-arch
//!   images (docker schema2 and OCI), multi-arch indexes (children by digest first, then the
//!   index by tag), tag moves, cross-repository mounts of old blobs, blobs staged by an
//!   abandoned push and later adopted (re-uploaded or mounted), uploads left unfinished, and
//!   chunked uploads; never a delete. Every manifest PUT is journalled with its wall-clock
//!   start and completion and what it references;
//! - the scanner: `gc-audit scan <LOCATION> --out DIR -q` back to back, with the default grace;
//! - the checks per scan ([`check_scan`]): exit 0, no missing, dangling or broken rows, and no
//!   orphaned row for a blob referenced before `as_of` (by any manifest: `gc`; by a tag's target
//!   at `as_of`: `gc-delete-untagged`), skipping tags moved across `as_of`;
//! - the health check at the end: every journalled manifest, tag and blob pulls through the API.
//!
//! `tests/live_registry.rs` runs it briefly on both drivers in CI; the `live-soak` binary runs it
//! for as long as asked.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context as _, Result};
use s3_mem_server::S3MemServer;
use tempfile::TempDir;

use crate::image::{Blob, Format, Image, Manifest, MultiArch, Platform};
use crate::push::{Client, ACCEPT_ALL_MANIFESTS};
use crate::registry::{Registry, S3Backend};

/// The repositories pushed to (split between the pusher threads; mounts cross threads).
pub const REPOSITORIES: [&str; 6] = [
    "library/app",
    "team/app/api",
    "web",
    "tools/builder",
    "edge",
    "data/etl",
];

/// Bucket of the s3-mem-server the `s3` registry writes to.
pub const BUCKET: &str = "live";

/// `rootdirectory` of the `s3` registry inside [`BUCKET`].
pub const S3_ROOT: &str = "registry";

/// A request that started this close after `as_of` (which has millisecond precision, truncated)
/// may still have landed before it: such a tag move is ambiguous.
const AMBIGUITY_MARGIN: Duration = Duration::from_millis(2);

/// A blob counts as old (for mounts and adoptions) once it is this old.
const OLD: Duration = Duration::from_secs(1);

/// Largest number of push errors kept verbatim.
const KEPT_ERRORS: usize = 20;

/// Which storage driver the registry runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// `filesystem` under a temporary directory.
    Filesystem,
    /// `s3` against an in-process s3-mem-server.
    S3,
}

impl Driver {
    /// `filesystem` or `s3`.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Filesystem => "filesystem",
            Driver::S3 => "s3",
        }
    }
}

/// How a live run is set up.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Storage driver of the registry.
    pub driver: Driver,
    /// How long to push and scan (the last scan started before it ends is completed).
    pub duration: Duration,
    /// Seed of the pushers' RNGs (pusher `i` uses `seed + i`).
    pub seed: u64,
    /// Number of pusher threads.
    pub pushers: usize,
    /// Pause of a pusher between two operations.
    pub pause: Duration,
    /// The `gc-audit` binary.
    pub gc_audit: PathBuf,
    /// A scan running longer than this is killed and counted as failed.
    pub scan_timeout: Duration,
}

impl LiveOptions {
    /// Defaults: 45 s, seed 1, 2 pushers, 20 ms pause, 5 min scan timeout.
    pub fn new(driver: Driver, gc_audit: impl Into<PathBuf>) -> LiveOptions {
        LiveOptions {
            driver,
            duration: Duration::from_secs(45),
            seed: 1,
            pushers: 2,
            pause: Duration::from_millis(20),
            gc_audit: gc_audit.into(),
            scan_timeout: Duration::from_secs(300),
        }
    }
}

/// What a pusher operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PushKind {
    /// A new single-arch image (docker schema2 or OCI), tagged or by digest.
    Image,
    /// A multi-arch index (manifest list or OCI index): children by digest, then the index.
    Index,
    /// An existing tag put on another manifest of its repository.
    TagMove,
    /// A new image whose layer is an old blob mounted from another repository.
    Mount,
    /// Blobs uploaded in full but never referenced (a push interrupted before its manifest).
    Stage,
    /// An upload started, sent in part and left (a push interrupted mid-blob).
    Abandon,
    /// A new image adopting an old staged or abandoned blob: uploaded again, or mounted.
    Adopt,
    /// A new image whose blobs go up in chunks (PATCH per chunk, then PUT).
    Chunked,
}

impl PushKind {
    /// Every kind, in table order.
    pub const ALL: [PushKind; 8] = [
        PushKind::Image,
        PushKind::Index,
        PushKind::TagMove,
        PushKind::Mount,
        PushKind::Stage,
        PushKind::Abandon,
        PushKind::Adopt,
        PushKind::Chunked,
    ];

    /// Short name used in tables and messages.
    pub fn name(self) -> &'static str {
        match self {
            PushKind::Image => "image",
            PushKind::Index => "index",
            PushKind::TagMove => "tag-move",
            PushKind::Mount => "mount",
            PushKind::Stage => "stage",
            PushKind::Abandon => "abandon",
            PushKind::Adopt => "adopt",
            PushKind::Chunked => "chunked",
        }
    }

    fn weight(self) -> u32 {
        match self {
            PushKind::Image => 16,
            PushKind::Index => 14,
            PushKind::TagMove => 14,
            PushKind::Mount => 14,
            PushKind::Stage => 10,
            PushKind::Abandon => 5,
            PushKind::Adopt => 17,
            PushKind::Chunked => 10,
        }
    }
}

/// One manifest PUT that succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestPut {
    /// The operation it was part of.
    pub kind: PushKind,
    /// Repository.
    pub repo: String,
    /// Manifest digest.
    pub digest: String,
    /// The tag it was put under (None: by digest).
    pub tag: Option<String>,
    /// Config and layer blobs it references.
    pub blobs: Vec<String>,
    /// Child manifests it references (an index).
    pub children: Vec<String>,
    /// Just before the request was sent.
    pub started: SystemTime,
    /// Just after the 201 arrived.
    pub completed: SystemTime,
}

/// One blob write that succeeded (upload completed, or mount).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobWrite {
    /// The operation it was part of.
    pub kind: PushKind,
    /// `upload`, `chunked`, `mount from <repo>`, `re-upload`.
    pub how: String,
    /// Repository it was written into.
    pub repo: String,
    /// Blob digest.
    pub digest: String,
    /// Just after the registry answered.
    pub completed: SystemTime,
}

/// Everything the pushers did.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    /// Every manifest PUT, in completion order per pusher.
    pub manifests: Vec<ManifestPut>,
    /// Every blob written.
    pub blob_writes: Vec<BlobWrite>,
    /// Operations completed, by kind.
    pub operations: BTreeMap<PushKind, u64>,
    /// Uploads left unfinished.
    pub abandoned_uploads: u64,
    /// Operations that failed (the first [`KEPT_ERRORS`] messages).
    pub errors: Vec<String>,
    /// Number of operations that failed.
    pub error_count: u64,
}

impl Journal {
    /// The journal entries that mention `digest`, with times relative to `t0`, for messages.
    pub fn describe(&self, digest: &str, t0: SystemTime) -> String {
        let mut parts = Vec::new();
        for w in self
            .blob_writes
            .iter()
            .filter(|w| w.digest == digest)
            .take(3)
        {
            parts.push(format!(
                "{} into {} ({}) at {}",
                w.how,
                w.repo,
                w.kind.name(),
                relative(w.completed, t0)
            ));
        }
        for m in self
            .manifests
            .iter()
            .filter(|m| {
                m.digest == digest
                    || m.blobs.iter().any(|b| b == digest)
                    || m.children.iter().any(|c| c == digest)
            })
            .take(3)
        {
            let role = if m.digest == digest {
                "put as"
            } else {
                "referenced by"
            };
            parts.push(format!(
                "{role} {}@{}{} ({}) PUT {}..{}",
                m.repo,
                short(&m.digest),
                m.tag
                    .as_ref()
                    .map(|t| format!(" tag {t}"))
                    .unwrap_or_default(),
                m.kind.name(),
                relative(m.started, t0),
                relative(m.completed, t0)
            ));
        }
        if parts.is_empty() {
            "not in the pusher's journal".to_string()
        } else {
            parts.join("; ")
        }
    }
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// `t` as signed seconds after `t0` (`+1.234s`, `-0.010s`).
fn relative(t: SystemTime, t0: SystemTime) -> String {
    match t.duration_since(t0) {
        Ok(d) => format!("+{:.3}s", d.as_secs_f64()),
        Err(e) => format!("-{:.3}s", e.duration().as_secs_f64()),
    }
}

/// A blob some repository has, for later mounts and adoptions.
#[derive(Clone, Debug)]
struct PoolBlob {
    repo: String,
    bytes: Vec<u8>,
    digest: String,
    at: Instant,
}

#[derive(Debug, Default)]
struct Pool {
    /// Referenced by a manifest of `repo` (linked there).
    linked: Vec<PoolBlob>,
    /// Uploaded in full to `repo`, never referenced by the push that uploaded it.
    staged: Vec<PoolBlob>,
    /// Uploads of these bytes were left unfinished in `repo`.
    interrupted: Vec<PoolBlob>,
}

struct Shared {
    journal: Mutex<Journal>,
    pool: Mutex<Pool>,
    /// Per pusher: start of the operation in progress (everything that started earlier is in
    /// the journal); None once it stopped.
    progress: Mutex<Vec<Option<SystemTime>>>,
    stop: AtomicBool,
    /// Pushers done with [`Pusher::seed_repository`].
    seeded: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Every operation that started before this instant is in the journal.
    fn watermark(&self) -> Option<SystemTime> {
        lock(&self.progress).iter().flatten().min().copied()
    }

    fn all_stopped(&self) -> bool {
        lock(&self.progress).iter().all(Option::is_none)
    }
}

/// Sets the stop flag when dropped, so pushers end however the scanner loop ends.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// How a blob goes up.
#[derive(Clone, Debug)]
enum Upload {
    Monolithic,
    Chunked,
    Mount(String),
    /// Already linked in the repository (a client's HEAD finds it and skips the upload).
    Present,
}

/// One pusher thread's state.
struct Pusher<'a> {
    index: usize,
    client: Client,
    rng: fastrand::Rng,
    repos: Vec<String>,
    /// Per repository: tag → current target.
    tags: BTreeMap<String, BTreeMap<String, String>>,
    /// Per repository: manifests pushed (to move tags onto).
    manifests: BTreeMap<String, Vec<Manifest>>,
    counter: u64,
    seed: u64,
    shared: &'a Shared,
}

const PLATFORMS: [(&str, &str, Option<&str>); 4] = [
    ("linux", "amd64", None),
    ("linux", "arm64", Some("v8")),
    ("linux", "arm", Some("v7")),
    ("linux", "s390x", None),
];

impl<'a> Pusher<'a> {
    fn run(&mut self, pause: Duration) {
        // One tagged image per repository before the first scan: an empty root is not a
        // registry to gc-audit (exit 2).
        lock(&self.shared.progress)[self.index] = Some(SystemTime::now());
        for repo in self.repos.clone() {
            if let Err(e) = self.seed_repository(&repo) {
                self.failed(PushKind::Image, e);
            }
        }
        self.shared.seeded.fetch_add(1, Ordering::SeqCst);
        while !self.shared.stop.load(Ordering::SeqCst) {
            lock(&self.shared.progress)[self.index] = Some(SystemTime::now());
            let kind = self.pick_kind();
            match self.operation(kind) {
                Ok(done) => {
                    *lock(&self.shared.journal)
                        .operations
                        .entry(done)
                        .or_default() += 1
                }
                Err(e) => self.failed(kind, e),
            }
            std::thread::sleep(pause);
        }
        lock(&self.shared.progress)[self.index] = None;
    }

    fn failed(&self, kind: PushKind, e: anyhow::Error) {
        let mut j = lock(&self.shared.journal);
        j.error_count += 1;
        if j.errors.len() < KEPT_ERRORS {
            j.errors
                .push(format!("pusher {} {}: {e:#}", self.index, kind.name()));
        }
    }

    fn seed_repository(&mut self, repo: &str) -> Result<()> {
        let format = self.format();
        let image = self.new_image(format, Platform::linux_amd64(), &[])?;
        self.push_image(
            PushKind::Image,
            repo,
            &image,
            Some("seed"),
            &Upload::Monolithic,
            &HashMap::new(),
        )
    }

    fn pick_kind(&mut self) -> PushKind {
        let total: u32 = PushKind::ALL.iter().map(|k| k.weight()).sum();
        let mut n = self.rng.u32(0..total);
        for k in PushKind::ALL {
            if n < k.weight() {
                return k;
            }
            n -= k.weight();
        }
        PushKind::Image
    }

    fn next_seed(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("live-{}-p{}-{}-{what}", self.seed, self.index, self.counter)
    }

    fn own_repo(&mut self) -> String {
        let i = self.rng.usize(0..self.repos.len());
        self.repos[i].clone()
    }

    fn format(&mut self) -> Format {
        if self.rng.bool() {
            Format::Docker
        } else {
            Format::Oci
        }
    }

    /// A tag for a new manifest: mostly a new one, sometimes an existing one (a tag move by
    /// push), sometimes none (pushed by digest).
    fn tag_for_push(&mut self, repo: &str) -> Option<String> {
        let roll = self.rng.u32(0..100);
        if roll < 10 {
            return None;
        }
        let existing: Vec<String> = self
            .tags
            .get(repo)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        if roll < 35 && !existing.is_empty() {
            return Some(existing[self.rng.usize(0..existing.len())].clone());
        }
        self.counter += 1;
        Some(format!("v{}-{}", self.index, self.counter))
    }

    fn operation(&mut self, kind: PushKind) -> Result<PushKind> {
        match kind {
            PushKind::Image => self.push_new_image(PushKind::Image, Upload::Monolithic),
            PushKind::Chunked => self.push_new_image(PushKind::Chunked, Upload::Chunked),
            PushKind::Index => self.push_index(),
            PushKind::TagMove => self.move_tag(),
            PushKind::Mount => self.mount_old_blob(),
            PushKind::Stage => self.stage_blobs(),
            PushKind::Abandon => self.abandon_upload(),
            PushKind::Adopt => self.adopt_staged(),
        }
    }

    fn upload(&mut self, kind: PushKind, repo: &str, blob: &Blob, how: &Upload) -> Result<()> {
        let name = match how {
            Upload::Monolithic => {
                self.client.push_blob(repo, &blob.bytes)?;
                "upload".to_string()
            }
            Upload::Chunked => {
                let chunk = self.rng.usize(300..900);
                self.client.push_blob_chunked(repo, &blob.bytes, chunk)?;
                "chunked upload".to_string()
            }
            Upload::Mount(from) => {
                self.client.mount_blob(repo, from, &blob.digest)?;
                format!("mount from {from}")
            }
            Upload::Present => return Ok(()),
        };
        lock(&self.shared.journal).blob_writes.push(BlobWrite {
            kind,
            how: name,
            repo: repo.to_string(),
            digest: blob.digest.clone(),
            completed: SystemTime::now(),
        });
        Ok(())
    }

    /// PUT a manifest, journal it, remember it for tag moves.
    fn put(
        &mut self,
        kind: PushKind,
        repo: &str,
        manifest: &Manifest,
        tag: Option<&str>,
        blobs: Vec<String>,
        children: Vec<String>,
    ) -> Result<()> {
        let started = SystemTime::now();
        self.client.put_manifest(repo, manifest, tag)?;
        let completed = SystemTime::now();
        lock(&self.shared.journal).manifests.push(ManifestPut {
            kind,
            repo: repo.to_string(),
            digest: manifest.digest.clone(),
            tag: tag.map(str::to_string),
            blobs,
            children,
            started,
            completed,
        });
        if let Some(t) = tag {
            self.tags
                .entry(repo.to_string())
                .or_default()
                .insert(t.to_string(), manifest.digest.clone());
        }
        let known = self.manifests.entry(repo.to_string()).or_default();
        if !known.iter().any(|m| m.digest == manifest.digest) {
            known.push(manifest.clone());
        }
        Ok(())
    }

    /// Upload an image's blobs (`how` for each blob not listed in `special`), then put its
    /// manifest; the referenced blobs join the pool.
    fn push_image(
        &mut self,
        kind: PushKind,
        repo: &str,
        image: &Image,
        tag: Option<&str>,
        how: &Upload,
        special: &HashMap<String, Upload>,
    ) -> Result<()> {
        for blob in image.blobs() {
            let way = special.get(&blob.digest).unwrap_or(how).clone();
            self.upload(kind, repo, blob, &way)?;
        }
        let blobs = image.blobs().iter().map(|b| b.digest.clone()).collect();
        self.put(kind, repo, &image.manifest, tag, blobs, Vec::new())?;
        let now = Instant::now();
        let mut pool = lock(&self.shared.pool);
        for layer in &image.layers {
            pool.linked.push(PoolBlob {
                repo: repo.to_string(),
                bytes: layer.bytes.clone(),
                digest: layer.digest.clone(),
                at: now,
            });
        }
        Ok(())
    }

    fn new_image(&mut self, format: Format, platform: Platform, layers: &[Blob]) -> Result<Image> {
        let seed = self.next_seed("image");
        let mut b = Image::builder(format, &seed, platform);
        for l in layers {
            b = b.layer(Blob::new(format.layer_type(), l.bytes.clone()));
        }
        let unique = if layers.is_empty() {
            self.rng.usize(1..=3)
        } else {
            self.rng.usize(0..=1)
        };
        b.unique_layers(unique).build()
    }

    fn push_new_image(&mut self, kind: PushKind, how: Upload) -> Result<PushKind> {
        let repo = self.own_repo();
        let format = self.format();
        let image = self.new_image(format, Platform::linux_amd64(), &[])?;
        let tag = self.tag_for_push(&repo);
        self.push_image(kind, &repo, &image, tag.as_deref(), &how, &HashMap::new())?;
        Ok(kind)
    }

    fn push_index(&mut self) -> Result<PushKind> {
        let repo = self.own_repo();
        let format = self.format();
        let count = self.rng.usize(2..=3);
        let first = self.rng.usize(0..PLATFORMS.len());
        // Half the indexes share a base layer between their children: new, or an old one of
        // this repository (already linked: a client's HEAD finds it and skips the upload).
        let base = match self.rng.u32(0..4) {
            0 => Some((
                Blob::layer(format, &self.next_seed("base")),
                Upload::Monolithic,
            )),
            1 => self
                .pick_pooled(|p| &p.linked, Some(&repo), true)
                .map(|p| (Blob::new(format.layer_type(), p.bytes), Upload::Present)),
            _ => None,
        };
        let mut special = HashMap::new();
        let mut entries = MultiArch::builder(format);
        let mut children = Vec::new();
        for i in 0..count {
            let (os, arch, variant) = PLATFORMS[(first + i) % PLATFORMS.len()];
            let platform = match variant {
                Some(v) => Platform::with_variant(os, arch, v),
                None => Platform::new(os, arch),
            };
            let layers: Vec<Blob> = base.iter().map(|(b, _)| b.clone()).collect();
            let image = self.new_image(format, platform, &layers)?;
            entries = entries.image(image.clone());
            children.push(image);
        }
        let multi = entries.build()?;
        for (i, child) in children.iter().enumerate() {
            if let Some((b, how)) = &base {
                // The shared base goes up once, with the first child.
                let way = if i == 0 { how.clone() } else { Upload::Present };
                special.insert(b.digest.clone(), way);
            }
            self.push_image(
                PushKind::Index,
                &repo,
                child,
                None,
                &Upload::Monolithic,
                &special,
            )?;
        }
        let tag = self
            .tag_for_push(&repo)
            .unwrap_or_else(|| "multi".to_string());
        let child_digests = children.iter().map(|c| c.manifest.digest.clone()).collect();
        self.put(
            PushKind::Index,
            &repo,
            &multi.index,
            Some(&tag),
            Vec::new(),
            child_digests,
        )?;
        Ok(PushKind::Index)
    }

    fn move_tag(&mut self) -> Result<PushKind> {
        let repo = self.own_repo();
        let tags: Vec<(String, String)> = self
            .tags
            .get(&repo)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let manifests = self.manifests.get(&repo).cloned().unwrap_or_default();
        if tags.is_empty() || manifests.len() < 2 {
            return self.push_new_image(PushKind::Image, Upload::Monolithic);
        }
        let (tag, current) = tags[self.rng.usize(0..tags.len())].clone();
        let others: Vec<&Manifest> = manifests.iter().filter(|m| m.digest != current).collect();
        let target = others[self.rng.usize(0..others.len())].clone();
        let put = lock(&self.shared.journal)
            .manifests
            .iter()
            .find(|m| m.repo == repo && m.digest == target.digest)
            .map(|m| (m.blobs.clone(), m.children.clone()));
        let (blobs, children) = put.unwrap_or_default();
        self.put(
            PushKind::TagMove,
            &repo,
            &target,
            Some(&tag),
            blobs,
            children,
        )?;
        Ok(PushKind::TagMove)
    }

    /// An old blob from the pool, preferring the older half; `repo` limits it to one
    /// repository (`same`) or to the others (`!same`).
    fn pick_pooled(
        &mut self,
        which: fn(&Pool) -> &Vec<PoolBlob>,
        repo: Option<&str>,
        same: bool,
    ) -> Option<PoolBlob> {
        let pool = lock(&self.shared.pool);
        let candidates: Vec<&PoolBlob> = which(&pool)
            .iter()
            .filter(|p| p.at.elapsed() >= OLD)
            .filter(|p| repo.is_none_or(|r| (p.repo == r) == same))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let half = candidates.len().div_ceil(2);
        Some(candidates[self.rng.usize(0..half)].clone())
    }

    fn mount_old_blob(&mut self) -> Result<PushKind> {
        let repo = self.own_repo();
        let Some(old) = self.pick_pooled(|p| &p.linked, Some(&repo), false) else {
            return self.push_new_image(PushKind::Image, Upload::Monolithic);
        };
        let format = self.format();
        let layer = Blob::new(format.layer_type(), old.bytes.clone());
        let image = self.new_image(format, Platform::linux_amd64(), &[layer])?;
        let special = HashMap::from([(old.digest.clone(), Upload::Mount(old.repo.clone()))]);
        let tag = self.tag_for_push(&repo);
        self.push_image(
            PushKind::Mount,
            &repo,
            &image,
            tag.as_deref(),
            &Upload::Monolithic,
            &special,
        )?;
        Ok(PushKind::Mount)
    }

    fn stage_blobs(&mut self) -> Result<PushKind> {
        let repo = self.own_repo();
        let how = if self.rng.bool() {
            Upload::Chunked
        } else {
            Upload::Monolithic
        };
        for _ in 0..self.rng.usize(1..=2) {
            let blob = Blob::layer(Format::Oci, &self.next_seed("staged"));
            self.upload(PushKind::Stage, &repo, &blob, &how)?;
            lock(&self.shared.pool).staged.push(PoolBlob {
                repo: repo.clone(),
                bytes: blob.bytes,
                digest: blob.digest,
                at: Instant::now(),
            });
        }
        Ok(PushKind::Stage)
    }

    fn abandon_upload(&mut self) -> Result<PushKind> {
        let repo = self.own_repo();
        let blob = Blob::layer(Format::Oci, &self.next_seed("interrupted"));
        self.client
            .abandon_upload(&repo, &blob.bytes, blob.bytes.len() / 2)?;
        let mut j = lock(&self.shared.journal);
        j.abandoned_uploads += 1;
        drop(j);
        lock(&self.shared.pool).interrupted.push(PoolBlob {
            repo,
            bytes: blob.bytes,
            digest: blob.digest,
            at: Instant::now(),
        });
        Ok(PushKind::Abandon)
    }

    /// A new image using an old staged blob (uploaded again, or mounted from the repository it
    /// was staged in) or the bytes of an abandoned upload (uploaded from scratch).
    fn adopt_staged(&mut self) -> Result<PushKind> {
        let repo = self.own_repo();
        let from_staged = self.rng.u32(0..10) < 7;
        let picked = if from_staged {
            self.pick_pooled(|p| &p.staged, None, true)
                .map(|p| (p, true))
                .or_else(|| {
                    self.pick_pooled(|p| &p.interrupted, None, true)
                        .map(|p| (p, false))
                })
        } else {
            self.pick_pooled(|p| &p.interrupted, None, true)
                .map(|p| (p, false))
                .or_else(|| {
                    self.pick_pooled(|p| &p.staged, None, true)
                        .map(|p| (p, true))
                })
        };
        let Some((old, staged)) = picked else {
            return self.push_new_image(PushKind::Image, Upload::Monolithic);
        };
        let way = if staged && old.repo != repo && self.rng.bool() {
            Upload::Mount(old.repo.clone())
        } else if self.rng.bool() {
            Upload::Chunked
        } else {
            Upload::Monolithic
        };
        let format = self.format();
        let layer = Blob::new(format.layer_type(), old.bytes.clone());
        let image = self.new_image(format, Platform::linux_amd64(), &[layer])?;
        let special = HashMap::from([(old.digest.clone(), way)]);
        let tag = self.tag_for_push(&repo);
        self.push_image(
            PushKind::Adopt,
            &repo,
            &image,
            tag.as_deref(),
            &Upload::Monolithic,
            &special,
        )?;
        Ok(PushKind::Adopt)
    }
}

/// One orphaned.csv row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrphanRow {
    /// `digest`.
    pub digest: String,
    /// `reclaimable_by`: `gc` or `gc-delete-untagged`.
    pub reclaimable_by: String,
    /// `young`.
    pub young: String,
    /// The whole row as written.
    pub line: String,
}

/// One row of missing.csv, dangling.csv or broken.csv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrityRow {
    /// The digest the row is about (`digest`, or `child_digest` in dangling.csv).
    pub digest: String,
    /// The whole row as written.
    pub line: String,
}

/// One `gc-audit scan` while the pushers ran, and what the checks found in it.
#[derive(Clone, Debug, Default)]
pub struct ScanOutcome {
    /// 1-based.
    pub number: usize,
    /// Exit status (None: killed after the timeout, or by a signal).
    pub exit_code: Option<i32>,
    /// Just before the process was spawned.
    pub started: Option<SystemTime>,
    /// Just after it exited.
    pub finished: Option<SystemTime>,
    /// summary.json `as_of`.
    pub as_of: Option<String>,
    /// summary.json `started_at`.
    pub started_at: Option<String>,
    /// summary.json `writes_during_scan`.
    pub writes_during_scan: Option<u64>,
    /// summary.json `complete`.
    pub complete: Option<bool>,
    /// missing.csv rows.
    pub missing: Vec<IntegrityRow>,
    /// dangling.csv rows.
    pub dangling: Vec<IntegrityRow>,
    /// broken.csv rows.
    pub broken: Vec<IntegrityRow>,
    /// orphaned.csv rows.
    pub orphaned: Vec<OrphanRow>,
    /// The end of stderr (and of stdout when the scan failed).
    pub output_tail: String,
    /// Problems reading the report itself.
    pub report_errors: Vec<String>,
    /// Everything the checks found wrong, one message each.
    pub violations: Vec<String>,
    /// Orphaned `gc` rows for blobs referenced by a manifest put before the cutoff.
    pub false_orphans_gc: usize,
    /// Orphaned `gc-delete-untagged` rows for blobs a tag held at the cutoff.
    pub false_orphans_untagged: usize,
    /// Not a failure, for the account: orphaned `gc` rows for blobs that a manifest put after
    /// the cutoff but before the scan exited references (adopted while the scan ran).
    pub adopted_during_scan: usize,
    /// Tags not checked because a move of theirs crossed the cutoff.
    pub ambiguous_tags: usize,
    /// What the orphan checks took as the scan's instant: `as_of` or `started_at`.
    pub cutoff_source: String,
}

impl ScanOutcome {
    /// Rows in missing, dangling and broken.
    pub fn integrity_rows(&self) -> usize {
        self.missing.len() + self.dangling.len() + self.broken.len()
    }

    /// One line for a log.
    pub fn line(&self) -> String {
        let secs = match (self.started, self.finished) {
            (Some(s), Some(f)) => f.duration_since(s).map(|d| d.as_secs_f64()).unwrap_or(0.0),
            _ => 0.0,
        };
        let gc = self
            .orphaned
            .iter()
            .filter(|o| o.reclaimable_by == "gc")
            .count();
        format!(
            "scan {:>3}: exit {} in {secs:.1}s, as_of {}, writes_during_scan {}, missing {} dangling {} broken {}, orphaned {} (gc {}, untagged {}), false orphans {} gc + {} untagged, ambiguous tags {}, adopted during scan {} — {}",
            self.number,
            self.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "none".into()),
            self.as_of.as_deref().unwrap_or("absent"),
            self.writes_during_scan.map(|w| w.to_string()).unwrap_or_else(|| "absent".into()),
            self.missing.len(),
            self.dangling.len(),
            self.broken.len(),
            self.orphaned.len(),
            gc,
            self.orphaned.len() - gc,
            self.false_orphans_gc,
            self.false_orphans_untagged,
            self.ambiguous_tags,
            self.adopted_during_scan,
            if self.violations.is_empty() { "ok" } else { "FAILED" },
        )
    }
}

/// What [`check_health`] pulled through the API at the end.
#[derive(Clone, Debug, Default)]
pub struct Health {
    /// Manifests fetched by digest.
    pub manifests: usize,
    /// Blobs (and child manifests) checked with HEAD.
    pub blobs: usize,
    /// Tags fetched.
    pub tags: usize,
    /// What did not pull.
    pub failures: Vec<String>,
}

/// A whole live run.
#[derive(Clone, Debug)]
pub struct LiveReport {
    /// Driver.
    pub driver: Driver,
    /// Seed.
    pub seed: u64,
    /// How long the pushers ran.
    pub pushed_for: Duration,
    /// Every scan, checked.
    pub scans: Vec<ScanOutcome>,
    /// What the pushers did.
    pub journal: Journal,
    /// The final pull of everything.
    pub health: Health,
    /// Keys in the storage at the end.
    pub keys_at_end: usize,
}

impl LiveReport {
    /// Every failed check, one message each (empty: the run passed).
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.scans.is_empty() {
            out.push("no scan completed".to_string());
        }
        for s in &self.scans {
            out.extend(s.violations.iter().cloned());
        }
        if self.journal.error_count > 0 {
            out.push(format!(
                "{} push operations failed (the registry must stay healthy): {}",
                self.journal.error_count,
                self.journal.errors.join(" | ")
            ));
        }
        out.extend(
            self.health
                .failures
                .iter()
                .map(|f| format!("registry health: {f}")),
        );
        out
    }

    /// The count table: scans, pushes by kind, findings, exit codes.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let j = &self.journal;
        let _ = writeln!(
            t,
            "live registry, {} driver, seed {}, {:.0}s of pushing, {} keys at the end",
            self.driver.name(),
            self.seed,
            self.pushed_for.as_secs_f64(),
            self.keys_at_end
        );
        let ops: Vec<String> = PushKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), j.operations.get(k).copied().unwrap_or(0)))
            .collect();
        let _ = writeln!(t, "  pushes        {}", ops.join(", "));
        let tagged = j.manifests.iter().filter(|m| m.tag.is_some()).count();
        let _ = writeln!(
            t,
            "  writes        {} manifest PUTs ({} by tag), {} blob writes, {} uploads abandoned, {} failed operations",
            j.manifests.len(),
            tagged,
            j.blob_writes.len(),
            j.abandoned_uploads,
            j.error_count
        );
        let mut exits: BTreeMap<String, usize> = BTreeMap::new();
        for s in &self.scans {
            let code = s.exit_code.map(|c| c.to_string()).unwrap_or("none".into());
            *exits.entry(code).or_default() += 1;
        }
        let exits: Vec<String> = exits
            .iter()
            .map(|(c, n)| format!("exit {c}: {n}"))
            .collect();
        let with_findings = self
            .scans
            .iter()
            .filter(|s| !s.violations.is_empty())
            .count();
        let _ = writeln!(
            t,
            "  scans         {} ({}), {} with failed checks",
            self.scans.len(),
            exits.join(", "),
            with_findings
        );
        let sum = |f: fn(&ScanOutcome) -> usize| -> usize { self.scans.iter().map(f).sum() };
        let _ = writeln!(
            t,
            "  rows          missing {}, dangling {}, broken {}, false orphans {} (gc {}, gc-delete-untagged {}); orphaned rows seen {}",
            sum(|s| s.missing.len()),
            sum(|s| s.dangling.len()),
            sum(|s| s.broken.len()),
            sum(|s| s.false_orphans_gc + s.false_orphans_untagged),
            sum(|s| s.false_orphans_gc),
            sum(|s| s.false_orphans_untagged),
            sum(|s| s.orphaned.len()),
        );
        let _ = writeln!(
            t,
            "  not checked   {} tags moved across the cutoff; {} gc rows for blobs referenced only after the cutoff, before the scan ended",
            sum(|s| s.ambiguous_tags),
            sum(|s| s.adopted_during_scan),
        );
        let no_as_of = self.scans.iter().filter(|s| s.as_of.is_none()).count();
        let writes: Vec<u64> = self
            .scans
            .iter()
            .filter_map(|s| s.writes_during_scan)
            .collect();
        let _ = writeln!(
            t,
            "  as_of         absent in {} scans (checked against started_at there); writes_during_scan reported by {} scans (max {})",
            no_as_of,
            writes.len(),
            writes.iter().max().copied().unwrap_or(0)
        );
        let _ = writeln!(
            t,
            "  health        {} manifests, {} blobs, {} tags pulled; {} failures",
            self.health.manifests,
            self.health.blobs,
            self.health.tags,
            self.health.failures.len()
        );
        t
    }
}

/// The registry and where it keeps its data.
struct Site {
    registry: Registry,
    server: Option<S3MemServer>,
    _dir: TempDir,
    location: String,
}

impl Site {
    fn start(driver: Driver) -> Result<Site> {
        let dir = tempfile::Builder::new()
            .prefix("gc-testkit-live-")
            .tempdir()
            .context("creating a temporary directory for the live run")?;
        match driver {
            Driver::Filesystem => {
                let root = dir.path().join("registry");
                let registry = Registry::start(&root)?;
                let location = registry
                    .root()
                    .to_str()
                    .ok_or_else(|| anyhow!("registry root is not UTF-8"))?
                    .to_string();
                Ok(Site {
                    registry,
                    server: None,
                    _dir: dir,
                    location,
                })
            }
            Driver::S3 => {
                let server = S3MemServer::start().context("starting s3-mem-server")?;
                server.create_bucket(BUCKET);
                let backend = S3Backend::new(&server.endpoint(), BUCKET, &format!("/{S3_ROOT}"));
                let registry = Registry::start_s3(&backend)?;
                Ok(Site {
                    registry,
                    server: Some(server),
                    _dir: dir,
                    location: format!("s3://{BUCKET}/{S3_ROOT}"),
                })
            }
        }
    }

    fn scan_command(&self, gc_audit: &Path, out: &Path) -> Command {
        let mut cmd = Command::new(gc_audit);
        cmd.arg("scan").arg(&self.location).arg("--out").arg(out);
        cmd.arg("-q");
        // Every scan of a soak shares one manifest cache, so that cached manifests meet pushes
        // landing mid-scan (and the verdicts checked below hold with the cache too).
        let cache = out.parent().unwrap_or(out).join("manifest-cache");
        cmd.arg("--cache-dir")
            .arg(cache)
            .env_remove("GC_AUDIT_NO_CACHE");
        if let Some(server) = &self.server {
            cmd.args(["--endpoint-url", &server.endpoint()])
                .args(["--region", s3_mem_server::REGION, "--force-path-style"])
                .env("AWS_ACCESS_KEY_ID", s3_mem_server::ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", s3_mem_server::SECRET_KEY)
                .env_remove("AWS_PROFILE")
                .env_remove("AWS_SESSION_TOKEN")
                .env("AWS_EC2_METADATA_DISABLED", "true");
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    fn key_count(&self) -> usize {
        match &self.server {
            Some(server) => server.object_count(BUCKET),
            None => count_files(Path::new(&self.location)),
        }
    }
}

fn count_files(root: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(_) => n += 1,
                Err(_) => {}
            }
        }
    }
    n
}

/// Run pushers and back-to-back scans for `options.duration`, check every scan and the
/// registry's health, and return the whole account. `on_scan` sees each scan once it is
/// checked (a scan is checked once every pusher has moved past its end).
///
/// An error means the harness could not run (no registry, no gc-audit); failed checks are in
/// [`LiveReport::failures`].
pub fn run(options: &LiveOptions, on_scan: &mut dyn FnMut(&ScanOutcome)) -> Result<LiveReport> {
    if !options.gc_audit.is_file() {
        bail!(
            "gc-audit binary {} not found: build it with `cargo build --release -p gc-cli`",
            options.gc_audit.display()
        );
    }
    let site = Site::start(options.driver)?;
    let out_dir = tempfile::Builder::new()
        .prefix("gc-testkit-live-scans-")
        .tempdir()
        .context("creating a temporary directory for scan reports")?;
    let pushers = options.pushers.max(1);
    let shared = Shared {
        journal: Mutex::new(Journal::default()),
        pool: Mutex::new(Pool::default()),
        progress: Mutex::new(vec![Some(SystemTime::UNIX_EPOCH); pushers]),
        stop: AtomicBool::new(false),
        seeded: AtomicUsize::new(0),
    };
    let started = Instant::now();
    let mut scans = Vec::new();
    let mut pushed_for = Duration::ZERO;
    std::thread::scope(|scope| -> Result<()> {
        let _stop = StopOnDrop(&shared.stop);
        let mut handles = Vec::new();
        for index in 0..pushers {
            let mut pusher = Pusher {
                index,
                client: site.registry.client(),
                rng: fastrand::Rng::with_seed(options.seed.wrapping_add(index as u64)),
                repos: REPOSITORIES
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % pushers == index)
                    .map(|(_, r)| r.to_string())
                    .collect(),
                tags: BTreeMap::new(),
                manifests: BTreeMap::new(),
                counter: 0,
                seed: options.seed,
                shared: &shared,
            };
            if pusher.repos.is_empty() {
                pusher
                    .repos
                    .push(REPOSITORIES[index % REPOSITORIES.len()].to_string());
            }
            let pause = options.pause;
            handles.push(scope.spawn(move || pusher.run(pause)));
        }
        while shared.seeded.load(Ordering::SeqCst) < pushers {
            if handles.iter().any(|h| h.is_finished()) {
                bail!("a pusher thread ended before seeding its repositories");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut pending = VecDeque::new();
        let mut number = 0;
        while started.elapsed() < options.duration {
            number += 1;
            let scan = run_scan(&site, options, out_dir.path(), number)?;
            pending.push_back(scan);
            check_ready(&mut pending, &mut scans, &shared, on_scan);
        }
        shared.stop.store(true, Ordering::SeqCst);
        pushed_for = started.elapsed();
        for h in handles {
            if h.join().is_err() {
                bail!("a pusher thread panicked");
            }
        }
        check_ready(&mut pending, &mut scans, &shared, on_scan);
        Ok(())
    })?;
    let journal = lock(&shared.journal).clone();
    let staged: Vec<(String, String)> = lock(&shared.pool)
        .staged
        .iter()
        .map(|p| (p.repo.clone(), p.digest.clone()))
        .collect();
    let mut health = check_health(&site.registry.client(), &journal, &staged);
    if !health.failures.is_empty() {
        health
            .failures
            .push(format!("registry log tail:\n{}", site.registry.log_tail()));
    }
    Ok(LiveReport {
        driver: options.driver,
        seed: options.seed,
        pushed_for,
        scans,
        journal,
        health,
        keys_at_end: site.key_count(),
    })
}

/// Check the pending scans whose end every pusher has moved past (all once they stopped).
fn check_ready(
    pending: &mut VecDeque<ScanOutcome>,
    done: &mut Vec<ScanOutcome>,
    shared: &Shared,
    on_scan: &mut dyn FnMut(&ScanOutcome),
) {
    while let Some(scan) = pending.front() {
        let ready = shared.all_stopped()
            || match (shared.watermark(), scan.finished) {
                (Some(w), Some(f)) => w > f,
                _ => false,
            };
        if !ready {
            break;
        }
        let Some(mut scan) = pending.pop_front() else {
            break;
        };
        let journal = lock(&shared.journal).clone();
        check_scan(&mut scan, &journal);
        on_scan(&scan);
        done.push(scan);
    }
}

/// Run one scan and read its report (without checking it).
fn run_scan(site: &Site, options: &LiveOptions, dir: &Path, number: usize) -> Result<ScanOutcome> {
    let out = dir.join(format!("scan-{number}"));
    let log_out = dir.join(format!("scan-{number}.stdout"));
    let log_err = dir.join(format!("scan-{number}.stderr"));
    let mut cmd = site.scan_command(&options.gc_audit, &out);
    cmd.stdout(std::fs::File::create(&log_out).context("creating the scan's stdout file")?);
    cmd.stderr(std::fs::File::create(&log_err).context("creating the scan's stderr file")?);
    let started = SystemTime::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", options.gc_audit.display()))?;
    let deadline = Instant::now() + options.scan_timeout;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for gc-audit")? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // Our own child, by its handle.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let finished = SystemTime::now();
    let mut scan = ScanOutcome {
        number,
        exit_code: status.and_then(|s| s.code()),
        started: Some(started),
        finished: Some(finished),
        ..ScanOutcome::default()
    };
    let stderr = std::fs::read_to_string(&log_err).unwrap_or_default();
    let mut tail = tail_of(&stderr, 2000);
    if scan.exit_code != Some(0) {
        let stdout = std::fs::read_to_string(&log_out).unwrap_or_default();
        tail = format!("{tail}\n--- stdout\n{}", tail_of(&stdout, 2000));
    }
    scan.output_tail = tail;
    read_report(&out, &mut scan);
    // Keep the temporary directory small on long runs.
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_file(&log_out);
    let _ = std::fs::remove_file(&log_err);
    Ok(scan)
}

fn tail_of(s: &str, max: usize) -> String {
    let start = s.len().saturating_sub(max);
    let start = (start..=s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    s[start..].trim_end().to_string()
}

/// Read summary.json and the CSVs the checks need into `scan`.
pub fn read_report(out: &Path, scan: &mut ScanOutcome) {
    match std::fs::read(out.join("summary.json")) {
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => {
                scan.as_of = v["as_of"].as_str().map(str::to_string);
                scan.started_at = v["started_at"].as_str().map(str::to_string);
                scan.writes_during_scan = v["writes_during_scan"].as_u64();
                scan.complete = v["complete"].as_bool();
            }
            Err(e) => scan
                .report_errors
                .push(format!("summary.json is not JSON: {e}")),
        },
        Err(e) => scan
            .report_errors
            .push(format!("summary.json unreadable: {e}")),
    }
    for (file, column, rows) in [
        ("missing.csv", "digest", &mut scan.missing),
        ("dangling.csv", "child_digest", &mut scan.dangling),
        ("broken.csv", "digest", &mut scan.broken),
    ] {
        match read_csv(&out.join(file)) {
            Ok(Some((header, records))) => {
                let col = header.iter().position(|h| h == column);
                if col.is_none() {
                    scan.report_errors
                        .push(format!("{file} has no {column} column: {header:?}"));
                }
                rows.extend(records.iter().map(|r| IntegrityRow {
                    digest: col.and_then(|c| r.get(c)).cloned().unwrap_or_default(),
                    line: r.join(","),
                }));
            }
            Ok(None) => {}
            Err(e) => scan.report_errors.push(format!("{file}: {e:#}")),
        }
    }
    match read_csv(&out.join("orphaned.csv")) {
        Ok(Some((header, records))) => {
            let col = |name: &str| header.iter().position(|h| h == name);
            match (col("digest"), col("reclaimable_by"), col("young")) {
                (Some(d), Some(r), Some(y)) => {
                    for rec in records {
                        scan.orphaned.push(OrphanRow {
                            digest: rec.get(d).cloned().unwrap_or_default(),
                            reclaimable_by: rec.get(r).cloned().unwrap_or_default(),
                            young: rec.get(y).cloned().unwrap_or_default(),
                            line: rec.join(","),
                        });
                    }
                }
                _ => scan
                    .report_errors
                    .push(format!("orphaned.csv header is {header:?}")),
            }
        }
        Ok(None) => {}
        Err(e) => scan.report_errors.push(format!("orphaned.csv: {e:#}")),
    }
}

type Rows = (Vec<String>, Vec<Vec<String>>);

/// Header and rows of a CSV file; None when the file does not exist (withheld).
fn read_csv(path: &Path) -> Result<Option<Rows>> {
    if !path.exists() {
        return Ok(None);
    }
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let header = reader
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.with_context(|| format!("reading {}", path.display()))?;
        rows.push(rec.iter().map(str::to_string).collect());
    }
    Ok(Some((header, rows)))
}

/// Apply every per-scan check to `scan` against the journal, filling `violations`, the false
/// orphan counts and `cutoff_source`.
///
/// The cutoff is `as_of` (when summary.json has it; else `started_at`, said in each message).
/// A manifest PUT counts as before the cutoff when it completed before it. A tag's target at
/// the cutoff is the target of its last move completed before it, unless a move started before
/// the cutoff (plus [`AMBIGUITY_MARGIN`]) and completed after: then the tag is skipped.
pub fn check_scan(scan: &mut ScanOutcome, journal: &Journal) {
    let n = scan.number;
    let t0 = scan.started.unwrap_or(SystemTime::UNIX_EPOCH);
    match scan.exit_code {
        Some(0) => {}
        Some(1) => scan.violations.push(format!(
            "scan {n}: exit 1 (integrity findings) on a healthy registry"
        )),
        Some(c) => scan.violations.push(format!(
            "scan {n}: exit {c} (audit incomplete or failed):\n{}",
            scan.output_tail
        )),
        None => scan.violations.push(format!(
            "scan {n}: did not exit by itself (killed after the timeout or by a signal):\n{}",
            scan.output_tail
        )),
    }
    if scan.complete == Some(false) {
        scan.violations
            .push(format!("scan {n}: summary.json says complete: false"));
    }
    for e in &scan.report_errors {
        scan.violations.push(format!("scan {n}: report: {e}"));
    }
    let as_of = scan
        .as_of
        .as_deref()
        .and_then(|s| humantime::parse_rfc3339(s).ok());
    let started_at = scan
        .started_at
        .as_deref()
        .and_then(|s| humantime::parse_rfc3339(s).ok());
    let (cutoff, source) = match (as_of, started_at) {
        (Some(a), _) => (a, "as_of".to_string()),
        (None, Some(s)) => (
            s,
            format!(
                "started_at (summary.json has {})",
                match &scan.as_of {
                    Some(v) => format!("an unparseable as_of {v:?}"),
                    None => "no as_of".to_string(),
                }
            ),
        ),
        (None, None) => (t0, "the scan's spawn time (no summary.json)".to_string()),
    };
    scan.cutoff_source = source.clone();
    let cut_rel = relative(cutoff, t0);
    for (file, rows) in [
        ("missing.csv", &scan.missing),
        ("dangling.csv", &scan.dangling),
        ("broken.csv", &scan.broken),
    ] {
        for row in rows {
            scan.violations.push(format!(
                "scan {n}: {file} row on a healthy registry: {}\n    pusher: {}\n    (scan spawned at +0, {source} at {cut_rel})",
                row.line,
                journal.describe(&row.digest, t0)
            ));
        }
    }

    // Referenced by a manifest put before the cutoff: must not be reclaimable by a plain GC.
    let mut referenced: HashMap<&str, &ManifestPut> = HashMap::new();
    let mut by_digest: HashMap<(&str, &str), &ManifestPut> = HashMap::new();
    for m in &journal.manifests {
        by_digest.entry((&m.repo, &m.digest)).or_insert(m);
        if m.completed < cutoff {
            for d in std::iter::once(&m.digest)
                .chain(m.blobs.iter())
                .chain(m.children.iter())
            {
                referenced.entry(d).or_insert(m);
            }
        }
    }
    // Held by a tag at the cutoff: must not be reclaimable by gc --delete-untagged.
    let mut moves: BTreeMap<(&str, &str), Vec<&ManifestPut>> = BTreeMap::new();
    for m in &journal.manifests {
        if let Some(tag) = &m.tag {
            moves.entry((&m.repo, tag)).or_default().push(m);
        }
    }
    let after = cutoff + AMBIGUITY_MARGIN;
    let mut tagged: HashMap<String, (String, &ManifestPut)> = HashMap::new();
    let mut ambiguous = 0;
    for ((repo, tag), list) in &moves {
        if list
            .iter()
            .any(|m| m.started <= after && m.completed >= cutoff)
        {
            ambiguous += 1;
            continue;
        }
        let Some(current) = list
            .iter()
            .filter(|m| m.completed < cutoff)
            .max_by_key(|m| m.completed)
        else {
            continue;
        };
        let mut stack = vec![current.digest.as_str()];
        let mut seen = BTreeSet::new();
        while let Some(d) = stack.pop() {
            if !seen.insert(d) {
                continue;
            }
            tagged
                .entry(d.to_string())
                .or_insert_with(|| (format!("{repo}:{tag}"), current));
            if let Some(m) = by_digest.get(&(*repo, d)) {
                for b in &m.blobs {
                    tagged
                        .entry(b.clone())
                        .or_insert_with(|| (format!("{repo}:{tag}"), current));
                }
                stack.extend(m.children.iter().map(String::as_str));
            }
        }
    }
    scan.ambiguous_tags = ambiguous;
    let end = scan.finished.unwrap_or(cutoff);
    let adopted: BTreeSet<&str> = journal
        .manifests
        .iter()
        .filter(|m| m.completed >= cutoff && m.completed < end)
        .flat_map(|m| m.blobs.iter().chain(m.children.iter()))
        .map(String::as_str)
        .collect();
    let mut violations = Vec::new();
    for o in &scan.orphaned {
        match o.reclaimable_by.as_str() {
            "gc" => {
                if !referenced.contains_key(o.digest.as_str())
                    && adopted.contains(o.digest.as_str())
                {
                    scan.adopted_during_scan += 1;
                }
                if let Some(m) = referenced.get(o.digest.as_str()) {
                    scan.false_orphans_gc += 1;
                    violations.push(format!(
                        "scan {n}: false orphan (reclaimable_by=gc, young={}): {}\n    referenced by {}@{}{} ({}), PUT completed at {} < {source} {cut_rel}\n    pusher: {}",
                        o.young,
                        o.line,
                        m.repo,
                        short(&m.digest),
                        m.tag.as_ref().map(|t| format!(" tag {t}")).unwrap_or_default(),
                        m.kind.name(),
                        relative(m.completed, t0),
                        journal.describe(&o.digest, t0)
                    ));
                }
            }
            "gc-delete-untagged" => {
                if let Some((tag, m)) = tagged.get(&o.digest) {
                    scan.false_orphans_untagged += 1;
                    violations.push(format!(
                        "scan {n}: false orphan (reclaimable_by=gc-delete-untagged, young={}): {}\n    held by tag {tag} -> {} ({}), set at {} < {source} {cut_rel}\n    pusher: {}",
                        o.young,
                        o.line,
                        short(&m.digest),
                        m.kind.name(),
                        relative(m.completed, t0),
                        journal.describe(&o.digest, t0)
                    ));
                }
            }
            other => violations.push(format!(
                "scan {n}: orphaned.csv row with reclaimable_by {other:?}: {}",
                o.line
            )),
        }
    }
    scan.violations.extend(violations);
}

/// Pull everything the journal says was pushed: every manifest by digest (GET), every blob
/// and child it references (HEAD), every tag's last target (GET), and every `(repository,
/// digest)` in `staged` (HEAD).
pub fn check_health(client: &Client, journal: &Journal, staged: &[(String, String)]) -> Health {
    let mut h = Health::default();
    let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut heads: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut last_target: BTreeMap<(&str, &str), &ManifestPut> = BTreeMap::new();
    for m in &journal.manifests {
        if let Some(tag) = &m.tag {
            let e = last_target.entry((&m.repo, tag)).or_insert(m);
            if m.completed > e.completed {
                *e = m;
            }
        }
        if !seen.insert((&m.repo, &m.digest)) {
            continue;
        }
        h.manifests += 1;
        match client.get_manifest(&m.repo, &m.digest, ACCEPT_ALL_MANIFESTS) {
            Ok(Some(got)) if got.digest == m.digest => {}
            Ok(Some(got)) => h.failures.push(format!(
                "{}@{} served Docker-Content-Digest {}",
                m.repo, m.digest, got.digest
            )),
            Ok(None) => h.failures.push(format!(
                "{}@{} ({}) is not served",
                m.repo,
                m.digest,
                m.kind.name()
            )),
            Err(e) => h.failures.push(format!("{e:#}")),
        }
        for b in &m.blobs {
            heads.insert((&m.repo, b));
        }
        for c in &m.children {
            match client.manifest_exists(&m.repo, c) {
                Ok(true) => h.blobs += 1,
                Ok(false) => h
                    .failures
                    .push(format!("{}@{}: child {c} is not served", m.repo, m.digest)),
                Err(e) => h.failures.push(format!("{e:#}")),
            }
        }
    }
    for (repo, digest) in staged {
        heads.insert((repo, digest));
    }
    for (repo, digest) in heads {
        h.blobs += 1;
        match client.blob_exists(repo, digest) {
            Ok(true) => {}
            Ok(false) => h
                .failures
                .push(format!("blob {repo}@{digest} is not served")),
            Err(e) => h.failures.push(format!("{e:#}")),
        }
    }
    for ((repo, tag), m) in last_target {
        h.tags += 1;
        match client.get_manifest(repo, tag, ACCEPT_ALL_MANIFESTS) {
            Ok(Some(got)) if got.digest == m.digest => {}
            Ok(Some(got)) => h.failures.push(format!(
                "{repo}:{tag} serves {}, last put was {}",
                got.digest, m.digest
            )),
            Ok(None) => h.failures.push(format!("{repo}:{tag} is not served")),
            Err(e) => h.failures.push(format!("{e:#}")),
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const AS_OF: &str = "2026-12-02T01:00:10.000Z";

    fn at(ms: i64) -> SystemTime {
        let base = humantime::parse_rfc3339(AS_OF).unwrap();
        if ms >= 0 {
            base + Duration::from_millis(ms as u64)
        } else {
            base - Duration::from_millis((-ms) as u64)
        }
    }

    fn put(
        digest: &str,
        tag: Option<&str>,
        blobs: &[&str],
        started: i64,
        done: i64,
    ) -> ManifestPut {
        ManifestPut {
            kind: PushKind::Image,
            repo: "team/app/api".into(),
            digest: digest.into(),
            tag: tag.map(str::to_string),
            blobs: blobs.iter().map(|b| b.to_string()).collect(),
            children: Vec::new(),
            started: at(started),
            completed: at(done),
        }
    }

    fn orphan(digest: &str, by: &str) -> OrphanRow {
        OrphanRow {
            digest: digest.into(),
            reclaimable_by: by.into(),
            young: "true".into(),
            line: format!("{digest},10,2026-12-02T01:00:09Z,{by},true"),
        }
    }

    fn scan(orphaned: Vec<OrphanRow>) -> ScanOutcome {
        ScanOutcome {
            number: 1,
            exit_code: Some(0),
            started: Some(at(-5_000)),
            finished: Some(at(1_000)),
            as_of: Some(AS_OF.into()),
            started_at: Some("2026-12-02T01:00:05.000Z".into()),
            complete: Some(true),
            orphaned,
            ..ScanOutcome::default()
        }
    }

    #[test]
    fn blob_referenced_before_as_of_is_a_false_orphan_and_one_adopted_after_is_not() {
        let journal = Journal {
            manifests: vec![
                put("m1", None, &["old-staged"], -300, -200),
                put("m2", None, &["adopted-late"], -10, 300),
            ],
            ..Journal::default()
        };
        let mut s = scan(vec![
            orphan("old-staged", "gc"),
            orphan("adopted-late", "gc"),
        ]);
        check_scan(&mut s, &journal);
        assert_eq!(s.false_orphans_gc, 1, "{:?}", s.violations);
        assert_eq!(s.adopted_during_scan, 1);
        assert_eq!(s.violations.len(), 1);
        assert!(
            s.violations[0].contains("old-staged"),
            "{}",
            s.violations[0]
        );
        assert_eq!(s.cutoff_source, "as_of");
    }

    #[test]
    fn tag_moved_after_as_of_still_holds_its_old_target_and_a_move_across_it_is_skipped() {
        let journal = Journal {
            manifests: vec![
                put("old", Some("v1"), &["old-layer"], -900, -800),
                put("new", Some("v1"), &["new-layer"], 50, 80),
                put("a", Some("v2"), &["a-layer"], -900, -800),
                put("b", Some("v2"), &["b-layer"], -1, 5),
            ],
            ..Journal::default()
        };
        let mut s = scan(vec![
            orphan("old-layer", "gc-delete-untagged"),
            orphan("new-layer", "gc-delete-untagged"),
            orphan("a-layer", "gc-delete-untagged"),
        ]);
        check_scan(&mut s, &journal);
        assert_eq!(s.false_orphans_untagged, 1, "{:?}", s.violations);
        assert!(s.violations[0].contains("old-layer"), "{:?}", s.violations);
        assert!(
            s.violations[0].contains("team/app/api:v1"),
            "{:?}",
            s.violations
        );
        assert_eq!(s.ambiguous_tags, 1);
    }

    #[test]
    fn report_rows_are_read_by_column_name() {
        let dir = tempfile::tempdir().unwrap();
        let w = |f: &str, text: &str| std::fs::write(dir.path().join(f), text).unwrap();
        w(
            "summary.json",
            r#"{"as_of":"2026-12-02T01:00:10.000Z","started_at":"2026-12-02T01:00:05.000Z","writes_during_scan":4,"complete":true}"#,
        );
        w(
            "missing.csv",
            "repository,manifest_digest,tags,kind,digest,reason\napp,sha256:m,\"a,b\",layer,sha256:l,not-linked\n",
        );
        w(
            "dangling.csv",
            "repository,index_digest,tags,child_digest,platform,reason\n",
        );
        w(
            "orphaned.csv",
            "digest,size,last_modified,reclaimable_by,young\nsha256:o,3,2026-12-02T01:00:00Z,gc,true\n",
        );
        let mut s = ScanOutcome::default();
        read_report(dir.path(), &mut s);
        assert_eq!(s.report_errors, Vec::<String>::new());
        assert_eq!(s.as_of.as_deref(), Some(AS_OF));
        assert_eq!(s.writes_during_scan, Some(4));
        assert_eq!(s.complete, Some(true));
        assert_eq!(s.missing.len(), 1);
        assert_eq!(s.missing[0].digest, "sha256:l");
        assert!(s.dangling.is_empty() && s.broken.is_empty());
        assert_eq!(s.orphaned[0].digest, "sha256:o");
        assert_eq!(s.orphaned[0].reclaimable_by, "gc");
    }

    #[test]
    fn scan_without_as_of_is_checked_against_started_at_and_says_so() {
        let journal = Journal {
            manifests: vec![put("m1", Some("v1"), &["l1"], -6_000, -5_500)],
            ..Journal::default()
        };
        let mut s = scan(vec![orphan("l1", "gc")]);
        s.as_of = None;
        s.exit_code = Some(1);
        s.missing = vec![IntegrityRow {
            digest: "l2".into(),
            line: "team/app/api,m2,v2,layer,l2,blob-missing".into(),
        }];
        check_scan(&mut s, &journal);
        assert!(
            s.cutoff_source.starts_with("started_at"),
            "{}",
            s.cutoff_source
        );
        assert_eq!(s.false_orphans_gc, 1);
        let all = s.violations.join("\n");
        assert!(all.contains("exit 1"), "{all}");
        assert!(
            all.contains("missing.csv row on a healthy registry: team/app/api,m2"),
            "{all}"
        );
        assert!(
            all.contains("started_at (summary.json has no as_of)"),
            "{all}"
        );
        assert_eq!(s.violations.len(), 3, "{all}");
    }
}
