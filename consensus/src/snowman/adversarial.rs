//! Snowman's Byzantine hooks: how the shared behaviours lie in this protocol.
//! - A block (`Put`) is a proposal of instance (height, parent); an equivocating proposer
//!   signs a sibling with another payload on the same parent and shows each half of
//!   the honest members one of the two.
//! - A chit is a vote: a node that withholds votes is silent to queries, and the polls
//!   count it as no vote. Colluders splitting the committee (equivocating or double
//!   voting) lie in their chits: each asker is told the block its side was shown is
//!   preferred (`tailor_vote`), so both sides' polls succeed for their own block.
//! - Broken signatures: on blocks (alone or in a reply of blocks); queries and chits
//!   are not signed (the transport names their sender), so they go out unchanged.

use super::core::Snowman;
use super::messages::{Block, Message};
use crate::byzantine::{Adversarial, ForkBook, MessageKind, Side};

/// The first eight bytes of a digest, as an instance's second number.
fn parent_tag(parent: &primitives::Digest) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&parent.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

fn flip(block: &mut Block) {
    block.signature.0[0] ^= 1;
}

impl Adversarial for Snowman {
    const FORKS_ON_ONE_PARENT: bool = true;

    fn twins_instance(&self) -> u64 {
        self.tree.accepted_height().saturating_add(1)
    }

    fn kind(message: &Message) -> MessageKind {
        match message {
            // One block per (height, parent) per proposer: a sibling on the same parent
            // is an equivocation, a block on another parent after the preference moved
            // is not.
            Message::Put(b) => MessageKind::Proposal {
                instance: (b.height, parent_tag(&b.parent)),
                block: b.digest(),
                parent: b.parent,
            },
            // What a chit must never contradict is the accepted block it reports: one
            // per accepted height. (Its preference may change from poll to poll.)
            Message::Chits(c) => MessageKind::Vote {
                instance: (c.accepted_height, u64::MAX),
                block: c.accepted,
            },
            _ => MessageKind::Other,
        }
    }

    fn conflicting_proposal(&self, proposal: &Message) -> Option<Message> {
        let Message::Put(b) = proposal else {
            return None;
        };
        // Another payload on the same parent, ordered so that the two sides deliver
        // different sequences: the same certificates in reverse, or one more first.
        let mut payload = b.payload.clone();
        if payload.len() >= 2 {
            payload.reverse();
        } else {
            payload.insert(0, self.payload.newest_not_in(&b.payload)?);
            payload.truncate(self.config.max_block_payload);
        }
        if payload == b.payload {
            return None;
        }
        Some(Message::Put(Block::new(
            &self.keys, b.parent, b.height, self.id, b.window, payload,
        )))
    }

    fn far_ahead(&self, message: &Message, ahead: u64, seed: u64) -> Vec<Message> {
        let height = match message {
            Message::Put(b) => b.height,
            Message::Query { height, .. } => *height,
            Message::Chits(c) => c.accepted_height,
            _ => return Vec::new(),
        };
        let far = height.saturating_add(ahead);
        let nowhere = primitives::Digest::of(&seed.to_le_bytes());
        // A signed block far up on a parent nobody has, and a poll about it claiming
        // an accepted block as far up (receivers may believe they are behind).
        vec![
            Message::Put(Block::new(&self.keys, nowhere, far, self.id, 0, vec![])),
            Message::Query {
                poll: seed,
                block: nowhere,
                height: far,
                accepted: nowhere,
                accepted_height: far,
            },
        ]
    }

    fn tailor_vote(&self, vote: &Message, side: Side, book: &ForkBook) -> Option<Message> {
        let Message::Chits(chit) = vote else {
            return None;
        };
        // The newest block this replica holds that was shown to `side` (and so the
        // chain below it): name it as preferred, at the height asked or below.
        let shown = self.tree.newest_where(|d| book.side(d) == Some(side))?;
        let mut lie = *chit;
        lie.preferred = shown;
        lie.preferred_at_height = shown;
        Some(Message::Chits(lie))
    }

    fn with_bad_signature(&self, message: &Message) -> Message {
        let mut m = message.clone();
        match &mut m {
            Message::Put(b) => flip(b),
            Message::Ancestors(blocks) | Message::Accepted(blocks) => {
                if let Some(b) = blocks.first_mut() {
                    flip(b);
                }
            }
            Message::Query { .. } | Message::Chits(_) | Message::GetAncestors { .. } => {}
            Message::GetAccepted { .. } => {}
        }
        m
    }
}
