//! Bucket versioning through the real aws-sdk-s3 client: versioning states, versions on every
//! write, delete markers and their removal, reads by version id, ListObjectsV2 hiding deleted
//! keys, ListObjectVersions paging, copies of old versions and multi-deletes.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
    VersioningConfiguration,
};
use aws_sdk_s3::Client;
use s3_mem_server::{BucketVersioning, S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::collections::BTreeMap;
use std::time::Duration;

fn client(server: &S3MemServer) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .retry_config(
            aws_sdk_s3::config::retry::RetryConfig::standard()
                .with_max_attempts(1)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    Client::from_conf(config)
}

async fn set_versioning(s3: &Client, bucket: &str, status: BucketVersioningStatus) {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .expect("put bucket versioning");
}

async fn put(s3: &Client, bucket: &str, key: &str, data: &str) -> Option<String> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.as_bytes().to_vec()))
        .send()
        .await
        .expect("put")
        .version_id()
        .map(str::to_string)
}

async fn get(s3: &Client, bucket: &str, key: &str, version: Option<&str>) -> Option<String> {
    match s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .send()
        .await
    {
        Ok(out) => {
            let bytes = out.body.collect().await.expect("body").into_bytes();
            Some(String::from_utf8(bytes.to_vec()).expect("utf-8"))
        }
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => None,
        Err(e) => panic!("get {key} {version:?}: {e:?}"),
    }
}

async fn listed_keys(s3: &Client, bucket: &str) -> Vec<String> {
    s3.list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

/// (key, version id, is latest, is delete marker) of one ListObjectVersions page, in S3's order.
type Entry = (String, String, bool, bool);

fn entries(page: &ListObjectVersionsOutput) -> Vec<Entry> {
    let versions = page.versions().iter().map(|v| {
        (
            v.key().unwrap_or_default().to_string(),
            v.version_id().unwrap_or_default().to_string(),
            v.is_latest() == Some(true),
            false,
        )
    });
    let markers = page.delete_markers().iter().map(|m| {
        (
            m.key().unwrap_or_default().to_string(),
            m.version_id().unwrap_or_default().to_string(),
            m.is_latest() == Some(true),
            true,
        )
    });
    versions.chain(markers).collect()
}

#[tokio::test]
async fn versioning_states_and_versions_on_every_write() {
    let server = S3MemServer::start().expect("server");
    let s3 = client(&server);
    s3.create_bucket()
        .bucket("vbkt")
        .send()
        .await
        .expect("create");

    let status = s3
        .get_bucket_versioning()
        .bucket("vbkt")
        .send()
        .await
        .expect("get");
    assert_eq!(status.status(), None, "a bucket that never had versioning");
    assert_eq!(put(&s3, "vbkt", "k", "before").await, None);

    set_versioning(&s3, "vbkt", BucketVersioningStatus::Enabled).await;
    let status = s3
        .get_bucket_versioning()
        .bucket("vbkt")
        .send()
        .await
        .expect("get");
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Enabled));

    let v1 = put(&s3, "vbkt", "k", "one").await.expect("a version id");
    let v2 = put(&s3, "vbkt", "k", "two").await.expect("a version id");
    assert_ne!(v1, v2);
    assert_ne!(v1, "null");
    assert_eq!(get(&s3, "vbkt", "k", None).await.as_deref(), Some("two"));
    assert_eq!(
        get(&s3, "vbkt", "k", Some(&v1)).await.as_deref(),
        Some("one")
    );
    assert_eq!(
        get(&s3, "vbkt", "k", Some("null")).await.as_deref(),
        Some("before")
    );
    let head = s3
        .head_object()
        .bucket("vbkt")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .expect("head v1");
    assert_eq!(head.content_length(), Some(3));
    assert_eq!(head.version_id(), Some(v1.as_str()));
    let got = s3
        .get_object()
        .bucket("vbkt")
        .key("k")
        .send()
        .await
        .expect("get");
    assert_eq!(got.version_id(), Some(v2.as_str()));

    // A version id the key never had.
    let err = s3
        .get_object()
        .bucket("vbkt")
        .key("k")
        .version_id("v-nope")
        .send()
        .await
        .expect_err("no such version");
    assert_eq!(err.code(), Some("NoSuchVersion"));

    // CompleteMultipartUpload and CopyObject make versions too; a copy can name a version.
    let upload = s3
        .create_multipart_upload()
        .bucket("vbkt")
        .key("mp")
        .send()
        .await
        .expect("create upload");
    let upload_id = upload.upload_id().expect("upload id");
    let part = s3
        .upload_part()
        .bucket("vbkt")
        .key("mp")
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"parts"))
        .send()
        .await
        .expect("part");
    let done = s3
        .complete_multipart_upload()
        .bucket("vbkt")
        .key("mp")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap_or_default())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("complete");
    assert!(done.version_id().is_some_and(|v| v != "null"));
    let copy = s3
        .copy_object()
        .bucket("vbkt")
        .key("copy")
        .copy_source(format!("vbkt/k?versionId={v1}"))
        .send()
        .await
        .expect("copy of v1");
    assert_eq!(copy.copy_source_version_id(), Some(v1.as_str()));
    assert!(copy.version_id().is_some_and(|v| v != v1 && v != "null"));
    assert_eq!(get(&s3, "vbkt", "copy", None).await.as_deref(), Some("one"));
    // The copy shares the source version's bytes.
    let source = server.object_versions("vbkt", "k");
    let copied = server.object_versions("vbkt", "copy");
    let v1_data = &source.iter().find(|v| v.version_id == v1).expect("v1").data;
    assert_eq!(copied[0].data.as_ptr(), v1_data.as_ptr());

    // Suspended: new writes replace the null version; the others stay.
    set_versioning(&s3, "vbkt", BucketVersioningStatus::Suspended).await;
    let status = s3
        .get_bucket_versioning()
        .bucket("vbkt")
        .send()
        .await
        .expect("get");
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Suspended));
    put(&s3, "vbkt", "k", "three").await;
    put(&s3, "vbkt", "k", "four").await;
    let ids: Vec<String> = server
        .object_versions("vbkt", "k")
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    assert_eq!(ids, vec!["null".to_string(), v2.clone(), v1.clone()]);
    assert_eq!(
        get(&s3, "vbkt", "k", Some("null")).await.as_deref(),
        Some("four")
    );
    assert_eq!(
        get(&s3, "vbkt", "k", Some(&v2)).await.as_deref(),
        Some("two")
    );
}

