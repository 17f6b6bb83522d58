//! Catching up: decided heights kept (with their commit certificates) and served to
//! peers that are behind; messages of the next heights buffered; a node that sees f+1
//! of its peers (by weight) at higher heights, or a commit for a value it never got,
//! asks for the decisions it missed and installs each once its certificates are in hand.

use super::core::{Tendermint, GOSSIP_TIMER, SYNC_TIMER};
use super::messages::{Decision, Message, Vote, VoteKind, MAX_SYNC_DECISIONS};
use super::round_machine::Step;
use crate::core::Action;
use crate::payload::Availability;
use primitives::NodeId;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Decided heights kept to serve peers (beyond: state transfer, which this core does
/// not do yet).
pub const DECISIONS_KEPT: usize = 20_000;
/// Heights above the current one whose messages are buffered.
pub const FUTURE_HEIGHTS: u64 = 2;
/// Most buffered messages per sender and height.
const MAX_BUFFERED_PER_SENDER: usize = 32;
/// How long a node that looks behind waits before asking (it is often deciding
/// already: its peers are a message delay ahead).
const SYNC_GRACE: Duration = Duration::from_millis(200);
/// Most decision replies (each up to [`MAX_SYNC_DECISIONS`]) sent to one peer per
/// re-gossip interval: a peer asking in a loop gets no more.
pub const SERVES_PER_TICK: u32 = 8;
/// How long a catch-up request waits before asking another peer.
const SYNC_RETRY: Duration = Duration::from_millis(1_000);

/// Catch-up state.
#[derive(Debug, Default)]
pub struct SyncState {
    history: VecDeque<Decision>,
    /// Messages of heights above the current one, by height and sender.
    future: BTreeMap<(u64, NodeId), Vec<Message>>,
    /// The highest height each peer was heard at.
    ahead: BTreeMap<NodeId, u64>,
    /// The lowest height each lagging peer was last sent decisions from (forgotten at
    /// every re-gossip tick, so a peer whose reply was lost is helped again).
    helped: BTreeMap<NodeId, u64>,
    /// Decision replies sent to each peer since the last re-gossip tick.
    served: BTreeMap<NodeId, u32>,
    /// Requests refused because a peer asked more than [`SERVES_PER_TICK`] times.
    pub refused: u64,
    /// Verified decisions of heights not reached yet, waiting their turn.
    pending: BTreeMap<u64, Decision>,
    /// Whether the sync timer is running, and how many requests it sent.
    timer: Option<u32>,
    /// Messages dropped because a sender's buffer was full or too far ahead.
    pub dropped: u64,
}

impl SyncState {
    /// Keep a decision to serve.
    pub fn remember(&mut self, decision: Decision) {
        self.pending.remove(&decision.height());
        self.history.push_back(decision);
        while self.history.len() > DECISIONS_KEPT {
            self.history.pop_front();
        }
    }

    /// Take the messages buffered for `height` (and forget lower ones).
    pub fn take_buffered(&mut self, height: u64) -> Vec<(NodeId, Message)> {
        let rest = self
            .future
            .split_off(&(height.saturating_add(1), NodeId(0)));
        let now = std::mem::replace(&mut self.future, rest);
        now.into_iter()
            .filter(|((h, _), _)| *h == height)
            .flat_map(|((_, from), ms)| ms.into_iter().map(move |m| (from, m)))
            .collect()
    }

    /// Decisions from `height` on, at most [`MAX_SYNC_DECISIONS`].
    fn starting_at(&self, height: u64) -> Vec<Decision> {
        let Some(first) = self.history.front().map(|d| d.height()) else {
            return Vec::new();
        };
        if height < first {
            return Vec::new();
        }
        let skip = (height - first) as usize;
        self.history
            .iter()
            .skip(skip)
            .take(MAX_SYNC_DECISIONS)
            .cloned()
            .collect()
    }

    /// Sizes: (decisions kept, buffered messages, verified decisions waiting).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.history.len(),
            self.future.values().map(Vec::len).sum(),
            self.pending.len(),
        )
    }
}

