//! The Snowman replica: the [`Protocol`] implementation. It issues blocks into the tree
//! once their parent is there and their certificates are held, polls its preferred tip,
//! applies finished polls in order, proposes in its window, serves blocks, and catches
//! up on blocks that f+1 weight of peers say they accepted.

use super::config::{Config, Effective};
use super::messages::{Block, Chit, Message, MAX_ANCESTORS};
use super::polls::{sample, Polls};
use super::tree::{Decided, Tree};
use crate::core::{
    Action, ConsensusError, Context, Counters, Event, Protocol, Rejected, Time, TimerId,
};
use crate::leaders::ProposerSchedule;
use crate::payload::{Availability, PayloadTracker};
use primitives::crypto::KeyPair;
use primitives::{codec, Committee, Digest, NodeId, Weight};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The earliest deadline of a poll in flight.
pub const POLL_TIMER: TimerId = TimerId::new(1);
/// The opening of this node's proposer window on its tip.
pub const PROPOSE_TIMER: TimerId = TimerId::new(2);
/// Asking again for accepted blocks when a catch-up request went unanswered.
pub const CATCH_UP_TIMER: TimerId = TimerId::new(3);

/// Most blocks held that cannot join the tree yet (parent or certificates missing).
pub const MAX_PENDING: usize = 4_096;
/// Most processing blocks in the tree.
pub const MAX_PROCESSING: usize = 4_096;
/// Accepted blocks kept to serve peers.
pub const ACCEPTED_KEPT: usize = 10_000;
/// Own proposals above the last accepted block remembered across restarts.
pub const PROPOSED_KEPT: usize = 64;
/// Largest persisted state accepted on restart.
const MAX_PERSISTED: usize = 16 << 20;

/// What survives a restart: the last accepted block. A restarted node never answers a
/// poll with an accepted block that contradicts one it reported before.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    /// The last accepted block's digest (`Digest::default()`: genesis).
    pub accepted: Digest,
    /// Its height.
    pub accepted_height: u64,
    /// The block itself (`None` at genesis).
    pub block: Option<Block>,
    /// The blocks this node proposed above the last accepted one (sent again after a
    /// restart, and never replaced by a different block on the same parent).
    pub proposed: Vec<Block>,
}

/// Progress counters.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Progress {
    pub accepted: u64,
    pub accepted_by_catch_up: u64,
    pub rejected: u64,
    pub proposed: u64,
    pub polls: u64,
    pub chits: u64,
    pub unknown_votes: u64,
    pub dropped_blocks: u64,
    pub invalid_payloads: u64,
}

/// A Snowman replica. See the module documentation for its rules.
pub struct Snowman {
    pub(super) id: NodeId,
    pub(super) committee: Arc<Committee>,
    pub(super) keys: KeyPair,
    pub(super) config: Config,
    pub(super) params: Effective,
    pub(super) proposers: ProposerSchedule,
    rng: rand_chacha::ChaCha20Rng,
    pub(super) tree: Tree,
    pub(super) payload: PayloadTracker,
    pub(super) polls: Polls,
    /// Blocks waiting for their parent or certificates, by (height, digest).
    pending: BTreeMap<(u64, Digest), Block>,
    /// The heights of pending blocks, by digest.
    pending_ids: BTreeMap<Digest, u64>,
    /// Blocks asked for with `GetAncestors`, and when.
    asked: BTreeMap<Digest, Time>,
    /// Blocks whose missing certificates were asked for.
    fetching: BTreeSet<Digest>,
    /// Accepted blocks kept for serving, by height, and their heights by digest.
    accepted: BTreeMap<u64, Block>,
    accepted_ids: BTreeMap<Digest, u64>,
    /// The preferred tip and since when it is.
    tip: (Digest, Time),
    /// The blocks this node proposed above the last accepted one (at most
    /// [`PROPOSED_KEPT`]).
    proposed: Vec<Block>,
    /// The highest accepted height each peer reported.
    reports: BTreeMap<NodeId, u64>,
    /// Catch-up: per height above ours, blocks peers said they accepted, with who said
    /// (one block per peer and height, so at most one entry per member).
    vouched: BTreeMap<u64, BTreeMap<Digest, (BTreeSet<NodeId>, Block)>>,
    /// The round of catch-up requests in flight: when it was sent, from which height,
    /// and the peers asked that have not answered yet. The next round waits until every
    /// one of them answered, that height is accepted, or [`CATCH_UP_RETRY`] passed.
    catch_up_asked: Option<(Time, u64, BTreeSet<NodeId>)>,
    pub(super) progress: Progress,
    /// Requests for ancestors or accepted blocks answered per peer per second.
    pub(super) serve_rate: crate::serve_rate::ServeRate,
}

