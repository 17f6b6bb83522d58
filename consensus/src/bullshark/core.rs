//! The DAG-native replica: it keeps the local DAG, applies the commit rule of its
//! variant on every certificate, commits the anchors the path rule orders (oldest
//! first, each anchor a block of its own), persists the last committed anchor round,
//! and, for Bullshark, applies the timing rule to the DAG proposer. [`Bullshark`] and
//! [`Tusk`] are the two registered protocols over it.

use super::config::{Config, TuskConfig};
use super::dag::{LocalDag, Vertex};
use super::messages::Message;
use super::ordering::{directly_committed, order_anchors, tusk_committed};
use super::timing::{TimingRule, LEADER_TIMER};
use crate::core::{Action, ConsensusError, Context, Counters, Event, Protocol, Rejected, Time};
use crate::leaders::ProposerSchedule;
use primitives::{codec, Committee, NodeId, Round};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Largest persisted state accepted on restart.
const MAX_PERSISTED: usize = 1 << 10;

/// Which commit rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Variant {
    /// f+1 votes in the next round; with the timing rule when `config.timing_rule`.
    Bullshark(Config),
    /// f+1 votes once the wave's third round is complete; no timeouts.
    Tusk,
}

/// What survives a restart: the order resumes above the last committed anchor round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    /// The round of the last committed anchor (0: none yet).
    pub last_committed: Round,
    /// Anchors committed so far.
    pub committed: u64,
    /// Anchor rounds skipped so far (no anchor, or no path to it).
    pub skipped: u64,
}

/// Progress counters (not persisted).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Progress {
    /// Anchors committed by the direct rule.
    pub direct: u64,
    /// Certificates the DAG refused (known already, or below the horizon).
    pub ignored: u64,
    /// The horizon this node's mempool jumped to past uncommitted anchor rounds (it
    /// was cut off while the others ordered and collected them): the order of those
    /// rounds cannot be computed from this DAG any more, and the core stops ordering
    /// rather than deliver a sequence that skips them, until the driver installs the
    /// committed sequence fetched from peers past them ([`Event::Installed`]).
    pub halted_at: Option<Round>,
}

/// A DAG-native ordering replica.
pub struct DagOrderer {
    pub(super) id: NodeId,
    pub(super) committee: Arc<Committee>,
    pub(super) schedule: ProposerSchedule,
    pub(super) variant: Variant,
    pub(super) dag: LocalDag,
    pub(super) state: Persisted,
    pub(super) timing: TimingRule,
    pub(super) progress: Progress,
}

impl DagOrderer {
    /// A replica of `variant`, resuming from `persisted` if given.
    pub fn new(
        id: NodeId,
        committee: Arc<Committee>,
        variant: Variant,
        leaders: &[u16],
        persisted: Option<&[u8]>,
        protocol: &'static str,
    ) -> Result<Self, ConsensusError> {
        let chosen = crate::leaders::chosen_leaders(&committee, leaders).map_err(|reason| {
            ConsensusError::Config {
                protocol: protocol.into(),
                reason,
            }
        })?;
        let state = match persisted {
            None => Persisted::default(),
            Some(bytes) => codec::decode::<Persisted>(bytes, MAX_PERSISTED).map_err(|e| {
                ConsensusError::CorruptState {
                    protocol,
                    reason: e.to_string(),
                }
            })?,
        };
        Ok(DagOrderer {
            id,
            schedule: ProposerSchedule::new(&committee).with_chosen(chosen),
            committee,
            variant,
            dag: LocalDag::default(),
            state,
            timing: TimingRule::default(),
            progress: Progress::default(),
        })
    }

    /// What this replica waits for to commit more (see [`Protocol::waiting_for`]): the
    /// next anchor above the last committed one, or its f+1 votes (and, for Tusk, the
    /// wave's third round).
    pub fn waits_for(&self) -> String {
        if let Some(round) = self.progress.halted_at {
            return format!(
                "the committed sequence past round {}, from peers (this DAG lost it)",
                round.0
            );
        }
        let last = self.state.last_committed.0;
        let round = Round(if last < 2 { 2 } else { last + 2 - last % 2 });
        let leader = super::ordering::leader(&self.schedule, round);
        let (r, r1, r2) = (round.0, round.0 + 1, round.0 + 2);
        let Some(anchor) = super::ordering::anchor(&self.dag, &self.schedule, round) else {
            return format!("round {r}: the anchor of its leader {leader} in the DAG");
        };
        let votes = self.dag.votes(&anchor.digest, round.next(), true).0;
        let needed = self.committee.validity_threshold().0;
        match self.variant {
            Variant::Tusk => format!(
                "wave of round {r} (leader {leader}): f+1 votes in round {r1} ({votes} of \
                 {needed} weight held) and 2f+1 weight of round {r2} ({} held)",
                self.dag.round_weight(round.next().next()).0
            ),
            Variant::Bullshark(_) => format!(
                "round {r} (leader {leader}): f+1 votes for its anchor in round {r1} ({votes} \
                 of {needed} weight held)"
            ),
        }
    }

