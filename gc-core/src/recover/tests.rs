//! Planner tests on in-memory registry trees: a backup copy (`--from`), and a versioned
//! storage that keeps versions and delete markers as a versioned bucket does.

use super::*;
use crate::audit::{audit, AuditOptions, NoProgress};
use crate::fixture::Fixture;
use crate::manifest::{MT_OCI_INDEX, MT_OCI_MANIFEST};
use crate::storage::{MemStorage, ObjectMeta, ObjectVersion, RootSurvey};
use futures::stream::BoxStream;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Push an OCI image whose descriptors name the real sizes; returns (manifest, config, layers)
/// and the manifest's size.
fn image(
    fx: &Fixture,
    repo: &str,
    seed: &str,
    layers: usize,
) -> (Digest, Digest, Vec<Digest>, u64) {
    let config_bytes =
        format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
    let config = fx.upload(repo, config_bytes.as_bytes());
    let layer_bytes: Vec<Vec<u8>> = (0..layers)
        .map(|i| format!("layer {seed} {i} {}", "x".repeat(i * 7)).into_bytes())
        .collect();
    let layer_ds: Vec<Digest> = layer_bytes.iter().map(|l| fx.upload(repo, l)).collect();
    let ls: Vec<String> = layer_bytes
        .iter()
        .zip(&layer_ds)
        .map(|(b, d)| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{},"digest":"{d}"}}"#,
                b.len()
            )
        })
        .collect();
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MT_OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{config}"}},"layers":[{}]}}"#,
        config_bytes.len(),
        ls.join(",")
    );
    let d = fx.manifest(repo, m.as_bytes());
    (d, config, layer_ds, m.len() as u64)
}

fn index(fx: &Fixture, repo: &str, children: &[(&Digest, u64, &str)]) -> Digest {
    let entries: Vec<String> = children
        .iter()
        .map(|(d, size, arch)| {
            format!(
                r#"{{"mediaType":"{MT_OCI_MANIFEST}","size":{size},"digest":"{d}","platform":{{"architecture":"{arch}","os":"linux"}}}}"#
            )
        })
        .collect();
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MT_OCI_INDEX}","manifests":[{}]}}"#,
        entries.join(",")
    );
    fx.manifest(repo, m.as_bytes())
}

struct MultiArch {
    children: Vec<(Digest, Digest, Vec<Digest>)>,
}

/// `app:multi` → index of two images (layers shared between them), plus `app:single`.
fn registry(fx: &Fixture) -> MultiArch {
    let (a, ac, al, asz) = image(fx, "app", "amd64", 2);
    let (b, bc, bl, bsz) = image(fx, "app", "arm64", 3);
    let idx = index(fx, "app", &[(&a, asz, "amd64"), (&b, bsz, "arm64")]);
    fx.tag("app", "multi", &idx);
    let (s, _, _, _) = image(fx, "app", "single", 1);
    fx.tag("app", "single", &s);
    MultiArch {
        children: vec![(a, ac, al), (b, bc, bl)],
    }
}

fn blob(d: &Digest) -> Key {
    Key::BlobData { digest: d.clone() }
}

fn revision(repo: &str, d: &Digest) -> Key {
    Key::RevisionLink {
        repo: repo.into(),
        digest: d.clone(),
    }
}

/// What `garbage-collect -m` does to the multi-arch image: the children's revision links and
/// their config and layer blobs go; with `blobs_too`, also the children's manifest blobs (as
/// after a second damage).
fn sweep(fx: &Fixture, m: &MultiArch, manifest_blobs_too: bool) {
    for (child, config, layers) in &m.children {
        fx.remove(&revision("app", child));
        fx.remove(&blob(config));
        for l in layers {
            fx.remove(&blob(l));
        }
        if manifest_blobs_too {
            fx.remove(&blob(child));
        }
    }
}

