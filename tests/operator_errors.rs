//! The failures an operator meets in the first hour, each one line that says what happened and
//! what to do, exit 2, and quickly: no credentials, a closed port, a host that does not resolve,
//! https against a plain-HTTP server, an endpoint that accepts and never answers, S3's refusals
//! (`SignatureDoesNotMatch`, `InvalidAccessKeyId`, `NoSuchBucket`), an endpoint without a scheme,
//! and LOCATION mistakes (inside or above a registry root, a file, a URL or another scheme).
//! S3 runs go to the in-process s3-mem-server on 127.0.0.1, or to a socket of the test's own.

mod support;

use s3_mem_server::{FaultKind, Faults, ACCESS_KEY, REGION, SECRET_KEY};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

const BUCKET: &str = "registry-bucket";
const ROOT: &str = "prod/registry";

/// One run of gc-audit with only the given AWS credentials (none when `keys` is `None`): no
/// profile, no config files, no instance metadata.
fn run_with(args: &[&str], keys: Option<(&str, &str)>, home: &Path) -> (Run, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gc-audit"));
    cmd.env("GC_AUDIT_NO_CACHE", "1");
    cmd.args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env_remove("RUST_LOG")
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    if let Some((access, secret)) = keys {
        cmd.env("AWS_ACCESS_KEY_ID", access)
            .env("AWS_SECRET_ACCESS_KEY", secret);
    }
    let started = Instant::now();
    let out = cmd.output().expect("run gc-audit");
    let took = started.elapsed();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (run, took)
}

/// `scan s3://BUCKET/ROOT --endpoint-url endpoint --region … [extra]`, writing to `out`.
fn scan_at(
    endpoint: &str,
    out: &Path,
    extra: &[&str],
    keys: Option<(&str, &str)>,
) -> (Run, Duration) {
    let location = format!("s3://{BUCKET}/{ROOT}");
    let mut args = vec![
        "scan",
        location.as_str(),
        "--endpoint-url",
        endpoint,
        "--region",
        REGION,
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    let home = out.parent().expect("parent");
    run_with(&args, keys, home)
}

/// An access key and its secret.
type Keys<'a> = Option<(&'a str, &'a str)>;

const KEYS: Keys = Some((ACCESS_KEY, SECRET_KEY));

/// The run failed with exit 2 and one line on stderr of at most 300 characters holding every
/// one of `expected`, with nothing of the SDK's `Debug` text, within `limit`; no report was
/// written.
#[track_caller]
fn assert_one_line_failure(
    what: &str,
    (run, took): (Run, Duration),
    out: &Path,
    expected: &[&str],
    limit: Duration,
) {
    assert_eq!(run.code, 2, "{what}: {run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line on stderr: {run:?}");
    let line = lines[0];
    assert!(line.starts_with("gc-audit: "), "{what}: {line}");
    assert!(
        line.chars().count() <= 300,
        "{what}: {} chars: {line}",
        line.chars().count()
    );
    for e in expected {
        assert!(line.contains(e), "{what}: {line:?} lacks {e:?}");
    }
    for debug in [
        "DispatchFailure",
        "ConnectorError",
        "Some(",
        "{ ",
        "no message",
    ] {
        assert!(
            !line.contains(debug),
            "{what}: SDK debug text {debug:?} in {line:?}"
        );
    }
    assert!(run.stdout.is_empty(), "{what}: {run:?}");
    assert!(took < limit, "{what}: took {took:?}, limit {limit:?}");
    assert!(
        !out.exists(),
        "{what}: a report was written although nothing was read"
    );
}

#[test]
fn no_credentials_say_so_and_suggest_variables_or_a_profile() {
    let (server, tmp, _) = s3_server_with_sample(BUCKET, ROOT);
    let out = tmp.path().join("out");
    let run = scan_at(&server.endpoint(), &out, &["--force-path-style"], None);
    assert_one_line_failure(
        "no credentials",
        run,
        &out,
        &[
            "no AWS credentials",
            "environment variables",
            "AWS_ACCESS_KEY_ID",
            "--profile",
        ],
        Duration::from_secs(10),
    );
    assert!(
        server.requests().is_empty(),
        "nothing was sent without credentials"
    );
}

#[test]
fn a_closed_port_fails_at_once_naming_the_endpoint() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let endpoint = format!("http://127.0.0.1:{port}");
    let run = scan_at(&endpoint, &out, &["--force-path-style"], KEYS);
    assert_one_line_failure(
        "closed port",
        run,
        &out,
        &["connection refused", &endpoint, "--endpoint-url"],
        Duration::from_secs(5),
    );
}

#[test]
fn an_endpoint_that_never_answers_gives_up_within_the_timeouts() {
    // Accepts connections (the kernel's backlog does) and never reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = scan_at(
        &endpoint,
        &out,
        &[
            "--force-path-style",
            "--read-timeout",
            "1s",
            "--max-attempts",
            "2",
        ],
        KEYS,
    );
    assert_one_line_failure(
        "silent endpoint",
        run,
        &out,
        &["no answer from", &endpoint, "--read-timeout"],
        Duration::from_secs(20),
    );
    drop(listener);
}