    /// The round of the last committed anchor.
    pub fn last_committed(&self) -> Round {
        self.state.last_committed
    }

    /// The persisted state.
    pub fn persisted(&self) -> Persisted {
        self.state
    }

    fn timing(&self) -> Option<&Config> {
        match &self.variant {
            Variant::Bullshark(c) if c.timing_rule => Some(c),
            _ => None,
        }
    }

    /// The anchor round a certificate of `round` may complete the commit rule of.
    fn candidate(&self, round: Round) -> Option<Round> {
        match self.variant {
            // Its votes: a certificate of an odd round votes for the anchor below.
            Variant::Bullshark(_) => (round.0 % 2 == 1).then(|| Round(round.0 - 1)),
            // The wave whose second round it is (a late vote), or whose third round it
            // completes.
            Variant::Tusk => Some(Round(if round.0 % 2 == 1 {
                round.0 - 1
            } else {
                round.0.saturating_sub(2)
            })),
        }
    }

    fn on_certificate(&mut self, vertex: Vertex, out: &mut Vec<Action<Message>>) {
        let round = vertex.round;
        if !self.dag.insert(vertex) {
            self.progress.ignored += 1;
            return;
        }
        if self.progress.halted_at.is_some() {
            return;
        }
        if let Some(r) = self.candidate(round) {
            self.try_commit(r, out);
        }
        self.apply_timing(out, false);
    }

    /// Apply the variant's commit rule to the anchor of round `r` (if above the last
    /// committed one).
    fn try_commit(&mut self, r: Round, out: &mut Vec<Action<Message>>) {
        if r <= self.state.last_committed {
            return;
        }
        let committed = match self.variant {
            Variant::Bullshark(_) => {
                directly_committed(&self.dag, &self.schedule, &self.committee, r)
            }
            Variant::Tusk => tusk_committed(&self.dag, &self.schedule, &self.committee, r),
        };
        if let Some(anchor) = committed {
            self.commit(anchor, out);
        }
    }

    /// The driver installed the committed sequence up to anchors of `committed_round`
    /// (fetched from peers, or replayed from the node's history): the order resumes
    /// above it, exactly as on the peers that ordered those anchors themselves, and a
    /// halt for lost rounds ends (the rounds it lost are ordered in what was installed).
    /// Anchors of the DAG above it that already satisfy the commit rule are committed.
    fn on_installed(&mut self, committed_round: Round, out: &mut Vec<Action<Message>>) {
        if committed_round <= self.state.last_committed {
            return;
        }
        tracing::info!(node = %self.id, from = self.state.last_committed.0, to = committed_round.0, "ordering resumes above the installed committed sequence");
        self.state.last_committed = committed_round;
        self.progress.halted_at = None;
        if let Ok(state) = codec::encode(&self.state) {
            out.push(Action::Persist { state });
        }
        let top = self.dag.highest_round_with(primitives::Weight(1));
        let mut r = Round(committed_round.0.saturating_add(2));
        // Start at the lowest round the DAG holds (same parity): below it nothing can
        // commit, and an installed round far below the DAG (found by fuzzing: a gap of
        // 2^32 rounds took 20-30 s here) must not cost a step per round.
        if let Some(low) = self.dag.lowest_round().filter(|low| *low > r) {
            r = Round(low.0 + (low.0 - r.0) % 2);
        }
        while r <= top {
            self.try_commit(r, out);
            r = Round(r.0.max(self.state.last_committed.0) + 2);
        }
        self.apply_timing(out, false);
    }

    /// Commit `anchor` and the earlier anchors the path rule orders before it.
    fn commit(&mut self, anchor: primitives::Digest, out: &mut Vec<Action<Message>>) {
        let (chain, skipped) =
            order_anchors(&self.dag, &self.schedule, anchor, self.state.last_committed);
        let Some((_, top)) = chain.last().copied() else {
            return;
        };
        self.progress.direct += 1;
        for (digest, round) in chain {
            tracing::debug!(node = %self.id, round = round.0, anchor = %digest, "commit anchor");
            out.push(Action::Commit {
                block: digest,
                height: round.0,
                anchors: vec![(digest, round)],
            });
            self.state.committed += 1;
        }
        self.state.skipped += skipped;
        self.state.last_committed = top;
        // After the commits: written with the linearizer's position.
        if let Ok(state) = codec::encode(&self.state) {
            out.push(Action::Persist { state });
        }
    }

