//! Opening the database file: pragmas, the schema check, and rebuilding a file that is unusable.
//!
//! A cache must never stop an audit nor answer wrongly, so a file that is not a database of
//! this schema is set aside and replaced, with one warning. What counts as unusable:
//! `SQLITE_NOTADB` (not SQLite at all), `SQLITE_CORRUPT` (damaged; SQLite reports a truncated
//! file this way as soon as it reads the header), another `user_version`, another table
//! layout, another program's tables, or a marker left by a run that hit `SQLITE_NOTADB` or
//! `SQLITE_CORRUPT` while reading or writing (see [`Damage`]).
//!
//! The check at open is deliberately cheap: the header (`user_version`), the table's columns,
//! and `SELECT 1 FROM manifests LIMIT 1`. `PRAGMA integrity_check` reads every page of the
//! file, which at a million entries is seconds of I/O on every run, to find damage that a
//! `get` reports anyway (as a `CacheError`, which makes the audit stop using the store and
//! leaves the marker, so that the next open rebuilds) and that gc-core's entry checksums
//! keep from ever becoming a wrong answer.
//!
//! Concurrency: two runs may open the same file at once. Opening an existing cache takes no
//! lock beyond SQLite's own. The two rare steps that change what the file is take an
//! exclusive lock on `<file>.lock` and re-check the file under it, so that another run that
//! did the step meanwhile is noticed:
//! - initializing a new file: switching it to WAL, then creating the table and setting
//!   `user_version` in one `BEGIN IMMEDIATE` transaction. (Two connections switching a file
//!   to WAL at once can both fail with `SQLITE_BUSY` at once: SQLite's deadlock avoidance
//!   skips the busy handler.)
//! - rebuilding an unusable file. It is moved aside (renamed) rather than deleted, which keeps
//!   it for inspection. On Unix a run that still has it open keeps working on the renamed
//!   file (its inode is unchanged), and nobody sees its writes any more. Closing it does not
//!   remove the new file's `-wal` and `-shm`, because SQLite notices that its file was moved.
//!   Nothing at the path is deleted either: a new cache may already be there.

use crate::store::{PAGE_SIZE, SCHEMA_VERSION};
use gc_core::cache::CacheError;
use rusqlite::ffi::ErrorCode;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The columns of `manifests` as `PRAGMA table_info` lists them: name, type, primary key rank.
const COLUMNS: [(&str, &str, i64); 5] = [
    ("id", "INTEGER", 1),
    ("format", "TEXT", 0),
    ("digest", "TEXT", 0),
    ("size", "INTEGER", 0),
    ("entry", "BLOB", 0),
];

/// `id` is the row id ([`crate::store::row_id`] of the other three key columns).
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS manifests (
    id INTEGER PRIMARY KEY,
    format TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    entry BLOB NOT NULL
)";

/// Why opening did not give a usable connection.
enum Failure {
    /// The file is new (or empty): create the schema, under the lock.
    New,
    /// The file is not a cache of this schema: rebuild it.
    Unusable(String),
    /// The cache cannot be used now (permissions, locks, I/O): give up.
    Failed(CacheError),
}

/// A [`CacheError`] for the file at `path`.
pub(crate) fn error(path: &Path, what: &str, err: &dyn std::fmt::Display) -> CacheError {
    CacheError {
        location: path.display().to_string(),
        message: format!("{what}: {err}"),
    }
}

/// A [`CacheError`] for SQLite's `err` on the file at `path`, with SQLite's extended result
/// code when it says more than the message (`disk I/O error` comes in some thirty kinds).
pub(crate) fn sqlite_error(path: &Path, what: &str, err: &rusqlite::Error) -> CacheError {
    match err.sqlite_error() {
        Some(code) if code.extended_code > 0xff => error(
            path,
            what,
            &format!("{err} (SQLite extended code {})", code.extended_code),
        ),
        _ => error(path, what, err),
    }
}