async fn audited(storage: &dyn Storage) -> AuditOutcome {
    let outcome = audit(storage, &AuditOptions::default(), &NoProgress).await;
    assert!(
        outcome.report.summary.complete,
        "{:?}",
        outcome.report.summary.errors
    );
    outcome
}

fn keys_of(plan: &RecoveryPlan, action: Action) -> Vec<String> {
    plan.rows
        .iter()
        .filter(|r| r.action == action)
        .map(|r| r.key.clone())
        .collect()
}

fn expected_swept(m: &MultiArch, manifest_blobs_too: bool) -> Vec<String> {
    let mut keys = Vec::new();
    for (child, config, layers) in &m.children {
        keys.push(revision("app", child).to_path());
        keys.push(blob(config).to_path());
        keys.extend(layers.iter().map(|l| blob(l).to_path()));
        if manifest_blobs_too {
            keys.push(blob(child).to_path());
        }
    }
    keys.sort();
    keys
}

#[tokio::test]
async fn a_swept_multi_arch_image_comes_back_from_a_copy_even_without_its_child_manifests() {
    for blobs_too in [false, true] {
        let fx = Fixture::new();
        let backup = Fixture::new();
        let m = registry(&fx);
        registry(&backup);
        sweep(&fx, &m, blobs_too);
        let outcome = audited(&fx.storage).await;
        let plan = super::plan(
            &outcome,
            &fx.storage,
            Some(&backup.storage),
            &RecoverOptions::default(),
        )
        .await;
        assert!(plan.complete(), "{:?}", plan.errors);
        assert_eq!(
            keys_of(&plan, Action::CopyFrom),
            expected_swept(&m, blobs_too)
        );
        assert_eq!(plan.rows.len(), expected_swept(&m, blobs_too).len());
        assert!(
            plan.rows.iter().all(|r| r.needed_by == "app:multi"),
            "{:?}",
            plan.rows
        );
        assert_eq!(plan.exit_code(), 1);
        assert_eq!(plan.tags_restored, vec!["app:multi".to_string()]);
        assert!(plan.tags_broken.is_empty());
        // Sizes are the descriptors'.
        for r in &plan.rows {
            let size = backup.storage.head(&r.key).await.unwrap().unwrap().size;
            assert_eq!(r.size, Some(size), "{}", r.key);
        }
        if blobs_too {
            assert_eq!(plan.manifests_restored, 2);
        }
        // Requests: one read of the copy per key; of the audited storage only the children
        // present, read again for the sizes their descriptors give the layers.
        let from = plan.from_requests.unwrap();
        assert_eq!(
            from.get + from.head + from.list,
            plan.rows.len() as u64,
            "{from:?}"
        );
        let reread = if blobs_too { 0 } else { 2 };
        assert_eq!(plan.manifests_reread, reread);
        assert_eq!(
            plan.requests.get + plan.requests.head + plan.requests.list,
            reread
        );

        // Applied, the storage is whole: a second plan is empty.
        for r in &plan.rows {
            let data = backup.storage.get(&r.key, u64::MAX).await.unwrap().unwrap();
            fx.storage.put(r.key.clone(), data);
        }
        let outcome = audited(&fx.storage).await;
        assert_eq!(
            outcome.report.exit_status(None).code(),
            0,
            "{:?}",
            outcome.report.missing
        );
        let again = super::plan(
            &outcome,
            &fx.storage,
            Some(&backup.storage),
            &RecoverOptions::default(),
        )
        .await;
        assert!(again.rows.is_empty(), "{:?}", again.rows);
        assert_eq!(again.exit_code(), 0);
    }
}

