//! State transfer: a node that cannot deliver from its DAG (its mempool jumped past
//! rounds it never ordered, or it stays quiet while the DAG grows) fetches the
//! committed history it missed from its peers.
//!
//! The protocol, for every core alike (it works on the linearizer's sequence, not on a
//! core's blocks):
//! 1. **Probe.** Ask every peer for its position ([`TransferMessage::StatusRequest`]).
//!    The target is the highest position that members holding f+1 weight report having
//!    reached, so at least one honest member has.
//! 2. **Fetch** up to [`MAX_ENTRIES`] entries from one peer that reported the target
//!    (peers in turn). The entries must start at the node's next position and each must
//!    extend the chain hash of the node's own sequence ([`chain_after`]).
//! 3. **Vouch.** Ask every peer for its chain hash at the chunk's end. Only when members
//!    holding f+1 weight (the source included) report the hash the chunk ends with is
//!    it installed: one of them is honest, and honest sequences agree, so the chunk is
//!    the committed sequence. A Byzantine source can waste a round trip, never install
//!    anything.
//! 4. Repeat until the node's position reaches the target; the linearizer then delivers
//!    from the DAG again, and the core is told the committed round moved
//!    ([`crate::core::Event::Installed`]).
//!
//! Entries are served from [`crate::history::History`], which peers keep for
//! `history_retention_rounds`. A node further behind than the retention of members
//! holding f+1 weight installs a **checkpoint** instead: a position `c` that members
//! with f+1 weight still keep (a third of the way from the lowest such position to the
//! target, so that the batches of what it then fetches are not collected before they
//! arrive), and the chain hash of the sequence before it,
//! asked of every peer and taken once members holding f+1 weight report the same hash
//! (so an honest one has that sequence). It skips positions up to `c`, explicitly: the
//! history records the gap ([`crate::history::Gap`]) and the executor delivers it as
//! one entry naming the skipped positions and that chain hash, which checkers compare
//! with the other nodes' sequences. Then it fetches entries from `c` on as above.

use crate::core::Time;
use crate::linearizer::{chain_after, Committed};
use primitives::rate::PerMemberRate;
use primitives::{Committee, Digest, NodeId, Weight};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The channel byte of state-transfer messages on the node's transport.
pub const CHANNEL_TRANSFER: u8 = 2;
/// Most entries in one [`TransferMessage::Entries`].
pub const MAX_ENTRIES: usize = 1024;
/// Most bytes of entries in one [`TransferMessage::Entries`] (also at most half a
/// frame): it travels on the urgent lane, so it must not hold that lane for long.
pub const MAX_ENTRIES_BYTES: usize = 1 << 20;
/// How long the node waits for an answer (entries or enough vouches) before it asks
/// another peer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a node that needs to catch up probes its peers.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Requests served per peer per second; beyond it they are dropped (counted).
pub const SERVED_PER_SECOND: u32 = 20;
/// Of which [`TransferMessage::Fetch`] (each answered with up to half a frame): an
/// honest client has one in flight at a time.
pub const FETCHES_PER_SECOND: u32 = 4;

/// A state-transfer message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferMessage {
    /// "How far is your committed sequence?"
    StatusRequest,
    /// The answer: the sender's next position and the lowest it still keeps.
    Status {
        /// The position the sender delivers next.
        next_position: u64,
        /// The lowest position of its history still kept.
        floor: u64,
    },
    /// "Send me the entries from this position."
    Fetch {
        /// The first position wanted.
        from: u64,
    },
    /// Consecutive entries of the sender's history (empty if it does not keep `from`).
    Entries {
        /// The entries, in position order.
        entries: Vec<Committed>,
    },
    /// "What is your chain hash before this position?"
    VouchRequest {
        /// The position (the chain hash covers every position below it).
        position: u64,
    },
    /// The answer (`None`: the sender has not reached it, or no longer keeps it).
    Vouch {
        /// The position asked about.
        position: u64,
        /// The sender's chain hash before it.
        chain: Option<Digest>,
    },
}

