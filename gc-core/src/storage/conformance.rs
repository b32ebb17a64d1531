//! The conformance suite every `Storage` backend must pass.
//!
//! A backend's test writes [`FIXTURE`] into a fresh store with its own write path (the trait
//! itself cannot write), then calls [`run_all`]. Each case panics with a message on failure, so
//! the same suite serves `MemStorage`, `FsStorage` and the S3 backend.

use super::{Storage, StorageError};
use futures::StreamExt;

/// The objects every conformance run starts from: key and content.
pub const FIXTURE: &[(&str, &[u8])] = &[
    (
        "docker/registry/v2/repositories/foo/_layers/sha256/aa/link",
        b"sha256:aa",
    ),
    (
        "docker/registry/v2/repositories/foobar/_layers/sha256/bb/link",
        b"sha256:bb",
    ),
    (
        "docker/registry/v2/repositories/team/app/api/_manifests/tags/v1/current/link",
        b"sha256:cc",
    ),
    (
        "docker/registry/v2/blobs/sha256/00/0000/data",
        b"0123456789",
    ),
    ("docker/registry/v2/blobs/sha256/01/0100/data", b""),
];

async fn keys_under(store: &dyn Storage, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list(prefix)
        .map(|item| match item {
            Ok(meta) => meta.key,
            Err(e) => panic!("{}: listing {prefix:?} failed: {e}", store.name()),
        })
        .collect()
        .await;
    keys.sort();
    keys
}

/// `repositories/foo/` must not list `repositories/foobar/`.
pub async fn prefix_matches_whole_segments(store: &dyn Storage) {
    let keys = keys_under(store, "docker/registry/v2/repositories/foo/").await;
    assert_eq!(
        keys,
        vec!["docker/registry/v2/repositories/foo/_layers/sha256/aa/link".to_string()],
        "{}",
        store.name()
    );
}

/// The empty prefix lists everything, recursively.
pub async fn empty_prefix_lists_everything(store: &dyn Storage) {
    let keys = keys_under(store, "").await;
    let mut expected: Vec<String> = FIXTURE.iter().map(|(k, _)| k.to_string()).collect();
    expected.sort();
    assert_eq!(keys, expected, "{}", store.name());
}

/// Nested repository names list under their parent.
pub async fn nested_names_are_listed(store: &dyn Storage) {
    let keys = keys_under(store, "docker/registry/v2/repositories/team/").await;
    assert_eq!(keys.len(), 1, "{}: {keys:?}", store.name());
}

/// A prefix with nothing under it lists nothing, without error.
pub async fn missing_prefix_lists_nothing(store: &dyn Storage) {
    assert!(keys_under(store, "no/such/prefix/").await.is_empty());
}

/// `head` and `get` of a missing key are `None`.
pub async fn missing_key_is_none(store: &dyn Storage) {
    let key = "docker/registry/v2/blobs/sha256/ff/ffff/data";
    assert!(
        store.head(key).await.expect("head").is_none(),
        "{}",
        store.name()
    );
    assert!(
        store.get(key, 1024).await.expect("get").is_none(),
        "{}",
        store.name()
    );
}

/// `get` returns the content, including an empty object.
pub async fn get_returns_content(store: &dyn Storage) {
    let got = store.get(FIXTURE[3].0, 1024).await.expect("get");
    assert_eq!(got.as_deref(), Some(&b"0123456789"[..]), "{}", store.name());
    let empty = store.get(FIXTURE[4].0, 1024).await.expect("get");
    assert_eq!(empty.as_deref(), Some(&b""[..]), "{}", store.name());
}

/// `get` over the limit is a typed error naming the key.
pub async fn get_over_limit_is_too_large(store: &dyn Storage) {
    match store.get(FIXTURE[3].0, 4).await {
        Err(StorageError::TooLarge { key, size, limit }) => {
            assert_eq!((key.as_str(), size, limit), (FIXTURE[3].0, 10, 4));
        }
        other => panic!("{}: expected TooLarge, got {other:?}", store.name()),
    }
}

/// `size` and `last_modified` agree between `list` and `head`.
pub async fn list_and_head_agree(store: &dyn Storage) {
    let listed: Vec<_> = store
        .list("docker/registry/v2/blobs/")
        .collect::<Vec<_>>()
        .await;
    assert_eq!(listed.len(), 2, "{}", store.name());
    for item in listed {
        let meta = item.expect("list item");
        let head = store.head(&meta.key).await.expect("head").expect("exists");
        assert_eq!(
            (head.size, head.last_modified),
            (meta.size, meta.last_modified)
        );
    }
}

/// A prefix that is neither empty nor ends in `/` is refused, not guessed at.
pub async fn bad_prefix_is_an_error(store: &dyn Storage) {
    let items: Vec<_> = store.list("docker/registry").collect().await;
    assert!(
        matches!(items.as_slice(), [Err(StorageError::InvalidPrefix(_))]),
        "{}: {items:?}",
        store.name()
    );
}

/// Run every case against a store seeded with [`FIXTURE`].
pub async fn run_all(store: &dyn Storage) {
    prefix_matches_whole_segments(store).await;
    empty_prefix_lists_everything(store).await;
    nested_names_are_listed(store).await;
    missing_prefix_lists_nothing(store).await;
    missing_key_is_none(store).await;
    get_returns_content(store).await;
    get_over_limit_is_too_large(store).await;
    list_and_head_agree(store).await;
    bad_prefix_is_an_error(store).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{FsStorage, MemStorage};

    #[tokio::test]
    async fn mem_storage_conforms() {
        let store = MemStorage::new();
        for (k, v) in FIXTURE {
            store.put(*k, *v);
        }
        run_all(&store).await;
    }

    #[tokio::test]
    async fn fs_storage_conforms() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (k, v) in FIXTURE {
            let path = dir.path().join(k);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, v).expect("write");
        }
        run_all(&FsStorage::new(dir.path())).await;
    }

    #[tokio::test]
    async fn fs_storage_lists_empty_directories_with_a_trailing_slash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tags = dir
            .path()
            .join("docker/registry/v2/repositories/a/_manifests/tags");
        std::fs::create_dir_all(&tags).expect("mkdir");
        std::fs::create_dir_all(
            dir.path()
                .join("docker/registry/v2/repositories/a/_layers/x"),
        )
        .expect("mkdir");
        std::fs::write(
            dir.path()
                .join("docker/registry/v2/repositories/a/_layers/x/link"),
            b"",
        )
        .expect("write");
        let store = FsStorage::new(dir.path());
        let keys = keys_under(&store, "docker/registry/v2/").await;
        assert_eq!(
            keys,
            vec![
                "docker/registry/v2/repositories/a/_layers/x/link".to_string(),
                "docker/registry/v2/repositories/a/_manifests/tags/".to_string(),
            ]
        );
    }
}
