//! The HotStuff replica: the [`Protocol`] implementation that ties the layers together
//! (safety rules, pacemaker, block tree, vote aggregation, payload availability) and
//! holds the proposal, vote and commit steps.

use super::block_tree::{Ancestry, BlockTree};
use super::config::Config;
use super::messages::{Block, Message, Qc, Tc, Timeout, Vote};
use super::pacemaker::{view_timer, Pacemaker, TimeoutOutcome};
use super::safety::{self, SafetyState};
use crate::core::{
    Action, ConsensusError, Context, Counters, Event, Protocol, Rejected, Time, TimerId,
};
use crate::payload::{Availability, PayloadTracker};
use crate::votes::{Added, VoteAggregator};
use primitives::crypto::{KeyPair, PartialSignature, QuorumCertificate, SignatureScheme};
use primitives::{codec, Committee, Digest, NodeId, Round, View};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Most proposals waiting for a parent or payload at once.
const MAX_WAITING: usize = 64;
/// The timer that retries a block request for a commit, with another peer each time.
pub const SYNC_TIMER: TimerId = TimerId::new(u64::MAX);
/// How long a block request for a commit waits before asking another peer.
const SYNC_RETRY: std::time::Duration = std::time::Duration::from_millis(300);
/// Views for which the first proposal and each voter's first vote are remembered, to
/// recognise equivocation.
const EVIDENCE_VIEWS: u64 = 8;

/// A chained HotStuff replica. See the module documentation for its rules.
pub struct HotStuff {
    id: NodeId,
    committee: Arc<Committee>,
    keys: KeyPair,
    scheme: SignatureScheme,
    config: Config,
    safety: SafetyState,
    pacemaker: Pacemaker,
    tree: BlockTree,
    payload: PayloadTracker,
    votes: VoteAggregator<(View, Digest), (), PartialSignature>,
    last_proposed_view: View,
    /// The block a stalled commit targets.
    pending_commit: Option<Digest>,
    /// The ancestor a stalled commit waits for, and how many peers were asked.
    sync: Option<(Digest, u32)>,
    /// Proposals waiting for blocks or certificates, by block digest, with what is missing.
    waiting: BTreeMap<Digest, (Block, BTreeSet<Digest>)>,
    /// The first proposal seen per recent view, and each voter's first vote (evidence).
    first_proposal: BTreeMap<View, Digest>,
    first_vote: BTreeMap<(View, NodeId), Digest>,
}

impl HotStuff {
    /// A replica with `config`, restored from `persisted` (the last
    /// [`Action::Persist`] state) if given. Fails when that state cannot be decoded.
    pub fn new(
        id: NodeId,
        committee: Arc<Committee>,
        keys: KeyPair,
        scheme: SignatureScheme,
        config: Config,
        persisted: Option<&[u8]>,
    ) -> Result<Self, ConsensusError> {
        let safety = match persisted {
            None => SafetyState::default(),
            Some(bytes) => codec::decode::<SafetyState>(bytes, 1 << 20).map_err(|e| {
                ConsensusError::CorruptState {
                    protocol: <HotStuff as Protocol>::NAME,
                    reason: e.to_string(),
                }
            })?,
        };
        Ok(HotStuff {
            id,
            pacemaker: Pacemaker::new(committee.clone(), config.clone()),
            tree: BlockTree::new(safety.committed),
            committee,
            keys,
            scheme,
            config,
            payload: PayloadTracker::default(),
            votes: VoteAggregator::default(),
            last_proposed_view: View(0),
            pending_commit: None,
            sync: None,
            waiting: BTreeMap::new(),
            first_proposal: BTreeMap::new(),
            first_vote: BTreeMap::new(),
            safety,
        })
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
        self.tree.alternative_qc(qc)
    }

    /// The newest available DAG certificate that is not in `exclude`, with its round.
    pub(super) fn some_certificate_not_in(
        &self,
        exclude: &[(Digest, Round)],
    ) -> Option<(Digest, Round)> {
        self.payload.newest_not_in(exclude)
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.pacemaker.view()
    }