/// Counters of state transfer.
#[derive(Debug, Default)]
pub struct TransferMetrics {
    /// Probes sent (one per catch-up attempt).
    pub probes: AtomicU64,
    /// Chunks installed.
    pub chunks_installed: AtomicU64,
    /// Entries installed from peers.
    pub entries_installed: AtomicU64,
    /// Chunks refused: not contiguous, a broken chain, or never vouched for.
    pub chunks_refused: AtomicU64,
    /// Requests from peers served.
    pub served: AtomicU64,
    /// Requests from peers dropped (over the rate limit, or undecodable).
    pub dropped: AtomicU64,
    /// Times the peers no longer kept what this node needs (beyond their retention).
    pub beyond_retention: AtomicU64,
    /// Checkpoints installed (gaps in this node's sequence).
    pub checkpoints_installed: AtomicU64,
    /// Positions skipped by checkpoints.
    pub positions_skipped: AtomicU64,
    /// Checkpoints not vouched for by f+1 weight in time.
    pub checkpoints_refused: AtomicU64,
}

impl TransferMetrics {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What the node's own sequence looks like now.
#[derive(Clone, Copy, Debug)]
pub struct Local {
    /// The next position it delivers.
    pub next_position: u64,
    /// Its chain hash (before `next_position`).
    pub chain: Digest,
}

/// What the catch-up client wants done.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// Send to one peer.
    Send(NodeId, TransferMessage),
    /// Send to every peer.
    Broadcast(TransferMessage),
    /// Install these entries, in order (they start at the node's next position and are
    /// vouched for by f+1 weight), fetched from this peer.
    Install(NodeId, Vec<Committed>),
    /// Skip positions `from..to`: `chain` is the chain hash of the committed sequence
    /// before `to`, vouched for by f+1 weight (a checkpoint beyond the peers' retention).
    Skip {
        /// The node's next position (the first skipped).
        from: u64,
        /// The first position after the gap.
        to: u64,
        /// The chain hash before `to`.
        chain: Digest,
    },
}

/// A checkpoint asked about: the position, and the chain hash each peer reported.
struct Checkpoint {
    position: u64,
    vouches: BTreeMap<NodeId, Digest>,
    at: Time,
}

/// A fetch in flight (the peer asked is in `Catchup::asked`).
struct Fetching {
    at: Time,
}

struct Pending {
    source: NodeId,
    entries: Vec<Committed>,
    end: u64,
    chain: Digest,
    vouchers: BTreeSet<NodeId>,
    at: Time,
}

/// The catch-up client: a state machine driven by the driver (sans-IO: it is given the
/// time and returns what to send).
pub struct Catchup {
    id: NodeId,
    committee: std::sync::Arc<Committee>,
    /// Positions (next, floor) peers reported since the last probe.
    statuses: BTreeMap<NodeId, (u64, u64)>,
    probed_at: Option<Time>,
    fetching: Option<Fetching>,
    pending: Option<Pending>,
    checkpoint: Option<Checkpoint>,
    /// Which of the peers at the target is asked next.
    turn: usize,
    /// Peers asked for entries recently, and when: a late answer is still taken.
    asked: BTreeMap<NodeId, Time>,
    /// Whether members with f+1 weight have ever answered a probe (after a restart the
    /// first probes may go unanswered while the peers reconnect).
    heard: bool,
    metrics: std::sync::Arc<TransferMetrics>,
}

impl Catchup {
    /// A client for node `id`.
    pub fn new(
        id: NodeId,
        committee: std::sync::Arc<Committee>,
        metrics: std::sync::Arc<TransferMetrics>,
    ) -> Self {
        Catchup {
            id,
            committee,
            statuses: BTreeMap::new(),
            probed_at: None,
            fetching: None,
            pending: None,
            checkpoint: None,
            turn: 0,
            asked: BTreeMap::new(),
            heard: false,
            metrics,
        }
    }

