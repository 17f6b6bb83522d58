//! An in-memory cluster for step and cluster tests of any core: every message gets a
//! random latency from a seeded RNG (so delivery order varies with the seed but replays
//! with it), every delivery passes [`Protocol::verify`], timers fire in simulated time,
//! and [`Action::Persist`] is honoured (a restarted member is rebuilt from what it last
//! persisted). It checks, for every core, that no member ever signs two different votes
//! or proposals in one instance (using the core's [`Adversarial::kind`]).

use crate::byzantine::{Adversarial, MessageKind};
use crate::core::{Action, CertificateInfo, Event, Time};
use crate::timers::Timers;
use primitives::{Committee, Digest, Hasher, NodeId, Round};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Builds member `id` from its persisted state.
pub type Factory<P> = Box<dyn Fn(NodeId, Option<Vec<u8>>) -> P>;

/// A cluster of cores of protocol `P`.
pub struct Cluster<P: Adversarial> {
    committee: Arc<Committee>,
    make: Factory<P>,
    members: Vec<Option<P>>,
    persisted: Vec<Option<Vec<u8>>>,
    timers: Vec<Timers>,
    /// In flight: (arrival time, sequence) -> (from, to, message).
    in_flight: BTreeMap<(Time, u64), (NodeId, NodeId, P::Message)>,
    sequence: u64,
    rng: rand_chacha::ChaCha8Rng,
    latency: (Duration, Duration),
    now: Time,
    /// Committed blocks per member, in order.
    pub commits: Vec<Vec<Digest>>,
    /// Messages refused by `verify`.
    pub rejected: u64,
    /// Every vote and proposal each member signed: (member, kind, instance) -> block.
    signed: BTreeMap<(NodeId, u8, (u64, u64)), Digest>,
    /// Members cut off: every message to or from them is lost (a partition without
    /// retransmission).
    cut: Vec<bool>,
    /// Every certificate made so far (a restarted member's DAG catches up on them).
    certificates: Vec<CertificateInfo>,
}

impl<P: Adversarial> Cluster<P> {
    /// Members built by `make`, started, with latencies drawn from `latency` (ms) by an
    /// RNG seeded with `seed`.
    pub fn new(
        committee: Arc<Committee>,
        make: Factory<P>,
        seed: u64,
        latency: (u64, u64),
    ) -> Self {
        let n = committee.size();
        let mut c = Cluster {
            members: committee.ids().map(|id| Some(make(id, None))).collect(),
            committee,
            make,
            persisted: vec![None; n],
            timers: (0..n).map(|_| Timers::default()).collect(),
            in_flight: BTreeMap::new(),
            sequence: 0,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            latency: (
                Duration::from_millis(latency.0),
                Duration::from_millis(latency.1.max(latency.0)),
            ),
            now: Time::default(),
            commits: vec![Vec::new(); n],
            rejected: 0,
            signed: BTreeMap::new(),
            certificates: Vec::new(),
            cut: vec![false; n],
        };
        for i in 0..n {
            c.apply(i, Event::Start);
        }
        c
    }

    fn index(&self, id: NodeId) -> Option<usize> {
        self.committee.index_of(id)
    }

    /// Crash member `i`: its timers and state are lost (its persisted state is kept).
    pub fn crash(&mut self, i: usize) {
        self.members[i] = None;
        self.timers[i] = Timers::default();
    }

    /// Cut member `i` off (`true`) or reconnect it (`false`): while cut off, every
    /// message to or from it is lost and never resent; its certificates still arrive.
    pub fn set_cut(&mut self, i: usize, cut: bool) {
        self.cut[i] = cut;
    }

    /// Restart member `i` from what it last persisted; its DAG then catches up (every
    /// certificate made so far is delivered to it again, in order, as a restarted
    /// mempool re-delivers its store and fetches what it missed).
    pub fn restart(&mut self, i: usize) {
        let Some(id) = self.committee.id_at(i) else {
            return;
        };
        self.members[i] = Some((self.make)(id, self.persisted[i].clone()));
        self.apply(i, Event::Start);
        for info in self.certificates.clone() {
            self.apply(i, Event::Certificate(info));
        }
    }

    /// A new DAG certificate of `round` by member 0, available everywhere at once.
    pub fn certificate(&mut self, round: Round) {
        let info = CertificateInfo {
            digest: Hasher::new()
                .update(b"cluster.certificate")
                .update_u64(self.certificates.len() as u64 + 1)
                .finalize(),
            round,
            author: NodeId(0),
            weight: self.committee.weight(NodeId(0)),
            parents: Vec::new(),
        };
        self.certificates.push(info.clone());
        for i in 0..self.members.len() {
            self.apply(i, Event::Certificate(info.clone()));
        }
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = self.latency;
        lo + Duration::from_micros(self.rng.gen_range(0..=(hi - lo).as_micros() as u64))
    }

