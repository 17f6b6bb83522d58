//! Core targets: one core (member 0 of four) driven through [`Protocol::handle`] by a
//! program read from the input, the way its driver would drive it.
//!
//! Each op of the program is one of: deliver a message of the honest run (from its
//! real sender), deliver a mutated encoding of one (decoded and verified like the
//! driver does, from an input-chosen member), have a peer sign messages far ahead of
//! one (its `far_ahead` hook, the future flood), a conflicting proposal or its votes for
//! one; deliver the run's next DAG certificates or fresh ones; fire a pending timer or
//! let time pass; raise the GC horizon; report installed history. Messages the core
//! sends to itself are fed back, as the driver does. Certificates respect the driver's
//! contract (causal order, one per author and round, none at or below the horizon).
//!
//! After every event the harness checks, independently of the production predicates:
//! - no panic;
//! - the state sizes the core reports through `metrics()` stay under bounds derived from
//!   its windows ([`Fuzzed::check_bounds`], see README.md for each bound and why);
//! - every message it sends encodes within the message limit, decodes back to the same
//!   encoding and is accepted by a peer's `verify`;
//! - it never signs two different votes (or proposals) for one instance, as seen in its
//!   own output ([`Fuzzed::signed`], a classification written here).

use crate::cluster::{self, Run};
use crate::fixture::{committee, max_message, MEMBERS};
use crate::mutate::{mutate_with, Reader};
use consensus::bullshark::{Bullshark, Tusk};
use consensus::byzantine::Adversarial;
use consensus::hotstuff::{self, HotStuff};
use consensus::snowman::{self, Snowman};
use consensus::tendermint::{self, Tendermint};
use consensus::{Action, CertificateInfo, Counters, Event, Protocol, Time, TimerId};
use primitives::{codec, Digest, NodeId, Round};
use rand::SeedableRng;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Most ops one input runs.
pub const MAX_OPS: usize = 256;
/// Most events handled for one op (messages fed back, timers firing as time passes).
const MAX_CASCADE: usize = 64;

/// What the harness observed of the driver-side state, for the bounds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed {
    /// Highest DAG round delivered.
    pub max_round: u64,
    /// The GC horizon reported.
    pub horizon: u64,
    /// Certificates delivered.
    pub certificates: u64,
}

/// A value signed by the core: (kind, instance a, instance b) and what it was for.
pub type Signed = ((u8, u64, u64), Digest);

/// The protocol-specific half of the core targets.
pub trait Fuzzed: Adversarial {
    /// If `message` is a vote or proposal signed by `me`: its kind and instance, and
    /// the value signed. Two different values for one key are a double signature.
    fn signed(message: &Self::Message, me: NodeId) -> Option<Signed>;

    /// Check the core's reported state sizes against the bounds its windows promise.
    fn check_bounds(counters: &Counters, observed: &Observed) -> Result<(), String>;
}

fn metric(counters: &Counters, name: &str) -> Result<u64, String> {
    counters
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("metric {name} missing"))
}

fn at_most(counters: &Counters, name: &str, bound: u64) -> Result<(), String> {
    let v = metric(counters, name)?;
    if v > bound {
        return Err(format!("{name} = {v} exceeds its bound {bound}"));
    }
    Ok(())
}

/// HotStuff's window (`hotstuff/window.rs`, private): views kept above the current one.
const HS_MAX_VIEWS_AHEAD: u64 = 32;
/// Blocks kept per view (same file).
const HS_BLOCKS_PER_VIEW: u64 = 4;
/// Views of equivocation evidence kept below the current one (`hotstuff/views.rs`).
const HS_EVIDENCE_VIEWS: u64 = 8;
/// Proposals waiting for blocks or certificates (`hotstuff/voting.rs`).
const HS_MAX_WAITING: u64 = 64;

impl Fuzzed for HotStuff {
    fn signed(message: &hotstuff::Message, me: NodeId) -> Option<Signed> {
        match message {
            hotstuff::Message::Vote(v) if v.voter == me => Some(((0, v.view.0, 0), v.block)),
            hotstuff::Message::Propose(b) if b.author == me => Some(((1, b.view.0, 0), b.digest())),
            _ => None,
        }
    }

