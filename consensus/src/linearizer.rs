//! Turning committed anchors into one sequence of DAG certificates, the same on every
//! honest node.
//!
//! On each committed anchor (a certificate digest) the linearizer delivers the anchor's
//! causal history that was not delivered before, ordered by round then author. Only
//! certificates above a cutoff take part: `gc_depth` rounds below the highest round of
//! the anchors committed *before* this one. The cutoff depends only on the committed
//! sequence, and the mempool never collects above it (it collects `gc_depth` below the
//! round this linearizer reports), so every node walks the same history whatever its
//! garbage-collection timing.

use mempool::{Certificate, MempoolHandle};
use primitives::{Digest, Round};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// What a linearizer needs to resume after a restart: the next position, the committed
/// round, and what it delivered above the cutoff.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearizerState {
    /// Position of the next certificate delivered.
    pub next_position: u64,
    /// Highest round among anchors delivered.
    pub committed_round: Round,
    /// Certificates delivered above the cutoff, with their rounds.
    pub delivered: Vec<(Digest, Round)>,
    /// Batches delivered recently, with their rounds (see [`Linearizer`]'s field).
    pub batches: Vec<(Digest, Round)>,
    /// Anchors committed but not delivered yet (their certificates had not arrived).
    /// The core's state persisted with this snapshot is past them, so it will not
    /// commit them again: the linearizer delivers them after a restart.
    pub queue: Vec<QueuedAnchor>,
}

/// One certificate in the committed sequence.
#[derive(Clone, Debug)]
pub struct Committed {
    /// Position in the node's committed sequence (0, 1, 2, ...).
    pub position: u64,
    /// The certificate.
    pub certificate: Certificate,
    /// The consensus block whose commit delivered it (the protocol's own identity).
    pub block: Digest,
    /// That block's view, height or round (the protocol's own numbering).
    pub height: u64,
    /// Batches of this certificate an earlier certificate of the sequence already
    /// delivered (an orphaned certificate's batches re-proposed by its author, when the
    /// orphan was referenced after all): the executor skips them, so each batch is
    /// delivered once.
    pub duplicates: Vec<Digest>,
}

/// An anchor waiting to be processed, with the block that committed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedAnchor {
    /// The anchor certificate.
    pub anchor: Digest,
    /// Its round.
    pub round: Round,
    /// The block that committed it.
    pub block: Digest,
    /// That block's height.
    pub height: u64,
}

/// Orders the causal histories of committed anchors.
pub struct Linearizer {
    mempool: MempoolHandle,
    gc_depth: u64,
    /// Delivered certificates by digest, with their rounds (pruned below the cutoff).
    delivered: BTreeMap<Digest, Round>,
    /// Delivered batches, each with the higher of its certificate's round and the
    /// committed round when it was delivered (kept for `2 * gc_depth` rounds).
    batches: BTreeMap<Digest, Round>,
    /// Anchors committed by consensus (with their rounds) not processed yet.
    queue: VecDeque<QueuedAnchor>,
    committed_round: Round,
    next_position: u64,
    /// Whether anything was delivered since the last [`Linearizer::snapshot`].
    dirty: bool,
}

impl Linearizer {
    /// A linearizer reading the DAG through `mempool`.
    pub fn new(mempool: MempoolHandle) -> Self {
        let gc_depth = mempool.gc_depth();
        Linearizer {
            mempool,
            gc_depth,
            delivered: BTreeMap::new(),
            batches: BTreeMap::new(),
            queue: VecDeque::new(),
            committed_round: Round(0),
            next_position: 0,
            dirty: false,
        }
    }

    /// A linearizer resuming from `state`: it delivers the anchors that were waiting
    /// when the state was written (consensus, resumed from the core state written with
    /// it, commits only what came after them). What it delivered after the state was
    /// written it delivers again, the same certificates at the same positions.
    pub fn restore(mempool: MempoolHandle, state: LinearizerState) -> Self {
        let mut l = Linearizer::new(mempool);
        l.next_position = state.next_position;
        l.committed_round = state.committed_round;
        l.delivered = state.delivered.into_iter().collect();
        l.batches = state.batches.into_iter().collect();
        l.queue = state.queue.into_iter().collect();
        l
    }

    /// The state to persist, if it changed since the last call.
    pub fn snapshot(&mut self) -> Option<LinearizerState> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        Some(LinearizerState {
            next_position: self.next_position,
            committed_round: self.committed_round,
            delivered: self.delivered.iter().map(|(d, r)| (*d, *r)).collect(),
            batches: self.batches.iter().map(|(d, r)| (*d, *r)).collect(),
            queue: self.queue.iter().copied().collect(),
        })
    }

    /// The highest round among the anchors delivered so far.
    pub fn committed_round(&self) -> Round {
        self.committed_round
    }

    /// Anchors waiting for their certificate to arrive.
    pub fn waiting(&self) -> Vec<Digest> {
        self.queue.iter().map(|q| q.anchor).collect()
    }

    /// Queue the anchors of a newly committed block (`block` at `height`), then deliver
    /// what can be delivered.
    pub fn commit(
        &mut self,
        block: Digest,
        height: u64,
        anchors: &[(Digest, Round)],
    ) -> Vec<Committed> {
        self.queue
            .extend(anchors.iter().map(|(anchor, round)| QueuedAnchor {
                anchor: *anchor,
                round: *round,
                block,
                height,
            }));
        self.dirty |= !anchors.is_empty();
        self.drain()
    }

    /// Deliver queued anchors, in order, as long as their certificates are present.
    pub fn drain(&mut self) -> Vec<Committed> {
        let mut out = Vec::new();
        while let Some(QueuedAnchor {
            anchor,
            round,
            block,
            height,
        }) = self.queue.front().copied()
        {
            // Already delivered, or too old to contribute anything (its whole history
            // is at or below the cutoff, and may be collected everywhere): skip. Both
            // depend only on the committed sequence, so every node skips the same.
            let cutoff = Round(self.committed_round.0.saturating_sub(self.gc_depth));
            if self.delivered.contains_key(&anchor) || round <= cutoff {
                self.queue.pop_front();
                continue;
            }
            let Some(certificate) = self.mempool.certificate(&anchor) else {
                break; // wait for it; the driver asked the mempool to fetch it
            };
            let delivered = &self.delivered;
            let history = self
                .mempool
                .causal_history(&anchor, |d| delivered.contains_key(d));
            for c in history.into_iter().filter(|c| c.round() > cutoff) {
                self.delivered.insert(c.digest(), c.round());
                let mut duplicates = Vec::new();
                let tag = self.committed_round.max(c.round());
                for (batch, _) in &c.header.payload {
                    if self.batches.insert(*batch, tag).is_some() {
                        duplicates.push(*batch);
                    }
                }
                out.push(Committed {
                    duplicates,
                    position: self.next_position,
                    certificate: c,
                    block,
                    height,
                });
                self.next_position += 1;
            }
            self.committed_round = self.committed_round.max(certificate.round());
            self.queue.pop_front();
            self.dirty = true;
        }
        let cutoff = Round(self.committed_round.0.saturating_sub(self.gc_depth));
        self.delivered.retain(|_, r| *r > cutoff);
        // Batches are remembered twice as long: an orphaned certificate's batches are
        // re-proposed some rounds after it, and either copy may come first.
        let batch_cutoff = Round(self.committed_round.0.saturating_sub(2 * self.gc_depth));
        self.batches.retain(|_, r| *r > batch_cutoff);
        out
    }
}
