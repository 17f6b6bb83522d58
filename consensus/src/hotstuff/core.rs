//! The HotStuff state machine.

use super::config::{CommitRule, Config};
use super::messages::{
    genesis_digest, leader, Block, Message, Qc, Tc, Timeout, Vote, MAX_SYNC_CHAIN,
};
use crate::core::{Action, Core, Event, TimerId};
use primitives::crypto::{KeyPair, PartialSignature, QuorumCertificate, SignatureScheme};
use primitives::{codec, Committee, Digest, NodeId, Round, View, Weight};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Most DAG certificate digests remembered as available.
const MAX_KNOWN: usize = 200_000;
/// Most proposals waiting for a parent or payload at once.
const MAX_WAITING: usize = 64;
/// Committed blocks kept to answer peers that are catching up. A replica that falls
/// further behind than this needs a state transfer, which this core does not do.
pub const COMMITTED_BLOCKS_KEPT: usize = 20_000;
/// The timer that retries a block request for a commit, with another peer each time.
pub const SYNC_TIMER: TimerId = TimerId(u64::MAX);
/// How long a block request for a commit waits before asking another peer.
const SYNC_RETRY: std::time::Duration = std::time::Duration::from_millis(300);

/// What must survive a restart for HotStuff to stay safe, and to resume committing
/// where it stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyState {
    /// The highest view this replica voted or timed out in.
    pub last_voted_view: View,
    /// The lock (three-chain rule).
    pub locked_qc: Qc,
    /// The highest QC seen.
    pub high_qc: Qc,
    /// The last committed block and its view.
    pub committed: (Digest, View),
}

impl Default for SafetyState {
    fn default() -> Self {
        SafetyState {
            last_voted_view: View(0),
            locked_qc: Qc::genesis(),
            high_qc: Qc::genesis(),
            committed: (genesis_digest(), View(0)),
        }
    }
}

/// A chained HotStuff replica. See the module documentation for its rules.
pub struct HotStuff {
    id: NodeId,
    committee: Arc<Committee>,
    keys: KeyPair,
    scheme: SignatureScheme,
    config: Config,
    safety: SafetyState,
    view: View,
    high_tc: Option<Tc>,
    consecutive_timeouts: u32,
    /// The view whose timeout last grew the backoff.
    backoff_counted: View,
    timed_out_view: View,
    last_proposed_view: View,
    blocks: BTreeMap<Digest, Block>,
    last_committed: (Digest, View),
    pending_commit: Option<Digest>,
    /// The ancestor a stalled commit waits for, and how many peers were asked.
    sync: Option<(Digest, u32)>,
    /// The most recent committed blocks (oldest first), to answer peers' requests.
    history: BTreeMap<Digest, Block>,
    history_order: VecDeque<Digest>,
    votes: BTreeMap<(View, Digest), (BTreeMap<NodeId, PartialSignature>, Weight)>,
    timeouts: BTreeMap<View, BTreeMap<NodeId, Timeout>>,
    tc_sent: View,
    /// DAG certificates available locally, by round (for bounded memory).
    known: BTreeMap<Digest, Round>,
    /// Certificates seen but not yet carried by any block, in arrival order, with rounds.
    pending: VecDeque<(Digest, Round)>,
    carried: BTreeSet<Digest>,
    /// Leaders that let one of their views end in a TC without a proposal we saw.
    suspected: BTreeSet<NodeId>,
    /// The highest view in which we saw a valid proposal.
    proposal_seen: View,
    /// Proposals waiting for blocks or certificates, by block digest, with what is missing.
    waiting: BTreeMap<Digest, (Block, BTreeSet<Digest>)>,
    /// QCs of the last few views (two in one view is evidence of equivocation; the
    /// Byzantine behaviours build on the second one).
    recent_qcs: BTreeMap<View, Vec<Qc>>,
}

/// Views whose QCs are remembered in `recent_qcs`.
const RECENT_QC_VIEWS: usize = 8;