    fn check_bounds(c: &Counters, _: &Observed) -> Result<(), String> {
        let n = MEMBERS as u64;
        let view = metric(c, "view")?;
        let committed = metric(c, "committed_view")?;
        // Votes are counted for views view-1 ..= view+32, at most two different blocks
        // per voter and view.
        at_most(c, "vote_instances", 2 * n * (HS_MAX_VIEWS_AHEAD + 2))?;
        // Timeouts are kept for views view-1 ..= view+32.
        at_most(c, "timeout_views", HS_MAX_VIEWS_AHEAD + 2)?;
        // Uncommitted blocks: views committed ..= view+32, four per view.
        at_most(
            c,
            "blocks",
            HS_BLOCKS_PER_VIEW * (view.saturating_sub(committed) + HS_MAX_VIEWS_AHEAD + 1),
        )?;
        at_most(c, "waiting", HS_MAX_WAITING)?;
        at_most(c, "suspected", n)?;
        // Second votes: per voter, views view-8 ..= view+32.
        at_most(
            c,
            "second_votes",
            n * (HS_EVIDENCE_VIEWS + HS_MAX_VIEWS_AHEAD + 1),
        )?;
        at_most(c, "history", hotstuff::COMMITTED_BLOCKS_KEPT as u64)?;
        payload_bounds(c)
    }
}

/// The shared payload tracker's maps (`consensus/src/payload.rs`), as a core reports them.
fn payload_bounds(c: &Counters) -> Result<(), String> {
    for name in [
        "known_certificates",
        "pending_certificates",
        "carried_certificates",
    ] {
        at_most(c, name, consensus::payload::MAX_KNOWN as u64)?;
    }
    Ok(())
}

/// Per-sender buffer of future-height messages (`tendermint/sync.rs`, private).
const TM_MAX_BUFFERED_PER_SENDER: u64 = 32;

impl Fuzzed for Tendermint {
    fn signed(message: &tendermint::Message, me: NodeId) -> Option<Signed> {
        match message {
            tendermint::Message::Vote(v) if v.voter == me => {
                let kind = match v.kind {
                    tendermint::VoteKind::Prevote => 0,
                    tendermint::VoteKind::Precommit => 1,
                };
                // nil is a value too: a nil vote and a value vote conflict.
                let value = v.value.unwrap_or(Digest([0xff; 32]));
                Some(((kind, v.height, v.round), value))
            }
            tendermint::Message::Proposal(p) if p.author == me => {
                Some(((2, p.height, p.round), p.value.digest()))
            }
            _ => None,
        }
    }

    fn check_bounds(c: &Counters, _: &Observed) -> Result<(), String> {
        let n = MEMBERS as u64;
        let round = metric(c, "round")?;
        // Messages of rounds 0 ..= round + ROUND_WINDOW of the current height are kept.
        let rounds = round + tendermint::ROUND_WINDOW + 1;
        // At most the proposer's proposal per round, and a second one as evidence.
        at_most(c, "proposals", 2 * rounds)?;
        at_most(c, "values", 2 * rounds)?;
        // Two vote kinds per round, at most one value per voter counted, plus nil.
        at_most(c, "vote_instances", 2 * rounds * (n + 1))?;
        at_most(c, "buffered_messages", TM_MAX_BUFFERED_PER_SENDER * n)?;
        at_most(c, "decisions_kept", tendermint::DECISIONS_KEPT as u64)?;
        at_most(c, "pending_decisions", tendermint::DECISIONS_KEPT as u64)?;
        payload_bounds(c)
    }
}

/// Blocks processing at once (`snowman/core.rs`, private `MAX_PROCESSING`).
const SN_MAX_PROCESSING: u64 = 4_096;

impl Fuzzed for Snowman {
    fn signed(message: &snowman::Message, me: NodeId) -> Option<Signed> {
        match message {
            // One block per (height, proposer window) from its proposer.
            snowman::Message::Put(b) if b.proposer == me => {
                Some(((1, b.height, b.window), b.digest()))
            }
            _ => None,
        }
    }

    fn check_bounds(c: &Counters, _: &Observed) -> Result<(), String> {
        at_most(c, "processing", SN_MAX_PROCESSING)?;
        at_most(c, "certificates_held", consensus::payload::MAX_KNOWN as u64)?;
        at_most(c, "certificates_pending", snowman::MAX_PENDING as u64)?;
        Ok(())
    }
}

fn dag_bounds(c: &Counters, o: &Observed) -> Result<(), String> {
    // The local DAG holds rounds above the horizon up to the highest delivered, one
    // certificate per member and round.
    let rounds = o.max_round.saturating_sub(o.horizon) + 1;
    at_most(c, "dag_rounds", rounds)?;
    at_most(c, "dag_certificates", rounds * MEMBERS as u64)?;
    Ok(())
}

impl Fuzzed for Bullshark {
    fn signed(message: &consensus::bullshark::Message, _: NodeId) -> Option<Signed> {
        match *message {}
    }
    fn check_bounds(c: &Counters, o: &Observed) -> Result<(), String> {
        dag_bounds(c, o)
    }
}