#[tokio::test]
async fn keys_the_copy_lacks_are_unrecoverable_and_name_the_tag() {
    let fx = Fixture::new();
    let backup = Fixture::new();
    let m = registry(&fx);
    registry(&backup);
    sweep(&fx, &m, false);
    let lost = blob(&m.children[1].2[0]);
    backup.remove(&lost);
    // A wrong-size copy is not used either.
    let config = blob(&m.children[0].1);
    backup
        .storage
        .put(config.to_path(), b"not the config".to_vec());
    let outcome = audited(&fx.storage).await;
    let opts = RecoverOptions::default();
    let plan = super::plan(&outcome, &fx.storage, Some(&backup.storage), &opts).await;
    let mut lost_keys = vec![lost.to_path(), config.to_path()];
    lost_keys.sort();
    assert_eq!(keys_of(&plan, Action::Unrecoverable), lost_keys);
    assert_eq!(plan.rows.len(), expected_swept(&m, false).len());
    assert_eq!(plan.exit_code(), 3);
    assert_eq!(plan.tags_broken.get("app:multi"), Some(&2));
    let unrecoverable: Vec<&PlanRow> = plan
        .rows
        .iter()
        .filter(|r| r.action == Action::Unrecoverable)
        .collect();
    assert!(unrecoverable.iter().all(|r| r.needed_by == "app:multi"));
    assert!(
        unrecoverable
            .iter()
            .any(|r| r.source.contains("bytes, not")),
        "{unrecoverable:?}"
    );
}

#[tokio::test]
async fn without_a_source_every_needed_key_is_unrecoverable_and_revisions_no_tag_reaches_are_not_needed(
) {
    let fx = Fixture::new();
    let m = registry(&fx);
    // An untagged image, swept whole by -m: not needed.
    let (u, uc, _, _) = image(&fx, "app", "untagged", 1);
    fx.remove(&revision("app", &u));
    fx.remove(&blob(&uc));
    sweep(&fx, &m, false);
    let outcome = audited(&fx.storage).await;
    let plan = super::plan(&outcome, &fx.storage, None, &RecoverOptions::default()).await;
    assert_eq!(
        keys_of(&plan, Action::Unrecoverable),
        expected_swept(&m, false)
    );
    assert_eq!(plan.exit_code(), 3);
    assert!(matches!(plan.source, SourceUsed::None(_)));
    assert_eq!(plan.requests_made(), plan.manifests_reread);
}

/// A storage keeping versions as a versioned bucket does: every put is a new version, every
/// delete (without a version id) a delete marker.
#[derive(Debug, Default)]
struct Versioned {
    current: MemStorage,
    versions: Mutex<Vec<(ObjectVersion, Vec<u8>)>>,
    next: Mutex<u64>,
}

impl Versioned {
    fn stamp(&self) -> (String, SystemTime) {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        (
            format!("v{n:04}"),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + *n),
        )
    }

    fn put(&self, key: &str, data: &[u8]) {
        let (id, at) = self.stamp();
        let mut vs = self.versions.lock().unwrap();
        for (v, _) in vs.iter_mut().filter(|(v, _)| v.key == key) {
            v.is_latest = false;
        }
        vs.push((
            ObjectVersion {
                key: key.into(),
                version_id: id,
                is_latest: true,
                delete_marker: false,
                size: data.len() as u64,
                last_modified: at,
                e_tag: Some(crate::etag::md5_etag(data)),
            },
            data.to_vec(),
        ));
        self.current
            .put_at(key, data.to_vec(), crate::fixture::old_time());
    }

    fn delete(&self, key: &str) {
        let (id, at) = self.stamp();
        let mut vs = self.versions.lock().unwrap();
        for (v, _) in vs.iter_mut().filter(|(v, _)| v.key == key) {
            v.is_latest = false;
        }
        vs.push((
            ObjectVersion {
                key: key.into(),
                version_id: id,
                is_latest: true,
                delete_marker: true,
                size: 0,
                last_modified: at,
                e_tag: None,
            },
            Vec::new(),
        ));
        self.current.remove(key);
    }

    /// Copy every key of `fx` in as versions.
    fn load(&self, fx: &Fixture) {
        for k in fx.storage.keys() {
            let data = futures::executor::block_on(fx.storage.get(&k, u64::MAX))
                .unwrap()
                .unwrap();
            self.put(&k, &data);
        }
    }
}

