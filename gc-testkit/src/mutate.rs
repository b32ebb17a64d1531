//! Seeded mutations of a registry storage tree on disk, for the fuzzer over real registry trees
//! (`tests/fuzz_trees.rs`).
//!
//! [`mutate`] applies one mutation, chosen by the caller's seeded [`fastrand::Rng`], to a copy
//! of a tree the real registry wrote, and returns what it damaged ([`Applied`]): every key it
//! changed, removed, replaced or added, what each held before ([`Target`], classified by the
//! registry layout and by what a scan of the base tree knew, [`Known`]), and how it was
//! damaged ([`How`]). The fuzzer turns that into the findings gc-audit must report.
//!
//! The mutations ([`Mutation::ALL`]): manifest bytes (flip, truncate, append, garbage, empty,
//! over 4 MiB), JSON shapes (a field's type changed, `config` deleted, the document wrapped in
//! an array, deep nesting), link contents and sizes (another digest of the same length,
//! truncated, garbage, empty, a trailing newline, padded, huge), odd names (tags, repositories,
//! blob directories and stray files with unicode, spaces, `..`-looking, very long or uppercase
//! names), files where directories belong and back, removed directories, symbolic links (a
//! loop, out of the root, to `/dev/zero`, to another blob or link), FIFOs, sockets, and sparse
//! 1 TB files.
//!
//! Everything stays inside the tree except symbolic links pointing out of it (to `outside`, a
//! directory the caller owns, to `/etc/passwd` or to `/dev/zero`): nothing outside is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use gc_core::layout::Key;

/// What a scan of the base tree (before any mutation) found: the ground truth the fuzzer's
/// oracle compares with. Digests are `sha256:<hex>` strings.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The manifests the scan read and parsed.
    pub manifests: BTreeSet<String>,
    /// What each of those references (config, layers, children, subject; foreign layers left
    /// out: they need not be stored).
    pub edges: BTreeMap<String, Vec<String>>,
    /// Per repository, its manifest revisions.
    pub revisions: BTreeMap<String, BTreeSet<String>>,
    /// Per repository, its tags and what each points at.
    pub tags: BTreeMap<String, Vec<(String, String)>>,
}

/// What a scan still reaches once some keys are damaged ([`Known::reach`]).
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// Per repository, every digest reachable from its intact revision links and tag links
    /// through intact manifests (a damaged manifest is reached but not followed).
    pub by_repo: BTreeMap<String, BTreeSet<String>>,
}

impl Reach {
    /// Whether some repository reaches `digest`.
    pub fn any(&self, digest: &str) -> bool {
        self.by_repo.values().any(|s| s.contains(digest))
    }

    /// Whether `repo` reaches `digest`.
    pub fn in_repo(&self, repo: &str, digest: &str) -> bool {
        self.by_repo.get(repo).is_some_and(|s| s.contains(digest))
    }
}

/// The key of a blob's data.
pub fn blob_key(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        hex.get(..2).unwrap_or("")
    )
}

/// The key of a revision link.
pub fn revision_key(repo: &str, digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("docker/registry/v2/repositories/{repo}/_manifests/revisions/sha256/{hex}/link")
}

/// The key of a tag's current link.
pub fn tag_key(repo: &str, tag: &str) -> String {
    format!("docker/registry/v2/repositories/{repo}/_manifests/tags/{tag}/current/link")
}

impl Known {
    /// What is still reached when every key for which `damaged` is true (and everything below
    /// it) is out of use: a revision or tag link that is damaged starts nothing, and a
    /// manifest whose data is damaged is not followed.
    pub fn reach(&self, damaged: &dyn Fn(&str) -> bool) -> Reach {
        let mut by_repo = BTreeMap::new();
        let repos: BTreeSet<&String> = self.revisions.keys().chain(self.tags.keys()).collect();
        for repo in repos {
            let mut todo: Vec<String> = Vec::new();
            for m in self.revisions.get(repo).into_iter().flatten() {
                if !damaged(&revision_key(repo, m)) {
                    todo.push(m.clone());
                }
            }
            for (tag, m) in self.tags.get(repo).into_iter().flatten() {
                if !damaged(&tag_key(repo, tag)) {
                    todo.push(m.clone());
                }
            }
            let mut seen = BTreeSet::new();
            while let Some(d) = todo.pop() {
                if !seen.insert(d.clone()) {
                    continue;
                }
                if damaged(&blob_key(&d)) {
                    continue;
                }
                if let Some(next) = self.edges.get(&d) {
                    todo.extend(next.iter().cloned());
                }
            }
            by_repo.insert(repo.clone(), seen);
        }
        Reach { by_repo }
    }
}

