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

use crate::round_memory::RoundMemory;
use mempool::{Certificate, MempoolHandle};
use primitives::{Digest, Hasher, Round};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What a linearizer needs to resume after a restart: the next position, the committed
/// round, and what it delivered above the cutoff.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearizerState {
    /// Position of the next certificate delivered.
    pub next_position: u64,
    /// Highest round among anchors delivered.
    pub committed_round: Round,
    /// Certificates delivered above the cutoff, with their rounds. Written empty: the
    /// committed history, written with this state or before it, holds them, and
    /// [`Linearizer::restore`] reads them back from there. (Writing them here cost a
    /// copy of a committee's `gc_depth` rounds of digests at every persisted vote:
    /// 100 kB per vote at 50 nodes.) A state written with a list is still read.
    pub delivered: Vec<(Digest, Round)>,
    /// Anchors committed but not delivered yet (their certificates had not arrived).
    /// The core's state persisted with this snapshot is past them, so it will not
    /// commit them again: the linearizer delivers them after a restart.
    pub queue: Vec<QueuedAnchor>,
    /// Chain hash of the sequence delivered so far (see [`chain_after`]).
    pub chain: Digest,
}

/// One certificate in the committed sequence: what the executor resolves into
/// transactions, and the entry of the committed history peers fetch to catch up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The highest anchor round delivered before this certificate's anchor.
    pub committed_round: Round,
    /// The round of the anchor whose causal history delivered this certificate. The
    /// anchor is the last certificate of that delivery (the only one of its round);
    /// after it the committed round is the higher of the two rounds, and the batches of
    /// the whole delivery are remembered from that round on.
    pub anchor_round: Round,
    /// Chain hash of the sequence up to and including this certificate: equal on two
    /// nodes exactly when their sequences agree up to here (see [`chain_after`]).
    pub chain: Digest,
}

/// The chain hash after `entry`, given the chain hash before it. It covers every field
/// of the entry but the certificate's votes (the certificate is named by its header's
/// digest), so a peer that vouches for a chain hash vouches for every entry before it.
pub fn chain_after(previous: &Digest, entry: &Committed) -> Digest {
    let mut h = Hasher::new();
    h.update(b"bftlab/committed-sequence/v1")
        .update(previous.as_bytes())
        .update_u64(entry.position)
        .update(entry.certificate.digest().as_bytes())
        .update(entry.block.as_bytes())
        .update_u64(entry.height)
        .update_u64(entry.committed_round.0)
        .update_u64(entry.anchor_round.0)
        .update_u64(entry.duplicates.len() as u64);
    for d in &entry.duplicates {
        h.update(d.as_bytes());
    }
    h.finalize()
}

/// Why a transferred entry was not installed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// The entry is not the next position.
    #[error("entry at position {got}, the next position is {expected}")]
    NotNext {
        /// The next position of this linearizer.
        expected: u64,
        /// The entry's.
        got: u64,
    },
    /// The entry's chain hash does not follow from this linearizer's chain.
    #[error("entry at position {0} does not extend the chain")]
    BrokenChain(u64),
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
    delivered: RoundMemory,
    /// Delivered batches, each with the committed round its delivery reached (kept for
    /// `batch_memory` rounds; not persisted, rebuilt from the history on restart).
    batches: RoundMemory,
    /// How many rounds delivered batches are remembered
    /// ([`primitives::parameters::MempoolParameters::batch_memory_rounds`]). An author
    /// re-proposes the batches of a certificate it believes orphaned, and a block-based
    /// core may commit both copies (it can propose any certificate, referenced or not);
    /// each batch is executed once because the author re-proposes only within this
    /// window.
    batch_memory: u64,
    /// Anchors committed by consensus (with their rounds) not processed yet.
    queue: VecDeque<QueuedAnchor>,
    committed_round: Round,
    next_position: u64,
    chain: Digest,
    /// Whether anything was delivered since the last [`Linearizer::snapshot`].
    dirty: bool,
}