    /// Whether members with f+1 weight have answered a probe since the node started.
    pub fn heard_from_peers(&self) -> bool {
        self.heard
    }

    /// Whether a fetch, a vouch or a checkpoint is under way.
    pub fn busy(&self) -> bool {
        self.fetching.is_some() || self.pending.is_some() || self.checkpoint.is_some()
    }

    /// Called regularly. `needed`: the node cannot deliver from its DAG (or has been
    /// quiet while the DAG grew), so it should look for a peer ahead of it.
    pub fn tick(&mut self, now: Time, needed: bool, local: Local) -> Vec<Output> {
        if self
            .fetching
            .as_ref()
            .is_some_and(|f| now.since(f.at) >= REQUEST_TIMEOUT)
        {
            tracing::debug!(node = %self.id, "state transfer: no entries in time; asking another peer");
            self.fetching = None;
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|p| now.since(p.at) >= REQUEST_TIMEOUT)
        {
            // Not vouched for in time: refuse it, fetch again from someone else.
            tracing::debug!(node = %self.id, "state transfer: chunk not vouched for in time");
            self.pending = None;
            TransferMetrics::add(&self.metrics.chunks_refused, 1);
        }
        if self
            .checkpoint
            .as_ref()
            .is_some_and(|c| now.since(c.at) >= REQUEST_TIMEOUT)
        {
            tracing::debug!(node = %self.id, "state transfer: checkpoint not vouched for in time");
            self.checkpoint = None;
            TransferMetrics::add(&self.metrics.checkpoints_refused, 1);
        }
        // Peers reported being ahead at the last probe: keep going (after a timeout,
        // with the next of them) even if nothing else says the node lags.
        let behind = self.target().is_some_and(|t| t > local.next_position);
        if !(needed || behind) || self.busy() {
            return vec![];
        }
        if self.probed_at.is_some_and(|at| now.since(at) < PROBE_EVERY) {
            return self.fetch(now, local);
        }
        self.probed_at = Some(now);
        self.statuses.clear();
        TransferMetrics::add(&self.metrics.probes, 1);
        vec![Output::Broadcast(TransferMessage::StatusRequest)]
    }

    /// The highest position that members with f+1 weight reported reaching.
    fn target(&self) -> Option<u64> {
        let mut reports: Vec<(u64, NodeId)> = self
            .statuses
            .iter()
            .map(|(n, (next, _))| (*next, *n))
            .collect();
        reports.sort_by(|a, b| b.cmp(a));
        let mut weight = Weight(0);
        for (position, node) in reports {
            weight += self.committee.weight(node);
            if weight >= self.committee.validity_threshold() {
                return Some(position);
            }
        }
        None
    }

    /// Ask a peer at the target for the next chunk, if one is ahead.
    fn fetch(&mut self, now: Time, local: Local) -> Vec<Output> {
        if self.busy() {
            return vec![];
        }
        let Some(target) = self.target() else {
            return vec![];
        };
        if target <= local.next_position {
            return vec![];
        }
        let sources: Vec<NodeId> = self
            .statuses
            .iter()
            .filter(|(_, (next, floor))| *next >= target && *floor <= local.next_position)
            .map(|(n, _)| *n)
            .collect();
        // Members with f+1 weight must still keep the next position, or the honest ones
        // may all have pruned it (a faulty member claiming to keep it cannot hide that).
        let keeping = self.committee.weight_of(
            self.statuses
                .iter()
                .filter(|(_, (_, floor))| *floor <= local.next_position)
                .map(|(n, _)| n),
        );
        if keeping < self.committee.validity_threshold() {
            TransferMetrics::add(&self.metrics.beyond_retention, 1);
            return self.ask_checkpoint(now, local, target);
        }
        if sources.is_empty() {
            return vec![];
        }
        let source = sources[self.turn % sources.len()];
        // The next chunk from the next peer: a faulty source that answers with little
        // slows at most its share of the chunks.
        self.turn += 1;
        tracing::debug!(node = %self.id, %source, from = local.next_position, target, "state transfer: fetching");
        self.fetching = Some(Fetching { at: now });
        self.asked.insert(source, now);
        vec![Output::Send(
            source,
            TransferMessage::Fetch {
                from: local.next_position,
            },
        )]
    }

