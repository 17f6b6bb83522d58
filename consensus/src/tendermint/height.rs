//! The height driver: one height's message log (the proposals of each round, the vote
//! keeper) multiplexed into the round machine's inputs.
//!
//! After anything changes (a proposal, a vote, a certificate that makes a proposal
//! valid, a timeout, a new round) the driver feeds the machine every input whose
//! "upon" condition holds on the log, in the paper's order, until the state stops
//! changing. The machine's guards decide what fires, so feeding an input twice is
//! harmless; what the driver must get right is only the conditions themselves.

use super::messages::{Block, Proposal, Vote, VoteKind};
use super::round_machine::{apply, Input, Output, RoundState, Step};
use super::vote_keeper::{AddOutcome, VoteKeeper};
use crate::payload::Availability;
use primitives::{Committee, Digest, NodeId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Rounds above the current one whose messages are kept (beyond: dropped, counted).
pub const ROUND_WINDOW: u64 = 256;
/// Most passes over the rules after one event (each pass that changes the state moves
/// the step or the round forward, so a handful suffice).
const MAX_PASSES: usize = 16;

/// What a message did to the height's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Logged {
    /// Recorded (or already known).
    Ok,
    /// Its round is too far ahead of the current one.
    TooFarAhead,
    /// The round's proposer sent a second, different proposal (evidence).
    ProposalEquivocation,
    /// The voter sent a second, different vote of this kind in this round (evidence).
    VoteEquivocation,
}

/// What the rules need from the outside, answered by the core.
pub trait Environment {
    /// `proposer(h_p, r) = p`.
    fn is_proposer(&self, round: u64) -> bool;
    /// Whether the certificates a value names are held (`valid(v)`).
    fn availability(&self, value: &Block) -> Availability;
}

/// One height in progress.
pub struct Height {
    /// The round machine's state.
    pub state: RoundState,
    /// The votes.
    pub keeper: VoteKeeper,
    /// The first proposal of each round (from its proposer).
    proposals: BTreeMap<u64, Proposal>,
    /// Values known by `id(v)` (from proposals, or a decision a peer sent).
    values: BTreeMap<Digest, Block>,
    /// Values whose certificates are missing (fetched once).
    missing: BTreeMap<Digest, Vec<Digest>>,
}

impl Height {
    /// Height `height`, not started, with `state` (a fresh one, or the persisted one of a
    /// restart) and `valid_value` (the full `validValue_p`, if any).
    pub fn new(committee: Arc<Committee>, state: RoundState, valid_value: Option<Block>) -> Self {
        let mut values = BTreeMap::new();
        if let Some(v) = valid_value {
            values.insert(v.digest(), v);
        }
        Height {
            state,
            keeper: VoteKeeper::new(committee),
            proposals: BTreeMap::new(),
            values,
            missing: BTreeMap::new(),
        }
    }

    /// Whether the proposal of `round` is held.
    pub fn has_proposal(&self, round: u64) -> bool {
        self.proposals.contains_key(&round)
    }

    /// How many proposed values wait for DAG certificates.
    pub fn values_missing_certificates(&self) -> usize {
        self.missing.len()
    }

    /// `h_p`.
    pub fn height(&self) -> u64 {
        self.state.height
    }

    /// A value known by `id(v)`.
    pub fn value(&self, digest: &Digest) -> Option<&Block> {
        self.values.get(digest)
    }

    /// Remember a full value (the node's own fresh proposal, or a decided one).
    pub fn learn_value(&mut self, value: Block) {
        self.values.entry(value.digest()).or_insert(value);
    }

    fn in_window(&self, round: u64) -> bool {
        round <= self.state.round.saturating_add(ROUND_WINDOW)
    }

    /// Log a verified proposal of this height.
    pub fn add_proposal(&mut self, proposal: Proposal) -> Logged {
        if !self.in_window(proposal.round) {
            return Logged::TooFarAhead;
        }
        self.keeper.heard(proposal.round, proposal.author);
        let digest = proposal.value.digest();
        if let Some(first) = self.proposals.get(&proposal.round) {
            return if first.value.digest() == digest {
                Logged::Ok
            } else {
                Logged::ProposalEquivocation
            };
        }
        self.values.entry(digest).or_insert(proposal.value.clone());
        self.proposals.insert(proposal.round, proposal);
        Logged::Ok
    }

    /// Log a verified vote of this height.
    pub fn add_vote(&mut self, vote: &Vote) -> Logged {
        if !self.in_window(vote.round) {
            return Logged::TooFarAhead;
        }
        match self.keeper.add(vote) {
            AddOutcome::Equivocation { .. } => Logged::VoteEquivocation,
            _ => Logged::Ok,
        }
    }

