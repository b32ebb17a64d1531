//! `--registry-config` read as the registry reads it (SPEC §4, issue 15 item 8): the
//! `REGISTRY_STORAGE_*` environment overrides the file's bucket, root directory, endpoint and
//! keys (S3, against s3-mem-server on loopback) and the filesystem root; an unknown key under
//! `storage.<driver>` is a warning naming the file, the key and the nearest known key, on
//! stderr and in summary.json; `--profile` naming no profile is an error before any request.

mod support;

use s3_mem_server::{S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::path::Path;
use std::process::Command;
use support::*;

const BUCKET: &str = "registry-bucket";
const ROOT: &str = "prod/registry";

/// Run gc-audit with only `env` (plus PATH and HOME) as AWS / registry environment.
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gc-audit"));
    cmd.args(args).env_clear().env("GC_AUDIT_NO_CACHE", "1");
    for keep in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    // An empty config and credentials file unless the test names its own.
    cmd.env("AWS_CONFIG_FILE", "/nonexistent/gc-audit-test/config");
    cmd.env(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/gc-audit-test/credentials",
    );
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run gc-audit");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&report(out, "summary.json")).expect("summary.json")
}

/// The report files of a complete scan, which must equal the filesystem scan's.
const REPORTS: [&str; 7] = [
    "orphaned.csv",
    "missing.csv",
    "dangling.csv",
    "gc-unsafe.csv",
    "broken.csv",
    "repos.csv",
    "findings.csv",
];

#[test]
fn environment_overrides_bucket_root_endpoint_and_keys_of_the_config_file() {
    let (server, tmp, root) = s3_server_with_sample(BUCKET, ROOT);
    server.set_read_only(true);
    // The file points elsewhere: another server, bucket and root, wrong keys, and a typo.
    let elsewhere = S3MemServer::start().expect("second s3 server");
    let config = tmp.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  s3:\n    region: {REGION}\n    regionendpoint: {}\n    bucket: not-this-bucket\n    rootdirectory: /not/here\n    accesskey: wrong\n    secretkey: wrong-secret\n    secure: false\n    rootdir: /typo\n  delete:\n    enabled: true\n",
            elsewhere.endpoint()
        ),
    )
    .expect("config");
    let endpoint = server.endpoint();
    let out = tmp.path().join("s3");
    let args = [
        "scan",
        "--registry-config",
        config.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "-q",
    ];
    let env = [
        ("REGISTRY_STORAGE_S3_BUCKET", BUCKET),
        ("REGISTRY_STORAGE_S3_ROOTDIRECTORY", "/prod/registry/"),
        ("REGISTRY_STORAGE_S3_REGIONENDPOINT", endpoint.as_str()),
        ("REGISTRY_STORAGE_S3_ACCESSKEY", ACCESS_KEY),
        ("REGISTRY_STORAGE_S3_SECRETKEY", SECRET_KEY),
    ];
    let s3 = run(&args, &env);
    assert_eq!(s3.code, 1, "stdout:\n{}\nstderr:\n{}", s3.stdout, s3.stderr);
    let warning = format!(
        "gc-audit: warning: {}: unknown key storage.s3.rootdir, which the registry ignores (did you mean rootdirectory?)\n",
        config.display()
    );
    assert_eq!(s3.stderr, warning, "the one warning, and no secret");
    let s = summary(&out);
    assert_eq!(s["location"], "s3://registry-bucket/prod/registry");
    assert_eq!(
        s["warnings"],
        serde_json::json!([warning.trim_end().trim_start_matches("gc-audit: warning: ")])
    );
    let fs_out = tmp.path().join("fs");
    let fs = gc_audit(&[
        "scan",
        root.to_str().expect("utf-8"),
        "--out",
        fs_out.to_str().expect("utf-8"),
        "-q",
    ]);
    assert_eq!(fs.code, 1, "{}", fs.stderr);
    assert!(
        summary(&fs_out).get("warnings").is_none(),
        "no warnings: no key"
    );
    for f in REPORTS {
        assert_text(f, &report(&out, f), &report(&fs_out, f));
    }
    // Without the environment the file's wrong endpoint is used: the scan fails.
    let without = run(&args, &[]);
    assert_eq!(without.code, 2, "{}", without.stderr);
    assert!(
        !without.stderr.contains("wrong-secret"),
        "{}",
        without.stderr
    );
}