impl HotStuff {
    /// A replica, optionally restored from the last [`Action::Persist`] state.
    pub fn new(
        id: NodeId,
        committee: Arc<Committee>,
        keys: KeyPair,
        scheme: SignatureScheme,
        config: Config,
        persisted: Option<&[u8]>,
    ) -> Self {
        let safety = persisted
            .and_then(|bytes| codec::decode::<SafetyState>(bytes, 1 << 20).ok())
            .unwrap_or_default();
        HotStuff {
            id,
            committee,
            keys,
            scheme,
            config,
            view: View(0),
            high_tc: None,
            consecutive_timeouts: 0,
            backoff_counted: View(0),
            timed_out_view: View(0),
            last_proposed_view: View(0),
            blocks: BTreeMap::new(),
            last_committed: safety.committed,
            pending_commit: None,
            sync: None,
            history: BTreeMap::new(),
            history_order: VecDeque::new(),
            votes: BTreeMap::new(),
            timeouts: BTreeMap::new(),
            tc_sent: View(0),
            known: BTreeMap::new(),
            pending: VecDeque::new(),
            carried: BTreeSet::new(),
            waiting: BTreeMap::new(),
            suspected: BTreeSet::new(),
            proposal_seen: View(0),
            recent_qcs: BTreeMap::new(),
            safety,
        }
    }

    /// This replica.
    pub(super) fn id(&self) -> NodeId {
        self.id
    }

    /// Its keys.
    pub(super) fn keys(&self) -> &KeyPair {
        &self.keys
    }

    /// Its vote signature scheme.
    pub(super) fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    /// A QC of the same view as `qc` for another block, if one was seen.
    pub(super) fn alternative_qc(&self, qc: &Qc) -> Option<Qc> {
        self.recent_qcs
            .get(&qc.view)?
            .iter()
            .find(|q| q.block != qc.block)
            .cloned()
    }

    /// The newest available DAG certificate that is not in `exclude`, with its round.
    pub(super) fn some_certificate_not_in(
        &self,
        exclude: &[(Digest, Round)],
    ) -> Option<(Digest, Round)> {
        self.known
            .iter()
            .filter(|(d, _)| !exclude.iter().any(|(e, _)| e == *d))
            .max_by_key(|(d, r)| (**r, **d))
            .map(|(d, r)| (*d, *r))
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view
    }

    /// The persisted safety state.
    pub fn safety(&self) -> &SafetyState {
        &self.safety
    }

    /// The last committed block and its view.
    pub fn last_committed(&self) -> (Digest, View) {
        self.last_committed
    }

    pub(super) fn leader_of(&self, view: View) -> NodeId {
        leader(&self.committee, view, self.config.views_per_leader)
    }

    fn persist(&self, out: &mut Vec<Action<Message>>) {
        if let Ok(state) = codec::encode(&self.safety) {
            out.push(Action::Persist { state });
        }
    }

    fn is_known_block(&self, digest: &Digest) -> bool {
        *digest == genesis_digest()
            || self.blocks.contains_key(digest)
            || *digest == self.last_committed.0
    }

    // ----- views and timers -------------------------------------------------------

    fn enter_view(&mut self, view: View, out: &mut Vec<Action<Message>>) {
        if view <= self.view {
            return;
        }
        out.push(Action::CancelTimer {
            id: TimerId(self.view.0),
        });
        self.view = view;
        out.push(Action::SetTimer {
            id: TimerId(view.0),
            after: self.timeout_for(view),
        });
        // Proposals of earlier views can no longer get our vote.
        self.waiting.retain(|_, (b, _)| b.view >= view);
        let keep_from = View(view.0.saturating_sub(1));
        self.votes = self.votes.split_off(&(keep_from, Digest::default()));
        self.timeouts = self.timeouts.split_off(&keep_from);
        if self.leader_of(view) == self.id {
            self.propose(out);
        }
    }