/// `GetAncestors` and `GetAccepted` (each answered with up to [`MAX_ANCESTORS`] blocks)
/// answered per peer per second: an honest node asks at most once per poll timeout per
/// held block, and for accepted blocks once per catch-up interval.
const SERVES_PER_SECOND: u32 = 50;
/// How long a round of catch-up requests may go unanswered before the next round asks
/// other peers (at most five rounds of f+1 requests a second, far below what the peers'
/// serve rate admits).
const CATCH_UP_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

impl Snowman {
    /// A replica with `config`, restored from `persisted` if given.
    pub fn new(context: Context, config: Config) -> Result<Self, ConsensusError> {
        let persisted: Persisted = match &context.persisted {
            Some(bytes) => {
                codec::decode(bytes, MAX_PERSISTED).map_err(|e| ConsensusError::CorruptState {
                    protocol: "snowman",
                    reason: e.to_string(),
                })?
            }
            None => Persisted::default(),
        };
        let mut rng = context.rng;
        let first_poll = u64::from(rng.next_u32()) << 32;
        let params = config.effective(
            context.committee.total_weight().0,
            context.committee.quorum_threshold().0,
        );
        let tree = Tree::new(
            persisted.accepted,
            persisted.accepted_height,
            persisted.block.clone(),
        );
        let mut accepted = BTreeMap::new();
        let mut accepted_ids = BTreeMap::new();
        if let Some(b) = persisted.block {
            accepted_ids.insert(persisted.accepted, b.height);
            accepted.insert(b.height, b);
        }
        let chosen = crate::leaders::chosen_leaders(&context.committee, &config.leaders).map_err(
            |reason| ConsensusError::Config {
                protocol: "snowman".into(),
                reason,
            },
        )?;
        Ok(Snowman {
            id: context.id,
            proposers: ProposerSchedule::new(&context.committee).with_chosen(chosen),
            committee: context.committee,
            keys: context.keys,
            config,
            params,
            rng,
            tree,
            payload: PayloadTracker::default(),
            // Poll ids start at a random point, so that chits answering a previous
            // incarnation's polls are not counted for this one's.
            polls: Polls::starting_at(first_poll),
            pending: BTreeMap::new(),
            pending_ids: BTreeMap::new(),
            asked: BTreeMap::new(),
            fetching: BTreeSet::new(),
            accepted,
            accepted_ids,
            tip: (persisted.accepted, context.now),
            proposed: persisted.proposed,
            reports: BTreeMap::new(),
            vouched: BTreeMap::new(),
            catch_up_asked: None,
            progress: Progress::default(),
            serve_rate: crate::serve_rate::ServeRate::new(SERVES_PER_SECOND),
        })
    }

    /// The parameters this committee runs with (K and alphas scaled to it).
    pub fn params(&self) -> Effective {
        self.params
    }

    /// The last accepted block and its height.
    pub fn last_accepted(&self) -> (Digest, u64) {
        self.tree.last_accepted()
    }

    /// A block this node holds: processing, accepted (kept), or pending.
    fn find_block(&self, digest: &Digest) -> Option<&Block> {
        self.tree
            .block(digest)
            .or_else(|| {
                self.accepted_ids
                    .get(digest)
                    .and_then(|h| self.accepted.get(h))
            })
            .or_else(|| {
                self.pending_ids
                    .get(digest)
                    .and_then(|h| self.pending.get(&(*h, *digest)))
            })
    }

