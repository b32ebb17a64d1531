//! Scenarios of the SQLite manifest store on real files: round trips, sharing between store
//! instances, threads and processes, rebuilding unusable files, unusable directories, and the
//! cost of a `get`.

use gc_cache::{SqliteManifestStore, FILE_NAME};
use gc_core::cache::{CacheKey, ManifestStore};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FORMAT: &str = "gc-audit-test/parse-1";

fn digest(prefix: &str, n: usize) -> String {
    format!("sha256:{prefix}{n:0>58}")
}

fn key<'a>(digest: &'a str, size: u64) -> CacheKey<'a> {
    CacheKey {
        format: FORMAT,
        digest,
        size,
    }
}

fn value(digest: &str, size: u64) -> Vec<u8> {
    format!("entry of {digest} ({size} bytes)").into_bytes()
}

fn open(dir: &Path) -> SqliteManifestStore {
    let (store, warning) = SqliteManifestStore::open(dir).expect("open the cache");
    assert_eq!(warning, None, "a sound cache opens without a warning");
    store
}

/// Put `count` entries `prefix`0.. (size = index), then flush.
fn put_entries(store: &SqliteManifestStore, prefix: &str, count: usize) {
    for n in 0..count {
        let d = digest(prefix, n);
        store.put(&key(&d, n as u64), value(&d, n as u64)).unwrap();
    }
    store.flush().unwrap();
}

fn assert_entries(store: &SqliteManifestStore, prefix: &str, count: usize) {
    for n in 0..count {
        let d = digest(prefix, n);
        assert_eq!(
            store.get(&key(&d, n as u64)).unwrap(),
            Some(value(&d, n as u64)),
            "entry {prefix}{n}"
        );
    }
}

#[test]
fn entries_round_trip_by_format_digest_and_size_and_a_put_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.path(), dir.path().join(FILE_NAME));
    assert_eq!(
        store.location(),
        dir.path().join(FILE_NAME).display().to_string()
    );
    let d = digest("a", 1);
    assert_eq!(store.get(&key(&d, 10)).unwrap(), None);
    store.put(&key(&d, 10), b"ten".to_vec()).unwrap();
    store.put(&key(&d, u64::MAX), b"max".to_vec()).unwrap();
    store.flush().unwrap();
    assert_eq!(store.get(&key(&d, 10)).unwrap(), Some(b"ten".to_vec()));
    assert_eq!(
        store.get(&key(&d, u64::MAX)).unwrap(),
        Some(b"max".to_vec())
    );
    assert_eq!(
        store.get(&key(&d, 11)).unwrap(),
        None,
        "another size misses"
    );
    let other_format = CacheKey {
        format: "gc-audit-other/parse-1",
        ..key(&d, 10)
    };
    assert_eq!(
        store.get(&other_format).unwrap(),
        None,
        "another format misses"
    );
    assert_eq!(store.get(&key(&digest("a", 2), 10)).unwrap(), None);
    store.put(&key(&d, 10), b"TEN".to_vec()).unwrap();
    store.flush().unwrap();
    assert_eq!(store.get(&key(&d, 10)).unwrap(), Some(b"TEN".to_vec()));
    // An empty value is a value, not a miss.
    store.put(&key(&d, 0), Vec::new()).unwrap();
    store.flush().unwrap();
    assert_eq!(store.get(&key(&d, 0)).unwrap(), Some(Vec::new()));
}

#[test]
fn get_many_answers_each_key_in_order_as_get_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    put_entries(&store, "m", 50);
    let digests: Vec<String> = (0..60).map(|n| digest("m", n)).collect();
    // Hits, misses (past the 50 written; a written digest under another size) and repeats.
    let keys: Vec<CacheKey<'_>> = digests
        .iter()
        .enumerate()
        .rev()
        .map(|(n, d)| key(d, n as u64))
        .chain([
            key(&digests[3], 4),
            key(&digests[7], 7),
            key(&digests[7], 7),
        ])
        .collect();
    let many = store.get_many(&keys);
    assert_eq!(many.len(), keys.len());
    for (k, got) in keys.iter().zip(many) {
        assert_eq!(got.unwrap(), store.get(k).unwrap(), "{k:?}");
    }
    assert_eq!(store.get_many(&[]).len(), 0);
    // Written after a batch was read: the next batch sees it (no transaction is left open).
    let late = digest("m", 99);
    store.put(&key(&late, 99), value(&late, 99)).unwrap();
    store.flush().unwrap();
    assert_eq!(
        store.get_many(&[key(&late, 99)]).pop().unwrap().unwrap(),
        Some(value(&late, 99))
    );
}

