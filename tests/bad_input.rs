//! Bad input on a real filesystem tree: corrupt manifests, garbage link files, odd keys,
//! a 100 MB manifest, unreadable entries, bad arguments. Findings or a clear error naming the
//! key; never a panic, never a hang; exit status per SPEC §4.

mod support;

use std::path::Path;
use support::*;

fn sha256(data: &[u8]) -> String {
    gc_core::digest::Digest::sha256_of(data).to_string()
}

fn put(root: &Path, key: &str, data: &[u8]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data).unwrap();
    set_mtime(
        &path,
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(FIXED_TIME),
    );
}

fn blob_key(digest: &str) -> String {
    let hex = digest.trim_start_matches("sha256:");
    format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2])
}

/// Push `bytes` as a manifest of `repo`, tagged `tag`.
fn manifest(root: &Path, repo: &str, tag: &str, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let hex = d.trim_start_matches("sha256:");
    put(root, &blob_key(&d), bytes);
    let base = format!("docker/registry/v2/repositories/{repo}");
    put(
        root,
        &format!("{base}/_manifests/revisions/sha256/{hex}/link"),
        d.as_bytes(),
    );
    put(
        root,
        &format!("{base}/_manifests/tags/{tag}/current/link"),
        d.as_bytes(),
    );
    put(
        root,
        &format!("{base}/_manifests/tags/{tag}/index/sha256/{hex}/link"),
        d.as_bytes(),
    );
    put(
        root,
        &format!("{base}/_layers/sha256/{hex}/link"),
        d.as_bytes(),
    );
    d
}

fn scan(root: &Path, out: &Path) -> Run {
    gc_audit(&[
        "scan",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ])
}

#[test]
fn corrupt_manifests_and_garbage_links_are_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    let truncated = manifest(&root, "bad", "truncated", br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"dig"#);
    let not_json = manifest(&root, "bad", "notjson", b"\x89PNG\r\n\x1a\n binary garbage");
    let empty = manifest(&root, "bad", "empty", b"");
    let mut huge = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"pad":""#.to_vec();
    huge.resize(100 << 20, b' ');
    huge.extend_from_slice(br#""}}"#);
    let huge = manifest(&root, "bad", "huge", &huge);
    put(
        &root,
        "docker/registry/v2/repositories/bad/_manifests/tags/garbage/current/link",
        b"\x00\x01\x02not a digest at all",
    );
    let hex = "0".repeat(64);
    put(
        &root,
        &format!("docker/registry/v2/repositories/bad/_layers/sha256/{hex}/link"),
        b"",
    );
    put(
        &root,
        "docker/registry/v2/repositories/bad/_manifests/revisions/sha256/xyz/link",
        b"sha256:xyz",
    );
    put(
        &root,
        "docker/registry/v2/repositories/bad/stray file with spaces",
        b"?",
    );

    let out = tmp.path().join("out");
    let run = scan(&root, &out);
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let findings = report(&out, "findings.csv");
    for (kind, digest) in [
        ("unparseable-manifest", &truncated),
        ("unparseable-manifest", &not_json),
        ("unparseable-manifest", &empty),
        ("manifest-too-large", &huge),
    ] {
        let line = format!("{},{kind},", blob_key(digest));
        assert!(findings.contains(&line), "{line} not in\n{findings}");
    }
    for expected in [
        "bad,docker/registry/v2/repositories/bad/_manifests/tags/garbage/current/link,bad-link,content \\0\\u{1}\\u{2}not a digest at all",
        &format!("bad,docker/registry/v2/repositories/bad/_layers/sha256/{hex}/link,bad-link,\"content <empty>"),
        "bad,docker/registry/v2/repositories/bad/_manifests/revisions/sha256/xyz/link,bad-digest-in-path,",
        ",docker/registry/v2/repositories/bad/stray file with spaces,unrecognized-key,",
    ] {
        assert!(findings.contains(expected), "{expected} not in\n{findings}");
    }
    let broken = report(&out, "broken.csv");
    for tag in ["truncated", "notjson", "empty", "huge", "garbage"] {
        assert!(
            broken.contains(&format!("bad,{tag},")),
            "{tag} not in\n{broken}"
        );
    }
}

#[test]
fn unreadable_listing_makes_the_audit_incomplete() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    manifest(&root, "ok", "t", br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#);
    put(
        &root,
        "docker/registry/v2/blobs/sha256/aa/orphan/data",
        b"x",
    );
    // A symbolic link loop cannot be listed.
    std::os::unix::fs::symlink("..", root.join("docker/registry/v2/repositories/ok/loop")).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("orphaned.csv"), "stale report of an earlier run").unwrap();

    let run = scan(&root, &out);
    assert_eq!(
        run.code, 2,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.contains("AUDIT INCOMPLETE"), "{}", run.stdout);
    assert!(
        run.stdout.contains("repositories/ok/loop"),
        "names the path: {}",
        run.stdout
    );
    assert!(
        !out.join("orphaned.csv").exists(),
        "no reclaimable list from an incomplete audit, and the stale one is gone"
    );
    assert!(!out.join("missing.csv").exists());
    let summary: serde_json::Value = serde_json::from_str(&report(&out, "summary.json")).unwrap();
    assert_eq!(summary["complete"], false);
    assert!(report(&out, "findings.csv").contains(",symlink-loop,"));
}