#[async_trait::async_trait]
impl Storage for Versioned {
    fn name(&self) -> &'static str {
        "versioned memory"
    }
    fn location(&self) -> String {
        "s3://bucket/root".into()
    }
    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta, StorageError>> {
        self.current.list(prefix)
    }
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.current.get(key, max_bytes).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        self.current.head(key).await
    }
    fn request_counts(&self) -> RequestCounts {
        self.current.request_counts()
    }
    async fn survey_root(&self) -> Result<RootSurvey, StorageError> {
        Ok(RootSurvey::default())
    }
    fn versions(&self) -> Option<&dyn ObjectVersions> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl ObjectVersions for Versioned {
    async fn versioning(&self) -> Result<Versioning, StorageError> {
        Ok(Versioning::Enabled)
    }
    fn list_versions(&self, prefix: &str) -> BoxStream<'_, Result<ObjectVersion, StorageError>> {
        let mut found: Vec<ObjectVersion> = self
            .versions
            .lock()
            .unwrap()
            .iter()
            .filter(|(v, _)| v.key.starts_with(prefix))
            .map(|(v, _)| v.clone())
            .collect();
        found.reverse();
        Box::pin(futures::stream::iter(found.into_iter().map(Ok)))
    }
    async fn get_version(
        &self,
        key: &str,
        version_id: &str,
        _max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .versions
            .lock()
            .unwrap()
            .iter()
            .find(|(v, _)| v.key == key && v.version_id == version_id && !v.delete_marker)
            .map(|(_, d)| d.clone()))
    }
}

#[tokio::test]
async fn delete_markers_are_removed_and_wrong_sized_versions_are_not_used() {
    let fx = Fixture::new();
    let m = registry(&fx);
    let bucket = Versioned::default();
    bucket.load(&fx);
    for k in expected_swept(&m, true) {
        bucket.delete(&k);
    }
    // One layer was overwritten with other bytes before it was deleted: only a wrong-size
    // version and a marker are left (a copy-version of the right one stays possible for the
    // other layer whose newest version is wrong).
    let wrong = blob(&m.children[0].2[1]).to_path();
    bucket.put(&wrong, b"other bytes");
    bucket.delete(&wrong);
    let overwritten = blob(&m.children[1].2[0]).to_path();
    bucket.put(&overwritten, b"other");
    bucket.delete(&overwritten);
    // A revision link deleted twice: two markers over it.
    let twice = revision("app", &m.children[1].0).to_path();
    bucket.delete(&twice);

    let outcome = audited(&bucket).await;
    let plan = super::plan(&outcome, &bucket, None, &RecoverOptions::default()).await;
    assert!(plan.complete(), "{:?}", plan.errors);
    assert_eq!(plan.rows.len(), expected_swept(&m, true).len());
    let mut copied = vec![wrong.clone(), overwritten.clone(), twice.clone()];
    copied.sort();
    assert_eq!(keys_of(&plan, Action::CopyVersion), copied);
    let removed = keys_of(&plan, Action::RemoveDeleteMarker);
    assert_eq!(removed.len(), expected_swept(&m, true).len() - 3);
    assert_eq!(plan.manifests_restored, 2);
    assert_eq!(plan.exit_code(), 1);
    for r in &plan.rows {
        let vs = bucket.versions.lock().unwrap();
        let (v, _) = vs
            .iter()
            .find(|(v, _)| v.key == r.key && v.version_id == r.version_id)
            .unwrap();
        match r.action {
            Action::RemoveDeleteMarker => assert!(v.delete_marker && v.is_latest),
            Action::CopyVersion => {
                assert!(!v.delete_marker && !v.is_latest);
                assert_ne!(v.size, b"other bytes".len() as u64);
            }
            other => panic!("{other:?} for {}", r.key),
        }
        assert!(
            r.source.starts_with("s3://bucket/root/docker/registry/v2/"),
            "{}",
            r.source
        );
    }
    // Requests: the listings' pages and the two child manifests read, nothing per key.
    assert!(plan.requests_made() <= plan.request_budget(), "{plan:?}");
    assert!(plan.listings.pages <= plan.rows.len() as u64);

    // A scan's hint counts the keys it can see: not the layers of the children whose
    // manifests are gone.
    let (state, hint) = versions_hint(&outcome, &bucket, 4).await.unwrap().unwrap();
    assert_eq!(state, Versioning::Enabled);
    assert_eq!(
        hint.missing_keys, 4,
        "the children's blobs and revision links"
    );
    assert_eq!(hint.recoverable, 4);

    // Without usable versions, a marker alone is unrecoverable.
    let bare = Versioned::default();
    bare.load(&fx);
    let key = blob(&m.children[0].1).to_path();
    bare.versions.lock().unwrap().retain(|(v, _)| v.key != key);
    bare.delete(&key);
    let outcome = audited(&bare).await;
    let plan = super::plan(&outcome, &bare, None, &RecoverOptions::default()).await;
    assert_eq!(keys_of(&plan, Action::Unrecoverable), vec![key]);
    assert_eq!(plan.exit_code(), 3);
}