    /// Hold a block until it can join the tree. Blocks far above the last accepted one
    /// are not held (a node that far behind catches up on accepted blocks instead).
    fn hold(&mut self, block: Block) {
        let accepted = self.tree.accepted_height();
        let reach = self.config.max_processing + 2 * MAX_ANCESTORS as u64;
        if block.height <= accepted || block.height > accepted.saturating_add(reach) {
            return;
        }
        let key = (block.height, block.digest());
        if self.tree.contains(&key.1) || self.pending.contains_key(&key) {
            return;
        }
        self.pending.insert(key, block);
        self.pending_ids.insert(key.1, key.0);
        while self.pending.len() > MAX_PENDING {
            // Keep the blocks nearest the accepted height: they connect first.
            if let Some(((_, d), _)) = self.pending.pop_last() {
                self.pending_ids.remove(&d);
            }
            self.progress.dropped_blocks += 1;
        }
    }

    /// Ask `from` for what `digest` needs to join the tree: the block itself if this
    /// node lacks it, else the first missing parent below the held blocks it rests on.
    /// The same block is asked for at most once per poll timeout.
    fn fetch_for(
        &mut self,
        digest: Digest,
        from: NodeId,
        now: Time,
        out: &mut Vec<Action<Message>>,
    ) {
        let accepted = self.tree.accepted_height();
        let mut at = digest;
        for _ in 0..=MAX_PENDING {
            if self.tree.contains(&at) || self.accepted_ids.contains_key(&at) {
                return;
            }
            match self.pending_ids.get(&at) {
                // A held block: continue with its parent, unless the parent would be at
                // or below the accepted height (then it is the last accepted block, or
                // the chain is dead).
                Some(h) if *h > accepted + 1 => match self.pending.get(&(*h, at)) {
                    Some(b) => at = b.parent,
                    None => return,
                },
                Some(_) => return,
                None => break,
            }
        }
        let timeout = self.config.poll_timeout();
        self.asked.retain(|_, t| now.since(*t) < timeout);
        if self.asked.len() >= MAX_PENDING || self.asked.contains_key(&at) {
            return;
        }
        self.asked.insert(at, now);
        out.push(Action::send(
            from,
            Message::GetAncestors {
                block: at,
                max: MAX_ANCESTORS as u32,
            },
        ));
    }

    fn unhold(&mut self, key: &(u64, Digest)) -> Option<Block> {
        self.pending_ids.remove(&key.1);
        self.pending.remove(key)
    }

    /// Move held blocks into the tree: parent in the tree and every certificate held
    /// (of the round named). Missing certificates are fetched from the proposer.
    fn issue(&mut self, out: &mut Vec<Action<Message>>) {
        let accepted_height = self.tree.accepted_height();
        let keys: Vec<(u64, Digest)> = self.pending.keys().copied().collect();
        for key in keys {
            if key.0 <= accepted_height {
                self.unhold(&key);
                continue;
            }
            let Some(block) = self.pending.get(&key) else {
                continue;
            };
            if !self.tree.contains(&block.parent) {
                continue;
            }
            // Bounded tree: at most two blocks per (parent, proposer) (the second is
            // evidence of equivocation, and both are kept so that the committee can
            // still converge on either), at most MAX_PROCESSING blocks in all.
            let siblings = self.tree.children_by(&block.parent, block.proposer);
            if siblings >= 2 || self.tree.processing() >= MAX_PROCESSING {
                self.unhold(&key);
                self.progress.dropped_blocks += 1;
                continue;
            }
            match self.payload.availability(&block.payload) {
                Availability::Available => {
                    if let Some(block) = self.unhold(&key) {
                        self.fetching.remove(&key.1);
                        if siblings == 1 {
                            out.push(Action::Evidence {
                                culprit: block.proposer,
                                kind: "block-equivocation",
                                detail: format!("height {}", block.height),
                            });
                        }
                        let _ = self.tree.add(block);
                    }
                }
                Availability::Missing(digests) => {
                    if self.fetching.insert(key.1) {
                        out.push(Action::FetchCertificates {
                            digests,
                            from: block.proposer,
                        });
                    }
                }
                Availability::WrongRound(_) => {
                    // Names a certificate with another round than it has: never valid.
                    self.unhold(&key);
                    self.progress.invalid_payloads += 1;
                }
            }
        }
        while self.fetching.len() > MAX_PENDING {
            self.fetching.pop_first();
        }
    }

