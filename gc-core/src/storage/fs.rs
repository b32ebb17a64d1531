//! `FsStorage`: a registry's filesystem root (the `rootdirectory` of the filesystem driver).
//!
//! Keys are paths relative to the root, with `/` separators. Listing walks the directory tree
//! on a blocking thread and streams results in batches through a bounded channel, so a tree of
//! a million files is never held in memory at once. Sizes and modification times come from the
//! files. An empty directory is listed as its key with a trailing `/` (the registry's own
//! filesystem driver sees empty directories, and an empty `_manifests/tags/` changes what its
//! garbage collector does).
//!
//! Nothing in the tree can hang a scan or lead it outside the root:
//! - a symbolic link whose target is inside the root is followed (the registry's filesystem
//!   driver follows them too); one leading outside the root, a link loop and a link to nothing
//!   are error items naming the link's key ([`StorageError::SymlinkOutsideRoot`],
//!   [`StorageError::SymlinkLoop`], [`StorageError::DanglingSymlink`]), never listed through;
//! - a FIFO, socket or device (also behind a link) is an error item
//!   ([`StorageError::NotAFile`]) and is never opened: opening a FIFO for reading blocks until a
//!   writer comes, and a device such as `/dev/zero` never ends;
//! - `get` and `head` resolve the key again at read time (a link swapped in after the listing
//!   is checked like a listed one), look at what the resolved path is before opening it, open
//!   it non-blocking and without following a last-component link, check the open file again
//!   (on Linux, where `/proc/self/fd` says it is; its type with `fstat`), and refuse a file over the limit by its size before reading (a sparse 1 TB
//!   file costs one `fstat`); at most `max_bytes + 1` bytes are read.
//!
//! An unreadable directory or a file name that is not UTF-8 is an error item naming the path,
//! never a silent skip.

use super::{valid_prefix, ObjectMeta, RequestCounter, RequestCounts, Storage, StorageError};
use futures::stream::{self, BoxStream, StreamExt};
use std::io::{ErrorKind, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};

const BATCH: usize = 512;

/// A registry storage tree on a local filesystem.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
    /// The root with every link resolved, once it exists.
    canonical_root: Arc<OnceLock<PathBuf>>,
    requests: Arc<RequestCounter>,
}

