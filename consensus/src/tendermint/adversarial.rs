//! How a Tendermint replica lies: the [`Adversarial`] hooks the Byzantine behaviours use.
//! An equivocating proposer signs two values for one (height, round); a double voter
//! prevotes *and* precommits every conflicting value it sees (with f+1 such colluders,
//! each half of the honest members can decide its own value, and the checkers must see
//! it); withheld votes and broken signatures come from the shared wrapper.

use super::core::Tendermint;
use super::messages::{Block, Message, Proposal, Vote, VoteKind};
use crate::byzantine::{Adversarial, MessageKind};
use primitives::crypto::{ed25519, PartialSignature};
use primitives::{Digest, NodeId};

fn flip(signature: &mut ed25519::Signature) {
    signature.0[0] ^= 0x01;
}

/// A vote's instance for the behaviours and the cluster's double-signing check: one
/// prevote and one precommit per (height, round).
fn vote_instance(v: &Vote) -> (u64, u64) {
    let kind = match v.kind {
        VoteKind::Prevote => 0,
        VoteKind::Precommit => 1,
    };
    (v.height, v.round.saturating_mul(2).saturating_add(kind))
}

impl Adversarial for Tendermint {
    fn twins_instance(&self) -> u64 {
        self.current_height()
    }

    fn kind(message: &Message) -> MessageKind {
        match message {
            Message::Proposal(p) => {
                let block = p.value.digest();
                MessageKind::Proposal {
                    instance: (p.height, p.round),
                    block,
                    parent: block,
                }
            }
            Message::Vote(v) => MessageKind::Vote {
                instance: vote_instance(v),
                block: v.value.unwrap_or(Digest::default()),
            },
            _ => MessageKind::Other,
        }
    }

    fn conflicting_proposal(&self, proposal: &Message) -> Option<Message> {
        let Message::Proposal(p) = proposal else {
            return None;
        };
        // Another order of anchors linearizes to another sequence; a single anchor (or
        // none) is replaced by the newest certificate, whose history is not delivered.
        let payload = if p.value.payload.len() >= 2 {
            p.value.payload.iter().rev().copied().collect()
        } else {
            self.payload
                .newest_not_in(&p.value.payload)
                .map(|d| vec![d])
                .unwrap_or_default()
        };
        let value = Block {
            height: p.height,
            payload,
        };
        let alt = Proposal::new(self.keys(), p.author, p.round, value, p.valid_round);
        (alt.value.digest() != p.value.digest()).then_some(Message::Proposal(alt))
    }

    fn votes_for(&self, proposal: &Message) -> Vec<(Option<NodeId>, Message)> {
        let Message::Proposal(p) = proposal else {
            return Vec::new();
        };
        let value = Some(p.value.digest());
        [VoteKind::Prevote, VoteKind::Precommit]
            .into_iter()
            .map(|kind| {
                let vote = Vote::new(
                    self.keys(),
                    self.id,
                    kind,
                    p.height,
                    p.round,
                    value,
                    self.scheme,
                );
                (None, Message::Vote(vote))
            })
            .collect()
    }

    fn far_ahead(&self, message: &Message, ahead: u64, seed: u64) -> Vec<Message> {
        let Message::Vote(v) = message else {
            return Vec::new();
        };
        // The same vote kind for a value nobody has: rounds far ahead in this height,
        // and the next heights far ahead in round.
        let nowhere = Some(Digest::of(&seed.to_le_bytes()));
        let vote = |height: u64, round: u64| {
            Message::Vote(Vote::new(
                self.keys(),
                self.id,
                v.kind,
                height,
                round,
                nowhere,
                self.scheme,
            ))
        };
        vec![
            vote(v.height, v.round.saturating_add(ahead)),
            vote(v.height.saturating_add(1 + seed % 2), ahead),
            vote(v.height.saturating_add(ahead), 0),
        ]
    }

    fn with_bad_signature(&self, message: &Message) -> Message {
        let mut m = message.clone();
        match &mut m {
            Message::Proposal(p) => flip(&mut p.signature),
            Message::Vote(v) => match &mut v.signature {
                PartialSignature::Ed25519(s) => flip(s),
                // Not a BLS signature of this scheme's message any more.
                PartialSignature::Bls(_) => {
                    v.signature = PartialSignature::Ed25519(ed25519::Signature([0; 64]))
                }
            },
            Message::SyncReply(decisions) => {
                if let Some(d) = decisions.first_mut() {
                    d.round = d.round.wrapping_add(1);
                }
            }
            Message::Polka(votes) => {
                if let Some(PartialSignature::Ed25519(s)) =
                    votes.first_mut().map(|v| &mut v.signature)
                {
                    flip(s);
                } else if let Some(v) = votes.first_mut() {
                    v.signature = PartialSignature::Ed25519(ed25519::Signature([0; 64]));
                }
            }
            Message::SyncRequest { .. } => {}
        }
        m
    }
}