    /// Whether `view` depends on a suspected leader (its own, or the next, who gets its votes).
    fn view_suspected(&self, view: View) -> bool {
        self.suspected.contains(&self.leader_of(view))
            || self.suspected.contains(&self.leader_of(view.next()))
    }

    fn timeout_for(&self, view: View) -> std::time::Duration {
        if self.view_suspected(view) {
            std::time::Duration::from_millis(self.config.suspect_timeout_ms)
        } else {
            self.config.view_timeout(self.consecutive_timeouts)
        }
    }

    fn local_timeout(&mut self, out: &mut Vec<Action<Message>>) {
        let view = self.view;
        if self.timed_out_view < view {
            self.timed_out_view = view;
            // A failure explained by a suspected leader says nothing about the network.
            if !self.view_suspected(view) {
                self.consecutive_timeouts = self.consecutive_timeouts.saturating_add(1);
                self.backoff_counted = view;
            }
        }
        // Never vote in a view we gave up on.
        if self.safety.last_voted_view < view {
            self.safety.last_voted_view = view;
        }
        self.persist(out);
        tracing::debug!(node = %self.id, %view, "view timed out");
        let timeout = Timeout::new(&self.keys, self.id, view, self.safety.high_qc.clone());
        out.push(Action::Broadcast {
            message: Message::Timeout(timeout.clone()),
        });
        // Re-broadcast every base timeout while the view does not end, so that peers
        // that were cut off (a partition that healed, lost datagrams) learn of it soon;
        // the backoff governs only how long a view waits for its leader.
        out.push(Action::SetTimer {
            id: TimerId(view.0),
            after: std::time::Duration::from_millis(self.config.timeout_ms),
        });

        self.on_timeout(timeout, out);
    }

    fn on_timeout(&mut self, timeout: Timeout, out: &mut Vec<Action<Message>>) {
        self.process_qc(&timeout.high_qc.clone(), out);
        if timeout.view < self.view {
            // The voter is still in a view we left (a partition healed, our TC or QC
            // was lost): show it the certificate that ended that view. It re-sends its
            // timeout every base interval, so this repeats until it catches up.
            self.help_laggard(timeout.voter, timeout.view, out);
            return;
        }
        let view = timeout.view;
        let entry = self.timeouts.entry(view).or_default();
        entry.insert(timeout.voter, timeout);
        let weight = self.committee.weight_of(entry.keys());
        if weight >= self.committee.quorum_threshold() {
            let tc = Tc {
                view,
                timeouts: entry
                    .values()
                    .map(|t| (t.voter, t.high_qc.view, t.signature))
                    .collect(),
            };
            if self.tc_sent < view {
                self.tc_sent = view;
                out.push(Action::Broadcast {
                    message: Message::Tc(tc.clone()),
                });
            }
            self.process_tc(tc, out);
        } else if weight >= self.committee.validity_threshold()
            && view == self.view
            && self.timed_out_view < view
        {
            // f+1 replicas gave up on our view: at least one honest did; join them.
            self.local_timeout(out);
        }
    }

    /// Send `peer`, stuck in `view`, whichever of our high TC or high QC moves it
    /// furthest past that view.
    fn help_laggard(&self, peer: NodeId, view: View, out: &mut Vec<Action<Message>>) {
        if peer == self.id {
            return;
        }
        let qc_view = self.safety.high_qc.view;
        match &self.high_tc {
            Some(tc) if tc.view >= view && tc.view >= qc_view => out.push(Action::Send {
                to: peer,
                message: Message::Tc(tc.clone()),
            }),
            _ if qc_view >= view => {
                // The QC travels inside the newest block that carries it.
                let carrier = self
                    .blocks
                    .values()
                    .filter(|b| b.qc.view == qc_view)
                    .max_by_key(|b| b.view);
                if let Some(block) = carrier {
                    out.push(Action::Send {
                        to: peer,
                        message: Message::SyncReply(vec![block.clone()]),
                    });
                }
            }
            _ => {}
        }
    }