    fn post(&mut self, from: NodeId, to: NodeId, message: P::Message) {
        let delay = if from == to {
            Duration::ZERO
        } else {
            self.latency()
        };
        self.sequence += 1;
        self.in_flight
            .insert((self.now.after(delay), self.sequence), (from, to, message));
    }

    /// Record what member `i` signed; panics on a second different one in an instance.
    fn check_signed(&mut self, i: usize, message: &P::Message) {
        let Some(id) = self.committee.id_at(i) else {
            return;
        };
        let (tag, instance, block) = match P::kind(message) {
            MessageKind::Proposal {
                instance, block, ..
            } => (0u8, instance, block),
            MessageKind::Vote { instance, block } => (1u8, instance, block),
            MessageKind::Other => return,
        };
        let first = *self.signed.entry((id, tag, instance)).or_insert(block);
        assert_eq!(
            first,
            block,
            "member {id} signed two different {} in instance {instance:?}",
            if tag == 0 { "proposals" } else { "votes" }
        );
    }

    /// Hand `event` to member `i` (if up) and perform its actions.
    pub fn apply(&mut self, i: usize, event: Event<P::Message>) {
        let now = self.now;
        let Some(member) = self.members[i].as_mut() else {
            return;
        };
        let actions = member.handle(now, event);
        let Some(me) = self.committee.id_at(i) else {
            return;
        };
        for action in actions {
            match action {
                Action::Send { to, message, .. } => {
                    self.check_signed(i, &message);
                    self.post(me, to, message);
                }
                Action::Broadcast { message, .. } => {
                    self.check_signed(i, &message);
                    let others: Vec<NodeId> = self.committee.ids().filter(|t| *t != me).collect();
                    for to in others {
                        self.post(me, to, message.clone());
                    }
                }
                Action::SetTimer { id, after } => self.timers[i].set(id, now.after(after)),
                Action::CancelTimer { id } => self.timers[i].cancel(id),
                Action::Persist { state } => self.persisted[i] = Some(state),
                Action::Commit { block, .. } => self.commits[i].push(block),
                Action::FetchCertificates { .. }
                | Action::HoldProposer { .. }
                | Action::Evidence { .. } => {}
            }
        }
    }

    /// Run `steps` deliveries or timer expirations, earliest first; with a new
    /// certificate every `certificate_every` steps.
    pub fn run(&mut self, steps: usize, certificate_every: usize) {
        for step in 0..steps {
            if certificate_every > 0 && step % certificate_every == 0 {
                self.certificate(Round(step as u64 + 1));
            }
            let message_at = self.in_flight.keys().next().map(|(t, _)| *t);
            let timer = (0..self.members.len())
                .filter_map(|i| self.timers[i].next_deadline().map(|t| (t, i)))
                .min();
            match (message_at, timer) {
                (Some(m), Some((t, _))) if m <= t => self.deliver_next(),
                (Some(_), None) => self.deliver_next(),
                (_, Some((t, i))) => {
                    self.now = self.now.max(t);
                    if let Some(id) = self.timers[i].pop_due(self.now) {
                        self.apply(i, Event::Timer(id));
                    }
                }
                (None, None) => return,
            }
        }
    }

    /// Run (as [`Cluster::run`], in chunks) until `deadline` in simulated time, or
    /// until nothing is left to do.
    pub fn run_until(&mut self, deadline: Time, certificate_every: usize) {
        while self.now < deadline {
            let before = (self.now, self.sequence);
            self.run(64, certificate_every);
            if (self.now, self.sequence) == before && self.in_flight.is_empty() {
                return;
            }
        }
    }

    fn deliver_next(&mut self) {
        let Some(((at, _), (from, to, message))) = self.in_flight.pop_first() else {
            return;
        };
        self.now = self.now.max(at);
        let Some(i) = self.index(to) else {
            return;
        };
        let cut = |id| self.index(id).is_some_and(|j| self.cut[j]);
        if cut(from) || cut(to) {
            return; // lost: a partition
        }
        let verdict = match &self.members[i] {
            Some(m) => m.verify(from, &message),
            None => return, // lost: the member is down
        };
        match verdict {
            Ok(()) => self.apply(i, Event::Message { from, message }),
            Err(_) => self.rejected += 1,
        }
    }

    /// Every live member committed at least `at_least` blocks, and all sequences agree
    /// (each is a prefix of the longest).
    pub fn assert_agreement(&self, at_least: usize) {
        let live: Vec<&Vec<Digest>> = (0..self.members.len())
            .filter(|i| self.members[*i].is_some())
            .map(|i| &self.commits[i])
            .collect();
        for c in &live {
            assert!(c.len() >= at_least, "only {} commits", c.len());
        }
        for a in &live {
            for b in &live {
                let n = a.len().min(b.len());
                assert_eq!(a[..n], b[..n], "commit sequences diverge");
            }
        }
    }

    /// The simulated time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Member `i`, if up.
    pub fn member(&self, i: usize) -> Option<&P> {
        self.members[i].as_ref()
    }
}
