//! Byzantine behaviours, written once as a wrapper around any core.
//!
//! [`Byzantine`] wraps a core and rewrites the actions it emits: the core runs its
//! honest rules, the wrapper lies about them on the wire. What a lie looks like for a
//! given protocol (a conflicting proposal, a vote for another block, a broken
//! signature) comes from the protocol's [`Adversarial`] hooks, so every behaviour
//! applies to every core that implements them.
//!
//! Equivocation is a split-brain attack. The honest members are split into two
//! halves (by id: the lower half is side A, the rest side B); an equivocating leader
//! sends its proposal to one side and a conflicting one to the other, and colluding
//! Byzantine members receive both. Colluders share a [`ForkBook`] that records which
//! side each block was shown to, so that a proposal built on a side-B parent goes to
//! side B again, and a broadcast vote for a block goes only to the side that saw it: with more than f colluders that also double-vote, each side can
//! certify and commit its own chain, and the checkers must see the disagreement.

use crate::core::{Action, Counters, Delivery, Event, Protocol, Rejected, Time, TimerId};
use primitives::{Digest, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

/// A consensus-level misbehaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// As leader, send conflicting proposals to the two halves of the honest members.
    Equivocate,
    /// Vote for every proposal of a view it sees, not just the first.
    DoubleVote,
    /// Never send a vote.
    WithholdVotes,
    /// Send every message with a broken signature.
    InvalidSignatures,
    /// Re-send old messages (to their first recipients) alongside new ones.
    Replay,
    /// With every message it sends, broadcast validly signed messages for instances far
    /// ahead (views, heights or rounds up to a million ahead), for blocks nobody has:
    /// an honest node must not keep what they ask it to keep.
    FutureFlood,
}

/// What a message is, as far as the behaviours care.
///
/// An *instance* is the protocol's unit of one vote per replica: (view, 0) for
/// HotStuff, (height, round) for Tendermint, (height, 0) for Snowman.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// A proposal (a leader's, or a block pushed for a poll).
    Proposal {
        /// Its instance.
        instance: (u64, u64),
        /// The proposed block.
        block: Digest,
        /// The block it extends (its own digest if the protocol has no parents).
        parent: Digest,
    },
    /// A vote.
    Vote {
        /// Its instance.
        instance: (u64, u64),
        /// The block voted for.
        block: Digest,
    },
    /// Anything else.
    Other,
}

/// The protocol-specific half of the behaviours: how to lie in this protocol. Each
/// protocol implements it in its own folder (`<protocol>/adversarial.rs`); a protocol
/// without proposals or votes of its own (DAG-native cores, whose votes are DAG edges)
/// keeps the defaults and is attacked through the mempool's behaviours instead.
pub trait Adversarial: Protocol {
    /// Whether a conflicting proposal on the same parent is already a fork worth
    /// splitting (Snowman: two siblings), so an equivocating leader splits at once
    /// instead of holding its proposal for a second certified parent (HotStuff).
    const FORKS_ON_ONE_PARENT: bool = false;
    /// Classify a message.
    fn kind(message: &Self::Message) -> MessageKind;
    /// The instance this replica works on now, numbered from 1 as the chosen leaders of
    /// its configuration are (HotStuff: its view; Tendermint: its height; Snowman: the
    /// height it decides next); 0 for a core without messages of its own. Twins
    /// testing partitions what a replica sends by it, as the reference implementation
    /// of the paper's generator does by the sender's view.
    fn twins_instance(&self) -> u64 {
        0
    }
    /// A validly signed proposal for the same instance that conflicts with `proposal`
    /// (another payload, and another parent where the replica can find one); `None` if
    /// the core cannot make one.
    fn conflicting_proposal(&self, _proposal: &Self::Message) -> Option<Self::Message> {
        None
    }
    /// Validly signed votes of this replica for `proposal` (every vote the protocol
    /// casts for a proposal: HotStuff's one vote, Tendermint's prevote and precommit),
    /// each with where the protocol sends it (`None`: to everyone).
    fn votes_for(&self, _proposal: &Self::Message) -> Vec<(Option<NodeId>, Self::Message)> {
        Vec::new()
    }
    /// `message` with its signature broken (receivers must refuse it).
    fn with_bad_signature(&self, message: &Self::Message) -> Self::Message;
    /// Validly signed messages of this replica like `message` (same kinds), but for the
    /// instance `ahead` beyond it and for blocks that do not exist (`seed` varies them):
    /// what a future flood sends. Empty if the protocol has no such messages.
    fn far_ahead(&self, _message: &Self::Message, _ahead: u64, _seed: u64) -> Vec<Self::Message> {
        Vec::new()
    }
    /// A vote sent to one member, rewritten to favour the block of the split that
    /// member's `side` was shown (`book` says which block went to which side): for
    /// protocols whose votes answer one asker (Snowman's chits), so that colluders tell
    /// each side its own block is preferred. `None`: send the vote as it is.
    fn tailor_vote(
        &self,
        _vote: &Self::Message,
        _side: Side,
        _book: &ForkBook,
    ) -> Option<Self::Message> {
        None
    }
}