/// One kind of mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mutation {
    /// Flip one byte of a blob (a manifest, mostly).
    ManifestFlipByte,
    /// Cut a blob short.
    ManifestTruncate,
    /// Append garbage to a blob.
    ManifestAppend,
    /// Replace a blob with random bytes of a random length.
    ManifestGarbage,
    /// Empty a blob.
    ManifestEmpty,
    /// Grow a manifest past the 4 MiB manifest limit (a sparse tail).
    ManifestOverLimit,
    /// Parse a manifest and change the type of a field (size as string, mediaType as number,
    /// layers or manifests as an object, schemaVersion as string, a descriptor as null).
    JsonFieldType,
    /// Parse a manifest and delete `config` (or `manifests`, `layers`).
    JsonDeleteField,
    /// Wrap a manifest in an array.
    JsonWrapInArray,
    /// Replace a manifest with a document nested thousands of levels deep.
    JsonDeepNesting,
    /// A link holding another digest of the same length.
    LinkOtherDigest,
    /// A link cut short.
    LinkTruncate,
    /// A link holding garbage.
    LinkGarbage,
    /// An empty link.
    LinkEmpty,
    /// A link with a trailing newline.
    LinkNewline,
    /// A link padded with NULs or spaces to another size.
    LinkPadded,
    /// A link of 100 KiB, or a sparse 1 GiB one.
    LinkHuge,
    /// A tag with an odd name (unicode, spaces, `..x`, 200 characters, uppercase first).
    OddTag,
    /// A repository with an odd name.
    OddRepository,
    /// A blob directory with an uppercase digest.
    OddBlobDirectory,
    /// A stray file with an odd name in some directory.
    StrayFile,
    /// A directory (`_layers`, `_manifests`, a tag, a blob's `<hex>/`, a fan-out) replaced by
    /// a file.
    DirectoryToFile,
    /// A `data` or `link` file replaced by a directory (empty, or holding a file).
    FileToDirectory,
    /// A directory removed (`_layers`, `_manifests/tags`, `_manifests/revisions`, a tag, a
    /// blob fan-out directory).
    RemoveDirectory,
    /// A file or directory replaced by a symbolic link loop.
    SymlinkLoop,
    /// A file or directory replaced by a symbolic link out of the root.
    SymlinkOutside,
    /// A file replaced by a symbolic link to `/dev/zero`.
    SymlinkDevZero,
    /// A blob or link replaced by a symbolic link to another blob or link of the tree.
    SymlinkOther,
    /// A file or directory replaced by a FIFO.
    Fifo,
    /// A file or directory replaced by a Unix socket.
    Socket,
    /// A blob or link made a sparse 1 TB file.
    SparseHuge,
}

impl Mutation {
    /// Every mutation.
    pub const ALL: &'static [Mutation] = &[
        Mutation::ManifestFlipByte,
        Mutation::ManifestTruncate,
        Mutation::ManifestAppend,
        Mutation::ManifestGarbage,
        Mutation::ManifestEmpty,
        Mutation::ManifestOverLimit,
        Mutation::JsonFieldType,
        Mutation::JsonDeleteField,
        Mutation::JsonWrapInArray,
        Mutation::JsonDeepNesting,
        Mutation::LinkOtherDigest,
        Mutation::LinkTruncate,
        Mutation::LinkGarbage,
        Mutation::LinkEmpty,
        Mutation::LinkNewline,
        Mutation::LinkPadded,
        Mutation::LinkHuge,
        Mutation::OddTag,
        Mutation::OddRepository,
        Mutation::OddBlobDirectory,
        Mutation::StrayFile,
        Mutation::DirectoryToFile,
        Mutation::FileToDirectory,
        Mutation::RemoveDirectory,
        Mutation::SymlinkLoop,
        Mutation::SymlinkOutside,
        Mutation::SymlinkDevZero,
        Mutation::SymlinkOther,
        Mutation::Fifo,
        Mutation::Socket,
        Mutation::SparseHuge,
    ];
}

/// What a key held before it was damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The data of a manifest the base scan read.
    Manifest {
        /// Its digest.
        digest: String,
    },
    /// The data of any other blob.
    Blob {
        /// Its digest.
        digest: String,
    },
    /// `_layers/<alg>/<hex>/link`.
    LayerLink {
        /// Repository.
        repo: String,
        /// The digest in the path.
        digest: String,
    },
    /// `_manifests/revisions/<alg>/<hex>/link`.
    RevisionLink {
        /// Repository.
        repo: String,
        /// The digest in the path.
        digest: String,
    },
    /// `_manifests/tags/<tag>/index/<alg>/<hex>/link`.
    TagHistory {
        /// Repository.
        repo: String,
        /// Tag.
        tag: String,
        /// The digest in the path.
        digest: String,
    },
    /// `_manifests/tags/<tag>/current/link`.
    TagCurrent {
        /// Repository.
        repo: String,
        /// Tag.
        tag: String,
        /// What it held.
        content: String,
    },
    /// A directory.
    Directory,
    /// Any other file (uploads, stray files).
    OtherFile,
    /// Nothing: the key is new.
    Nothing,
}

