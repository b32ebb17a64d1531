//! A listing's key spread: marking it while listing, and planning a listing's ranges from the
//! spread an earlier listing marked.
//!
//! # Why
//!
//! Without knowing where the keys lie, a listing starts as one range and splits only once its
//! pages show the density of keys ([`crate::split`]); a small listing (20 pages or less) never
//! splits at all, since every split ends a range with a partly filled page. A rescan lists
//! the same keys as the scan before it, and the last look of a scan lists again what the
//! scan's own listing just listed. With the marks of that earlier listing, a listing can start
//! every range at once, each ending where an earlier page ended, so that it costs the pages of
//! one listing and the round trips of a few.
//!
//! # How
//!
//! [`Recorder`] marks every [`FINE_MARK_KEYS`]th key of each range while the listing has read
//! fewer than [`FINE_PAGES`] pages (so that small listings can be cut finely), then every
//! [`MARK_KEYS`]th or more as the listing grows (up to 600 at a million keys, as coarse as the
//! spread is kept), and each range's last key, with the keys since the previous mark.
//! [`planned_bounds`] cuts the marks into ranges of up to `p` pages each (`p` is the listing's
//! pages over [`PLANNED_RANGES`], at most [`MAX_PAGES_PER_RANGE`]): as few ranges as the keys
//! need, each holding an equal share of them when they were marked, so that the room left in
//! each range's last page lets keys pushed since then join it without another page (10,045
//! keys are 11 ranges of about 914; 3,000 keys are three of 1,000, with no room). The spread is a hint only: the listing of a planned
//! range is the listing of any range, and the ranges cover the whole prefix whatever the marks.

use crate::split::PAGE;
use gc_core::storage::KeySpread;

/// Keys between marks once a listing has read [`FINE_PAGES`] pages, at least.
pub(crate) const MARK_KEYS: u32 = 100;
/// Keys between marks before that.
pub(crate) const FINE_MARK_KEYS: u32 = 10;
/// Pages a listing marks finely.
pub(crate) const FINE_PAGES: u64 = 32;
/// Ranges a planned listing is cut into, at least, once it has that many pages (8 run at once;
/// twice as many keeps them all busy to the end).
pub(crate) const PLANNED_RANGES: u64 = 16;
/// Pages of a planned range, at most.
pub(crate) const MAX_PAGES_PER_RANGE: u64 = 40;

/// The marks of one listing, as it goes: their keys in one buffer rather than a string each
/// (thousands of small allocations among the graph's would leave holes in the heap that the
/// analysis, which allocates large, cannot reuse: 2–3 MB of peak RSS at a million keys).
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    keys: String,
    /// `(start, end)` of the key in `keys`, and the keys since the range's previous mark.
    marks: Vec<(usize, usize, u32)>,
    failed: bool,
}

impl Recorder {
    /// Keys between marks once the listing has read `pages` pages: finer while it is small,
    /// then as coarse as its spread will be kept ([`coarse_mark_keys`]), at least
    /// [`MARK_KEYS`].
    pub(crate) fn mark_every(pages: u64) -> u32 {
        if pages < FINE_PAGES {
            FINE_MARK_KEYS
        } else {
            coarse_mark_keys(pages * PAGE as u64).max(MARK_KEYS)
        }
    }

    /// Mark `key` (a storage key), `keys` keys after its range's previous mark.
    pub(crate) fn mark(&mut self, key: &str, keys: u32) {
        if keys > 0 {
            let start = self.keys.len();
            self.keys.push_str(key);
            self.marks.push((start, self.keys.len(), keys));
        }
    }

    /// Part of the listing failed: it marks nothing.
    pub(crate) fn fail(&mut self) {
        self.failed = true;
    }