/// Which side of a split-brain attack each block was shown to, shared by colluders.
#[derive(Clone, Debug, Default)]
pub struct ForkBook(Arc<Mutex<BTreeMap<Digest, Side>>>);

/// A side of the split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The lower half of the honest members.
    A,
    /// The upper half.
    B,
}

impl ForkBook {
    /// The side `block` was shown to, if it was part of a split.
    pub fn side(&self, block: &Digest) -> Option<Side> {
        self.0.lock().ok().and_then(|b| b.get(block).copied())
    }

    fn record(&self, block: Digest, side: Side) {
        if let Ok(mut b) = self.0.lock() {
            b.insert(block, side);
        }
    }
}

/// Who the adversary is.
#[derive(Clone, Debug, Default)]
pub struct Adversary {
    /// What this node does wrong.
    pub behaviours: BTreeSet<Behaviour>,
    /// Every Byzantine member (this one included); they receive both sides' messages.
    pub colluders: BTreeSet<NodeId>,
    /// Shared by the colluders.
    pub book: ForkBook,
    /// What its mempool does wrong.
    pub mempool: mempool::MempoolFaults,
}

/// The wrapper's own timer: release a held proposal (in the wrapper's timer space, so
/// no core timer can collide with it).
pub const HOLD_TIMER: TimerId = TimerId::adversary(0);
/// How long an equivocating leader holds its proposal waiting for a second certified
/// parent (double votes of colluders arrive a little after the honest ones).
const HOLD: std::time::Duration = std::time::Duration::from_millis(300);

/// Instances of proposals remembered for double voting.
const VIEWS_KEPT: usize = 16;
/// Old messages kept for replay.
const REPLAY_KEPT: usize = 256;
/// Far-ahead messages a future flood sends with every message.
const FLOODS_PER_MESSAGE: u64 = 4;

/// A core with Byzantine behaviours.
pub struct Byzantine<C: Adversarial> {
    inner: C,
    id: NodeId,
    adversary: Adversary,
    side_a: Vec<NodeId>,
    side_b: Vec<NodeId>,
    colluders: Vec<NodeId>,
    /// Blocks proposed in each recent view, as seen.
    proposals: BTreeMap<(u64, u64), BTreeSet<Digest>>,
    sent: VecDeque<(Option<NodeId>, C::Message)>,
    replays: u64,
    /// Future-flood messages sent so far (varies their distance and content).
    floods: u64,
    /// A proposal held back until a conflicting one can fork from another parent.
    held: Option<C::Message>,
}

