//! The vote keeper of one height: prevotes and precommits by round and value, weighed,
//! one per voter and kind per round (a second, different one is kept as evidence and not
//! counted), and who sent anything in each round (the round-skip rule, line 55).
//!
//! Thresholds are by weight: a *quorum* is 2f+1 (`Committee::quorum_threshold`), a
//! *validity* weight f+1 (`Committee::validity_threshold`). [`VoteKeeper::add`] reports
//! each threshold the first time it is crossed in a round, once; the queries answer
//! whether it holds at any later time.

use super::messages::{Vote, VoteKind};
use crate::votes::{Added, VoteAggregator};
use primitives::crypto::PartialSignature;
use primitives::{Committee, Digest, NodeId, Weight};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Most conflicting votes kept as evidence per height.
const MAX_EVIDENCE: usize = 64;

/// A threshold crossed in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Threshold {
    /// 2f+1 votes of this kind, for anything (lines 34, 47).
    Any(VoteKind),
    /// 2f+1 votes of this kind for nil (line 44).
    Nil(VoteKind),
    /// 2f+1 votes of this kind for one value (a polka for prevotes, lines 28 and 36; a
    /// commit for precommits, line 49).
    Value(VoteKind, Digest),
    /// f+1 members sent some message of this round (line 55).
    Skip,
}

/// What adding a vote did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// Counted; these thresholds of its round were crossed for the first time.
    Counted(Vec<Threshold>),
    /// The voter already cast exactly this vote.
    Duplicate,
    /// The voter already cast another vote of this kind in this round (`earlier`): kept
    /// as evidence, not counted.
    Equivocation {
        /// The value of its first vote.
        earlier: Option<Digest>,
    },
}

/// Votes of one height.
#[derive(Clone, Debug)]
pub struct VoteKeeper {
    committee: Arc<Committee>,
    votes: VoteAggregator<(u64, VoteKind), Option<Digest>, PartialSignature>,
    /// Members heard from in each round (any message of the height).
    senders: BTreeMap<u64, BTreeSet<NodeId>>,
    fired: BTreeSet<(u64, Threshold)>,
    /// Rounds in which some value has a quorum of precommits, and that value.
    decisive: BTreeMap<u64, Digest>,
    evidence: Vec<(Vote, Option<Digest>)>,
}

impl VoteKeeper {
    /// An empty keeper for `committee`.
    pub fn new(committee: Arc<Committee>) -> Self {
        VoteKeeper {
            committee,
            votes: VoteAggregator::default(),
            senders: BTreeMap::new(),
            fired: BTreeSet::new(),
            decisive: BTreeMap::new(),
            evidence: Vec::new(),
        }
    }

    fn fire(&mut self, round: u64, t: Threshold, out: &mut Vec<Threshold>) {
        if self.fired.insert((round, t)) {
            out.push(t);
        }
    }

    /// `from` sent a message (proposal or vote) of `round`; reports [`Threshold::Skip`]
    /// the first time f+1 weight has.
    pub fn heard(&mut self, round: u64, from: NodeId) -> Option<Threshold> {
        let senders = self.senders.entry(round).or_default();
        if !senders.insert(from) {
            return None;
        }
        let weight = self.committee.weight_of(senders.iter());
        let mut out = Vec::new();
        if weight >= self.committee.validity_threshold() {
            self.fire(round, Threshold::Skip, &mut out);
        }
        out.pop()
    }

    /// Count a (verified) vote of this height.
    pub fn add(&mut self, vote: &Vote) -> AddOutcome {
        let mut out = Vec::new();
        if let Some(t) = self.heard(vote.round, vote.voter) {
            out.push(t);
        }
        let instance = (vote.round, vote.kind);
        let added = self.votes.add(
            &self.committee,
            instance,
            vote.value,
            vote.voter,
            vote.signature,
        );
        match added {
            Added::Duplicate => AddOutcome::Duplicate,
            Added::Conflicting { earlier } => {
                if self.evidence.len() < MAX_EVIDENCE {
                    self.evidence.push((vote.clone(), earlier));
                }
                AddOutcome::Equivocation { earlier }
            }
            Added::Counted { after, .. } => {
                let quorum = self.committee.quorum_threshold();
                if self.votes.total(&instance) >= quorum {
                    self.fire(vote.round, Threshold::Any(vote.kind), &mut out);
                }
                if after >= quorum {
                    match vote.value {
                        None => self.fire(vote.round, Threshold::Nil(vote.kind), &mut out),
                        Some(v) => {
                            self.fire(vote.round, Threshold::Value(vote.kind, v), &mut out);
                            if vote.kind == VoteKind::Precommit {
                                self.decisive.entry(vote.round).or_insert(v);
                            }
                        }
                    }
                }
                AddOutcome::Counted(out)
            }
        }
    }

    fn quorum(&self, w: Weight) -> bool {
        w >= self.committee.quorum_threshold()
    }

    /// The weight of the `kind` votes of `round` held, for any value (nil included).
    pub fn weight(&self, round: u64, kind: VoteKind) -> primitives::Weight {
        self.votes.total(&(round, kind))
    }

    /// 2f+1 votes of `kind` in `round`, for anything.
    pub fn any(&self, round: u64, kind: VoteKind) -> bool {
        self.quorum(self.votes.total(&(round, kind)))
    }

    /// 2f+1 votes of `kind` in `round` for `value` (`None`: nil).
    pub fn has(&self, round: u64, kind: VoteKind, value: Option<&Digest>) -> bool {
        self.quorum(self.votes.weight(&(round, kind), &value.copied()))
    }

    /// Rounds with 2f+1 precommits for one value, and that value (line 49 holds for any
    /// of them once the proposal is in hand).
    pub fn decisive(&self) -> impl Iterator<Item = (u64, Digest)> + '_ {
        self.decisive.iter().map(|(r, v)| (*r, *v))
    }

    /// The highest round above `current` from which f+1 weight sent messages (line 55).
    pub fn skip_to(&self, current: u64) -> Option<u64> {
        let threshold = self.committee.validity_threshold();
        self.senders
            .range(current.saturating_add(1)..)
            .rev()
            .find(|(_, s)| self.committee.weight_of(s.iter()) >= threshold)
            .map(|(r, _)| *r)
    }

    /// The precommit shares for `value` in `round` (a commit certificate's signatures).
    pub fn precommit_shares(&self, round: u64, value: &Digest) -> Vec<(NodeId, PartialSignature)> {
        self.shares(round, VoteKind::Precommit, value)
    }

    /// The `kind` votes for `value` in `round`, as (voter, signature).
    pub fn shares(
        &self,
        round: u64,
        kind: VoteKind,
        value: &Digest,
    ) -> Vec<(NodeId, PartialSignature)> {
        self.votes.shares(&(round, kind), &Some(*value))
    }

    /// Conflicting votes seen (the second vote and the value of the first).
    pub fn evidence(&self) -> &[(Vote, Option<Digest>)] {
        &self.evidence
    }

    /// Vote instances (round, kind) held.
    pub fn instances(&self) -> usize {
        self.votes.instances()
    }
}
