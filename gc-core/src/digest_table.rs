//! The digests of a graph by id, stored compactly.
//!
//! A registry of a million blobs has a million digests, all alive until the report is written.
//! A [`Digest`] value is 40 bytes (32 raw bytes and the tag of its enum, padded to the
//! alignment of the rare `Other` variant's pointer); here a `sha256` digest takes its 32 raw
//! bytes and nothing else, and the digests of other algorithms (rare) are kept aside by id.
//! At 430,000 digests (the 1M-key benchmark) that is 3.4 MB less at the audit's peak.

use crate::digest::Digest;
use crate::graph::DigestId;
use std::collections::HashMap;

/// Digests by [`DigestId`]: [`DigestTable::get`] gives back the digest of an id.
#[derive(Debug, Clone, Default)]
pub struct DigestTable {
    /// The raw bytes of each `sha256` digest, by id; zeros where the digest is in `others`.
    sha256: Vec<[u8; 32]>,
    /// The digests of other algorithms, by id.
    others: HashMap<u32, Box<str>>,
}

impl DigestTable {
    /// The digest of `id`.
    ///
    /// # Panics
    /// If `id` is not an id of this table (ids come from the table's own interner).
    pub fn get(&self, id: DigestId) -> Digest {
        if !self.others.is_empty() {
            if let Some(s) = self.others.get(&id.0) {
                return Digest::Other(s.clone());
            }
        }
        Digest::Sha256(self.sha256[id.index()])
    }

    /// Whether the digest of `id` is `digest`, without building it.
    pub(crate) fn holds(&self, id: u32, digest: &Digest) -> bool {
        match digest {
            Digest::Sha256(bytes) => {
                self.sha256[id as usize] == *bytes
                    && (self.others.is_empty() || !self.others.contains_key(&id))
            }
            Digest::Other(s) => self.others.get(&id) == Some(s),
        }
    }

    /// Add `digest` under the next id, returned.
    pub(crate) fn push(&mut self, digest: &Digest) -> u32 {
        let id = u32::try_from(self.sha256.len()).unwrap_or(u32::MAX);
        match digest {
            Digest::Sha256(bytes) => self.sha256.push(*bytes),
            Digest::Other(s) => {
                self.sha256.push([0; 32]);
                self.others.insert(id, s.clone());
            }
        }
        id
    }

    /// Give back the growth slack.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.sha256.shrink_to_fit();
        self.others.shrink_to_fit();
    }

    /// How many digests the table holds.
    pub fn len(&self) -> usize {
        self.sha256.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.sha256.is_empty()
    }
}

impl FromIterator<Digest> for DigestTable {
    /// Ids in the iterator's order, from 0.
    fn from_iter<I: IntoIterator<Item = Digest>>(iter: I) -> Self {
        let mut table = DigestTable::default();
        for d in iter {
            table.push(&d);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_come_back_as_they_went_in() {
        let a = Digest::sha256_of(b"a");
        let other = Digest::parse(&format!("sha512:{}", "ab".repeat(64)));
        let other = other.unwrap_or_else(|e| panic!("{e}"));
        let b = Digest::sha256_of(b"b");
        let table: DigestTable = [a.clone(), other.clone(), b.clone()].into_iter().collect();
        assert_eq!(table.len(), 3);
        assert_eq!(table.get(DigestId(0)), a);
        assert_eq!(table.get(DigestId(1)), other);
        assert_eq!(table.get(DigestId(2)), b);
        assert!(table.holds(0, &a) && !table.holds(0, &b) && !table.holds(0, &other));
        assert!(table.holds(1, &other) && !table.holds(1, &Digest::Sha256([0; 32])));
    }
}
