//! Synthetic registry trees at scale, written straight into storage (no registry process).
//!
//! Deterministic from a seed: repositories with nested names, single-arch Docker and OCI images,
//! multi-arch indexes (2-4 children, some with a buildx attestation), layers drawn from a pool
//! shared across images and repositories, untagged images, tag history, and orphan blobs. Every
//! key is written the way a push writes it (blob data, `_layers` link, revision link, tag
//! history entry and `current/link`), and every document is one the registry's own parser
//! accepts, so `docker-registry garbage-collect` runs on these trees too. Blob contents are
//! small (tens of bytes) so that a million keys fit on any disk; digests are their real sha256.

use anyhow::{Context, Result};
use gc_core::digest::Digest;
use gc_core::layout::Key;
use s3_mem_server::S3MemServer;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Where generated keys go.
pub trait Sink {
    /// Write `data` at the driver-relative `key`.
    fn put(&mut self, key: &str, data: &[u8]) -> Result<()>;
}

/// A filesystem registry root.
#[derive(Debug)]
pub struct FsSink {
    root: PathBuf,
}

impl FsSink {
    /// Write below `root` (the folder that will hold `docker/registry/v2`).
    pub fn new(root: impl Into<PathBuf>) -> FsSink {
        FsSink { root: root.into() }
    }
}

impl Sink for FsSink {
    fn put(&mut self, key: &str, data: &[u8]) -> Result<()> {
        let path = self.root.join(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))
    }
}

/// An s3-mem-server bucket: keys go to `<rootdirectory>/<key>` through
/// [`S3MemServer::put_objects_direct`] (no HTTP), in batches.
///
/// Call [`S3Sink::finish`] (or [`S3Sink::flush`]) after [`generate`]; dropping the sink also
/// flushes what is left. Every object gets the same modification time (default 2026-01-01
/// 00:00:00 UTC, so nothing is "young" to an audit), which keeps the bucket deterministic.
#[derive(Debug)]
pub struct S3Sink<'s> {
    server: &'s S3MemServer,
    bucket: String,
    prefix: String,
    last_modified: SystemTime,
    batch: Vec<(String, Vec<u8>)>,
    batch_size: usize,
    written: u64,
}

impl<'s> S3Sink<'s> {
    /// Objects per `put_objects_direct` call unless set otherwise.
    pub const DEFAULT_BATCH: usize = 10_000;

    /// Write into `bucket` (created if missing) of `server`, below `rootdirectory` (a
    /// registry s3 driver's `rootdirectory`: `/registry` and `registry` both give keys
    /// `registry/docker/registry/v2/...`; empty gives `docker/registry/v2/...`).
    pub fn new(server: &'s S3MemServer, bucket: &str, rootdirectory: &str) -> S3Sink<'s> {
        server.create_bucket(bucket);
        let root = rootdirectory.trim_matches('/');
        S3Sink {
            server,
            bucket: bucket.to_string(),
            prefix: if root.is_empty() {
                String::new()
            } else {
                format!("{root}/")
            },
            last_modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600),
            batch: Vec::new(),
            batch_size: S3Sink::DEFAULT_BATCH,
            written: 0,
        }
    }

    /// Set the modification time of the objects written from now on.
    pub fn with_last_modified(mut self, t: SystemTime) -> S3Sink<'s> {
        self.last_modified = t;
        self
    }

    /// Set how many objects are stored per call (at least 1).
    pub fn with_batch_size(mut self, n: usize) -> S3Sink<'s> {
        self.batch_size = n.max(1);
        self
    }

    /// Store the pending objects now.
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let t = self.last_modified;
        let batch = std::mem::take(&mut self.batch);
        self.written += batch.len() as u64;
        self.server
            .put_objects_direct(&self.bucket, batch.into_iter().map(|(k, d)| (k, d, t)));
    }

    /// Flush and return the number of objects stored through this sink.
    pub fn finish(mut self) -> u64 {
        self.flush();
        self.written
    }
}

impl Sink for S3Sink<'_> {
    fn put(&mut self, key: &str, data: &[u8]) -> Result<()> {
        self.batch
            .push((format!("{}{key}", self.prefix), data.to_vec()));
        if self.batch.len() >= self.batch_size {
            self.flush();
        }
        Ok(())
    }
}