    /// Peers holding f+1 weight no longer keep the next position: ask every peer for the
    /// chain hash before the lowest position members with f+1 weight still keep.
    fn ask_checkpoint(&mut self, now: Time, local: Local, target: u64) -> Vec<Output> {
        let mut floors: Vec<(u64, NodeId)> = self
            .statuses
            .iter()
            .map(|(n, (_, floor))| (*floor, *n))
            .collect();
        floors.sort();
        let mut weight = Weight(0);
        let mut position = None;
        for (floor, node) in floors {
            weight += self.committee.weight(node);
            if weight >= self.committee.validity_threshold() {
                position = Some(floor);
                break;
            }
        }
        // Not the lowest kept position itself but a third of the way from it to the
        // target: the batches of the first entries installed must still be held when
        // their fetches arrive, and peers keep batches only about `gc_depth` rounds
        // longer than the history entries that name them (a node that skipped to the
        // very floor was seen waiting forever for batches its peers collected meanwhile).
        let Some(position) = position
            .map(|p| p + target.saturating_sub(p) / 3)
            .filter(|p| *p > local.next_position && *p < target)
        else {
            return vec![];
        };
        tracing::warn!(node = %self.id, from = local.next_position, to = position, target, "the peers no longer keep this node's next position (beyond their history retention): asking for a checkpoint; the positions before it will be skipped");
        self.checkpoint = Some(Checkpoint {
            position,
            vouches: BTreeMap::new(),
            at: now,
        });
        vec![Output::Broadcast(TransferMessage::VouchRequest {
            position,
        })]
    }

    /// A vouch for the checkpoint asked about: skip to it once f+1 weight agree.
    fn on_checkpoint_vouch(&mut self, from: NodeId, chain: Digest, local: Local) -> Vec<Output> {
        let Some(checkpoint) = &mut self.checkpoint else {
            return vec![];
        };
        checkpoint.vouches.insert(from, chain);
        let backers = checkpoint
            .vouches
            .iter()
            .filter(|(_, c)| **c == chain)
            .map(|(n, _)| n);
        if self.committee.weight_of(backers) < self.committee.validity_threshold() {
            return vec![];
        }
        let position = checkpoint.position;
        self.checkpoint = None;
        if position <= local.next_position {
            return vec![];
        }
        TransferMetrics::add(&self.metrics.checkpoints_installed, 1);
        TransferMetrics::add(
            &self.metrics.positions_skipped,
            position - local.next_position,
        );
        vec![Output::Skip {
            from: local.next_position,
            to: position,
            chain,
        }]
    }

    /// A peer's answer (the requests it makes of us are the driver's to serve).
    pub fn on_message(
        &mut self,
        now: Time,
        from: NodeId,
        message: TransferMessage,
        local: Local,
    ) -> Vec<Output> {
        match message {
            TransferMessage::Status {
                next_position,
                floor,
            } => {
                tracing::debug!(node = %self.id, %from, next_position, floor, "state transfer: status");
                if self.probed_at.is_some() && from != self.id {
                    self.statuses.insert(from, (next_position, floor));
                    self.heard |= self.committee.weight_of(self.statuses.keys())
                        >= self.committee.validity_threshold();
                }
                self.fetch(now, local)
            }
            TransferMessage::Entries { entries } => self.on_entries(now, from, entries, local),
            TransferMessage::Vouch { position, chain } => {
                self.on_vouch(now, from, position, chain, local)
            }
            _ => vec![],
        }
    }