#[tokio::test]
async fn delete_markers_hide_keys_and_removing_them_restores() {
    let server = S3MemServer::start().expect("server");
    let s3 = client(&server);
    s3.create_bucket()
        .bucket("vbkt")
        .send()
        .await
        .expect("create");
    // Written before versioning: the null version.
    put(&s3, "vbkt", "old", "null content").await;
    server.set_versioning("vbkt", BucketVersioning::Enabled);
    let v1 = put(&s3, "vbkt", "k", "one").await.expect("id");
    let v2 = put(&s3, "vbkt", "k", "two").await.expect("id");

    let deleted = s3
        .delete_object()
        .bucket("vbkt")
        .key("k")
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.delete_marker(), Some(true));
    let marker = deleted.version_id().expect("marker id").to_string();
    assert!(marker != v1 && marker != v2);

    // Hidden from GET, HEAD and ListObjectsV2; still readable by version id.
    let err = s3
        .get_object()
        .bucket("vbkt")
        .key("k")
        .send()
        .await
        .expect_err("deleted");
    let SdkError::ServiceError(service) = &err else {
        panic!("not a service error: {err:?}");
    };
    assert!(service.err().is_no_such_key());
    let headers = service.raw().headers();
    assert_eq!(headers.get("x-amz-delete-marker"), Some("true"));
    assert_eq!(headers.get("x-amz-version-id"), Some(marker.as_str()));
    let err = s3
        .head_object()
        .bucket("vbkt")
        .key("k")
        .send()
        .await
        .expect_err("deleted");
    let SdkError::ServiceError(service) = &err else {
        panic!("not a service error: {err:?}");
    };
    assert!(service.err().is_not_found());
    assert_eq!(service.raw().status().as_u16(), 404);
    assert_eq!(listed_keys(&s3, "vbkt").await, vec!["old"]);
    assert_eq!(
        get(&s3, "vbkt", "k", Some(&v1)).await.as_deref(),
        Some("one")
    );
    assert_eq!(server.object_count("vbkt"), 1);

    // The marker's own version id: 405 MethodNotAllowed, as S3 answers.
    for head in [false, true] {
        let (status, code) = if head {
            let e = s3
                .head_object()
                .bucket("vbkt")
                .key("k")
                .version_id(&marker)
                .send()
                .await
                .expect_err("a marker");
            let status = e.raw_response().map(|r| r.status().as_u16());
            (status, None)
        } else {
            let e = s3
                .get_object()
                .bucket("vbkt")
                .key("k")
                .version_id(&marker)
                .send()
                .await
                .expect_err("a marker");
            let status = e.raw_response().map(|r| r.status().as_u16());
            (status, e.code().map(str::to_string))
        };
        assert_eq!(status, Some(405), "head {head}");
        if !head {
            assert_eq!(code.as_deref(), Some("MethodNotAllowed"));
        }
    }

    // Removing the marker makes the newest version current again.
    let removed = s3
        .delete_object()
        .bucket("vbkt")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .expect("remove marker");
    assert_eq!(removed.delete_marker(), Some(true));
    assert_eq!(removed.version_id(), Some(marker.as_str()));
    assert_eq!(get(&s3, "vbkt", "k", None).await.as_deref(), Some("two"));
    assert_eq!(listed_keys(&s3, "vbkt").await, vec!["k", "old"]);
    // Removing it again is harmless, as on S3.
    s3.delete_object()
        .bucket("vbkt")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .expect("remove marker twice");
    assert_eq!(get(&s3, "vbkt", "k", None).await.as_deref(), Some("two"));

    // Deleting a version by id is permanent; the one under it becomes current.
    let gone = s3
        .delete_object()
        .bucket("vbkt")
        .key("k")
        .version_id(&v2)
        .send()
        .await
        .expect("delete v2");
    assert_eq!(gone.delete_marker(), None);
    assert_eq!(get(&s3, "vbkt", "k", None).await.as_deref(), Some("one"));
    let err = s3
        .get_object()
        .bucket("vbkt")
        .key("k")
        .version_id(&v2)
        .send()
        .await
        .expect_err("v2 is gone");
    assert_eq!(err.code(), Some("NoSuchVersion"));

    // The null version written before versioning gets a marker too, and comes back from it.
    let deleted = s3
        .delete_object()
        .bucket("vbkt")
        .key("old")
        .send()
        .await
        .expect("delete");
    let old_marker = deleted.version_id().expect("marker").to_string();
    assert_eq!(get(&s3, "vbkt", "old", None).await, None);
    assert_eq!(
        get(&s3, "vbkt", "old", Some("null")).await.as_deref(),
        Some("null content")
    );
    s3.delete_object()
        .bucket("vbkt")
        .key("old")
        .version_id(&old_marker)
        .send()
        .await
        .expect("remove marker");
    assert_eq!(
        get(&s3, "vbkt", "old", None).await.as_deref(),
        Some("null content")
    );

    // A copy of an old version over the key is the other way back.
    s3.delete_object()
        .bucket("vbkt")
        .key("k")
        .send()
        .await
        .expect("delete");
    s3.copy_object()
        .bucket("vbkt")
        .key("k")
        .copy_source(format!("vbkt/k?versionId={v1}"))
        .send()
        .await
        .expect("copy v1 over k");
    assert_eq!(get(&s3, "vbkt", "k", None).await.as_deref(), Some("one"));
}

