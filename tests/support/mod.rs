//! Harness for end-to-end tests: registry trees on disk, the gc-audit binary, exact diffs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// 2026-01-01T00:00:00Z: far enough in the past that nothing is young.
pub const FIXED_TIME: u64 = 1_767_225_600;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Copy a tree, then date every file at [`FIXED_TIME`].
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).expect("inside");
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &dest).expect("copy");
        set_mtime(
            &dest,
            SystemTime::UNIX_EPOCH + Duration::from_secs(FIXED_TIME),
        );
    }
}

/// Set a file's modification time.
pub fn set_mtime(path: &Path, t: SystemTime) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open for mtime");
    f.set_modified(t).expect("set mtime");
}

/// Every file below `root`, sorted.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Path, size, mtime and content of every file: compare two to prove nothing changed.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, SystemTime, Vec<u8>)> {
    walk(root)
        .into_iter()
        .map(|p| {
            let md = std::fs::metadata(&p).expect("metadata");
            let content = std::fs::read(&p).expect("read");
            (p, (md.len(), md.modified().expect("mtime"), content))
        })
        .collect()
}

/// The result of one gc-audit run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run the gc-audit binary.
pub fn gc_audit(args: &[&str]) -> Run {
    gc_audit_env(args, &[])
}

/// Run the gc-audit binary with extra environment variables.
pub fn gc_audit_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_gc-audit"))
        .env("GC_AUDIT_NO_CACHE", "1")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run gc-audit");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Assert two multi-line texts are equal, printing both in full when they differ.
#[track_caller]
pub fn assert_text(name: &str, actual: &str, expected: &str) {
    if actual != expected {
        panic!("{name} differs\n--- expected\n{expected}\n--- actual\n{actual}\n---");
    }
}

/// Read a report file.
pub fn report(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// A local S3 server holding the sample registry (`examples/registry`) in `bucket` under
/// `root`, every object dated [`FIXED_TIME`], and the same tree on disk (the returned path,
/// inside the returned temporary folder).
pub fn s3_server_with_sample(
    bucket: &str,
    root: &str,
) -> (s3_mem_server::S3MemServer, tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = tmp.path().join("registry");
    copy_tree(&workspace().join("examples/registry"), &tree);
    let server = s3_mem_server::S3MemServer::start().expect("s3 server");
    server.create_bucket(bucket);
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(FIXED_TIME);
    let objects: Vec<(String, Vec<u8>, SystemTime)> = walk(&tree)
        .into_iter()
        .map(|p| {
            let key = p.strip_prefix(&tree).expect("inside").to_string_lossy();
            (
                format!("{root}/{key}"),
                std::fs::read(&p).expect("read"),
                at,
            )
        })
        .collect();
    server.put_objects_direct(bucket, objects);
    (server, tmp, tree)
}