    /// The spread of a listing that is complete, coarsened to what planning it again needs;
    /// `None` if any of it failed.
    pub(crate) fn finish(mut self) -> Option<KeySpread> {
        if self.failed {
            return None;
        }
        let buffer = &self.keys;
        let key = |m: &(usize, usize, u32)| buffer.get(m.0..m.1).unwrap_or_default();
        self.marks.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        let keys: u64 = self.marks.iter().map(|m| u64::from(m.2)).sum();
        let spread = KeySpread {
            marks: coarsened(
                self.marks.iter().map(|m| (key(m), m.2)),
                coarse_mark_keys(keys),
            ),
        };
        spread.is_well_formed().then_some(spread)
    }
}

/// Pages of each range when a listing of `keys` keys is planned.
fn pages_per_range(keys: u64) -> u64 {
    (keys.div_ceil(PAGE as u64) / PLANNED_RANGES).clamp(1, MAX_PAGES_PER_RANGE)
}

/// Keys between the marks a spread of `keys` keys keeps: a fraction of the room its planned
/// ranges leave (`20 × p`), so that cutting at a mark wastes little; at a million keys that is
/// 600, some 1,800 marks.
fn coarse_mark_keys(keys: u64) -> u32 {
    u32::try_from((15 * pages_per_range(keys)).clamp(10, 600)).unwrap_or(600)
}

/// `marks` (sorted) merged into marks of at most `most` keys each (a mark that already holds
/// more stays as it is).
fn coarsened<'k>(marks: impl IntoIterator<Item = (&'k str, u32)>, most: u32) -> Vec<(String, u32)> {
    let mut merged: Vec<(&str, u32)> = Vec::new();
    for (key, count) in marks {
        match merged.last_mut() {
            Some(last) if last.1.saturating_add(count) <= most => *last = (key, last.1 + count),
            _ => merged.push((key, count)),
        }
    }
    merged
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect()
}

