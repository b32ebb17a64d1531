//! `default_dir` against the real environment: one test function in its own binary, because
//! it changes variables that other threads would read.

use gc_cache::default_dir;
use std::path::PathBuf;

#[test]
fn the_default_dir_follows_xdg_cache_home_then_home() {
    std::env::set_var("HOME", "/home/someone");
    std::env::set_var("XDG_CACHE_HOME", "/var/cache/me");
    assert_eq!(default_dir(), Some(PathBuf::from("/var/cache/me/gc-audit")));
    std::env::set_var("XDG_CACHE_HOME", "");
    assert_eq!(
        default_dir(),
        Some(PathBuf::from("/home/someone/.cache/gc-audit"))
    );
    std::env::set_var("XDG_CACHE_HOME", "relative/cache");
    assert_eq!(
        default_dir(),
        Some(PathBuf::from("/home/someone/.cache/gc-audit"))
    );
    std::env::remove_var("XDG_CACHE_HOME");
    assert_eq!(
        default_dir(),
        Some(PathBuf::from("/home/someone/.cache/gc-audit"))
    );
    std::env::remove_var("HOME");
    assert_eq!(default_dir(), None);
    std::env::set_var("XDG_CACHE_HOME", "/var/cache/me");
    assert_eq!(default_dir(), Some(PathBuf::from("/var/cache/me/gc-audit")));
}