    fn process_tc(&mut self, tc: Tc, out: &mut Vec<Action<Message>>) {
        if tc.view < self.view {
            return;
        }
        // The view ended without progress; if its leader never proposed, suspect it,
        // and take back the backoff step its timeout cost: a silent leader says
        // nothing about the network (otherwise every newly crashed leader would double
        // the timeout of the next one).
        if self.proposal_seen < tc.view {
            let silent = self.leader_of(tc.view);
            self.suspected.insert(silent);
            if self.backoff_counted == tc.view {
                self.consecutive_timeouts = self.consecutive_timeouts.saturating_sub(1);
                self.backoff_counted = View(0);
            }
        }
        let next = tc.view.next();
        if self.high_tc.as_ref().is_none_or(|h| h.view < tc.view) {
            self.high_tc = Some(tc);
        }
        self.enter_view(next, out);
    }

    // ----- quorum certificates, locks, commits --------------------------------------

    fn process_qc(&mut self, qc: &Qc, out: &mut Vec<Action<Message>>) {
        let seen = self.recent_qcs.entry(qc.view).or_default();
        if !seen.iter().any(|q| q.block == qc.block) {
            seen.push(qc.clone());
        }
        while self.recent_qcs.len() > RECENT_QC_VIEWS {
            self.recent_qcs.pop_first();
        }
        let mut changed = false;
        if qc.view > self.safety.high_qc.view {
            self.safety.high_qc = qc.clone();
            changed = true;
        }
        if let Some(b_last) = self.blocks.get(&qc.block).cloned() {
            match self.config.commit_rule {
                CommitRule::ThreeChain => {
                    // qc certifies b2; b2.qc certifies b1 (the 2-chain head): lock on it.
                    if b_last.qc.view > self.safety.locked_qc.view {
                        self.safety.locked_qc = b_last.qc.clone();
                        changed = true;
                    }
                    if let Some(b1) = self.blocks.get(&b_last.parent()).cloned() {
                        if let Some(b0) = self.blocks.get(&b1.parent()).cloned() {
                            if b_last.view == b1.view.next() && b1.view == b0.view.next() {
                                self.commit(b0.digest(), out);
                            }
                        }
                    }
                }
                CommitRule::TwoChain => {
                    if let Some(b0) = self.blocks.get(&b_last.parent()).cloned() {
                        if b_last.view == b0.view.next() {
                            self.commit(b0.digest(), out);
                        }
                    }
                }
            }
        }
        if changed {
            self.persist(out);
        }
        if qc.view >= self.view {
            self.consecutive_timeouts = 0;
            self.enter_view(qc.view.next(), out);
        }
    }

    fn commit(&mut self, digest: Digest, out: &mut Vec<Action<Message>>) {
        let Some(block) = self.blocks.get(&digest) else {
            return;
        };
        if block.view <= self.last_committed.1 {
            return;
        }
        // Walk back to the last committed block; every ancestor must be in hand.
        let mut chain = Vec::new();
        let mut cursor = digest;
        loop {
            if cursor == self.last_committed.0 {
                break;
            }
            match self.blocks.get(&cursor) {
                Some(b) if b.view > self.last_committed.1 => {
                    chain.push(b.clone());
                    cursor = b.parent();
                }
                Some(_) => break, // a fork below the committed view: cannot happen with <= f faults
                None => {
                    // Fetch the missing ancestor (and, in the reply, its own ancestors)
                    // and commit when the chain down to the last commit is in hand.
                    self.pending_commit = Some(digest);
                    let hint = block_author_hint(&chain, &self.committee);
                    self.request_ancestor(cursor, hint, out);
                    return;
                }
            }
        }
        for b in chain.into_iter().rev() {
            for (d, _) in &b.payload {
                self.carried.insert(*d);
            }
            tracing::debug!(node = %self.id, view = %b.view, block = %b.digest(), anchors = b.payload.len(), "commit");
            out.push(Action::Commit {
                block: b.digest(),
                height: b.view.0,
                anchors: b.payload.clone(),
            });
            self.last_committed = (b.digest(), b.view);
            self.remember_committed(b);
        }
        self.pending_commit = None;
        // A restart resumes committing above this block.
        self.safety.committed = self.last_committed;
        self.persist(out);
        if self.sync.take().is_some() {
            out.push(Action::CancelTimer { id: SYNC_TIMER });
        }
        // Keep the committed head (ancestry checks stop there) and everything above it.
        let committed_view = self.last_committed.1;
        self.blocks.retain(|_, b| b.view >= committed_view);
        let carried = &self.carried;
        self.pending.retain(|(d, _)| !carried.contains(d));
    }