impl Drop for S3Sink<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The shape of a synthetic registry.
#[derive(Debug, Clone)]
pub struct SynthParams {
    /// PRNG seed.
    pub seed: u64,
    /// Repositories.
    pub repos: usize,
    /// Images (single-arch or multi-arch) per repository.
    pub images_per_repo: usize,
    /// Tags per repository; they point at the newest images, the rest are untagged.
    pub tags_per_repo: usize,
    /// Layers per single-arch image.
    pub layers_per_image: usize,
    /// Share of images that are multi-arch indexes.
    pub multi_arch_share: f64,
    /// Share of layers drawn from the shared pool.
    pub shared_layer_share: f64,
    /// Size of the shared layer pool.
    pub shared_pool: usize,
    /// Orphan blobs (uploaded, referenced by nothing).
    pub orphan_blobs: usize,
}

impl SynthParams {
    /// About `keys` keys in total, with the proportions of a typical registry.
    pub fn with_keys(keys: usize, seed: u64) -> SynthParams {
        // ~19 keys per image on average with the defaults below.
        let images = (keys / 19).max(1);
        let repos = (images / 40).max(1);
        SynthParams {
            seed,
            repos,
            images_per_repo: images.div_ceil(repos),
            tags_per_repo: 12,
            layers_per_image: 6,
            multi_arch_share: 0.2,
            shared_layer_share: 0.5,
            shared_pool: (images / 4).max(4),
            orphan_blobs: (keys / 100).max(1),
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SynthStats {
    /// Keys written.
    pub keys: u64,
    /// Distinct blobs.
    pub blobs: u64,
    /// Distinct manifests.
    pub manifests: u64,
    /// Tags.
    pub tags: u64,
    /// Repositories.
    pub repos: u64,
    /// Keys below `repositories/` (links and tags, no blob data): what a listing of that
    /// prefix returns.
    pub repository_keys: u64,
}

/// splitmix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

struct Writer<'s> {
    sink: &'s mut dyn Sink,
    blobs: HashSet<Digest>,
    keys: HashSet<String>,
    stats: SynthStats,
}

impl Writer<'_> {
    fn put(&mut self, key: &Key, data: &[u8]) -> Result<()> {
        let path = key.to_path();
        if !self.keys.insert(path.clone()) {
            return Ok(()); // a shared layer linked twice into the same repository
        }
        self.stats.keys += 1;
        if !matches!(key, Key::BlobData { .. }) {
            self.stats.repository_keys += 1;
        }
        self.sink.put(&path, data)
    }

    /// Blob data (once) and the repository's `_layers` link.
    fn blob(&mut self, repo: &str, data: &[u8]) -> Result<(Digest, usize)> {
        let digest = Digest::sha256_of(data);
        if self.blobs.insert(digest.clone()) {
            self.stats.blobs += 1;
            self.put(
                &Key::BlobData {
                    digest: digest.clone(),
                },
                data,
            )?;
        }
        self.put(
            &Key::LayerLink {
                repo: repo.to_string(),
                digest: digest.clone(),
            },
            digest.to_string().as_bytes(),
        )?;
        Ok((digest, data.len()))
    }

    /// Manifest data (once) and the repository's revision link.
    fn manifest(&mut self, repo: &str, json: &str) -> Result<(Digest, usize)> {
        let digest = Digest::sha256_of(json.as_bytes());
        if self.blobs.insert(digest.clone()) {
            self.stats.blobs += 1;
            self.stats.manifests += 1;
            self.put(
                &Key::BlobData {
                    digest: digest.clone(),
                },
                json.as_bytes(),
            )?;
        }
        let link = Key::RevisionLink {
            repo: repo.to_string(),
            digest: digest.clone(),
        };
        self.put(&link, digest.to_string().as_bytes())?;
        Ok((digest, json.len()))
    }

    fn tag(&mut self, repo: &str, tag: &str, digest: &Digest) -> Result<()> {
        self.stats.tags += 1;
        let d = digest.to_string();
        self.put(
            &Key::TagIndexEntry {
                repo: repo.into(),
                tag: tag.into(),
                digest: digest.clone(),
            },
            d.as_bytes(),
        )?;
        self.put(
            &Key::TagCurrent {
                repo: repo.into(),
                tag: tag.into(),
            },
            d.as_bytes(),
        )
    }
}

const DOCKER: (&str, &str, &str) = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
);
const OCI: (&str, &str, &str) = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.oci.image.layer.v1.tar+gzip",
);

