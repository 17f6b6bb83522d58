//! The Tendermint replica: the [`Protocol`] implementation. It routes messages to the
//! height in progress (or buffers them for the next heights, or answers a peer that is
//! behind), persists what it signs before it is sent, and turns the round machine's
//! outputs into actions (`replica.rs`) and lagging into catch-up (`sync.rs`).

use super::config::{Config, TimeoutKind};
use super::height::{Environment, Height, Logged};
use super::messages::{Block, Message, VoteKind};
use super::round_machine::{Input, RoundState, Step};
use super::sync::SyncState;
use crate::core::{
    Action, ConsensusError, Context, Counters, Event, Protocol, Rejected, Time, TimerId,
};
use crate::leaders::ProposerSchedule;
use crate::payload::{Availability, PayloadTracker};
use primitives::crypto::{KeyPair, SignatureScheme};
use primitives::{codec, Committee, NodeId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The timer of `OnTimeoutPropose` (one per kind: a later round's replaces it).
pub const PROPOSE_TIMER: TimerId = TimerId::new(1);
/// The timer of `OnTimeoutPrevote`.
pub const PREVOTE_TIMER: TimerId = TimerId::new(2);
/// The timer of `OnTimeoutPrecommit`.
pub const PRECOMMIT_TIMER: TimerId = TimerId::new(3);
/// The catch-up timer (grace before asking, then retries).
pub const SYNC_TIMER: TimerId = TimerId::new(4);
/// The re-gossip timer (periodic, every `regossip_ms`).
pub const GOSSIP_TIMER: TimerId = TimerId::new(5);

/// Largest persisted state accepted on restart.
const MAX_PERSISTED: usize = 64 << 20;

/// What survives a restart: the round machine's state of the current height, the full
/// `validValue_p` (to re-propose it), and what this node signed in its current round
/// (sent again after a restart, never replaced by something conflicting).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    /// `h_p`, `round_p`, `step_p`, lock, valid.
    pub state: RoundState,
    /// The value `state.valid` names.
    pub valid_value: Option<Block>,
    /// Proposal and votes signed in (`state.height`, `state.round`).
    pub signed: Vec<Message>,
}

/// Progress counters.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Progress {
    pub decided: u64,
    pub decided_by_sync: u64,
    pub round_changes: u64,
    pub timeouts: [u64; 3],
    pub proposals: u64,
    pub too_far_ahead: u64,
    pub regossips: u64,
}

/// A Tendermint replica. See the module documentation for its rules.
pub struct Tendermint {
    pub(super) id: NodeId,
    pub(super) committee: Arc<Committee>,
    pub(super) keys: KeyPair,
    pub(super) scheme: SignatureScheme,
    pub(super) config: Config,
    pub(super) proposers: ProposerSchedule,
    pub(super) height: Height,
    pub(super) payload: PayloadTracker,
    /// What this node signed in its current round.
    pub(super) signed: Vec<Message>,
    /// The (height, round) each timeout kind was last scheduled for.
    pub(super) scheduled: [Option<(u64, u64)>; 3],
    pub(super) sync: SyncState,
    /// The (height, round) at the last re-gossip tick.
    pub(super) gossip_mark: Option<(u64, u64)>,
    pub(super) progress: Progress,
}

/// The rules' view of the replica (split borrows of its fields).
pub(super) struct Env<'a> {
    pub me: NodeId,
    pub height: u64,
    pub proposers: &'a ProposerSchedule,
    pub payload: &'a PayloadTracker,
}

impl Environment for Env<'_> {
    fn is_proposer(&self, round: u64) -> bool {
        self.proposers.proposer(self.height, round) == self.me
    }

    fn availability(&self, value: &Block) -> Availability {
        self.payload.availability(&value.payload)
    }
}

/// Index of a timeout kind in per-kind arrays.
pub(super) fn kind_index(kind: TimeoutKind) -> usize {
    match kind {
        TimeoutKind::Propose => 0,
        TimeoutKind::Prevote => 1,
        TimeoutKind::Precommit => 2,
    }
}

/// The timer of a timeout kind.
pub(super) fn timer_of(kind: TimeoutKind) -> TimerId {
    match kind {
        TimeoutKind::Propose => PROPOSE_TIMER,
        TimeoutKind::Prevote => PREVOTE_TIMER,
        TimeoutKind::Precommit => PRECOMMIT_TIMER,
    }
}

