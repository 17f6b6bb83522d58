//! Snowman wire types: blocks, the poll's query and its answer (chits), and the
//! request and reply a node fetches missing blocks with.

use super::config::Config;
use crate::leaders::ProposerSchedule;
use primitives::crypto::{ed25519, KeyPair};
use primitives::{Committee, Digest, Hasher, NodeId, Round};
use serde::{Deserialize, Serialize};

/// Most blocks one [`Message::Ancestors`] carries (avalanchego's
/// `bootstrapping.ancestors-max-containers-sent` plays this part).
pub const MAX_ANCESTORS: usize = 16;

/// A block of the chain: DAG certificate digests (with their rounds) on top of its
/// parent, signed by its proposer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The block it extends (the genesis block is `Digest::default()` at height 0).
    pub parent: Digest,
    /// Its height: the parent's plus one.
    pub height: u64,
    /// Who proposed it.
    pub proposer: NodeId,
    /// Its proposer window: `proposer` is the `window`-th in the height's order.
    pub window: u64,
    /// DAG certificates, in the order the linearizer delivers their histories.
    pub payload: Vec<(Digest, Round)>,
    /// ed25519 over [`Block::digest`].
    pub signature: ed25519::Signature,
}

impl Block {
    /// The digest of a block's contents (what votes name and the proposer signs).
    pub fn compute_digest(
        parent: &Digest,
        height: u64,
        proposer: NodeId,
        window: u64,
        payload: &[(Digest, Round)],
    ) -> Digest {
        let mut h = Hasher::new();
        h.update(b"bftlab.snowman.block")
            .update(parent.as_bytes())
            .update_u64(height)
            .update_u64(u64::from(proposer.0))
            .update_u64(window)
            .update_u64(payload.len() as u64);
        for (d, r) in payload {
            h.update(d.as_bytes()).update_u64(r.0);
        }
        h.finalize()
    }

    /// This block's digest.
    pub fn digest(&self) -> Digest {
        Self::compute_digest(
            &self.parent,
            self.height,
            self.proposer,
            self.window,
            &self.payload,
        )
    }

    /// Build and sign.
    pub fn new(
        keys: &KeyPair,
        parent: Digest,
        height: u64,
        proposer: NodeId,
        window: u64,
        payload: Vec<(Digest, Round)>,
    ) -> Block {
        let digest = Self::compute_digest(&parent, height, proposer, window, &payload);
        Block {
            parent,
            height,
            proposer,
            window,
            payload,
            signature: ed25519::sign(&keys.ed25519, digest.as_bytes()),
        }
    }

    /// Check on its own: within limits, proposed by the member its window names,
    /// signed by it.
    pub fn verify(
        &self,
        committee: &Committee,
        proposers: &ProposerSchedule,
        config: &Config,
    ) -> Result<(), &'static str> {
        if self.payload.len() > config.max_block_payload {
            return Err("oversized block");
        }
        if self.height == 0 || self.window >= proposers.period() as u64 {
            return Err("malformed block");
        }
        if proposers.proposer(self.height, self.window) != self.proposer {
            return Err("block from a member outside its window");
        }
        let member = committee
            .member(self.proposer)
            .ok_or("block from a member outside its window")?;
        ed25519::verify(
            member.verifying_key(),
            self.digest().as_bytes(),
            &self.signature,
        )
        .map_err(|_| "bad block signature")
    }
}

/// A node's view of the chain as it answers a poll (avalanchego's `Chits`). Not
/// signed: as in avalanchego, the authenticated transport names the voter, and a chit
/// is only ever counted for the poll of the node it was sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chit {
    /// The poll answered.
    pub poll: u64,
    /// The voter's preferred tip.
    pub preferred: Digest,
    /// The voter's preferred block at the height the poll asked about (its tip if the
    /// tip is lower).
    pub preferred_at_height: Digest,
    /// The voter's last accepted block.
    pub accepted: Digest,
    /// Its height.
    pub accepted_height: u64,
}

/// A Snowman message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A block, new (broadcast by its proposer) or asked for.
    Put(Block),
    /// Poll `poll`: which block do you prefer at `height`? The asker's preferred tip is
    /// `block` (a receiver that lacks it fetches it); the asker's last accepted block is
    /// `accepted` at `accepted_height` (so a lagging receiver learns it is behind).
    Query {
        /// The poll.
        poll: u64,
        /// The block polled (the asker's preferred tip).
        block: Digest,
        /// Its height.
        height: u64,
        /// The asker's last accepted block.
        accepted: Digest,
        /// Its height.
        accepted_height: u64,
    },
    /// The answer to a query.
    Chits(Chit),
    /// Send me `block` and up to `max` of its ancestors.
    GetAncestors {
        /// The newest block wanted.
        block: Digest,
        /// How many blocks (at most [`MAX_ANCESTORS`]).
        max: u32,
    },
    /// Blocks, each followed by its parent.
    Ancestors(Vec<Block>),
    /// Send me your accepted blocks from height `from` on (at most `max`, at most
    /// [`MAX_ANCESTORS`]): a node that learned it is behind catches up with them.
    GetAccepted {
        /// The lowest height wanted.
        from: u64,
        /// How many.
        max: u32,
    },
    /// Accepted blocks of consecutive heights, lowest first: the sender says it
    /// accepted each of them.
    Accepted(Vec<Block>),
}