/// Generate a registry into `sink`.
pub fn generate(params: &SynthParams, sink: &mut dyn Sink) -> Result<SynthStats> {
    let mut rng = Rng(params.seed);
    let mut w = Writer {
        sink,
        blobs: HashSet::new(),
        keys: HashSet::new(),
        stats: SynthStats::default(),
    };
    for r in 0..params.repos {
        let repo = format!("team{}/app{r}", r % 17);
        w.stats.repos += 1;
        let mut images: Vec<Digest> = Vec::new();
        for i in 0..params.images_per_repo {
            let seed = format!("{}-{r}-{i}", params.seed);
            let top = top_image(&mut w, &mut rng, params, &repo, &seed)?;
            images.push(top);
        }
        // Tags point at the newest images; "latest" moved through a few of them (history).
        for (t, digest) in images.iter().rev().take(params.tags_per_repo).enumerate() {
            let tag = if t == 0 {
                "latest".to_string()
            } else {
                format!("v{t}")
            };
            w.tag(&repo, &tag, digest)?;
        }
        for digest in images.iter().rev().skip(1).take(2) {
            let key = Key::TagIndexEntry {
                repo: repo.clone(),
                tag: "latest".into(),
                digest: digest.clone(),
            };
            w.put(&key, digest.to_string().as_bytes())?;
        }
    }
    for o in 0..params.orphan_blobs {
        let repo = format!(
            "team{}/app{}",
            rng.below(params.repos) % 17,
            rng.below(params.repos)
        );
        let repo = if repo_exists(&repo, params) {
            repo
        } else {
            "team0/app0".to_string()
        };
        w.blob(&repo, format!("orphan {} {o}", params.seed).as_bytes())?;
    }
    Ok(w.stats)
}

/// Push about `images` more images into the registry that `generate(params, ..)` wrote, the
/// way new pushes land between two audits: deterministic from `seed`, through the same kind of
/// [`Sink`]. Each image is fresh (single-arch or a multi-arch index as `params` has them, with
/// its own config and layers: no layer of the earlier tree is written again) and gets a new tag
/// `push{seed}-{i}`; four in five go to existing repositories, every fifth to the new
/// repository `pushed/s{seed}`. Only new keys are written: every earlier key stays as it was.
/// Returns what was added (`repos` counts the new repository).
pub fn add_images(
    params: &SynthParams,
    images: usize,
    seed: u64,
    sink: &mut dyn Sink,
) -> Result<SynthStats> {
    let mut rng = Rng(seed ^ 0xadd5_0000_0000_0000);
    let fresh = SynthParams {
        shared_layer_share: 0.0,
        ..params.clone()
    };
    let mut w = Writer {
        sink,
        blobs: HashSet::new(),
        keys: HashSet::new(),
        stats: SynthStats::default(),
    };
    let new_repo = format!("pushed/s{seed}");
    for i in 0..images {
        let repo = if i % 5 == 4 {
            if w.stats.repos == 0 {
                w.stats.repos = 1;
            }
            new_repo.clone()
        } else {
            let r = rng.below(params.repos);
            format!("team{}/app{r}", r % 17)
        };
        let image_seed = format!("push{seed}-{i}");
        let top = top_image(&mut w, &mut rng, &fresh, &repo, &image_seed)?;
        w.tag(&repo, &image_seed, &top)?;
    }
    Ok(w.stats)
}

const ARCHES: [(&str, &str, &str); 4] = [
    ("linux", "amd64", ""),
    ("linux", "arm64", ""),
    ("linux", "arm", "v7"),
    ("linux", "s390x", ""),
];

