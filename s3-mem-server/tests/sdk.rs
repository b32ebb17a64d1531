//! The server against the real aws-sdk-s3 client: the operations gc-audit and its tests use,
//! read-only refusal, fault injection and latency.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use s3_mem_server::{FaultKind, Faults, S3MemServer, ACCESS_KEY, REGION, SECRET_KEY};
use std::time::{Duration, SystemTime};

fn client(server: &S3MemServer, max_attempts: u32) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .retry_config(
            aws_sdk_s3::config::retry::RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    Client::from_conf(config)
}

#[tokio::test]
async fn put_list_get_head_and_not_found() {
    let server = S3MemServer::start().expect("server");
    let s3 = client(&server, 1);
    s3.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("create");
    s3.put_object()
        .bucket("bkt")
        .key("dir/one")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .expect("put");
    for i in 0..2500 {
        server.put_object_direct(
            "bkt",
            &format!("dir/k{i:05}"),
            vec![b'x'; 3],
            SystemTime::now(),
        );
    }
    server.put_object_direct("bkt", "other/x", b"y".to_vec(), SystemTime::now());

    // Listing with continuation tokens sees every key under the prefix once, in order.
    let mut keys = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("bkt")
            .prefix("dir/")
            .set_continuation_token(token)
            .send()
            .await
            .expect("list");
        pages += 1;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_string);
    }
    assert_eq!(pages, 3);
    assert_eq!(keys.len(), 2501);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));

    // start-after and delimiter.
    let page = s3
        .list_objects_v2()
        .bucket("bkt")
        .prefix("dir/")
        .start_after("dir/k02497")
        .send()
        .await
        .expect("list");
    let after: Vec<_> = page.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(after, vec!["dir/k02498", "dir/k02499", "dir/one"]);
    let page = s3
        .list_objects_v2()
        .bucket("bkt")
        .delimiter("/")
        .send()
        .await
        .expect("list");
    let prefixes: Vec<_> = page
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, vec!["dir/", "other/"]);

    let got = s3
        .get_object()
        .bucket("bkt")
        .key("dir/one")
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_length(), Some(5));
    assert_eq!(got.e_tag(), Some("\"5d41402abc4b2a76b9719d911017c592\""));
    let body = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(&body[..], b"hello");

    let ranged = s3
        .get_object()
        .bucket("bkt")
        .key("dir/one")
        .range("bytes=1-2")
        .send()
        .await
        .expect("ranged get");
    assert_eq!(ranged.content_range(), Some("bytes 1-2/5"));
    assert_eq!(
        &ranged.body.collect().await.expect("body").into_bytes()[..],
        b"el"
    );

    let head = s3
        .head_object()
        .bucket("bkt")
        .key("dir/one")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(5));

    let err = s3
        .get_object()
        .bucket("bkt")
        .key("nope")
        .send()
        .await
        .expect_err("missing");
    assert!(err.into_service_error().is_no_such_key());
    let err = s3
        .head_object()
        .bucket("bkt")
        .key("nope")
        .send()
        .await
        .expect_err("missing");
    assert!(err.into_service_error().is_not_found());

    s3.delete_object()
        .bucket("bkt")
        .key("dir/one")
        .send()
        .await
        .expect("delete");
    assert!(server.object("bkt", "dir/one").is_none());
    let counts = server.operation_counts();
    assert_eq!(counts.get("ListObjectsV2"), Some(&5));
    assert_eq!(counts.get("PutObject"), Some(&1));
}

#[tokio::test]
async fn read_only_refuses_writes_and_logs_them() {
    let server = S3MemServer::start().expect("server");
    server.put_object_direct("bkt", "k", b"v".to_vec(), SystemTime::now());
    server.set_read_only(true);
    let s3 = client(&server, 1);
    let err = s3
        .put_object()
        .bucket("bkt")
        .key("k2")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("refused");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
    s3.delete_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect_err("refused");
    s3.get_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect("reads still work");
    assert!(server.object("bkt", "k").is_some());
    let log = server.requests();
    let refused: Vec<_> = log
        .iter()
        .filter(|r| r.status == Some(403))
        .map(|r| r.operation.as_str())
        .collect();
    assert_eq!(refused, vec!["PutObject", "DeleteObject"]);
    assert_eq!(log.last().map(|r| r.operation.as_str()), Some("GetObject"));
}

#[tokio::test]
async fn faults_fail_requests_and_retries_recover() {
    let server = S3MemServer::start().expect("server");
    server.put_object_direct("bkt", "k", b"v".to_vec(), SystemTime::now());
    server.put_object_direct("bkt", "bad/k", b"v".to_vec(), SystemTime::now());

    // Without retries, each fault is visible: a 503 SlowDown, then a dropped connection.
    server.set_faults(Faults {
        fail_every_nth: Some(1),
        kinds: vec![FaultKind::SlowDown, FaultKind::DropConnection],
        ..Faults::default()
    });
    let once = client(&server, 1);
    let err = once
        .get_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect_err("503");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    let err = once
        .get_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect_err("drop");
    assert!(err.raw_response().is_none(), "{err:?}");
    let statuses: Vec<_> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(503), None]);

    // With retries, the first two attempts of each request fail and the third succeeds.
    server.clear_requests();
    server.set_faults(Faults {
        fail_first_attempts: Some(2),
        kinds: vec![FaultKind::DropConnection, FaultKind::SlowDown],
        ..Faults::default()
    });
    let retrying = client(&server, 4);
    let got = retrying
        .get_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect("retried");
    assert_eq!(
        &got.body.collect().await.expect("body").into_bytes()[..],
        b"v"
    );
    assert_eq!(server.requests().len(), 3);

    // A prefix that fails forever fails object reads and the listing pages that reach it.
    server.set_faults(Faults {
        fail_forever_prefixes: vec!["bad/".to_string()],
        ..Faults::default()
    });
    let err = retrying
        .get_object()
        .bucket("bkt")
        .key("bad/k")
        .send()
        .await
        .expect_err("forever");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    retrying
        .list_objects_v2()
        .bucket("bkt")
        .send()
        .await
        .expect_err("page reaches bad/");
    retrying
        .list_objects_v2()
        .bucket("bkt")
        .prefix("k")
        .send()
        .await
        .expect("page avoids bad/");
}