impl Linearizer {
    /// A linearizer reading the DAG through `mempool`.
    pub fn new(mempool: MempoolHandle) -> Self {
        let gc_depth = mempool.gc_depth();
        let batch_memory = mempool.batch_memory_rounds();
        Linearizer {
            mempool,
            gc_depth,
            batch_memory,
            delivered: RoundMemory::default(),
            batches: RoundMemory::default(),
            queue: VecDeque::new(),
            committed_round: Round(0),
            next_position: 0,
            chain: Digest::default(),
            dirty: false,
        }
    }

    /// A linearizer resuming from `state`: it delivers the anchors that were waiting
    /// when the state was written (consensus, resumed from the core state written with
    /// it, commits only what came after them). What it delivered after the state was
    /// written it delivers again, the same certificates at the same positions (unless
    /// those are installed from the history first). The certificates it delivered above
    /// the cutoff and the batches it remembers are read back from `history` (the
    /// entries before the state's position).
    pub fn restore(
        mempool: MempoolHandle,
        state: LinearizerState,
        history: &crate::history::History,
    ) -> Self {
        let mut l = Linearizer::new(mempool);
        l.next_position = state.next_position;
        l.committed_round = state.committed_round;
        l.delivered = state.delivered.into_iter().collect();
        l.queue = state.queue.into_iter().collect();
        l.chain = state.chain;
        // A certificate's round is at most its anchor's, so walking back until the tags
        // (never decreasing along the sequence) reach the batch cutoff, at or below the
        // delivery cutoff, meets every certificate delivered above the latter. The
        // history keeps `batch_memory` rounds, so they are all there.
        let (cutoff, delivery_cutoff) = (l.batch_cutoff(), l.cutoff());
        let mut position = l.next_position;
        while position > history.floor() {
            position -= 1;
            let Some(e) = history.get(position) else {
                // Above the floor every entry is kept: a hole means the store lost or
                // cannot decode it, and what it delivered is not remembered.
                tracing::warn!(position, "a history entry above the floor is missing or unreadable; what it delivered is not remembered after this restart");
                break;
            };
            let tag = e.committed_round.max(e.anchor_round);
            if tag <= cutoff {
                break; // tags never decrease along the sequence
            }
            let round = e.certificate.round();
            if round > delivery_cutoff {
                l.delivered.insert(e.certificate.digest(), round);
            }
            for (batch, _) in &e.certificate.header.payload {
                l.batches.insert_if_absent(*batch, tag);
            }
        }
        l
    }

    fn batch_cutoff(&self) -> Round {
        Round(self.committed_round.0.saturating_sub(self.batch_memory))
    }