/// Whether SQLite says the file itself is bad (as opposed to locked, read-only, full, ...).
fn is_damage(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

fn classify(path: &Path, what: &str, err: rusqlite::Error) -> Failure {
    if is_damage(&err) {
        Failure::Unusable(err.to_string())
    } else {
        Failure::Failed(sqlite_error(path, what, &err))
    }
}

/// The page cache of the connection `get` uses, KiB: room for every interior page of a cache
/// of a few hundred thousand entries besides the leaves a batch reads, so that a lookup reads
/// one page from the file, its leaf. (With 512 KiB the leaves streaming through evicted the
/// interior pages: 1.6 reads per lookup, 148,000 `pread`s for a warm 1M-key rescan's 91,622
/// lookups.)
const READER_CACHE_KIB: i64 = 2048;

/// A connection to `path` with the per-connection settings: `busy_timeout`, a 512 KiB page cache
/// (the reader's is set larger by [`finish`]; a lookup reads one leaf, from the OS page cache,
/// and no overflow page: see [`PAGE_SIZE`]),
/// no memory map, `synchronous=NORMAL` (in WAL mode a crash loses at most the last commits,
/// never consistency, which is all a cache needs).
pub(crate) fn open_connection(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(busy_timeout)?;
    connection.pragma_update(None, "cache_size", -512)?;
    connection.pragma_update(None, "mmap_size", 0)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.set_prepared_statement_cache_capacity(4);
    Ok(connection)
}

/// The connections of an open store, with the warning when the file was rebuilt.
pub(crate) struct Opened {
    /// The connection `get` uses; it ran the check.
    pub(crate) reader: Connection,
    /// The writer thread's connection.
    pub(crate) writer: Connection,
    /// Where to note damage found later.
    pub(crate) damage: Damage,
    /// Set when the file was unusable and replaced.
    pub(crate) warning: Option<String>,
}

/// Open the cache at `path`, initializing a new file and rebuilding an unusable one.
///
/// Every open checks the file while holding `<file>.lock` shared, and initializing or
/// rebuilding holds it exclusively. SQLite finds a database's journal and WAL by the
/// database's path, so a file must never be renamed and replaced while another run is
/// opening it (that run could take the new file's journal for a hot journal of the old file).
/// Both connections are opened under the lock. Once open, each holds its WAL and shared
/// memory by descriptor, so stores already open take no lock and never delay a rebuild.
pub(crate) fn open_checked(path: &Path, busy_timeout: Duration) -> Result<Opened, CacheError> {
    let lock = LockFile::open(path)?;
    lock.shared()?;
    match check(path, busy_timeout, Lock::Shared) {
        Ok(reader) => return finish(path, busy_timeout, reader, None),
        Err(Failure::Failed(err)) => return Err(err),
        Err(Failure::New | Failure::Unusable(_)) => {}
    }
    lock.unlock()?;
    lock.exclusive()?;
    let (reader, warning) = initialize_or_rebuild(path, busy_timeout)?;
    finish(path, busy_timeout, reader, warning)
    // The lock is released when `lock` is dropped.
}

/// Open the writer's connection next to the checked `reader` (still under the lock).
fn finish(
    path: &Path,
    busy_timeout: Duration,
    reader: Connection,
    warning: Option<String>,
) -> Result<Opened, CacheError> {
    let writer = open_connection(path, busy_timeout)
        .and_then(|writer| {
            // A first read opens its WAL and shared memory, by the path, now, under the lock;
            // after a rebuild by another run the path would name the new file's.
            writer
                .query_row("SELECT 1 FROM manifests LIMIT 1", (), |_| Ok(()))
                .optional()?;
            Ok(writer)
        })
        .map_err(|e| sqlite_error(path, "open for writing", &e))?;
    reader
        .pragma_update(None, "cache_size", -READER_CACHE_KIB)
        .map_err(|e| sqlite_error(path, "open for reading", &e))?;
    Ok(Opened {
        reader,
        writer,
        damage: Damage::new(path),
        warning,
    })
}

/// `<file>.lock`, locked with `flock` (shared to open, exclusive to initialize or rebuild).
struct LockFile {
    path: PathBuf,
    file: File,
    lock_path: PathBuf,
}

impl LockFile {
    fn open(path: &Path) -> Result<LockFile, CacheError> {
        let lock_path = with_suffix(path, ".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| self::error(path, &format!("create {}", lock_path.display()), &e))?;
        Ok(LockFile {
            path: path.to_path_buf(),
            file,
            lock_path,
        })
    }

    fn error(&self, what: &str, err: &io::Error) -> CacheError {
        error(
            &self.path,
            &format!("{what} {}", self.lock_path.display()),
            err,
        )
    }

    fn shared(&self) -> Result<(), CacheError> {
        self.file.lock_shared().map_err(|e| self.error("lock", &e))
    }

    fn exclusive(&self) -> Result<(), CacheError> {
        self.file.lock().map_err(|e| self.error("lock", &e))
    }

    fn unlock(&self) -> Result<(), CacheError> {
        self.file.unlock().map_err(|e| self.error("unlock", &e))
    }
}

/// Whether this process holds `<file>.lock`, and how (see [`open_checked`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    Shared,
    Exclusive,
}

/// Open `path` and check that it is a cache of this schema; with the lock `Exclusive`, create
/// the schema in a new file.
fn check(path: &Path, busy_timeout: Duration, lock: Lock) -> Result<Connection, Failure> {
    if let Some(reason) = Damage::new(path).marked() {
        return Err(Failure::Unusable(reason));
    }
    let mut connection =
        open_connection(path, busy_timeout).map_err(|e| classify(path, "open", e))?;
    let read_only = connection
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| classify(path, "open", e))?;
    if read_only {
        return Err(Failure::Failed(error(
            path,
            "open",
            &"the file is read-only for this user",
        )));
    }
    let (version, has_objects) =
        schema_state(&connection).map_err(|e| classify(path, "read the schema", e))?;
    if version == 0 {
        if has_objects {
            return Err(Failure::Unusable(
                "it holds tables of another program".to_string(),
            ));
        }
        if lock == Lock::Shared {
            // Two connections switching a file to WAL at once can fail at once with
            // SQLITE_BUSY (SQLite's deadlock avoidance skips the busy handler): one at a time.
            return Err(Failure::New);
        }
        // Only a file with no pages yet takes it (before WAL, which writes the first page).
        connection
            .pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(|e| classify(path, "set the page size", e))?;
        use_wal(&connection).map_err(|e| classify(path, "enable WAL", e))?;
        create_schema(&mut connection, path)?;
    } else if version != SCHEMA_VERSION {
        return Err(Failure::Unusable(format!(
            "schema version {version}, this build uses {SCHEMA_VERSION}"
        )));
    } else {
        use_wal(&connection).map_err(|e| classify(path, "enable WAL", e))?;
    }
    check_table(&connection).map_err(|e| classify(path, "read the table", e))??;
    Ok(connection)
}

