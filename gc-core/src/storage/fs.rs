//! `FsStorage`: a registry's filesystem root (the `rootdirectory` of the filesystem driver).
//!
//! Keys are paths relative to the root, with `/` separators. Listing walks the directory tree
//! on a blocking thread and streams results in batches through a bounded channel, so a tree of
//! a million files is never held in memory at once. Sizes and modification times come from the
//! files. An empty directory is listed as its key with a trailing `/` (the registry's own
//! filesystem driver sees empty directories, and an empty `_manifests/tags/` changes what its
//! garbage collector does). Symbolic links are followed (the registry's filesystem driver follows them too);
//! a link loop, an unreadable directory or a file name that is not UTF-8 is an error item
//! naming the path, never a silent skip.

use super::{valid_prefix, ObjectMeta, RequestCounter, RequestCounts, Storage, StorageError};
use futures::stream::{self, BoxStream, StreamExt};
use std::io::{ErrorKind, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

const BATCH: usize = 512;

/// A registry storage tree on a local filesystem.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
    requests: Arc<RequestCounter>,
}

impl FsStorage {
    /// A storage rooted at `root`, the folder that holds `docker/registry/v2`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsStorage {
            root: root.into(),
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

    fn walk(
        root: PathBuf,
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
        let mut batch = Vec::with_capacity(BATCH);
        // A directory is empty when the entry after it in the depth-first walk is not deeper.
        let mut open_dir: Option<(PathBuf, usize)> = None;
        for entry in walkdir::WalkDir::new(&start).follow_links(true) {
            if let (Some((dir, depth)), Ok(e)) = (&open_dir, &entry) {
                if e.depth() <= *depth && *depth > 0 {
                    batch.push(Self::dir_marker(&root, dir));
                }
            }
            if entry.is_ok() {
                open_dir = None;
            }
            let item = match entry {
                Err(err) => {
                    let path = err
                        .path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| start.display().to_string());
                    Some(Err(StorageError::Backend {
                        key: path,
                        backend: "filesystem",
                        source: Box::new(err),
                    }))
                }
                Ok(entry) if entry.file_type().is_dir() => {
                    requests.list();
                    open_dir = Some((entry.path().to_path_buf(), entry.depth()));
                    None
                }
                Ok(entry) => Some(Self::meta_of(&root, entry.path(), entry.metadata().ok())),
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
                batch.push(Self::dir_marker(&root, &dir));
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
    }

    /// An empty directory as a listing item: its key with a trailing `/`, size 0.
    fn dir_marker(root: &Path, dir: &Path) -> Result<ObjectMeta, StorageError> {
        let mut meta = Self::meta_of(root, dir, None)?;
        meta.key.push('/');
        meta.size = 0;
        Ok(meta)
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
        let prefix = prefix.to_string();
        let requests = self.requests.clone();
        let walker =
            tokio::task::spawn_blocking(move || Self::walk(root, prefix.clone(), requests, tx));
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
        let read = tokio::task::spawn_blocking(move || -> Result<Option<Vec<u8>>, StorageError> {
            let mut file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Self::io_error(&key, e)),
            };
            let md = file.metadata().map_err(|e| Self::io_error(&key, e))?;
            if md.is_dir() {
                return Ok(None);
            }
            if md.len() > max_bytes {
                return Err(StorageError::TooLarge {
                    key,
                    size: md.len(),
                    limit: max_bytes,
                });
            }
            // Read at most max_bytes + 1 so a file that grows under us is still refused.
            let mut data = Vec::with_capacity(md.len() as usize);
            (&mut file)
                .take(max_bytes + 1)
                .read_to_end(&mut data)
                .map_err(|e| Self::io_error(&key, e))?;
            if data.len() as u64 > max_bytes {
                return Err(StorageError::TooLarge {
                    key,
                    size: data.len() as u64,
                    limit: max_bytes,
                });
            }
            Ok(Some(data))
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
        match tokio::fs::metadata(&path).await {
            Ok(md) if md.is_dir() => Ok(None),
            Ok(md) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: md.len(),
                last_modified: md.modified().map_err(|e| Self::io_error(key, e))?,
                e_tag: None,
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io_error(key, e)),
        }
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