impl Tendermint {
    /// A peer asked for decisions from `height`.
    pub(super) fn serve(&mut self, from: NodeId, height: u64, out: &mut Vec<Action<Message>>) {
        let served = self.sync.served.entry(from).or_insert(0);
        if *served >= SERVES_PER_TICK {
            self.sync.refused += 1;
            return;
        }
        *served += 1;
        let decisions = self.sync.starting_at(height);
        tracing::trace!(node = %self.id, %from, height, found = decisions.len(), "decisions request");
        if !decisions.is_empty() {
            out.push(Action::send_bulk(from, Message::SyncReply(decisions)));
        }
    }

    /// A peer spoke at `height`, below ours: send it what it missed (once per height).
    pub(super) fn help(&mut self, from: NodeId, height: u64, out: &mut Vec<Action<Message>>) {
        if from == self.id || self.sync.helped.get(&from).is_some_and(|h| *h >= height) {
            return;
        }
        self.sync.helped.insert(from, height);
        self.serve(from, height, out);
    }

    /// The periodic re-gossip tick. If the height and round have not moved since the
    /// last tick, broadcast again (best effort) what this node signed in the round: a
    /// peer that dropped those messages (its window, its buffers, a restart) reaches
    /// the thresholds after all, and one at a lower height hears us and is helped. The
    /// per-peer serving budget and the helped marks start afresh.
    pub(super) fn on_gossip_timer(&mut self, out: &mut Vec<Action<Message>>) {
        let now = (self.height.height(), self.height.state.round);
        let started = !matches!(self.height.state.step, Step::Unstarted | Step::Decided);
        if started && self.gossip_mark == Some(now) && !self.signed.is_empty() {
            self.progress.regossips += 1;
            tracing::debug!(node = %self.id, height = now.0, round = now.1, messages = self.signed.len(), "stuck: broadcasting the round's messages again");
            for message in &self.signed {
                out.push(Action::broadcast(message.clone()));
            }
            // Our validValue's proof of lock, which a peer that missed those prevotes
            // needs before it can prevote a re-proposal of it (line 28).
            if let Some(polka) = self.polka() {
                out.push(Action::broadcast(polka));
            }
        }
        self.gossip_mark = Some(now);
        self.sync.helped.clear();
        self.sync.served.clear();
        out.push(Action::SetTimer {
            id: GOSSIP_TIMER,
            after: Duration::from_millis(self.config.regossip_ms),
        });
    }

    /// The prevotes that made `validValue_p` valid in `validRound_p`, as one message.
    pub(super) fn polka(&self) -> Option<Message> {
        let (vr, value) = self.height.state.valid?;
        let h = self.height.height();
        let votes: Vec<Vote> = self
            .height
            .keeper
            .shares(vr, VoteKind::Prevote, &value)
            .into_iter()
            .map(|(voter, signature)| Vote {
                kind: VoteKind::Prevote,
                height: h,
                round: vr,
                value: Some(value),
                voter,
                signature,
            })
            .collect();
        (!votes.is_empty()).then_some(Message::Polka(votes))
    }

    /// Keep a message of a height above ours for when we get there.
    pub(super) fn buffer(&mut self, from: NodeId, height: u64, message: Message) {
        if height > self.height.height().saturating_add(FUTURE_HEIGHTS) {
            self.sync.dropped += 1;
            return;
        }
        let kept = self.sync.future.entry((height, from)).or_default();
        if kept.len() >= MAX_BUFFERED_PER_SENDER {
            self.sync.dropped += 1;
            return;
        }
        kept.push(message);
    }

