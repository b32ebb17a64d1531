//! The shipped sample registry (examples/registry, made by `make-sample` with the real
//! distribution 2.8.2): every row of every report file, exactly.
//!
//! The sample holds a healthy single-arch image (library/hello), a multi-arch manifest list
//! damaged by a real `garbage-collect --delete-untagged` (team/web:stable), a healthy OCI index
//! with an attestation (team/app/api:v2), an untagged image and an orphan blob (team/app/api).
//! Digests are those listed in examples/sample-digests.txt.

mod support;

use support::*;

const HELLO_MANIFEST: &str =
    "sha256:90e956c81749684c6f9106182e766a401468b4b90703d5586fac2e44d3ba3797";
const HELLO_CONFIG: &str =
    "sha256:9ff7a13639fafabb68ea0dfed3eb204752308a137bba6701ebd7f70af8de145f";
const BASE_LAYER: &str = "sha256:4f6b04e1738cceb282d71e85c7c5ec9b3ccab32f734b3fdec7d82a644b71f889";
const HELLO_LAYER: &str = "sha256:bda1661b66c1113889e958b3d966a1095476854cd206e3c6ec602735ea3775b4";
const WEB_INDEX: &str = "sha256:ba9ff1644a385ebd24e36a2161a54e006c25c30f514d38099c795d879d47078b";
const WEB_AMD64: &str = "sha256:fd040397635034863ae3a325cdf99f71f72ec84480ecb5cfb486ff4fa867bf00";
const WEB_AMD64_CONFIG: &str =
    "sha256:a7dd0ab860123d2d1dedde3e1ee4b57108a35c9d4a345108a4505296e6f9bde9";
const WEB_AMD64_LAYER: &str =
    "sha256:52d1593a0b156b447a72eb2f6255fcbe5d21a11b84f8cbd81ac47d71435289a0";
const WEB_ARM: &str = "sha256:a09fd2d9c2eab2b70df6d1cbc439f128d54720a6498ba3bfea6d5c13d34828c2";
const WEB_ARM_CONFIG: &str =
    "sha256:f84b518ef71a2ce96451222bd80af7b6e2310e9eb863ad9984161346af2ed539";
const WEB_ARM_LAYER: &str =
    "sha256:0778122a8f48c73f583929f2d6d3c7da05436fb8f1d551d1a5f518351a2f7db1";
const API_INDEX: &str = "sha256:60c1bb47e1332d86e7424d4c1a8e3bead4982c1290e74e328bb95941ea5ef232";
const API_AMD64: &str = "sha256:50ea088d97c1c241c000627ee8e57683f0ba4c24cc83770e34c2914bd55f5af0";
const API_AMD64_CONFIG: &str =
    "sha256:5b8b9a84103483d3bf3fb1b2866ab782e1d1a1ba97833d84532820ff8cb63910";
const API_AMD64_LAYER: &str =
    "sha256:ca6a4328ae3d41c5fd3424d7d02e4f971e0294210cd5299737bdb09f894747f6";
const API_ARM64: &str = "sha256:c257982f81e688a40cc3183f169f7276fb645e31adf2efd40da90635242960da";
const API_ARM64_CONFIG: &str =
    "sha256:8cd6a9865321049401f746096dc0cf8992332bb71d975c910d0ab03f118a0871";
const API_ARM64_LAYER: &str =
    "sha256:104b9b3fdbeb8c9b342263e786e426aba2f5648070cd5e45891e11b3985bb54e";
const API_ATTESTATION: &str =
    "sha256:fe677af003cf5b45590fa007d9792da0e37b9a541279f1ab78c5e4b37e2c3dbc";
const API_ATTESTATION_CONFIG: &str =
    "sha256:60b18903c0d6ab45534a34f319a85c3493430e3a48bde774fcf63bb1ffabdea1";
const API_ATTESTATION_LAYER: &str =
    "sha256:c32f67cccedc167afc6cbd6a046132529a8ba47002e08a47f00ac855f60c419b";
const UNTAGGED_MANIFEST: &str =
    "sha256:99153be3acbbef79cf55148d49655e77aca1e3b79714b894641c69d2ab263be6";
const UNTAGGED_CONFIG: &str =
    "sha256:28401bb287975823bd7aa08307327dbbd63d2986c1afc0b852ffaa4af103e634";