    /// Keep a committed block for peers that will ask for it, within the bound.
    fn remember_committed(&mut self, block: Block) {
        let digest = block.digest();
        if self.history.insert(digest, block).is_none() {
            self.history_order.push_back(digest);
        }
        while self.history_order.len() > COMMITTED_BLOCKS_KEPT {
            if let Some(old) = self.history_order.pop_front() {
                self.history.remove(&old);
            }
        }
    }

    fn block(&self, digest: &Digest) -> Option<&Block> {
        self.blocks.get(digest).or_else(|| self.history.get(digest))
    }

    /// Ask `peer` for `missing` unless a request for it is already out (its timer
    /// retries with other peers).
    fn request_ancestor(&mut self, missing: Digest, peer: NodeId, out: &mut Vec<Action<Message>>) {
        if self.sync.is_some_and(|(d, _)| d == missing) {
            return;
        }
        tracing::debug!(node = %self.id, view = %self.view, %missing, %peer, "commit waits for an ancestor");
        self.sync = Some((missing, 0));
        let to = if peer == self.id {
            self.peer_after(0)
        } else {
            peer
        };
        out.push(Action::Send {
            to,
            message: Message::SyncRequest(missing),
        });
        out.push(Action::SetTimer {
            id: SYNC_TIMER,
            after: SYNC_RETRY,
        });
    }

    /// The `k`-th other member after this one, round-robin.
    fn peer_after(&self, k: u32) -> NodeId {
        let n = self.committee.size().max(2);
        let me = self.committee.index_of(self.id).unwrap_or(0);
        let offset = 1 + (k as usize) % (n - 1);
        self.committee.id_at((me + offset) % n).unwrap_or(self.id)
    }

    /// The block request of a stalled commit went unanswered: ask the next peer.
    fn retry_sync(&mut self, out: &mut Vec<Action<Message>>) {
        let Some((missing, attempts)) = self.sync else {
            return;
        };
        let attempts = attempts.saturating_add(1);
        self.sync = Some((missing, attempts));
        out.push(Action::Send {
            to: self.peer_after(attempts),
            message: Message::SyncRequest(missing),
        });
        out.push(Action::SetTimer {
            id: SYNC_TIMER,
            after: SYNC_RETRY,
        });
    }

    /// The requested block and as many of its ancestors as one reply carries.
    fn chain_from(&self, digest: &Digest) -> Vec<Block> {
        let mut chain = Vec::new();
        let mut cursor = *digest;
        while chain.len() < MAX_SYNC_CHAIN {
            match self.block(&cursor) {
                Some(b) => {
                    cursor = b.parent();
                    chain.push(b.clone());
                }
                None => break,
            }
        }
        chain
    }

    // ----- proposals and votes -------------------------------------------------------