#[test]
fn environment_overrides_the_filesystem_root_and_defaults_are_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("registry");
    copy_tree(&workspace().join("examples/registry"), &root);
    let config = tmp.path().join("config.yml");
    std::fs::write(
        &config,
        "version: 0.1\nstorage:\n  filesystem:\n    rootdir: /srv/typo\n",
    )
    .expect("config");
    let out = tmp.path().join("out");
    let args = [
        "scan",
        "--registry-config",
        config.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "-q",
    ];
    let unknown = format!(
        "gc-audit: warning: {}: unknown key storage.filesystem.rootdir, which the registry ignores (did you mean rootdirectory?)",
        config.display()
    );
    // The file alone: the typo is ignored, as the registry ignores it, and the driver's
    // default root is used and named (it holds no registry here, so the run fails).
    let bare = run(&args, &[]);
    assert_eq!(bare.code, 2, "{}", bare.stderr);
    let default = format!(
        "gc-audit: warning: --registry-config {}: storage.filesystem.rootdirectory is not set: using the driver's default /var/lib/registry",
        config.display()
    );
    let lines: Vec<&str> = bare.stderr.lines().collect();
    assert_eq!(
        lines[..2],
        [unknown.as_str(), default.as_str()],
        "{}",
        bare.stderr
    );
    assert!(lines[2].contains("/var/lib/registry"), "{}", bare.stderr);

    let root_var = root.to_str().expect("utf-8");
    let with_env = run(
        &args,
        &[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", root_var)],
    );
    assert_eq!(with_env.code, 1, "{}\n{}", with_env.stdout, with_env.stderr);
    assert_eq!(with_env.stderr, format!("{unknown}\n"));
    let s = summary(&out);
    assert_eq!(s["location"], root_var);
    assert_eq!(s["warnings"].as_array().map(Vec::len), Some(1), "{s}");
}

#[test]
fn a_profile_that_does_not_exist_is_an_error_before_any_request() {
    let (server, tmp, _root) = s3_server_with_sample(BUCKET, ROOT);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).expect("mkdir");
    let config = tmp.path().join("aws-config");
    let credentials = tmp.path().join("aws-credentials");
    std::fs::write(&config, format!("[profile ops]\nregion = {REGION}\n")).expect("config");
    std::fs::write(
        &credentials,
        format!("[ops]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"),
    )
    .expect("credentials");
    // A profile only in ~/.aws of the temporary HOME, which AWS_CONFIG_FILE hides.
    std::fs::write(
        home.join(".aws/config"),
        "[profile home-only]\nregion = us-east-1\n",
    )
    .expect("home config");
    let location = format!("s3://{BUCKET}/{ROOT}");
    let endpoint = server.endpoint();
    let out = tmp.path().join("out");
    let scan = |profile: &str| {
        run(
            &[
                "scan",
                &location,
                "--endpoint-url",
                &endpoint,
                "--force-path-style",
                "--profile",
                profile,
                "--out",
                out.to_str().expect("utf-8"),
                "-q",
            ],
            &[
                ("HOME", home.to_str().expect("utf-8")),
                ("AWS_CONFIG_FILE", config.to_str().expect("utf-8")),
                (
                    "AWS_SHARED_CREDENTIALS_FILE",
                    credentials.to_str().expect("utf-8"),
                ),
            ],
        )
    };
    for missing in ["nope", "home-only"] {
        let run = scan(missing);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "The config profile ({missing}) could not be found"
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("defined: ops"), "{}", run.stderr);
        assert!(server.requests().is_empty(), "no request was sent");
        assert!(!out.exists(), "no report folder");
    }
    // The profile that exists gives region and keys.
    let ok = scan("ops");
    assert_eq!(ok.code, 1, "{}\n{}", ok.stdout, ok.stderr);
    assert!(!server.requests().is_empty());
}
