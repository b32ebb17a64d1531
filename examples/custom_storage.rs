//! Embedding gc-core with a storage of your own: implement the four methods a `Storage` must
//! have (`location`, `list`, `get`, `head`); the others have defaults (`name`, counting
//! requests, the GC walk order of the filesystem driver, no object versions).
//!
//! This one wraps any other storage and writes an audit trail of every request to stderr,
//! the kind of thing an ops tool adds before it lets a program near a production bucket.
//!
//! ```text
//! cargo run -p gc-core --example custom_storage -- examples/registry
//! ```

use futures::stream::{BoxStream, StreamExt};
use gc_core::audit::{audit, AuditOptions, NoProgress};
use gc_core::storage::{FsStorage, ObjectMeta, Storage, StorageError};

/// Logs every request, then forwards it.
#[derive(Debug)]
struct AuditTrail<S> {
    inner: S,
}

#[async_trait::async_trait]
impl<S: Storage> Storage for AuditTrail<S> {
    fn location(&self) -> String {
        format!("audit-trail:{}", self.inner.location())
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta, StorageError>> {
        eprintln!("LIST {prefix}");
        self.inner.list(prefix).boxed()
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, StorageError> {
        eprintln!("GET  {key}");
        self.inner.get(key, max_bytes).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        eprintln!("HEAD {key}");
        self.inner.head(key).await
    }
}

#[tokio::main]
async fn main() {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/registry".to_string());
    let storage = AuditTrail {
        inner: FsStorage::new(root),
    };
    let outcome = audit(&storage, &AuditOptions::default(), &NoProgress).await;
    let s = &outcome.report.summary;
    println!(
        "{}: complete={}, {} blobs, {} broken tags, {} orphaned rows",
        s.location,
        s.complete,
        s.totals.blobs,
        outcome.report.broken.len(),
        outcome.report.orphaned.len()
    );
}