/// How a key was damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Still a regular file, with other bytes (`new_size` of them).
    Changed {
        /// Its size now.
        new_size: u64,
    },
    /// Gone: removed, or replaced by a directory or a file where a directory was.
    Gone,
    /// Replaced by something that must not be read: a FIFO, a socket, a link loop, a link out
    /// of the root (its key can only be reported, never read).
    Unreadable,
    /// A key that was not there.
    Added,
}

/// One damaged key.
#[derive(Debug, Clone)]
pub struct Damage {
    /// The key (relative to the storage root: `docker/registry/v2/...`).
    pub key: String,
    /// What it held.
    pub target: Target,
    /// What happened to it.
    pub how: How,
    /// For changed content: what it holds now, when small (links).
    pub content: Option<Vec<u8>>,
}

/// What one mutation did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The mutation.
    pub mutation: Mutation,
    /// The key it was applied at.
    pub key: String,
    /// Every key it damaged: the key itself, and for a directory each file that was below it.
    pub damage: Vec<Damage>,
    /// For a damaged manifest: the keys through which a scan reaches it (its revision links,
    /// tag links naming it); the damage can be seen only while one of them is intact.
    pub witnesses: Vec<String>,
    /// For a person: what exactly was done.
    pub detail: String,
}

/// What kind of entry a key is, without following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (a symbolic link, FIFO, socket).
    Other,
}

/// Every entry below `root` (keys relative to it, `/`-separated, sorted), links not followed.
/// Names that are not UTF-8 are skipped.
pub fn entries(root: &Path) -> Result<Vec<(String, EntryKind)>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let key_path = rel.join(&name);
            let Some(key) = key_path.to_str().map(str::to_string) else {
                continue;
            };
            let ft = entry.file_type()?;
            let kind = if ft.is_dir() {
                stack.push(key_path);
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            out.push((key, kind));
        }
    }
    out.sort();
    Ok(out)
}

/// The tree a mutation works on, re-read before each mutation.
struct Tree<'a> {
    root: &'a Path,
    known: &'a Known,
    entries: Vec<(String, EntryKind)>,
}

impl Tree<'_> {
    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn files(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries
            .iter()
            .filter(|(_, k)| *k == EntryKind::File)
            .map(|(k, _)| k.as_str())
    }

    fn dirs(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries
            .iter()
            .filter(|(_, k)| *k == EntryKind::Dir)
            .map(|(k, _)| k.as_str())
    }

    fn classify(&self, key: &str) -> Target {
        if self
            .entries
            .iter()
            .any(|(k, kind)| k == key && *kind == EntryKind::Dir)
        {
            return Target::Directory;
        }
        match Key::parse(key) {
            Ok(Key::BlobData { digest }) => {
                let digest = digest.to_string();
                if self.known.manifests.contains(&digest) {
                    Target::Manifest { digest }
                } else {
                    Target::Blob { digest }
                }
            }
            Ok(Key::LayerLink { repo, digest }) => Target::LayerLink {
                repo,
                digest: digest.to_string(),
            },
            Ok(Key::RevisionLink { repo, digest }) => Target::RevisionLink {
                repo,
                digest: digest.to_string(),
            },
            Ok(Key::TagIndexEntry { repo, tag, digest }) => Target::TagHistory {
                repo,
                tag,
                digest: digest.to_string(),
            },
            Ok(Key::TagCurrent { repo, tag }) => Target::TagCurrent {
                repo,
                tag,
                content: read_small(&self.path(key))
                    .ok()
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default(),
            },
            _ => Target::OtherFile,
        }
    }

    /// The regular files whose key satisfies `pred`.
    fn files_where(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        self.files()
            .filter(|k| pred(k))
            .map(str::to_string)
            .collect()
    }

    fn manifests(&self) -> Vec<String> {
        self.files_where(|k| matches!(self.classify(k), Target::Manifest { .. }))
    }

    fn blobs(&self) -> Vec<String> {
        self.files_where(|k| {
            k.ends_with("/data") && matches!(Key::parse(k), Ok(Key::BlobData { .. }))
        })
    }

    fn links(&self) -> Vec<String> {
        self.files_where(|k| k.ends_with("/link"))
    }

    /// The keys through which a scan reaches manifest `digest`.
    fn witnesses(&self, digest: &str) -> Vec<String> {
        self.files()
            .filter(|k| match Key::parse(k) {
                Ok(Key::RevisionLink { digest: d, .. }) => d.to_string() == digest,
                Ok(Key::TagCurrent { .. }) => read_small(&self.path(k))
                    .ok()
                    .flatten()
                    .is_some_and(|b| b == digest.as_bytes()),
                _ => false,
            })
            .map(str::to_string)
            .collect()
    }

    /// Damage records for `key` (`how`) and, when it is a directory, for every file below it
    /// (gone).
    fn damage_of(&self, key: &str, how: How) -> Vec<Damage> {
        let mut out = vec![Damage {
            key: key.to_string(),
            target: self.classify(key),
            how,
            content: None,
        }];
        let below = format!("{key}/");
        for f in self.files() {
            if f.starts_with(&below) {
                out.push(Damage {
                    key: f.to_string(),
                    target: self.classify(f),
                    how: How::Gone,
                    content: None,
                });
            }
        }
        out
    }
}