    fn propose(&mut self, out: &mut Vec<Action<Message>>) {
        let view = self.view;
        if self.last_proposed_view >= view {
            return;
        }
        let qc = self.safety.high_qc.clone();
        let tc = if qc.view.next() == view {
            None
        } else {
            match &self.high_tc {
                Some(tc) if tc.view.next() == view => Some(tc.clone()),
                // No justification for this view yet: wait for a QC or TC.
                _ => return,
            }
        };
        // Nothing to order and nothing waiting to be committed: wait for a certificate
        // (`on_certificate` proposes) rather than spin through empty views.
        let chain_needs_blocks = self
            .blocks
            .values()
            .any(|b| b.view > self.last_committed.1 && !b.payload.is_empty());
        if self.pending.is_empty() && !chain_needs_blocks {
            return;
        }
        let take = self.pending.len().min(self.config.max_block_payload);
        let payload: Vec<(Digest, Round)> = self.pending.iter().take(take).copied().collect();
        let block = Block::new(&self.keys, self.id, view, qc, tc, payload);
        tracing::debug!(node = %self.id, %view, payload = block.payload.len(), "proposing");
        self.last_proposed_view = view;
        out.push(Action::Broadcast {
            message: Message::Propose(block.clone()),
        });
        let me = self.id;
        self.on_proposal(block, me, out);
    }

    fn on_proposal(&mut self, block: Block, from: NodeId, out: &mut Vec<Action<Message>>) {
        if self.leader_of(block.view) != block.author {
            return;
        }
        self.process_qc(&block.qc.clone(), out);
        if let Some(tc) = &block.tc {
            self.process_tc(tc.clone(), out);
        }
        let digest = block.digest();
        // A valid proposal from its leader clears any suspicion of it.
        self.suspected.remove(&block.author);
        if block.view > self.proposal_seen {
            self.proposal_seen = block.view;
        }
        if block.view <= self.last_committed.1 {
            return;
        }
        self.blocks.entry(digest).or_insert_with(|| block.clone());
        // Whoever proposed these certificates, nobody needs to propose them again.
        for (d, _) in &block.payload {
            self.carried.insert(*d);
        }
        let carried = &self.carried;
        self.pending.retain(|(d, _)| !carried.contains(d));
        self.try_vote(block, from, out);
    }

    fn try_vote(&mut self, block: Block, from: NodeId, out: &mut Vec<Action<Message>>) {
        if block.view != self.view || block.view <= self.safety.last_voted_view {
            tracing::trace!(node = %self.id, view = %self.view, block = %block.digest(), last_voted = %self.safety.last_voted_view, "no vote: view");
            return;
        }
        // The parent must be in hand (or committed) to check safety and commit later.
        let parent = block.parent();
        if !self.is_known_block(&parent) && block.qc.view > self.last_committed.1 {
            // Ask whoever sent the block, whoever proposed the parent (our own
            // proposal may extend a QC whose block we never received), and others up
            // to f + 1 peers: a quorum certified the parent, so an honest one holds it.
            let mut ask = BTreeSet::from([from, self.leader_of(block.qc.view)]);
            ask.remove(&self.id);
            let enough = (self.committee.size().saturating_sub(1) / 3 + 1)
                .min(self.committee.size().saturating_sub(1));
            let mut k = 0;
            while ask.len() < enough && k < self.committee.size() as u32 {
                ask.insert(self.peer_after(k));
                k += 1;
            }
            for to in ask {
                out.push(Action::Send {
                    to,
                    message: Message::SyncRequest(parent),
                });
            }
            self.wait_for(block, BTreeSet::from([parent]));
            return;
        }
        // Every certificate of the payload must be available (data availability), and
        // of the round the block says (the linearizer relies on it).
        let wrong_round = block
            .payload
            .iter()
            .any(|(d, r)| self.known.get(d).is_some_and(|known| known != r));
        if wrong_round {
            tracing::debug!(node = %self.id, view = %block.view, "no vote: a payload round is wrong");
            return;
        }
        let missing: Vec<Digest> = block
            .payload
            .iter()
            .map(|(d, _)| *d)
            .filter(|d| !self.known.contains_key(d))
            .collect();
        if !missing.is_empty() {
            tracing::trace!(node = %self.id, view = %block.view, missing = missing.len(), "vote waits for certificates");
            out.push(Action::FetchCertificates {
                digests: missing.clone(),
                from: block.author,
            });
            self.wait_for(block, missing.into_iter().collect());
            return;
        }
        if !self.safe_to_vote(&block) {
            tracing::debug!(node = %self.id, view = %block.view, block = %block.digest(), "no vote: unsafe");
            return;
        }
        tracing::trace!(node = %self.id, view = %block.view, block = %block.digest(), "vote");
        self.safety.last_voted_view = block.view;
        self.persist(out);
        let vote = Vote::new(&self.keys, self.id, block.digest(), block.view, self.scheme);
        let next = self.leader_of(block.view.next());
        if next == self.id {
            self.on_vote(vote, out);
        } else {
            out.push(Action::Send {
                to: next,
                message: Message::Vote(vote),
            });
        }
    }

