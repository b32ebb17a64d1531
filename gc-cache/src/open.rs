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
//! Concurrency: two runs may open the same file at once. Creating the schema happens inside
//! `BEGIN IMMEDIATE` with `user_version` set in the same transaction, so one creates it and
//! the other sees it created. A rebuild runs under an exclusive lock on `<file>.lock` and
//! re-checks the file under it, so two runs that both found it unusable replace it once. The
//! file is moved aside (renamed) rather than deleted, which keeps it for inspection; on Unix a
//! run that still has it open keeps working on the renamed file (its inode is unchanged) and
//! its writes are simply not seen by later runs.

use crate::store::SCHEMA_VERSION;
use gc_core::cache::CacheError;
use rusqlite::ffi::ErrorCode;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The columns of `manifests` as `PRAGMA table_info` lists them: name, type, primary key rank.
const COLUMNS: [(&str, &str, i64); 4] = [
    ("format", "TEXT", 1),
    ("digest", "TEXT", 2),
    ("size", "INTEGER", 3),
    ("entry", "BLOB", 0),
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS manifests (
    format TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    entry BLOB NOT NULL,
    PRIMARY KEY (format, digest, size)
) WITHOUT ROWID";

/// Why opening did not give a usable connection.
enum Failure {
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
        Failure::Failed(error(path, what, &err))
    }
}

/// A connection to `path` with the per-connection settings: `busy_timeout`, a 2 MiB page cache,
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
    connection.pragma_update(None, "cache_size", -2048)?;
    connection.pragma_update(None, "mmap_size", 0)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.set_prepared_statement_cache_capacity(4);
    Ok(connection)
}

/// Open `path` as a cache, rebuilding it if it is unusable: the connection, and the warning
/// when it was rebuilt.
pub(crate) fn open_checked(
    path: &Path,
    busy_timeout: Duration,
) -> Result<(Connection, Option<String>), CacheError> {
    match check(path, busy_timeout) {
        Ok(connection) => Ok((connection, None)),
        Err(Failure::Failed(err)) => Err(err),
        Err(Failure::Unusable(_)) => rebuild(path, busy_timeout),
    }
}

/// Open `path` and check that it is a cache of this schema, creating the schema in an empty
/// file.
fn check(path: &Path, busy_timeout: Duration) -> Result<Connection, Failure> {
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
    let version = user_version(&connection).map_err(|e| classify(path, "read the schema", e))?;
    if version == 0 {
        if has_objects(&connection).map_err(|e| classify(path, "read the schema", e))? {
            return Err(Failure::Unusable(
                "it holds tables of another program".to_string(),
            ));
        }
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

fn user_version(connection: &Connection) -> rusqlite::Result<i64> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

fn has_objects(connection: &Connection) -> rusqlite::Result<bool> {
    connection
        .query_row("SELECT 1 FROM sqlite_schema LIMIT 1", (), |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

/// WAL: readers and a writer of several processes at once. The mode is stored in the file;
/// setting it again is a no-op.
fn use_wal(connection: &Connection) -> rusqlite::Result<()> {
    connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        .map(drop)
}

/// Create the table and set `user_version`, in one immediate transaction: of two runs that
/// open a new file at once, the second waits and then finds the schema made.
fn create_schema(connection: &mut Connection, path: &Path) -> Result<(), Failure> {
    let mut create = || -> rusqlite::Result<Option<Failure>> {
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        match user_version(&transaction)? {
            0 => {
                if has_objects(&transaction)? {
                    return Ok(Some(Failure::Unusable(
                        "it holds tables of another program".to_string(),
                    )));
                }
                transaction.execute_batch(CREATE_TABLE)?;
                transaction.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                transaction.commit()?;
                Ok(None)
            }
            SCHEMA_VERSION => Ok(None), // another run made it meanwhile
            other => Ok(Some(Failure::Unusable(format!(
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

/// Replace the unusable file at `path` by a fresh cache, under the rebuild lock.
fn rebuild(
    path: &Path,
    busy_timeout: Duration,
) -> Result<(Connection, Option<String>), CacheError> {
    let lock_path = with_suffix(path, ".lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| error(&lock_path, "create the rebuild lock", &e))?;
    lock.lock()
        .map_err(|e| error(&lock_path, "take the rebuild lock", &e))?;
    // Another run may have rebuilt it while this one waited for the lock.
    let reason = match check(path, busy_timeout) {
        Ok(connection) => return Ok((connection, None)),
        Err(Failure::Failed(err)) => return Err(err),
        Err(Failure::Unusable(reason)) => reason,
    };
    let aside = move_aside(path)?;
    Damage::new(path).clear();
    let connection = match check(path, busy_timeout) {
        Ok(connection) => connection,
        Err(Failure::Failed(err)) => return Err(err),
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

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Rename `path` and its `-wal` and `-shm` files to `<path>.corrupt-<unix time>-<pid>[-wal|-shm]`.
///
/// The WAL goes first: a new file must never be created next to the old file's WAL, whose
/// frames SQLite would replay into it. A `-wal` or `-shm` that appears after the rename can
/// only be an empty one made by a run that found the file unusable; it is deleted.
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
    for suffix in ["-wal", "-shm"] {
        let leftover = with_suffix(path, suffix);
        match fs::remove_file(&leftover) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(error(&leftover, "remove", &e)),
        }
    }
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