    /// The persisted safety state.
    pub fn safety(&self) -> &SafetyState {
        &self.safety
    }

    /// The last committed block and its view.
    pub fn last_committed(&self) -> (Digest, View) {
        self.tree.last_committed()
    }

    pub(super) fn leader_of(&self, view: View) -> NodeId {
        self.pacemaker.leader_of(view)
    }

    fn persist(&self, out: &mut Vec<Action<Message>>) {
        if let Ok(state) = codec::encode(&self.safety) {
            out.push(Action::Persist { state });
        }
    }

    // ----- views and timeouts ----------------------------------------------------------

    fn enter_view(&mut self, view: View, out: &mut Vec<Action<Message>>) {
        if !self.pacemaker.enter(view, out) {
            return;
        }
        // Proposals of earlier views can no longer get our vote.
        self.waiting.retain(|_, (b, _)| b.view >= view);
        let keep_from = View(view.0.saturating_sub(1));
        self.votes.retain_from((keep_from, Digest::default()));
        let evidence_from = View(view.0.saturating_sub(EVIDENCE_VIEWS));
        self.first_proposal = self.first_proposal.split_off(&evidence_from);
        self.first_vote = self.first_vote.split_off(&(evidence_from, NodeId(0)));
        if self.leader_of(view) == self.id {
            self.propose(out);
        }
    }

    fn local_timeout(&mut self, out: &mut Vec<Action<Message>>) {
        let view = self.view();
        // Never vote in a view we gave up on.
        safety::record_vote(&mut self.safety, view);
        self.persist(out);
        tracing::debug!(node = %self.id, %view, "view timed out");
        let timeout = Timeout::new(&self.keys, self.id, view, self.safety.high_qc.clone());
        out.push(Action::broadcast(Message::Timeout(timeout.clone())));
        self.pacemaker.local_timeout(out);
        self.on_timeout(timeout, out);
    }

    fn on_timeout(&mut self, timeout: Timeout, out: &mut Vec<Action<Message>>) {
        self.process_qc(&timeout.high_qc.clone(), out);
        if timeout.view < self.view() {
            // The voter is still in a view we left (a partition healed, our TC or QC
            // was lost): show it the certificate that ended that view. It re-sends its
            // timeout every base interval, so this repeats until it catches up.
            self.help_laggard(timeout.voter, timeout.view, out);
            return;
        }
        match self.pacemaker.add_timeout(timeout) {
            TimeoutOutcome::Certificate { tc, first } => {
                if first {
                    out.push(Action::broadcast(Message::Tc(tc.clone())));
                }
                self.process_tc(tc, out);
            }
            // f+1 replicas gave up on our view: at least one honest did; join them.
            TimeoutOutcome::Join => self.local_timeout(out),
            TimeoutOutcome::Counted => {}
        }
    }

    /// Send `peer`, stuck in `view`, whichever of our high TC or high QC moves it
    /// furthest past that view.
    fn help_laggard(&self, peer: NodeId, view: View, out: &mut Vec<Action<Message>>) {
        if peer == self.id {
            return;
        }
        let qc_view = self.safety.high_qc.view;
        match self.pacemaker.high_tc() {
            Some(tc) if tc.view >= view && tc.view >= qc_view => {
                out.push(Action::send(peer, Message::Tc(tc.clone())))
            }
            _ if qc_view >= view => {
                if let Some(block) = self.tree.carrier_of_qc(qc_view) {
                    out.push(Action::send(peer, Message::SyncReply(vec![block.clone()])));
                }
            }
            _ => {}
        }
    }

    fn process_tc(&mut self, tc: Tc, out: &mut Vec<Action<Message>>) {
        if let Some(next) = self.pacemaker.on_tc(tc) {
            self.enter_view(next, out);
        }
    }

    // ----- quorum certificates and commits ------------------------------------------

