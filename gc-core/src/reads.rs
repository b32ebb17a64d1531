//! The audit's read pipeline: GETs waiting their turn, a bounded number in flight, results in
//! completion order.
//!
//! A pipeline outlives the phase that fills it: the listing queues the reads it already knows
//! are needed (tag `current/link`s, the manifests revision links name) and the next phase
//! drains them, so the listing's round trips and the reads overlap. The bound on reads in
//! flight is given per call to [`ReadPipeline::next`], so a caller can keep requests free for
//! something else (the listing's own pages) and widen it later. A queued read is only the
//! caller's name for it (a few bytes: the listing can queue a read for every manifest of a
//! large registry); its key is made when it starts.

use crate::storage::{Storage, StorageError};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use std::collections::VecDeque;

/// What a GET brought: content, absent (`None`), or an error.
pub(crate) type Got = Result<Option<Vec<u8>>, StorageError>;

/// One finished read: what the caller called it, the key, and what came back.
pub(crate) type Done<T> = (T, String, Got);

/// Reads of one storage; `T` is how the caller names a read.
pub(crate) struct ReadPipeline<'s, T> {
    storage: &'s dyn Storage,
    queued: VecDeque<T>,
    in_flight: FuturesUnordered<BoxFuture<'s, Done<T>>>,
}

impl<'s, T: Send + 's> ReadPipeline<'s, T> {
    /// An empty pipeline over `storage`.
    pub(crate) fn new(storage: &'s dyn Storage) -> Self {
        ReadPipeline {
            storage,
            queued: VecDeque::new(),
            in_flight: FuturesUnordered::new(),
        }
    }

    /// Queue a read.
    pub(crate) fn push(&mut self, what: T) {
        self.queued.push_back(what);
    }

    /// Reads queued or in flight.
    pub(crate) fn len(&self) -> usize {
        self.queued.len() + self.in_flight.len()
    }

    /// Nothing queued, nothing in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start queued reads until `max_in_flight` (at least one) are in flight, each a GET of
    /// the key `locate` gives, refused beyond the byte limit it gives; then wait for the next
    /// one to finish. `None` once nothing is queued or in flight. Dropping the returned future
    /// loses nothing: started reads stay in the pipeline.
    pub(crate) async fn next(
        &mut self,
        max_in_flight: usize,
        locate: impl Fn(&T) -> (String, u64),
    ) -> Option<Done<T>> {
        while self.in_flight.len() < max_in_flight.max(1) {
            let Some(what) = self.queued.pop_front() else {
                break;
            };
            let (key, limit) = locate(&what);
            let storage = self.storage;
            self.in_flight.push(
                async move {
                    let got = storage.get(&key, limit).await;
                    (what, key, got)
                }
                .boxed(),
            );
        }
        self.in_flight.next().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    #[tokio::test]
    async fn reads_come_back_once_each_within_the_bound() {
        let storage = MemStorage::new();
        for i in 0..20 {
            storage.put(format!("k/{i}"), format!("v{i}").into_bytes());
        }
        let locate = |i: &usize| match *i {
            99 => ("k/absent".to_string(), 16),
            100 => ("k/3".to_string(), 1),
            i => (format!("k/{i}"), 16),
        };
        let mut reads = ReadPipeline::new(&storage);
        for i in (0..20).chain([99, 100]) {
            reads.push(i);
        }
        assert_eq!(reads.len(), 22);
        let first = reads.next(4, locate).await.expect("a read");
        assert!(reads.in_flight.len() <= 3, "bound exceeded");
        let mut done = vec![first];
        while let Some(read) = reads.next(4, locate).await {
            assert!(reads.in_flight.len() <= 3, "bound exceeded");
            done.push(read);
        }
        assert!(reads.is_empty());
        assert_eq!(done.len(), 22);
        done.sort_by_key(|(i, _, _)| *i);
        for (i, key, got) in &done[..20] {
            assert_eq!(key, &format!("k/{i}"));
            assert_eq!(got.as_ref().ok(), Some(&Some(format!("v{i}").into_bytes())));
        }
        assert!(matches!(done[20].2, Ok(None)));
        assert!(matches!(done[21].2, Err(StorageError::TooLarge { .. })));
    }
}
