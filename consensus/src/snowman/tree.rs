//! The block tree of Snowman (avalanchego `snow/consensus/snowman/topological.go`, in
//! our own formulation): the last accepted block and every processing block above it,
//! each block with one Snowball instance over its children.
//!
//! A poll's votes are applied as follows:
//! 1. a vote for a block counts for each of its processing ancestors (transitive votes);
//! 2. from the last accepted block down, each block's instance records the poll with
//!    its most-voted child and that child's transitive votes, if its children got at
//!    least `alpha_preference` votes in all; the walk continues into that child;
//! 3. every other child's subtree, and the subtree where the walk stops, records an
//!    unsuccessful poll (its confidence resets: a block's consecutive successes must be
//!    consecutive polls of the whole path);
//! 4. while the last accepted block's instance is finalized, its preferred child is
//!    accepted (its parent is accepted: it is a child of the last accepted block) and
//!    every other child is rejected with all its descendants.
//!
//! The preferred tip follows each instance's preference from the last accepted block.

use super::config::Effective;
use super::messages::Block;
use super::snowball::Snowball;
use primitives::Digest;
use std::collections::{BTreeMap, BTreeSet};

/// One block in the tree.
#[derive(Clone, Debug)]
struct Node {
    /// The block (`None` for the last accepted block after a restart or at genesis,
    /// when only its digest and height are known).
    block: Option<Block>,
    parent: Digest,
    height: u64,
    children: BTreeSet<Digest>,
    /// Over `children`; created with the first child.
    snowball: Option<Snowball>,
}

/// What a poll decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decided {
    /// Blocks accepted, in chain order.
    pub accepted: Vec<Block>,
    /// Blocks rejected (conflicting with an accepted one, or descending from a
    /// rejected one).
    pub rejected: Vec<Digest>,
}

/// Why a block could not join the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// It is in the tree already.
    Known,
    /// Its parent is not in the tree (not processing, not the last accepted).
    UnknownParent,
    /// Its height is not its parent's plus one.
    WrongHeight,
}

/// The last accepted block and the processing blocks above it.
#[derive(Clone, Debug)]
pub struct Tree {
    last_accepted: Digest,
    nodes: BTreeMap<Digest, Node>,
}

impl Tree {
    /// A tree whose last accepted block is `accepted` at `height`.
    pub fn new(accepted: Digest, height: u64, block: Option<Block>) -> Self {
        let root = Node {
            parent: block.as_ref().map_or(Digest::default(), |b| b.parent),
            block,
            height,
            children: BTreeSet::new(),
            snowball: None,
        };
        Tree {
            last_accepted: accepted,
            nodes: BTreeMap::from([(accepted, root)]),
        }
    }

    /// The last accepted block.
    pub fn last_accepted(&self) -> (Digest, u64) {
        (self.last_accepted, self.accepted_height())
    }

    /// The last accepted block's height.
    pub fn accepted_height(&self) -> u64 {
        self.nodes.get(&self.last_accepted).map_or(0, |n| n.height)
    }

    /// Processing blocks.
    pub fn processing(&self) -> usize {
        self.nodes.len().saturating_sub(1)
    }