#[tokio::test]
async fn missing_keys_of_one_fan_out_directory_share_one_listing() {
    let fx = Fixture::new();
    // Many layers: several land in each fan-out directory only if there are enough, so make
    // a registry where all missing keys share the link directory of one repository.
    let (img, _, layers, _) = image(&fx, "big", "many", 40);
    fx.tag("big", "t", &img);
    let bucket = Versioned::default();
    bucket.load(&fx);
    for l in &layers {
        bucket.delete(
            &Key::LayerLink {
                repo: "big".into(),
                digest: l.clone(),
            }
            .to_path(),
        );
    }
    let outcome = audited(&bucket).await;
    let plan = super::plan(&outcome, &bucket, None, &RecoverOptions::default()).await;
    assert_eq!(keys_of(&plan, Action::RemoveDeleteMarker).len(), 40);
    assert_eq!(plan.listings.prefixes, 1, "{:?}", plan.listings);
    assert_eq!(plan.listings.batched_prefixes, 1);
    assert!(plan.requests_made() <= plan.request_budget());
}

#[tokio::test]
async fn verify_content_refuses_a_copy_of_the_right_size_with_other_bytes() {
    let fx = Fixture::new();
    let backup = Fixture::new();
    let m = registry(&fx);
    registry(&backup);
    sweep(&fx, &m, false);
    let layer = blob(&m.children[0].2[0]);
    let size = backup
        .storage
        .head(&layer.to_path())
        .await
        .unwrap()
        .unwrap()
        .size;
    backup
        .storage
        .put(layer.to_path(), vec![b'z'; usize::try_from(size).unwrap()]);
    let outcome = audited(&fx.storage).await;
    let by_size = super::plan(
        &outcome,
        &fx.storage,
        Some(&backup.storage),
        &RecoverOptions::default(),
    )
    .await;
    assert_eq!(by_size.exit_code(), 1);
    let opts = RecoverOptions {
        verify_content: true,
        ..RecoverOptions::default()
    };
    let verified = super::plan(&outcome, &fx.storage, Some(&backup.storage), &opts).await;
    assert_eq!(
        keys_of(&verified, Action::Unrecoverable),
        vec![layer.to_path()]
    );
    assert_eq!(verified.exit_code(), 3);
    let row = verified
        .rows
        .iter()
        .find(|r| r.action == Action::Unrecoverable)
        .unwrap();
    assert!(
        row.source.contains("does not hash to its digest"),
        "{}",
        row.source
    );
}