fn pick(rng: &mut fastrand::Rng, v: &[String]) -> Option<String> {
    if v.is_empty() {
        None
    } else {
        Some(v[rng.usize(..v.len())].clone())
    }
}

/// Random bytes, of a length drawn from `len`.
fn random_bytes(rng: &mut fastrand::Rng, len: std::ops::Range<usize>) -> Vec<u8> {
    let n = rng.usize(len);
    (0..n).map(|_| rng.u8(..)).collect()
}

fn random_digest(rng: &mut fastrand::Rng) -> String {
    let hex: String = (0..64)
        .map(|_| char::from_digit(rng.u32(..16), 16).unwrap_or('0'))
        .collect();
    format!("sha256:{hex}")
}

/// The bytes of the file at `path`, or `None` when it is over 16 MiB (an earlier mutation
/// made it a sparse giant: it is not read).
fn read_small(path: &Path) -> Result<Option<Vec<u8>>> {
    let size = fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .len();
    if size > 16 << 20 {
        return Ok(None);
    }
    Ok(Some(
        fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    ))
}

/// Remove whatever is at `path` (file, link, special file or directory tree).
fn remove(path: &Path) -> Result<()> {
    let md = fs::symlink_metadata(path).with_context(|| format!("{}", path.display()))?;
    if md.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
    .with_context(|| format!("removing {}", path.display()))
}