impl Fuzzed for Tusk {
    fn signed(message: &consensus::bullshark::Message, _: NodeId) -> Option<Signed> {
        match *message {}
    }
    fn check_bounds(c: &Counters, o: &Observed) -> Result<(), String> {
        dag_bounds(c, o)
    }
}

/// The honest run of protocol `P`, built once per process (the cores are `Send`, not
/// `Sync`: hence the mutex).
pub struct Fixture<P: Protocol> {
    run: Mutex<Option<Run<P>>>,
}

impl<P: Fuzzed> Fixture<P> {
    fn build() -> Self {
        Fixture {
            run: Mutex::new(cluster::run::<P>()),
        }
    }

    /// Call `f` with the core of member `index` at the end of the run (nothing if the
    /// run could not be built).
    pub fn with_core(&self, index: usize, f: impl FnOnce(&P)) {
        if let Ok(guard) = self.run.lock() {
            if let Some(core) = guard.as_ref().and_then(|r| r.peers.get(index)) {
                f(core);
            }
        }
    }

    /// `f` of every message of the run (sender, encoding).
    pub fn messages(&self, f: impl Fn(NodeId, &[u8]) -> Vec<u8>) -> Vec<Vec<u8>> {
        let Ok(guard) = self.run.lock() else {
            return Vec::new();
        };
        let Some(run) = guard.as_ref() else {
            return Vec::new();
        };
        run.messages
            .iter()
            .zip(&run.encoded)
            .map(|((from, _), bytes)| f(*from, bytes))
            .collect()
    }

    /// Messages in the run.
    pub fn len(&self) -> usize {
        self.run
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|r| r.messages.len()))
            .unwrap_or(0)
    }

    /// Whether the run has no messages (the DAG-native cores send none).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

macro_rules! fixture_of {
    ($name:ident, $p:ty) => {
        /// The honest run of this protocol (built on first use).
        pub fn $name() -> &'static Fixture<$p> {
            static F: OnceLock<Fixture<$p>> = OnceLock::new();
            F.get_or_init(Fixture::build)
        }
    };
}
fixture_of!(hotstuff_fixture, HotStuff);
fixture_of!(tendermint_fixture, Tendermint);
fixture_of!(snowman_fixture, Snowman);
fixture_of!(bullshark_fixture, Bullshark);
fixture_of!(tusk_fixture, Tusk);

/// The harness of one input.
struct Harness<'r, P: Fuzzed> {
    run: &'r Run<P>,
    core: P,
    me: NodeId,
    now: Time,
    timers: BTreeMap<TimerId, Time>,
    loopback: VecDeque<P::Message>,
    signed: BTreeMap<(u8, u64, u64), Digest>,
    observed: Observed,
    /// Next certificate of the run to deliver.
    next_certificate: usize,
    /// Fresh certificates: the round being filled, its authors so far, the previous
    /// round's digests.
    fresh_round: u64,
    fresh_authors: Vec<usize>,
    fresh_previous: Vec<Digest>,
    fresh_current: Vec<Digest>,
    installed: u64,
}