#[test]
fn a_new_file_has_pages_large_enough_that_an_entry_needs_no_overflow_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // A parsed manifest of a dozen layers: ~2.5 KB (a rowid table's leaf holds cells of up
    // to ~4 KB at 4 KiB pages).
    let d = digest("big", 0);
    let entry = vec![b'j'; 2500];
    store.put(&key(&d, 7), entry.clone()).unwrap();
    store.flush().unwrap();
    assert_eq!(store.get(&key(&d, 7)).unwrap(), Some(entry));
    drop(store);
    let db = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    let page_size: i64 = db
        .pragma_query_value(None, "page_size", |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, gc_cache::PAGE_SIZE);
    // The schema's page and the table's one leaf: no page of an overflow chain.
    let pages: i64 = db
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    assert_eq!(pages, 2);
}

/// Two keys that share a row id (an MD5 prefix collision, which someone crafting manifests
/// could aim for) must never answer each other's entries: the row keeps its key's columns.
#[test]
fn a_row_under_another_keys_row_id_is_a_miss_never_that_keys_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (owner, squatter) = (digest("owner", 1), digest("squatter", 2));
    store.put(&key(&owner, 10), value(&owner, 10)).unwrap();
    store.flush().unwrap();
    // The squatter's entry written into the owner's row, as a colliding put would leave it.
    let db = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    let changed = db
        .execute(
            "UPDATE manifests SET digest = ?1, size = 20, entry = ?2 WHERE digest = ?3",
            (&squatter, value(&squatter, 20), &owner),
        )
        .unwrap();
    assert_eq!(changed, 1, "the owner's entry is in one row");
    drop(db);
    assert_eq!(store.get(&key(&owner, 10)).unwrap(), None);
    assert_eq!(store.get(&key(&squatter, 20)).unwrap(), None);
    // The owner's next put takes its row back.
    store.put(&key(&owner, 10), value(&owner, 10)).unwrap();
    store.flush().unwrap();
    assert_eq!(
        store.get(&key(&owner, 10)).unwrap(),
        Some(value(&owner, 10))
    );
}

#[test]
fn entries_survive_a_reopen_and_dropping_the_store_commits_what_was_put() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        put_entries(&store, "r", 100);
        // Not flushed: dropping the store must commit them.
        for n in 100..150 {
            let d = digest("r", n);
            store.put(&key(&d, n as u64), value(&d, n as u64)).unwrap();
        }
    }
    let store = open(dir.path());
    assert_entries(&store, "r", 150);
}

#[test]
fn entries_written_by_one_store_are_read_by_another_open_at_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let second = open(dir.path());
    put_entries(&first, "s", 50);
    assert_entries(&second, "s", 50);
    put_entries(&second, "t", 50);
    assert_entries(&first, "t", 50);
}

#[test]
fn two_stores_writing_concurrently_from_two_threads_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let writers = ["x", "y"].map(|prefix| {
        let dir = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let (store, warning) = SqliteManifestStore::open(&dir).expect("open");
            assert_eq!(warning, None);
            for n in 0..5000 {
                let d = digest(prefix, n);
                store.put(&key(&d, n as u64), value(&d, n as u64)).unwrap();
                // Shared entries, put by both.
                if n % 50 == 0 {
                    let d = digest("shared", n);
                    store.put(&key(&d, n as u64), value(&d, n as u64)).unwrap();
                }
            }
            store.flush()
        })
    });
    for writer in writers {
        writer.join().unwrap().expect("flush");
    }
    let store = open(dir.path());
    assert_entries(&store, "x", 5000);
    assert_entries(&store, "y", 5000);
    for n in (0..5000).step_by(50) {
        let d = digest("shared", n);
        assert_eq!(
            store.get(&key(&d, n as u64)).unwrap(),
            Some(value(&d, n as u64))
        );
    }
}