    /// `valid(v)` of a known value: `Some(true/false)`, or `None` while certificates are
    /// missing (recorded for [`Height::take_missing`]).
    fn validity(&mut self, digest: &Digest, env: &impl Environment) -> Option<bool> {
        let value = self.values.get(digest)?;
        match env.availability(value) {
            Availability::Available => {
                self.missing.remove(digest);
                Some(true)
            }
            Availability::WrongRound(_) => Some(false),
            Availability::Missing(m) => {
                self.missing.entry(*digest).or_insert(m);
                None
            }
        }
    }

    /// Every input whose condition holds now, in the paper's order.
    fn enabled(&mut self, env: &impl Environment) -> Vec<Input> {
        let mut inputs = Vec::new();
        let round = self.state.round;
        // 49: a value with 2f+1 precommits in some round, in hand and valid.
        let decisive: Vec<(u64, Digest)> = self.keeper.decisive().collect();
        for (r, value) in decisive {
            if let Some(valid) = self.validity(&value, env) {
                inputs.push(Input::ProposalWithCommit {
                    round: r,
                    value,
                    valid,
                });
            }
        }
        // 55.
        if let Some(r) = self.keeper.skip_to(round) {
            inputs.push(Input::SkipRound(r));
        }
        // 22, 28, 36: the proposal of the current round, once its validity is known.
        if let Some(p) = self.proposals.get(&round) {
            let value = p.value.digest();
            let vr = p.valid_round;
            if let Some(valid) = self.validity(&value, env) {
                match vr {
                    None => inputs.push(Input::Proposal { value, valid }),
                    Some(vr) if self.keeper.has(vr, VoteKind::Prevote, Some(&value)) => inputs
                        .push(Input::ProposalWithPolka {
                            value,
                            valid_round: vr,
                            valid,
                        }),
                    Some(_) => {}
                }
                if self.keeper.has(round, VoteKind::Prevote, Some(&value)) {
                    inputs.push(Input::ProposalWithPolkaCurrent { value, valid });
                }
            }
        }
        // 34, 44, 47.
        if self.keeper.any(round, VoteKind::Prevote) {
            inputs.push(Input::PolkaAny);
        }
        if self.keeper.has(round, VoteKind::Prevote, None) {
            inputs.push(Input::PolkaNil);
        }
        if self.keeper.any(round, VoteKind::Precommit) {
            inputs.push(Input::PrecommitAny);
        }
        inputs
    }

    /// Feed `first` (if any), then every enabled input until nothing changes; the
    /// outputs in order. Stops at a decision (the core moves to the next height).
    pub fn step(&mut self, first: Option<Input>, env: &impl Environment) -> Vec<Output> {
        let mut outputs = Vec::new();
        let is_proposer = |r: u64| env.is_proposer(r);
        if let Some(input) = first {
            let (s, out) = apply(&self.state, input, is_proposer);
            self.state = s;
            outputs.extend(out);
        }
        if self.state.step == Step::Unstarted {
            // Nothing but a decision (49) or a round skip (55) applies before the
            // height's first round starts.
            let inputs: Vec<Input> = self
                .enabled(env)
                .into_iter()
                .filter(|i| matches!(i, Input::ProposalWithCommit { .. } | Input::SkipRound(_)))
                .collect();
            for input in inputs {
                let (s, out) = apply(&self.state, input, is_proposer);
                self.state = s;
                outputs.extend(out);
            }
            if self.state.step == Step::Unstarted || self.state.step == Step::Decided {
                return outputs;
            }
        }
        for _ in 0..MAX_PASSES {
            let before = self.state.clone();
            for input in self.enabled(env) {
                let round = self.state.round;
                let (s, out) = apply(&self.state, input, is_proposer);
                self.state = s;
                outputs.extend(out);
                if self.state.step == Step::Decided {
                    return outputs;
                }
                if self.state.round != round {
                    // The other inputs were computed for the old round.
                    break;
                }
            }
            if self.state == before {
                break;
            }
        }
        outputs
    }

    /// Certificates of known values that are missing (each value reported once).
    pub fn take_missing(&mut self) -> Vec<(Digest, Vec<Digest>)> {
        let mut out = Vec::new();
        for (value, missing) in self.missing.iter_mut() {
            if !missing.is_empty() {
                out.push((*value, std::mem::take(missing)));
            }
        }
        out
    }

    /// The author of the proposal that carried `value` (who holds its certificates).
    pub fn author_of(&self, value: &Digest) -> Option<NodeId> {
        self.proposals
            .values()
            .find(|p| p.value.digest() == *value)
            .map(|p| p.author)
    }

    /// A round with 2f+1 precommits for a value this node does not have.
    pub fn decided_elsewhere(&self) -> bool {
        self.keeper
            .decisive()
            .any(|(_, v)| !self.values.contains_key(&v))
    }

    /// Sizes: (proposals, values, vote instances).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.proposals.len(),
            self.values.len(),
            self.keeper.instances(),
        )
    }
}