    /// Commit what was accepted, persist the new last accepted block.
    fn decided(&mut self, decided: Decided, out: &mut Vec<Action<Message>>) {
        if decided.accepted.is_empty() && decided.rejected.is_empty() {
            return;
        }
        self.progress.rejected += decided.rejected.len() as u64;
        for block in &decided.accepted {
            let digest = block.digest();
            tracing::debug!(node = %self.id, height = block.height, %digest, "accepted");
            out.push(Action::Commit {
                block: digest,
                height: block.height,
                anchors: block.payload.clone(),
            });
            self.payload.mark_carried(&block.payload);
            self.progress.accepted += 1;
            self.accepted_ids.insert(digest, block.height);
            self.accepted.insert(block.height, block.clone());
            while self.accepted.len() > ACCEPTED_KEPT {
                if let Some((_, old)) = self.accepted.pop_first() {
                    self.accepted_ids.remove(&old.digest());
                }
            }
        }
        let accepted_height = self.tree.accepted_height();
        let kept = self
            .pending
            .split_off(&(accepted_height + 1, Digest::default()));
        for (_, d) in std::mem::replace(&mut self.pending, kept).into_keys() {
            self.pending_ids.remove(&d);
        }
        self.vouched = self.vouched.split_off(&(accepted_height + 1));
        self.proposed.retain(|b| b.height > accepted_height);
        if !decided.accepted.is_empty() {
            self.persist(&self.proposed, out);
        }
    }

    /// Persist the last accepted block with `proposed` as the own undecided proposals;
    /// false (and nothing to be sent) if the state cannot be encoded.
    fn persist(&self, proposed: &[Block], out: &mut Vec<Action<Message>>) -> bool {
        let (accepted, accepted_height) = self.tree.last_accepted();
        let state = Persisted {
            accepted,
            accepted_height,
            block: self.accepted.get(&accepted_height).cloned(),
            proposed: proposed.to_vec(),
        };
        match codec::encode(&state) {
            Ok(bytes) => {
                out.push(Action::Persist { state: bytes });
                true
            }
            Err(e) => {
                tracing::warn!(node = %self.id, error = %e, "cannot encode state");
                false
            }
        }
    }

    /// Apply the finished polls, in the order they were made.
    fn apply_polls(&mut self, out: &mut Vec<Action<Message>>) {
        for votes in self.polls.take_finished() {
            let decided = self.tree.record_poll(&votes, &self.params);
            self.decided(decided, out);
        }
    }

    /// Keep `concurrent_repolls` polls of the preferred tip in flight while any block is
    /// processing.
    fn poll(&mut self, now: Time, out: &mut Vec<Action<Message>>) {
        // Finished polls first: they make room for new ones (and may move the tip).
        self.apply_polls(out);
        while self.tree.processing() > 0
            && (self.polls.in_flight() as u64) < self.params.concurrent_repolls
        {
            let (tip, height) = self.tree.preferred_tip();
            let (accepted, accepted_height) = self.tree.last_accepted();
            let sampled = sample(&self.committee, self.params.k, &mut self.rng);
            let mine = sampled.contains_key(&self.id);
            let targets: Vec<NodeId> = sampled.keys().copied().collect();
            let id = self
                .polls
                .start(sampled, now, now.after(self.config.poll_timeout()));
            self.progress.polls += 1;
            for to in targets {
                if to == self.id {
                    continue;
                }
                out.push(Action::send(
                    to,
                    Message::Query {
                        poll: id,
                        block: tip,
                        height,
                        accepted,
                        accepted_height,
                    },
                ));
            }
            if mine {
                // This node's own chit: its preference at the height polled (the tip).
                let vote = self.tree.preferred_at(height);
                self.polls.record(id, self.id, Some(vote), &self.params);
            }
        }
        self.apply_polls(out);
        if let Some(deadline) = self.polls.next_deadline() {
            out.push(Action::SetTimer {
                id: POLL_TIMER,
                after: deadline.since(now),
            });
        }
    }

