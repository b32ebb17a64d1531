//! The mark: closures over the reference graph (SPEC §3), pure and cycle-safe.
//!
//! A closure starts from root manifests and follows config, layer, child and subject edges;
//! it descends into every digest that was read as a manifest, whatever edge led there, so an
//! index child whose revision link is gone is still followed (the index still references it).
//! A visited set checked before descending makes cycles (`subject` loops, self-referencing
//! indexes) harmless. The tagged closure adds referrers: a revision of the same repository
//! whose `subject` is in the set joins it, with its own closure, until nothing changes.

use crate::graph::{DigestId, Graph, ManifestState, Repo, TagTarget};
use crate::manifest::EdgeKind;
use std::collections::{HashMap, HashSet};

/// A set of digest ids: a hash set while small, a bitset over the graph's interner once that
/// is smaller. A repository's closure is usually a few hundred digests out of millions, so
/// per-repository sets stay sparse; the global sets become dense. A finished sparse set can be
/// frozen ([`DigestSet::freeze`]) into a sorted slice: 4 bytes a member, searched by bisection.
#[derive(Debug, Clone)]
pub struct DigestSet {
    repr: Repr,
    /// Ids the set may hold (the interner's size when made): decides when dense pays.
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
    /// member against one bit per possible id).
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
                Box::new(words.iter().enumerate().flat_map(|(w, &bits)| {
                    (0..64)
                        .filter(move |b| bits & (1u64 << b) != 0)
                        .map(move |b| DigestId((w * 64 + b) as u32))
                }))
            }
        }
    }
}

/// Which edges a closure follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Config, layers, children and subject (SPEC §3 reachability).
    All,
    /// Config, layers and children: what a pull of an image needs.
    Pull,
}

/// Add the closure of `roots` to `set`.
pub fn close_over(
    graph: &Graph,
    roots: impl IntoIterator<Item = DigestId>,
    follow: Follow,
    set: &mut DigestSet,
) {
    let mut stack: Vec<DigestId> = Vec::new();
    for root in roots {
        if set.insert(root) {
            stack.push(root);
        }
    }
    while let Some(id) = stack.pop() {
        let Some(ManifestState::Parsed(node)) = graph.manifests.get(&id) else {
            continue;
        };
        for edge in &node.edges {
            if follow == Follow::Pull && edge.kind == EdgeKind::Subject {
                continue;
            }
            if set.insert(edge.target) {
                stack.push(edge.target);
            }
        }
    }
}

/// The closure of one repository.
#[derive(Debug, Clone)]
pub struct RepoMarks {
    /// Closure from every revision of the repository.
    pub live: DigestSet,
    /// Closure from the tags' current targets plus referrers of the set.
    pub tagged: DigestSet,
}

/// The tag targets of a repository.
pub fn tag_targets(repo: &Repo) -> impl Iterator<Item = DigestId> + '_ {
    repo.tags.values().filter_map(|t| match t.target {
        TagTarget::Digest(id) => Some(id),
        _ => None,
    })
}

/// Compute the live and tagged closures of `repo`.
pub fn mark_repo(graph: &Graph, repo: &Repo) -> RepoMarks {
    let cap = graph.digests.len();
    let mut live = DigestSet::with_capacity(cap);
    let mut revisions: Vec<DigestId> = repo.revisions.keys().copied().collect();
    revisions.sort_unstable();
    close_over(graph, revisions.iter().copied(), Follow::All, &mut live);

    // Referrers of this repository, by subject.
    let mut referrers: HashMap<DigestId, Vec<DigestId>> = HashMap::new();
    for &r in &revisions {
        if let Some(node) = graph.parsed(r) {
            for e in node.edges.iter().filter(|e| e.kind == EdgeKind::Subject) {
                referrers.entry(e.target).or_default().push(r);
            }
        }
    }
    let mut tagged = DigestSet::with_capacity(cap);
    close_over(graph, tag_targets(repo), Follow::All, &mut tagged);
    if !referrers.is_empty() {
        let mut added: HashSet<DigestId> = HashSet::new();
        loop {
            let new: Vec<DigestId> = referrers
                .iter()
                .filter(|(subject, _)| tagged.contains(**subject))
                .flat_map(|(_, rs)| rs.iter().copied())
                .filter(|r| !tagged.contains(*r) && added.insert(*r))
                .collect();
            if new.is_empty() {
                break;
            }
            close_over(graph, new, Follow::All, &mut tagged);
        }
    }
    RepoMarks { live, tagged }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::graph::{Edge, ManifestNode, Tag};
    use crate::manifest::ManifestKind;

    fn node(edges: Vec<(EdgeKind, DigestId)>) -> ManifestState {
        ManifestState::Parsed(ManifestNode::new(
            ManifestKind::OciManifest,
            edges
                .into_iter()
                .map(|(kind, target)| Edge {
                    kind,
                    target,
                    foreign: false,
                    attestation: false,
                })
                .collect(),
        ))
    }

    fn ids(g: &mut Graph, n: u8) -> Vec<DigestId> {
        (0..n)
            .map(|i| g.digests.intern(&Digest::sha256_of(&[i])))
            .collect()
    }

    #[test]
    fn subject_cycles_and_self_loops_terminate() {
        let mut g = Graph::new();
        let d = ids(&mut g, 3);
        g.manifests
            .insert(d[0], node(vec![(EdgeKind::Subject, d[1])]));
        g.manifests.insert(
            d[1],
            node(vec![(EdgeKind::Subject, d[0]), (EdgeKind::Child, d[1])]),
        );
        let mut set = DigestSet::default();
        close_over(&g, [d[0]], Follow::All, &mut set);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![d[0], d[1]]);
        let mut pull = DigestSet::default();
        close_over(&g, [d[0]], Follow::Pull, &mut pull);
        assert_eq!(pull.iter().collect::<Vec<_>>(), vec![d[0]]);
    }

    #[test]
    fn referrers_join_the_tagged_set_to_a_fixpoint() {
        let mut g = Graph::new();
        let d = ids(&mut g, 5);
        // d0 image (layer d4); d1 signs d0; d2 signs d1; d3 unrelated untagged.
        g.manifests
            .insert(d[0], node(vec![(EdgeKind::Layer, d[4])]));
        g.manifests
            .insert(d[1], node(vec![(EdgeKind::Subject, d[0])]));
        g.manifests
            .insert(d[2], node(vec![(EdgeKind::Subject, d[1])]));
        g.manifests.insert(d[3], node(vec![]));
        let mut repo = Repo::default();
        for &r in &d[..4] {
            repo.revisions.insert_good(r);
        }
        repo.tags.insert(
            "t".into(),
            Tag {
                name: "t".into(),
                target: TagTarget::Digest(d[0]),
                current_size: None,
                history: vec![],
                history_modified: None,
                earlier_targets: vec![],
            },
        );
        let marks = mark_repo(&g, &repo);
        assert_eq!(
            marks.tagged.iter().collect::<Vec<_>>(),
            vec![d[0], d[1], d[2], d[4]]
        );
        assert_eq!(marks.live.len(), 5);
    }

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