const CHILD_DIR: &str = "GC_CACHE_TEST_CHILD_DIR";
const CHILD_PREFIX: &str = "GC_CACHE_TEST_CHILD_PREFIX";
const CHILD_ENTRIES: usize = 5000;

/// Not a scenario by itself: the child process of
/// `two_processes_writing_at_once_both_succeed`, which runs this test binary with the
/// variables set. Without them it does nothing.
#[test]
fn child_writer_process() {
    let (Some(dir), Some(prefix)) = (
        std::env::var_os(CHILD_DIR),
        std::env::var(CHILD_PREFIX).ok(),
    ) else {
        return;
    };
    let (store, warning) = SqliteManifestStore::open(Path::new(&dir)).expect("child: open");
    if let Some(warning) = warning {
        println!("CHILD WARNING: {warning}");
    }
    for n in 0..CHILD_ENTRIES {
        let d = digest(&prefix, n);
        store
            .put(&key(&d, n as u64), value(&d, n as u64))
            .expect("child: put");
        let d = digest("shared", n % 100);
        store
            .put(&key(&d, 1), value(&d, 1))
            .expect("child: put shared");
    }
    store.flush().expect("child: flush");
}

/// Run two child writers at once on `dir`: how many warned.
fn two_child_writers(dir: &Path) -> usize {
    let exe = std::env::current_exe().unwrap();
    let children = ["p", "q"].map(|prefix| {
        Command::new(&exe)
            .args([
                "--exact",
                "child_writer_process",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD_DIR, dir)
            .env(CHILD_PREFIX, prefix)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the test binary")
    });
    let mut warnings = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "child writer exited with {}:\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        // It ran the child test, not nothing.
        assert!(stdout.contains("1 passed"), "{stdout}");
        warnings += stdout.matches("CHILD WARNING: ").count();
    }
    let store = open(dir);
    assert_entries(&store, "p", CHILD_ENTRIES);
    assert_entries(&store, "q", CHILD_ENTRIES);
    for n in 0..100 {
        let d = digest("shared", n);
        assert_eq!(store.get(&key(&d, 1)).unwrap(), Some(value(&d, 1)));
    }
    warnings
}

#[test]
fn two_processes_writing_at_once_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(two_child_writers(dir.path()), 0, "a new cache, no warning");
    // Again, on the cache they made.
    assert_eq!(two_child_writers(dir.path()), 0);
}

#[test]
fn two_processes_finding_one_garbage_file_at_once_rebuild_it_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), "garbage\n").unwrap();
    assert_eq!(two_child_writers(dir.path()), 1, "one of them rebuilds");
}

#[test]
fn a_write_lock_held_past_the_busy_timeout_is_an_error_from_flush_and_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (store, warning) =
        SqliteManifestStore::open_with_busy_timeout(dir.path(), Duration::from_millis(200))
            .unwrap();
    assert_eq!(warning, None);
    put_entries(&store, "k", 10);
    // Another run holding the write lock, longer than the timeout.
    let mut other = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    let transaction = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let d = digest("k", 99);
    store.put(&key(&d, 1), b"late".to_vec()).unwrap();
    let started = Instant::now();
    let error = store.flush().expect_err("the write lock is held");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "waited for the lock"
    );
    assert_eq!(error.location, store.location());
    assert!(
        error.message.starts_with("write: database is locked"),
        "{error}"
    );
    // WAL: readers are not blocked by a writer.
    assert_entries(&store, "k", 10);
    // The failure sticks: later puts and flushes say so at once.
    assert_eq!(store.put(&key(&d, 2), b"x".to_vec()), Err(error.clone()));
    assert_eq!(store.flush(), Err(error));
    transaction.rollback().unwrap();
    drop(store);
    // Nothing is damaged: the next open is silent and has what was committed.
    let store = open(dir.path());
    assert_entries(&store, "k", 10);
    assert_eq!(store.get(&key(&d, 1)).unwrap(), None);
}