    /// Propose on the preferred tip when this node's window on it is open, the
    /// pipeline has room and a certificate waits to be ordered.
    /// Returns whether a block was proposed.
    fn propose(&mut self, now: Time, out: &mut Vec<Action<Message>>) -> bool {
        let (tip, tip_height) = self.tree.preferred_tip();
        if tip != self.tip.0 {
            self.tip = (tip, now);
        }
        let height = tip_height + 1;
        // At most PROPOSED_KEPT own blocks undecided: each is remembered (persisted), so
        // that none is ever replaced by a second block on the same parent.
        if height - self.tree.accepted_height() > self.config.max_processing
            || self.proposed.len() >= PROPOSED_KEPT
            || self.proposed.iter().any(|b| b.parent == tip)
        {
            return false;
        }
        let windows = self.proposers.period() as u64;
        let Some(window) = (0..windows).find(|w| self.proposers.proposer(height, *w) == self.id)
        else {
            return false;
        };
        let opens = self
            .tip
            .1
            .after(self.config.proposer_window().saturating_mul(window as u32));
        // Certificates an undecided ancestor carries are not proposed again.
        let carried: BTreeSet<Digest> = self
            .tree
            .processing_chain(&tip)
            .iter()
            .flat_map(|b| b.payload.iter().map(|(d, _)| *d))
            .collect();
        let payload = self
            .payload
            .next_payload_excluding(self.config.max_block_payload, &carried);
        if payload.is_empty() {
            return false;
        }
        if now < opens {
            out.push(Action::SetTimer {
                id: PROPOSE_TIMER,
                after: opens.since(now),
            });
            return false;
        }
        let block = Block::new(&self.keys, tip, height, self.id, window, payload);
        tracing::debug!(node = %self.id, height, window, digest = %block.digest(), "proposing");
        // Persisted before it leaves: a restarted node does not sign a second block on
        // the same parent.
        let mut proposed = self.proposed.clone();
        proposed.push(block.clone());
        if !self.persist(&proposed, out) {
            return false;
        }
        self.proposed = proposed;
        self.progress.proposed += 1;
        out.push(Action::broadcast(Message::Put(block.clone())));
        let _ = self.tree.add(block);
        true
    }

    /// A peer reported its accepted height.
    fn report(&mut self, from: NodeId, height: u64) {
        let r = self.reports.entry(from).or_insert(0);
        *r = (*r).max(height);
    }

    /// The members whose reported accepted height is above ours, and their weight.
    fn ahead(&self) -> (Vec<NodeId>, Weight) {
        let mine = self.tree.accepted_height();
        let ahead: Vec<NodeId> = self
            .reports
            .iter()
            .filter(|(_, h)| **h > mine)
            .map(|(n, _)| *n)
            .collect();
        let weight = self.committee.weight_of(&ahead);
        (ahead, weight)
    }

    /// Catch up: accept the next height's block once f+1 weight of peers said they
    /// accepted it (at least one honest member did, and Snowman's agreement makes every
    /// honest member accept the same block there); ask for more while f+1 weight of
    /// peers report accepted heights above ours.
    fn catch_up(&mut self, now: Time, out: &mut Vec<Action<Message>>) {
        let threshold = self.committee.validity_threshold();
        loop {
            let next = self.tree.accepted_height() + 1;
            let (last, _) = self.tree.last_accepted();
            let Some(candidates) = self.vouched.get(&next) else {
                break;
            };
            let winner = candidates
                .iter()
                .find(|(_, (who, b))| {
                    b.parent == last && self.committee.weight_of(who) >= threshold
                })
                .map(|(d, (_, b))| (*d, b.clone()));
            let Some((digest, block)) = winner else { break };
            if !self.tree.contains(&digest) {
                let _ = self.tree.add(block);
            }
            let decided = self.tree.accept(digest);
            self.progress.accepted_by_catch_up += decided.accepted.len() as u64;
            self.decided(decided, out);
        }
        let (ahead, weight) = self.ahead();
        if weight < threshold {
            return;
        }
        // One round of requests at a time: the next once every peer asked has answered,
        // this round's first height is accepted, or its timeout passed. A single answer
        // does not start a round: each answer starting one would ask f+1 peers again,
        // whose answers would each start another (a storm held back only by the peers'
        // serve rate, measured at thousands of refused requests per second at n = 50).
        let waited = self
            .catch_up_asked
            .as_ref()
            .is_none_or(|(t, from, waiting)| {
                waiting.is_empty()
                    || now.since(*t) >= CATCH_UP_RETRY
                    || self.tree.accepted_height() >= *from
            });
        if !waited {
            return;
        }
        // Ask members ahead of us, in a random order, until they weigh f+1 (a liar
        // among them delays us until the retry asks others).
        let mut order = ahead;
        use rand::seq::SliceRandom;
        order.shuffle(&mut self.rng);
        let mut asked = Weight(0);
        let from = self.tree.accepted_height() + 1;
        let mut waiting = BTreeSet::new();
        for peer in order {
            if asked >= threshold {
                break;
            }
            asked = Weight(asked.0.saturating_add(self.committee.weight(peer).0));
            waiting.insert(peer);
            out.push(Action::send(
                peer,
                Message::GetAccepted {
                    from,
                    max: MAX_ANCESTORS as u32,
                },
            ));
        }
        self.catch_up_asked = Some((now, from, waiting));
        out.push(Action::SetTimer {
            id: CATCH_UP_TIMER,
            after: CATCH_UP_RETRY,
        });
    }

