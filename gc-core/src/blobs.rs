//! The blob store as listed: size and modification time of every present blob, by digest id.
//!
//! Ids are dense (the interner hands them out in order), so the table is a vector indexed by
//! id rather than a hash map, and a slot is 16 bytes (size, whole seconds) instead of ~40 with
//! a map's slack; iteration is in id order. Times are kept in whole seconds, which is all the
//! reports print and all the grace period needs.

use crate::graph::DigestId;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A blob present in the blob store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// Size of `data`.
    pub size: u64,
    /// Modification time of `data`.
    pub last_modified: SystemTime,
}

/// Present blobs by digest id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobTable {
    by_id: Vec<Slot>,
    len: usize,
}

/// One id's slot: `seconds == ABSENT` when no blob has that digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    size: u64,
    seconds: u64,
}

const ABSENT: u64 = u64::MAX;

impl Slot {
    const EMPTY: Slot = Slot {
        size: 0,
        seconds: ABSENT,
    };

    fn info(self) -> Option<BlobInfo> {
        (self.seconds != ABSENT).then(|| BlobInfo {
            size: self.size,
            last_modified: UNIX_EPOCH + Duration::from_secs(self.seconds),
        })
    }
}

impl BlobTable {
    /// Record the blob `id` (replacing what was recorded for it). Its time is kept in whole
    /// seconds (times before 1970 as 1970).
    pub fn insert(&mut self, id: DigestId, info: BlobInfo) {
        let i = id.index();
        if i >= self.by_id.len() {
            self.by_id.resize(i + 1, Slot::EMPTY);
        }
        let seconds = info
            .last_modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().min(ABSENT - 1));
        if self.by_id[i].seconds == ABSENT {
            self.len += 1;
        }
        self.by_id[i] = Slot {
            size: info.size,
            seconds,
        };
    }

    /// The blob `id`, if present.
    pub fn get(&self, id: &DigestId) -> Option<BlobInfo> {
        self.by_id.get(id.index()).and_then(|s| s.info())
    }

    /// Whether blob `id` is present.
    pub fn contains_key(&self, id: &DigestId) -> bool {
        self.get(id).is_some()
    }

    /// Present blobs with their ids, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (DigestId, BlobInfo)> + '_ {
        self.by_id.iter().enumerate().filter_map(|(i, s)| {
            s.info()
                .map(|b| (DigestId(u32::try_from(i).unwrap_or(u32::MAX)), b))
        })
    }

    /// Ids of the present blobs, in id order.
    pub fn keys(&self) -> impl Iterator<Item = DigestId> + '_ {
        self.iter().map(|(id, _)| id)
    }

    /// The present blobs, in id order.
    pub fn values(&self) -> impl Iterator<Item = BlobInfo> + '_ {
        self.by_id.iter().filter_map(|s| s.info())
    }

    /// How many blobs are present.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Give back the growth slack.
    pub fn shrink_to_fit(&mut self) {
        self.by_id.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_ids_count_only_present_blobs() {
        let mut t = BlobTable::default();
        let info = |size| BlobInfo {
            size,
            last_modified: UNIX_EPOCH + Duration::from_millis(1_500),
        };
        t.insert(DigestId(5), info(1));
        t.insert(DigestId(2), info(2));
        t.insert(DigestId(5), info(3));
        assert_eq!(t.len(), 2);
        assert!(!t.contains_key(&DigestId(0)) && !t.contains_key(&DigestId(9)));
        assert_eq!(t.get(&DigestId(5)).map(|b| b.size), Some(3));
        assert_eq!(t.keys().collect::<Vec<_>>(), vec![DigestId(2), DigestId(5)]);
        assert_eq!(t.values().map(|b| b.size).sum::<u64>(), 5);
        // Whole seconds.
        assert_eq!(
            t.get(&DigestId(2)).map(|b| b.last_modified),
            Some(UNIX_EPOCH + Duration::from_secs(1))
        );
    }
}
