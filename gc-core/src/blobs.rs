//! The blob store as listed: size and modification time of every present blob, by digest id.
//!
//! Ids are dense (the interner hands them out in order), so the table is a vector indexed by
//! id rather than a hash map: 24 bytes a digest instead of ~40 with a map's slack, and
//! iteration in id order.

use crate::graph::DigestId;
use std::time::SystemTime;

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
    by_id: Vec<Option<BlobInfo>>,
    len: usize,
}

impl BlobTable {
    /// Record the blob `id` (replacing what was recorded for it).
    pub fn insert(&mut self, id: DigestId, info: BlobInfo) {
        let i = id.index();
        if i >= self.by_id.len() {
            self.by_id.resize(i + 1, None);
        }
        if self.by_id[i].replace(info).is_none() {
            self.len += 1;
        }
    }

    /// The blob `id`, if present.
    pub fn get(&self, id: &DigestId) -> Option<&BlobInfo> {
        self.by_id.get(id.index()).and_then(Option::as_ref)
    }

    /// Whether blob `id` is present.
    pub fn contains_key(&self, id: &DigestId) -> bool {
        self.get(id).is_some()
    }

    /// Present blobs with their ids, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (DigestId, &BlobInfo)> + '_ {
        self.by_id.iter().enumerate().filter_map(|(i, b)| {
            b.as_ref()
                .map(|b| (DigestId(u32::try_from(i).unwrap_or(u32::MAX)), b))
        })
    }

    /// Ids of the present blobs, in id order.
    pub fn keys(&self) -> impl Iterator<Item = DigestId> + '_ {
        self.iter().map(|(id, _)| id)
    }

    /// The present blobs, in id order.
    pub fn values(&self) -> impl Iterator<Item = &BlobInfo> + '_ {
        self.by_id.iter().flatten()
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
            last_modified: SystemTime::UNIX_EPOCH,
        };
        t.insert(DigestId(5), info(1));
        t.insert(DigestId(2), info(2));
        t.insert(DigestId(5), info(3));
        assert_eq!(t.len(), 2);
        assert!(!t.contains_key(&DigestId(0)) && !t.contains_key(&DigestId(9)));
        assert_eq!(t.get(&DigestId(5)).map(|b| b.size), Some(3));
        assert_eq!(t.keys().collect::<Vec<_>>(), vec![DigestId(2), DigestId(5)]);
        assert_eq!(t.values().map(|b| b.size).sum::<u64>(), 5);
    }
}
