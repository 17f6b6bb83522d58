//! How a HotStuff replica lies: the [`Adversarial`] hooks the Byzantine behaviours use.

use super::core::HotStuff;
use super::messages::{Block, Message, Timeout, Vote};
use crate::byzantine::{Adversarial, MessageKind};
use primitives::crypto::{ed25519, PartialSignature};
use primitives::{Digest, NodeId, View};

fn flip(signature: &mut ed25519::Signature) {
    signature.0[0] ^= 0x01;
}

impl Adversarial for HotStuff {
    fn twins_instance(&self) -> u64 {
        self.view().0
    }

    fn kind(message: &Message) -> MessageKind {
        match message {
            Message::Propose(b) => MessageKind::Proposal {
                instance: (b.view.0, 0),
                block: b.digest(),
                parent: b.parent(),
            },
            Message::Vote(v) => MessageKind::Vote {
                instance: (v.view.0, 0),
                block: v.block,
            },
            _ => MessageKind::Other,
        }
    }

    fn conflicting_proposal(&self, proposal: &Message) -> Option<Message> {
        let Message::Propose(b) = proposal else {
            return None;
        };
        // Build on the other certified block of the parent's view when there is one.
        let qc = self.alternative_qc(&b.qc).unwrap_or_else(|| b.qc.clone());
        // Another order of anchors linearizes to another sequence; a single anchor (or
        // none) is replaced by the newest certificate, whose history is not delivered.
        let payload = if b.payload.len() >= 2 {
            b.payload.iter().rev().copied().collect()
        } else {
            self.some_certificate_not_in(&b.payload)
                .map(|d| vec![d])
                .unwrap_or_default()
        };
        let alt = Block::new(self.keys(), b.author, b.view, qc, b.tc.clone(), payload);
        (alt.digest() != b.digest()).then_some(Message::Propose(alt))
    }

    fn votes_for(&self, proposal: &Message) -> Vec<(Option<NodeId>, Message)> {
        let Message::Propose(b) = proposal else {
            return Vec::new();
        };
        let vote = Vote::new(self.keys(), self.id(), b.digest(), b.view, self.scheme());
        // Votes go to the next view's leader.
        let collector = self.leader_of(b.view.next());
        vec![(Some(collector), Message::Vote(vote))]
    }

    fn far_ahead(&self, message: &Message, ahead: u64, seed: u64) -> Vec<Message> {
        let nowhere = Digest::of(&seed.to_le_bytes());
        let far = |view: View| View(view.0.saturating_add(ahead));
        match message {
            // A vote for a block nobody has, and a proposal in a view it leads.
            Message::Propose(b) => {
                let view = far(b.view);
                let mut out = vec![Message::Vote(Vote::new(
                    self.keys(),
                    self.id(),
                    nowhere,
                    view,
                    self.scheme(),
                ))];
                // Its own next view at that distance, so receivers verify it.
                let own = (view.0..view.0 + 64)
                    .map(View)
                    .find(|v| self.leader_of(*v) == self.id());
                if let Some(own) = own {
                    let block = Block::new(self.keys(), self.id(), own, b.qc.clone(), None, vec![]);
                    out.push(Message::Propose(block));
                }
                out
            }
            Message::Vote(v) => vec![Message::Vote(Vote::new(
                self.keys(),
                self.id(),
                nowhere,
                far(v.view),
                self.scheme(),
            ))],
            Message::Timeout(t) => vec![Message::Timeout(Timeout::new(
                self.keys(),
                self.id(),
                far(t.view),
                t.high_qc.clone(),
            ))],
            _ => Vec::new(),
        }
    }

    fn with_bad_signature(&self, message: &Message) -> Message {
        let mut m = message.clone();
        match &mut m {
            Message::Propose(b) => flip(&mut b.signature),
            Message::Vote(v) => match &mut v.signature {
                PartialSignature::Ed25519(s) => flip(s),
                // Not a BLS signature of this scheme's message any more.
                PartialSignature::Bls(_) => {
                    v.signature = PartialSignature::Ed25519(ed25519::Signature([0; 64]))
                }
            },
            Message::Timeout(t) => flip(&mut t.signature),
            Message::Tc(tc) => {
                if let Some((_, _, s)) = tc.timeouts.first_mut() {
                    flip(s);
                }
            }
            Message::SyncReply(blocks) => {
                if let Some(b) = blocks.first_mut() {
                    flip(&mut b.signature);
                }
            }
            Message::SyncRequest { .. } => {}
        }
        m
    }
}
