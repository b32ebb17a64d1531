//! [`SqliteManifestStore`]: reads on the caller's connection, writes through the writer thread.
//!
//! `get` runs on the audit's single async task, once per listed manifest, so it is a point
//! lookup by primary key on a connection of its own with its statement prepared once
//! (microseconds; see the `get_cost` test). `put`s go to [`crate::writer`] so that no commit,
//! and no wait for another process's write lock, ever happens on the audit's path.
//!
//! Memory stays small whatever the cache holds: the writer's connection has a page cache of
//! 512 KiB, the reader's 2 MiB (given back by `flush`, once the audit's reads are done),
//! neither a memory map, and at most [`crate::writer::QUEUE`] entries wait for the writer (a
//! `put` blocks while the queue is full).

use crate::open::{self, Damage};
use crate::writer::Writer;
use gc_core::cache::{CacheError, CacheKey, ManifestStore};
use rusqlite::{CachedStatement, Connection, OptionalExtension};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The name of the database file in the cache directory; the schema version is in the name,
/// so that builds with another schema keep a file of their own instead of rebuilding this one.
pub const FILE_NAME: &str = "manifests-v3.sqlite3";

/// The schema this build reads and writes, also kept in the file's `PRAGMA user_version`.
/// Version 3: a rowid table keyed by a hash of the key, `row_id` (version 2 was a
/// `WITHOUT ROWID` table keyed by the key's columns, in 16 KiB pages; version 1 the same in
/// 4 KiB pages).
pub const SCHEMA_VERSION: i64 = 3;

/// The page size of a new file: SQLite's default.
///
/// The table is a rowid table so that its interior pages hold only row ids, a few pages in
/// all, which stay in the connection's page cache: a lookup then reads one leaf. (A
/// `WITHOUT ROWID` table is an index B-tree, whose interior cells hold whole rows: with
/// ~1.5 KB entries it had an eighth as many interior pages as leaves, most not cached, and
/// every lookup read two or three pages. An index B-tree also spills any cell over a quarter
/// of a page into overflow pages, where a rowid table's leaf holds cells up to nearly a whole
/// page.)
pub const PAGE_SIZE: i64 = 4096;

/// How long a statement waits for another connection's lock (another gc-audit run writing)
/// before it fails with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SELECT_ENTRY: &str =
    "SELECT entry FROM manifests WHERE id = ?1 AND format = ?2 AND digest = ?3 AND size = ?4";

/// A [`ManifestStore`] in a SQLite file, safe to share between processes (WAL mode, busy
/// timeout, schema created inside an immediate transaction).
///
/// Entries `put` become visible to `get` (in this or another process) once the writer has
/// committed them: at the latest when [`ManifestStore::flush`] returns. Dropping the store
/// commits what was put and stops the writer.
pub struct SqliteManifestStore {
    path: PathBuf,
    reader: Mutex<Connection>,
    writer: Writer,
    damage: Damage,
}

impl SqliteManifestStore {
    /// Open (creating `dir` and the file if missing) the cache in `dir`, file [`FILE_NAME`].
    ///
    /// A file that is no database of this schema (not SQLite, damaged, another schema version
    /// or table layout, or marked damaged by an earlier run) is moved aside to
    /// `<file>.corrupt-<unix time>-<pid>` and replaced by an empty cache: the returned warning
    /// says so. An error is returned only when the cache cannot be used at all (the directory
    /// cannot be created or written, the file is read-only, another process held it locked
    /// past [`BUSY_TIMEOUT`]); the caller then runs without a cache.
    pub fn open(dir: &Path) -> Result<(SqliteManifestStore, Option<String>), CacheError> {
        Self::open_with_busy_timeout(dir, BUSY_TIMEOUT)
    }

    /// [`SqliteManifestStore::open`] with another busy timeout than [`BUSY_TIMEOUT`].
    pub fn open_with_busy_timeout(
        dir: &Path,
        busy_timeout: Duration,
    ) -> Result<(SqliteManifestStore, Option<String>), CacheError> {
        std::fs::create_dir_all(dir).map_err(|e| CacheError {
            location: dir.display().to_string(),
            message: format!("cannot create the cache directory: {e}"),
        })?;
        let path = dir.join(FILE_NAME);
        let opened = open::open_checked(&path, busy_timeout)?;
        let writer = Writer::start(opened.writer, path.clone(), opened.damage.clone())?;
        let store = SqliteManifestStore {
            path,
            reader: Mutex::new(opened.reader),
            writer,
            damage: opened.damage,
        };
        Ok((store, opened.warning))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_reader(&self) -> Result<std::sync::MutexGuard<'_, Connection>, CacheError> {
        self.reader.lock().map_err(|_| CacheError {
            location: self.location(),
            message: "a thread panicked while reading it".to_string(),
        })
    }