#[test]
fn an_unknown_host_with_virtual_host_style_suggests_path_style() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = scan_at("http://no-such-host.invalid:9000", &out, &[], KEYS);
    assert_one_line_failure(
        "dns, virtual host",
        run,
        &out,
        &[
            "cannot resolve host",
            "registry-bucket.no-such-host.invalid",
            "--force-path-style",
        ],
        Duration::from_secs(10),
    );
    let run = scan_at(
        "http://no-such-host.invalid:9000",
        &out,
        &["--force-path-style"],
        KEYS,
    );
    assert_one_line_failure(
        "dns, path style",
        run,
        &out,
        &["cannot resolve host no-such-host.invalid", "--endpoint-url"],
        Duration::from_secs(10),
    );
}

#[test]
fn https_against_a_plain_http_server_suggests_http() {
    let (server, tmp, _) = s3_server_with_sample(BUCKET, ROOT);
    let out = tmp.path().join("out");
    let endpoint = format!("https://{}", server.addr());
    let run = scan_at(&endpoint, &out, &["--force-path-style"], KEYS);
    assert_one_line_failure(
        "tls to http",
        run,
        &out,
        &["plain HTTP", "http://"],
        Duration::from_secs(10),
    );
}

#[test]
fn refusals_of_the_service_keep_their_code_and_say_what_to_check() {
    let (server, tmp, _) = s3_server_with_sample(BUCKET, ROOT);
    let out = tmp.path().join("out");
    let endpoint = server.endpoint();
    let cases: [(&str, Keys, &[&str]); 2] = [
        (
            "wrong secret",
            Some((ACCESS_KEY, "not-the-secret")),
            &["SignatureDoesNotMatch", "HTTP 403", "AWS_SECRET_ACCESS_KEY"],
        ),
        (
            "unknown access key",
            Some(("nobody", SECRET_KEY)),
            // S3 answers InvalidAccessKeyId; s3s (this server) NotSignedUp: same hint.
            &["NotSignedUp", "HTTP 403", "AWS_ACCESS_KEY_ID"],
        ),
    ];
    for (what, keys, expected) in cases {
        let run = scan_at(&endpoint, &out, &["--force-path-style"], keys);
        assert_one_line_failure(what, run, &out, expected, Duration::from_secs(10));
    }
    let location = "s3://no-such-bucket/x";
    let home = tmp.path();
    let run = run_with(
        &[
            "scan",
            location,
            "--endpoint-url",
            &endpoint,
            "--region",
            REGION,
            "--force-path-style",
            "--out",
            out.to_str().unwrap(),
            "-q",
        ],
        KEYS,
        home,
    );
    assert_one_line_failure(
        "no such bucket",
        run,
        &out,
        &[
            "NoSuchBucket",
            "HTTP 404",
            "no bucket no-such-bucket",
            "check the bucket name",
        ],
        Duration::from_secs(10),
    );
}

#[test]
fn retries_are_logged_with_their_reason_at_v() {
    let (server, tmp, _) = s3_server_with_sample(BUCKET, ROOT);
    server.set_faults(Faults {
        fail_first_attempts: Some(2),
        operations: vec!["ListObjectsV2".into()],
        kinds: vec![FaultKind::SlowDown],
        ..Faults::default()
    });
    let out = tmp.path().join("out");
    let (run, _) = scan_at(
        &server.endpoint(),
        &out,
        &["--force-path-style", "-v"],
        KEYS,
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("retrying request") && run.stderr.contains("SlowDown"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("phase done"), "{}", run.stderr);
    let (quiet, _) = scan_at(&server.endpoint(), &out, &["--force-path-style"], KEYS);
    assert_eq!(quiet.code, 1, "{quiet:?}");
    assert!(
        quiet.stderr.is_empty(),
        "-q without -v logs nothing: {}",
        quiet.stderr
    );
}

#[test]
fn an_endpoint_without_scheme_is_refused_while_parsing_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, _) = run_with(
        &["scan", "s3://b", "--endpoint-url", "minio:9000"],
        KEYS,
        tmp.path(),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--endpoint-url"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("write http://minio:9000 or https://minio:9000"),
        "{}",
        run.stderr
    );
}

