//! The HotStuff replica: the [`Protocol`] implementation that ties the layers together
//! (safety rules, pacemaker, block tree, vote aggregation, payload availability) and
//! holds the proposal, vote and commit steps.

use super::block_tree::BlockTree;
use super::config::Config;
use super::messages::{Block, Message, Qc};
use super::pacemaker::{view_timer, Pacemaker};
use super::safety::SafetyState;
use crate::core::{
    Action, ConsensusError, Context, Counters, Event, Protocol, Rejected, Time, TimerId,
};
use crate::payload::PayloadTracker;
use crate::votes::VoteAggregator;
use primitives::crypto::{KeyPair, PartialSignature, SignatureScheme};
use primitives::{codec, Committee, Digest, NodeId, Round, View};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The timer that retries a block request for a commit, with another peer each time.
pub const SYNC_TIMER: TimerId = TimerId::new(u64::MAX);
/// How long a block request for a commit waits before asking another peer.
pub(super) const SYNC_RETRY: std::time::Duration = std::time::Duration::from_millis(300);

/// A chained HotStuff replica. See the module documentation for its rules.
pub struct HotStuff {
    pub(super) id: NodeId,
    pub(super) committee: Arc<Committee>,
    pub(super) keys: KeyPair,
    pub(super) scheme: SignatureScheme,
    pub(super) config: Config,
    pub(super) safety: SafetyState,
    pub(super) pacemaker: Pacemaker,
    pub(super) tree: BlockTree,
    pub(super) payload: PayloadTracker,
    pub(super) votes: VoteAggregator<(View, Digest), (), PartialSignature>,
    pub(super) last_proposed_view: View,
    /// The block a stalled commit targets.
    pub(super) pending_commit: Option<Digest>,
    /// The ancestor a stalled commit waits for, and how many peers were asked.
    pub(super) sync: Option<(Digest, u32)>,
    /// Proposals waiting for blocks or certificates, by block digest, with what is missing.
    pub(super) waiting: BTreeMap<Digest, (Block, BTreeSet<Digest>)>,
    /// The first proposal seen per recent view, and each voter's first vote (evidence).
    pub(super) first_proposal: BTreeMap<View, Digest>,
    pub(super) first_vote: BTreeMap<(View, NodeId), Digest>,
    /// What a message may make this replica keep (views ahead, blocks and votes per view).
    pub(super) window: super::window::Window,
    /// Block requests answered per peer per second.
    pub(super) serve_rate: crate::serve_rate::ServeRate,
    /// The time of the event being handled (the pacemaker times views with it).
    pub(super) now: Time,
}

/// Block requests (`SyncRequest`, each answered with up to 64 blocks) answered per peer
/// per second: an honest replica asks f + 1 peers once per missing parent and retries
/// every 300 ms, far below it.
pub(super) const SYNC_SERVES_PER_SECOND: u32 = 20;

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
        crate::leaders::chosen_leaders(&committee, &config.leaders).map_err(|reason| {
            ConsensusError::Config {
                protocol: <HotStuff as Protocol>::NAME.into(),
                reason,
            }
        })?;
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
            pacemaker: Pacemaker::new(id, committee.clone(), config.clone()),
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
            window: Default::default(),
            serve_rate: crate::serve_rate::ServeRate::new(SYNC_SERVES_PER_SECOND),
            now: Time::default(),
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

    /// What this replica waits for to commit more (see [`Protocol::waiting_for`]).
    pub(super) fn waits_for(&self) -> String {
        if let Some((ancestor, asked)) = self.sync {
            return format!(
                "block {ancestor}, an ancestor of a block to commit (asked {asked} peer(s))"
            );
        }
        let view = self.view();
        let v = view.0;
        let quorum = self.committee.quorum_threshold().0;
        let timeouts = self.pacemaker.timeout_weight(view).0;
        if let Some((block, (_, missing))) = self.waiting.iter().next() {
            return format!(
                "view {v}: {} block(s) or DAG certificate(s) proposal {block} needs",
                missing.len()
            );
        }
        let leader = self.leader_of(view);
        let Some(block) = self.first_proposal.get(&view) else {
            return format!(
                "view {v}: a proposal from its leader {leader}, or a quorum of timeouts \
                 ({timeouts} of {quorum} weight held)"
            );
        };
        let collector = self.leader_of(view.next());
        if collector == self.id {
            let votes = self.votes.weight(&(view, *block), &()).0;
            return format!(
                "view {v}: votes for block {block} ({votes} of {quorum} weight held, \
                 collected here for the next view), or a quorum of timeouts ({timeouts})"
            );
        }
        format!(
            "view {v}: the next leader {collector}'s proposal with a QC for block {block}, \
             or a quorum of timeouts ({timeouts} of {quorum} weight held)"
        )
    }

    pub(super) fn leader_of(&self, view: View) -> NodeId {
        self.pacemaker.leader_of(view)
    }

    pub(super) fn persist(&self, out: &mut Vec<Action<Message>>) {
        if let Ok(state) = codec::encode(&self.safety) {
            out.push(Action::Persist { state });
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

    fn handle(&mut self, now: Time, event: Event<Message>) -> Vec<Action<Message>> {
        self.now = self.now.max(now);
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
            Event::Certificate(c) => self.on_certificate(c.digest, c.round, &c.parents, &mut out),
            Event::Horizon { gc_round } => self.payload.prune(gc_round),
            // HotStuff catches up on blocks itself; the anchors of blocks it commits
            // that the installed sequence already holds are skipped by the linearizer.
            Event::Installed { .. } => {}
            Event::Message { from, message } => match message {
                Message::Propose(block) => self.on_proposal(block, from, &mut out),
                Message::Vote(vote) => self.on_vote(vote, &mut out),
                Message::Timeout(timeout) => self.on_timeout(timeout, &mut out),
                Message::Tc(tc) => self.process_tc(tc, &mut out),
                Message::SyncRequest { .. } if !self.serve_rate.admit(from, now) => {}
                Message::SyncRequest { block, above } => {
                    let chain = self.tree.chain_from(&block, above);
                    tracing::trace!(node = %self.id, %from, %block, found = chain.len(), "block request");
                    if !chain.is_empty() {
                        out.push(Action::send_bulk(from, Message::SyncReply(chain)));
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

    fn waiting_for(&self) -> Option<String> {
        Some(self.waits_for())
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
            second_votes: self.window.sizes().1,
            refused_ahead: self.window.refused_ahead,
            refused_extra: self.window.refused_extra,
            refused_requests: self.serve_rate.refused(),
            round_trip_ms: self
                .pacemaker
                .round_trip()
                .map_or(0, |d| d.as_millis() as u64),
            base_timeout_ms: self.pacemaker.base_timeout().as_millis() as u64,
        }
    }
}