/// The upper bounds (S3 keys, ascending) of the ranges that list `storage_prefix` as `spread`
/// says its keys lie: the ranges are `(start, b₁]`, `(b₁, b₂]`, …, `(bₖ, end)`. Empty when the
/// spread marks too few keys there to be worth cutting (the listing then splits as it goes).
/// `root` is the S3 prefix of the storage's root (`root/` or empty).
pub(crate) fn planned_bounds(spread: &KeySpread, root: &str, storage_prefix: &str) -> Vec<String> {
    if !spread.is_well_formed() {
        return Vec::new();
    }
    let marks: Vec<&(String, u32)> = spread
        .marks
        .iter()
        .filter(|m| m.0.starts_with(storage_prefix))
        .collect();
    let keys: u64 = marks.iter().map(|m| u64::from(m.1)).sum();
    let page = PAGE as u64;
    let pages = keys.div_ceil(page);
    if pages < 2 {
        return Vec::new();
    }
    let per_range = pages_per_range(keys);
    // As few ranges as the keys need, holding equal shares: the room each leaves for keys
    // pushed since is all the listing has (10,045 keys: 11 ranges of ~914, room for ~86 each;
    // 3,000 keys: 3 ranges of 1,000, no room).
    let full = page * per_range;
    let fewest = keys.div_ceil(full);
    let granule = marks.iter().map(|m| u64::from(m.1)).max().unwrap_or(1);
    let capacity = (keys.div_ceil(fewest) + granule).min(full);
    let mut bounds = Vec::new();
    let mut held = 0u64;
    let mut previous: Option<&str> = None;
    for (key, count) in marks {
        let count = u64::from(*count);
        if held > 0 && held + count > capacity {
            if let Some(previous) = previous {
                bounds.push(format!("{root}{previous}"));
            }
            held = 0;
        }
        held += count;
        previous = Some(key);
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_that_would_cost_a_page_is_not_left() {
        // 3,000 keys: three ranges of 1,000, as the listing's three pages.
        let bounds = planned_bounds(&even(3_000, 10), "", "p/");
        assert_eq!(
            bounds,
            vec!["p/k0000999".to_string(), "p/k0001999".to_string()]
        );
        // 2,950: three ranges with a few keys of room each.
        assert_eq!(planned_bounds(&even(2_950, 10), "", "p/").len() + 1, 3);
    }

    /// A spread of `n` keys `p/k0000000`… marked every `every` keys.
    fn even(n: u32, every: u32) -> KeySpread {
        let mut marks = Vec::new();
        let mut at = 0;
        while at < n {
            let step = every.min(n - at);
            at += step;
            marks.push((format!("p/k{:07}", at - 1), step));
        }
        KeySpread { marks }
    }

    #[test]
    fn a_small_listing_is_cut_into_pages_with_room_to_spare() {
        // 10,045 keys: 11 pages, as one sequential listing needs.
        let bounds = planned_bounds(&even(10_045, 10), "root/", "p/");
        assert_eq!(bounds.len() + 1, 11, "{bounds:?}");
        assert!(bounds.iter().all(|b| b.starts_with("root/p/k")));
        assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        // Each range holds about 914 keys: some 86 may join it.
        assert_eq!(bounds[0], "root/p/k0000919");
    }

    #[test]
    fn a_large_listing_is_cut_into_ranges_of_many_pages() {
        let bounds = planned_bounds(&even(1_100_000, 100), "", "p/");
        // 1,100 pages: 28 ranges of 40 pages, each with room for 600 keys or more.
        assert_eq!(bounds.len() + 1, 28);
        assert_eq!(bounds[0], "p/k0039299");
    }

    #[test]
    fn too_few_keys_or_a_bad_spread_plan_nothing() {
        assert!(planned_bounds(&even(900, 10), "", "p/").is_empty());
        assert!(planned_bounds(&even(10_000, 10), "", "q/").is_empty());
        let mut unsorted = even(10_000, 10);
        unsorted.marks.reverse();
        assert!(planned_bounds(&unsorted, "", "p/").is_empty());
    }

    #[test]
    fn marks_are_coarsened_to_what_planning_needs() {
        let refs = |s: &KeySpread| -> Vec<(String, u32)> { s.marks.clone() };
        let coarse =
            |s: &KeySpread, most| coarsened(s.marks.iter().map(|m| (m.0.as_str(), m.1)), most);
        // A small listing keeps its marks of 10 keys.
        let small = even(10_000, 10);
        assert_eq!(coarse(&small, coarse_mark_keys(10_000)), refs(&small));
        // A million keys marked every 100 keep a mark every 600.
        assert_eq!(coarse_mark_keys(1_000_000), 600);
        let large = coarse(&even(1_000_000, 100), 600);
        assert_eq!(large.len(), 1_000_000usize.div_ceil(600));
        assert!(large.iter().all(|m| m.1 <= 600));
        let total: u64 = large.iter().map(|m| u64::from(m.1)).sum();
        assert_eq!(total, 1_000_000);
        // A mark bigger than the most stays whole.
        let big = KeySpread {
            marks: vec![("a".to_string(), 900), ("b".to_string(), 5)],
        };
        assert_eq!(coarse(&big, 600), refs(&big));
        // A listing past its first pages marks coarsely already.
        assert_eq!(Recorder::mark_every(10), FINE_MARK_KEYS);
        assert_eq!(Recorder::mark_every(40), MARK_KEYS);
        assert_eq!(Recorder::mark_every(1_000), 600);
    }

    #[test]
    fn a_recorder_sorts_its_marks_and_a_failure_spoils_them() {
        let mut r = Recorder::default();
        r.mark("b", 3);
        r.mark("a", 2);
        r.mark("c", 0);
        let spread = r.finish().expect("complete");
        // Two small marks of a small listing make one of 5 keys.
        assert_eq!(spread.marks, vec![("b".to_string(), 5)]);
        let mut r = Recorder::default();
        r.mark("a", 2);
        r.fail();
        assert!(r.finish().is_none());
    }
}