    /// Whether f+1 weight of peers was heard above our height, or our height has a
    /// commit for a value we do not have.
    fn behind(&self) -> bool {
        let h = self.height.height();
        let ahead = self
            .sync
            .ahead
            .iter()
            .filter(|(_, height)| **height > h)
            .map(|(id, _)| id);
        self.committee.weight_of(ahead) >= self.committee.validity_threshold()
            || self.height.decided_elsewhere()
    }

    /// `from` was heard at `height` (above ours): look behind? Start the grace timer.
    pub(super) fn note_ahead(&mut self, from: NodeId, height: u64, out: &mut Vec<Action<Message>>) {
        let seen = self.sync.ahead.entry(from).or_insert(0);
        *seen = (*seen).max(height);
        self.arm_sync(out);
    }

    /// Start the sync timer if the node looks behind and it is not running.
    pub(super) fn arm_sync(&mut self, out: &mut Vec<Action<Message>>) {
        if self.sync.timer.is_none() && self.behind() {
            self.sync.timer = Some(0);
            out.push(Action::SetTimer {
                id: SYNC_TIMER,
                after: SYNC_GRACE,
            });
        }
    }

    /// Still behind after the grace (or the last request): ask a peer that is ahead.
    pub(super) fn on_sync_timer(&mut self, out: &mut Vec<Action<Message>>) {
        let Some(attempts) = self.sync.timer.take() else {
            return;
        };
        if !self.behind() {
            return;
        }
        let h = self.height.height();
        let mut ahead: Vec<NodeId> = self
            .sync
            .ahead
            .iter()
            .filter(|(id, height)| **height > h && **id != self.id)
            .map(|(id, _)| *id)
            .collect();
        if ahead.is_empty() {
            ahead = self.committee.ids().filter(|i| *i != self.id).collect();
        }
        let Some(peer) = ahead.get(attempts as usize % ahead.len().max(1)).copied() else {
            return;
        };
        tracing::debug!(node = %self.id, height = h, %peer, attempts, "behind: asking for decisions");
        out.push(Action::send(peer, Message::SyncRequest { height: h }));
        self.sync.timer = Some(attempts.saturating_add(1));
        out.push(Action::SetTimer {
            id: SYNC_TIMER,
            after: SYNC_RETRY,
        });
    }

    /// Verified decisions from a peer: keep those of the heights just ahead, install in
    /// order.
    pub(super) fn on_decisions(
        &mut self,
        from: NodeId,
        decisions: Vec<Decision>,
        out: &mut Vec<Action<Message>>,
    ) {
        let h = self.height.height();
        let horizon = h.saturating_add(2 * MAX_SYNC_DECISIONS as u64);
        for d in decisions {
            let height = d.height();
            if height >= h && height < horizon {
                let top = d.value.height;
                self.sync.pending.entry(height).or_insert(d);
                let seen = self.sync.ahead.entry(from).or_insert(0);
                *seen = (*seen).max(top.saturating_add(1));
            }
        }
        self.try_pending_decisions(out);
        self.arm_sync(out);
    }

    /// Install the waiting decisions from the current height on, in order. A decision
    /// is certified by 2f+1 precommits, so f+1 honest members checked `valid(v)`: it is
    /// installed even before this node holds its certificates (the linearizer delivers
    /// their histories once the DAG has them), and the missing ones are fetched.
    pub(super) fn try_pending_decisions(&mut self, out: &mut Vec<Action<Message>>) {
        loop {
            let h = self.height.height();
            self.sync.pending = self.sync.pending.split_off(&h);
            let Some(d) = self.sync.pending.remove(&h) else {
                return;
            };
            if let Availability::Missing(digests) = self.payload.availability(&d.value.payload) {
                let from = self
                    .sync
                    .ahead
                    .iter()
                    .find(|(id, height)| **height > h && **id != self.id)
                    .map(|(id, _)| *id)
                    .unwrap_or(self.id);
                out.push(Action::FetchCertificates { digests, from });
            }
            self.progress.decided_by_sync += 1;
            self.height.learn_value(d.value.clone());
            self.decide(d, out);
        }
    }
}
