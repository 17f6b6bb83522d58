//! The core's view of the DAG: every certificate the mempool delivered above the GC
//! horizon, by round and author, with its parents (its votes) and its author's weight.
//! It answers the two questions the commit rules ask: how much weight of a round's
//! certificates votes for a vertex (has it as a parent), and whether a path of parent
//! edges leads from one vertex down to another.

use crate::core::CertificateInfo;
use primitives::{Digest, NodeId, Round, Weight};
use std::collections::{BTreeMap, BTreeSet};

/// A certificate as the core keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vertex {
    /// The certificate's digest.
    pub digest: Digest,
    /// Its round.
    pub round: Round,
    /// Its author.
    pub author: NodeId,
    /// The author's weight.
    pub weight: Weight,
    /// Its parents (certificates of `round - 1`): its votes.
    pub parents: BTreeSet<Digest>,
}

impl From<CertificateInfo> for Vertex {
    fn from(c: CertificateInfo) -> Self {
        Vertex {
            digest: c.digest,
            round: c.round,
            author: c.author,
            weight: c.weight,
            parents: c.parents.into_iter().collect(),
        }
    }
}

/// The local DAG.
#[derive(Debug, Default)]
pub struct LocalDag {
    vertices: BTreeMap<Digest, Vertex>,
    /// The first certificate of each (round, author): the one the rules look at. (An
    /// honest majority certifies at most one per author and round; beyond the fault
    /// bound a second is kept for paths but never replaces the first.)
    by_round: BTreeMap<Round, BTreeMap<NodeId, Digest>>,
    /// Certificates at or below this round are gone (the mempool collected them).
    gc_round: Round,
}

impl LocalDag {
    /// Add a certificate; false if it is known already or below the horizon.
    pub fn insert(&mut self, vertex: Vertex) -> bool {
        if vertex.round <= self.gc_round && self.gc_round > Round(0) {
            return false;
        }
        if self.vertices.contains_key(&vertex.digest) {
            return false;
        }
        self.by_round
            .entry(vertex.round)
            .or_default()
            .entry(vertex.author)
            .or_insert(vertex.digest);
        self.vertices.insert(vertex.digest, vertex);
        true
    }

    /// The certificate with this digest.
    pub fn get(&self, digest: &Digest) -> Option<&Vertex> {
        self.vertices.get(digest)
    }

    /// `author`'s certificate of `round`.
    pub fn at(&self, round: Round, author: NodeId) -> Option<&Vertex> {
        let digest = self.by_round.get(&round)?.get(&author)?;
        self.vertices.get(digest)
    }

    /// The certificates of `round` (one per author).
    pub fn round(&self, round: Round) -> impl Iterator<Item = &Vertex> + '_ {
        self.by_round
            .get(&round)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|d| self.vertices.get(d))
    }

    /// Total weight of the certificates of `round`.
    pub fn round_weight(&self, round: Round) -> Weight {
        Weight(self.round(round).map(|v| v.weight.0).sum())
    }

    /// Weight of the certificates of `round` that have (`votes`) or have not (`!votes`)
    /// `target` as a parent.
    pub fn votes(&self, target: &Digest, round: Round, votes: bool) -> Weight {
        Weight(
            self.round(round)
                .filter(|v| v.parents.contains(target) == votes)
                .map(|v| v.weight.0)
                .sum(),
        )
    }

    /// Whether a path of parent edges leads from `from` down to `to` (a vertex is
    /// linked to itself). Only vertices at or above `to`'s round are walked.
    pub fn linked(&self, from: &Digest, to: &Digest) -> bool {
        let Some(target) = self.vertices.get(to) else {
            return false;
        };
        let mut frontier: BTreeSet<Digest> = BTreeSet::from([*from]);
        let mut seen: BTreeSet<Digest> = BTreeSet::new();
        while let Some(d) = frontier.pop_first() {
            if d == *to {
                return true;
            }
            if !seen.insert(d) {
                continue;
            }
            let Some(v) = self.vertices.get(&d) else {
                continue;
            };
            if v.round <= target.round {
                continue;
            }
            frontier.extend(v.parents.iter().filter(|p| !seen.contains(*p)));
        }
        false
    }

    /// The highest round whose certificates carry at least `threshold` weight (0, the
    /// genesis round, which every member holds, if none).
    pub fn highest_round_with(&self, threshold: Weight) -> Round {
        self.by_round
            .keys()
            .rev()
            .copied()
            .find(|r| self.round_weight(*r) >= threshold)
            .unwrap_or(Round(0))
    }

    /// The lowest round holding a certificate, if any.
    pub fn lowest_round(&self) -> Option<Round> {
        self.by_round.keys().next().copied()
    }

    /// The mempool collected every round at or below `gc_round`: forget them.
    pub fn prune(&mut self, gc_round: Round) {
        if gc_round <= self.gc_round {
            return;
        }
        self.gc_round = gc_round;
        let kept = self
            .by_round
            .split_off(&Round(gc_round.0.saturating_add(1)));
        let gone = std::mem::replace(&mut self.by_round, kept);
        for digests in gone.into_values() {
            for d in digests.into_values() {
                self.vertices.remove(&d);
            }
        }
        // Second certificates of an (author, round), not in `by_round`.
        self.vertices.retain(|_, v| v.round > gc_round);
    }

    /// (certificates held, rounds held).
    pub fn sizes(&self) -> (usize, usize) {
        (self.vertices.len(), self.by_round.len())
    }
}