#[tokio::test]
async fn multi_delete_adds_markers_and_removes_versions() {
    let server = S3MemServer::start().expect("server");
    let s3 = client(&server);
    s3.create_bucket()
        .bucket("vbkt")
        .send()
        .await
        .expect("create");
    set_versioning(&s3, "vbkt", BucketVersioningStatus::Enabled).await;
    let va = put(&s3, "vbkt", "a", "a1").await.expect("id");
    let vb = put(&s3, "vbkt", "vbkt", "b1").await.expect("id");
    let delete = Delete::builder()
        .objects(ObjectIdentifier::builder().key("a").build().expect("id"))
        .objects(ObjectIdentifier::builder().key("vbkt").build().expect("id"))
        .build()
        .expect("delete");
    let out = s3
        .delete_objects()
        .bucket("vbkt")
        .delete(delete)
        .send()
        .await
        .expect("delete objects");
    let markers: BTreeMap<String, String> = out
        .deleted()
        .iter()
        .map(|d| {
            assert_eq!(d.delete_marker(), Some(true));
            (
                d.key().unwrap_or_default().to_string(),
                d.delete_marker_version_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(markers.len(), 2);
    assert!(listed_keys(&s3, "vbkt").await.is_empty());
    assert_eq!(
        get(&s3, "vbkt", "a", Some(&va)).await.as_deref(),
        Some("a1")
    );

    // With version ids: a's marker goes (a is back), b's only version goes (b stays hidden).
    let delete = Delete::builder()
        .objects(
            ObjectIdentifier::builder()
                .key("a")
                .version_id(&markers["a"])
                .build()
                .expect("id"),
        )
        .objects(
            ObjectIdentifier::builder()
                .key("vbkt")
                .version_id(&vb)
                .build()
                .expect("id"),
        )
        .build()
        .expect("delete");
    let out = s3
        .delete_objects()
        .bucket("vbkt")
        .delete(delete)
        .send()
        .await
        .expect("delete objects");
    let by_key: BTreeMap<&str, _> = out
        .deleted()
        .iter()
        .map(|d| (d.key().unwrap_or_default(), d))
        .collect();
    assert_eq!(by_key["a"].delete_marker(), Some(true));
    assert_eq!(by_key["a"].version_id(), Some(markers["a"].as_str()));
    assert_eq!(by_key["vbkt"].delete_marker(), None);
    assert_eq!(by_key["vbkt"].version_id(), Some(vb.as_str()));
    assert_eq!(listed_keys(&s3, "vbkt").await, vec!["a"]);
    let b_versions = server.object_versions("vbkt", "vbkt");
    assert_eq!(b_versions.len(), 1);
    assert!(b_versions[0].delete_marker);
}

#[tokio::test]
async fn list_object_versions_pages_by_key_and_version_markers() {
    let server = S3MemServer::start().expect("server");
    let s3 = client(&server);
    s3.create_bucket()
        .bucket("vbkt")
        .send()
        .await
        .expect("create");
    put(&s3, "vbkt", "r/k0", "null").await;
    server.set_versioning("vbkt", BucketVersioning::Enabled);
    // Keys with 1 to 7 versions each, some ending in a delete marker, one group under r/g/.
    let mut expected: Vec<Entry> = Vec::new();
    for k in 0..6usize {
        let key = format!("r/k{k}");
        let mut ids = if k == 0 {
            vec![("null".to_string(), false)]
        } else {
            vec![]
        };
        for _ in 0..=k {
            ids.push((put(&s3, "vbkt", &key, &key).await.expect("id"), false));
        }
        if k % 2 == 1 {
            let d = s3
                .delete_object()
                .bucket("vbkt")
                .key(&key)
                .send()
                .await
                .expect("delete");
            ids.push((d.version_id().expect("marker").to_string(), true));
        }
        for (i, (id, marker)) in ids.iter().rev().enumerate() {
            expected.push((key.clone(), id.clone(), i == 0, *marker));
        }
    }
    put(&s3, "vbkt", "r/g/1", "x").await;
    put(&s3, "vbkt", "r/g/2", "x").await;
    put(&s3, "vbkt", "s/outside", "x").await;

    // Without a delimiter: every version under r/ (the group's keys included), any page size.
    let g: Vec<Entry> = ["r/g/1", "r/g/2"]
        .iter()
        .map(|k| {
            let id = server.object_versions("vbkt", k)[0].version_id.clone();
            (k.to_string(), id, true, false)
        })
        .collect();
    let mut all_expected = g.clone();
    all_expected.extend(expected.iter().cloned());
    for max_keys in [1, 2, 3, 5, 1000] {
        let mut got: Vec<Entry> = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        let mut pages = 0usize;
        loop {
            let page = s3
                .list_object_versions()
                .bucket("vbkt")
                .prefix("r/")
                .max_keys(max_keys)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .send()
                .await
                .expect("list versions");
            pages += 1;
            let mut this_page = entries(&page);
            // S3 interleaves; the XML here has versions, then markers: put them in S3's order.
            this_page.sort_by_key(|e| {
                all_expected
                    .iter()
                    .position(|x| x == e)
                    .unwrap_or(usize::MAX)
            });
            assert!(this_page.len() <= usize::try_from(max_keys).unwrap_or(usize::MAX));
            got.extend(this_page);
            if page.is_truncated() != Some(true) {
                assert_eq!(page.next_key_marker(), None);
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            assert!(
                key_marker.is_some(),
                "a truncated page names where to go on"
            );
        }
        assert_eq!(got, all_expected, "max_keys {max_keys}");
        let size = usize::try_from(max_keys).unwrap_or(1);
        assert_eq!(
            pages,
            all_expected.len().div_ceil(size).max(1),
            "max_keys {max_keys}"
        );
    }

    // Sizes, ETags and times of versions; no size for markers.
    let page = s3
        .list_object_versions()
        .bucket("vbkt")
        .prefix("r/k1")
        .send()
        .await
        .expect("list");
    assert_eq!(page.versions().len(), 2);
    assert!(page
        .versions()
        .iter()
        .all(|v| v.size() == Some(4) && v.e_tag().is_some() && v.last_modified().is_some()));
    assert_eq!(page.delete_markers().len(), 1);
    assert_eq!(page.delete_markers()[0].is_latest(), Some(true));

    // With a delimiter: r/g/ is one common prefix, listed once across pages.
    let mut prefixes = Vec::new();
    let mut count = 0usize;
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = s3
            .list_object_versions()
            .bucket("vbkt")
            .prefix("r/")
            .delimiter("/")
            .max_keys(2)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .expect("list versions");
        count += page.versions().len() + page.delete_markers().len();
        prefixes.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_string)),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
    assert_eq!(prefixes, vec!["r/g/"]);
    assert_eq!(count, expected.len());
}