    fn process_qc(&mut self, qc: &Qc, out: &mut Vec<Action<Message>>) {
        self.tree.note_qc(qc);
        let rule = self.config.commit_rule;
        let certified = self.tree.get(&qc.block).cloned();
        let changed = safety::observe_qc(rule, &mut self.safety, qc, certified.as_ref());
        if let Some(b) = &certified {
            let parent = self.tree.get(&b.parent());
            let grandparent = parent.and_then(|p| self.tree.get(&p.parent()));
            if let Some(target) = safety::commit_target(rule, b, parent, grandparent) {
                self.commit(target, out);
            }
        }
        if changed {
            self.persist(out);
        }
        if qc.view >= self.view() {
            self.pacemaker.on_progress();
            self.enter_view(qc.view.next(), out);
        }
    }

    /// Commit `digest` and its uncommitted ancestors (fetching missing ones first).
    fn commit(&mut self, digest: Digest, out: &mut Vec<Action<Message>>) {
        let chain = match self.tree.ancestry(&digest) {
            Ancestry::Stale => return,
            Ancestry::Chain(chain) => chain,
            Ancestry::Missing {
                digest: missing,
                hint,
            } => {
                // Fetch the missing ancestor (and, in the reply, its own ancestors) and
                // commit when the chain down to the last commit is in hand.
                self.pending_commit = Some(digest);
                let hint = hint.or_else(|| self.committee.id_at(0)).unwrap_or_default();
                self.request_ancestor(missing, hint, out);
                return;
            }
        };
        for b in chain.into_iter().rev() {
            self.payload.mark_carried(&b.payload);
            tracing::debug!(node = %self.id, view = %b.view, block = %b.digest(), anchors = b.payload.len(), "commit");
            out.push(Action::Commit {
                block: b.digest(),
                height: b.view.0,
                anchors: b.payload.clone(),
            });
            self.tree.mark_committed(b);
        }
        self.pending_commit = None;
        // A restart resumes committing above this block.
        self.safety.committed = self.tree.last_committed();
        self.persist(out);
        if self.sync.take().is_some() {
            out.push(Action::CancelTimer { id: SYNC_TIMER });
        }
        self.tree.prune();
    }

    /// Ask `peer` for `missing` unless a request for it is already out (its timer
    /// retries with other peers).
    fn request_ancestor(&mut self, missing: Digest, peer: NodeId, out: &mut Vec<Action<Message>>) {
        if self.sync.is_some_and(|(d, _)| d == missing) {
            return;
        }
        tracing::debug!(node = %self.id, view = %self.view(), %missing, %peer, "commit waits for an ancestor");
        self.sync = Some((missing, 0));
        let to = if peer == self.id {
            self.peer_after(0)
        } else {
            peer
        };
        out.push(Action::send(to, Message::SyncRequest(missing)));
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
        out.push(Action::send(
            self.peer_after(attempts),
            Message::SyncRequest(missing),
        ));
        out.push(Action::SetTimer {
            id: SYNC_TIMER,
            after: SYNC_RETRY,
        });
    }