    /// Everything that may follow a change of state.
    fn step(&mut self, now: Time, out: &mut Vec<Action<Message>>) {
        self.issue(out);
        self.catch_up(now, out);
        self.poll(now, out);
        // The polls may have accepted blocks or moved the tip: propose on the new tip,
        // and poll it.
        if self.propose(now, out) {
            self.poll(now, out);
        }
    }

    fn on_message(&mut self, now: Time, from: NodeId, message: Message) -> Vec<Action<Message>> {
        let mut out = Vec::new();
        match message {
            Message::Put(block) => {
                let digest = block.digest();
                self.hold(block);
                self.fetch_for(digest, from, now, &mut out);
            }
            Message::Query {
                poll,
                block,
                height,
                accepted: _,
                accepted_height,
            } => {
                self.report(from, accepted_height);
                if height > self.tree.accepted_height() {
                    self.fetch_for(block, from, now, &mut out);
                }
                let (preferred, _) = self.tree.preferred_tip();
                let (accepted, accepted_height) = self.tree.last_accepted();
                out.push(Action::send(
                    from,
                    Message::Chits(Chit {
                        poll,
                        preferred,
                        preferred_at_height: self.tree.preferred_at(height),
                        accepted,
                        accepted_height,
                    }),
                ));
            }
            Message::Chits(chit) => {
                self.progress.chits += 1;
                self.report(from, chit.accepted_height);
                let vote = [chit.preferred_at_height, chit.preferred]
                    .into_iter()
                    .find(|d| self.tree.contains(d));
                if vote.is_none() {
                    self.progress.unknown_votes += 1;
                }
                if !self.tree.contains(&chit.preferred) {
                    self.fetch_for(chit.preferred, from, now, &mut out);
                }
                self.polls.note_arrival(chit.poll, now);
                self.polls.record(chit.poll, from, vote, &self.params);
            }
            Message::GetAncestors { .. } | Message::GetAccepted { .. }
                if !self.serve_rate.admit(from, now) => {}
            Message::GetAncestors { block, max } => {
                let mut blocks = Vec::new();
                let mut at = block;
                while blocks.len() < (max as usize).min(MAX_ANCESTORS) {
                    let Some(b) = self.find_block(&at) else { break };
                    at = b.parent;
                    blocks.push(b.clone());
                }
                if !blocks.is_empty() {
                    out.push(Action::send_bulk(from, Message::Ancestors(blocks)));
                }
            }
            Message::Ancestors(blocks) => {
                let top = blocks.first().map(Block::digest);
                for b in blocks {
                    self.hold(b);
                }
                // Keep walking down towards our tree.
                if let Some(top) = top {
                    self.fetch_for(top, from, now, &mut out);
                }
            }
            Message::GetAccepted { from: start, max } => {
                let end = start.saturating_add(u64::from(max).min(MAX_ANCESTORS as u64));
                let blocks: Vec<Block> = self
                    .accepted
                    .range(start..end)
                    .map(|(_, b)| b.clone())
                    .collect();
                if !blocks.is_empty() {
                    out.push(Action::send(from, Message::Accepted(blocks)));
                }
            }
            Message::Accepted(blocks) => {
                if let Some((_, _, waiting)) = self.catch_up_asked.as_mut() {
                    waiting.remove(&from);
                }
                let mine = self.tree.accepted_height();
                for b in blocks {
                    if b.height <= mine || b.height > mine + MAX_ANCESTORS as u64 {
                        continue;
                    }
                    self.report(from, b.height);
                    // One vouch per peer and height (its first): a peer cannot fill a
                    // height with variants and crowd out the block others vouch for.
                    let at = self.vouched.entry(b.height).or_default();
                    if at.values().any(|(who, _)| who.contains(&from)) {
                        continue;
                    }
                    at.entry(b.digest())
                        .or_insert_with(|| (BTreeSet::new(), b))
                        .0
                        .insert(from);
                }
            }
        }
        self.step(now, &mut out);
        out
    }
}

