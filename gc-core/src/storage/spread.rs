//! How the keys of a prefix were spread when it was last listed ([`KeySpread`]): what lets an
//! object store list a prefix as many ranges at once from its first request, instead of one
//! page after another until it has seen enough keys to split.
//!
//! A spread is only ever a hint. A listing told any spread (stale, from another registry,
//! damaged, empty) returns exactly the keys it returns without one; only how many requests it
//! needs and how many run at once depend on it.

use serde::{Deserialize, Serialize};

/// Marks along the keys of an earlier listing, in key order: each is a key, with the number of
/// keys that listing found after the previous mark (or the prefix's start) up to and including
/// it. Keys are storage keys (as [`super::Storage::list`] gives them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySpread {
    /// `(key, keys since the previous mark)`, sorted by key, keys distinct.
    pub marks: Vec<(String, u32)>,
}

impl KeySpread {
    /// Whether the marks are sorted, distinct, and counted: what a listing relies on (any other
    /// spread is ignored rather than trusted).
    pub fn is_well_formed(&self) -> bool {
        self.marks.windows(2).all(|w| w[0].0 < w[1].0) && self.marks.iter().all(|m| m.1 > 0)
    }

    /// Keys the marks count.
    pub fn keys(&self) -> u64 {
        self.marks.iter().map(|m| u64::from(m.1)).sum()
    }

    /// The marks under `prefix`. The first one's count may also hold keys before the prefix;
    /// it is taken as no more than the next mark's (marks are about evenly spaced), so that
    /// the estimate is off by one mark's keys at most.
    pub fn within(&self, prefix: &str) -> KeySpread {
        let mut marks: Vec<(String, u32)> = self
            .marks
            .iter()
            .filter(|m| m.0.starts_with(prefix))
            .cloned()
            .collect();
        if let [first, second, ..] = marks.as_mut_slice() {
            first.1 = first.1.min(second.1);
        }
        KeySpread { marks }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(marks: &[(&str, u32)]) -> KeySpread {
        KeySpread {
            marks: marks.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn a_spread_is_well_formed_only_sorted_distinct_and_counted() {
        assert!(spread(&[]).is_well_formed());
        assert!(spread(&[("a", 3), ("b", 1)]).is_well_formed());
        assert!(!spread(&[("b", 3), ("a", 1)]).is_well_formed());
        assert!(!spread(&[("a", 3), ("a", 1)]).is_well_formed());
        assert!(!spread(&[("a", 0)]).is_well_formed());
    }

    #[test]
    fn within_keeps_the_marks_under_a_prefix() {
        let s = spread(&[("blobs/x", 5), ("repositories/a", 7), ("repositories/b", 2)]);
        // `repositories/a` counted keys of `blobs/` too: taken as the next mark's count.
        assert_eq!(
            s.within("repositories/"),
            spread(&[("repositories/a", 2), ("repositories/b", 2)])
        );
        assert_eq!(s.keys(), 14);
    }
}