    fn on_sync_reply(&mut self, chain: Vec<Block>, out: &mut Vec<Action<Message>>) {
        tracing::trace!(node = %self.id, blocks = chain.len(), "blocks received");
        let mut added = Vec::new();
        let mut newest: Option<Qc> = None;
        for block in chain {
            let digest = block.digest();
            if block.view <= self.tree.last_committed().1 || self.tree.contains(&digest) {
                continue;
            }
            if newest.as_ref().is_none_or(|q| q.view < block.qc.view) {
                newest = Some(block.qc.clone());
            }
            self.tree.insert(block);
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

impl HotStuff {
    // ----- proposals and votes -------------------------------------------------------

    fn propose(&mut self, out: &mut Vec<Action<Message>>) {
        let view = self.view();
        if self.last_proposed_view >= view {
            return;
        }
        let qc = self.safety.high_qc.clone();
        let tc = if qc.view.next() == view {
            None
        } else {
            match self.pacemaker.high_tc() {
                Some(tc) if tc.view.next() == view => Some(tc.clone()),
                // No justification for this view yet: wait for a QC or TC.
                _ => return,
            }
        };
        // Nothing to order and nothing waiting to be committed: wait for a certificate
        // (`on_certificate` proposes) rather than spin through empty views.
        if !self.payload.has_pending() && !self.tree.has_uncommitted_payload() {
            return;
        }
        let payload = self.payload.next_payload(self.config.max_block_payload);
        let block = Block::new(&self.keys, self.id, view, qc, tc, payload);
        tracing::debug!(node = %self.id, %view, payload = block.payload.len(), "proposing");
        self.last_proposed_view = view;
        out.push(Action::broadcast(Message::Propose(block.clone())));
        let me = self.id;
        self.on_proposal(block, me, out);
    }

    fn on_proposal(&mut self, block: Block, from: NodeId, out: &mut Vec<Action<Message>>) {
        if self.leader_of(block.view) != block.author {
            return;
        }
        let digest = block.digest();
        match self.first_proposal.get(&block.view) {
            Some(first) if *first != digest => out.push(Action::Evidence {
                culprit: block.author,
                kind: "proposal-equivocation",
                detail: format!("two proposals in view {}", block.view),
            }),
            Some(_) => {}
            None => {
                if block.view.0 + EVIDENCE_VIEWS >= self.view().0 {
                    self.first_proposal.insert(block.view, digest);
                }
            }
        }
        self.process_qc(&block.qc.clone(), out);
        if let Some(tc) = &block.tc {
            self.process_tc(tc.clone(), out);
        }
        // A valid proposal from its leader clears any suspicion of it.
        self.pacemaker.on_proposal(block.author, block.view);
        if block.view <= self.tree.last_committed().1 {
            return;
        }
        self.tree.insert(block.clone());
        // Whoever proposed these certificates, nobody needs to propose them again.
        self.payload.mark_carried(&block.payload);
        self.try_vote(block, from, out);
    }

    fn try_vote(&mut self, block: Block, from: NodeId, out: &mut Vec<Action<Message>>) {
        if let Err(why) = safety::may_vote_in(&self.safety, self.view(), block.view) {
            tracing::trace!(node = %self.id, view = %self.view(), block = %block.digest(), ?why, "no vote");
            return;
        }
        // The parent must be in hand (or committed) to check safety and commit later.
        let parent = block.parent();
        if !self.tree.is_known(&parent) && block.qc.view > self.tree.last_committed().1 {
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
                out.push(Action::send(to, Message::SyncRequest(parent)));
            }
            self.wait_for(block, BTreeSet::from([parent]));
            return;
        }
        // Every certificate of the payload must be available (data availability), and
        // of the round the block says (the linearizer relies on it).
        match self.payload.availability(&block.payload) {
            Availability::Available => {}
            Availability::WrongRound(_) => {
                tracing::debug!(node = %self.id, view = %block.view, "no vote: a payload round is wrong");
                return;
            }
            Availability::Missing(missing) => {
                tracing::trace!(node = %self.id, view = %block.view, missing = missing.len(), "vote waits for certificates");
                out.push(Action::FetchCertificates {
                    digests: missing.clone(),
                    from: block.author,
                });
                self.wait_for(block, missing.into_iter().collect());
                return;
            }
        }
        let rule = self.config.commit_rule;
        let locked = self.safety.locked_qc.clone();
        let tree = &self.tree;
        let safe = safety::safe_to_vote(rule, &self.safety, &block, || {
            tree.extends(&block, &locked.block, locked.view)
        });
        if let Err(why) = safe {
            tracing::debug!(node = %self.id, view = %block.view, block = %block.digest(), ?why, "no vote: unsafe");
            return;
        }
        tracing::trace!(node = %self.id, view = %block.view, block = %block.digest(), "vote");
        safety::record_vote(&mut self.safety, block.view);
        self.persist(out);
        let vote = Vote::new(&self.keys, self.id, block.digest(), block.view, self.scheme);
        let next = self.leader_of(block.view.next());
        if next == self.id {
            self.on_vote(vote, out);
        } else {
            out.push(Action::send(next, Message::Vote(vote)));
        }
    }

    fn on_vote(&mut self, vote: Vote, out: &mut Vec<Action<Message>>) {
        tracing::trace!(node = %self.id, view = %vote.view, block = %vote.block, voter = %vote.voter, "vote received");
        if self.leader_of(vote.view.next()) != self.id
            || vote.view < self.view().0.saturating_sub(1).into()
        {
            return;
        }
        match self.first_vote.get(&(vote.view, vote.voter)) {
            Some(first) if *first != vote.block => out.push(Action::Evidence {
                culprit: vote.voter,
                kind: "double-vote",
                detail: format!("votes for two blocks in view {}", vote.view),
            }),
            Some(_) => {}
            None => {
                self.first_vote.insert((vote.view, vote.voter), vote.block);
            }
        }
        // Votes count per (view, block): a QC needs a quorum for that block.
        let quorum = self.committee.quorum_threshold();
        let key = (vote.view, vote.block);
        let Added::Counted { before, after } =
            self.votes
                .add(&self.committee, key, (), vote.voter, vote.signature)
        else {
            return;
        };
        if before >= quorum || after < quorum {
            return;
        }
        let shares = self.votes.shares(&key, &());
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
        self.payload.on_certificate(digest, round);
        self.wake(&digest, out);
        if self.leader_of(self.view()) == self.id && self.last_proposed_view < self.view() {
            self.propose(out);
        }
    }
}

impl Protocol for HotStuff {
    const NAME: &'static str = "hotstuff";
    const DESCRIPTION: &'static str = "chained HotStuff (Yin et al., PODC 2019) with a pacemaker; commit_rule three-chain or two-chain (Jolteon)";
    type Config = Config;
    type Message = Message;

    fn new(context: Context, config: Config) -> Result<Self, ConsensusError> {
        HotStuff::new(
            context.id,
            context.committee,
            context.keys,
            context.scheme,
            config,
            context.persisted.as_deref(),
        )
    }

    fn verify(&self, from: NodeId, message: &Message) -> Result<(), Rejected> {
        let sender_ok = match message {
            Message::Vote(v) => v.voter == from,
            Message::Timeout(t) => t.voter == from,
            _ => true,
        };
        if !sender_ok {
            return Err(Rejected("signer is not the sender"));
        }
        message
            .verify(&self.committee, self.scheme, &self.config)
            .map_err(|e| Rejected(e.reason()))
    }

    fn handle(&mut self, _now: Time, event: Event<Message>) -> Vec<Action<Message>> {
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
            Event::Timer(timer) => {
                if timer == view_timer(self.view()) {
                    self.local_timeout(&mut out);
                }
            }
            Event::Certificate(c) => self.on_certificate(c.digest, c.round, &mut out),
            Event::Horizon { gc_round } => self.payload.prune(gc_round),
            Event::Message { from, message } => match message {
                Message::Propose(block) => self.on_proposal(block, from, &mut out),
                Message::Vote(vote) => self.on_vote(vote, &mut out),
                Message::Timeout(timeout) => self.on_timeout(timeout, &mut out),
                Message::Tc(tc) => self.process_tc(tc, &mut out),
                Message::SyncRequest(digest) => {
                    let chain = self.tree.chain_from(&digest);
                    tracing::trace!(node = %self.id, %from, %digest, found = chain.len(), "block request");
                    if !chain.is_empty() {
                        out.push(Action::send(from, Message::SyncReply(chain)));
                    }
                }
                Message::SyncReply(block) => self.on_sync_reply(block, &mut out),
            },
        }
        out
    }

    fn metrics(&self) -> Counters {
        super::metrics::counters(self)
    }
}

impl HotStuff {
    /// The sizes of the replica's state, for [`super::metrics`].
    pub(super) fn state_sizes(&self) -> super::metrics::StateSizes {
        let (blocks, history) = self.tree.sizes();
        let (timeout_views, suspected) = self.pacemaker.sizes();
        let (known, pending, carried) = self.payload.sizes();
        super::metrics::StateSizes {
            view: self.view().0,
            committed_view: self.tree.last_committed().1 .0,
            high_qc_view: self.safety.high_qc.view.0,
            locked_view: self.safety.locked_qc.view.0,
            blocks,
            history,
            vote_instances: self.votes.instances(),
            timeout_views,
            suspected,
            waiting: self.waiting.len(),
            known,
            pending,
            carried,
        }
    }
}