/// The file's `user_version` and whether it holds any table, index or view, read in one
/// statement (so in one snapshot: another run may be creating the schema meanwhile).
fn schema_state(connection: &Connection) -> rusqlite::Result<(i64, bool)> {
    connection.query_row(
        "SELECT user_version, EXISTS (SELECT 1 FROM sqlite_schema) FROM pragma_user_version",
        (),
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
}

/// WAL: readers and a writer of several processes at once. The mode is stored in the file,
/// so only a new file (or one switched back by hand) needs the switch.
fn use_wal(connection: &Connection) -> rusqlite::Result<()> {
    let mode: String = connection.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map(drop)?;
    }
    Ok(())
}

/// Create the table and set `user_version`, in one immediate transaction: of two runs that
/// open a new file at once, the second waits and then finds the schema made.
fn create_schema(connection: &mut Connection, path: &Path) -> Result<(), Failure> {
    let mut create = || -> rusqlite::Result<Option<Failure>> {
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        match schema_state(&transaction)? {
            (0, true) => Ok(Some(Failure::Unusable(
                "it holds tables of another program".to_string(),
            ))),
            (0, false) => {
                transaction.execute_batch(CREATE_TABLE)?;
                transaction.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                transaction.commit()?;
                Ok(None)
            }
            (SCHEMA_VERSION, _) => Ok(None), // another run made it meanwhile
            (other, _) => Ok(Some(Failure::Unusable(format!(
                "schema version {other}, this build uses {SCHEMA_VERSION}"
            )))),
        }
    };
    match create() {
        Ok(None) => Ok(()),
        Ok(Some(failure)) => Err(failure),
        Err(err) => Err(classify(path, "create the schema", err)),
    }
}