#[test]
fn non_utf8_file_name_is_an_error_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    manifest(&root, "ok", "t", br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#);
    let dir = root.join("docker/registry/v2/repositories/ok/_uploads");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"bad\xffname")), b"x").unwrap();
    let out = tmp.path().join("out");
    let run = scan(&root, &out);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stdout.contains("not UTF-8"), "{}", run.stdout);
}

#[test]
fn clean_registry_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    manifest(&root, "ok", "t", br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#);
    let run = scan(&root, &tmp.path().join("out"));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("exit status 0: complete, no integrity findings"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_empty_registry_tree_is_no_registry_and_exit_two() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    std::fs::create_dir_all(root.join("docker/registry/v2/repositories")).unwrap();
    std::fs::create_dir_all(root.join("docker/registry/v2/blobs")).unwrap();
    let run = scan(&root, &tmp.path().join("out"));
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("no registry under {}", root.display())),
        "{}",
        run.stdout
    );
    let plan = gc_audit(&[
        "gc-plan",
        root.to_str().unwrap(),
        "--model",
        "distribution-3",
        "-q",
    ]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(plan.stderr.contains("no registry under"), "{plan:?}");
}

#[test]
fn bad_arguments_exit_two_with_a_message_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    manifest(&root, "ok", "t", b"{}");
    let r = root.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["scan", "/no/such/dir"], "no such directory"),
        (
            vec!["scan", tmp.path().to_str().unwrap()],
            "does not hold docker/registry/v2",
        ),
        (vec!["scan", r, "--grace", "soon"], "--grace"),
        (vec!["scan", r, "--concurrency", "0"], "--concurrency"),
        (
            vec!["scan", r, "--fail-on-unsafe", "registry-9"],
            "--fail-on-unsafe",
        ),
        (vec!["scan"], "LOCATION"),
        (vec!["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, expect) in cases {
        let run = gc_audit(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(expect),
            "{args:?}: stderr lacks {expect:?}:\n{}",
            run.stderr
        );
    }
}

#[test]
fn fail_on_unsafe_turns_a_gc_hazard_into_exit_one() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    // A tagged index over two untagged children: 2.8 -m would delete the children and
    // sweep their config.
    let empty = sha256(b"{}");
    put(&root, &blob_key(&empty), b"{}");
    let link = |repo: &str, d: &str| {
        format!(
            "docker/registry/v2/repositories/{repo}/_layers/sha256/{}/link",
            d.trim_start_matches("sha256:")
        )
    };
    put(&root, &link("multi", &empty), empty.as_bytes());
    let child = |arch: &str| {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"digest":"{empty}","size":2}},"layers":[],"annotations":{{"arch":"{arch}"}}}}"#
        );
        manifest(&root, "multi", &format!("tmp-{arch}"), m.as_bytes())
    };
    let (a, b) = (child("amd64"), child("arm64"));
    for arch in ["amd64", "arm64"] {
        std::fs::remove_dir_all(root.join(format!(
            "docker/registry/v2/repositories/multi/_manifests/tags/tmp-{arch}"
        )))
        .unwrap();
    }
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"digest":"{a}","platform":{{"os":"linux","architecture":"amd64"}}}},{{"digest":"{b}","platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
    );
    manifest(&root, "multi", "v1", index.as_bytes());
    let r = root.to_str().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    assert_eq!(gc_audit(&["scan", r, "--out", o, "-q"]).code, 0);
    let unsafe_csv = report(&out, "gc-unsafe.csv");
    assert_eq!(
        unsafe_csv
            .lines()
            .filter(|l| l.starts_with("distribution-2.8-m,delete-revision,multi,"))
            .count(),
        2,
        "{unsafe_csv}"
    );
    assert_eq!(
        gc_audit(&[
            "scan",
            r,
            "--out",
            o,
            "-q",
            "--fail-on-unsafe",
            "distribution-3-m"
        ])
        .code,
        0
    );
    let run = gc_audit(&[
        "scan",
        r,
        "--out",
        o,
        "-q",
        "--fail-on-unsafe",
        "distribution-2.8-m",
    ]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("distribution-2.8-m   UNSAFE: 3 deletions would break 1 image (multi:v1)"),
        "{}",
        run.stdout
    );
}
