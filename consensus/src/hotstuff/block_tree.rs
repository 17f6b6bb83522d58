//! HotStuff's block tree: the uncommitted blocks, the last committed one, a window of
//! committed history to serve peers that catch up, the QCs of recent views, and the
//! ancestor a stalled commit waits for.

use super::messages::{genesis_digest, Block, Qc, MAX_SYNC_CHAIN};
use primitives::{Digest, NodeId, View};
use std::collections::{BTreeMap, VecDeque};

/// Committed blocks kept to answer peers that are catching up. A replica that falls
/// further behind than this needs a state transfer, which this core does not do.
pub const COMMITTED_BLOCKS_KEPT: usize = 20_000;
/// Views whose QCs are remembered (two in one view is evidence of equivocation; the
/// Byzantine behaviours build on the second one).
const RECENT_QC_VIEWS: usize = 8;

/// The way from a block down to the last committed one.
pub enum Ancestry {
    /// Every block above the last committed one, newest first.
    Chain(Vec<Block>),
    /// The walk stopped at a block not in hand: fetch it (its child's author holds it).
    Missing {
        /// The missing block.
        digest: Digest,
        /// The author of the lowest block walked (or `None`: ask anyone).
        hint: Option<NodeId>,
    },
    /// The block is at or below the last commit, or forks below it.
    Stale,
}

/// Blocks, committed history and recent QCs.
pub struct BlockTree {
    blocks: BTreeMap<Digest, Block>,
    last_committed: (Digest, View),
    history: BTreeMap<Digest, Block>,
    history_order: VecDeque<Digest>,
    recent_qcs: BTreeMap<View, Vec<Qc>>,
}

impl BlockTree {
    /// A tree whose last committed block is `committed` (genesis, or the persisted one).
    pub fn new(committed: (Digest, View)) -> Self {
        BlockTree {
            blocks: BTreeMap::new(),
            last_committed: committed,
            history: BTreeMap::new(),
            history_order: VecDeque::new(),
            recent_qcs: BTreeMap::new(),
        }
    }

    /// The last committed block and its view.
    pub fn last_committed(&self) -> (Digest, View) {
        self.last_committed
    }

    /// Whether `digest` is genesis, the last committed block, or an uncommitted block in hand.
    pub fn is_known(&self, digest: &Digest) -> bool {
        *digest == genesis_digest()
            || self.blocks.contains_key(digest)
            || *digest == self.last_committed.0
    }

    /// An uncommitted block in hand.
    pub fn get(&self, digest: &Digest) -> Option<&Block> {
        self.blocks.get(digest)
    }

    /// Whether an uncommitted block is in hand.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blocks.contains_key(digest)
    }

    /// A block in hand or in the committed history.
    pub fn lookup(&self, digest: &Digest) -> Option<&Block> {
        self.blocks.get(digest).or_else(|| self.history.get(digest))
    }

    /// Keep an uncommitted block (once).
    pub fn insert(&mut self, block: Block) {
        self.blocks.entry(block.digest()).or_insert(block);
    }

    /// Whether some uncommitted block carries payload (a leader proposes to get it committed).
    pub fn has_uncommitted_payload(&self) -> bool {
        self.blocks
            .values()
            .any(|b| b.view > self.last_committed.1 && !b.payload.is_empty())
    }

    /// Whether `block` descends from `ancestor` (of view `view`), following parents in
    /// hand down to the last committed block.
    pub fn extends(&self, block: &Block, ancestor: &Digest, view: View) -> bool {
        let mut cursor = block.parent();
        loop {
            if cursor == *ancestor {
                return true;
            }
            if cursor == self.last_committed.0 {
                return *ancestor == self.last_committed.0 || view < self.last_committed.1;
            }
            match self.blocks.get(&cursor) {
                Some(b) if b.view > view => cursor = b.parent(),
                _ => return false,
            }
        }
    }

    /// The uncommitted ancestry of `digest` (itself included), newest first.
    pub fn ancestry(&self, digest: &Digest) -> Ancestry {
        let Some(block) = self.blocks.get(digest) else {
            return Ancestry::Stale;
        };
        if block.view <= self.last_committed.1 {
            return Ancestry::Stale;
        }
        let mut chain: Vec<Block> = Vec::new();
        let mut cursor = *digest;
        loop {
            if cursor == self.last_committed.0 {
                return Ancestry::Chain(chain);
            }
            match self.blocks.get(&cursor) {
                Some(b) if b.view > self.last_committed.1 => {
                    cursor = b.parent();
                    chain.push(b.clone());
                }
                // A fork below the committed view: cannot happen with <= f faults.
                Some(_) => return Ancestry::Chain(chain),
                None => {
                    return Ancestry::Missing {
                        digest: cursor,
                        hint: chain.last().map(|b| b.author),
                    }
                }
            }
        }
    }

    /// `block` committed (in order): it becomes the last committed block and joins the
    /// history served to peers.
    pub fn mark_committed(&mut self, block: Block) {
        let digest = block.digest();
        self.last_committed = (digest, block.view);
        if self.history.insert(digest, block).is_none() {
            self.history_order.push_back(digest);
        }
        while self.history_order.len() > COMMITTED_BLOCKS_KEPT {
            if let Some(old) = self.history_order.pop_front() {
                self.history.remove(&old);
            }
        }
    }

    /// Drop uncommitted blocks below the last committed view (the committed head stays:
    /// ancestry checks stop there).
    pub fn prune(&mut self) {
        let committed_view = self.last_committed.1;
        self.blocks.retain(|_, b| b.view >= committed_view);
    }

    /// The requested block and as many of its ancestors above view `above` as one sync
    /// reply carries (the requested block itself whatever its view).
    pub fn chain_from(&self, digest: &Digest, above: View) -> Vec<Block> {
        let mut chain = Vec::new();
        let mut cursor = *digest;
        while chain.len() < MAX_SYNC_CHAIN {
            match self.lookup(&cursor) {
                Some(b) if chain.is_empty() || b.view > above => {
                    cursor = b.parent();
                    chain.push(b.clone());
                }
                _ => break,
            }
        }
        chain
    }

    /// The newest block in hand whose QC is of `view` (a QC travels inside a block).
    pub fn carrier_of_qc(&self, view: View) -> Option<&Block> {
        self.blocks
            .values()
            .filter(|b| b.qc.view == view)
            .max_by_key(|b| b.view)
    }

    /// Remember a QC of a recent view.
    pub fn note_qc(&mut self, qc: &Qc) {
        let seen = self.recent_qcs.entry(qc.view).or_default();
        if !seen.iter().any(|q| q.block == qc.block) {
            seen.push(qc.clone());
        }
        while self.recent_qcs.len() > RECENT_QC_VIEWS {
            self.recent_qcs.pop_first();
        }
    }

    /// A QC of the same view as `qc` for another block, if one was seen.
    pub fn alternative_qc(&self, qc: &Qc) -> Option<Qc> {
        self.recent_qcs
            .get(&qc.view)?
            .iter()
            .find(|q| q.block != qc.block)
            .cloned()
    }

    /// Sizes: (uncommitted blocks, committed history).
    pub fn sizes(&self) -> (usize, usize) {
        (self.blocks.len(), self.history.len())
    }
}