    /// Whether `digest` is the last accepted block or a processing one.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.nodes.contains_key(digest)
    }

    /// A processing block.
    pub fn block(&self, digest: &Digest) -> Option<&Block> {
        self.nodes.get(digest).and_then(|n| n.block.as_ref())
    }

    /// The height of a block in the tree.
    pub fn height_of(&self, digest: &Digest) -> Option<u64> {
        self.nodes.get(digest).map(|n| n.height)
    }

    /// Add a processing block whose parent is in the tree. The first child of a block
    /// becomes its preferred child.
    pub fn add(&mut self, block: Block) -> Result<(), AddError> {
        let digest = block.digest();
        if self.nodes.contains_key(&digest) {
            return Err(AddError::Known);
        }
        let parent = self
            .nodes
            .get_mut(&block.parent)
            .ok_or(AddError::UnknownParent)?;
        if block.height != parent.height + 1 {
            return Err(AddError::WrongHeight);
        }
        parent.children.insert(digest);
        match &mut parent.snowball {
            Some(s) => s.add(digest),
            None => parent.snowball = Some(Snowball::new(digest)),
        }
        self.nodes.insert(
            digest,
            Node {
                parent: block.parent,
                height: block.height,
                block: Some(block),
                children: BTreeSet::new(),
                snowball: None,
            },
        );
        Ok(())
    }

    /// How many children of `parent` (in the tree) `proposer` proposed.
    pub fn children_by(&self, parent: &Digest, proposer: primitives::NodeId) -> usize {
        self.nodes.get(parent).map_or(0, |n| {
            n.children
                .iter()
                .filter(|c| self.block(c).is_some_and(|b| b.proposer == proposer))
                .count()
        })
    }

    /// The preferred tip: the preferences followed from the last accepted block.
    pub fn preferred_tip(&self) -> (Digest, u64) {
        let mut at = self.last_accepted;
        while let Some(next) = self
            .nodes
            .get(&at)
            .and_then(|n| n.snowball.as_ref())
            .map(Snowball::preference)
        {
            at = next;
        }
        (at, self.height_of(&at).unwrap_or(0))
    }

    /// The preferred block at `height` (the tip if the tip is lower; the last accepted
    /// block if `height` is at or below it).
    pub fn preferred_at(&self, height: u64) -> Digest {
        let mut at = self.last_accepted;
        while let Some(n) = self.nodes.get(&at) {
            if n.height >= height {
                break;
            }
            match n.snowball.as_ref() {
                Some(s) => at = s.preference(),
                None => break,
            }
        }
        at
    }

    /// The processing blocks from `tip` down to (not including) the last accepted.
    pub fn processing_chain(&self, tip: &Digest) -> Vec<&Block> {
        let mut out = Vec::new();
        let mut at = *tip;
        while at != self.last_accepted {
            let Some(n) = self.nodes.get(&at) else { break };
            if let Some(b) = &n.block {
                out.push(b);
            }
            at = n.parent;
        }
        out
    }

    /// The highest processing block that satisfies `pred`, with the descendants of such
    /// blocks preferred over them: the tip of the chain a split side was shown.
    pub fn newest_where(&self, pred: impl Fn(&Digest) -> bool) -> Option<Digest> {
        let matching: Vec<Digest> = self
            .nodes
            .keys()
            .filter(|d| **d != self.last_accepted && pred(d))
            .copied()
            .collect();
        // Extend through descendants (blocks built on the side's block count for it).
        let mut best = matching
            .iter()
            .max_by_key(|d| self.height_of(d))?
            .to_owned();
        loop {
            let next = self
                .nodes
                .get(&best)
                .and_then(|n| n.snowball.as_ref().map(Snowball::preference));
            match next {
                Some(n) => best = n,
                None => return Some(best),
            }
        }
    }

    /// The confidence of the last accepted block's instance (0 without children).
    pub fn root_confidence(&self) -> u64 {
        self.nodes
            .get(&self.last_accepted)
            .and_then(|n| n.snowball.as_ref())
            .map_or(0, Snowball::confidence)
    }

    /// Apply a poll's votes (block digest -> votes, in units of sampled weight; votes
    /// for blocks not in the tree are ignored) and accept what is finalized.
    pub fn record_poll(&mut self, votes: &BTreeMap<Digest, u64>, p: &Effective) -> Decided {
        // 1. Transitive votes: a vote counts for the block and its processing ancestors.
        let mut transitive: BTreeMap<Digest, u64> = BTreeMap::new();
        for (block, count) in votes {
            let mut at = *block;
            while at != self.last_accepted {
                let Some(n) = self.nodes.get(&at) else { break };
                *transitive.entry(at).or_insert(0) += count;
                at = n.parent;
            }
        }
        // 2-3. Walk down the most-voted children.
        let mut current = self.last_accepted;
        while let Some(node) = self.nodes.get(&current) {
            let children: Vec<Digest> = node.children.iter().copied().collect();
            let total: u64 = children
                .iter()
                .map(|c| transitive.get(c).copied().unwrap_or(0))
                .sum();
            if total < p.alpha_preference {
                self.falter_subtree(current);
                break;
            }
            // The most-voted child (the lowest digest on a tie, the same on every node).
            let mut mode = children[0];
            let mut count = 0;
            for c in &children {
                let v = transitive.get(c).copied().unwrap_or(0);
                if v > count {
                    mode = *c;
                    count = v;
                }
            }
            if let Some(s) = self
                .nodes
                .get_mut(&current)
                .and_then(|n| n.snowball.as_mut())
            {
                s.record_poll(count, mode, p);
            }
            for c in children.iter().filter(|c| **c != mode) {
                self.falter_subtree(*c);
            }
            current = mode;
        }
        // 4. Accept while the last accepted block's instance is finalized.
        let mut decided = Decided::default();
        loop {
            let finalized = self
                .nodes
                .get(&self.last_accepted)
                .and_then(|n| n.snowball.as_ref())
                .filter(|s| s.finalized())
                .map(Snowball::preference);
            let Some(child) = finalized else { break };
            if !self.accept_child(child, &mut decided) {
                break;
            }
        }
        decided
    }

    /// Accept `child`, a child of the last accepted block, outside a poll (a node
    /// catching up: f+1 weight of peers accepted it). False if it is not such a child.
    pub fn accept(&mut self, child: Digest) -> Decided {
        let mut decided = Decided::default();
        self.accept_child(child, &mut decided);
        decided
    }

    fn accept_child(&mut self, child: Digest, decided: &mut Decided) -> bool {
        let Some(root) = self.nodes.get(&self.last_accepted) else {
            return false;
        };
        if !root.children.contains(&child) {
            return false;
        }
        let siblings: Vec<Digest> = root
            .children
            .iter()
            .filter(|c| **c != child)
            .copied()
            .collect();
        for s in siblings {
            self.remove_subtree(s, &mut decided.rejected);
        }
        self.nodes.remove(&self.last_accepted);
        self.last_accepted = child;
        if let Some(b) = self.nodes.get(&child).and_then(|n| n.block.clone()) {
            decided.accepted.push(b);
        }
        true
    }

    /// Every instance in the subtree of `root` records an unsuccessful poll.
    fn falter_subtree(&mut self, root: Digest) {
        let mut stack = vec![root];
        while let Some(at) = stack.pop() {
            if let Some(n) = self.nodes.get_mut(&at) {
                if let Some(s) = n.snowball.as_mut() {
                    s.record_unsuccessful_poll();
                }
                stack.extend(n.children.iter().copied());
            }
        }
    }

    fn remove_subtree(&mut self, root: Digest, removed: &mut Vec<Digest>) {
        let mut stack = vec![root];
        while let Some(at) = stack.pop() {
            if let Some(n) = self.nodes.remove(&at) {
                removed.push(at);
                stack.extend(n.children);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::crypto::KeyPair;
    use primitives::{Hasher, NodeId, Round};

    fn params(beta: u64) -> Effective {
        Effective {
            k: 20,
            alpha_preference: 15,
            alpha_confidence: 15,
            beta,
            concurrent_repolls: 4,
            polls_everyone: false,
        }
    }

    fn block(parent: Digest, height: u64, tag: u64) -> Block {
        let keys = KeyPair::from_seed(&[0; 32]);
        let cert = Hasher::new().update_u64(tag).finalize();
        Block::new(
            &keys,
            parent,
            height,
            NodeId(0),
            0,
            vec![(cert, Round(tag))],
        )
    }

    fn vote(d: Digest, n: u64) -> BTreeMap<Digest, u64> {
        BTreeMap::from([(d, n)])
    }

    #[test]
    fn beta_successful_polls_accept_and_a_vote_for_a_descendant_counts_for_its_ancestors() {
        let mut t = Tree::new(Digest::default(), 0, None);
        let a = block(Digest::default(), 1, 1);
        let b = block(a.digest(), 2, 2);
        t.add(a.clone()).unwrap();
        t.add(b.clone()).unwrap();
        assert_eq!(t.preferred_tip(), (b.digest(), 2));
        for _ in 0..2 {
            assert!(t
                .record_poll(&vote(b.digest(), 15), &params(3))
                .accepted
                .is_empty());
        }
        // The third successful poll for b finalizes the root's instance (a) and a's (b).
        let d = t.record_poll(&vote(b.digest(), 15), &params(3));
        assert_eq!(d.accepted, vec![a, b.clone()]);
        assert_eq!(t.last_accepted(), (b.digest(), 2));
        assert_eq!(t.processing(), 0);
    }

    #[test]
    fn a_poll_short_of_alpha_resets_the_path() {
        let mut t = Tree::new(Digest::default(), 0, None);
        let a = block(Digest::default(), 1, 1);
        t.add(a.clone()).unwrap();
        t.record_poll(&vote(a.digest(), 15), &params(3));
        t.record_poll(&vote(a.digest(), 15), &params(3));
        assert_eq!(t.root_confidence(), 2);
        t.record_poll(&vote(a.digest(), 14), &params(3));
        assert_eq!(t.root_confidence(), 0);
        t.record_poll(&vote(a.digest(), 15), &params(3));
        t.record_poll(&vote(a.digest(), 15), &params(3));
        assert_eq!(t.processing(), 1);
        assert_eq!(
            t.record_poll(&vote(a.digest(), 20), &params(3)).accepted,
            vec![a]
        );
    }

    #[test]
    fn accepting_a_block_rejects_its_siblings_and_their_descendants() {
        let mut t = Tree::new(Digest::default(), 0, None);
        let a = block(Digest::default(), 1, 1);
        let a2 = block(Digest::default(), 1, 2);
        let c = block(a2.digest(), 2, 3);
        t.add(a.clone()).unwrap();
        t.add(a2.clone()).unwrap();
        t.add(c.clone()).unwrap();
        // a was first: preferred, until votes for c (through a2) move it.
        assert_eq!(t.preferred_tip().0, a.digest());
        t.record_poll(&vote(c.digest(), 16), &params(2));
        assert_eq!(t.preferred_tip().0, c.digest());
        let d = t.record_poll(&vote(c.digest(), 16), &params(2));
        assert_eq!(d.rejected, vec![a.digest()]);
        // A block on a rejected one has no parent in the tree.
        assert_eq!(t.add(block(a.digest(), 2, 9)), Err(AddError::UnknownParent));
        assert_eq!(t.add(block(c.digest(), 4, 9)), Err(AddError::WrongHeight));
        assert_eq!(d.accepted, vec![a2, c]);
    }

    #[test]
    fn rejecting_a_block_rejects_its_whole_subtree() {
        let mut t = Tree::new(Digest::default(), 0, None);
        let a = block(Digest::default(), 1, 1);
        let b = block(Digest::default(), 1, 2);
        let b1 = block(b.digest(), 2, 3);
        let b2 = block(b1.digest(), 3, 4);
        let b1x = block(b.digest(), 2, 5);
        for x in [&a, &b, &b1, &b2, &b1x] {
            t.add(x.clone()).unwrap();
        }
        let d = t.record_poll(&vote(a.digest(), 20), &params(1));
        assert_eq!(d.accepted, vec![a]);
        let mut rejected = d.rejected.clone();
        rejected.sort();
        let mut want = vec![b.digest(), b1.digest(), b2.digest(), b1x.digest()];
        want.sort();
        assert_eq!(rejected, want);
        assert_eq!(t.processing(), 0);
    }

    #[test]
    fn a_vote_for_an_unknown_block_is_no_vote() {
        let mut t = Tree::new(Digest::default(), 0, None);
        let a = block(Digest::default(), 1, 1);
        t.add(a.clone()).unwrap();
        t.record_poll(&vote(a.digest(), 15), &params(5));
        t.record_poll(
            &vote(Hasher::new().update_u64(77).finalize(), 20),
            &params(5),
        );
        assert_eq!(t.root_confidence(), 0);
        assert_eq!(t.preferred_at(1), a.digest());
        assert_eq!(t.preferred_at(0), Digest::default());
        assert_eq!(t.preferred_at(9), a.digest());
    }
}
