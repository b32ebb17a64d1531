//! gc-audit's persistent manifest cache: [`gc_core::cache::ManifestStore`] in one SQLite file.
//!
//! gc-core decides what is cached and checks every entry it reads back (see
//! [`gc_core::cache`]); this crate only keeps opaque bytes under a [`CacheKey`] in a file that
//! survives between runs. SQLite (compiled in, see `rusqlite`'s `bundled` feature) because the
//! cache is shared by gc-audit runs that overlap, a scheduled scan and an operator's manual
//! one: in WAL mode several processes read and write one file, waiting on each other's
//! writes up to a busy timeout instead of failing. (redb, the obvious pure-Rust choice, locks
//! its file exclusively per process: the second run would get `DatabaseAlreadyOpen`.)
//!
//! - [`SqliteManifestStore`] is the store: a point lookup per `get` on the caller's thread, and
//!   `put`s committed in batches by a writer thread of its own.
//! - [`SqliteManifestStore::open`] turns a damaged or foreign file into a fresh one with one
//!   warning, so that a bad cache costs one run its hits, never the audit.
//! - [`default_dir`] is where the CLI keeps it unless told otherwise.
//!
//! [`CacheKey`]: gc_core::cache::CacheKey
#![deny(missing_docs)]

mod open;
mod store;
mod writer;

pub use store::{SqliteManifestStore, BUSY_TIMEOUT, FILE_NAME, PAGE_SIZE, SCHEMA_VERSION};

use std::ffi::OsString;
use std::path::PathBuf;

/// The directory the cache lives in by default: `$XDG_CACHE_HOME/gc-audit` when
/// `XDG_CACHE_HOME` is set to an absolute path (the XDG base directory spec says to ignore a
/// relative one), else `$HOME/.cache/gc-audit`; `None` when neither is usable.
pub fn default_dir() -> Option<PathBuf> {
    default_dir_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
}

/// [`default_dir`] for the given values of `XDG_CACHE_HOME` and `HOME`.
fn default_dir_from(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    if let Some(xdg) = xdg_cache_home.map(PathBuf::from) {
        if xdg.is_absolute() {
            return Some(xdg.join("gc-audit"));
        }
    }
    let home = home.map(PathBuf::from)?;
    if home.as_os_str().is_empty() {
        return None;
    }
    Some(home.join(".cache").join("gc-audit"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn the_default_dir_prefers_an_absolute_xdg_cache_home_then_home() {
        assert_eq!(
            default_dir_from(os("/xdg"), os("/home/u")),
            Some(PathBuf::from("/xdg/gc-audit"))
        );
        // Empty or relative: ignored, as the XDG spec says.
        assert_eq!(
            default_dir_from(os(""), os("/home/u")),
            Some(PathBuf::from("/home/u/.cache/gc-audit"))
        );
        assert_eq!(
            default_dir_from(os("rel/cache"), os("/home/u")),
            Some(PathBuf::from("/home/u/.cache/gc-audit"))
        );
        assert_eq!(
            default_dir_from(None, os("/home/u")),
            Some(PathBuf::from("/home/u/.cache/gc-audit"))
        );
        assert_eq!(default_dir_from(os("rel"), None), None);
        assert_eq!(default_dir_from(None, os("")), None);
        assert_eq!(default_dir_from(None, None), None);
    }
}