impl<C: Adversarial> Byzantine<C> {
    /// Wrap `inner` (replica `id` of a committee with members `members`).
    pub fn new(inner: C, id: NodeId, members: &[NodeId], adversary: Adversary) -> Self {
        let honest: Vec<NodeId> = members
            .iter()
            .filter(|m| !adversary.colluders.contains(m) && **m != id)
            .copied()
            .collect();
        let all_honest = members
            .iter()
            .filter(|m| !adversary.colluders.contains(m))
            .count();
        // Sides are fixed over all honest members so that colluders agree on them.
        let cut = members
            .iter()
            .filter(|m| !adversary.colluders.contains(m))
            .nth(all_honest / 2)
            .copied();
        let (side_a, side_b) = honest
            .iter()
            .partition(|m| cut.is_none_or(|c| **m < c) && all_honest > 1);
        let colluders = adversary
            .colluders
            .iter()
            .filter(|c| **c != id)
            .copied()
            .collect();
        Byzantine {
            inner,
            id,
            adversary,
            side_a,
            side_b,
            colluders,
            proposals: BTreeMap::new(),
            sent: VecDeque::new(),
            replays: 0,
            floods: 0,
            held: None,
        }
    }

    fn does(&self, b: Behaviour) -> bool {
        self.adversary.behaviours.contains(&b)
    }

    /// Note a proposal; true if its view already had another one (a conflicting
    /// proposal, which an honest core will not vote for).
    fn remember_proposal(&mut self, message: &C::Message) -> bool {
        let MessageKind::Proposal {
            instance, block, ..
        } = C::kind(message)
        else {
            return false;
        };
        let seen = self.proposals.entry(instance).or_default();
        let conflicting = !seen.is_empty() && !seen.contains(&block);
        seen.insert(block);
        while self.proposals.len() > VIEWS_KEPT {
            self.proposals.pop_first();
        }
        conflicting
    }

    /// Double voting: vote for `proposal` as well (the core voted for the first).
    fn double_vote(&mut self, proposal: &C::Message, out: &mut Vec<Action<C::Message>>) {
        for (to, vote) in self.inner.votes_for(proposal) {
            self.emit(to, vote, Delivery::BestEffort, out);
        }
    }

    /// Send one message, applying the wire-level lies (withheld votes, bad signatures,
    /// replays). `to: None` is a broadcast.
    fn emit(
        &mut self,
        to: Option<NodeId>,
        message: C::Message,
        delivery: Delivery,
        out: &mut Vec<Action<C::Message>>,
    ) {
        if to == Some(self.id) {
            out.push(Action::Send {
                to: self.id,
                message,
                delivery,
            });
            return;
        }
        if self.does(Behaviour::WithholdVotes)
            && matches!(C::kind(&message), MessageKind::Vote { .. })
        {
            return;
        }
        // Split brain, votes to one member: tell it what favours its own side's block.
        let splitting = self.does(Behaviour::DoubleVote) || self.does(Behaviour::Equivocate);
        let message = match (to, C::kind(&message)) {
            (Some(peer), MessageKind::Vote { .. }) if splitting => {
                let side = if self.side_a.contains(&peer) {
                    Some(Side::A)
                } else if self.side_b.contains(&peer) {
                    Some(Side::B)
                } else {
                    None
                };
                side.and_then(|s| self.inner.tailor_vote(&message, s, &self.adversary.book))
                    .unwrap_or(message)
            }
            _ => message,
        };
        // Split brain: a broadcast vote for a block shown to one side goes to that side
        // and the colluders only, so each side counts only votes for its own block.
        if let (None, MessageKind::Vote { block, .. }) = (to, C::kind(&message)) {
            let splitting = self.does(Behaviour::DoubleVote) || self.does(Behaviour::Equivocate);
            if let (true, Some(side)) = (splitting, self.adversary.book.side(&block)) {
                let members = match side {
                    Side::A => self.side_a.clone(),
                    Side::B => self.side_b.clone(),
                };
                for peer in members.into_iter().chain(self.colluders.clone()) {
                    self.emit(Some(peer), message.clone(), delivery, out);
                }
                return;
            }
        }
        let wire = if self.does(Behaviour::InvalidSignatures) {
            self.inner.with_bad_signature(&message)
        } else {
            message
        };
        if self.does(Behaviour::FutureFlood) {
            // Spread over 10 to a million instances ahead, different on every message.
            for _ in 0..FLOODS_PER_MESSAGE {
                self.floods += 1;
                let ahead = 10 + self.floods.wrapping_mul(7_919) % 1_000_000;
                for far in self.inner.far_ahead(&wire, ahead, self.floods) {
                    out.push(Action::broadcast(far));
                }
            }
        }
        if self.does(Behaviour::Replay) {
            if !self.sent.is_empty() {
                let k = (self.replays as usize).wrapping_mul(7919) % self.sent.len();
                self.replays += 1;
                if let Some((old_to, old)) = self.sent.get(k).cloned() {
                    out.push(match old_to {
                        Some(t) => Action::send(t, old),
                        None => Action::broadcast(old),
                    });
                }
            }
            self.sent.push_back((to, wire.clone()));
            if self.sent.len() > REPLAY_KEPT {
                self.sent.pop_front();
            }
        }
        out.push(match to {
            Some(t) => Action::Send {
                to: t,
                message: wire,
                delivery,
            },
            None => Action::Broadcast {
                message: wire,
                delivery,
            },
        });
    }

