//! Sets of digest ids ([`DigestSet`]): what every closure, mark and young-link record is made of.

use crate::graph::DigestId;
use std::collections::HashSet;

/// A set of digest ids: a hash set while small, a bitset over the graph's interner once that
/// is smaller. A repository's closure is usually a few hundred digests out of millions, so
/// per-repository sets stay sparse; the global sets become dense. A finished sparse set can be
/// frozen ([`DigestSet::freeze`]) into a sorted slice: 4 bytes a member, searched by bisection.
#[derive(Debug, Clone)]
pub struct DigestSet {
    repr: Repr,
    /// Ids the set may hold (the interner's size when made, or more once a larger id is
    /// inserted): decides when dense pays.
    universe: usize,
}

#[derive(Debug, Clone)]
enum Repr {
    Sparse(HashSet<u32>),
    Sorted(Box<[u32]>),
    Dense { words: Vec<u64>, len: usize },
}

impl PartialEq for DigestSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for DigestSet {}

impl Default for DigestSet {
    fn default() -> Self {
        DigestSet::with_capacity(0)
    }
}

impl DigestSet {
    /// An empty set for ids below `universe` (larger ids are accepted too).
    pub fn with_capacity(universe: usize) -> Self {
        DigestSet {
            repr: Repr::Sparse(HashSet::new()),
            universe,
        }
    }

    /// Switch to a bitset when a hash set of this size costs more memory (about 8 bytes per
    /// member against one bit per possible id). The possible ids are the universe, which
    /// grows to take any larger member: a set made without one (`DigestSet::default()`)
    /// spans up to its largest member, so a small closure of high ids stays a hash set
    /// instead of a bitset from id 0 (which every iteration would walk whole).
    fn maybe_densify(&mut self) {
        if let Repr::Sparse(set) = &self.repr {
            if set.len() * 64 > self.universe.max(1024) {
                let mut words = vec![0u64; self.universe.div_ceil(64)];
                for &i in set {
                    let (w, b) = (i as usize / 64, i as usize % 64);
                    if w >= words.len() {
                        words.resize(w + 1, 0);
                    }
                    words[w] |= 1 << b;
                }
                self.repr = Repr::Dense {
                    words,
                    len: set.len(),
                };
            }
        }
    }

    /// Make a sparse set compact and read-mostly: a sorted slice. Inserting later turns it
    /// back into a hash set.
    pub fn freeze(&mut self) {
        if let Repr::Sparse(set) = &self.repr {
            let mut ids: Vec<u32> = set.iter().copied().collect();
            ids.sort_unstable();
            self.repr = Repr::Sorted(ids.into_boxed_slice());
        }
    }

    /// Insert; returns whether it was new.
    pub fn insert(&mut self, id: DigestId) -> bool {
        self.universe = self.universe.max(id.index() + 1);
        if let Repr::Sorted(ids) = &self.repr {
            self.repr = Repr::Sparse(ids.iter().copied().collect());
        }
        let new = match &mut self.repr {
            Repr::Sparse(set) => set.insert(id.0),
            Repr::Sorted(_) => false,
            Repr::Dense { words, len } => {
                let (w, b) = (id.index() / 64, id.index() % 64);
                if w >= words.len() {
                    words.resize(w + 1, 0);
                }
                let new = words[w] & (1 << b) == 0;
                words[w] |= 1 << b;
                *len += usize::from(new);
                new
            }
        };
        if new {
            self.maybe_densify();
        }
        new
    }