#[tokio::test]
async fn latency_and_in_flight_are_tracked() {
    let server = S3MemServer::start().expect("server");
    server.put_object_direct("bkt", "k", b"v".to_vec(), SystemTime::now());
    server.set_latency(Duration::from_millis(50));
    let s3 = client(&server, 1);
    let started = std::time::Instant::now();
    let gets = (0..4).map(|_| s3.head_object().bucket("bkt").key("k").send());
    for r in futures::future::join_all(gets).await {
        r.expect("head");
    }
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(server.max_in_flight(), 4);
}

/// Each damaged ListObjectsV2 answer as the SDK sees it. Most parse as a page, which is why a
/// client must check `KeyCount`, `IsTruncated` and that the body is whole.
#[tokio::test]
async fn damaged_listing_pages_reach_the_sdk_damaged() {
    use s3_mem_server::CutAt;
    let server = S3MemServer::start().expect("server");
    let t = SystemTime::now();
    server.put_objects_direct(
        "bkt",
        (0..1500).map(|i| (format!("k{i:05}"), vec![b'x'; 3], t)),
    );
    let s3 = client(&server, 1);
    let list = |kind| {
        server.set_faults(Faults {
            fail_every_nth: Some(1),
            operations: vec!["ListObjectsV2".to_string()],
            kinds: vec![kind],
            ..Faults::default()
        });
        s3.list_objects_v2().bucket("bkt").send()
    };
    let entries = |p: &aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output| {
        i32::try_from(p.contents().len()).expect("small")
    };

    // With S3's element order (counts and token first), a cut after the last entry loses
    // nothing a listing needs.
    let page = list(FaultKind::CutBody(CutAt::AfterLastContents))
        .await
        .expect("parses");
    assert_eq!((page.key_count(), entries(&page)), (Some(1000), 1000));
    // Cut after a whole entry midway, or anywhere: fewer entries than KeyCount, and a token
    // that would skip the lost ones.
    for at in [CutAt::AfterMiddleContents, CutAt::Middle] {
        let page = list(FaultKind::CutBody(at)).await.expect("parses");
        assert!(
            entries(&page) < 1000 && page.key_count() == Some(1000),
            "{at:?}"
        );
        assert!(page.next_continuation_token().is_some(), "{at:?}");
    }
    // Cut inside the last key: KeyCount matches, the last key is shortened.
    let page = list(FaultKind::CutBody(CutAt::InsideLastKey))
        .await
        .expect("parses");
    assert_eq!((page.key_count(), entries(&page)), (Some(1000), 1000));
    let last = page.contents().last().and_then(|o| o.key());
    assert!(
        last.is_some_and(|k| "k00999".starts_with(k) && k != "k00999"),
        "{last:?}"
    );
    // A body that breaks off under the whole Content-Length is a failed request.
    assert!(list(FaultKind::CloseMidBody(CutAt::Middle)).await.is_err());

    let page = list(FaultKind::WrongKeyCount).await.expect("parses");
    assert_eq!((page.key_count(), entries(&page)), (Some(1001), 1000));
    let page = list(FaultKind::DropKeyCount).await.expect("parses");
    assert_eq!((page.key_count(), entries(&page)), (None, 1000));
    let page = list(FaultKind::DropIsTruncated).await.expect("parses");
    assert_eq!((page.is_truncated(), entries(&page)), (None, 1000));

    // Other operations are untouched by faults filtered to listings.
    let got = s3
        .get_object()
        .bucket("bkt")
        .key("k00001")
        .send()
        .await
        .expect("get");
    let body = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(&body[..], b"xxx");
}

#[tokio::test]
async fn last_modified_can_be_omitted() {
    let server = S3MemServer::start().expect("server");
    server.put_object_direct("bkt", "k", b"x".to_vec(), SystemTime::now());
    let s3 = client(&server, 1);
    server.set_omit_last_modified(true);
    let page = s3
        .list_objects_v2()
        .bucket("bkt")
        .send()
        .await
        .expect("list");
    assert_eq!(page.contents().len(), 1);
    assert_eq!(page.contents()[0].last_modified(), None);
    let head = s3
        .head_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect("head");
    assert_eq!(head.last_modified(), None);
    server.set_omit_last_modified(false);
    let page = s3
        .list_objects_v2()
        .bucket("bkt")
        .send()
        .await
        .expect("list");
    assert!(page.contents()[0].last_modified().is_some());
}
