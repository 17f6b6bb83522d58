//! Running a sans-IO [`Core`] over the network, the mempool and a store.
//!
//! The driver owns the clock and the sockets: it decodes and verifies each peer message
//! before the core sees it, feeds DAG certificates and timer expirations in, and performs
//! the core's actions in order. An [`Action::Persist`] is written durably before any later
//! action of the same batch is performed, so a vote never leaves before the state that
//! forbids a second vote is on disk. Commits go through the [`Linearizer`].

use crate::linearizer::{Committed, Linearizer, LinearizerState};
use crate::{Action, Core, Event, TimerId};
use bytes::Bytes;
use mempool::store::{StoreOp, Table};
use mempool::{Certificate, MempoolHandle, Store};
use network::{Incoming, Sender};
use primitives::{codec, NodeId, Round};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

/// The channel byte of consensus messages on the node's transport.
pub const CHANNEL_CONSENSUS: u8 = 1;
/// The store key of the core's persisted safety state.
pub const SAFETY_KEY: &[u8] = b"consensus_safety";
/// The store key of the linearizer's state, written with the core's state.
pub const LINEARIZER_KEY: &[u8] = b"consensus_linearizer";

/// What a core needs from the driver besides [`Core::handle`].
pub trait DrivenCore: Core {
    /// Check a decoded message from `from` (signatures, certificates, limits).
    fn verify(&self, from: NodeId, message: &Self::Message) -> bool;

    /// The core's current view or round (reported in metrics only).
    fn view(&self) -> u64;
}

/// Counters of the driver.
#[derive(Debug, Default)]
pub struct DriverMetrics {
    /// Peer messages handed to the core.
    pub messages: AtomicU64,
    /// Peer messages dropped (undecodable or failed verification).
    pub rejected: AtomicU64,
    /// Blocks committed by the core.
    pub blocks_committed: AtomicU64,
    /// Certificates delivered by the linearizer.
    pub certificates_committed: AtomicU64,
    /// Timers that fired.
    pub timers_fired: AtomicU64,
    /// The core's current view or round.
    pub view: AtomicU64,
    /// The highest DAG round among certificates the executor has resolved into
    /// transactions. The mempool is never told a committed round above it, so it never
    /// collects batches the executor still needs.
    pub executed_round: AtomicU64,
    /// When each of this node's own certificates reached consensus (for latency),
    /// removed when it commits; bounded.
    pub own_certificates: std::sync::Mutex<std::collections::HashMap<primitives::Digest, Instant>>,
}

/// Most own certificates whose arrival time is remembered.
const MAX_TRACKED: usize = 100_000;

/// Everything the driver runs with.
pub struct DriverContext {
    /// This node.
    pub id: NodeId,
    /// The transport.
    pub sender: Sender,
    /// The mempool.
    pub mempool: MempoolHandle,
    /// Where the safety state goes.
    pub store: Arc<dyn Store>,
    /// Largest message accepted.
    pub max_message: usize,
    /// Counters.
    pub metrics: Arc<DriverMetrics>,
}

fn encode<M: Serialize>(message: &M) -> Option<Bytes> {
    let mut out = vec![CHANNEL_CONSENSUS];
    out.extend(codec::encode(message).ok()?);
    Some(out.into())
}

