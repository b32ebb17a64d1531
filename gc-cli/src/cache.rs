//! The manifest cache of a run: where it is (`--cache-dir`, else `$XDG_CACHE_HOME/gc-audit`,
//! else `~/.cache/gc-audit`) or that there is none (`--no-cache`), and opening it.
//!
//! A cache only saves requests: a run without one reports the same. So a cache that cannot be
//! opened (no home directory, a read-only one, a damaged file the store cannot set aside) is a
//! warning and the run reads every manifest from storage; it never stops an audit.

use crate::args::StorageArgs;
use gc_cache::SqliteManifestStore;
use gc_core::cache::ManifestStore;
use std::path::PathBuf;
use std::sync::Arc;

/// Which cache a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CacheChoice {
    /// `--no-cache`.
    Off,
    /// `--cache-dir DIR`.
    Dir(PathBuf),
    /// Neither: the user's cache directory.
    Default,
}

impl CacheChoice {
    pub(crate) fn from_args(args: &StorageArgs) -> CacheChoice {
        match (&args.cache_dir, args.no_cache) {
            (_, true) => CacheChoice::Off,
            (Some(dir), false) => CacheChoice::Dir(dir.clone()),
            (None, false) => CacheChoice::Default,
        }
    }
}

/// The opened cache (None without one) and the warnings opening it gave, already printed on
/// stderr.
pub(crate) fn open(choice: &CacheChoice) -> (Option<Arc<dyn ManifestStore>>, Vec<String>) {
    let dir = match choice {
        CacheChoice::Off => return (None, Vec::new()),
        CacheChoice::Dir(dir) => dir.clone(),
        CacheChoice::Default => match gc_cache::default_dir() {
            Some(dir) => dir,
            None => {
                let w = "manifest cache: no cache directory (neither XDG_CACHE_HOME nor HOME \
                         is set; give --cache-dir or --no-cache): every manifest is read"
                    .to_string();
                return (None, warned(vec![w]));
            }
        },
    };
    match SqliteManifestStore::open(&dir) {
        Ok((store, warning)) => {
            let store: Arc<dyn ManifestStore> = Arc::new(store);
            (Some(store), warned(warning.into_iter().collect()))
        }
        Err(err) => {
            let w = format!("{err}; every manifest is read (--no-cache silences this)");
            (None, warned(vec![w]))
        }
    }
}

/// Print `warnings` on stderr and hand them on.
fn warned(warnings: Vec<String>) -> Vec<String> {
    for w in &warnings {
        crate::say(format_args!("gc-audit: warning: {w}"));
    }
    warnings
}
