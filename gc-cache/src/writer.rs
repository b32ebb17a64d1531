//! The writer thread: commits `put`s in batches on a connection of its own.
//!
//! A commit waits for the file's write lock, which another gc-audit run may hold for a
//! moment, and syncs the WAL; neither should stall the audit, which calls `put` from its one
//! async task. So `put` only queues the entry (a bounded channel: a full queue makes `put`
//! wait rather than grow memory) and this thread commits up to [`BATCH`] entries per
//! transaction, or whatever came within [`LINGER`] of the batch's first entry. The first
//! failed commit is kept: later `put`s return it at once and are not written, and `flush`
//! returns it.

use crate::open::{self, Damage};
use crate::store::{row_id, size_column};
use gc_core::cache::{CacheError, CacheKey};
use rusqlite::{Connection, TransactionBehavior};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many entries may wait for the writer.
pub(crate) const QUEUE: usize = 4096;

/// The most entries committed in one transaction (a write transaction holds the file's write
/// lock, so other runs wait for it: keep it short).
pub(crate) const BATCH: usize = 1000;

/// How long the writer waits for more entries after the first of a batch before it commits
/// (unless the batch is full or a flush is asked for).
pub(crate) const LINGER: Duration = Duration::from_millis(50);

const INSERT_ENTRY: &str = "INSERT OR REPLACE INTO manifests (id, format, digest, size, entry)
    VALUES (?1, ?2, ?3, ?4, ?5)";

enum Command {
    Put {
        id: i64,
        format: String,
        digest: String,
        size: i64,
        entry: Vec<u8>,
    },
    /// Answer once everything sent before is committed (or failed).
    Flush(mpsc::Sender<Result<(), CacheError>>),
}

/// The handle on the writer thread; dropping it commits what is queued and joins the thread.
pub(crate) struct Writer {
    path: PathBuf,
    commands: Option<SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
    failure: Arc<OnceLock<CacheError>>,
}

impl Writer {
    /// Start the thread that writes on `connection`.
    pub(crate) fn start(
        connection: Connection,
        path: PathBuf,
        damage: Damage,
    ) -> Result<Writer, CacheError> {
        let (commands, received) = mpsc::sync_channel(QUEUE);
        let failure = Arc::new(OnceLock::new());
        let thread = {
            let failure = Arc::clone(&failure);
            let thread_path = path.clone();
            std::thread::Builder::new()
                .name("gc-cache-writer".to_string())
                .spawn(move || {
                    write_until_closed(connection, &received, &thread_path, &failure, &damage)
                })
                .map_err(|e| CacheError {
                    location: path.display().to_string(),
                    message: format!("cannot start the writer thread: {e}"),
                })?
        };
        Ok(Writer {
            path,
            commands: Some(commands),
            thread: Some(thread),
            failure,
        })
    }

    fn stopped(&self) -> CacheError {
        CacheError {
            location: self.path.display().to_string(),
            message: "the writer thread stopped".to_string(),
        }
    }

    /// Queue an entry (waits while the queue is full).
    pub(crate) fn put(&self, key: &CacheKey<'_>, entry: Vec<u8>) -> Result<(), CacheError> {
        if let Some(failure) = self.failure.get() {
            return Err(failure.clone());
        }
        let commands = self.commands.as_ref().ok_or_else(|| self.stopped())?;
        commands
            .send(Command::Put {
                id: row_id(key),
                format: key.format.to_string(),
                digest: key.digest.to_string(),
                size: size_column(key.size),
                entry,
            })
            .map_err(|_| self.stopped())
    }

    /// Wait until everything queued is committed; the first write error if there was one.
    pub(crate) fn flush(&self) -> Result<(), CacheError> {
        let commands = self.commands.as_ref().ok_or_else(|| self.stopped())?;
        let (answer, answered) = mpsc::channel();
        commands
            .send(Command::Flush(answer))
            .map_err(|_| self.stopped())?;
        answered.recv().map_err(|_| self.stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel makes the thread commit what is queued and return.
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            // A panic in the thread has nothing left to report to.
            let _ = thread.join();
        }
    }
}

/// The thread's loop: batch, commit, answer flushes, until the store is dropped.
fn write_until_closed(
    mut connection: Connection,
    received: &Receiver<Command>,
    path: &std::path::Path,
    failure: &OnceLock<CacheError>,
    damage: &Damage,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    loop {
        let Ok(first) = received.recv() else {
            return; // closed, and everything before was committed
        };
        let mut closed = false;
        take(first, &mut batch, &mut flushes);
        // Entries of a cold scan come one GET at a time: wait a moment for more, so that a
        // commit (its WAL frames are whole pages) carries many. A flush is not kept waiting.
        let deadline = Instant::now() + LINGER;
        while batch.len() < BATCH && flushes.is_empty() {
            let wait = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(wait) {
                Ok(command) => take(command, &mut batch, &mut flushes),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if !batch.is_empty() && failure.get().is_none() {
            if let Err(err) = commit(&mut connection, &batch) {
                damage.note(&err);
                let _ = failure.set(open::sqlite_error(path, "write", &err));
            }
        }
        batch.clear();
        let result = failure.get().map_or(Ok(()), |failure| Err(failure.clone()));
        if !flushes.is_empty() {
            // A flush ends the reads of an audit: its analysis, the larger part of its memory,
            // comes next, so the page cache is given back (it refills if more is written).
            let _ = connection.execute_batch("PRAGMA shrink_memory");
        }
        for answer in flushes.drain(..) {
            // A flusher that stopped waiting needs no answer.
            let _ = answer.send(result.clone());
        }
        if closed {
            return;
        }
    }
}

type Entry = (i64, String, String, i64, Vec<u8>);

/// Sort a command into the batch or the flushes waiting for it.
fn take(
    command: Command,
    batch: &mut Vec<Entry>,
    flushes: &mut Vec<mpsc::Sender<Result<(), CacheError>>>,
) {
    match command {
        Command::Put {
            id,
            format,
            digest,
            size,
            entry,
        } => batch.push((id, format, digest, size, entry)),
        Command::Flush(answer) => flushes.push(answer),
    }
}

/// Write `batch` in one immediate transaction (it takes the write lock first, waiting up to
/// the busy timeout, so it never fails half-way for a lock).
fn commit(connection: &mut Connection, batch: &[Entry]) -> rusqlite::Result<()> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = transaction.prepare_cached(INSERT_ENTRY)?;
        for (id, format, digest, size, entry) in batch {
            insert.execute((id, format, digest, size, entry))?;
        }
    }
    transaction.commit()
}
