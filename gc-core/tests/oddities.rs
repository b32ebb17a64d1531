//! Storage oddities a fuzzer over real registry trees met besides manifests: an upload that
//! says it started in the future, and blobs under another algorithm than sha256.

use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::digest::Digest;
use gc_core::fixture::{old_time, Fixture};
use gc_core::gc::{self, GcModel, GcPlan};
use gc_core::layout::Key;
use gc_core::manifest::MT_OCI_MANIFEST;
use gc_core::report::Report;
use sha2::{Digest as _, Sha384, Sha512};
use std::time::Duration;

fn options() -> AuditOptions {
    AuditOptions {
        now: Some(old_time() + Duration::from_secs(30 * 86400)),
        ..AuditOptions::default()
    }
}

async fn scan(f: &Fixture) -> Report {
    let r = audit(&f.storage, &options(), &NoProgress).await.report;
    assert!(r.summary.complete, "{:?}", r.summary.errors);
    r
}

fn stale(r: &Report) -> Vec<(String, String)> {
    r.findings
        .iter()
        .filter(|x| x.kind == "stale-upload")
        .map(|x| (x.key.clone(), x.detail.clone()))
        .collect()
}

/// The registry purges uploads whose `startedat` is before its cut-off: one that starts in
/// year 9999 is never purged, so it is a finding, not young forever. A few minutes ahead is
/// clock skew.
#[tokio::test]
async fn an_upload_started_in_the_future_is_stale() {
    let f = Fixture::new();
    let now = old_time() + Duration::from_secs(30 * 86400);
    let key = |id: &str| Key::UploadStartedAt {
        repo: "a".into(),
        id: id.into(),
    };
    f.put(&key("far"), b"9999-12-31T23:59:59Z".to_vec());
    f.put(
        &key("tomorrow"),
        humantime::format_rfc3339_seconds(now + Duration::from_secs(86400))
            .to_string()
            .into_bytes(),
    );
    f.put(
        &key("skew"),
        humantime::format_rfc3339_seconds(now + Duration::from_secs(60))
            .to_string()
            .into_bytes(),
    );
    f.put(
        &Key::UploadData {
            repo: "a".into(),
            id: "far".into(),
        },
        vec![0u8; 4],
    );
    let r = scan(&f).await;
    let tomorrow = humantime::format_rfc3339_seconds(now + Duration::from_secs(86400));
    assert_eq!(
        stale(&r),
        vec![
            (
                key("far").to_path(),
                "startedat 9999-12-31T23:59:59Z is in the future: the registry never purges it, 4 bytes of data"
                    .to_string()
            ),
            (
                key("tomorrow").to_path(),
                format!("startedat {tomorrow} is in the future: the registry never purges it")
            ),
        ]
    );
}

fn blob_under(f: &Fixture, alg: &str, data: &[u8]) -> Digest {
    let sum = match alg {
        "sha384" => Sha384::digest(data).to_vec(),
        _ => Sha512::digest(data).to_vec(),
    };
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    let digest = Digest::parse(&format!("{alg}:{hex}")).expect("digest");
    f.put(
        &Key::BlobData {
            digest: digest.clone(),
        },
        data.to_vec(),
    );
    digest
}

/// Blobs under `blobs/sha512/…` (and go-digest's other registered algorithm, sha384) are
/// audited like sha256 ones: referenced ones are live, and
/// the others are orphans the collector deletes; a sha512 layer that is missing is missing.
#[tokio::test]
async fn sha512_blobs_are_audited_like_sha256_ones() {
    let f = Fixture::new();
    let config = f.upload("a", b"{}");
    let layer = blob_under(&f, "sha512", b"a sha512 layer");
    f.link_layer("a", &layer);
    let orphan = blob_under(&f, "sha512", b"nobody references this");
    let orphan384 = blob_under(&f, "sha384", b"nor this");
    let gone = Digest::parse(&format!("sha512:{}", "ab".repeat(64))).unwrap();
    f.link_layer("a", &gone);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MT_OCI_MANIFEST}","config":{{"digest":"{config}","size":2}},
          "layers":[{{"digest":"{layer}","size":14}},{{"digest":"{gone}","size":1}}]}}"#
    );
    let m = f.manifest("a", manifest.as_bytes());
    f.tag("a", "t", &m);
    let o = audit(&f.storage, &options(), &NoProgress).await;
    let r = &o.report;
    let orphans: Vec<String> = r.orphaned.iter().map(|x| x.digest.to_string()).collect();
    assert_eq!(orphans, vec![orphan384.to_string(), orphan.to_string()]);
    let missing: Vec<(String, String)> = r
        .missing
        .iter()
        .map(|x| (x.digest.clone(), x.reason.clone()))
        .collect();
    assert_eq!(
        missing,
        vec![(gone.to_string(), "blob-missing".to_string())]
    );
    assert!(
        r.findings.iter().all(|x| x.kind != "unparseable-manifest"),
        "{:?}",
        r.findings
    );
    for model in GcModel::ALL {
        match gc::plan(&o.graph, model, o.driver) {
            GcPlan::Completes(d) => {
                let blobs: Vec<String> = d
                    .blobs_in_digest_order(&o.graph)
                    .iter()
                    .map(|b| o.graph.digests().digest(*b).to_string())
                    .collect();
                assert_eq!(
                    blobs,
                    vec![orphan384.to_string(), orphan.to_string()],
                    "{model}"
                );
            }
            other => panic!("{model}: {other:?}"),
        }
    }
}