    fn on_entries(
        &mut self,
        now: Time,
        from: NodeId,
        entries: Vec<Committed>,
        local: Local,
    ) -> Vec<Output> {
        // Only from a peer asked recently (a late answer too, once the client asked
        // another), and not while another chunk waits for its vouches.
        let recent = self
            .asked
            .get(&from)
            .is_some_and(|at| now.since(*at) < 2 * REQUEST_TIMEOUT);
        if !recent || self.pending.is_some() {
            return vec![];
        }
        // Drop what the node delivered itself since it asked.
        let entries: Vec<Committed> = entries
            .into_iter()
            .filter(|e| e.position >= local.next_position)
            .take(MAX_ENTRIES)
            .collect();
        if entries.is_empty() {
            // Nothing new: an answer to an earlier request, or the peer no longer keeps
            // the position. The fetch in flight stays (it times out if need be).
            return vec![];
        }
        self.asked.remove(&from);
        self.fetching = None;
        let mut chain = local.chain;
        let mut next = local.next_position;
        let mut valid = true;
        for e in &entries {
            if !valid || e.position != next || chain_after(&chain, e) != e.chain {
                valid = false;
                break;
            }
            chain = e.chain;
            next += 1;
        }
        if !valid {
            tracing::debug!(node = %self.id, %from, entries = entries.len(), next = local.next_position, "state transfer: chunk refused");
            TransferMetrics::add(&self.metrics.chunks_refused, 1);
            return vec![];
        }
        tracing::debug!(node = %self.id, %from, entries = entries.len(), "state transfer: chunk received; asking for vouches");
        let mut vouchers = BTreeSet::new();
        vouchers.insert(from);
        self.pending = Some(Pending {
            source: from,
            entries,
            end: next,
            chain,
            vouchers,
            at: now,
        });
        let mut out = self.install_if_vouched();
        if self.pending.is_some() {
            out.push(Output::Broadcast(TransferMessage::VouchRequest {
                position: next,
            }));
        }
        out
    }

    fn on_vouch(
        &mut self,
        _now: Time,
        from: NodeId,
        position: u64,
        chain: Option<Digest>,
        local: Local,
    ) -> Vec<Output> {
        if let (Some(checkpoint), Some(chain)) = (&self.checkpoint, chain) {
            if checkpoint.position == position && from != self.id {
                return self.on_checkpoint_vouch(from, chain, local);
            }
        }
        let Some(pending) = &mut self.pending else {
            return vec![];
        };
        if position != pending.end || chain != Some(pending.chain) || from == self.id {
            return vec![];
        }
        pending.vouchers.insert(from);
        self.install_if_vouched()
    }

    fn install_if_vouched(&mut self) -> Vec<Output> {
        let Some(pending) = &self.pending else {
            return vec![];
        };
        let weight = self.committee.weight_of(pending.vouchers.iter());
        if weight < self.committee.validity_threshold() {
            return vec![];
        }
        let Some(pending) = self.pending.take() else {
            return vec![];
        };
        TransferMetrics::add(&self.metrics.chunks_installed, 1);
        TransferMetrics::add(
            &self.metrics.entries_installed,
            pending.entries.len() as u64,
        );
        vec![Output::Install(pending.source, pending.entries)]
    }

    /// After an install: fetch the next chunk if the target is still ahead.
    pub fn after_install(&mut self, now: Time, local: Local) -> Vec<Output> {
        self.fetch(now, local)
    }
}

/// A per-peer limit on requests served: at most [`SERVED_PER_SECOND`] per second each,
/// of which at most [`FETCHES_PER_SECOND`] fetches.
pub struct ServeLimit {
    requests: PerMemberRate<Time>,
    fetches: PerMemberRate<Time>,
}

impl Default for ServeLimit {
    fn default() -> Self {
        ServeLimit {
            requests: PerMemberRate::new(SERVED_PER_SECOND),
            fetches: PerMemberRate::new(FETCHES_PER_SECOND),
        }
    }
}