impl FsStorage {
    /// A storage rooted at `root`, the folder that holds `docker/registry/v2`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsStorage {
            root: root.into(),
            canonical_root: Arc::new(OnceLock::new()),
            requests: Arc::new(RequestCounter::default()),
        }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        let rel = Path::new(key);
        let safe = !key.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(StorageError::BadKey {
                key: key.to_string(),
                reason: "not a relative path of plain components".to_string(),
            });
        }
        Ok(self.root.join(rel))
    }

    fn io_error(key: &str, err: std::io::Error) -> StorageError {
        if err.kind() == ErrorKind::PermissionDenied {
            StorageError::PermissionDenied {
                key: key.to_string(),
                backend: "filesystem",
            }
        } else {
            StorageError::Backend {
                key: key.to_string(),
                backend: "filesystem",
                source: Box::new(err),
            }
        }
    }

    /// The root with every link resolved (cached once the root exists).
    fn canonical_root(root: &Path, cell: &OnceLock<PathBuf>) -> Option<PathBuf> {
        if let Some(p) = cell.get() {
            return Some(p.clone());
        }
        let p = root.canonicalize().ok()?;
        Some(cell.get_or_init(|| p).clone())
    }

    fn walk(
        root: PathBuf,
        canonical_root: Arc<OnceLock<PathBuf>>,
        prefix: String,
        requests: Arc<RequestCounter>,
        tx: tokio::sync::mpsc::Sender<Vec<Result<ObjectMeta, StorageError>>>,
    ) {
        let start = if prefix.is_empty() {
            root.clone()
        } else {
            root.join(&prefix)
        };
        if !start.exists() {
            requests.list();
            return;
        }
        let canonical_root =
            Self::canonical_root(&root, &canonical_root).unwrap_or_else(|| root.clone());
        let mut batch = Vec::with_capacity(BATCH);
        // A directory is empty when the entry after it in the depth-first walk is not deeper
        // (an error entry leaves it unknown: no marker).
        let mut open_dir: Option<(PathBuf, usize)> = None;
        let mut entries = walkdir::WalkDir::new(&start).follow_links(true).into_iter();
        while let Some(entry) = entries.next() {
            if let (Some((dir, depth)), Ok(e)) = (&open_dir, &entry) {
                if e.depth() <= *depth && *depth > 0 {
                    batch.extend(Self::dir_marker(&root, dir));
                }
            }
            open_dir = None;
            let item = match entry {
                // Removed since its directory was read (an upload finishing, a registry
                // deleting): gone, not unreadable.
                Err(err) if Self::vanished(&err) => None,
                Err(err) => Some(Err(Self::walk_error(&root, err, &start))),
                Ok(entry) => {
                    let checked = if entry.path_is_symlink() {
                        Self::check_link(&root, &canonical_root, entry.path())
                    } else {
                        Ok(())
                    };
                    let file_type = entry.file_type();
                    match checked {
                        Err(err) => {
                            if file_type.is_dir() {
                                // Not listed through: its contents are not the registry's.
                                entries.skip_current_dir();
                            }
                            Some(Err(err))
                        }
                        Ok(()) if file_type.is_dir() => {
                            requests.list();
                            open_dir = Some((entry.path().to_path_buf(), entry.depth()));
                            None
                        }
                        Ok(()) if file_type.is_file() => match entry.metadata() {
                            Ok(md) => Some(Self::meta_of(&root, entry.path(), Some(md))),
                            Err(_) => match Self::meta_of(&root, entry.path(), None) {
                                Err(_) if gone(entry.path()) => None, // removed meanwhile
                                meta => Some(meta),
                            },
                        },
                        Ok(()) => Some(Err(StorageError::NotAFile {
                            key: Self::key_of(&root, entry.path()),
                            what: describe(file_type),
                        })),
                    }
                }
            };
            if let Some(item) = item {
                batch.push(item);
                if batch.len() >= BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.blocking_send(full).is_err() {
                        return; // the consumer went away
                    }
                }
            }
        }
        if let Some((dir, depth)) = open_dir {
            if depth > 0 {
                batch.extend(Self::dir_marker(&root, &dir));
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
    }

    /// Whether a walk error only says that the entry was removed after its directory was
    /// read: the path is not there at all (a link to nothing is there, and is an error).
    fn vanished(err: &walkdir::Error) -> bool {
        let not_found = err
            .io_error()
            .is_some_and(|io| io.kind() == ErrorKind::NotFound);
        not_found && err.path().is_some_and(gone)
    }

    /// A walk error as a storage error: link loops and links to nothing by their own
    /// variants, named by key; anything else by its path, as the walk saw it.
    fn walk_error(root: &Path, err: walkdir::Error, start: &Path) -> StorageError {
        let Some(path) = err.path().map(Path::to_path_buf) else {
            return StorageError::Backend {
                key: start.display().to_string(),
                backend: "filesystem",
                source: Box::new(err),
            };
        };
        if err.loop_ancestor().is_some() {
            return StorageError::SymlinkLoop {
                key: Self::key_of(root, &path),
            };
        }
        if let Some(io) = err.io_error() {
            if is_loop(io) {
                return StorageError::SymlinkLoop {
                    key: Self::key_of(root, &path),
                };
            }
            if io.kind() == ErrorKind::NotFound {
                if let Ok(target) = std::fs::read_link(&path) {
                    return StorageError::DanglingSymlink {
                        key: Self::key_of(root, &path),
                        target: target.display().to_string(),
                    };
                }
            }
        }
        StorageError::Backend {
            key: path.display().to_string(),
            backend: "filesystem",
            source: Box::new(err),
        }
    }

    /// Whether the symbolic link at `path` may be followed: its target, fully resolved, is
    /// inside the root.
    fn check_link(root: &Path, canonical_root: &Path, path: &Path) -> Result<(), StorageError> {
        let key = Self::key_of(root, path);
        match path.canonicalize() {
            Ok(target) if target.starts_with(canonical_root) => Ok(()),
            Ok(target) => Err(StorageError::SymlinkOutsideRoot {
                key,
                target: target.display().to_string(),
            }),
            Err(e) if is_loop(&e) => Err(StorageError::SymlinkLoop { key }),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(StorageError::DanglingSymlink {
                key,
                target: std::fs::read_link(path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default(),
            }),
            Err(e) => Err(Self::io_error(&key, e)),
        }
    }

    /// The key of a path below the root, for messages (lossy where a name is not UTF-8).
    fn key_of(root: &Path, path: &Path) -> String {
        match path.strip_prefix(root) {
            Ok(rel) => rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            Err(_) => path.display().to_string(),
        }
    }

    /// Resolve `key` (at `path`) for a read: `None` when nothing is there, else the resolved
    /// path and its metadata, a directory or a regular file inside the root. Looks at the
    /// entry without opening it.
    fn resolve(
        root: &Path,
        canonical_root: &OnceLock<PathBuf>,
        key: &str,
        path: &Path,
    ) -> Result<Option<(PathBuf, std::fs::Metadata)>, StorageError> {
        let Some(canonical_root) = Self::canonical_root(root, canonical_root) else {
            return Ok(None); // no root, nothing in it
        };
        let target = match path.canonicalize() {
            Ok(t) => t,
            Err(e) if is_loop(&e) => {
                return Err(StorageError::SymlinkLoop {
                    key: key.to_string(),
                })
            }
            Err(e) if is_absent(&e) => {
                return match std::fs::read_link(path) {
                    Ok(target) => Err(StorageError::DanglingSymlink {
                        key: key.to_string(),
                        target: target.display().to_string(),
                    }),
                    Err(_) => Ok(None),
                };
            }
            Err(e) => return Err(Self::io_error(key, e)),
        };
        if !target.starts_with(&canonical_root) {
            return Err(StorageError::SymlinkOutsideRoot {
                key: key.to_string(),
                target: target.display().to_string(),
            });
        }
        let md = match std::fs::symlink_metadata(&target) {
            Ok(md) => md,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(Self::io_error(key, e)),
        };
        if !md.is_dir() && !md.is_file() {
            return Err(StorageError::NotAFile {
                key: key.to_string(),
                what: describe(md.file_type()),
            });
        }
        Ok(Some((target, md)))
    }

    /// Read the regular file `key`, resolved to `target`, refusing more than `max_bytes`.
    fn read_file(
        key: &str,
        target: &Path,
        canonical_root: &Path,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Never block on a FIFO swapped in after `resolve` looked; never follow a link
            // swapped in for the resolved file.
            options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
        }
        let mut file = match options.open(target) {
            Ok(f) => f,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(Self::io_error(key, e)),
        };
        #[cfg(target_os = "linux")]
        {
            // A directory above the file swapped for a link between `resolve` and `open`:
            // where the open file really is, as the kernel has it.
            use std::os::fd::AsRawFd;
            let proc_fd = format!("/proc/self/fd/{}", file.as_raw_fd());
            if let Ok(real) = std::fs::read_link(proc_fd) {
                if !real.starts_with(canonical_root) {
                    return Err(StorageError::SymlinkOutsideRoot {
                        key: key.to_string(),
                        target: real.display().to_string(),
                    });
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = canonical_root;
        let md = file.metadata().map_err(|e| Self::io_error(key, e))?;
        if md.is_dir() {
            return Ok(None);
        }
        if !md.is_file() {
            return Err(StorageError::NotAFile {
                key: key.to_string(),
                what: describe(md.file_type()),
            });
        }
        if md.len() > max_bytes {
            return Err(StorageError::TooLarge {
                key: key.to_string(),
                size: md.len(),
                limit: max_bytes,
            });
        }
        // Read at most max_bytes + 1 so a file that grows under us is still refused.
        let mut data = Vec::with_capacity(md.len() as usize);
        (&mut file)
            .take(max_bytes + 1)
            .read_to_end(&mut data)
            .map_err(|e| Self::io_error(key, e))?;
        if data.len() as u64 > max_bytes {
            return Err(StorageError::TooLarge {
                key: key.to_string(),
                size: data.len() as u64,
                limit: max_bytes,
            });
        }
        Ok(Some(data))
    }

    /// An empty directory as a listing item: its key with a trailing `/`, size 0.
    fn dir_marker(root: &Path, dir: &Path) -> Option<Result<ObjectMeta, StorageError>> {
        match Self::meta_of(root, dir, None) {
            Ok(mut meta) => {
                meta.key.push('/');
                meta.size = 0;
                Some(Ok(meta))
            }
            Err(_) if gone(dir) => None, // removed since it was read
            Err(e) => Some(Err(e)),
        }
    }

    /// Metadata of a listed file; `known` is what the walk already read, to save a `stat`.
    fn meta_of(
        root: &Path,
        path: &Path,
        known: Option<std::fs::Metadata>,
    ) -> Result<ObjectMeta, StorageError> {
        let rel = path.strip_prefix(root).map_err(|_| StorageError::BadKey {
            key: path.display().to_string(),
            reason: "outside the storage root".to_string(),
        })?;
        let mut key = String::new();
        for component in rel.components() {
            let part = component
                .as_os_str()
                .to_str()
                .ok_or_else(|| StorageError::BadKey {
                    key: rel.display().to_string(),
                    reason: "file name is not UTF-8".to_string(),
                })?;
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str(part);
        }
        let md = match known {
            Some(md) => md,
            None => std::fs::metadata(path).map_err(|e| Self::io_error(&key, e))?,
        };
        let last_modified = md.modified().map_err(|e| Self::io_error(&key, e))?;
        Ok(ObjectMeta {
            key,
            size: md.len(),
            last_modified,
            e_tag: None,
        })
    }
}

#[async_trait::async_trait]
impl Storage for FsStorage {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta, StorageError>> {
        if !valid_prefix(prefix) {
            let err = StorageError::InvalidPrefix(prefix.to_string());
            return stream::iter(vec![Err(err)]).boxed();
        }
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let root = self.root.clone();
        let canonical_root = self.canonical_root.clone();
        let prefix = prefix.to_string();
        let requests = self.requests.clone();
        let walker = tokio::task::spawn_blocking(move || {
            Self::walk(root, canonical_root, prefix, requests, tx)
        });
        let batches = stream::unfold((rx, Some(walker)), |(mut rx, walker)| async move {
            match rx.recv().await {
                Some(batch) => Some((batch, (rx, walker))),
                None => {
                    // The walker finished or died: a panic in it must not look like a clean end.
                    let walker = walker?;
                    match walker.await {
                        Ok(()) => None,
                        Err(join) => Some((
                            vec![Err(StorageError::Backend {
                                key: String::new(),
                                backend: "filesystem",
                                source: Box::new(join),
                            })],
                            (rx, None),
                        )),
                    }
                }
            }
        });
        batches.flat_map(stream::iter).boxed()
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.requests.get();
        let path = self.path_of(key)?;
        let key = key.to_string();
        let root = self.root.clone();
        let canonical_root = self.canonical_root.clone();
        let read = tokio::task::spawn_blocking(move || -> Result<Option<Vec<u8>>, StorageError> {
            match Self::resolve(&root, &canonical_root, &key, &path)? {
                Some((target, md)) if md.is_file() => {
                    // `resolve` found the root, so it is known by now.
                    let inside = Self::canonical_root(&root, &canonical_root).unwrap_or(root);
                    Self::read_file(&key, &target, &inside, max_bytes)
                }
                _ => Ok(None),
            }
        });
        read.await.map_err(|join| StorageError::Backend {
            key: String::new(),
            backend: "filesystem",
            source: Box::new(join),
        })?
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        self.requests.head();
        let path = self.path_of(key)?;
        let key = key.to_string();
        let root = self.root.clone();
        let canonical_root = self.canonical_root.clone();
        let look =
            tokio::task::spawn_blocking(move || -> Result<Option<ObjectMeta>, StorageError> {
                match Self::resolve(&root, &canonical_root, &key, &path)? {
                    Some((_, md)) if md.is_file() => Ok(Some(ObjectMeta {
                        last_modified: md.modified().map_err(|e| Self::io_error(&key, e))?,
                        key,
                        size: md.len(),
                        e_tag: None,
                    })),
                    _ => Ok(None),
                }
            });
        look.await.map_err(|join| StorageError::Backend {
            key: String::new(),
            backend: "filesystem",
            source: Box::new(join),
        })?
    }

    fn request_counts(&self) -> RequestCounts {
        self.requests.snapshot()
    }

    /// The entries of the root directory and of its parent (a `/` after each directory,
    /// links followed), sorted, at most [`super::RootSurvey::MAX_ENTRIES`] each. A directory
    /// that does not exist has no entries; a relative root's parent is found from the working
    /// directory.
    async fn survey_root(&self) -> Result<super::RootSurvey, StorageError> {
        fn entries(dir: &Path) -> Result<Vec<String>, StorageError> {
            let read = match std::fs::read_dir(dir) {
                Ok(read) => read,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(FsStorage::io_error(&dir.display().to_string(), e)),
            };
            let mut names = Vec::new();
            for entry in read {
                let entry =
                    entry.map_err(|e| FsStorage::io_error(&dir.display().to_string(), e))?;
                let mut name = entry.file_name().to_string_lossy().into_owned();
                if entry.path().is_dir() {
                    name.push('/');
                }
                names.push(name);
            }
            names.sort();
            names.truncate(super::RootSurvey::MAX_ENTRIES);
            Ok(names)
        }
        self.requests.list();
        let root = self.root.clone();
        let requests = self.requests.clone();
        let survey = tokio::task::spawn_blocking(move || {
            let under_root = entries(&root)?;
            let parent = std::path::absolute(&root)
                .ok()
                .and_then(|abs| abs.parent().map(Path::to_path_buf));
            let beside_root = match parent {
                Some(parent) => {
                    requests.list();
                    entries(&parent)?
                }
                None => Vec::new(),
            };
            Ok(super::RootSurvey {
                under_root,
                beside_root,
            })
        });
        survey.await.map_err(|join| StorageError::Backend {
            key: String::new(),
            backend: "filesystem",
            source: Box::new(join),
        })?
    }
}

/// What a filesystem entry that is neither a regular file nor a directory is.
fn describe(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "FIFO";
        }
        if file_type.is_socket() {
            return "socket";
        }
        if file_type.is_block_device() {
            return "block device";
        }
        if file_type.is_char_device() {
            return "character device";
        }
    }
    if file_type.is_symlink() {
        return "symbolic link";
    }
    "special file"
}

/// Whether an I/O error says nothing is at a path: it does not exist, or a component above it
/// is a file (`blobs/sha256/ab` a file: no key below it exists, as on an object store).
fn is_absent(err: &std::io::Error) -> bool {
    matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// Whether an I/O error says a path runs into a symbolic link loop (`ELOOP`).
fn is_loop(err: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        err.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::time::Duration;

    /// Well over what any of these takes; a hang fails instead of blocking the suite.
    const PROMPT: Duration = Duration::from_secs(10);

    const V2: &str = "docker/registry/v2";

    /// A tree with one ordinary blob, and the storage over it.
    fn tree() -> (tempfile::TempDir, FsStorage) {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join(V2).join("blobs/sha256/aa/aaaa/data");
        std::fs::create_dir_all(data.parent().expect("parent")).expect("mkdir");
        std::fs::write(&data, b"content").expect("write");
        let store = FsStorage::new(dir.path());
        (dir, store)
    }

    fn at(dir: &tempfile::TempDir, key: &str) -> PathBuf {
        let path = dir.path().join(V2).join(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        path
    }

    fn mkfifo(path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL");
        // SAFETY: `c` is a valid NUL-terminated path that lives across the call.
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
        assert_eq!(rc, 0, "mkfifo {}", path.display());
    }

    /// Everything listed (keys, sorted) and every error item, within [`PROMPT`].
    async fn list_all(store: &FsStorage) -> (Vec<ObjectMeta>, Vec<StorageError>) {
        let items: Vec<_> = tokio::time::timeout(PROMPT, store.list("").collect::<Vec<_>>())
            .await
            .expect("the listing completes promptly");
        let (mut ok, mut err) = (Vec::new(), Vec::new());
        for item in items {
            match item {
                Ok(m) => ok.push(m),
                Err(e) => err.push(e),
            }
        }
        ok.sort_by(|a, b| a.key.cmp(&b.key));
        (ok, err)
    }

    fn keys(listed: &[ObjectMeta]) -> Vec<&str> {
        listed.iter().map(|m| m.key.as_str()).collect()
    }

    async fn get(store: &FsStorage, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        tokio::time::timeout(PROMPT, store.get(&format!("{V2}/{key}"), 4 << 20))
            .await
            .expect("get returns promptly")
    }

    async fn head(store: &FsStorage, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        tokio::time::timeout(PROMPT, store.head(&format!("{V2}/{key}")))
            .await
            .expect("head returns promptly")
    }

    const BLOB: &str = "docker/registry/v2/blobs/sha256/aa/aaaa/data";

    #[tokio::test]
    async fn a_fifo_is_reported_and_never_opened() {
        let (dir, store) = tree();
        mkfifo(&at(&dir, "blobs/sha256/bb/bbbb/data"));
        // Also behind a link inside the root.
        symlink(
            at(&dir, "blobs/sha256/bb/bbbb/data"),
            at(&dir, "blobs/sha256/cc/cccc/data"),
        )
        .expect("symlink");
        let (listed, errors) = list_all(&store).await;
        assert_eq!(keys(&listed), vec![BLOB]);
        let mut named: Vec<String> = errors
            .iter()
            .map(|e| match e {
                StorageError::NotAFile { key, what: "FIFO" } => key.clone(),
                other => panic!("unexpected {other}"),
            })
            .collect();
        named.sort();
        assert_eq!(
            named,
            vec![
                "docker/registry/v2/blobs/sha256/bb/bbbb/data",
                "docker/registry/v2/blobs/sha256/cc/cccc/data",
            ]
        );
        for key in ["blobs/sha256/bb/bbbb/data", "blobs/sha256/cc/cccc/data"] {
            assert!(
                matches!(get(&store, key).await, Err(StorageError::NotAFile { .. })),
                "{key}"
            );
            assert!(
                matches!(head(&store, key).await, Err(StorageError::NotAFile { .. })),
                "{key}"
            );
        }
    }

    #[tokio::test]
    async fn a_socket_is_reported() {
        let (dir, store) = tree();
        let path = at(&dir, "repositories/a/_layers/sha256/aaaa/link");
        let _listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let (listed, errors) = list_all(&store).await;
        assert_eq!(keys(&listed), vec![BLOB]);
        assert!(
            matches!(
                &errors[..],
                [StorageError::NotAFile { key, what: "socket" }]
                    if key == "docker/registry/v2/repositories/a/_layers/sha256/aaaa/link"
            ),
            "{errors:?}"
        );
        let got = get(&store, "repositories/a/_layers/sha256/aaaa/link").await;
        assert!(matches!(got, Err(StorageError::NotAFile { .. })), "{got:?}");
    }

    #[tokio::test]
    async fn symlink_loops_are_reported_by_key() {
        let (dir, store) = tree();
        // A link to itself, and a directory link to an ancestor.
        let own = at(&dir, "blobs/sha256/bb/bbbb/data");
        symlink(&own, &own).expect("symlink");
        symlink("..", at(&dir, "repositories/a/_layers/up")).expect("symlink");
        let (listed, errors) = list_all(&store).await;
        assert_eq!(keys(&listed), vec![BLOB]);
        let mut named: Vec<String> = errors
            .iter()
            .map(|e| match e {
                StorageError::SymlinkLoop { key } => key.clone(),
                other => panic!("unexpected {other}"),
            })
            .collect();
        named.sort();
        assert_eq!(
            named,
            vec![
                "docker/registry/v2/blobs/sha256/bb/bbbb/data",
                "docker/registry/v2/repositories/a/_layers/up",
            ]
        );
        let got = get(&store, "blobs/sha256/bb/bbbb/data").await;
        assert!(
            matches!(got, Err(StorageError::SymlinkLoop { .. })),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn links_out_of_the_root_are_not_followed() {
        let (dir, store) = tree();
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("data"), b"secret").expect("write");
        symlink("/etc/passwd", at(&dir, "blobs/sha256/bb/bbbb/data")).expect("symlink");
        symlink("/dev/zero", at(&dir, "blobs/sha256/cc/cccc/data")).expect("symlink");
        symlink(outside.path(), at(&dir, "blobs/sha256/dd/dddd")).expect("symlink");
        let (listed, errors) = list_all(&store).await;
        assert_eq!(
            keys(&listed),
            vec![BLOB],
            "nothing listed through the links"
        );
        let mut named: Vec<(String, String)> = errors
            .iter()
            .map(|e| match e {
                StorageError::SymlinkOutsideRoot { key, target } => (key.clone(), target.clone()),
                other => panic!("unexpected {other}"),
            })
            .collect();
        named.sort();
        let outside_target = outside.path().canonicalize().expect("canonical");
        assert_eq!(
            named,
            vec![
                (
                    "docker/registry/v2/blobs/sha256/bb/bbbb/data".to_string(),
                    "/etc/passwd".to_string()
                ),
                (
                    "docker/registry/v2/blobs/sha256/cc/cccc/data".to_string(),
                    "/dev/zero".to_string()
                ),
                (
                    "docker/registry/v2/blobs/sha256/dd/dddd".to_string(),
                    outside_target.display().to_string()
                ),
            ]
        );
        for key in [
            "blobs/sha256/bb/bbbb/data",
            "blobs/sha256/cc/cccc/data",
            "blobs/sha256/dd/dddd/data",
        ] {
            let got = get(&store, key).await;
            assert!(
                matches!(got, Err(StorageError::SymlinkOutsideRoot { .. })),
                "{key}: {got:?}"
            );
            let got = head(&store, key).await;
            assert!(
                matches!(got, Err(StorageError::SymlinkOutsideRoot { .. })),
                "{key}: {got:?}"
            );
        }
    }

    #[tokio::test]
    async fn links_inside_the_root_are_followed() {
        let (dir, store) = tree();
        symlink(dir.path().join(BLOB), at(&dir, "blobs/sha256/bb/bbbb/data")).expect("symlink");
        // A relative link to a directory inside the root.
        symlink("aaaa", at(&dir, "blobs/sha256/aa/cccc")).expect("symlink");
        let (listed, errors) = list_all(&store).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            keys(&listed),
            vec![
                BLOB,
                "docker/registry/v2/blobs/sha256/aa/cccc/data",
                "docker/registry/v2/blobs/sha256/bb/bbbb/data",
            ]
        );
        assert!(listed.iter().all(|m| m.size == 7), "{listed:?}");
        for key in ["blobs/sha256/bb/bbbb/data", "blobs/sha256/aa/cccc/data"] {
            assert_eq!(
                get(&store, key).await.expect("get"),
                Some(b"content".to_vec())
            );
            assert_eq!(
                head(&store, key).await.expect("head").map(|m| m.size),
                Some(7)
            );
        }
    }

    #[tokio::test]
    async fn a_link_to_nothing_is_reported() {
        let (dir, store) = tree();
        symlink("nowhere", at(&dir, "blobs/sha256/bb/bbbb/data")).expect("symlink");
        let (listed, errors) = list_all(&store).await;
        assert_eq!(keys(&listed), vec![BLOB]);
        assert!(
            matches!(
                &errors[..],
                [StorageError::DanglingSymlink { key, target }]
                    if key == "docker/registry/v2/blobs/sha256/bb/bbbb/data" && target == "nowhere"
            ),
            "{errors:?}"
        );
        let got = get(&store, "blobs/sha256/bb/bbbb/data").await;
        assert!(
            matches!(got, Err(StorageError::DanglingSymlink { .. })),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn a_sparse_huge_file_is_refused_by_its_size() {
        let (dir, store) = tree();
        let path = at(&dir, "blobs/sha256/bb/bbbb/data");
        std::fs::File::create(&path)
            .expect("create")
            .set_len(1 << 40)
            .expect("set_len");
        let (listed, errors) = list_all(&store).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(listed[1].size, 1 << 40);
        let got = get(&store, "blobs/sha256/bb/bbbb/data").await;
        assert!(
            matches!(
                got,
                Err(StorageError::TooLarge { size, limit, .. }) if size == 1 << 40 && limit == 4 << 20
            ),
            "{got:?}"
        );
        let got = head(&store, "blobs/sha256/bb/bbbb/data").await;
        assert_eq!(got.expect("head").map(|m| m.size), Some(1 << 40));
    }

    #[tokio::test]
    async fn a_key_below_a_file_is_absent() {
        let (dir, store) = tree();
        std::fs::write(
            at(&dir, "blobs/sha256/bb"),
            b"a file where a directory belongs",
        )
        .expect("write");
        assert_eq!(
            get(&store, "blobs/sha256/bb/bbbb/data").await.expect("get"),
            None
        );
        assert!(head(&store, "blobs/sha256/bb/bbbb/data")
            .await
            .expect("head")
            .is_none());
    }

    #[tokio::test]
    async fn a_directory_is_absent_to_get_and_head() {
        let (_dir, store) = tree();
        assert_eq!(
            get(&store, "blobs/sha256/aa/aaaa").await.expect("get"),
            None
        );
        assert!(head(&store, "blobs/sha256/aa/aaaa")
            .await
            .expect("head")
            .is_none());
    }

    #[tokio::test]
    async fn an_audit_names_each_kind_and_is_incomplete() {
        use crate::audit::{audit, AuditOptions, NoProgress};
        let (dir, store) = tree();
        mkfifo(&at(&dir, "blobs/sha256/bb/bbbb/data"));
        symlink("/etc/passwd", at(&dir, "blobs/sha256/cc/cccc/data")).expect("symlink");
        let own = at(&dir, "blobs/sha256/dd/dddd/data");
        symlink(&own, &own).expect("symlink");
        symlink("nowhere", at(&dir, "blobs/sha256/ee/eeee/data")).expect("symlink");
        let outcome =
            tokio::time::timeout(PROMPT, audit(&store, &AuditOptions::default(), &NoProgress))
                .await
                .expect("the audit completes promptly");
        let report = &outcome.report;
        assert!(!report.summary.complete);
        let mut found: Vec<(&str, &str)> = report
            .findings
            .iter()
            .map(|f| (f.kind.as_str(), f.key.as_str()))
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                // The test's short digests are findings of their own.
                ("bad-digest-in-path", BLOB),
                (
                    "dangling-symlink",
                    "docker/registry/v2/blobs/sha256/ee/eeee/data"
                ),
                (
                    "special-file",
                    "docker/registry/v2/blobs/sha256/bb/bbbb/data"
                ),
                (
                    "symlink-loop",
                    "docker/registry/v2/blobs/sha256/dd/dddd/data"
                ),
                (
                    "symlink-outside-root",
                    "docker/registry/v2/blobs/sha256/cc/cccc/data"
                ),
            ]
        );
        assert_eq!(
            report.summary.errors.len(),
            4,
            "{:?}",
            report.summary.errors
        );
    }
}

/// Whether nothing is at `path`, not even a link.
fn gone(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == ErrorKind::NotFound)
}