/// One pushed image in `repo`: a single-arch manifest, or (`multi_arch_share`) an OCI index of
/// 2-4 of them, sometimes with a buildx attestation. Returns the digest a tag would name.
fn top_image(
    w: &mut Writer<'_>,
    rng: &mut Rng,
    params: &SynthParams,
    repo: &str,
    seed: &str,
) -> Result<Digest> {
    let oci = rng.chance(0.5);
    if !rng.chance(params.multi_arch_share) {
        return Ok(image(w, rng, params, repo, seed, oci, "amd64")?.0);
    }
    let n = 2 + rng.below(3);
    let mut entries = Vec::new();
    for (c, (os, arch, variant)) in ARCHES.iter().take(n).enumerate() {
        let (d, size) = image(w, rng, params, repo, &format!("{seed}-{c}"), true, arch)?;
        let variant = if variant.is_empty() {
            String::new()
        } else {
            format!(r#","variant":"{variant}""#)
        };
        entries.push(format!(
            r#"{{"mediaType":"{}","digest":"{d}","size":{size},"platform":{{"architecture":"{arch}","os":"{os}"{variant}}}}}"#,
            OCI.0
        ));
        if c == 0 && rng.chance(0.5) {
            let (a, asize) = attestation(w, repo, seed, &d)?;
            entries.push(format!(
                r#"{{"mediaType":"{}","digest":"{a}","size":{asize},"annotations":{{"vnd.docker.reference.digest":"{d}","vnd.docker.reference.type":"attestation-manifest"}},"platform":{{"architecture":"unknown","os":"unknown"}}}}"#,
                OCI.0
            ));
        }
    }
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        entries.join(",")
    );
    Ok(w.manifest(repo, &index)?.0)
}

fn repo_exists(repo: &str, params: &SynthParams) -> bool {
    (0..params.repos).any(|r| format!("team{}/app{r}", r % 17) == repo)
}

/// A single-arch image: config, layers (shared or unique), manifest. Returns its digest/size.
fn image(
    w: &mut Writer<'_>,
    rng: &mut Rng,
    p: &SynthParams,
    repo: &str,
    seed: &str,
    oci: bool,
    arch: &str,
) -> Result<(Digest, usize)> {
    let (mt, cmt, lmt) = if oci { OCI } else { DOCKER };
    let mut layers = Vec::new();
    for l in 0..p.layers_per_image {
        let content = if rng.chance(p.shared_layer_share) {
            format!("shared layer {} {}", p.seed, rng.below(p.shared_pool))
        } else {
            format!("layer {seed} {l}")
        };
        let (d, size) = w.blob(repo, content.as_bytes())?;
        layers.push(format!(
            r#"{{"mediaType":"{lmt}","digest":"{d}","size":{size}}}"#
        ));
    }
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","created":"2024-01-01T00:00:00Z","config":{{"Labels":{{"seed":"{seed}"}}}}}}"#
    );
    let (c, csize) = w.blob(repo, config.as_bytes())?;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{mt}","config":{{"mediaType":"{cmt}","digest":"{c}","size":{csize}}},"layers":[{}]}}"#,
        layers.join(",")
    );
    w.manifest(repo, &manifest)
}