impl ServeLimit {
    /// Whether a request from `peer` at `now` may be served (and count it).
    pub fn admit(&mut self, peer: NodeId, now: Time, fetch: bool) -> bool {
        // Both are counted, so a refused fetch still uses up a request.
        let request = self.requests.admit(peer, now);
        let fetch = !fetch || self.fetches.admit(peer, now);
        request && fetch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mempool::{Certificate, Header};
    use primitives::crypto::QuorumCertificate;
    use primitives::Round;
    use std::sync::Arc;

    fn committee() -> Arc<Committee> {
        let hosts: Vec<String> = (0..4).map(|i| format!("node{i}")).collect();
        Arc::new(Committee::generate(4, 1, &hosts, 7000, Some(1)).unwrap().0)
    }

    fn certificate(round: u64, author: u16) -> Certificate {
        Certificate {
            header: Header::unsigned(
                NodeId(author),
                Round(round),
                vec![(
                    Digest::of(&[round as u8, author as u8]),
                    primitives::WorkerId(0),
                )],
                vec![],
                vec![],
            ),
            votes: QuorumCertificate::Ed25519(vec![]),
        }
    }

    /// A sequence of `n` entries (one anchor per round, alone in its delivery).
    fn sequence(n: u64, salt: u16) -> Vec<Committed> {
        let mut chain = Digest::default();
        (0..n)
            .map(|p| {
                let mut e = Committed {
                    position: p,
                    certificate: certificate(p + 1, salt),
                    block: Digest::of(&p.to_le_bytes()),
                    height: p,
                    duplicates: vec![],
                    committed_round: Round(p),
                    anchor_round: Round(p + 1),
                    chain: Digest::default(),
                };
                e.chain = chain_after(&chain, &e);
                chain = e.chain;
                e
            })
            .collect()
    }

    fn local(entries: &[Committed], next: u64) -> Local {
        Local {
            next_position: next,
            chain: if next == 0 {
                Digest::default()
            } else {
                entries[next as usize - 1].chain
            },
        }
    }

    fn at(ms: u64) -> Time {
        Time(Duration::from_millis(ms))
    }

    fn client() -> Catchup {
        Catchup::new(NodeId(0), committee(), Arc::new(TransferMetrics::default()))
    }

    fn status(c: &mut Catchup, now: Time, from: u16, next: u64, l: Local) -> Vec<Output> {
        c.on_message(
            now,
            NodeId(from),
            TransferMessage::Status {
                next_position: next,
                floor: 0,
            },
            l,
        )
    }

    fn entries(c: &mut Catchup, now: Time, from: NodeId, e: &[Committed], l: Local) -> Vec<Output> {
        let entries = e.to_vec();
        c.on_message(now, from, TransferMessage::Entries { entries }, l)
    }

    fn vouch(
        c: &mut Catchup,
        now: Time,
        from: u16,
        position: u64,
        chain: Digest,
        l: Local,
    ) -> Vec<Output> {
        let chain = Some(chain);
        c.on_message(
            now,
            NodeId(from),
            TransferMessage::Vouch { position, chain },
            l,
        )
    }

    fn fetched_from(out: &[Output]) -> Option<(NodeId, u64)> {
        out.iter().find_map(|o| match o {
            Output::Send(to, TransferMessage::Fetch { from }) => Some((*to, *from)),
            _ => None,
        })
    }

    #[test]
    fn a_chunk_is_installed_only_once_f_plus_one_vouch_for_its_end() {
        let honest = sequence(10, 1);
        let mut c = client();
        let l = local(&honest, 4);
        let out = c.tick(at(0), true, l);
        assert_eq!(out, vec![Output::Broadcast(TransferMessage::StatusRequest)]);
        // One peer alone claims to be ahead: not enough (it may be the faulty one).
        assert!(fetched_from(&status(&mut c, at(10), 1, 10, l)).is_none());
        // A second one: f+1 weight have reached 10.
        let (source, from) = fetched_from(&status(&mut c, at(11), 2, 10, l)).unwrap();
        assert_eq!(from, 4);
        let out = entries(&mut c, at(20), source, &honest[4..], l);
        // The source's word is not enough: it asks everyone for the chain hash at 10.
        assert_eq!(
            out,
            vec![Output::Broadcast(TransferMessage::VouchRequest {
                position: 10
            })]
        );
        // A vouch for another hash, or from the node itself, counts for nothing.
        let other = source.0 % 3 + 1;
        let wrong = vouch(&mut c, at(21), other, 10, Digest::of(b"other"), l);
        assert!(wrong.is_empty());
        let own = vouch(&mut c, at(21), 0, 10, honest[9].chain, l);
        assert!(own.is_empty());
        let out = vouch(&mut c, at(22), other, 10, honest[9].chain, l);
        assert_eq!(out, vec![Output::Install(source, honest[4..].to_vec())]);
    }

    #[test]
    fn a_chunk_that_does_not_extend_the_own_chain_is_refused() {
        let honest = sequence(10, 1);
        let forged = sequence(10, 2); // a different history, internally consistent
        let mut c = client();
        let l = local(&honest, 4);
        c.tick(at(0), true, l);
        status(&mut c, at(1), 1, 10, l);
        let (source, _) = fetched_from(&status(&mut c, at(2), 3, 10, l)).unwrap();
        let out = entries(&mut c, at(3), source, &forged[4..], l);
        assert!(out.is_empty());
        assert_eq!(c.metrics.chunks_refused.load(Ordering::Relaxed), 1);
        // A gap (entries not starting at the next position) is refused too.
        let mut c = client();
        c.tick(at(0), true, l);
        status(&mut c, at(1), 1, 10, l);
        let (source, _) = fetched_from(&status(&mut c, at(2), 3, 10, l)).unwrap();
        let out = entries(&mut c, at(3), source, &honest[5..], l);
        assert!(out.is_empty());
        // Entries from a peer that was not asked are ignored.
        let mut c = client();
        c.tick(at(0), true, l);
        let out = entries(&mut c, at(3), NodeId(2), &honest[4..], l);
        assert!(out.is_empty());
    }

    #[test]
    fn a_silent_source_is_replaced_after_the_timeout() {
        let honest = sequence(10, 1);
        let mut c = client();
        let l = local(&honest, 4);
        c.tick(at(0), true, l);
        status(&mut c, at(1), 1, 10, l);
        let (first, _) = fetched_from(&status(&mut c, at(2), 2, 10, l)).unwrap();
        assert!(c.busy());
        // Still within the timeout: nothing new, even though the probe is due.
        assert!(c.tick(at(1_500), true, l).is_empty());
        // Past it: the fetch is dropped, the peers are probed again (the node still
        // lags: they reported being ahead), and the next of them is asked.
        let out = c.tick(at(2_100), false, l);
        assert_eq!(out, vec![Output::Broadcast(TransferMessage::StatusRequest)]);
        status(&mut c, at(2_101), 1, 10, l);
        let (second, _) = fetched_from(&status(&mut c, at(2_102), 2, 10, l)).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn peers_no_longer_keeping_the_next_position_are_reported() {
        let honest = sequence(10, 1);
        let mut c = client();
        let l = local(&honest, 4);
        c.tick(at(0), true, l);
        for from in 1..4 {
            let out = c.on_message(
                at(1),
                NodeId(from),
                TransferMessage::Status {
                    next_position: 10,
                    floor: 6,
                },
                l,
            );
            assert!(fetched_from(&out).is_none());
        }
        assert!(c.metrics.beyond_retention.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn the_serve_limit_drops_a_flood_but_not_a_steady_peer() {
        let mut limit = ServeLimit::default();
        let admitted = (0..1_000)
            .filter(|_| limit.admit(NodeId(1), at(0), false))
            .count();
        assert_eq!(admitted, SERVED_PER_SECOND as usize);
        assert!(limit.admit(NodeId(2), at(0), false));
        assert!(limit.admit(NodeId(1), at(1_000), false));
        let fetches = (0..100)
            .filter(|_| limit.admit(NodeId(3), at(0), true))
            .count();
        assert_eq!(fetches, FETCHES_PER_SECOND as usize);
    }
}
