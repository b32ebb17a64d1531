//! Manifest-cache lookups on a thread of their own.
//!
//! A warm rescan reads nothing but its listing, so its one busy task is the audit's: it records
//! every listed key. Looking a manifest up in the cache (a store read, SQLite for the CLI) and
//! decoding its entry cost as much again, per manifest; here they run on a thread beside it,
//! and the audit takes their answers as it takes finished reads, and also between listed keys
//! ([`CacheLookups::ready`]), so that a busy listing does not leave the thread idle. The
//! thread asks the store for whatever lookups have arrived as one batch
//! ([`ManifestStore::get_many`]: one read transaction for SQLite).
//!
//! At most [`IN_FLIGHT`] lookups are with the thread at once (their answers hold decoded
//! manifests until the audit records them); the rest wait as manifest ids, a few bytes each.
//! The thread ends when the [`CacheLookups`] is dropped.

use crate::cache::{
    self, CacheError, CacheKey, CachedParse, EntryError, ManifestStore, ENTRY_FORMAT,
};
use crate::graph::{DigestId, Interner};
use futures::channel::mpsc as async_mpsc;
use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::Arc;

/// Lookups with the thread at once, at most.
const IN_FLIGHT: usize = 64;

/// What the cache said of one manifest.
#[derive(Debug)]
pub(super) enum Lookup {
    /// A sound entry.
    Hit(CachedParse),
    /// No entry under its digest and size.
    Miss,
    /// An entry that does not decode (damaged, or written by something else).
    Damaged(EntryError),
    /// The store failed.
    Failed(CacheError),
}

/// The answer to one lookup.
#[derive(Debug)]
pub(super) struct Answer {
    /// The manifest looked up.
    pub(super) id: DigestId,
    /// The listed size of its blob, which the entry was looked up by.
    pub(super) size: u64,
    /// What the cache said.
    pub(super) lookup: Lookup,
}

struct Request {
    id: DigestId,
    digest: String,
    size: u64,
}

/// Lookups queued, with the thread, and answered (see the module documentation).
pub(super) struct CacheLookups {
    requests: Option<mpsc::Sender<Request>>,
    answers: async_mpsc::UnboundedReceiver<Answer>,
    waiting: VecDeque<(DigestId, u64)>,
    /// With the thread, in the order asked.
    in_flight: VecDeque<(DigestId, u64)>,
    location: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for CacheLookups {
    /// Stop the thread and wait for it (it finishes the lookup it is in), so that it no
    /// longer holds the store when the audit returns.
    fn drop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl CacheLookups {
    /// Start the thread that looks entries up in `store`.
    pub(super) fn start(store: Arc<dyn ManifestStore>) -> std::io::Result<CacheLookups> {
        let (requests, inbox) = mpsc::channel::<Request>();
        let (outbox, answers) = async_mpsc::unbounded();
        let location = store.location();
        let thread = std::thread::Builder::new()
            .name("gc-audit-cache-lookups".to_string())
            .spawn(move || {
                let mut batch = Vec::with_capacity(IN_FLIGHT);
                // Whatever has come in by the time the last batch is answered is the next
                // batch: one store transaction for all of them.
                while let Ok(first) = inbox.recv() {
                    batch.push(first);
                    batch.extend(inbox.try_iter().take(IN_FLIGHT - 1));
                    for answer in look_up_batch(store.as_ref(), &mut batch) {
                        if outbox.unbounded_send(answer).is_err() {
                            return; // the audit is gone
                        }
                    }
                }
            })?;
        Ok(CacheLookups {
            requests: Some(requests),
            answers,
            waiting: VecDeque::new(),
            in_flight: VecDeque::new(),
            location,
            thread: Some(thread),
        })
    }

    /// Queue the lookup of manifest `id`, whose blob is listed with `size`.
    pub(super) fn push(&mut self, id: DigestId, size: u64) {
        self.waiting.push_back((id, size));
    }

    /// Lookups queued or with the thread.
    pub(super) fn len(&self) -> usize {
        self.waiting.len() + self.in_flight.len()
    }

    /// Nothing queued, nothing with the thread.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hand queued lookups to the thread up to [`IN_FLIGHT`], then wait for the next answer.
    /// `None` once nothing is queued or with the thread. Should the thread be gone (it
    /// panicked), every lookup it held or that waits is answered `Failed`, so that the audit
    /// reads those manifests. Dropping the returned future loses nothing.
    pub(super) async fn next(&mut self, digests: &Interner) -> Option<Answer> {
        self.feed(digests);
        if self.requests.is_some() && !self.in_flight.is_empty() {
            // One thread answers in the order it was asked.
            if let Some(answer) = self.answers.next().await {
                self.in_flight.pop_front();
                return Some(answer);
            }
            self.requests = None;
        }
        let (id, size) = self
            .in_flight
            .pop_front()
            .or_else(|| self.waiting.pop_front())?;
        let lookup = Lookup::Failed(CacheError {
            location: self.location.clone(),
            message: "its lookup thread stopped".to_string(),
        });
        Some(Answer { id, size, lookup })
    }

    /// An answer the thread has already given, without waiting; hands it queued lookups
    /// first. The listing calls it as it goes, so that the thread keeps working while the
    /// listing keeps the audit busy (a thread found gone is left to [`CacheLookups::next`]).
    pub(super) fn ready(&mut self, digests: &Interner) -> Option<Answer> {
        self.feed(digests);
        if self.requests.is_none() || self.in_flight.is_empty() {
            return None;
        }
        match self.answers.try_recv() {
            Ok(answer) => {
                self.in_flight.pop_front();
                Some(answer)
            }
            Err(async_mpsc::TryRecvError::Closed) => {
                self.requests = None;
                None
            }
            Err(async_mpsc::TryRecvError::Empty) => None,
        }
    }

    /// Hand queued lookups to the thread, up to [`IN_FLIGHT`] with it.
    fn feed(&mut self, digests: &Interner) {
        while self.in_flight.len() < IN_FLIGHT {
            let Some(requests) = &self.requests else {
                break;
            };
            let Some((id, size)) = self.waiting.pop_front() else {
                break;
            };
            let request = Request {
                id,
                digest: digests.digest(id).to_string(),
                size,
            };
            self.in_flight.push_back((id, size));
            if requests.send(request).is_err() {
                self.requests = None;
            }
        }
    }
}

/// The lookups of `batch` (emptied), on the thread, in its order.
fn look_up_batch(store: &dyn ManifestStore, batch: &mut Vec<Request>) -> Vec<Answer> {
    let keys: Vec<CacheKey<'_>> = batch
        .iter()
        .map(|request| CacheKey {
            format: ENTRY_FORMAT,
            digest: &request.digest,
            size: request.size,
        })
        .collect();
    let mut found = store.get_many(&keys).into_iter();
    let answers = keys
        .iter()
        .zip(batch.iter())
        .map(|(key, request)| {
            let lookup = match found.next() {
                Some(Ok(Some(entry))) => match cache::decode_entry(key, &entry) {
                    Ok(parse) => Lookup::Hit(parse),
                    Err(err) => Lookup::Damaged(err),
                },
                Some(Ok(None)) => Lookup::Miss,
                Some(Err(err)) => Lookup::Failed(err),
                // A store that answers fewer keys than it was asked.
                None => Lookup::Failed(CacheError {
                    location: store.location(),
                    message: format!("it gave no answer for {}", key.digest),
                }),
            };
            Answer {
                id: request.id,
                size: request.size,
                lookup,
            }
        })
        .collect();
    drop(keys);
    batch.clear();
    answers
}