/// A buildx attestation manifest describing `subject`.
fn attestation(
    w: &mut Writer<'_>,
    repo: &str,
    seed: &str,
    subject: &Digest,
) -> Result<(Digest, usize)> {
    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v0.1","subject":[{{"digest":{{"sha256":"{}"}}}}]}}"#,
        subject.encoded()
    );
    let (l, lsize) = w.blob(repo, statement.as_bytes())?;
    let config =
        format!(r#"{{"architecture":"unknown","os":"unknown","config":{{}},"seed":"{seed}"}}"#);
    let (c, csize) = w.blob(repo, config.as_bytes())?;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{c}","size":{csize}}},"layers":[{{"mediaType":"application/vnd.in-toto+json","digest":"{l}","size":{lsize},"annotations":{{"in-toto.io/predicate-type":"https://spdx.dev/Document"}}}}]}}"#,
        OCI.0, OCI.1
    );
    w.manifest(repo, &manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct MapSink(BTreeMap<String, Vec<u8>>);
    impl Sink for MapSink {
        fn put(&mut self, key: &str, data: &[u8]) -> Result<()> {
            self.0.insert(key.to_string(), data.to_vec());
            Ok(())
        }
    }

    #[test]
    fn generation_is_deterministic_and_parses() {
        let p = SynthParams::with_keys(5_000, 7);
        let (mut a, mut b) = (MapSink::default(), MapSink::default());
        let sa = generate(&p, &mut a).unwrap();
        let sb = generate(&p, &mut b).unwrap();
        assert_eq!(sa, sb);
        assert_eq!(a.0, b.0);
        assert!(sa.keys > 3_000 && sa.keys < 8_000, "{sa:?}");
        for key in a.0.keys() {
            assert!(Key::parse(key).is_ok(), "{key}");
        }
    }

    /// Records every put, in order, so that a rewrite of a key shows.
    #[derive(Default)]
    struct PutLog(Vec<(String, Vec<u8>)>);
    impl Sink for PutLog {
        fn put(&mut self, key: &str, data: &[u8]) -> Result<()> {
            self.0.push((key.to_string(), data.to_vec()));
            Ok(())
        }
    }

    #[test]
    fn added_images_are_new_manifests_and_keys_and_leave_earlier_keys_untouched() {
        let p = SynthParams::with_keys(20_000, 5);
        let mut base = MapSink::default();
        let before = generate(&p, &mut base).unwrap();
        let images = (p.repos * p.images_per_repo) / 100;
        assert!(images >= 10, "{images}");
        let mut added = PutLog::default();
        let stats = add_images(&p, images, 9, &mut added).unwrap();

        // About 1 % more: at least one manifest and one tag per image, ~19 keys each.
        assert_eq!(stats.tags, images as u64);
        assert!(stats.manifests >= images as u64, "{stats:?}");
        assert_eq!(stats.keys, added.0.len() as u64);
        let share = stats.keys as f64 / before.keys as f64;
        assert!((0.005..0.02).contains(&share), "{share} {stats:?}");
        assert_eq!(stats.repos, 1);

        // Every key is new, written once, and one the layout parses.
        let mut seen = HashSet::new();
        for (key, _) in &added.0 {
            assert!(!base.0.contains_key(key), "rewrote {key}");
            assert!(seen.insert(key.clone()), "wrote {key} twice");
            assert!(Key::parse(key).is_ok(), "{key}");
        }
        // New manifests: blob data whose digest is that of its bytes, none in the base tree.
        let new_tags = added
            .0
            .iter()
            .filter(|(k, _)| k.ends_with("/current/link"))
            .count();
        assert_eq!(new_tags, images);
        let new_blobs = added.0.iter().filter(|(k, _)| k.ends_with("/data")).count() as u64;
        assert_eq!(new_blobs, stats.blobs);
        assert!(added
            .0
            .iter()
            .any(|(k, _)| k.contains("/repositories/pushed/s9/")));

        // Deterministic from the seed; another seed adds other keys.
        let mut again = PutLog::default();
        assert_eq!(add_images(&p, images, 9, &mut again).unwrap(), stats);
        assert_eq!(again.0, added.0);
        let mut other = PutLog::default();
        add_images(&p, images, 10, &mut other).unwrap();
        assert!(other.0.iter().all(|(k, _)| !seen.contains(k)));
    }

    #[test]
    fn s3_sink_writes_the_same_tree_under_the_root() {
        let p = SynthParams::with_keys(2_000, 3);
        let mut map = MapSink::default();
        generate(&p, &mut map).unwrap();
        let server = S3MemServer::start().unwrap();
        let mut sink = S3Sink::new(&server, "bench", "/registry").with_batch_size(97);
        let stats = generate(&p, &mut sink).unwrap();
        assert_eq!(sink.finish(), stats.keys);
        let keys = server.keys("bench");
        let expected: Vec<String> = map.0.keys().map(|k| format!("registry/{k}")).collect();
        assert_eq!(keys, expected);
        let (k, v) = map.0.iter().next().unwrap();
        assert_eq!(
            server
                .object("bench", &format!("registry/{k}"))
                .unwrap()
                .as_ref(),
            v.as_slice()
        );
        assert_eq!(server.requests().len(), 0);
    }
}
