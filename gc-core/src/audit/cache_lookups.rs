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
//! Lookups and answers cross between the threads in batches: while the listing keeps the audit
//! busy it hands the thread lookups [`HAND_OVER`] at a time, and the thread answers a batch in
//! one message. (One message per lookup woke a sleeping thread per lookup: ~68,000 futex calls
//! in a warm 1M-key rescan.)
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

/// Lookups handed over at once, at least, while the audit is busy ([`CacheLookups::ready`]);
/// when it would wait anyway ([`CacheLookups::next`]) it hands over all it has.
const HAND_OVER: usize = 16;

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
    requests: Option<mpsc::Sender<Vec<Request>>>,
    answers: async_mpsc::UnboundedReceiver<Vec<Answer>>,
    waiting: VecDeque<(DigestId, u64)>,
    /// With the thread, in the order asked (answered ones included until they are taken).
    in_flight: VecDeque<(DigestId, u64)>,
    /// Answers received from the thread and not yet taken, in the order asked.
    answered: VecDeque<Answer>,
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
        let (requests, inbox) = mpsc::channel::<Vec<Request>>();
        let (outbox, answers) = async_mpsc::unbounded();
        let location = store.location();
        let thread = std::thread::Builder::new()
            .name("gc-audit-cache-lookups".to_string())
            .spawn(move || {
                let mut batch = Vec::with_capacity(IN_FLIGHT);
                // Whatever has come in by the time the last batch is answered is the next
                // batch: one store transaction for all of them.
                // (At most IN_FLIGHT in all: the audit hands over no more.)
                while let Ok(first) = inbox.recv() {
                    batch.extend(first);
                    for more in inbox.try_iter() {
                        batch.extend(more);
                    }
                    let answers = look_up_batch(store.as_ref(), &mut batch);
                    if outbox.unbounded_send(answers).is_err() {
                        return; // the audit is gone
                    }
                }
            })?;
        Ok(CacheLookups {
            requests: Some(requests),
            answers,
            waiting: VecDeque::new(),
            in_flight: VecDeque::new(),
            answered: VecDeque::new(),
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
        self.feed(digests, 1);
        loop {
            if let Some(answer) = self.take_answered() {
                return Some(answer);
            }
            if self.requests.is_none() || self.in_flight.is_empty() {
                break;
            }
            // One thread answers in the order it was asked.
            match self.answers.next().await {
                Some(batch) => self.answered.extend(batch),
                None => self.requests = None,
            }
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
        self.feed(digests, HAND_OVER);
        if let Some(answer) = self.take_answered() {
            return Some(answer);
        }
        if self.requests.is_none() || self.in_flight.is_empty() {
            return None;
        }
        match self.answers.try_recv() {
            Ok(batch) => {
                self.answered.extend(batch);
                self.take_answered()
            }
            Err(async_mpsc::TryRecvError::Closed) => {
                self.requests = None;
                None
            }
            Err(async_mpsc::TryRecvError::Empty) => None,
        }
    }

    /// The first answer received and not yet taken.
    fn take_answered(&mut self) -> Option<Answer> {
        let answer = self.answered.pop_front()?;
        self.in_flight.pop_front();
        Some(answer)
    }

    /// Hand queued lookups to the thread in one message, up to [`IN_FLIGHT`] with it, if at
    /// least `at_least` can go (or as many as fill the thread's [`IN_FLIGHT`], when fewer).
    fn feed(&mut self, digests: &Interner, at_least: usize) {
        let Some(requests) = &self.requests else {
            return;
        };
        let room = IN_FLIGHT.saturating_sub(self.in_flight.len());
        let count = room.min(self.waiting.len());
        if count == 0 || count < at_least.min(room) {
            return;
        }
        let batch: Vec<Request> = self
            .waiting
            .drain(..count)
            .map(|(id, size)| {
                self.in_flight.push_back((id, size));
                Request {
                    id,
                    digest: digests.digest(id).to_string(),
                    size,
                }
            })
            .collect();
        if requests.send(batch).is_err() {
            self.requests = None;
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