    /// The lookup statement, prepared on `reader` (once: kept in its statement cache).
    fn selector<'c>(&self, reader: &'c Connection) -> Result<CachedStatement<'c>, CacheError> {
        reader
            .prepare_cached(SELECT_ENTRY)
            .map_err(|e| self.error("read", &e))
    }

    /// The entry under `key`, read with `select` (see [`SqliteManifestStore::selector`]).
    fn select(
        &self,
        select: &mut CachedStatement<'_>,
        key: &CacheKey<'_>,
    ) -> Result<Option<Vec<u8>>, CacheError> {
        select
            .query_row(
                (row_id(key), key.format, key.digest, size_column(key.size)),
                |row| row.get::<_, Vec<u8>>(0),
            )
            .optional()
            .map_err(|e| self.error("read", &e))
    }

    fn error(&self, what: &str, err: &rusqlite::Error) -> CacheError {
        self.damage.note(err);
        open::sqlite_error(&self.path, what, err)
    }
}

/// The row a key's entry is kept in: the first 64 bits of the key's fingerprint (MD5 of its
/// fields).
///
/// Two keys may share a row id (by chance, one in 2^64; or by design, someone who crafts
/// manifests). The row holds its key's columns too, and a lookup matches them, so a shared
/// row id is at worst a miss: the key written last owns the row (`INSERT OR REPLACE`), and the
/// other key's manifest is read from storage, never answered with the wrong entry.
pub(crate) fn row_id(key: &CacheKey<'_>) -> i64 {
    let fingerprint = key.fingerprint();
    let mut first = [0u8; 8];
    first.copy_from_slice(&fingerprint[..8]);
    i64::from_le_bytes(first)
}

/// The key's size as SQLite stores it: the same 64 bits as a signed integer (SQLite has no
/// unsigned type), so every `u64` has exactly one stored value.
pub(crate) fn size_column(size: u64) -> i64 {
    i64::from_ne_bytes(size.to_ne_bytes())
}

impl ManifestStore for SqliteManifestStore {
    fn get(&self, key: &CacheKey<'_>) -> Result<Option<Vec<u8>>, CacheError> {
        let reader = self.lock_reader()?;
        let mut select = self.selector(&reader)?;
        self.select(&mut select, key)
    }

    /// The keys' entries in one read transaction: its locks (of the WAL index, by `fcntl`)
    /// are taken once for the batch, not once per key.
    fn get_many(&self, keys: &[CacheKey<'_>]) -> Vec<Result<Option<Vec<u8>>, CacheError>> {
        let every_key_failed = |err: CacheError| keys.iter().map(|_| Err(err.clone())).collect();
        let reader = match self.lock_reader() {
            Ok(reader) => reader,
            Err(err) => return every_key_failed(err),
        };
        // Read-only: dropping it at the end rolls back nothing but the read lock.
        let transaction = match reader.unchecked_transaction() {
            Ok(transaction) => transaction,
            Err(e) => return every_key_failed(self.error("read", &e)),
        };
        let mut select = match self.selector(&transaction) {
            Ok(select) => select,
            Err(err) => return every_key_failed(err),
        };
        let found = keys
            .iter()
            .map(|key| self.select(&mut select, key))
            .collect();
        drop(select);
        drop(transaction);
        found
    }

    fn put(&self, key: &CacheKey<'_>, value: Vec<u8>) -> Result<(), CacheError> {
        self.writer.put(key, value)
    }

    fn flush(&self) -> Result<(), CacheError> {
        let flushed = self.writer.flush();
        // The audit's reads are done (see the writer): the reading connection's page cache
        // goes back too.
        if let Ok(reader) = self.reader.lock() {
            let _ = reader.execute_batch("PRAGMA shrink_memory");
        }
        flushed
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

impl fmt::Debug for SqliteManifestStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteManifestStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