#[test]
fn location_mistakes_name_what_was_found() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("srv/registry");
    std::fs::create_dir_all(root.join("docker/registry/v2/repositories/app")).unwrap();
    std::fs::create_dir_all(root.join("docker/registry/v2/blobs")).unwrap();
    let file = tmp.path().join("config.yml");
    std::fs::write(&file, "version: 0.1\n").unwrap();
    let inside = root.join("docker/registry/v2/repositories");
    let shown = root.display().to_string();
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            inside.display().to_string(),
            vec![
                format!("inside the registry root {shown}"),
                format!("did you mean {shown}?"),
            ],
        ),
        (
            tmp.path().display().to_string(),
            vec![
                "does not hold docker/registry/v2".into(),
                format!("did you mean {shown}?"),
            ],
        ),
        (file.display().to_string(), vec!["not a directory".into()]),
        (
            "https://registry.example.com".into(),
            vec!["not the registry API".into(), "s3://BUCKET".into()],
        ),
        (
            "gs://bucket/registry".into(),
            vec!["Google Cloud Storage".into(), "s3://BUCKET".into()],
        ),
        (
            "azure://container".into(),
            vec!["Azure".into(), "filesystem rootdirectory".into()],
        ),
    ];
    for (location, expected) in cases {
        let (run, _) = run_with(&["scan", &location, "-q"], None, tmp.path());
        assert_eq!(run.code, 2, "{location}: {run:?}");
        let line = run.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "{location}: {line}");
        assert!(line.chars().count() <= 300, "{location}: {line}");
        for e in &expected {
            assert!(
                line.contains(e.as_str()),
                "{location}: {line:?} lacks {e:?}"
            );
        }
    }
}

/// A TLS listener on 127.0.0.1 in front of `backend` (s3-mem-server), with a server
/// certificate for 127.0.0.1 signed by a CA made for the test; returns its address, the CA's
/// PEM and the runtime that serves it (dropping it stops the listener).
fn tls_front(
    backend: std::net::SocketAddr,
) -> (std::net::SocketAddr, String, tokio::runtime::Runtime) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use tokio_rustls::rustls;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gc-audit test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake: nothing to serve.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    (addr, ca.pem(), runtime)
}

#[test]
fn a_private_ca_is_trusted_with_ca_bundle_or_aws_ca_bundle_and_refused_without() {
    let (server, tmp, _) = s3_server_with_sample(BUCKET, ROOT);
    let (addr, ca_pem, _tls) = tls_front(server.addr());
    let ca_file = tmp.path().join("private-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let endpoint = format!("https://{addr}");
    let out = tmp.path().join("out");

    let untrusted = scan_at(&endpoint, &out, &["--force-path-style"], KEYS);
    assert_one_line_failure(
        "untrusted certificate",
        untrusted,
        &out,
        &[
            "not trusted",
            "UnknownIssuer",
            "--ca-bundle",
            "AWS_CA_BUNDLE",
        ],
        Duration::from_secs(10),
    );

    let ca = ca_file.to_str().unwrap();
    let (trusted, _) = scan_at(
        &endpoint,
        &out,
        &["--force-path-style", "--ca-bundle", ca],
        KEYS,
    );
    assert_eq!(
        trusted.code, 1,
        "the sample's findings, read over TLS: {trusted:?}"
    );
    assert!(out.join("broken.csv").is_file());

    // AWS_CA_BUNDLE, which the Rust SDK does not read by itself.
    let location = format!("s3://{BUCKET}/{ROOT}");
    let out2 = tmp.path().join("out2");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gc-audit"));
    cmd.env("GC_AUDIT_NO_CACHE", "1");
    cmd.args([
        "scan",
        &location,
        "--endpoint-url",
        &endpoint,
        "--region",
        REGION,
        "--force-path-style",
        "--out",
        out2.to_str().unwrap(),
        "-q",
    ])
    .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .env_remove("AWS_PROFILE")
    .env("AWS_CA_BUNDLE", ca);
    let run = cmd.output().unwrap();
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(report(&out2, "broken.csv"), report(&out, "broken.csv"));

    // The same bundle with the server's plain-HTTP address: its S3 client needs no TLS (and
    // gets a plain HTTP one), and the report is the same.
    let out4 = tmp.path().join("out4");
    let (plain, _) = scan_at(
        &format!("http://{}", server.addr()),
        &out4,
        &["--force-path-style", "--ca-bundle", ca],
        KEYS,
    );
    assert_eq!(plain.code, 1, "{plain:?}");
    assert_eq!(report(&out4, "broken.csv"), report(&out, "broken.csv"));

    let not_pem = tmp.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let (bad, _) = scan_at(
        &endpoint,
        &tmp.path().join("out3"),
        &[
            "--force-path-style",
            "--ca-bundle",
            not_pem.to_str().unwrap(),
        ],
        KEYS,
    );
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("no PEM certificate"), "{}", bad.stderr);
}

#[test]
fn config_errors_name_their_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("config.yml");
    let shown = missing.display().to_string();
    let (run, _) = run_with(
        &["scan", "--registry-config", &shown, "-q"],
        None,
        tmp.path(),
    );
    assert_eq!(run.code, 2, "{run:?}");
    let line = run.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert_eq!(line.matches(shown.as_str()).count(), 1, "{line}");
    assert_eq!(line.matches("No such file").count(), 1, "{line}");
}