impl<P: Fuzzed> Harness<'_, P> {
    fn handle(&mut self, event: Event<P::Message>) {
        let mut queue = VecDeque::from([event]);
        let mut handled = 0;
        while let Some(event) = queue.pop_front() {
            handled += 1;
            if handled > MAX_CASCADE {
                break;
            }
            let actions = self.core.handle(self.now, event);
            for action in actions {
                self.action(action);
            }
            if let Err(e) = P::check_bounds(&self.core.metrics(), &self.observed) {
                panic!("oracle: {}: {e}", P::NAME);
            }
            while let Some(message) = self.loopback.pop_front() {
                if self.core.verify(self.me, &message).is_ok() {
                    queue.push_back(Event::Message {
                        from: self.me,
                        message,
                    });
                }
            }
        }
    }

    fn action(&mut self, action: Action<P::Message>) {
        match action {
            Action::Send { to, message, .. } => {
                self.check_sent(&message);
                if to == self.me {
                    self.loopback.push_back(message);
                }
            }
            Action::Broadcast { message, .. } => self.check_sent(&message),
            Action::SetTimer { id, after } => {
                self.timers.insert(id, self.now.after(after));
            }
            Action::CancelTimer { id } => {
                self.timers.remove(&id);
            }
            _ => {}
        }
    }

    /// The oracles on every message the core sends.
    fn check_sent(&mut self, message: &P::Message) {
        let bytes = match codec::encode(message) {
            Ok(b) => b,
            Err(e) => panic!("oracle: {}: a sent message does not encode: {e}", P::NAME),
        };
        if bytes.len() > max_message() {
            panic!(
                "oracle: {}: a sent message of {} bytes exceeds the message limit",
                P::NAME,
                bytes.len()
            );
        }
        match codec::decode::<P::Message>(&bytes, max_message()).map(|m| codec::encode(&m)) {
            Ok(Ok(again)) if again == bytes => {}
            _ => panic!("oracle: {}: a sent message does not decode back", P::NAME),
        }
        if let Some(peer) = self.run.peers.get(1) {
            if let Err(r) = peer.verify(self.me, message) {
                panic!(
                    "oracle: {}: a peer refuses a message the core sent ({r}): {message:?}",
                    P::NAME
                );
            }
        }
        if let Some((key, value)) = P::signed(message, self.me) {
            if let Some(first) = self.signed.insert(key, value) {
                if first != value {
                    panic!(
                        "oracle: {}: signed two different values for {key:?}: {first} and {value}",
                        P::NAME
                    );
                }
            }
        }
    }

    fn deliver(&mut self, from: NodeId, message: P::Message) {
        if self.core.verify(from, &message).is_ok() {
            self.handle(Event::Message { from, message });
        }
    }

    fn certificate(&mut self, info: CertificateInfo) {
        if info.round.0 <= self.observed.horizon {
            return;
        }
        self.observed.max_round = self.observed.max_round.max(info.round.0);
        self.observed.certificates += 1;
        self.handle(Event::Certificate(info));
    }

    /// Fresh certificates go above the run's DAG, one per author and round, parents
    /// from the previous fresh round (or the run's last round).
    fn fresh_certificate(&mut self, r: &mut Reader) {
        let author = r.below(MEMBERS);
        if self.fresh_authors.contains(&author) || r.u8() % 4 == 0 {
            self.fresh_round += 1;
            self.fresh_authors.clear();
            self.fresh_previous = std::mem::take(&mut self.fresh_current);
        }
        // At least a quorum of the previous round as parents, when there are that many.
        let mut parents = self.fresh_previous.clone();
        if parents.len() > 3 && r.u8() % 2 == 0 {
            parents.remove(r.below(parents.len()));
        }
        let info = cluster::certificate(self.fresh_round, author, parents);
        self.fresh_authors.push(author);
        self.fresh_current.push(info.digest);
        self.certificate(info);
    }

    fn fire(&mut self, id: TimerId) {
        if let Some(at) = self.timers.remove(&id) {
            self.now = self.now.max(at);
            self.handle(Event::Timer(id));
        }
    }

    fn advance(&mut self, by: Duration) {
        let until = self.now.after(by);
        for _ in 0..MAX_CASCADE {
            let Some((&id, &at)) = self.timers.iter().min_by_key(|(_, at)| **at) else {
                break;
            };
            if at > until {
                break;
            }
            self.fire(id);
        }
        self.now = self.now.max(until);
    }

    fn op(&mut self, r: &mut Reader) {
        let run = self.run;
        let n_messages = run.messages.len();
        match r.u8() % 12 {
            0..=2 if n_messages > 0 => {
                let (from, message) = &run.messages[r.u16() as usize % n_messages];
                self.deliver(*from, message.clone());
            }
            3 if n_messages > 0 => {
                let mut bytes = run.encoded[r.u16() as usize % n_messages].clone();
                let other = &run.encoded[r.u16() as usize % n_messages];
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(r.u64());
                for _ in 0..1 + r.u8() % 3 {
                    mutate_with(&mut rng, &mut bytes, other);
                }
                let from = NodeId(r.below(MEMBERS) as u16);
                if let Ok(m) = codec::decode::<P::Message>(&bytes, max_message()) {
                    self.deliver(from, m);
                }
            }
            4 if n_messages > 0 => {
                let (_, message) = &run.messages[r.u16() as usize % n_messages];
                let p = 1 + r.below(MEMBERS - 1);
                let peer = &run.peers[p];
                let from = NodeId(p as u16);
                let out = match r.u8() % 4 {
                    0 => peer.conflicting_proposal(message).into_iter().collect(),
                    1 => peer
                        .votes_for(message)
                        .into_iter()
                        .map(|(_, m)| m)
                        .collect(),
                    2 => peer.far_ahead(message, 1 + r.u8() as u64 % 40, r.u16() as u64),
                    _ => peer.far_ahead(message, r.u32() as u64, r.u16() as u64),
                };
                for m in out {
                    self.deliver(from, m);
                }
            }
            5 => {
                for _ in 0..1 + r.u8() % 8 {
                    if let Some(c) = run.certificates.get(self.next_certificate) {
                        self.next_certificate += 1;
                        self.certificate(c.clone());
                    }
                }
            }
            6 => self.fresh_certificate(r),
            7 if !self.timers.is_empty() => {
                let i = r.below(self.timers.len());
                if let Some(id) = self.timers.keys().nth(i).copied() {
                    self.fire(id);
                }
            }
            8 => {
                let ms = r.u16() as u64 % 5_000;
                self.advance(Duration::from_millis(ms));
            }
            9 => {
                // A node far behind jumps its horizon (an hour is ~36,000 rounds); jumps
                // of 2^32 rounds make Bullshark's `on_installed` loop for seconds over
                // empty rounds (see README.md, findings), so they stay below 2^16 here.
                let jump = if r.u8() % 8 == 0 {
                    r.u16() as u64
                } else {
                    1 + r.u8() as u64 % 16
                };
                self.observed.horizon = self.observed.horizon.saturating_add(jump);
                let gc_round = Round(self.observed.horizon);
                // The driver's contract: nothing at or below the horizon is delivered
                // later; skip the run's certificates there.
                while run
                    .certificates
                    .get(self.next_certificate)
                    .is_some_and(|c| c.round <= gc_round)
                {
                    self.next_certificate += 1;
                }
                if self.fresh_round <= gc_round.0 {
                    self.fresh_round = gc_round.0;
                    self.fresh_previous.clear();
                    self.fresh_current.clear();
                    self.fresh_authors = (0..MEMBERS).collect();
                }
                self.handle(Event::Horizon { gc_round });
            }
            10 => {
                self.installed = self.installed.saturating_add(r.u8() as u64 % 20);
                self.handle(Event::Installed {
                    committed_round: Round(self.installed),
                });
            }
            _ => {
                // Replay one of the core's own earlier messages of the run to it, from
                // a peer (a relayed or reflected message).
                if n_messages > 0 {
                    let (_, message) = &run.messages[r.u16() as usize % n_messages];
                    let from = NodeId(r.below(MEMBERS) as u16);
                    self.deliver(from, message.clone());
                }
            }
        }
    }
}