impl Tendermint {
    /// A replica with `config`, restored from `persisted` (the last [`Action::Persist`]
    /// state) if given. Fails when that state cannot be decoded.
    pub fn new(
        id: NodeId,
        committee: Arc<Committee>,
        keys: KeyPair,
        scheme: SignatureScheme,
        config: Config,
        persisted: Option<&[u8]>,
    ) -> Result<Self, ConsensusError> {
        let restored = match persisted {
            None => Persisted {
                state: RoundState::new(1),
                ..Persisted::default()
            },
            Some(bytes) => codec::decode::<Persisted>(bytes, MAX_PERSISTED).map_err(|e| {
                ConsensusError::CorruptState {
                    protocol: <Tendermint as Protocol>::NAME,
                    reason: e.to_string(),
                }
            })?,
        };
        let mut state = restored.state;
        // Timers do not survive a restart: the once-per-round rules that schedule them
        // may fire again (they only schedule timeouts, or repeat the same lock).
        state.fired = Default::default();
        let height = Height::new(committee.clone(), state, restored.valid_value);
        let chosen =
            crate::leaders::chosen_leaders(&committee, &config.leaders).map_err(|reason| {
                ConsensusError::Config {
                    protocol: <Tendermint as Protocol>::NAME.into(),
                    reason,
                }
            })?;
        Ok(Tendermint {
            id,
            proposers: ProposerSchedule::new(&committee).with_chosen(chosen),
            committee,
            keys,
            scheme,
            config,
            height,
            payload: PayloadTracker::default(),
            signed: restored.signed,
            scheduled: [None; 3],
            sync: SyncState::default(),
            gossip_mark: None,
            progress: Progress::default(),
        })
    }

    /// `h_p`.
    pub fn current_height(&self) -> u64 {
        self.height.height()
    }

    /// The round machine's state.
    pub fn round_state(&self) -> &RoundState {
        &self.height.state
    }

    /// This replica's keys.
    pub(super) fn keys(&self) -> &KeyPair {
        &self.keys
    }

    /// The state to persist now.
    pub(super) fn persisted(&self) -> Persisted {
        let valid_value = self
            .height
            .state
            .valid
            .and_then(|(_, v)| self.height.value(&v).cloned());
        Persisted {
            state: self.height.state.clone(),
            valid_value,
            signed: self.signed.clone(),
        }
    }

    /// Persist the safety state; `false` (and nothing may be sent that depends on it)
    /// when it cannot be encoded.
    #[must_use]
    pub(super) fn persist(&self, out: &mut Vec<Action<Message>>) -> bool {
        match codec::encode(&self.persisted()) {
            Ok(state) => {
                out.push(Action::Persist { state });
                true
            }
            Err(e) => {
                tracing::error!(node = %self.id, height = self.height.height(), error = %e, "cannot encode the safety state; not sending what depends on it");
                false
            }
        }
    }

    /// Run the rules (starting with `input`), perform what they output, and repeat while
    /// the node's own messages or a decision change the log.
    pub(super) fn run(&mut self, input: Option<Input>, out: &mut Vec<Action<Message>>) {
        let mut input = input;
        for _ in 0..8 {
            let before = (self.height.state.locked, self.height.state.valid);
            let round_before = self.height.state.round;
            let outputs = {
                let env = Env {
                    me: self.id,
                    height: self.height.height(),
                    proposers: &self.proposers,
                    payload: &self.payload,
                };
                self.height.step(input.take(), &env)
            };
            if self.height.state.round > round_before {
                self.progress.round_changes += 1;
            }
            if self.height.state.round != round_before {
                // What was signed in the old round is never needed again.
                self.signed.clear();
            }
            self.fetch_missing(out);
            let changed = (self.height.state.locked, self.height.state.valid) != before;
            if outputs.is_empty() {
                if changed {
                    // Nothing is sent that depends on it here; a later vote persists
                    // again (and is not sent if that fails).
                    let _ = self.persist(out);
                }
                return;
            }
            if changed && !outputs.iter().any(super::replica::signs) {
                let _ = self.persist(out);
            }
            for output in outputs {
                self.perform(output, out);
            }
        }
    }