const UNTAGGED_LAYER: &str =
    "sha256:5c9f086a9e05a28291ac9db7958917337271c27e4fc30551cbcd6dd71d21e682";
const ORPHAN: &str = "sha256:15a72047301ddd42460f17eb3d899893f58abfd4c829f79903aff3b93417683d";

/// Size of a blob in the tree.
fn size(root: &std::path::Path, digest: &str) -> u64 {
    let hex = digest.trim_start_matches("sha256:");
    let path = root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len()
}

fn sum(root: &std::path::Path, digests: &[&str]) -> u64 {
    digests.iter().map(|d| size(root, d)).sum()
}

#[test]
fn sample_registry_reports_exactly_the_damage_gc_2_8_did() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("registry");
    copy_tree(&workspace().join("examples/registry"), &root);
    let out = tmp.path().join("report");
    let before = snapshot(&root);

    let run = gc_audit(&[
        "scan",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);

    assert_eq!(
        run.code, 1,
        "integrity findings exit 1\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert_eq!(run.stderr, "", "nothing on stderr with -q");
    assert!(
        before == snapshot(&root),
        "the audit changed the storage it read"
    );

    let web_links = |d: &str| {
        format!("team/web,docker/registry/v2/repositories/team/web/_layers/sha256/{}/link,dangling-layer-link,blob {d} is not in the blob store\n", d.trim_start_matches("sha256:"))
    };
    let t = "2026-01-01T00:00:00Z";
    assert_text(
        "orphaned.csv",
        &report(&out, "orphaned.csv"),
        &format!(
            "digest,size,last_modified,reclaimable_by,young\n\
             {ORPHAN},{},{t},gc,false\n\
             {UNTAGGED_CONFIG},{},{t},gc-delete-untagged,false\n\
             {UNTAGGED_LAYER},{},{t},gc-delete-untagged,false\n\
             {UNTAGGED_MANIFEST},{},{t},gc-delete-untagged,false\n",
            size(&root, ORPHAN),
            size(&root, UNTAGGED_CONFIG),
            size(&root, UNTAGGED_LAYER),
            size(&root, UNTAGGED_MANIFEST),
        ),
    );
    assert_text(
        "missing.csv",
        &report(&out, "missing.csv"),
        &format!(
            "repository,manifest_digest,tags,kind,digest,reason\n\
             team/web,{WEB_ARM},stable,config,{WEB_ARM_CONFIG},blob-missing\n\
             team/web,{WEB_ARM},stable,layer,{WEB_ARM_LAYER},blob-missing\n\
             team/web,{WEB_INDEX},stable,child-manifest,{WEB_ARM},not-linked\n\
             team/web,{WEB_INDEX},stable,child-manifest,{WEB_AMD64},not-linked\n\
             team/web,{WEB_AMD64},stable,config,{WEB_AMD64_CONFIG},blob-missing\n\
             team/web,{WEB_AMD64},stable,layer,{WEB_AMD64_LAYER},blob-missing\n"
        ),
    );
    assert_text(
        "dangling.csv",
        &report(&out, "dangling.csv"),
        &format!(
            "repository,index_digest,tags,child_digest,platform,reason\n\
             team/web,{WEB_INDEX},stable,{WEB_ARM},linux/arm/v7,not-linked\n\
             team/web,{WEB_INDEX},stable,{WEB_AMD64},linux/amd64,not-linked\n"
        ),
    );
    assert_text(
        "broken.csv",
        &report(&out, "broken.csv"),
        &format!(
            "repository,tag,digest,problem\n\
             team/web,stable,{WEB_INDEX},child-manifest {WEB_ARM} (linux/arm/v7) not-linked; \
             child-manifest {WEB_AMD64} (linux/amd64) not-linked; \
             config {WEB_AMD64_CONFIG} blob-missing; config {WEB_ARM_CONFIG} blob-missing; \
             layer {WEB_ARM_LAYER} blob-missing; layer {WEB_AMD64_LAYER} blob-missing\n"
        ),
    );
    // What a 2.8 `garbage-collect -m` would do next: break team/app/api:v2 the way it broke
    // team/web:stable (every child's revision link, config and unshared layers).
    let unsafe_row = |action: &str, digest: &str, kind: &str, platform: &str| {
        format!("distribution-2.8-m,{action},team/app/api,{digest},{kind},{},team/app/api:v2 {platform}\n", size(&root, digest))
    };
    assert_text(
        "gc-unsafe.csv",
        &report(&out, "gc-unsafe.csv"),
        &[
            "model,action,repository,digest,kind,size,needed_by\n".to_string(),
            unsafe_row("delete-blob", API_ARM64_LAYER, "layer", "linux/arm64"),
            unsafe_row("delete-blob", API_AMD64_CONFIG, "config", "linux/amd64"),
            unsafe_row(
                "delete-blob",
                API_ATTESTATION_CONFIG,
                "config",
                "unknown/unknown",
            ),
            unsafe_row("delete-blob", API_ARM64_CONFIG, "config", "linux/arm64"),
            unsafe_row(
                "delete-blob",
                API_ATTESTATION_LAYER,
                "layer",
                "unknown/unknown",
            ),
            unsafe_row("delete-blob", API_AMD64_LAYER, "layer", "linux/amd64"),
            unsafe_row("delete-revision", API_AMD64, "manifest", "linux/amd64"),
            unsafe_row("delete-revision", API_ARM64, "manifest", "linux/arm64"),
            unsafe_row(
                "delete-revision",
                API_ATTESTATION,
                "manifest",
                "unknown/unknown",
            ),
        ]
        .concat(),
    );
    let hello = sum(
        &root,
        &[HELLO_MANIFEST, HELLO_CONFIG, BASE_LAYER, HELLO_LAYER],
    );
    let api = sum(
        &root,
        &[
            API_INDEX,
            API_AMD64,
            API_AMD64_CONFIG,
            API_AMD64_LAYER,
            API_ARM64,
            API_ARM64_CONFIG,
            API_ARM64_LAYER,
            API_ATTESTATION,
            API_ATTESTATION_CONFIG,
            API_ATTESTATION_LAYER,
            BASE_LAYER,
            UNTAGGED_MANIFEST,
            UNTAGGED_CONFIG,
            UNTAGGED_LAYER,
        ],
    );
    let web = sum(&root, &[WEB_INDEX, WEB_AMD64, WEB_ARM, BASE_LAYER]);
    let base = size(&root, BASE_LAYER);
    assert_text(
        "repos.csv",
        &report(&out, "repos.csv"),
        &format!(
            "repository,tags,manifests,untagged_manifests,bytes,exclusive_bytes\n\
             library/hello,2,1,0,{hello},{}\n\
             team/app/api,1,5,1,{api},{}\n\
             team/web,1,1,0,{web},{}\n",
            hello - base,
            api - base,
            web - base
        ),
    );
    assert_text(
        "findings.csv",
        &report(&out, "findings.csv"),
        &format!(
            "repository,key,kind,detail\n{}{}{}{}",
            web_links(WEB_ARM_LAYER),
            web_links(WEB_AMD64_LAYER),
            web_links(WEB_AMD64_CONFIG),
            web_links(WEB_ARM_CONFIG)
        ),
    );

    let summary: serde_json::Value =
        serde_json::from_str(&report(&out, "summary.json")).expect("summary.json");
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["totals"]["repositories"], 3);
    assert_eq!(summary["totals"]["tags"], 4);
    assert_eq!(summary["totals"]["blobs"], 21);
    assert_eq!(summary["totals"]["manifests"], 9);
    assert_eq!(summary["reclaimable_by_gc"]["count"], 1);
    assert_eq!(summary["reclaimable_by_gc_delete_untagged"]["count"], 3);
    assert_eq!(summary["missing"], 6);
    assert_eq!(summary["dangling"], 2);
    assert_eq!(summary["broken_tags"], 1);
    // A filesystem has no ETags: every link is read (29 of them), with the 4 tag links and
    // the 9 manifests. The 4 blobs the damaged images reference but the listing lacked, and
    // the 2 revision links of the index children, are asked for once more (HEAD) before they
    // are reported missing.
    assert_eq!(summary["links"]["read"], 29);
    assert_eq!(summary["links"]["verified_by_etag"], 0);
    assert_eq!(
        summary["requests"]["GET"], 42,
        "29 links + 4 tag links + 9 manifests, nothing else"
    );
    assert_eq!(summary["requests"]["HEAD"], 6);
    assert_eq!(summary["requests_minimum"]["GET"], 42);
    assert_eq!(summary["requests_minimum"]["HEAD"], 6);

    assert!(run.stdout.contains("team/web:stable  2 child-manifest not-linked, 2 config blob-missing, 2 layer blob-missing"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("exit status 1: complete, with integrity findings"),
        "{}",
        run.stdout
    );
}

#[test]
fn json_flag_prints_the_summary_to_stdout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("registry");
    copy_tree(&workspace().join("examples/registry"), &root);
    let out = tmp.path().join("report");
    let run = gc_audit(&[
        "scan",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
        "-q",
    ]);
    assert_eq!(run.code, 1);
    let printed: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    let written: serde_json::Value =
        serde_json::from_str(&report(&out, "summary.json")).expect("summary.json");
    assert_eq!(printed, written);
}

