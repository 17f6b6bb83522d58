//! The local DAG of certificates, as delivered (every certificate here has all its
//! parents here too, or they are below the garbage-collection horizon).

use crate::messages::Certificate;
use primitives::{Committee, Digest, NodeId, Round};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Certificates by round and author, with an index by digest.
///
/// Invariant: a certificate is inserted only after all its parents are present or
/// below [`Dag::gc_round`]; so walking parents from any certificate stays inside the
/// DAG until the horizon.
#[derive(Debug)]
pub struct Dag {
    rounds: BTreeMap<Round, BTreeMap<NodeId, Certificate>>,
    index: HashMap<Digest, (Round, NodeId)>,
    gc_round: Round,
}

impl Dag {
    /// A DAG holding the genesis certificates.
    pub fn new(committee: &Committee) -> Self {
        let mut dag = Dag {
            rounds: BTreeMap::new(),
            index: HashMap::new(),
            gc_round: Round(0),
        };
        for c in Certificate::genesis(committee) {
            dag.insert(c);
        }
        dag
    }

    /// Rounds at or below this have been garbage collected (round 0 is kept until the
    /// first collection).
    pub fn gc_round(&self) -> Round {
        self.gc_round
    }

    /// Whether the certificate is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.index.contains_key(digest)
    }

    /// A certificate by digest.
    pub fn get(&self, digest: &Digest) -> Option<&Certificate> {
        let (round, author) = self.index.get(digest)?;
        self.rounds.get(round)?.get(author)
    }

    /// The certificates of one round, by author.
    pub fn round(&self, round: Round) -> Option<&BTreeMap<NodeId, Certificate>> {
        self.rounds.get(&round)
    }

    /// The highest round with any certificate.
    pub fn highest_round(&self) -> Round {
        self.rounds.keys().next_back().copied().unwrap_or_default()
    }

    /// Number of certificates held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the DAG holds nothing (never true: genesis is inserted at creation).
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Number of rounds held.
    pub fn rounds_held(&self) -> usize {
        self.rounds.len()
    }

    /// Digests of `certificate`'s parents that are neither present nor below the horizon.
    pub fn missing_parents(&self, certificate: &Certificate) -> BTreeSet<Digest> {
        let parent_round = certificate.round().prev();
        if parent_round <= self.gc_round && parent_round != Round(0) {
            return BTreeSet::new();
        }
        certificate
            .header
            .parents
            .iter()
            .filter(|p| !self.index.contains_key(*p))
            .copied()
            .collect()
    }

    pub(crate) fn insert(&mut self, certificate: Certificate) {
        let digest = certificate.digest();
        let (round, author) = (certificate.round(), certificate.author());
        self.index.insert(digest, (round, author));
        if let Some(old) = self
            .rounds
            .entry(round)
            .or_default()
            .insert(author, certificate)
        {
            // Two certificates from one author in one round would need two quorums of
            // votes, impossible with at most f faulty; keep the index consistent anyway.
            if old.digest() != digest {
                self.index.remove(&old.digest());
            }
        }
    }

    /// Drop every round at or below `gc_round`; returns what was dropped.
    pub(crate) fn collect_garbage(&mut self, gc_round: Round) -> Vec<Certificate> {
        if gc_round <= self.gc_round {
            return vec![];
        }
        self.gc_round = gc_round;
        let keep = self.rounds.split_off(&gc_round.next());
        let dropped = std::mem::replace(&mut self.rounds, keep);
        let mut out = Vec::new();
        for (_, certs) in dropped {
            for (_, c) in certs {
                self.index.remove(&c.digest());
                out.push(c);
            }
        }
        out
    }

    /// The causal history of `root` (itself included) that is still in the DAG, except
    /// certificates for which `skip` is true and their ancestors reached only through
    /// them, in a deterministic order: by round, then by author.
    pub fn causal_history(
        &self,
        root: &Digest,
        skip: impl Fn(&Digest) -> bool,
    ) -> Vec<Certificate> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![*root];
        let mut out = Vec::new();
        while let Some(digest) = stack.pop() {
            if !seen.insert(digest) || skip(&digest) {
                continue;
            }
            let Some(c) = self.get(&digest) else {
                continue;
            };
            if c.round() == Round(0) {
                continue;
            }
            stack.extend(c.header.parents.iter().copied());
            out.push(c.clone());
        }
        out.sort_by_key(|c| (c.round(), c.author()));
        out
    }
}
