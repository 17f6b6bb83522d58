//! Running a sans-IO [`Protocol`] over the network, the mempool and a store.
//!
//! What the driver guarantees a core:
//! - **Verify before handle.** Every peer message is decoded within the frame limit and
//!   passed through [`Protocol::verify`]; only accepted messages reach
//!   [`Protocol::handle`]. Refusals are counted.
//! - **Persist before anything later.** An [`Action::Persist`] is written durably before
//!   any later action of the same batch is performed, so a vote never leaves before the
//!   state that forbids a second vote is on disk. A failed write stops the node.
//! - **Timers.** A timer fires once, after its delay, unless cancelled or replaced; the
//!   next deadline is found in O(log n). Due timers are fired before more messages are
//!   taken, and messages and certificates are taken alternately, so a flood of one input
//!   cannot starve the others.
//! - **Order.** Events the core sends itself ([`Action::Send`] to its own id) are
//!   handled before anything from outside; certificates arrive in causal order.
//! - Commits go through the [`Linearizer`]; the GC horizon reaches the core as
//!   [`Event::Horizon`].
//! - **History.** Every delivered certificate is written to the committed
//!   [`History`] before it reaches the executor, and before the linearizer state past
//!   it; a restart replays it into the linearizer. Peers fetch it to catch up
//!   ([`crate::transfer`]): when the node cannot deliver from its DAG, the driver fetches
//!   the sequence it missed, installs it, and tells the core ([`Event::Installed`]).

use crate::byzantine::{Adversarial, Replica};
use crate::core::{Action, CertificateInfo, Delivery, Event, Time};
use crate::history::{self, History};
use crate::linearizer::{Committed, Linearizer, LinearizerState};
use crate::timers::Timers;
use crate::transfer::{
    Catchup, Local, Output, ServeLimit, TransferMessage, TransferMetrics, CHANNEL_TRANSFER,
    MAX_ENTRIES, MAX_ENTRIES_BYTES,
};
use bytes::Bytes;
use mempool::store::{StoreOp, Table};
use mempool::{Certificate, MempoolHandle, Store};
use network::{Incoming, Sender};
use primitives::{codec, Committee, Digest, NodeId, Round};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

/// The channel byte of consensus messages on the node's transport.
pub const CHANNEL_CONSENSUS: u8 = 1;
/// The store key of the core's persisted safety state.
pub const SAFETY_KEY: &[u8] = b"consensus_safety";
/// The store key of the linearizer's state, written with the core's state.
pub const LINEARIZER_KEY: &[u8] = b"consensus_linearizer";
/// Most reliable-delivery keys kept per peer; beyond it the oldest delivery is cancelled.
pub const MAX_RELIABLE_KEYS: usize = 64;
/// How often the core's counters are copied into [`DriverMetrics::core`].
const METRICS_EVERY: Duration = Duration::from_millis(100);
/// A node that has delivered no committed certificate for this long while the DAG grows
/// past what it committed warns, saying what it waits for; and again every period it stays stalled.
/// (Several base timeouts of every core: a healthy committee commits many times in it.)
pub const STALL_WARNING: Duration = Duration::from_secs(5);
/// A node that delivered nothing for this long while the DAG grew past what it
/// committed asks its peers whether they are ahead (state transfer).
pub const CATCH_UP_QUIET: Duration = Duration::from_secs(2);