    /// Membership.
    pub fn contains(&self, id: DigestId) -> bool {
        match &self.repr {
            Repr::Sparse(set) => set.contains(&id.0),
            Repr::Sorted(ids) => ids.binary_search(&id.0).is_ok(),
            Repr::Dense { words, .. } => {
                let (w, b) = (id.index() / 64, id.index() % 64);
                words.get(w).is_some_and(|x| x & (1 << b) != 0)
            }
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Sparse(set) => set.len(),
            Repr::Sorted(ids) => ids.len(),
            Repr::Dense { len, .. } => *len,
        }
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Add every member of `other`.
    pub fn union_with(&mut self, other: &DigestSet) {
        match (&mut self.repr, &other.repr) {
            (Repr::Dense { words, len }, Repr::Dense { words: theirs, .. }) => {
                if theirs.len() > words.len() {
                    words.resize(theirs.len(), 0);
                }
                for (a, b) in words.iter_mut().zip(theirs) {
                    *a |= *b;
                }
                *len = words.iter().map(|w| w.count_ones() as usize).sum();
            }
            _ => {
                self.universe = self.universe.max(other.universe);
                for id in other.iter() {
                    self.insert(id);
                }
            }
        }
    }

    /// Members in ascending id order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = DigestId> + '_> {
        match &self.repr {
            Repr::Sparse(set) => {
                let mut v: Vec<u32> = set.iter().copied().collect();
                v.sort_unstable();
                Box::new(v.into_iter().map(DigestId))
            }
            Repr::Sorted(ids) => Box::new(ids.iter().map(|&i| DigestId(i))),
            Repr::Dense { words, .. } => {
                // Set bits only, lowest first: a word costs one step per member, an empty
                // word one test.
                Box::new(words.iter().enumerate().flat_map(|(w, &bits)| {
                    let mut rest = bits;
                    std::iter::from_fn(move || {
                        let b = rest.trailing_zeros();
                        (rest != 0).then(|| {
                            rest &= rest - 1;
                            DigestId((w * 64) as u32 + b)
                        })
                    })
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_set_turns_dense_and_keeps_its_members() {
        let mut s = DigestSet::with_capacity(2048);
        let ids: Vec<DigestId> = (0..100).map(|i| DigestId(i * 7)).collect();
        for id in &ids {
            assert!(s.insert(*id));
        }
        assert!(matches!(s.repr, Repr::Dense { .. }));
        assert_eq!(s.iter().collect::<Vec<_>>(), ids);
        assert_eq!(s.len(), 100);
        let mut sparse = DigestSet::with_capacity(1 << 20);
        sparse.insert(DigestId(5000));
        sparse.insert(DigestId(3));
        assert!(matches!(sparse.repr, Repr::Sparse(_)));
        s.union_with(&sparse);
        assert_eq!(s.len(), 102);
        sparse.union_with(&s);
        assert_eq!(sparse.iter().count(), 102);
        assert!(sparse.contains(DigestId(693)) && !sparse.contains(DigestId(694)));
    }

    #[test]
    fn a_set_without_a_universe_stays_sparse_while_its_ids_are_spread() {
        let mut s = DigestSet::default();
        let ids: Vec<DigestId> = (0..40).map(|i| DigestId(500_000 + i * 1000)).collect();
        for id in ids.iter().rev() {
            s.insert(*id);
        }
        assert!(matches!(s.repr, Repr::Sparse(_)));
        assert_eq!(s.iter().collect::<Vec<_>>(), ids);
        // Dense once a bitset up to its largest id is the smaller.
        for i in 0..9000 {
            s.insert(DigestId(i));
        }
        assert!(matches!(s.repr, Repr::Dense { .. }));
        assert_eq!(s.len(), 9040);
        let members: Vec<DigestId> = s.iter().collect();
        assert_eq!(members.len(), 9040);
        assert!(members.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(members[9000..], ids[..]);
        assert!(s.contains(DigestId(8999)) && !s.contains(DigestId(9000)));
    }

    #[test]
    fn digest_set_union_and_len() {
        let mut a = DigestSet::with_capacity(10);
        a.insert(DigestId(3));
        assert!(!a.insert(DigestId(3)));
        let mut b = DigestSet::default();
        b.insert(DigestId(200));
        b.insert(DigestId(3));
        a.union_with(&b);
        assert_eq!(a.len(), 2);
        assert!(a.contains(DigestId(200)) && !a.contains(DigestId(199)));
    }
}