    /// The voting rule (see the module documentation).
    fn safe_to_vote(&self, block: &Block) -> bool {
        // After a timeout, the block must extend the highest QC the timeout certificate reports.
        if block.qc.view.next() != block.view {
            match &block.tc {
                Some(tc) if tc.view.next() == block.view && block.qc.view >= tc.high_qc_view() => {}
                _ => return false,
            }
        }
        match self.config.commit_rule {
            CommitRule::ThreeChain => {
                let locked = &self.safety.locked_qc;
                block.qc.view > locked.view || self.extends(block, &locked.block, locked.view)
            }
            CommitRule::TwoChain => block.qc.view >= self.safety.locked_qc.view,
        }
    }

    /// Whether `block` descends from `ancestor` (of view `view`), following parents in hand.
    fn extends(&self, block: &Block, ancestor: &Digest, view: View) -> bool {
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

    fn on_vote(&mut self, vote: Vote, out: &mut Vec<Action<Message>>) {
        tracing::trace!(node = %self.id, view = %vote.view, block = %vote.block, voter = %vote.voter, "vote received");
        if self.leader_of(vote.view.next()) != self.id
            || vote.view < self.view.0.saturating_sub(1).into()
        {
            return;
        }
        let key = (vote.view, vote.block);
        let entry = self.votes.entry(key).or_default();
        if entry.0.contains_key(&vote.voter) || entry.1 >= self.committee.quorum_threshold() {
            return;
        }
        entry.0.insert(vote.voter, vote.signature);
        entry.1 += self.committee.weight(vote.voter);
        if entry.1 < self.committee.quorum_threshold() {
            return;
        }
        let shares: Vec<_> = entry.0.iter().map(|(n, s)| (*n, *s)).collect();
        let Ok(votes) = QuorumCertificate::from_shares(&self.committee, self.scheme, &shares)
        else {
            return;
        };
        let qc = Qc {
            block: vote.block,
            view: vote.view,
            votes,
        };
        self.process_qc(&qc, out);
    }

    /// Park a proposal until every digest in `missing` (blocks or certificates) is in hand.
    fn wait_for(&mut self, block: Block, missing: BTreeSet<Digest>) {
        if self.waiting.len() >= MAX_WAITING {
            // Drop the oldest view: it is the least likely to still get a vote.
            if let Some(oldest) = self
                .waiting
                .iter()
                .min_by_key(|(_, (b, _))| b.view)
                .map(|(d, _)| *d)
            {
                self.waiting.remove(&oldest);
            }
        }
        self.waiting.insert(block.digest(), (block, missing));
    }

    /// `arrived` is now in hand: retry the proposals that waited only for it.
    fn wake(&mut self, arrived: &Digest, out: &mut Vec<Action<Message>>) {
        let mut ready = Vec::new();
        for (digest, (_, missing)) in self.waiting.iter_mut() {
            if missing.remove(arrived) && missing.is_empty() {
                ready.push(*digest);
            }
        }
        for digest in ready {
            if let Some((block, _)) = self.waiting.remove(&digest) {
                let author = block.author;
                self.try_vote(block, author, out);
            }
        }
    }

    fn on_certificate(&mut self, digest: Digest, round: Round, out: &mut Vec<Action<Message>>) {
        if self.known.insert(digest, round).is_none() && !self.carried.contains(&digest) {
            self.pending.push_back((digest, round));
        }
        if self.known.len() > MAX_KNOWN {
            if let Some(lowest) = self.known.iter().min_by_key(|(_, r)| **r).map(|(d, _)| *d) {
                self.known.remove(&lowest);
            }
        }
        self.wake(&digest, out);
        if self.leader_of(self.view) == self.id && self.last_proposed_view < self.view {
            self.propose(out);
        }
    }

    fn on_sync_reply(&mut self, chain: Vec<Block>, out: &mut Vec<Action<Message>>) {
        tracing::trace!(node = %self.id, blocks = chain.len(), "blocks received");
        let mut added = Vec::new();
        let mut newest: Option<Qc> = None;
        for block in chain {
            let digest = block.digest();
            if block.view <= self.last_committed.1 || self.blocks.contains_key(&digest) {
                continue;
            }
            if newest.as_ref().is_none_or(|q| q.view < block.qc.view) {
                newest = Some(block.qc.clone());
            }
            self.blocks.insert(digest, block);
            added.push(digest);
        }
        if added.is_empty() {
            return;
        }
        // The newest QC implies everything the older ones in the chain would.
        if let Some(qc) = newest {
            self.process_qc(&qc, out);
        }
        if let Some(pending) = self.pending_commit {
            self.commit(pending, out);
        }
        for digest in added {
            self.wake(&digest, out);
        }
    }
}

/// Who to ask for a missing ancestor: the author of the lowest block walked so far.
fn block_author_hint(chain: &[Block], committee: &Committee) -> NodeId {
    chain
        .last()
        .map(|b| b.author)
        .or_else(|| committee.id_at(0))
        .unwrap_or_default()
}

impl crate::driver::DrivenCore for HotStuff {
    fn view(&self) -> u64 {
        self.view.0
    }