/// Counters of the driver.
#[derive(Debug, Default)]
pub struct DriverMetrics {
    /// Peer messages handed to the core.
    pub messages: AtomicU64,
    /// Peer messages dropped (undecodable or refused by verification).
    pub rejected: AtomicU64,
    /// Blocks committed by the core.
    pub blocks_committed: AtomicU64,
    /// Certificates delivered by the linearizer.
    pub certificates_committed: AtomicU64,
    /// Timers that fired.
    pub timers_fired: AtomicU64,
    /// Evidence of misbehaviour the core reported.
    pub evidence: AtomicU64,
    /// Reliable sends refused because the peer had too many in flight.
    pub reliable_dropped: AtomicU64,
    /// The core's own counters ([`crate::Protocol::metrics`]), refreshed every 100 ms.
    pub core: Mutex<Vec<(&'static str, u64)>>,
    /// The highest DAG round among certificates the executor has resolved into
    /// transactions. The mempool is never told a committed round above it, so it never
    /// collects batches the executor still needs.
    pub executed_round: AtomicU64,
    /// When each of this node's own certificates reached consensus (for latency),
    /// removed when it commits; bounded.
    pub own_certificates: Mutex<HashMap<Digest, Instant>>,
    /// The position the executor delivers next (history below it may be pruned).
    pub executed_position: AtomicU64,
    /// State transfer.
    pub transfer: Arc<TransferMetrics>,
    /// Stall warnings (see [`STALL_WARNING`]) by what the node waited for: committed
    /// anchor certificates not in its DAG.
    pub stalls_waiting_certificates: AtomicU64,
    /// ... the core (no block committed: a leader, votes or a quorum of timeouts).
    pub stalls_waiting_core: AtomicU64,
    /// ... batches of a committed certificate (the executor's warning).
    pub stalls_waiting_batches: AtomicU64,
}

impl DriverMetrics {
    /// The core's counters as last reported (the first is its progress measure).
    pub fn core_counters(&self) -> Vec<(&'static str, u64)> {
        self.core.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Most own certificates whose arrival time is remembered.
const MAX_TRACKED: usize = 100_000;

/// Everything the driver runs with.
pub struct DriverContext {
    /// This node.
    pub id: NodeId,
    /// The committee (for certificate authors' weights).
    pub committee: Arc<Committee>,
    /// The transport.
    pub sender: Sender,
    /// The mempool.
    pub mempool: MempoolHandle,
    /// Where the safety state goes.
    pub store: Arc<dyn Store>,
    /// Largest message accepted.
    pub max_message: usize,
    /// Rounds of committed history kept below the committed round: the linearizer's
    /// batch memory, `max(2 gc_depth, gc_depth + history_retention_rounds)`.
    pub history_rounds: u64,
    /// Counters.
    pub metrics: Arc<DriverMetrics>,
    /// The latest delivered entries, handed to the executor in memory.
    pub recent: Arc<history::Recent>,
    /// The node's clock: the core's time and its timers run on it.
    pub clock: primitives::clock::NodeClock,
}

/// The driver's own state besides the core.
struct Driver<M> {
    ctx: DriverContext,
    /// The node clock's reading when the driver started (the core's time zero).
    start: Duration,
    timers: Timers,
    local: std::collections::VecDeque<Event<M>>,
    linearizer: Linearizer,
    committed: tokio::sync::watch::Sender<u64>,
    /// The latest reliable delivery per (peer, key), with the order it was made in.
    reliable: HashMap<(NodeId, u64), (u64, network::Delivery)>,
    reliable_seq: u64,
    horizon: Round,
    metrics_at: Time,
    /// When the linearizer last delivered a certificate (blocks the core commits do not
    /// count: a node whose core commits while its linearizer waits is stalled too), and
    /// when the last stall check was (at most one per [`STALL_WARNING`]: the check
    /// reads the DAG, and the driver loop runs once per message).
    last_delivery: Time,
    stall_checked: Time,
    history: History,
    catchup: Catchup,
    serve_limit: ServeLimit,
    /// When the catch-up client last ran.
    catchup_at: Time,
    /// When the node last probed its peers only because it was quiet.
    idle_probe: Option<Time>,
    /// Delivered entries not written to the history yet (at most UNWRITTEN_MAX), and
    /// since when.
    unwritten: Vec<Committed>,
    unwritten_since: Time,
    /// The linearizer position of the last durably written linearizer state: a
    /// restart resumes there and replays the history above it, so nothing at or above
    /// it may be pruned.
    persisted_position: u64,
    /// The linearizer's committed round in that state: a restart reads back the
    /// certificates it delivered within `gc_depth` rounds below it from the history, so
    /// the history's retention counts from here, not from the current round (which a
    /// drain of queued anchors can move far ahead before the next persist).
    persisted_round: Round,
}

fn encode<M: serde::Serialize>(message: &M) -> Option<Bytes> {
    let mut out = vec![CHANNEL_CONSENSUS];
    out.extend(codec::encode(message).ok()?);
    Some(out.into())
}

/// Run `replica` until its inputs close. Committed certificates, in order, go to the
/// committed history; `committed` says how far it reaches. `inbound` carries consensus
/// and state-transfer messages.
pub async fn run<P: Adversarial>(
    mut replica: Replica<P>,
    ctx: DriverContext,
    mut inbound: network::Receiver,
    mut certificates: mpsc::Receiver<Certificate>,
    committed: tokio::sync::watch::Sender<u64>,
) {
    let history = match History::open(ctx.store.clone(), ctx.history_rounds) {
        Ok(h) => h,
        Err(e) => {
            warn!(node = %ctx.id, error = %e, "cannot read the committed history; stopping");
            return;
        }
    };
    let mut linearizer = match ctx.store.read(Table::Meta, LINEARIZER_KEY) {
        Ok(Some(bytes)) => match codec::decode::<LinearizerState>(&bytes, usize::MAX) {
            Ok(state) => Linearizer::restore(ctx.mempool.clone(), state, &history),
            Err(e) => {
                warn!(node = %ctx.id, error = %e, "unreadable linearizer state; starting the sequence over");
                Linearizer::new(ctx.mempool.clone())
            }
        },
        _ => Linearizer::new(ctx.mempool.clone()),
    };
    let (persisted_position, persisted_round) =
        (linearizer.next_position(), linearizer.committed_round());
    // What was delivered after the linearizer state was written (the history is written
    // first): take it back, so the sequence continues exactly where it ended.
    let mut replayed = 0u64;
    while let Some(entry) = history.get(linearizer.next_position()) {
        if let Err(e) = linearizer.install(&entry) {
            warn!(node = %ctx.id, error = %e, "own history does not extend the linearizer state");
            break;
        }
        replayed += 1;
    }
    if replayed > 0 {
        tracing::info!(node = %ctx.id, entries = replayed, next = linearizer.next_position(), "resumed the committed sequence from the history");
    }
    let catchup = Catchup::new(ctx.id, ctx.committee.clone(), ctx.metrics.transfer.clone());
    let executed = Round(ctx.metrics.executed_round.load(Ordering::Relaxed));
    ctx.mempool
        .set_committed_round(linearizer.committed_round().min(executed))
        .await;
    let mut d = Driver {
        start: ctx.clock.now(),
        ctx,
        timers: Timers::default(),
        local: std::collections::VecDeque::from([Event::Start]),
        linearizer,
        committed,
        reliable: HashMap::new(),
        reliable_seq: 0,
        horizon: Round(0),
        metrics_at: Time::default(),
        last_delivery: Time::default(),
        stall_checked: Time::default(),
        history,
        catchup,
        serve_limit: ServeLimit::default(),
        catchup_at: Time::default(),
        idle_probe: None,
        persisted_position,
        persisted_round,
        unwritten: Vec::new(),
        unwritten_since: Time::default(),
    };
    if replayed > 0 && !d.persist_linearizer() {
        return;
    }
    d.committed.send_replace(d.linearizer.next_position());
    let executed = d.ctx.metrics.executed_position.load(Ordering::Relaxed);
    if executed < d.linearizer.next_position() {
        tracing::info!(node = %d.ctx.id, executed, committed = d.linearizer.next_position(), "committed positions not executed before the restart are executed first");
    }
    if replayed > 0 {
        d.local.push_back(Event::Installed {
            committed_round: d.linearizer.committed_round(),
        });
    }
    let mut certificates_first = true;
    loop {
        if !d.drain_local(&mut replica).await {
            return;
        }
        // Due timers first: a stream of messages never holds a timeout back.
        let now = d.now();
        d.watch_stall(now, &replica);
        if !d.unwritten.is_empty()
            && now.since(d.unwritten_since) >= UNWRITTEN_FOR
            && !d.flush_history()
        {
            return;
        }
        if now.since(d.catchup_at) >= CATCH_UP_TICK {
            d.catchup_at = now;
            let needed = d.needs_catch_up(now);
            let local = d.local_sequence();
            let outputs = d.catchup.tick(now, needed, local);
            if !d.transfer_outputs(outputs).await {
                return;
            }
        }
        if let Some(id) = d.timers.pop_due(now) {
            d.ctx.metrics.timers_fired.fetch_add(1, Ordering::Relaxed);
            d.local.push_back(Event::Timer(id));
            continue;
        }
        // Then one certificate and one message, alternating which goes first.
        let mut took = false;
        for turn in 0..2 {
            if (turn == 0) == certificates_first {
                match certificates.try_recv() {
                    Ok(c) => {
                        took = true;
                        if !d.on_certificate(c).await {
                            return;
                        }
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
            } else {
                // A closed lane is seen by `recv` below.
                if let Some(m) = inbound.try_recv() {
                    took = true;
                    if m.payload.first() == Some(&CHANNEL_TRANSFER) {
                        if !d.on_transfer(m).await {
                            return;
                        }
                    } else {
                        d.on_message(&replica, m);
                    }
                }
            }
        }
        certificates_first = !certificates_first;
        if took {
            continue;
        }
        let mut wake = d.catchup_at.after(CATCH_UP_TICK);
        if !d.unwritten.is_empty() {
            wake = wake.min(d.unwritten_since.after(UNWRITTEN_FOR));
        }
        if let Some(t) = d.timers.next_deadline() {
            wake = wake.min(t);
        }
        // The deadline is on the node's clock; the sleep is in real time.
        let sleep = d.ctx.clock.real_until(d.start + wake.0);
        tokio::select! {
            biased;
            _ = tokio::time::sleep(sleep) => {}
            certificate = certificates.recv() => {
                let Some(c) = certificate else { return };
                if !d.on_certificate(c).await {
                    return;
                }
            }
            message = inbound.recv() => {
                let Some(m) = message else { return };
                if m.payload.first() == Some(&CHANNEL_TRANSFER) {
                    if !d.on_transfer(m).await {
                        return;
                    }
                } else {
                    d.on_message(&replica, m);
                }
            }
        }
    }
}

impl<M: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + 'static> Driver<M> {
    fn now(&self) -> Time {
        Time(self.ctx.clock.now().saturating_sub(self.start))
    }

    /// Hand the core every queued event; false when the node must stop.
    async fn drain_local<P>(&mut self, replica: &mut Replica<P>) -> bool
    where
        P: Adversarial<Message = M>,
    {
        while let Some(event) = self.local.pop_front() {
            let now = self.now();
            let actions = replica.handle(now, event);
            if now.since(self.metrics_at) >= METRICS_EVERY || self.metrics_at == Time::default() {
                self.metrics_at = now;
                if let Ok(mut core) = self.ctx.metrics.core.lock() {
                    *core = replica.metrics();
                }
            }
            if !self.perform(actions).await {
                return false;
            }
        }
        true
    }

    /// A certificate from the mempool: queue it for the core, deliver what it unblocks,
    /// and tell the core if the GC horizon moved.
    async fn on_certificate(&mut self, c: Certificate) -> bool {
        if c.author() == self.ctx.id {
            if let Ok(mut own) = self.ctx.metrics.own_certificates.lock() {
                if own.len() < MAX_TRACKED {
                    own.insert(c.digest(), Instant::now());
                }
            }
        }
        self.local.push_back(Event::Certificate(CertificateInfo {
            digest: c.digest(),
            round: c.round(),
            author: c.author(),
            weight: self.ctx.committee.weight(c.author()),
            parents: c.header.parents.clone(),
        }));
        let gc_round = self.ctx.mempool.with_dag(|dag| dag.gc_round());
        if gc_round > self.horizon {
            self.horizon = gc_round;
            self.local.push_back(Event::Horizon { gc_round });
        }
        let items = self.linearizer.drain();
        self.deliver(items)
    }

    /// A peer message: decode, verify, queue for the core (or count the refusal).
    fn on_message<P: Adversarial<Message = M>>(&mut self, replica: &Replica<P>, m: Incoming) {
        let decoded = match m.payload.split_first() {
            Some((&CHANNEL_CONSENSUS, body)) => {
                codec::decode::<M>(body, self.ctx.max_message).map_err(|_| "undecodable")
            }
            _ => Err("not a consensus message"),
        };
        match decoded.and_then(|msg| replica.verify(m.from, &msg).map(|_| msg).map_err(|r| r.0)) {
            Ok(message) => {
                self.ctx.metrics.messages.fetch_add(1, Ordering::Relaxed);
                self.local.push_back(Event::Message {
                    from: m.from,
                    message,
                });
            }
            Err(reason) => {
                self.ctx.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                debug!(node = %self.ctx.id, from = %m.from, reason, "dropping consensus message");
            }
        }
    }

    fn deliver(&mut self, items: Vec<Committed>) -> bool {
        if items.is_empty() {
            return true;
        }
        self.last_delivery = self.now();
        // The executor takes them from memory; the history gets them with the next
        // write of the linearizer state (one transaction, so that state is never ahead
        // of it), or on their own once UNWRITTEN_MAX wait or UNWRITTEN_FOR passed:
        // a store write per delivery would queue behind the mempool's on the consensus
        // path.
        if self.unwritten.is_empty() {
            self.unwritten_since = self.now();
        }
        let count = items.len() as u64;
        // Their batches are committed: a worker that holds one as a peer's unsolicited
        // push (its certificate never entered this node's DAG: installed from the
        // history, or below a horizon jump) keeps it now.
        self.ctx.mempool.note_committed(
            items
                .iter()
                .flat_map(|e| e.certificate.header.payload.iter().copied())
                .collect(),
        );
        self.ctx.recent.push(&items);
        self.unwritten.extend(items);
        if self.unwritten.len() >= UNWRITTEN_MAX && !self.flush_history() {
            return false;
        }
        let tip = self.linearizer.next_position();
        self.committed.send_replace(tip);
        self.ctx
            .metrics
            .certificates_committed
            .fetch_add(count, Ordering::Relaxed);
        !self.committed.is_closed()
    }

    fn send(&mut self, to: NodeId, message: M, delivery: Delivery) {
        if to == self.ctx.id {
            self.local.push_back(Event::Message { from: to, message });
            return;
        }
        let Some(bytes) = encode(&message) else {
            return;
        };
        match delivery {
            // Consensus messages are small and time-critical: the urgent lane, ahead of
            // the mempool's bulk traffic.
            Delivery::BestEffort => {
                let _ = self.ctx.sender.send_urgent(to, bytes);
            }
            Delivery::Bulk => {
                let _ = self.ctx.sender.send(to, bytes);
            }
            Delivery::Reliable { key } => self.send_reliable(to, key, bytes),
        }
    }

    /// Reliable send: the latest per (peer, key); an older one is cancelled.
    fn send_reliable(&mut self, to: NodeId, key: u64, bytes: Bytes) {
        self.reliable.remove(&(to, key));
        match self.ctx.sender.try_send_reliable(to, bytes) {
            Ok(delivery) => {
                self.reliable_seq += 1;
                self.reliable
                    .insert((to, key), (self.reliable_seq, delivery));
                let keys = self.reliable.keys().filter(|(p, _)| *p == to).count();
                if keys > MAX_RELIABLE_KEYS {
                    let oldest = self
                        .reliable
                        .iter()
                        .filter(|((p, _), _)| *p == to)
                        .min_by_key(|(_, (seq, _))| *seq)
                        .map(|(k, _)| *k);
                    if let Some(k) = oldest {
                        self.reliable.remove(&k);
                    }
                }
            }
            Err(_) => {
                self.ctx
                    .metrics
                    .reliable_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Perform actions in order; false when the node must stop (store failure, shutdown).
    async fn perform(&mut self, actions: Vec<Action<M>>) -> bool {
        for action in actions {
            match action {
                Action::Send {
                    to,
                    message,
                    delivery,
                } => self.send(to, message, delivery),
                Action::Broadcast { message, delivery } => match delivery {
                    Delivery::BestEffort => {
                        if let Some(bytes) = encode(&message) {
                            let _ = self
                                .ctx
                                .sender
                                .broadcast_urgent(self.ctx.sender.others(), bytes);
                        }
                    }
                    Delivery::Bulk => {
                        if let Some(bytes) = encode(&message) {
                            let _ = self.ctx.sender.broadcast(self.ctx.sender.others(), bytes);
                        }
                    }
                    Delivery::Reliable { .. } => {
                        for to in self.ctx.sender.others() {
                            self.send(to, message.clone(), delivery);
                        }
                    }
                },
                Action::SetTimer { id, after } => {
                    let at = self.now().after(after);
                    self.timers.set(id, at);
                }
                Action::CancelTimer { id } => self.timers.cancel(id),
                Action::Persist { state } => {
                    if !self.persist(state) {
                        return false;
                    }
                }
                Action::Commit {
                    block,
                    height,
                    anchors,
                } => {
                    if !self.commit(block, height, anchors).await {
                        return false;
                    }
                }
                Action::FetchCertificates { digests, from } => {
                    self.ctx.mempool.fetch_certificates(digests, from).await;
                }
                Action::HoldProposer { max_round } => {
                    self.ctx.mempool.hold_proposer(max_round).await;
                }
                Action::Evidence {
                    culprit,
                    kind,
                    detail,
                } => {
                    let n = self.ctx.metrics.evidence.fetch_add(1, Ordering::Relaxed) + 1;
                    // Every occurrence is counted; the log shows the first and then
                    // every power of two, so a Byzantine flood cannot flood the log.
                    if n.is_power_of_two() {
                        warn!(node = %self.ctx.id, %culprit, kind, detail, count = n, "evidence of misbehaviour");
                    } else {
                        debug!(node = %self.ctx.id, %culprit, kind, detail, "evidence of misbehaviour");
                    }
                }
            }
        }
        true
    }

    /// Write the core's state (with the linearizer's position); false if it failed.
    fn persist(&mut self, state: Vec<u8>) -> bool {
        let mut ops = vec![StoreOp::Put(Table::Meta, SAFETY_KEY.to_vec(), state.into())];
        match History::ops(&self.unwritten) {
            Ok(history) => ops.extend(history),
            Err(e) => {
                warn!(node = %self.ctx.id, error = %e, "cannot encode the committed history; stopping");
                return false;
            }
        }
        // The core's committed block and the linearizer's position are written
        // together, so a restart resumes both at the same point.
        let position = self.linearizer.next_position();
        let round = self.linearizer.committed_round();
        if let Some(l) = self.linearizer.snapshot() {
            if let Ok(bytes) = codec::encode(&l) {
                ops.push(StoreOp::Put(
                    Table::Meta,
                    LINEARIZER_KEY.to_vec(),
                    bytes.into(),
                ));
            }
        }
        if let Err(e) = self.ctx.store.write(ops) {
            // Without durable safety state the node could equivocate after a restart:
            // stop rather than continue.
            warn!(node = %self.ctx.id, error = %e, "cannot persist consensus state; stopping");
            return false;
        }
        self.unwritten.clear();
        self.persisted_position = position;
        self.persisted_round = round;
        true
    }

    /// Write the delivered entries not in the history yet; false if it failed.
    fn flush_history(&mut self) -> bool {
        if self.unwritten.is_empty() {
            return true;
        }
        if let Err(e) = self.history.append(&self.unwritten) {
            warn!(node = %self.ctx.id, error = %e, "cannot write the committed history; stopping");
            return false;
        }
        self.unwritten.clear();
        true
    }

    /// Write the linearizer's state alone (after installing history the core did not
    /// commit: the core's own state may be older, and what it commits again is skipped);
    /// false if it failed.
    fn persist_linearizer(&mut self) -> bool {
        if !self.flush_history() {
            return false;
        }
        let position = self.linearizer.next_position();
        let round = self.linearizer.committed_round();
        let Some(l) = self.linearizer.snapshot() else {
            return true;
        };
        let Ok(bytes) = codec::encode(&l) else {
            return true;
        };
        let op = StoreOp::Put(Table::Meta, LINEARIZER_KEY.to_vec(), bytes.into());
        if let Err(e) = self.ctx.store.write(vec![op]) {
            warn!(node = %self.ctx.id, error = %e, "cannot persist the linearizer state; stopping");
            return false;
        }
        self.persisted_position = position;
        self.persisted_round = round;
        true
    }

    /// Warn when nothing was committed for [`STALL_WARNING`] although the DAG holds
    /// rounds beyond the committed one, naming what the node waits for.
    fn watch_stall<P: Adversarial<Message = M>>(&mut self, now: Time, replica: &Replica<P>) {
        let quiet = now.0.saturating_sub(self.last_delivery.0);
        if quiet < STALL_WARNING || now.0.saturating_sub(self.stall_checked.0) < STALL_WARNING {
            return;
        }
        self.stall_checked = now;
        let committed = self.linearizer.committed_round();
        let dag = self.ctx.mempool.with_dag(|d| d.highest_round());
        if dag.0 <= committed.0 + 2 {
            return; // nothing new to commit: an idle committee is not stalled
        }
        let waiting = self.linearizer.waiting();
        let waits_for = if let Some(first) = waiting.first() {
            self.ctx
                .metrics
                .stalls_waiting_certificates
                .fetch_add(1, Ordering::Relaxed);
            format!(
                "{} committed anchor certificate(s) not in the DAG yet (first {first})",
                waiting.len(),
            )
        } else {
            self.ctx
                .metrics
                .stalls_waiting_core
                .fetch_add(1, Ordering::Relaxed);
            match replica.waiting_for() {
                Some(what) => format!("the core: {what}"),
                None => "the core: no block committed (a leader, votes or a quorum of timeouts)"
                    .to_string(),
            }
        };
        warn!(
            node = %self.ctx.id,
            quiet_s = quiet.as_secs(),
            dag_round = dag.0,
            committed_round = committed.0,
            core = ?replica.metrics(),
            "no certificate delivered for {} s while the DAG grew; waiting for {waits_for}",
            quiet.as_secs()
        );
    }

    async fn commit(&mut self, block: Digest, height: u64, anchors: Vec<(Digest, Round)>) -> bool {
        self.ctx
            .metrics
            .blocks_committed
            .fetch_add(1, Ordering::Relaxed);
        let missing: Vec<_> = anchors
            .iter()
            .map(|(a, _)| *a)
            .filter(|a| !self.ctx.mempool.with_dag(|d| d.contains(a)))
            .collect();
        if !missing.is_empty() {
            // Committed by a quorum, so most peers hold them; ask one, the mempool's
            // synchronizer retries with others.
            let peer = self
                .ctx
                .sender
                .others()
                .first()
                .copied()
                .unwrap_or(self.ctx.id);
            self.ctx.mempool.fetch_certificates(missing, peer).await;
        }
        let items = self.linearizer.commit(block, height, &anchors);
        if !self.deliver(items) {
            return false;
        }
        self.after_delivery().await
    }

    /// Tell the mempool how far the sequence is committed and executed (it collects
    /// below), and prune the history beyond its retention.
    async fn after_delivery(&mut self) -> bool {
        let executed = Round(self.ctx.metrics.executed_round.load(Ordering::Relaxed));
        self.ctx
            .mempool
            .set_committed_round(self.linearizer.committed_round().min(executed))
            .await;
        let executed_position = self.ctx.metrics.executed_position.load(Ordering::Relaxed);
        if let Err(e) = self.history.prune(
            self.linearizer.committed_round().min(self.persisted_round),
            executed_position.min(self.persisted_position),
        ) {
            warn!(node = %self.ctx.id, error = %e, "cannot prune the committed history; stopping");
            return false;
        }
        true
    }

    fn local_sequence(&self) -> Local {
        Local {
            next_position: self.linearizer.next_position(),
            chain: self.linearizer.chain(),
        }
    }

    /// Whether the node should look for peers ahead of it: its linearizer cannot
    /// deliver from the DAG (the mempool skipped rounds it never ordered), or it
    /// delivered nothing for [`CATCH_UP_QUIET`] while the DAG grew past what it
    /// committed, or it has been quiet that long and has not asked for
    /// [`IDLE_PROBE_EVERY`] (a node that restarted far behind cannot grow its DAG: the
    /// parents of what it receives were collected everywhere).
    fn needs_catch_up(&mut self, now: Time) -> bool {
        if self.linearizer.behind_horizon() {
            return true;
        }
        let quiet = now.0.saturating_sub(self.last_delivery.0);
        if quiet < CATCH_UP_QUIET {
            return false;
        }
        let committed = self.linearizer.committed_round();
        let dag = self.ctx.mempool.with_dag(|d| d.highest_round());
        if dag.0 > committed.0 + 2 {
            return true;
        }
        // Until the peers have answered once (after a restart they reconnect first),
        // every second; then every IDLE_PROBE_EVERY.
        let every = if self.catchup.heard_from_peers() {
            IDLE_PROBE_EVERY
        } else {
            Duration::from_secs(1)
        };
        if self.idle_probe.is_none_or(|at| now.since(at) >= every) {
            self.idle_probe = Some(now);
            return true;
        }
        false
    }

    fn send_transfer(&self, to: Option<NodeId>, message: &TransferMessage) {
        let Ok(body) = codec::encode(message) else {
            return;
        };
        let mut bytes = vec![CHANNEL_TRANSFER];
        bytes.extend(body);
        let bytes = Bytes::from(bytes);
        // The urgent lane, ahead of the batches a lagging peer fetches at the same time
        // (which would otherwise delay its next chunk by seconds); entries are bounded
        // to a megabyte per message so they hold that lane only briefly.
        match to {
            Some(to) => {
                let _ = self.ctx.sender.send_urgent(to, bytes);
            }
            None => {
                let _ = self
                    .ctx
                    .sender
                    .broadcast_urgent(self.ctx.sender.others(), bytes);
            }
        }
    }

    /// Perform what the catch-up client wants; false when the node must stop.
    async fn transfer_outputs(&mut self, outputs: Vec<Output>) -> bool {
        let mut queue: std::collections::VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Send(to, message) => self.send_transfer(Some(to), &message),
                Output::Broadcast(message) => self.send_transfer(None, &message),
                Output::Install(source, entries) => {
                    if !self.install(source, entries).await {
                        return false;
                    }
                    let now = self.now();
                    let local = self.local_sequence();
                    queue.extend(self.catchup.after_install(now, local));
                }
                Output::Skip { from, to, chain } => {
                    if !self.skip(from, to, chain) {
                        return false;
                    }
                    let now = self.now();
                    let local = self.local_sequence();
                    queue.extend(self.catchup.after_install(now, local));
                }
            }
        }
        true
    }

    /// Install entries of the committed history vouched for by f+1 weight: into the
    /// linearizer, the history and the executor; then the mempool and the core learn
    /// the committed round moved.
    async fn install(&mut self, source: NodeId, entries: Vec<Committed>) -> bool {
        let mut installed = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.position < self.linearizer.next_position() {
                continue;
            }
            if let Err(e) = self.linearizer.install(&entry) {
                // Checked by the client before; only a bug gets here.
                warn!(node = %self.ctx.id, error = %e, "transferred entry refused");
                break;
            }
            installed.push(entry);
        }
        if installed.is_empty() {
            return true;
        }
        // This node was not there when these were certified: ask for all their missing
        // batches at once, so the executor does not wait on them one certificate at a
        // time; spread over the peers (the source first), so that the batches do not
        // queue up in front of the source's next chunk.
        let mut peers = self.ctx.sender.others();
        peers.retain(|p| *p != source);
        peers.insert(0, source);
        let mut wanted: Vec<Vec<(Digest, primitives::WorkerId, Round)>> =
            vec![Vec::new(); peers.len()];
        for (i, e) in installed.iter().enumerate() {
            if let Err(missing) = self.ctx.mempool.batches(&e.certificate, &e.duplicates) {
                let round = e.certificate.round();
                wanted[i % peers.len()].extend(
                    e.certificate
                        .header
                        .payload
                        .iter()
                        .filter(|(d, _)| missing.contains(d))
                        .map(|(d, w)| (*d, *w, round)),
                );
            }
        }
        for (peer, wanted) in peers.into_iter().zip(wanted) {
            self.ctx.mempool.fetch_batches_from(wanted, peer).await;
        }
        tracing::info!(
            node = %self.ctx.id,
            from = installed[0].position,
            entries = installed.len(),
            committed_round = self.linearizer.committed_round().0,
            "installed committed history fetched from peers"
        );
        if !self.deliver(installed) {
            return false;
        }
        // Anchors the core committed meanwhile may now be delivered, or skipped.
        let items = self.linearizer.drain();
        if !self.deliver(items) {
            return false;
        }
        self.local.push_back(Event::Installed {
            committed_round: self.linearizer.committed_round(),
        });
        if !self.persist_linearizer() {
            return false;
        }
        self.after_delivery().await
    }

    /// Install a checkpoint vouched for by f+1 weight: positions `from..to` are skipped,
    /// recorded as a gap in the history (the executor delivers it as such), and the
    /// linearizer continues at `to` with `chain`; false when the node must stop.
    fn skip(&mut self, from: u64, to: u64, chain: Digest) -> bool {
        // Everything delivered before the gap is in the history first.
        if !self.flush_history() {
            return false;
        }
        if let Err(e) = self.linearizer.skip_to(from, to, chain) {
            // Checked by the client before; only a bug gets here.
            warn!(node = %self.ctx.id, error = %e, "checkpoint refused");
            return true;
        }
        let executed = self.ctx.metrics.executed_position.load(Ordering::Relaxed);
        let gap = history::Gap { from, to, chain };
        if let Err(e) = self.history.skip(gap, executed) {
            warn!(node = %self.ctx.id, error = %e, "cannot record the gap in the committed history; stopping");
            return false;
        }
        warn!(node = %self.ctx.id, from, to, chain = %chain, "installed a checkpoint: positions {from}..{to} skipped (beyond the peers' history retention)");
        if !self.persist_linearizer() {
            return false;
        }
        self.committed.send_replace(self.linearizer.next_position());
        !self.committed.is_closed()
    }

    /// Counts a state-transfer request dropped (undecodable, or over the serve limit).
    fn count_transfer_drop(&self) {
        self.ctx
            .metrics
            .transfer
            .dropped
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A state-transfer message: a request to serve, or an answer for the client.
    async fn on_transfer(&mut self, m: Incoming) -> bool {
        let Ok(message) = codec::decode::<TransferMessage>(&m.payload[1..], self.ctx.max_message)
        else {
            self.count_transfer_drop();
            return true;
        };
        let now = self.now();
        let reply = match message {
            TransferMessage::StatusRequest
            | TransferMessage::Fetch { .. }
            | TransferMessage::VouchRequest { .. } => {
                let fetch = matches!(message, TransferMessage::Fetch { .. });
                if !self.serve_limit.admit(m.from, now, fetch) {
                    self.count_transfer_drop();
                    return true;
                }
                self.ctx
                    .metrics
                    .transfer
                    .served
                    .fetch_add(1, Ordering::Relaxed);
                debug!(node = %self.ctx.id, from = %m.from, request = ?message, "serving state transfer");
                self.serve(message)
            }
            answer => {
                let local = self.local_sequence();
                let outputs = self.catchup.on_message(now, m.from, answer, local);
                return self.transfer_outputs(outputs).await;
            }
        };
        if let Some(reply) = reply {
            self.send_transfer(Some(m.from), &reply);
        }
        true
    }

    /// The answer to a peer's request, from the linearizer and the history.
    fn serve(&self, request: TransferMessage) -> Option<TransferMessage> {
        match request {
            TransferMessage::StatusRequest => Some(TransferMessage::Status {
                next_position: self.linearizer.next_position(),
                floor: self.history.floor(),
            }),
            TransferMessage::Fetch { from } => Some(TransferMessage::Entries {
                entries: self.history.range(
                    from,
                    MAX_ENTRIES,
                    (self.ctx.max_message / 2).min(MAX_ENTRIES_BYTES),
                ),
            }),
            TransferMessage::VouchRequest { position } => {
                let chain = if position == self.linearizer.next_position() {
                    Some(self.linearizer.chain())
                } else if position == 0 {
                    Some(Digest::default())
                } else if position == self.history.floor() {
                    self.history.floor_chain()
                } else if position < self.linearizer.next_position() {
                    self.history.get(position - 1).map(|e| e.chain)
                } else {
                    None
                };
                Some(TransferMessage::Vouch { position, chain })
            }
            _ => None,
        }
    }
}

/// Delivered entries buffered before the driver writes them to the history on their
/// own (well below [`history::RECENT`]: the executor finds every entry either in memory
/// or in the store).
const UNWRITTEN_MAX: usize = 256;
/// How long delivered entries wait for a write of the linearizer state to carry them.
const UNWRITTEN_FOR: Duration = Duration::from_millis(50);

/// How often the driver runs the catch-up client (it does nothing unless needed).
const CATCH_UP_TICK: Duration = Duration::from_millis(250);
/// How often a node that delivers nothing, while its DAG does not grow either (an idle
/// committee, or a node restarted far behind), asks whether its peers are ahead.
const IDLE_PROBE_EVERY: Duration = Duration::from_secs(10);