/// `Ok(Err(_))` when the table is not the one this build writes.
fn check_table(connection: &Connection) -> rusqlite::Result<Result<(), Failure>> {
    let mut columns =
        connection.prepare("SELECT name, type, pk FROM pragma_table_info('manifests')")?;
    let columns = columns
        .query_map((), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let expected = COLUMNS
        .iter()
        .map(|&(name, kind, pk)| (name.to_string(), kind.to_string(), pk))
        .collect::<Vec<_>>();
    if columns != expected {
        return Ok(Err(Failure::Unusable(
            "its manifests table has another layout".to_string(),
        )));
    }
    // Reads the table's root page: a cheap sign that the file is sound.
    connection
        .query_row("SELECT 1 FROM manifests LIMIT 1", (), |_| Ok(()))
        .optional()?;
    Ok(Ok(()))
}

/// With `<file>.lock` held exclusively: create the schema in a new file, or replace an
/// unusable file by a new cache. Re-checks first: another run may have done it meanwhile.
fn initialize_or_rebuild(
    path: &Path,
    busy_timeout: Duration,
) -> Result<(Connection, Option<String>), CacheError> {
    let reason = match check(path, busy_timeout, Lock::Exclusive) {
        Ok(connection) => return Ok((connection, None)),
        Err(Failure::Failed(err)) => return Err(err),
        Err(Failure::Unusable(reason)) => reason,
        Err(Failure::New) => return Err(uninitialized(path)),
    };
    let aside = move_aside(path)?;
    Damage::new(path).clear();
    let connection = match check(path, busy_timeout, Lock::Exclusive) {
        Ok(connection) => connection,
        Err(Failure::Failed(err)) => return Err(err),
        Err(Failure::New) => return Err(uninitialized(path)),
        Err(Failure::Unusable(again)) => {
            return Err(error(
                path,
                "rebuild",
                &format!("the new file is unusable too: {again}"),
            ))
        }
    };
    let warning = format!(
        "manifest cache {} was unreadable ({reason}); moved aside to {} and rebuilt",
        path.display(),
        aside.display()
    );
    Ok((connection, Some(warning)))
}

/// [`check`] with the lock held creates the schema, so it never answers [`Failure::New`].
fn uninitialized(path: &Path) -> CacheError {
    error(path, "open", &"the new file was left without its schema")
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Rename `path` and its `-wal` and `-shm` files to `<path>.corrupt-<unix time>-<pid>[-wal|-shm]`.
///
/// The WAL goes first: a new file must never be created next to the old file's WAL, whose
/// frames SQLite would replay into it. Nothing at the path is deleted afterwards: as soon as
/// the file is renamed, another run (checking without the lock) may create a fresh cache there,
/// with a live `-wal` and `-shm` of its own. A `-wal` that appears between the two renames can
/// only come from a run reading the unusable file, which writes no frames to it.
fn move_aside(path: &Path) -> Result<PathBuf, CacheError> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let aside = with_suffix(path, &format!(".corrupt-{seconds}-{}", std::process::id()));
    let rename = |from: PathBuf, to: PathBuf| match fs::rename(&from, &to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(error(&from, "move aside", &e)),
    };
    for suffix in ["-wal", "-shm"] {
        rename(with_suffix(path, suffix), with_suffix(&aside, suffix))?;
    }
    rename(path.to_path_buf(), aside.clone())?;
    Ok(aside)
}

/// The marker `<file>.damaged` that a run which hit `SQLITE_CORRUPT` or `SQLITE_NOTADB` after
/// opening leaves for the next open: the cheap check at open may not reach the damaged page.
///
/// It names the file's inode (on Unix), so that a marker left by a run still working on a file
/// that was since moved aside does not get the new file rebuilt too.
#[derive(Debug, Clone)]
pub(crate) struct Damage {
    marker: PathBuf,
    inode: u64,
}

impl Damage {
    /// The marker of the file now at `path`.
    pub(crate) fn new(path: &Path) -> Damage {
        Damage {
            marker: with_suffix(path, ".damaged"),
            inode: fs::metadata(path).map_or(0, |m| inode(&m)),
        }
    }

    /// Leave the marker if `err` says the file is damaged (best effort: a marker that cannot
    /// be written costs only the rebuild).
    pub(crate) fn note(&self, err: &rusqlite::Error) {
        if is_damage(err) {
            let _ = fs::write(&self.marker, format!("{}\n{err}\n", self.inode));
        }
    }

    /// Why the file at the marker's path is to be rebuilt, if a marker for it exists; a stale
    /// marker (of a file since replaced) is removed.
    fn marked(&self) -> Option<String> {
        let text = fs::read_to_string(&self.marker).ok()?;
        let (inode, reason) = text.split_once('\n').unwrap_or((text.as_str(), ""));
        if inode.parse::<u64>().ok() == Some(self.inode) {
            Some(format!(
                "an earlier run found it damaged: {}",
                reason.trim()
            ))
        } else {
            self.clear();
            None
        }
    }

    fn clear(&self) {
        let _ = fs::remove_file(&self.marker);
    }
}

#[cfg(unix)]
fn inode(metadata: &fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

#[cfg(not(unix))]
fn inode(_: &fs::Metadata) -> u64 {
    0
}