fn mkfifo(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: `c` is a valid NUL-terminated path that lives across the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    if rc != 0 {
        bail!(
            "mkfifo {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Odd names: unicode, spaces, `..`-looking, very long, uppercase.
fn odd_name(rng: &mut fastrand::Rng) -> String {
    let names = [
        "ünïcödé".to_string(),
        "with space".to_string(),
        "..x".to_string(),
        "...".to_string(),
        ".hidden".to_string(),
        "UPPER".to_string(),
        "a".repeat(200),
        "tab\there".to_string(),
        "semi;colon,comma\"quote".to_string(),
        "日本語".to_string(),
    ];
    names[rng.usize(..names.len())].clone()
}

/// Apply one mutation chosen by `rng` to the tree at `root`. `outside` is a directory outside
/// the tree that symbolic links may point at. Tries other mutations when the chosen one has
/// no target left in the tree.
pub fn mutate(
    rng: &mut fastrand::Rng,
    root: &Path,
    known: &Known,
    outside: &Path,
) -> Result<Applied> {
    for _ in 0..64 {
        let tree = Tree {
            root,
            known,
            entries: entries(root)?,
        };
        let mutation = Mutation::ALL[rng.usize(..Mutation::ALL.len())];
        let applied = apply(rng, &tree, mutation, outside)
            .with_context(|| format!("{mutation:?} in {}", root.display()))?;
        if let Some(applied) = applied {
            return Ok(applied);
        }
    }
    bail!("no mutation applies to {}", root.display())
}

/// Apply `mutation`; `None` when the tree has no target for it.
fn apply(
    rng: &mut fastrand::Rng,
    tree: &Tree<'_>,
    mutation: Mutation,
    outside: &Path,
) -> Result<Option<Applied>> {
    use Mutation as M;
    let done = |key: String, damage: Vec<Damage>, detail: String| {
        let witnesses = damage
            .iter()
            .filter_map(|d| match &d.target {
                Target::Manifest { digest } => Some(tree.witnesses(digest)),
                _ => None,
            })
            .flatten()
            .collect();
        Some(Applied {
            mutation,
            key,
            damage,
            witnesses,
            detail,
        })
    };
    let changed = |key: &str, bytes: &[u8]| Damage {
        key: key.to_string(),
        target: tree.classify(key),
        how: How::Changed {
            new_size: bytes.len() as u64,
        },
        content: (bytes.len() <= 4096).then(|| bytes.to_vec()),
    };
    Ok(match mutation {
        M::ManifestFlipByte
        | M::ManifestTruncate
        | M::ManifestAppend
        | M::ManifestGarbage
        | M::ManifestEmpty
        | M::ManifestOverLimit => {
            // Mostly manifests; sometimes any blob.
            let pool = if rng.u8(..10) < 8 {
                tree.manifests()
            } else {
                tree.blobs()
            };
            let Some(key) = pick(rng, &pool) else {
                return Ok(None);
            };
            let path = tree.path(&key);
            let mut bytes = match read_small(&path)? {
                Some(b) => b,
                None => return Ok(None), // an earlier mutation made it huge
            };
            let detail;
            match mutation {
                M::ManifestFlipByte if !bytes.is_empty() => {
                    let i = rng.usize(..bytes.len());
                    bytes[i] ^= 1 << rng.u32(..8);
                    detail = format!("flipped a bit of byte {i}");
                }
                M::ManifestTruncate if !bytes.is_empty() => {
                    let n = rng.usize(..bytes.len());
                    bytes.truncate(n);
                    detail = format!("truncated to {n} bytes");
                }
                M::ManifestAppend => {
                    let extra = random_bytes(rng, 1..64);
                    bytes.extend_from_slice(&extra);
                    detail = format!("appended {} bytes", extra.len());
                }
                M::ManifestGarbage => {
                    bytes = random_bytes(rng, 0..2048);
                    detail = format!("replaced by {} random bytes", bytes.len());
                }
                M::ManifestOverLimit => {
                    fs::OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len((4 << 20) + 1)?;
                    let d = Damage {
                        key: key.clone(),
                        target: tree.classify(&key),
                        how: How::Changed {
                            new_size: (4 << 20) + 1,
                        },
                        content: None,
                    };
                    return Ok(done(key, vec![d], "grown to 4 MiB + 1 (sparse)".into()));
                }
                _ => {
                    bytes.clear();
                    detail = "emptied".to_string();
                }
            }
            let d = changed(&key, &bytes);
            fs::write(&path, &bytes)?;
            done(key, vec![d], detail)
        }
        M::JsonFieldType | M::JsonDeleteField | M::JsonWrapInArray | M::JsonDeepNesting => {
            let Some(key) = pick(rng, &tree.manifests()) else {
                return Ok(None);
            };
            let path = tree.path(&key);
            let bytes = match read_small(&path)? {
                Some(b) => b,
                None => return Ok(None), // an earlier mutation made it huge
            };
            let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                return Ok(None);
            };
            let detail = match mutation {
                M::JsonFieldType => json_field_type(rng, &mut doc),
                M::JsonDeleteField => json_delete_field(rng, &mut doc),
                M::JsonWrapInArray => {
                    doc = serde_json::Value::Array(vec![doc]);
                    "wrapped in an array".to_string()
                }
                _ => {
                    let depth = rng.usize(200..20_000);
                    let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
                    let d = changed(&key, text.as_bytes());
                    fs::write(&path, text.as_bytes())?;
                    return Ok(done(key, vec![d], format!("nested {depth} arrays deep")));
                }
            };
            let out = serde_json::to_vec(&doc)?;
            if out == bytes {
                return Ok(None);
            }
            let d = changed(&key, &out);
            fs::write(&path, &out)?;
            done(key, vec![d], detail)
        }
        M::LinkOtherDigest
        | M::LinkTruncate
        | M::LinkGarbage
        | M::LinkEmpty
        | M::LinkNewline
        | M::LinkPadded
        | M::LinkHuge => {
            let Some(key) = pick(rng, &tree.links()) else {
                return Ok(None);
            };
            let path = tree.path(&key);
            let old = match read_small(&path)? {
                Some(b) => b,
                None => return Ok(None), // an earlier mutation made it huge
            };
            let (bytes, detail) = match mutation {
                M::LinkOtherDigest => {
                    let d = random_digest(rng);
                    (d.clone().into_bytes(), format!("now {d}"))
                }
                M::LinkTruncate => {
                    let n = rng.usize(..old.len().max(1));
                    (
                        old[..n.min(old.len())].to_vec(),
                        format!("truncated to {n}"),
                    )
                }
                M::LinkGarbage => {
                    let b = random_bytes(rng, 1..100);
                    let n = b.len();
                    (b, format!("{n} random bytes"))
                }
                M::LinkEmpty => (Vec::new(), "emptied".to_string()),
                M::LinkNewline => {
                    let mut b = old.clone();
                    b.push(b'\n');
                    (b, "newline appended".to_string())
                }
                M::LinkPadded => {
                    let mut b = old.clone();
                    let pad = if rng.bool() { b' ' } else { 0 };
                    let n = rng.usize(1..200);
                    b.extend(std::iter::repeat_n(pad, n));
                    (b, format!("padded with {n} bytes of {pad}"))
                }
                _ => {
                    if rng.bool() {
                        let b = old.repeat((100 << 10) / old.len().max(1) + 1);
                        let n = b.len();
                        (b, format!("{n} bytes"))
                    } else {
                        fs::OpenOptions::new()
                            .write(true)
                            .open(&path)?
                            .set_len(1 << 30)?;
                        let d = Damage {
                            key: key.clone(),
                            target: tree.classify(&key),
                            how: How::Changed { new_size: 1 << 30 },
                            content: None,
                        };
                        return Ok(done(key, vec![d], "sparse 1 GiB".into()));
                    }
                }
            };
            if bytes == old {
                return Ok(None);
            }
            let d = changed(&key, &bytes);
            fs::write(&path, &bytes)?;
            done(key, vec![d], detail)
        }
        M::OddTag => {
            let tags = tree.files_where(|k| matches!(Key::parse(k), Ok(Key::TagCurrent { .. })));
            let Some(current) = pick(rng, &tags) else {
                return Ok(None);
            };
            // .../_manifests/tags/<tag>/current/link → .../_manifests/tags/<odd>/current/link
            let tag_dir = current.trim_end_matches("/current/link");
            let tags_dir = &tag_dir[..tag_dir.rfind('/').unwrap_or(0)];
            let key = format!("{tags_dir}/{}/current/link", odd_name(rng));
            if tree.path(&key).exists() {
                return Ok(None);
            }
            let Some(bytes) = read_small(&tree.path(&current))? else {
                return Ok(None); // a sparse giant: copying it would write all of it
            };
            let to = tree.path(&key);
            fs::create_dir_all(to.parent().unwrap_or(tree.root))?;
            fs::write(&to, bytes)?;
            done(key.clone(), vec![added(&key)], format!("copy of {current}"))
        }
        M::OddRepository => {
            let layers = tree.files_where(|k| matches!(Key::parse(k), Ok(Key::LayerLink { .. })));
            let Some(link) = pick(rng, &layers) else {
                return Ok(None);
            };
            let i = link.find("/_layers/").unwrap_or(0);
            let key = format!(
                "docker/registry/v2/repositories/{}{}",
                odd_name(rng),
                &link[i..]
            );
            if tree.path(&key).exists() {
                return Ok(None);
            }
            let Some(bytes) = read_small(&tree.path(&link))? else {
                return Ok(None); // a sparse giant: copying it would write all of it
            };
            let to = tree.path(&key);
            fs::create_dir_all(to.parent().unwrap_or(tree.root))?;
            fs::write(&to, bytes)?;
            done(key.clone(), vec![added(&key)], format!("copy of {link}"))
        }
        M::OddBlobDirectory => {
            let Some(blob) = pick(rng, &tree.blobs()) else {
                return Ok(None);
            };
            // blobs/sha256/ab/<hex>/data → blobs/sha256/AB/<HEX>/data
            let parts: Vec<&str> = blob.split('/').collect();
            let n = parts.len();
            if n < 3 {
                return Ok(None);
            }
            let mut new = parts.clone();
            let fan = parts[n - 3].to_uppercase();
            let hex = parts[n - 2].to_uppercase();
            new[n - 3] = &fan;
            new[n - 2] = &hex;
            let key = new.join("/");
            if key == blob || tree.path(&key).exists() {
                return Ok(None);
            }
            let Some(bytes) = read_small(&tree.path(&blob))? else {
                return Ok(None); // a sparse giant: copying it would write all of it
            };
            let to = tree.path(&key);
            fs::create_dir_all(to.parent().unwrap_or(tree.root))?;
            fs::write(&to, bytes)?;
            done(key.clone(), vec![added(&key)], format!("copy of {blob}"))
        }
        M::StrayFile => {
            let dirs: Vec<String> = tree.dirs().map(str::to_string).collect();
            let Some(dir) = pick(rng, &dirs) else {
                return Ok(None);
            };
            let key = format!("{dir}/{}", odd_name(rng));
            if tree.path(&key).exists() {
                return Ok(None);
            }
            fs::write(tree.path(&key), random_bytes(rng, 0..100))?;
            done(key.clone(), vec![added(&key)], "stray file".into())
        }
        M::DirectoryToFile | M::RemoveDirectory => {
            let dirs: Vec<String> = tree
                .dirs()
                .filter(|d| structural_dir(d))
                .map(str::to_string)
                .collect();
            let Some(key) = pick(rng, &dirs) else {
                return Ok(None);
            };
            let how = How::Gone;
            let damage = tree.damage_of(&key, how);
            let path = tree.path(&key);
            remove(&path)?;
            let detail = if mutation == M::DirectoryToFile {
                let bytes = random_bytes(rng, 0..100);
                fs::write(&path, &bytes)?;
                format!("directory replaced by a file of {} bytes", bytes.len())
            } else {
                "directory removed".to_string()
            };
            done(key, damage, detail)
        }
        M::FileToDirectory => {
            let pool = tree.files_where(|k| k.ends_with("/data") || k.ends_with("/link"));
            let Some(key) = pick(rng, &pool) else {
                return Ok(None);
            };
            let damage = tree.damage_of(&key, How::Gone);
            let path = tree.path(&key);
            remove(&path)?;
            fs::create_dir(&path)?;
            let detail = if rng.bool() {
                fs::write(path.join("inner"), b"x")?;
                "file replaced by a directory holding a file"
            } else {
                "file replaced by an empty directory"
            };
            done(key, damage, detail.to_string())
        }
        M::SymlinkLoop | M::SymlinkOutside | M::Fifo | M::Socket => {
            let all: Vec<String> = tree
                .entries
                .iter()
                .filter(|(k, kind)| {
                    *kind != EntryKind::Other && k.starts_with("docker/registry/v2/")
                })
                .map(|(k, _)| k.clone())
                .collect();
            let Some(key) = pick(rng, &all) else {
                return Ok(None);
            };
            let damage = tree.damage_of(&key, How::Unreadable);
            let path = tree.path(&key);
            remove(&path)?;
            let detail = match mutation {
                M::SymlinkLoop => {
                    if rng.bool() {
                        std::os::unix::fs::symlink(&path, &path)?;
                        "a link to itself".to_string()
                    } else {
                        // A directory holding a link to its own parent.
                        fs::create_dir(&path)?;
                        std::os::unix::fs::symlink("..", path.join("up"))?;
                        let mut damage = tree.damage_of(&key, How::Gone);
                        damage.insert(
                            0,
                            Damage {
                                key: format!("{key}/up"),
                                target: Target::Nothing,
                                how: How::Unreadable,
                                content: None,
                            },
                        );
                        return Ok(done(key, damage, "a directory holding a link to ..".into()));
                    }
                }
                M::SymlinkOutside => {
                    let target = if rng.bool() {
                        PathBuf::from("/etc/passwd")
                    } else {
                        outside.to_path_buf()
                    };
                    std::os::unix::fs::symlink(&target, &path)?;
                    format!("a link to {}", target.display())
                }
                M::Fifo => {
                    mkfifo(&path)?;
                    "a FIFO".to_string()
                }
                _ => {
                    let listener = std::os::unix::net::UnixListener::bind(&path);
                    if listener.is_err() {
                        // The path is too long for a socket address: a FIFO instead.
                        mkfifo(&path)?;
                        "a FIFO (path too long for a socket)".to_string()
                    } else {
                        "a socket".to_string()
                    }
                }
            };
            done(key, damage, detail)
        }
        M::SymlinkDevZero => {
            let pool: Vec<String> = tree.files().map(str::to_string).collect();
            let Some(key) = pick(rng, &pool) else {
                return Ok(None);
            };
            let damage = tree.damage_of(&key, How::Unreadable);
            let path = tree.path(&key);
            remove(&path)?;
            std::os::unix::fs::symlink("/dev/zero", &path)?;
            done(key, damage, "a link to /dev/zero".into())
        }
        M::SymlinkOther => {
            let pool = if rng.bool() {
                tree.blobs()
            } else {
                tree.links()
            };
            let (Some(key), Some(other)) = (pick(rng, &pool), pick(rng, &pool)) else {
                return Ok(None);
            };
            if key == other {
                return Ok(None);
            }
            let (Some(new), Some(old)) = (
                read_small(&tree.path(&other))?,
                read_small(&tree.path(&key))?,
            ) else {
                return Ok(None);
            };
            if new == old {
                return Ok(None);
            }
            let d = changed(&key, &new);
            let path = tree.path(&key);
            remove(&path)?;
            // A relative link, as an operator's `ln -s` inside the tree would make.
            let up = "../".repeat(key.matches('/').count());
            std::os::unix::fs::symlink(format!("{up}{other}"), &path)?;
            done(key, vec![d], format!("a link to {other}"))
        }
        M::SparseHuge => {
            let pool = if rng.u8(..4) == 0 {
                tree.links()
            } else {
                tree.blobs()
            };
            let Some(key) = pick(rng, &pool) else {
                return Ok(None);
            };
            fs::OpenOptions::new()
                .write(true)
                .open(tree.path(&key))?
                .set_len(1 << 40)?;
            let d = Damage {
                key: key.clone(),
                target: tree.classify(&key),
                how: How::Changed { new_size: 1 << 40 },
                content: None,
            };
            done(key, vec![d], "sparse 1 TiB".into())
        }
    })
}

fn added(key: &str) -> Damage {
    Damage {
        key: key.to_string(),
        target: Target::Nothing,
        how: How::Added,
        content: None,
    }
}

/// Directories whose loss or replacement the mutations aim at: a repository's `_layers`,
/// `_manifests`, `_manifests/tags`, `_manifests/revisions`, a tag, a blob's `<hex>/` or a
/// fan-out directory.
fn structural_dir(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or("");
    if key.contains("/repositories/") {
        return matches!(name, "_layers" | "_manifests" | "tags" | "revisions")
            || key
                .rsplit_once('/')
                .is_some_and(|(parent, _)| parent.ends_with("/_manifests/tags"));
    }
    if let Some(rest) = key.strip_prefix("docker/registry/v2/blobs/sha256/") {
        return !rest.is_empty();
    }
    false
}

/// Change the type of a field somewhere in a manifest document.
fn json_field_type(rng: &mut fastrand::Rng, doc: &mut serde_json::Value) -> String {
    use serde_json::{json, Value};
    let Value::Object(map) = doc else {
        *doc = json!({ "was": doc.clone() });
        return "not an object: wrapped".to_string();
    };
    let options = [
        "size",
        "mediaType",
        "layers",
        "manifests",
        "schemaVersion",
        "config",
    ];
    let field = options[rng.usize(..options.len())];
    match field {
        "size" => {
            // A descriptor's size as a string.
            for list in ["layers", "manifests"] {
                if let Some(Value::Array(items)) = map.get_mut(list) {
                    if let Some(Value::Object(d)) = items.first_mut() {
                        let size = d.get("size").cloned().unwrap_or(Value::Null);
                        d.insert("size".into(), Value::String(size.to_string()));
                        return format!("{list}[0].size as a string");
                    }
                }
            }
            if let Some(Value::Object(c)) = map.get_mut("config") {
                c.insert("size".into(), json!("12"));
                return "config.size as a string".to_string();
            }
            map.insert("size".into(), json!("1"));
            "size as a string".to_string()
        }
        "mediaType" => {
            map.insert("mediaType".into(), json!(42));
            "mediaType as a number".to_string()
        }
        "layers" | "manifests" => {
            let value = map.remove(field).unwrap_or(Value::Null);
            map.insert(field.into(), json!({ "0": value }));
            format!("{field} as an object")
        }
        "schemaVersion" => {
            map.insert("schemaVersion".into(), json!("2"));
            "schemaVersion as a string".to_string()
        }
        _ => {
            map.insert("config".into(), Value::Null);
            "config as null".to_string()
        }
    }
}

/// Delete a field of a manifest document.
fn json_delete_field(rng: &mut fastrand::Rng, doc: &mut serde_json::Value) -> String {
    let serde_json::Value::Object(map) = doc else {
        return "not an object".to_string();
    };
    let options = [
        "config",
        "layers",
        "manifests",
        "mediaType",
        "schemaVersion",
    ];
    let first = rng.usize(..options.len());
    for i in 0..options.len() {
        let field = options[(first + i) % options.len()];
        if map.remove(field).is_some() {
            return format!("{field} deleted");
        }
    }
    map.clear();
    "every field deleted".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":3}]}"#;

    /// A one-image tree and what a scan knows of it.
    fn tree() -> (tempfile::TempDir, Known) {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = crate::image::sha256_digest(MANIFEST);
        let config = format!("sha256:{}", "1".repeat(64));
        let layer = format!("sha256:{}", "2".repeat(64));
        let put = |key: String, bytes: &[u8]| {
            let path = dir.path().join(key);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, bytes).expect("write");
        };
        put(blob_key(&m), MANIFEST);
        put(blob_key(&config), b"{}");
        put(blob_key(&layer), b"abc");
        put(revision_key("a/b", &m), m.as_bytes());
        put(tag_key("a/b", "t"), m.as_bytes());
        let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
        for d in [&config, &layer] {
            put(
                format!(
                    "docker/registry/v2/repositories/a/b/_layers/sha256/{}/link",
                    hex(d)
                ),
                d.as_bytes(),
            );
        }
        put(
            format!(
                "docker/registry/v2/repositories/a/b/_manifests/tags/t/index/sha256/{}/link",
                hex(&m)
            ),
            m.as_bytes(),
        );
        let mut known = Known::default();
        known.manifests.insert(m.clone());
        known.edges.insert(m.clone(), vec![config, layer]);
        known.revisions.insert("a/b".into(), [m.clone()].into());
        known.tags.insert("a/b".into(), vec![("t".into(), m)]);
        (dir, known)
    }

    #[test]
    fn every_mutation_applies_and_says_what_it_damaged() {
        let outside = tempfile::tempdir().expect("tempdir");
        for &mutation in Mutation::ALL {
            let mut applied = None;
            for seed in 0..20 {
                let (dir, known) = tree();
                let before = entries(dir.path()).expect("entries");
                let t = Tree {
                    root: dir.path(),
                    known: &known,
                    entries: before.clone(),
                };
                let mut rng = fastrand::Rng::with_seed(seed);
                if let Some(a) = apply(&mut rng, &t, mutation, outside.path()).expect("apply") {
                    let after = entries(dir.path()).expect("entries");
                    let changed = after != before
                        || a.damage
                            .iter()
                            .any(|d| matches!(d.how, How::Changed { .. }));
                    assert!(changed, "{mutation:?} changed nothing");
                    applied = Some(a);
                    break;
                }
            }
            let a = applied.unwrap_or_else(|| panic!("{mutation:?} never applied"));
            assert_eq!(a.mutation, mutation);
            assert!(!a.damage.is_empty(), "{mutation:?}: no damage recorded");
            assert!(
                a.damage
                    .iter()
                    .any(|d| d.key == a.key || d.key.starts_with(&a.key)),
                "{mutation:?}: the damage does not name {}",
                a.key
            );
        }
    }

    #[test]
    fn reach_stops_at_damaged_links_and_manifests() {
        let (_dir, known) = tree();
        let m = known.manifests.iter().next().expect("manifest").clone();
        let layer = format!("sha256:{}", "2".repeat(64));
        let all = known.reach(&|_| false);
        assert!(all.in_repo("a/b", &layer));
        // The manifest's data damaged: it is still reached, its layer no longer.
        let data = blob_key(&m);
        let r = known.reach(&|k| k == data);
        assert!(r.in_repo("a/b", &m) && !r.in_repo("a/b", &layer));
        // Both ways in damaged: nothing is reached.
        let (rev, tag) = (revision_key("a/b", &m), tag_key("a/b", "t"));
        let r = known.reach(&|k| k == rev || k == tag);
        assert!(!r.any(&m));
    }
}