/// Opening `dir` gives exactly one warning naming the file and `reason` and the file it was
/// moved to; the rebuilt cache works and the next open is silent.
fn assert_rebuilt(dir: &Path, reason: &str) {
    let path = dir.join(FILE_NAME);
    let (store, warning) = SqliteManifestStore::open(dir).expect("an unusable file is rebuilt");
    let warning = warning.expect("a rebuild warns");
    eprintln!("rebuild warning: {warning}");
    let prefix = format!("manifest cache {} was unreadable (", path.display());
    assert!(warning.starts_with(&prefix), "{warning}");
    assert!(warning.contains(reason), "{warning} should say {reason:?}");
    let aside = warning
        .split("moved aside to ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(" and rebuilt"))
        .map(PathBuf::from)
        .expect("the warning names where the file went");
    assert!(aside.is_file(), "{} kept", aside.display());
    let aside_name = aside.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        aside_name.starts_with(&format!("{FILE_NAME}.corrupt-"))
            && aside_name.ends_with(&format!("-{}", std::process::id())),
        "{aside_name}"
    );
    let d = digest("after", 1);
    assert_eq!(
        store.get(&key(&d, 1)).unwrap(),
        None,
        "the rebuilt cache is empty"
    );
    store.put(&key(&d, 1), b"new".to_vec()).unwrap();
    store.flush().unwrap();
    drop(store);
    let store = open(dir); // asserts no second warning
    assert_eq!(store.get(&key(&d, 1)).unwrap(), Some(b"new".to_vec()));
}

#[test]
fn a_file_that_is_not_a_database_is_rebuilt_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), "garbage\n").unwrap();
    assert_rebuilt(dir.path(), "file is not a database");
}

#[test]
fn four_stores_opening_a_new_cache_at_once_all_succeed() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let openers = [0, 1, 2, 3].map(|n| {
            let dir = dir.path().to_path_buf();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let (store, warning) = SqliteManifestStore::open(&dir).expect("open");
                assert_eq!(warning, None);
                let d = digest("f", n);
                store.put(&key(&d, 1), b"f".to_vec()).unwrap();
                store.flush().unwrap();
                store
            })
        });
        let stores: Vec<_> = openers.map(|o| o.join().unwrap()).into();
        for store in &stores {
            for n in 0..4 {
                let d = digest("f", n);
                assert_eq!(store.get(&key(&d, 1)).unwrap(), Some(b"f".to_vec()));
            }
        }
    }
}

#[test]
fn two_stores_finding_one_garbage_file_at_once_rebuild_it_once() {
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "garbage\n").unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let openers = [0, 1].map(|n| {
            let dir = dir.path().to_path_buf();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let (store, warning) = SqliteManifestStore::open(&dir).expect("open");
                let d = digest("g", n);
                store.put(&key(&d, 1), b"g".to_vec()).unwrap();
                store.flush().unwrap();
                (store, warning)
            })
        });
        let opened: Vec<_> = openers.map(|o| o.join().unwrap()).into();
        let warnings = opened.iter().filter(|(_, w)| w.is_some()).count();
        assert_eq!(
            warnings, 1,
            "one of them rebuilds, the other finds it rebuilt"
        );
        for (store, _) in &opened {
            for n in 0..2 {
                let d = digest("g", n);
                assert_eq!(store.get(&key(&d, 1)).unwrap(), Some(b"g".to_vec()));
            }
        }
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.contains(".corrupt-") && !name.ends_with("-wal") && !name.ends_with("-shm")
            })
            .count();
        assert_eq!(aside, 1);
    }
}

#[test]
fn a_truncated_database_is_rebuilt_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    put_entries(&open(dir.path()), "t", 5000);
    // The last connection closed: the WAL is checkpointed into the file and removed.
    assert!(!dir.path().join(format!("{FILE_NAME}-wal")).exists());
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 100_000, "{len} bytes: enough pages to cut");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    assert_rebuilt(dir.path(), "malformed");

    // Cut inside the 100-byte header.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    put_entries(&open(dir.path()), "t", 10);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(50).unwrap();
    drop(file);
    assert_rebuilt(dir.path(), "");
}