    fn verify(&self, from: NodeId, message: &Message) -> bool {
        let sender_ok = match message {
            Message::Vote(v) => v.voter == from,
            Message::Timeout(t) => t.voter == from,
            _ => true,
        };
        sender_ok
            && message
                .verify(&self.committee, self.scheme, &self.config)
                .is_ok()
    }
}

impl Core for HotStuff {
    type Message = Message;

    fn handle(&mut self, event: Event<Message>) -> Vec<Action<Message>> {
        let mut out = Vec::new();
        match event {
            Event::Start => {
                let start = View(
                    self.safety
                        .high_qc
                        .view
                        .0
                        .max(self.safety.last_voted_view.0),
                )
                .next();
                self.enter_view(start, &mut out);
            }
            Event::Timer(SYNC_TIMER) => self.retry_sync(&mut out),
            Event::Timer(TimerId(view)) => {
                if View(view) == self.view {
                    self.local_timeout(&mut out);
                }
            }
            Event::Certificate { digest, round, .. } => {
                self.on_certificate(digest, round, &mut out)
            }
            Event::Message { from, message } => match message {
                Message::Propose(block) => self.on_proposal(block, from, &mut out),
                Message::Vote(vote) => self.on_vote(vote, &mut out),
                Message::Timeout(timeout) => self.on_timeout(timeout, &mut out),
                Message::Tc(tc) => self.process_tc(tc, &mut out),
                Message::SyncRequest(digest) => {
                    let chain = self.chain_from(&digest);
                    tracing::trace!(node = %self.id, %from, %digest, found = chain.len(), "block request");
                    if !chain.is_empty() {
                        out.push(Action::Send {
                            to: from,
                            message: Message::SyncReply(chain),
                        });
                    }
                }
                Message::SyncReply(block) => self.on_sync_reply(block, &mut out),
            },
        }
        out
    }
}
