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

/// Builds member `id` from its persisted state (`None`: it cannot be built, and stays
/// down).
pub type Factory<P> = Box<dyn Fn(NodeId, Option<Vec<u8>>) -> Option<P>>;

/// A message on its way: who sent it (identity and instance), to which instance.
struct InFlight<M> {
    from: NodeId,
    sender: usize,
    to: usize,
    message: M,
}

/// A cluster of cores of protocol `P`.
pub struct Cluster<P: Adversarial> {
    committee: Arc<Committee>,
    make: Factory<P>,
    /// The identity of each instance: members in committee order, then twins.
    ids: Vec<NodeId>,
    /// Members that run twice.
    twinned: std::collections::BTreeSet<NodeId>,
    /// The side of the partition each instance is on (`None`: no partition).
    groups: Option<Vec<u8>>,
    /// Partitions by the sender's instance ([`Adversarial::twins_instance`]): entry k
    /// holds while the sender works on instance k + 1; none past the last.
    instance_groups: Vec<Vec<u8>>,
    members: Vec<Option<P>>,
    persisted: Vec<Option<Vec<u8>>>,
    timers: Vec<Timers>,
    /// In flight, by (arrival time, sequence).
    in_flight: BTreeMap<(Time, u64), InFlight<P::Message>>,
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
        Self::with_twins(committee, make, seed, latency, &[])
    }

    /// As [`Cluster::new`], with a second instance of each member in `twins` (instances
    /// `n`, `n + 1`, ... in that order).
    pub fn with_twins(
        committee: Arc<Committee>,
        make: Factory<P>,
        seed: u64,
        latency: (u64, u64),
        twins: &[NodeId],
    ) -> Self {
        Self::with_twins_partitioned(committee, make, seed, latency, twins, Vec::new())
    }

    /// As [`Cluster::with_twins`], partitioned by instance
    /// ([`Cluster::set_instance_groups`]) from before the members start, so that what
    /// they send on starting is partitioned too.
    pub fn with_twins_partitioned(
        committee: Arc<Committee>,
        make: Factory<P>,
        seed: u64,
        latency: (u64, u64),
        twins: &[NodeId],
        instance_groups: Vec<Vec<u8>>,
    ) -> Self {
        let ids: Vec<NodeId> = committee.ids().chain(twins.iter().copied()).collect();
        let n = ids.len();
        let mut c = Cluster {
            members: ids.iter().map(|id| make(*id, None)).collect(),
            ids,
            twinned: twins.iter().copied().collect(),
            groups: None,
            instance_groups,
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

    /// Put each instance on a side of a partition (`groups[i]`, by instance), or none
    /// (`None`): a message sent between sides is lost.
    pub fn set_groups(&mut self, groups: Option<Vec<u8>>) {
        self.groups = groups;
    }

    /// Partition what each instance sends by the instance it works on when it sends
    /// ([`Adversarial::twins_instance`], read after the event that produced the message
    /// was handled): while on instance k + 1, it reaches only the instances on its side
    /// of `groups[k]`; past the last entry, everyone. So a message that moved its sender
    /// on (the timeout that completes a timeout certificate, the vote that decides) goes
    /// out under the next instance's partition, as in the reference implementation of
    /// the paper's generator (which reads the sender's current view). An empty list
    /// turns this off. Applies together with [`Cluster::set_groups`].
    pub fn set_instance_groups(&mut self, groups: Vec<Vec<u8>>) {
        self.instance_groups = groups;
    }

    /// How many instances run (members and twins).
    pub fn instances(&self) -> usize {
        self.ids.len()
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
        let Some(id) = self.ids.get(i).copied() else {
            return;
        };
        self.members[i] = (self.make)(id, self.persisted[i].clone());
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

    /// Instance `from` sends `message` to member `to`: every instance of `to` on the
    /// sender's side of the partition gets it (the sender itself, for its own).
    fn post(&mut self, from: usize, to: NodeId, message: P::Message) {
        let sender = self.ids[from];
        let by_instance = self
            .members
            .get(from)
            .and_then(|m| m.as_ref())
            .map(|m| m.twins_instance())
            .and_then(|i| i.checked_sub(1))
            .and_then(|k| usize::try_from(k).ok())
            .and_then(|k| self.instance_groups.get(k));
        let targets: Vec<usize> = if to == sender {
            vec![from]
        } else {
            (0..self.ids.len())
                .filter(|j| self.ids[*j] == to)
                .filter(|j| {
                    self.groups
                        .as_ref()
                        .is_none_or(|g| g.get(from) == g.get(*j))
                })
                .filter(|j| by_instance.is_none_or(|g| g.get(from) == g.get(*j)))
                .collect()
        };
        for j in targets {
            let delay = if j == from {
                Duration::ZERO
            } else {
                self.latency()
            };
            self.sequence += 1;
            self.in_flight.insert(
                (self.now.after(delay), self.sequence),
                InFlight {
                    from: sender,
                    sender: from,
                    to: j,
                    message: message.clone(),
                },
            );
        }
    }

    /// Record what member `i` signed; panics on a second different one in an instance.
    fn check_signed(&mut self, i: usize, message: &P::Message) {
        let Some(id) = self.ids.get(i).copied() else {
            return;
        };
        if self.twinned.contains(&id) {
            return; // a twin pair is Byzantine by construction
        }
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
        let me = self.ids[i];
        for action in actions {
            match action {
                Action::Send { to, message, .. } => {
                    self.check_signed(i, &message);
                    self.post(i, to, message);
                }
                Action::Broadcast { message, .. } => {
                    self.check_signed(i, &message);
                    let others: Vec<NodeId> = self.committee.ids().filter(|t| *t != me).collect();
                    for to in others {
                        self.post(i, to, message.clone());
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
        let Some((
            (at, _),
            InFlight {
                from,
                sender,
                to: i,
                message,
            },
        )) = self.in_flight.pop_first()
        else {
            return;
        };
        self.now = self.now.max(at);
        if self.cut[sender] || self.cut[i] {
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

    /// Whether the instances of members that do not run twice committed sequences
    /// that agree (each a prefix of the longest); the first disagreement if not.
    pub fn honest_agreement(&self) -> Result<(), String> {
        let honest: Vec<usize> = (0..self.ids.len())
            .filter(|i| !self.twinned.contains(&self.ids[*i]))
            .collect();
        for a in &honest {
            for b in &honest {
                let (x, y) = (&self.commits[*a], &self.commits[*b]);
                let n = x.len().min(y.len());
                if let Some(k) = (0..n).find(|k| x[*k] != y[*k]) {
                    return Err(format!(
                        "{} and {} committed different blocks at position {k}",
                        self.ids[*a], self.ids[*b]
                    ));
                }
            }
        }
        Ok(())
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