#[test]
fn a_database_of_another_schema_version_is_rebuilt_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    put_entries(&open(dir.path()), "v", 10);
    let connection = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    connection.pragma_update(None, "user_version", 7).unwrap();
    drop(connection);
    assert_rebuilt(
        dir.path(),
        &format!(
            "schema version 7, this build uses {}",
            gc_cache::SCHEMA_VERSION
        ),
    );
}

#[test]
fn a_database_with_another_table_layout_or_other_tables_is_rebuilt_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let connection = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    connection
        .execute_batch(&format!(
            "CREATE TABLE manifests (digest TEXT PRIMARY KEY, entry BLOB); PRAGMA user_version = {};",
            gc_cache::SCHEMA_VERSION
        ))
        .unwrap();
    drop(connection);
    assert_rebuilt(dir.path(), "another layout");

    let dir = tempfile::tempdir().unwrap();
    let connection = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    connection
        .execute_batch("CREATE TABLE notes (text TEXT);")
        .unwrap();
    drop(connection);
    assert_rebuilt(dir.path(), "another program");
}

#[test]
fn a_rebuild_while_another_store_has_the_file_open_breaks_neither() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let old = open(dir.path());
    put_entries(&old, "o", 100);
    assert_entries(&old, "o", 100);
    // Opened before the rebuild, first writes after it.
    let idle = open(dir.path());
    // A build with another schema marks the file as not ours while `old` still uses it.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.pragma_update(None, "user_version", 7).unwrap();
    drop(other);
    let (new, warning) = SqliteManifestStore::open(dir.path()).unwrap();
    assert!(warning.unwrap().contains("schema version 7"));
    put_entries(&new, "n", 100);
    assert!(
        dir.path().join(format!("{FILE_NAME}-wal")).exists(),
        "the new file's entries are in its WAL"
    );
    // The old store goes on with the file it opened (moved aside now) and then closes.
    assert_entries(&old, "o", 100);
    let d = digest("o", 1000);
    let late = old
        .put(&key(&d, 1), b"late".to_vec())
        .and_then(|()| old.flush());
    eprintln!("a put to the moved-aside file: {late:?}");
    drop(old);
    let late = idle
        .put(&key(&d, 2), b"idle".to_vec())
        .and_then(|()| idle.flush());
    eprintln!("a first put to the moved-aside file: {late:?}");
    drop(idle);
    // Closing it must not have removed the new file's WAL (SQLite sees its file was moved).
    assert!(dir.path().join(format!("{FILE_NAME}-wal")).exists());
    let third = open(dir.path());
    assert_entries(&third, "n", 100);
    assert_eq!(third.get(&key(&digest("o", 1), 1)).unwrap(), None);
    put_entries(&third, "m", 100);
    assert_entries(&new, "m", 100);
    drop(new);
    drop(third);
    let store = open(dir.path());
    assert_entries(&store, "n", 100);
    assert_entries(&store, "m", 100);
    assert_eq!(
        store.get(&key(&d, 2)).unwrap(),
        None,
        "not written to the new file"
    );
    drop(store);
    let check = rusqlite::Connection::open(&path).unwrap();
    let integrity: String = check
        .query_row("PRAGMA integrity_check", (), |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn damage_found_by_a_get_is_an_error_and_the_next_open_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    const COUNT: usize = 20_000;
    put_entries(&open(dir.path()), "d", COUNT);
    let mut bytes = std::fs::read(&path).unwrap();
    // Overwrite pages in the last third (leaves of the table; the header and the table's
    // root, which the check at open reads, are at the start).
    let from = bytes.len() * 2 / 3;
    let to = from + 4 * 4096;
    bytes[from..to].fill(0xA5);
    std::fs::write(&path, &bytes).unwrap();

    let (store, warning) =
        SqliteManifestStore::open(dir.path()).expect("the check at open is cheap");
    assert_eq!(warning, None);
    let error = (0..COUNT)
        .find_map(|n| {
            let d = digest("d", n);
            store.get(&key(&d, n as u64)).err()
        })
        .expect("a get reaches the damaged pages");
    assert_eq!(error.location, path.display().to_string());
    assert!(error.message.contains("malformed"), "{error}");
    drop(store);
    assert_rebuilt(dir.path(), "an earlier run found it damaged");
}