    /// Whether a conflicting version of `proposal` would extend another parent.
    fn can_fork(&self, proposal: &C::Message) -> bool {
        let parent = |m: &C::Message| match C::kind(m) {
            MessageKind::Proposal { parent, .. } => Some(parent),
            _ => None,
        };
        self.inner
            .conflicting_proposal(proposal)
            .is_some_and(|alt| C::FORKS_ON_ONE_PARENT || parent(&alt) != parent(proposal))
    }

    /// Release the held proposal if it can fork now (or `force`).
    fn release(&mut self, force: bool, out: &mut Vec<Action<C::Message>>) {
        let ready = match &self.held {
            Some(p) => force || self.can_fork(p),
            None => false,
        };
        if ready {
            if let Some(p) = self.held.take() {
                out.push(Action::CancelTimer { id: HOLD_TIMER });
                self.split(p, out);
            }
        }
    }

    /// An equivocating leader's proposal: split it now if it can fork from another
    /// parent, or hold it a little for the second certified parent to form.
    fn equivocate(&mut self, proposal: C::Message, out: &mut Vec<Action<C::Message>>) {
        if let Some(previous) = self.held.take() {
            self.split(previous, out);
        }
        if self.can_fork(&proposal) {
            self.split(proposal, out);
        } else {
            self.held = Some(proposal);
            out.push(Action::SetTimer {
                id: HOLD_TIMER,
                after: HOLD,
            });
        }
    }

    /// Split a proposal: one version per side, both to colluders.
    fn split(&mut self, proposal: C::Message, out: &mut Vec<Action<C::Message>>) {
        let Some(alt) = self.inner.conflicting_proposal(&proposal) else {
            self.emit(None, proposal, Delivery::BestEffort, out);
            return;
        };
        let parent_side = |m: &C::Message| match C::kind(m) {
            MessageKind::Proposal { parent, .. } => self.adversary.book.side(&parent),
            _ => None,
        };
        // Keep each side on its own chain: a version built on a block shown to side B
        // goes to side B.
        let (for_a, for_b) =
            if parent_side(&proposal) == Some(Side::B) || parent_side(&alt) == Some(Side::A) {
                (alt, proposal)
            } else {
                (proposal, alt)
            };
        for (m, side) in [(&for_a, Side::A), (&for_b, Side::B)] {
            if let MessageKind::Proposal { block, .. } = C::kind(m) {
                self.adversary.book.record(block, side);
            }
        }
        let alt_is_a = self.remember_proposal(&for_a);
        let alt_is_b = self.remember_proposal(&for_b);
        if let (
            MessageKind::Proposal {
                instance,
                block: a,
                parent: pa,
            },
            MessageKind::Proposal {
                block: b,
                parent: pb,
                ..
            },
        ) = (C::kind(&for_a), C::kind(&for_b))
        {
            tracing::debug!(node = %self.id, ?instance, %a, %pa, %b, %pb, "equivocating");
        }
        let best = Delivery::BestEffort;
        for peer in self.side_a.clone() {
            self.emit(Some(peer), for_a.clone(), best, out);
        }
        for peer in self.side_b.clone() {
            self.emit(Some(peer), for_b.clone(), best, out);
        }
        for peer in self.colluders.clone() {
            self.emit(Some(peer), for_a.clone(), best, out);
            self.emit(Some(peer), for_b.clone(), best, out);
        }
        // Our core voted for the version it made; the other one gets a vote too.
        if self.does(Behaviour::DoubleVote) {
            if alt_is_a {
                self.double_vote(&for_a, out);
            }
            if alt_is_b {
                self.double_vote(&for_b, out);
            }
        }
    }