impl Protocol for Snowman {
    const NAME: &'static str = "snowman";
    const DESCRIPTION: &'static str = "Snowman: a chain decided by repeated subsampled polls with Snowball counters (Team Rocket et al., arXiv:1906.08936; avalanchego), ordering DAG certificates";
    type Config = Config;
    type Message = Message;

    fn new(context: Context, config: Config) -> Result<Self, ConsensusError> {
        Snowman::new(context, config)
    }

    fn verify(&self, _from: NodeId, message: &Message) -> Result<(), Rejected> {
        let check = |b: &Block| {
            b.verify(&self.committee, &self.proposers, &self.config)
                .map_err(Rejected)
        };
        match message {
            Message::Put(b) => check(b),
            Message::Query { .. } | Message::Chits(_) => Ok(()),
            Message::GetAncestors { max, .. } | Message::GetAccepted { max, .. } => {
                if *max as usize > MAX_ANCESTORS {
                    return Err(Rejected("oversized request"));
                }
                Ok(())
            }
            Message::Ancestors(blocks) => {
                if blocks.len() > MAX_ANCESTORS {
                    return Err(Rejected("oversized reply"));
                }
                if blocks.windows(2).any(|w| w[0].parent != w[1].digest()) {
                    return Err(Rejected("ancestors not a chain"));
                }
                blocks.iter().try_for_each(check)
            }
            Message::Accepted(blocks) => {
                if blocks.len() > MAX_ANCESTORS {
                    return Err(Rejected("oversized reply"));
                }
                if blocks.windows(2).any(|w| w[1].parent != w[0].digest()) {
                    return Err(Rejected("accepted blocks not a chain"));
                }
                blocks.iter().try_for_each(check)
            }
        }
    }

    fn handle(&mut self, now: Time, event: Event<Message>) -> Vec<Action<Message>> {
        match event {
            Event::Start => {
                let mut out = Vec::new();
                for b in self.proposed.clone() {
                    if b.height > self.tree.accepted_height() {
                        out.push(Action::broadcast(Message::Put(b.clone())));
                        self.hold(b);
                    }
                }
                self.tip = (self.tree.preferred_tip().0, now);
                self.step(now, &mut out);
                out
            }
            Event::Message { from, message } => self.on_message(now, from, message),
            Event::Timer(id) => {
                let mut out = Vec::new();
                if id == POLL_TIMER {
                    self.polls.expire(now);
                    self.apply_polls(&mut out);
                } else if id == CATCH_UP_TIMER {
                    self.catch_up_asked = None;
                }
                self.step(now, &mut out);
                out
            }
            Event::Certificate(info) => {
                let mut out = Vec::new();
                self.payload
                    .on_certificate_with_parents(info.digest, info.round, &info.parents);
                self.step(now, &mut out);
                out
            }
            Event::Horizon { gc_round } => {
                self.payload.prune(gc_round);
                Vec::new()
            }
            // Snowman catches up on accepted blocks itself (GetAccepted); anchors the
            // installed sequence already holds are skipped by the linearizer.
            Event::Installed { .. } => Vec::new(),
        }
    }

    fn metrics(&self) -> Counters {
        super::metrics::counters(self)
    }

    fn waiting_for(&self) -> Option<String> {
        let height = self.tree.accepted_height() + 1;
        if self.tree.processing() == 0 {
            return Some(format!(
                "height {height}: a block (from its proposer windows) to poll on; {} held \
                 waiting for a parent or DAG certificates",
                self.pending.len()
            ));
        }
        let (tip, tip_height) = self.tree.preferred_tip();
        Some(format!(
            "height {height}: {} consecutive successful polls (confidence {} held) for the \
             preferred chain to {tip} (height {tip_height}); {} poll(s) in flight",
            self.params.beta,
            self.tree.root_confidence(),
            self.polls.in_flight()
        ))
    }
}