    fn apply_timing(&mut self, out: &mut Vec<Action<Message>>, timer: bool) {
        let Some(timeout) = self.timing().map(Config::leader_timeout) else {
            return;
        };
        if timer {
            self.timing
                .on_timer(&self.dag, &self.schedule, &self.committee, timeout, out);
        } else {
            self.timing
                .update(&self.dag, &self.schedule, &self.committee, timeout, out);
        }
    }

    /// The mempool collected every round up to `gc_round`. Normally that is `gc_depth`
    /// below the committed round; above the next anchor round to order, this node lost
    /// rounds it never ordered (see [`Progress::halted_at`]).
    fn on_horizon(&mut self, gc_round: Round) {
        self.dag.prune(gc_round);
        let next_anchor = Round(self.state.last_committed.0 + 2);
        if gc_round >= next_anchor && self.progress.halted_at.is_none() {
            tracing::error!(node = %self.id, committed_round = self.state.last_committed.0, horizon = gc_round.0, "the DAG was collected past anchors not ordered yet: ordering stops (this core needs state transfer to catch up)");
            self.progress.halted_at = Some(gc_round);
        }
    }

    /// Handle an event (the [`Protocol::handle`] of both variants).
    pub fn handle(&mut self, event: Event<Message>) -> Vec<Action<Message>> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.apply_timing(&mut out, false),
            Event::Certificate(c) => self.on_certificate(c.into(), &mut out),
            Event::Horizon { gc_round } => self.on_horizon(gc_round),
            Event::Installed { committed_round } => self.on_installed(committed_round, &mut out),
            Event::Timer(id) if id == LEADER_TIMER => self.apply_timing(&mut out, true),
            Event::Timer(_) => {}
            Event::Message { message, .. } => match message {},
        }
        out
    }
}

/// Bullshark (Spiegelman, Giridharan, Sonnino, Kokoris-Kogias, CCS 2022;
/// arXiv:2201.05677 and arXiv:2209.05633).
pub struct Bullshark(pub DagOrderer);

/// Tusk (Danezis, Kokoris-Kogias, Sonnino, Spiegelman, "Narwhal and Tusk", EuroSys
/// 2022).
pub struct Tusk(pub DagOrderer);

impl Protocol for Bullshark {
    const NAME: &'static str = "bullshark";
    const DESCRIPTION: &'static str = "Bullshark (Spiegelman et al., CCS 2022, arXiv:2209.05633): DAG-native, anchors every second round committed by f+1 DAG votes, with the partially synchronous timing rule";
    type Config = Config;
    type Message = Message;

    fn new(context: Context, config: Config) -> Result<Self, ConsensusError> {
        let leaders = config.leaders.clone();
        DagOrderer::new(
            context.id,
            context.committee,
            Variant::Bullshark(config),
            &leaders,
            context.persisted.as_deref(),
            Self::NAME,
        )
        .map(Bullshark)
    }

    fn verify(&self, _from: NodeId, message: &Message) -> Result<(), Rejected> {
        match *message {}
    }

    fn handle(&mut self, _now: Time, event: Event<Message>) -> Vec<Action<Message>> {
        self.0.handle(event)
    }

    fn metrics(&self) -> Counters {
        super::metrics::counters(&self.0)
    }

    fn waiting_for(&self) -> Option<String> {
        Some(self.0.waits_for())
    }
}

impl Protocol for Tusk {
    const NAME: &'static str = "tusk";
    const DESCRIPTION: &'static str = "Tusk (Danezis et al., Narwhal and Tusk, EuroSys 2022): DAG-native, waves of three rounds, the wave leader committed by f+1 DAG votes (leader by rotation, as the reference implementation)";
    type Config = TuskConfig;
    type Message = Message;

    fn new(context: Context, config: TuskConfig) -> Result<Self, ConsensusError> {
        DagOrderer::new(
            context.id,
            context.committee,
            Variant::Tusk,
            &config.leaders,
            context.persisted.as_deref(),
            Self::NAME,
        )
        .map(Tusk)
    }

    fn verify(&self, _from: NodeId, message: &Message) -> Result<(), Rejected> {
        match *message {}
    }

    fn handle(&mut self, _now: Time, event: Event<Message>) -> Vec<Action<Message>> {
        self.0.handle(event)
    }

    fn metrics(&self) -> Counters {
        super::metrics::counters(&self.0)
    }

    fn waiting_for(&self) -> Option<String> {
        Some(self.0.waits_for())
    }
}
