//! Per-repository link tables: which digests a repository links (`_layers/…/link`,
//! `_manifests/revisions/…/link`), and what the rare bad link files hold instead.
//!
//! A registry of a million keys has about as many links as blobs, spread over the repositories,
//! so a table keeps only the 4-byte digest ids of good links; the content of a bad link (not
//! its path's digest) sits in a side map that is empty on a healthy registry.

use crate::graph::DigestId;
use std::collections::{HashMap, HashSet};

/// What one link file says, as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState<'a> {
    /// Not checked beyond its size, which matched (or checked and right).
    Good,
    /// Content is not the digest in its path: the content found.
    Bad(&'a str),
}

/// The links of one kind in one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkTable {
    linked: HashSet<DigestId>,
    bad: HashMap<DigestId, Box<str>>,
}

impl LinkTable {
    /// Record a link to `id` whose content is (as far as known) right.
    pub fn insert_good(&mut self, id: DigestId) {
        self.linked.insert(id);
        self.bad.remove(&id);
    }

    /// Record that the link to `id` holds `content` instead.
    pub fn insert_bad(&mut self, id: DigestId, content: impl Into<Box<str>>) {
        self.linked.insert(id);
        self.bad.insert(id, content.into());
    }

    /// The state of the link to `id`, if there is one.
    pub fn get(&self, id: &DigestId) -> Option<LinkState<'_>> {
        if !self.linked.contains(id) {
            return None;
        }
        Some(self.state_of(id))
    }

    /// The state of a link known to exist.
    fn state_of(&self, id: &DigestId) -> LinkState<'_> {
        match self.bad.get(id) {
            Some(content) => LinkState::Bad(content),
            None => LinkState::Good,
        }
    }

    /// Whether there is a link to `id`, good or bad.
    pub fn contains_key(&self, id: &DigestId) -> bool {
        self.linked.contains(id)
    }

    /// The linked digests, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &DigestId> + '_ {
        self.linked.iter()
    }

    /// Every link with its state, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&DigestId, LinkState<'_>)> + '_ {
        self.linked.iter().map(|id| (id, self.state_of(id)))
    }

    /// How many links.
    pub fn len(&self) -> usize {
        self.linked.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.linked.is_empty()
    }

    /// Give back the growth slack.
    pub fn shrink_to_fit(&mut self) {
        self.linked.shrink_to_fit();
        self.bad.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_content_is_kept_beside_the_link_and_cleared_by_a_good_one() {
        let mut t = LinkTable::default();
        t.insert_good(DigestId(1));
        t.insert_bad(DigestId(2), "garbage");
        assert_eq!(t.get(&DigestId(1)), Some(LinkState::Good));
        assert_eq!(t.get(&DigestId(2)), Some(LinkState::Bad("garbage")));
        assert_eq!(t.get(&DigestId(3)), None);
        assert_eq!(t.len(), 2);
        let mut states: Vec<(u32, LinkState<'_>)> = t.iter().map(|(id, s)| (id.0, s)).collect();
        states.sort_by_key(|(id, _)| *id);
        assert_eq!(
            states,
            vec![(1, LinkState::Good), (2, LinkState::Bad("garbage"))]
        );
        t.insert_good(DigestId(2));
        assert_eq!(t.get(&DigestId(2)), Some(LinkState::Good));
    }
}