/// Run `core` until its inputs close. Committed certificates, in order, go to `committed`.
pub async fn run<C>(
    mut core: C,
    ctx: DriverContext,
    mut inbound: mpsc::Receiver<Incoming>,
    mut certificates: mpsc::Receiver<Certificate>,
    committed: mpsc::Sender<Committed>,
) where
    C: DrivenCore,
    C::Message: Serialize + DeserializeOwned + Clone,
{
    let mut linearizer = match ctx.store.read(Table::Meta, LINEARIZER_KEY) {
        Ok(Some(bytes)) => match codec::decode::<LinearizerState>(&bytes, usize::MAX) {
            Ok(state) => Linearizer::restore(ctx.mempool.clone(), state),
            Err(e) => {
                warn!(error = %e, "unreadable linearizer state; starting the sequence over");
                Linearizer::new(ctx.mempool.clone())
            }
        },
        _ => Linearizer::new(ctx.mempool.clone()),
    };
    let executed = Round(ctx.metrics.executed_round.load(Ordering::Relaxed));
    ctx.mempool
        .set_committed_round(linearizer.committed_round().min(executed))
        .await;
    let mut timers: BTreeMap<TimerId, Instant> = BTreeMap::new();
    let mut local: VecDeque<Event<C::Message>> = VecDeque::from([Event::Start]);
    loop {
        // Events the node sends itself are handled before anything from outside.
        while let Some(event) = local.pop_front() {
            let actions = core.handle(event);
            ctx.metrics.view.store(core.view(), Ordering::Relaxed);
            if !perform(
                &ctx,
                actions,
                &mut timers,
                &mut local,
                &mut linearizer,
                &committed,
            )
            .await
            {
                return;
            }
        }
        let next_timer = timers
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(id, at)| (*id, *at));
        tokio::select! {
            biased;
            certificate = certificates.recv() => {
                let Some(c) = certificate else { return };
                if c.author() == ctx.id {
                    if let Ok(mut own) = ctx.metrics.own_certificates.lock() {
                        if own.len() < MAX_TRACKED {
                            own.insert(c.digest(), Instant::now());
                        }
                    }
                }
                local.push_back(Event::Certificate { digest: c.digest(), round: c.round(), author: c.author() });
                for item in linearizer.drain() {
                    if committed.send(item).await.is_err() {
                        return;
                    }
                    ctx.metrics.certificates_committed.fetch_add(1, Ordering::Relaxed);
                }
            }
            message = inbound.recv() => {
                let Some(incoming) = message else { return };
                let decoded = match incoming.payload.split_first() {
                    Some((&CHANNEL_CONSENSUS, body)) => codec::decode::<C::Message>(body, ctx.max_message).ok(),
                    _ => None,
                };
                match decoded {
                    Some(m) if core.verify(incoming.from, &m) => {
                        ctx.metrics.messages.fetch_add(1, Ordering::Relaxed);
                        local.push_back(Event::Message { from: incoming.from, message: m });
                    }
                    _ => {
                        ctx.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                        debug!(from = %incoming.from, "dropping invalid consensus message");
                    }
                }
            }
            _ = sleep_until(next_timer.map(|(_, at)| at)), if next_timer.is_some() => {
                if let Some((id, _)) = next_timer {
                    timers.remove(&id);
                    ctx.metrics.timers_fired.fetch_add(1, Ordering::Relaxed);
                    local.push_back(Event::Timer(id));
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Perform actions in order; false when the node must stop (store failure, shutdown).
async fn perform<M: Serialize + Clone>(
    ctx: &DriverContext,
    actions: Vec<Action<M>>,
    timers: &mut BTreeMap<TimerId, Instant>,
    local: &mut VecDeque<Event<M>>,
    linearizer: &mut Linearizer,
    committed: &mpsc::Sender<Committed>,
) -> bool {
    for action in actions {
        match action {
            Action::Send { to, message } => {
                if to == ctx.id {
                    local.push_back(Event::Message {
                        from: ctx.id,
                        message,
                    });
                } else if let Some(bytes) = encode(&message) {
                    let _ = ctx.sender.send(to, bytes);
                }
            }
            Action::Broadcast { message } => {
                if let Some(bytes) = encode(&message) {
                    let _ = ctx.sender.broadcast(ctx.sender.others(), bytes);
                }
            }
            Action::SetTimer { id, after } => {
                timers.insert(id, Instant::now() + after);
            }
            Action::CancelTimer { id } => {
                timers.remove(&id);
            }
            Action::Persist { state } => {
                let mut ops = vec![StoreOp::Put(Table::Meta, SAFETY_KEY.to_vec(), state.into())];
                // The core's committed block and the linearizer's position are written
                // together, so a restart resumes both at the same point.
                if let Some(l) = linearizer.snapshot() {
                    if let Ok(bytes) = codec::encode(&l) {
                        ops.push(StoreOp::Put(
                            Table::Meta,
                            LINEARIZER_KEY.to_vec(),
                            bytes.into(),
                        ));
                    }
                }
                let write = ctx.store.write(ops);
                if let Err(e) = write {
                    // Without durable safety state the node could equivocate after a
                    // restart: stop rather than continue.
                    warn!(error = %e, "cannot persist consensus state; stopping");
                    return false;
                }
            }
            Action::Commit { anchors, .. } => {
                ctx.metrics.blocks_committed.fetch_add(1, Ordering::Relaxed);
                let missing: Vec<_> = anchors
                    .iter()
                    .map(|(a, _)| *a)
                    .filter(|a| !ctx.mempool.with_dag(|d| d.contains(a)))
                    .collect();
                if !missing.is_empty() {
                    // Committed by a quorum, so most peers hold them; ask one, the
                    // mempool's synchronizer retries with others.
                    let peer = ctx.sender.others().first().copied().unwrap_or(ctx.id);
                    ctx.mempool.fetch_certificates(missing, peer).await;
                }

                for item in linearizer.commit(&anchors) {
                    if committed.send(item).await.is_err() {
                        return false;
                    }
                    ctx.metrics
                        .certificates_committed
                        .fetch_add(1, Ordering::Relaxed);
                }
                let executed = Round(ctx.metrics.executed_round.load(Ordering::Relaxed));
                ctx.mempool
                    .set_committed_round(linearizer.committed_round().min(executed))
                    .await;
            }
            Action::FetchCertificates { digests, from } => {
                ctx.mempool.fetch_certificates(digests, from).await;
            }
        }
    }
    true
}