    fn rewrite(&mut self, actions: Vec<Action<C::Message>>) -> Vec<Action<C::Message>> {
        let mut out = Vec::with_capacity(actions.len());
        for action in actions {
            match action {
                Action::Broadcast { message, delivery } => {
                    let is_proposal = matches!(C::kind(&message), MessageKind::Proposal { .. });
                    if is_proposal {
                        self.remember_proposal(&message);
                    }
                    if is_proposal && self.does(Behaviour::Equivocate) {
                        self.equivocate(message, &mut out);
                    } else {
                        self.emit(None, message, delivery, &mut out);
                    }
                }
                Action::Send {
                    to,
                    message,
                    delivery,
                } => self.emit(Some(to), message, delivery, &mut out),
                other => out.push(other),
            }
        }
        out
    }
}

impl<C: Adversarial> Byzantine<C> {
    /// The wrapped core's [`Protocol::verify`].
    pub fn verify(&self, from: NodeId, message: &C::Message) -> Result<(), Rejected> {
        self.inner.verify(from, message)
    }

    /// The wrapped core's counters.
    pub fn metrics(&self) -> Counters {
        self.inner.metrics()
    }

    /// The honest core's [`Protocol::waiting_for`].
    pub fn waiting_for(&self) -> Option<String> {
        self.inner.waiting_for()
    }

    /// Run the honest core on `event` and rewrite what it does.
    pub fn handle(&mut self, now: Time, event: Event<C::Message>) -> Vec<Action<C::Message>> {
        if let Event::Timer(id) = &event {
            if id.is_adversary() {
                let mut out = Vec::new();
                if *id == HOLD_TIMER {
                    self.release(true, &mut out);
                }
                return out;
            }
        }
        // A conflicting proposal for a view gets our vote too.
        let conflicting = match &event {
            Event::Message { message, .. } if self.remember_proposal(message) => {
                Some(message.clone())
            }
            _ => None,
        };
        let actions = self.inner.handle(now, event);
        let mut out = self.rewrite(actions);
        self.release(false, &mut out);
        if let Some(proposal) = conflicting {
            if self.does(Behaviour::DoubleVote) {
                self.double_vote(&proposal, &mut out);
            }
        }
        out
    }
}

/// A core as the driver runs it: honest, or wrapped in Byzantine behaviours.
pub enum Replica<C: Adversarial> {
    /// Follows the protocol.
    Honest(C),
    /// Lies as its [`Adversary`] says.
    Byzantine(Box<Byzantine<C>>),
}

impl<C: Adversarial> Replica<C> {
    /// [`Protocol::verify`] of the core.
    pub fn verify(&self, from: NodeId, message: &C::Message) -> Result<(), Rejected> {
        match self {
            Replica::Honest(c) => c.verify(from, message),
            Replica::Byzantine(b) => b.verify(from, message),
        }
    }

    /// [`Protocol::handle`] of the core (rewritten by the behaviours, if any).
    pub fn handle(&mut self, now: Time, event: Event<C::Message>) -> Vec<Action<C::Message>> {
        match self {
            Replica::Honest(c) => c.handle(now, event),
            Replica::Byzantine(b) => b.handle(now, event),
        }
    }

    /// [`Protocol::metrics`] of the core.
    pub fn metrics(&self) -> Counters {
        match self {
            Replica::Honest(c) => c.metrics(),
            Replica::Byzantine(b) => b.metrics(),
        }
    }

    /// The core's [`Protocol::waiting_for`].
    pub fn waiting_for(&self) -> Option<String> {
        match self {
            Replica::Honest(c) => c.waiting_for(),
            Replica::Byzantine(b) => b.waiting_for(),
        }
    }
}