    /// The state to persist, if it changed since the last call.
    pub fn snapshot(&mut self) -> Option<LinearizerState> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        Some(LinearizerState {
            next_position: self.next_position,
            committed_round: self.committed_round,
            delivered: Vec::new(),
            queue: self.queue.iter().copied().collect(),
            chain: self.chain,
        })
    }

    /// The position the next delivered certificate gets.
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    /// The chain hash of everything delivered so far.
    pub fn chain(&self) -> Digest {
        self.chain
    }

    /// Rounds at or below this take no part in what is delivered next.
    pub fn cutoff(&self) -> Round {
        Round(self.committed_round.0.saturating_sub(self.gc_depth))
    }

    /// Whether the mempool collected rounds above the cutoff (it jumped its horizon to
    /// catch up with its peers): the causal histories still to deliver may have lost
    /// certificates there, so the linearizer delivers nothing from the DAG until the
    /// committed history is installed past the gap ([`Linearizer::install`]).
    pub fn behind_horizon(&self) -> bool {
        self.mempool.with_dag(|d| d.gc_round()) > self.cutoff()
    }

    /// Install one entry of the committed history fetched from peers (or replayed from
    /// this node's own history): it must be the next position and extend this
    /// linearizer's chain. The linearizer's state afterwards is what it would be had it
    /// delivered the entry itself. Queued anchors the entry delivered are skipped later.
    pub fn install(&mut self, entry: &Committed) -> Result<(), InstallError> {
        if entry.position != self.next_position {
            return Err(InstallError::NotNext {
                expected: self.next_position,
                got: entry.position,
            });
        }
        let chain = chain_after(&self.chain, entry);
        if chain != entry.chain {
            return Err(InstallError::BrokenChain(entry.position));
        }
        let round = entry.certificate.round();
        self.delivered.insert(entry.certificate.digest(), round);
        let tag = entry.committed_round.max(entry.anchor_round);
        for (batch, _) in &entry.certificate.header.payload {
            self.batches.insert(*batch, tag);
        }
        self.committed_round = self.committed_round.max(entry.committed_round);
        if round == entry.anchor_round {
            self.committed_round = tag;
            self.prune();
        }
        self.chain = chain;
        self.next_position += 1;
        self.dirty = true;
        Ok(())
    }

    /// Skip positions `from..to` (a checkpoint beyond every peer's retention): the next
    /// position becomes `to`, with `chain` as the chain hash of the sequence before it.
    /// What the skipped positions delivered is not known here: the node installs the
    /// entries from `to` on next ([`Linearizer::install`]), which carry the committed
    /// rounds, before it delivers from the DAG again (the peers' retention spans
    /// thousands of rounds, far beyond the `gc_depth` rounds in which a certificate
    /// delivered before `to` could still be met in the DAG).
    pub fn skip_to(&mut self, from: u64, to: u64, chain: Digest) -> Result<(), InstallError> {
        if from != self.next_position || to <= from {
            return Err(InstallError::NotNext {
                expected: self.next_position,
                got: from,
            });
        }
        self.next_position = to;
        self.chain = chain;
        self.dirty = true;
        Ok(())
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
            let cutoff = self.cutoff();
            if self.delivered.contains(&anchor) || round <= cutoff {
                self.queue.pop_front();
                continue;
            }
            // One read of the DAG for the horizon check, the anchor and its history: a
            // horizon jump between them would make the history silently incomplete.
            let delivered = &self.delivered;
            let found = self.mempool.with_dag(|dag| {
                if dag.gc_round() > cutoff {
                    return None; // wait for the committed history to be installed past the gap
                }
                // Absent: wait for it; the driver asked the mempool to fetch it.
                let certificate = dag.get(&anchor)?.clone();
                let history = dag.causal_history(&anchor, |d| delivered.contains(d));
                Some((certificate, history))
            });
            let Some((certificate, history)) = found else {
                break;
            };
            let anchor_round = certificate.round();
            // Batches are remembered from the committed round this anchor reaches, not
            // the one before it: after a long stall one anchor delivers many rounds, and
            // an orphan among them may be re-proposed by its author much later.
            let tag = self.committed_round.max(anchor_round);
            for c in history.into_iter().filter(|c| c.round() > cutoff) {
                self.delivered.insert(c.digest(), c.round());
                let mut duplicates = Vec::new();
                for (batch, _) in &c.header.payload {
                    if self.batches.insert(*batch, tag).is_some() {
                        duplicates.push(*batch);
                    }
                }
                let mut entry = Committed {
                    anchor_round,
                    duplicates,
                    position: self.next_position,
                    certificate: c,
                    block,
                    height,
                    committed_round: self.committed_round,
                    chain: Digest::default(),
                };
                entry.chain = chain_after(&self.chain, &entry);
                self.chain = entry.chain;
                out.push(entry);
                self.next_position += 1;
            }
            self.committed_round = tag;
            self.queue.pop_front();
            self.dirty = true;
            // After every anchor (not once per call): what is remembered must depend
            // only on the sequence, never on how many anchors one call processed.
            self.prune();
        }
        out
    }

    fn prune(&mut self) {
        self.delivered.forget_up_to(self.cutoff());
        // Batches are remembered longer (see `batch_memory`): an orphaned certificate's
        // batches are re-proposed after it, and either copy may come first.
        self.batches.forget_up_to(self.batch_cutoff());
    }
}
