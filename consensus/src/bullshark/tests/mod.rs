//! Tests of the DAG-native cores: the commit rules and the path rule on hand-built
//! DAGs (`rules`), the timing rule (`timing`), and random DAGs delivered in shuffled
//! causal orders, with restarts and garbage collection (`orders`). The DAG builder they
//! share is here.

mod orders;
mod rules;
mod timing;

use super::*;
use crate::core::{Action, CertificateInfo, Event};
use primitives::{Committee, Digest, Hasher, NodeId, Round};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A committee of four (f = 1: f+1 = 2, 2f+1 = 3), equal weights.
pub(super) fn committee() -> Arc<Committee> {
    let (c, _) = Committee::generate(4, 1, &["h".into()], 1000, Some(5)).unwrap();
    Arc::new(c)
}

/// Certificates by hand: `make(round, author, parents)`, digests unique per (round,
/// author, tag).
pub(super) struct Dag {
    pub committee: Arc<Committee>,
    pub schedule: crate::leaders::ProposerSchedule,
    /// Every certificate made, in the order made (a causal order).
    pub made: Vec<CertificateInfo>,
    by_round: BTreeMap<u64, Vec<Digest>>,
}

impl Dag {
    pub fn new() -> Self {
        let committee = committee();
        let genesis: Vec<Digest> = mempool::Certificate::genesis(&committee)
            .iter()
            .map(|c| c.digest())
            .collect();
        Dag {
            schedule: crate::leaders::ProposerSchedule::new(&committee),
            committee,
            made: Vec::new(),
            by_round: BTreeMap::from([(0, genesis)]),
        }
    }

    pub fn id(&self, i: usize) -> NodeId {
        self.committee.id_at(i).unwrap()
    }

    /// The leader of anchor round `r`, as a member index.
    pub fn leader(&self, r: u64) -> usize {
        let l = leader(&self.schedule, Round(r));
        self.committee.index_of(l).unwrap()
    }

    /// A certificate of `round` by member `author` with `parents`.
    pub fn make(&mut self, round: u64, author: usize, parents: Vec<Digest>) -> Digest {
        let digest = Hasher::new()
            .update(b"test.dag")
            .update_u64(round)
            .update_u64(author as u64)
            .update_u64(self.made.len() as u64)
            .finalize();
        let id = self.id(author);
        self.made.push(CertificateInfo {
            digest,
            round: Round(round),
            author: id,
            weight: self.committee.weight(id),
            parents,
        });
        self.by_round.entry(round).or_default().push(digest);
        digest
    }

    /// The certificates of `round` made so far.
    pub fn round(&self, round: u64) -> Vec<Digest> {
        self.by_round.get(&round).cloned().unwrap_or_default()
    }

    /// A full round: every member in `authors` with every certificate of the round
    /// below as parents.
    pub fn full_round(&mut self, round: u64, authors: &[usize]) -> Vec<Digest> {
        let parents = self.round(round - 1);
        authors
            .iter()
            .map(|a| self.make(round, *a, parents.clone()))
            .collect()
    }

    /// Full rounds `from..=to` by all four members.
    pub fn full_rounds(&mut self, from: u64, to: u64) {
        for r in from..=to {
            self.full_round(r, &[0, 1, 2, 3]);
        }
    }
}

/// A Bullshark replica (member 0) with the default configuration.
pub(super) fn bullshark(dag: &Dag) -> DagOrderer {
    DagOrderer::new(
        dag.id(0),
        dag.committee.clone(),
        Variant::Bullshark(Config::default()),
        &[],
        None,
        "bullshark",
    )
    .unwrap()
}

/// A Tusk replica (member 0).
pub(super) fn tusk(dag: &Dag) -> DagOrderer {
    DagOrderer::new(
        dag.id(0),
        dag.committee.clone(),
        Variant::Tusk,
        &[],
        None,
        "tusk",
    )
    .unwrap()
}

/// Deliver certificates; the anchors committed, in order.
pub(super) fn feed(r: &mut DagOrderer, certs: &[CertificateInfo]) -> Vec<(Digest, Round)> {
    let mut out = Vec::new();
    for c in certs {
        out.extend(commits(&r.handle(Event::Certificate(c.clone()))));
    }
    out
}

/// The anchors committed by some actions.
pub(super) fn commits(actions: &[Action<Message>]) -> Vec<(Digest, Round)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Commit { anchors, .. } => anchors.first().copied(),
            _ => None,
        })
        .collect()
}