    /// Start round 0 of the current height if it waits and may start: something to
    /// order, or told not to wait.
    pub(super) fn maybe_start(&mut self, heard_peer: bool, out: &mut Vec<Action<Message>>) {
        if self.height.state.step != Step::Unstarted {
            return;
        }
        if heard_peer || !self.config.wait_for_certificates || self.payload.has_pending() {
            self.run(Some(Input::StartRound(0)), out);
        }
    }

    fn on_message(&mut self, from: NodeId, message: Message, out: &mut Vec<Action<Message>>) {
        let h = self.height.height();
        match message {
            Message::SyncRequest { height } => self.serve(from, height, out),
            Message::SyncReply(decisions) => self.on_decisions(from, decisions, out),
            Message::Proposal(_) | Message::Vote(_) | Message::Polka(_) => {
                let height = message.height().unwrap_or(h);
                if height < h {
                    self.help(from, height, out);
                } else if height > h {
                    self.note_ahead(from, height, out);
                    self.buffer(from, height, message);
                } else {
                    self.maybe_start(true, out);
                    self.log(from, message, out);
                    self.run(None, out);
                    self.arm_sync(out);
                }
            }
        }
    }

    /// Put a message of the current height in the log (evidence for equivocation).
    pub(super) fn log(&mut self, from: NodeId, message: Message, out: &mut Vec<Action<Message>>) {
        let (logged, culprit, detail) = match message {
            Message::Proposal(p) => {
                let detail = format!("two proposals at height {} round {}", p.height, p.round);
                (self.height.add_proposal(p), from, detail)
            }
            Message::Vote(v) => {
                let detail = format!("two {:?}s at height {} round {}", v.kind, v.height, v.round);
                (self.height.add_vote(&v), v.voter, detail)
            }
            Message::Polka(votes) => {
                for v in votes {
                    self.log(from, Message::Vote(v), out);
                }
                return;
            }
            _ => return,
        };
        match logged {
            Logged::Ok => {}
            Logged::TooFarAhead => self.progress.too_far_ahead += 1,
            Logged::ProposalEquivocation => out.push(Action::Evidence {
                culprit,
                kind: "proposal-equivocation",
                detail,
            }),
            Logged::VoteEquivocation => out.push(Action::Evidence {
                culprit,
                kind: "double-vote",
                detail,
            }),
        }
    }

    fn on_start(&mut self, out: &mut Vec<Action<Message>>) {
        out.push(Action::SetTimer {
            id: GOSSIP_TIMER,
            after: std::time::Duration::from_millis(self.config.regossip_ms),
        });
        if self.height.state.step == Step::Unstarted {
            self.maybe_start(false, out);
            return;
        }
        // A restart inside a round: the same messages again (never different ones), our
        // votes counted, and the timeout of the step we are in.
        let (h, round) = (self.height.height(), self.height.state.round);
        for message in self.signed.clone() {
            out.push(super::replica::reliable_broadcast(message.clone()));
            let me = self.id;
            self.log(me, message, out);
        }
        if self.height.state.step == Step::Propose {
            let kind = TimeoutKind::Propose;
            self.scheduled[kind_index(kind)] = Some((h, round));
            out.push(Action::SetTimer {
                id: timer_of(kind),
                after: self.config.timeout(kind, round),
            });
        }
        self.run(None, out);
    }

    fn on_timer(&mut self, id: TimerId, out: &mut Vec<Action<Message>>) {
        if id == SYNC_TIMER {
            self.on_sync_timer(out);
            return;
        }
        if id == GOSSIP_TIMER {
            self.on_gossip_timer(out);
            return;
        }
        let kind = match id {
            PROPOSE_TIMER => TimeoutKind::Propose,
            PREVOTE_TIMER => TimeoutKind::Prevote,
            PRECOMMIT_TIMER => TimeoutKind::Precommit,
            _ => return,
        };
        let Some((height, round)) = self.scheduled[kind_index(kind)].take() else {
            return;
        };
        let current = (self.height.height(), self.height.state.round);
        if (height, round) == current {
            self.progress.timeouts[kind_index(kind)] += 1;
            tracing::debug!(node = %self.id, height, round, ?kind, "timeout");
        }
        self.run(
            Some(Input::Timeout {
                kind,
                height,
                round,
            }),
            out,
        );
    }
}