#[test]
fn a_directory_that_cannot_be_created_or_written_is_an_error_naming_it() {
    let parent = tempfile::tempdir().unwrap();
    // Under a regular file: fails for root too.
    let file = parent.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let dir = file.join("sub");
    let error = SqliteManifestStore::open(&dir).expect_err("no directory under a file");
    assert_eq!(error.location, dir.display().to_string());
    assert!(
        error.to_string().contains(&dir.display().to_string()),
        "{error}"
    );

    // A read-only directory, where permissions bind (not for root).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = parent.path().join("read-only");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let probe = dir.join("probe");
        if std::fs::write(&probe, "x").is_ok() {
            eprintln!("permissions do not bind for this user (root?): read-only case not run");
            let _ = std::fs::remove_file(&probe);
        } else {
            let error = SqliteManifestStore::open(&dir).expect_err("read-only directory");
            assert_eq!(error.location, dir.join(FILE_NAME).display().to_string());
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn get_cost_over_100k_entries() {
    const COUNT: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let started = Instant::now();
    for n in 0..COUNT {
        let d = digest("b", n);
        // About the size of a real entry.
        store.put(&key(&d, n as u64), vec![7; 600]).unwrap();
    }
    store.flush().unwrap();
    let put_us = started.elapsed().as_secs_f64() * 1e6 / COUNT as f64;
    let digests: Vec<String> = (0..COUNT)
        .map(|n| digest("b", (n * 7919) % COUNT))
        .collect();
    let started = Instant::now();
    let mut hits = 0;
    for (n, d) in digests.iter().enumerate() {
        let size = ((n * 7919) % COUNT) as u64;
        hits += usize::from(store.get(&key(d, size)).unwrap().is_some());
    }
    let get_us = started.elapsed().as_secs_f64() * 1e6 / COUNT as f64;
    assert_eq!(hits, COUNT);
    let started = Instant::now();
    for d in &digests {
        assert!(store.get(&key(d, u64::MAX)).unwrap().is_none());
    }
    let miss_us = started.elapsed().as_secs_f64() * 1e6 / COUNT as f64;
    // In key order: the leaf pages are in the page cache, what is left is the statement.
    let in_order: Vec<String> = (0..COUNT).map(|n| digest("b", n)).collect();
    let started = Instant::now();
    for (n, d) in in_order.iter().enumerate() {
        assert!(store.get(&key(d, n as u64)).unwrap().is_some());
    }
    let ordered_us = started.elapsed().as_secs_f64() * 1e6 / COUNT as f64;
    // As the audit's lookup thread asks: batches of 64, in the scattered order.
    let started = Instant::now();
    let mut hits = 0;
    for (b, batch) in digests.chunks(64).enumerate() {
        let keys: Vec<CacheKey<'_>> = batch
            .iter()
            .enumerate()
            .map(|(i, d)| key(d, (((b * 64 + i) * 7919) % COUNT) as u64))
            .collect();
        hits += store
            .get_many(&keys)
            .into_iter()
            .filter(|got| matches!(got, Ok(Some(_))))
            .count();
    }
    let many_us = started.elapsed().as_secs_f64() * 1e6 / COUNT as f64;
    assert_eq!(hits, COUNT);
    println!(
        "gc-cache over {COUNT} entries: get (hit) {get_us:.2} µs, get (miss) {miss_us:.2} µs, \
         get (hit, in key order) {ordered_us:.2} µs, get_many of 64 (hits) {many_us:.2} µs, \
         put+flush {put_us:.2} µs per entry; file {} bytes",
        std::fs::metadata(store.path()).unwrap().len()
    );
    // Loose bound (debug builds, shared machines): a point lookup, not a scan.
    assert!(get_us < 2000.0, "{get_us} µs per get");
}
