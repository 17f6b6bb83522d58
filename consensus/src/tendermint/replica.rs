//! The round machine's outputs as actions: proposing (`getValue()` is the pending DAG
//! certificates), signing and broadcasting votes after persisting them, scheduling
//! timeouts, and deciding (lines 49-54: commit, then the next height).

use super::core::{
    kind_index, timer_of, Tendermint, PRECOMMIT_TIMER, PREVOTE_TIMER, PROPOSE_TIMER,
};
use super::height::Height;
use super::messages::{Block, Decision, Message, Proposal, Vote, VoteKind};
use super::round_machine::{Output, RoundState};
use crate::core::{Action, Delivery};
use primitives::crypto::QuorumCertificate;
use primitives::Digest;

/// Reliable-delivery keys: each supersedes the previous message of its kind to a peer.
const PROPOSAL_KEY: u64 = 1;
const PREVOTE_KEY: u64 = 2;
const PRECOMMIT_KEY: u64 = 3;

/// Whether an output makes the node sign something.
pub(super) fn signs(output: &Output) -> bool {
    matches!(output, Output::Propose { .. } | Output::Vote { .. })
}

/// A broadcast resent until acknowledged (or superseded by the next of its kind).
pub(super) fn reliable_broadcast(message: Message) -> Action<Message> {
    let key = match &message {
        Message::Proposal(_) => PROPOSAL_KEY,
        Message::Vote(v) if v.kind == VoteKind::Prevote => PREVOTE_KEY,
        _ => PRECOMMIT_KEY,
    };
    Action::Broadcast {
        message,
        delivery: Delivery::Reliable { key },
    }
}

impl Tendermint {
    pub(super) fn perform(&mut self, output: Output, out: &mut Vec<Action<Message>>) {
        match output {
            Output::Propose { round, valid } => self.propose(round, valid, out),
            Output::Vote { kind, round, value } => self.vote(kind, round, value, out),
            Output::Schedule { kind, round } => {
                self.scheduled[kind_index(kind)] = Some((self.height.height(), round));
                out.push(Action::SetTimer {
                    id: timer_of(kind),
                    after: self.config.timeout(kind, round),
                });
            }
            Output::Decide { round, value } => self.decide_current(round, value, out),
        }
    }

    /// Lines 14-19.
    fn propose(
        &mut self,
        round: u64,
        valid: Option<(u64, Digest)>,
        out: &mut Vec<Action<Message>>,
    ) {
        let h = self.height.height();
        if self
            .signed
            .iter()
            .any(|m| matches!(m, Message::Proposal(p) if p.height == h && p.round == round))
        {
            return; // proposed in this round already (before a restart)
        }
        let (value, valid_round) =
            match valid.and_then(|(vr, v)| Some((vr, self.height.value(&v)?.clone()))) {
                Some((vr, value)) => (value, Some(vr)),
                None => (
                    Block {
                        height: h,
                        payload: self.payload.next_payload(self.config.max_block_payload),
                    },
                    None,
                ),
            };
        let proposal = Proposal::new(&self.keys, self.id, round, value, valid_round);
        tracing::debug!(node = %self.id, height = h, round, payload = proposal.value.payload.len(), ?valid_round, "proposing");
        self.progress.proposals += 1;
        let message = Message::Proposal(proposal);
        if !self.sign(message.clone(), out) {
            return;
        }
        out.push(reliable_broadcast(message.clone()));
        if valid_round.is_some() {
            // The proof of lock with the re-proposal: peers that missed those prevotes
            // could not prevote it (line 28).
            if let Some(polka) = self.polka() {
                out.push(Action::broadcast(polka));
            }
        }
        let me = self.id;
        self.log(me, message, out);
    }

    /// Sign and broadcast a vote (never a second, different one in a round).
    fn vote(
        &mut self,
        kind: VoteKind,
        round: u64,
        value: Option<Digest>,
        out: &mut Vec<Action<Message>>,
    ) {
        let h = self.height.height();
        if let Some(earlier) = self.signed_vote(kind, round) {
            if earlier.value != value {
                tracing::error!(node = %self.id, height = h, round, ?kind, "refusing to sign a second, different vote");
            }
            return;
        }
        let vote = Vote::new(&self.keys, self.id, kind, h, round, value, self.scheme);
        tracing::trace!(node = %self.id, height = h, round, ?kind, ?value, "vote");
        let message = Message::Vote(vote);
        if !self.sign(message.clone(), out) {
            return;
        }
        out.push(reliable_broadcast(message.clone()));
        let me = self.id;
        self.log(me, message, out);
    }

    /// Record `message` as signed and persist it; `false` (forgotten again, not to be
    /// sent) when the state cannot be persisted.
    fn sign(&mut self, message: Message, out: &mut Vec<Action<Message>>) -> bool {
        self.signed.push(message);
        if self.persist(out) {
            return true;
        }
        self.signed.pop();
        false
    }

    /// Line 49 fired at the current height: decide with the commit certificate the
    /// precommits in hand make.
    fn decide_current(&mut self, round: u64, value: Digest, out: &mut Vec<Action<Message>>) {
        let Some(block) = self.height.value(&value).cloned() else {
            return;
        };
        let shares = self.height.keeper.precommit_shares(round, &value);
        let Ok(precommits) = QuorumCertificate::from_shares(&self.committee, self.scheme, &shares)
        else {
            return;
        };
        let decision = Decision {
            round,
            value: block,
            precommits,
        };
        self.decide(decision, out);
    }

    /// Lines 50-54: deliver the value, move to the next height (lock and valid reset),
    /// and start it if it may start.
    pub(super) fn decide(&mut self, decision: Decision, out: &mut Vec<Action<Message>>) {
        let h = decision.height();
        if h != self.height.height() {
            return;
        }
        tracing::debug!(node = %self.id, height = h, round = decision.round, anchors = decision.value.payload.len(), "decide");
        self.payload.mark_carried(&decision.value.payload);
        out.push(Action::Commit {
            block: decision.value.digest(),
            height: h,
            anchors: decision.value.payload.clone(),
        });
        self.progress.decided += 1;
        self.sync.remember(decision);
        // 52-53.
        self.height = Height::new(self.committee.clone(), RoundState::new(h + 1), None);
        self.signed.clear();
        self.scheduled = [None; 3];
        for id in [PROPOSE_TIMER, PREVOTE_TIMER, PRECOMMIT_TIMER] {
            out.push(Action::CancelTimer { id });
        }
        // Nothing depends on it yet: the next height's first vote persists again.
        let _ = self.persist(out);
        // 54, after what was buffered for this height.
        let buffered = self.sync.take_buffered(h + 1);
        let heard = !buffered.is_empty();
        for (from, message) in buffered {
            self.log(from, message, out);
        }
        self.maybe_start(heard, out);
        self.run(None, out);
        self.try_pending_decisions(out);
    }

    /// Ask the mempool for the certificates of values whose validity waits on them.
    pub(super) fn fetch_missing(&mut self, out: &mut Vec<Action<Message>>) {
        for (value, digests) in self.height.take_missing() {
            let from = self.height.author_of(&value).unwrap_or(self.id);
            tracing::trace!(node = %self.id, height = self.height.height(), %value, missing = digests.len(), "value waits for certificates");
            out.push(Action::FetchCertificates { digests, from });
        }
    }
}