impl Protocol for Tendermint {
    const NAME: &'static str = "tendermint";
    const DESCRIPTION: &'static str = "Tendermint (Buchman, Kwon, Milosevic, arXiv:1807.04938, Algorithm 1): propose, prevote, precommit with locks and round timeouts";
    type Config = Config;
    type Message = Message;

    fn new(context: Context, config: Config) -> Result<Self, ConsensusError> {
        Tendermint::new(
            context.id,
            context.committee,
            context.keys,
            context.scheme,
            config,
            context.persisted.as_deref(),
        )
    }

    fn verify(&self, from: NodeId, message: &Message) -> Result<(), Rejected> {
        message
            .verify(
                from,
                &self.committee,
                self.scheme,
                &self.proposers,
                &self.config,
            )
            .map_err(|e| Rejected(e.reason()))
    }

    fn handle(&mut self, _now: Time, event: Event<Message>) -> Vec<Action<Message>> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.on_start(&mut out),
            Event::Timer(id) => self.on_timer(id, &mut out),
            Event::Certificate(c) => {
                self.payload
                    .on_certificate_with_parents(c.digest, c.round, &c.parents);
                self.try_pending_decisions(&mut out);
                if self.height.state.step == Step::Unstarted {
                    self.maybe_start(false, &mut out);
                } else {
                    self.run(None, &mut out);
                }
            }
            Event::Horizon { gc_round } => {
                self.payload.prune(gc_round);
                self.run(None, &mut out);
            }
            // Tendermint catches up on decisions itself (SyncRequest); anchors the
            // installed sequence already holds are skipped by the linearizer.
            Event::Installed { .. } => {}
            Event::Message { from, message } => self.on_message(from, message, &mut out),
        }
        out
    }

    fn metrics(&self) -> Counters {
        super::metrics::counters(self)
    }

    fn waiting_for(&self) -> Option<String> {
        let state = &self.height.state;
        let (height, round) = (state.height, state.round);
        let quorum = self.committee.quorum_threshold().0;
        let held = |kind| self.height.keeper.weight(round, kind).0;
        if let Some((r, value)) = state.decision {
            return Some(format!(
                "height {height}: the block decided in round {r} ({value}) or its certificates"
            ));
        }
        if let Some((r, value)) = self.height.keeper.decisive().next() {
            return Some(format!(
                "height {height}: the proposal of {value}, which a quorum precommitted in \
                 round {r} (to decide it), or its certificates"
            ));
        }
        let missing = self.height.values_missing_certificates();
        if missing > 0 {
            return Some(format!(
                "height {height} round {round}: DAG certificates {missing} proposed value(s) name"
            ));
        }
        Some(match state.step {
            Step::Unstarted => {
                format!("height {height}: DAG certificates to start it (none held uncommitted)")
            }
            Step::Propose if !self.height.has_proposal(round) => format!(
                "height {height} round {round}: the proposal of {}, or the propose timeout",
                self.proposers.proposer(height, round)
            ),
            Step::Propose => format!(
                "height {height} round {round}: the proposal's value to be valid (its certificates)"
            ),
            Step::Prevote => format!(
                "height {height} round {round}: a quorum of prevotes for one value or nil, or \
                 the prevote timeout ({} weight of prevotes held in all, {quorum} needed)",
                held(VoteKind::Prevote)
            ),
            Step::Precommit => format!(
                "height {height} round {round}: a quorum of precommits for one value, or the \
                 precommit timeout ({} weight of precommits held in all, {quorum} needed)",
                held(VoteKind::Precommit)
            ),
            Step::Decided => format!("height {height}: decided, entering the next height"),
        })
    }
}

impl Tendermint {
    /// The `kind` vote this node signed in `round` of the current height, if any.
    pub(super) fn signed_vote(&self, kind: VoteKind, round: u64) -> Option<&super::messages::Vote> {
        self.signed.iter().find_map(|m| match m {
            Message::Vote(v) if v.kind == kind && v.round == round => Some(v),
            _ => None,
        })
    }
}