/// Drive a fresh core of `P` (member 0) with the program `data` (see the module doc).
pub fn drive<P: Fuzzed>(fixture: &Fixture<P>, data: &[u8]) {
    let Ok(guard) = fixture.run.lock() else {
        return;
    };
    let Some(run) = guard.as_ref() else {
        panic!("oracle: {}: the honest run could not be built", P::NAME);
    };
    let Ok(core) = P::new(cluster::context(0), P::Config::default()) else {
        panic!("oracle: {}: the core cannot be built", P::NAME);
    };
    let fresh_round = run.certificates.last().map_or(0, |c| c.round.0);
    let mut h = Harness {
        run,
        core,
        me: NodeId(0),
        now: Time::default(),
        timers: BTreeMap::new(),
        loopback: VecDeque::new(),
        signed: BTreeMap::new(),
        observed: Observed::default(),
        next_certificate: 0,
        fresh_round,
        fresh_authors: (0..MEMBERS).collect(),
        fresh_previous: run
            .certificates
            .iter()
            .filter(|c| c.round.0 == fresh_round)
            .map(|c| c.digest)
            .collect(),
        fresh_current: Vec::new(),
        installed: 0,
    };
    let _ = committee();
    h.handle(Event::Start);
    let mut r = Reader::new(data);
    for _ in 0..MAX_OPS {
        if r.is_empty() {
            break;
        }
        h.op(&mut r);
    }
}

/// Programs that replay the honest run in order (its certificates with its messages,
/// timers firing as time passes): the core makes progress, and mutations start there.
pub fn seeds<P: Fuzzed>(fixture: &Fixture<P>) -> Vec<Vec<u8>> {
    let n = fixture.len();
    let mut seeds = Vec::new();
    for (start, stride) in [(0usize, 1usize), (0, 3), (n / 3, 1), (n / 2, 2)] {
        let mut p = Vec::new();
        for k in 0..80usize {
            if k % 6 == 0 {
                p.extend([5u8, 3]); // three certificates of the run
            }
            if k % 10 == 9 {
                p.extend([8u8, 20, 0]); // 20 ms pass
            }
            let i = (start + k * stride) as u16;
            p.push(0); // deliver message i of the run
            p.extend(i.to_le_bytes());
        }
        p.extend([8u8, 0xb8, 0x0b]); // 3 s pass: timeouts
        p.extend([4u8, 0, 0, 1, 2, 5, 0]); // a peer's far-ahead messages
        p.extend([9u8, 1, 3]); // horizon
        seeds.push(p);
    }
    seeds
}