#[test]
fn fresh_files_are_young_and_not_counted_as_reclaimable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("registry");
    copy_tree(&workspace().join("examples/registry"), &root);
    let orphan_hex = ORPHAN.trim_start_matches("sha256:");
    set_mtime(
        &root.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{orphan_hex}/data",
            &orphan_hex[..2]
        )),
        std::time::SystemTime::now(),
    );
    let out = tmp.path().join("report");
    let run = gc_audit(&[
        "scan",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
        "--grace",
        "2h",
    ]);
    assert_eq!(run.code, 1);
    let orphaned = report(&out, "orphaned.csv");
    let orphan_row = orphaned
        .lines()
        .find(|l| l.starts_with(ORPHAN))
        .expect("orphan row");
    assert!(orphan_row.ends_with(",gc,true"), "{orphan_row}");
    let summary: serde_json::Value = serde_json::from_str(&report(&out, "summary.json")).unwrap();
    assert_eq!(summary["reclaimable_by_gc"]["count"], 0);
    assert_eq!(summary["young"]["count"], 1);
    assert_eq!(summary["grace_seconds"], 7200);
}

#[test]
fn gc_plan_on_the_sample_says_which_gc_is_safe() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("registry");
    copy_tree(&workspace().join("examples/registry"), &root);
    let r = root.to_str().unwrap();

    let plain = gc_audit(&["gc-plan", r, "--model", "distribution-2.8", "-q"]);
    assert_eq!(plain.code, 0, "{}{}", plain.stdout, plain.stderr);
    assert_text(
        "gc-plan distribution-2.8",
        &plain.stdout,
        &format!(
            "blob eligible for deletion: {ORPHAN}\n\
             distribution-2.8: 20 blobs marked, 1 blob (1.50 KiB) and 0 manifests eligible for deletion; \
             0 unsafe deletions breaking 0 images\n"
        ),
    );

    let m = gc_audit(&[
        "gc-plan",
        r,
        "--model",
        "distribution-2.8",
        "-m",
        "--unsafe-only",
        "-q",
    ]);
    assert_eq!(m.code, 1, "{}{}", m.stdout, m.stderr);
    let lines: Vec<&str> = m.stdout.lines().collect();
    assert_eq!(lines.len(), 10, "{}", m.stdout);
    assert!(lines.contains(
        &format!("unsafe deletion: {API_ARM64} needed by team/app/api:v2 linux/arm64").as_str()
    ));
    assert!(lines.contains(
        &format!(
            "unsafe deletion: {API_ATTESTATION_LAYER} needed by team/app/api:v2 unknown/unknown"
        )
        .as_str()
    ));
    assert!(
        lines[9].starts_with("distribution-2.8-m: 11 blobs marked, 10 blobs"),
        "{}",
        lines[9]
    );

    let v3m = gc_audit(&["gc-plan", r, "--model", "distribution-3", "-m", "-q"]);
    assert_eq!(
        v3m.code, 0,
        "3.x keeps the children of a tagged index: {}",
        v3m.stdout
    );
    assert!(v3m.stdout.contains(&format!(
        "manifest eligible for deletion: {{team/app/api {UNTAGGED_MANIFEST} [v2]}}"
    )));

    let bad = gc_audit(&["gc-plan", r, "--model", "distribution-4"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--model"), "{}", bad.stderr);
}
