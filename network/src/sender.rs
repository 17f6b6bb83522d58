//! The sending half: per-peer connections, best-effort queues and reliable delivery.

use crate::environment::Environment;
use crate::error::{DeliveryError, SendError};
use crate::metrics::{DropReason, Metrics};
use crate::receiver::Incoming;
use bytes::Bytes;
use primitives::parameters::NetworkParameters;
use primitives::NodeId;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, trace};

/// How long a reliable message to a twinned member's second instance (Twins testing)
/// is still resent after the other instance acknowledged it.
const TWIN_COPY_GRACE: Duration = Duration::from_secs(10);

/// Messages a stream's writer takes onto the wire in one go before flushing (the peer
/// task's best-effort lanes and the reliable streams).
pub(crate) const WRITE_BATCH: usize = 64;

/// Reliable messages this large or larger go on the connection's bulk reliable stream.
const BULK_BYTES: usize = 64 * 1024;

/// The sending side of a peer: its best-effort queue, its current connection (if
/// any) and the permits that bound its reliable messages in flight.
pub(crate) struct Peer {
    pub(crate) queue: mpsc::Sender<Bytes>,
    /// The urgent lane: its own stream, sent before the normal lane's data.
    pub(crate) urgent: mpsc::Sender<Bytes>,
    /// Bytes queued on both lanes (added here, taken off by the peer task).
    pub(crate) queued: Arc<AtomicUsize>,
    pub(crate) connection: Arc<ConnectionSlot>,
    pub(crate) inflight: Arc<Semaphore>,
}

/// The current connection to one peer, and a wake-up for those waiting for one.
///
/// Waiters are woken in the order they started waiting (tokio's `Notify` keeps a FIFO
/// list). tokio's `watch` channel would not do here: it spreads waiters over shards
/// chosen by an unseeded RNG, which makes the order of resends after a reconnect, and
/// so a simulation's trace, differ between runs with the same seed.
#[derive(Default)]
pub(crate) struct ConnectionSlot {
    /// The connection and when it was established.
    current: std::sync::Mutex<Option<(quinn::Connection, tokio::time::Instant)>>,
    closed: std::sync::atomic::AtomicBool,
    changed: Notify,
    /// Woken when the peer dials us: it is up, so a sender waiting out its reconnect
    /// backoff dials it again at once.
    redial: Notify,
    /// The reliable streams of the current connection, small messages' and bulk ones'
    /// (each opened by the first reliable message sent on it).
    reliable: std::sync::Mutex<[Option<Arc<crate::reliable::Outbound>>; 2]>,
}

impl ConnectionSlot {
    fn set(&self, connection: Option<quinn::Connection>) {
        if let Ok(mut current) = self.current.lock() {
            *current = connection.map(|c| (c, tokio::time::Instant::now()));
        }
        // Let go of the old connection's reliable streams (their waiters resend on the
        // new one as the old connection closes).
        *self.reliable.lock().unwrap_or_else(|p| p.into_inner()) = [None, None];
        self.changed.notify_waiters();
    }

    /// The current connection if it is open and was established at least `age` ago.
    pub(crate) fn get_older_than(&self, age: std::time::Duration) -> Option<quinn::Connection> {
        let current = self.current.lock().ok()?;
        current
            .as_ref()
            .filter(|(c, since)| c.close_reason().is_none() && since.elapsed() >= age)
            .map(|(c, _)| c.clone())
    }

    /// The peer dialed us: cut short a reconnect backoff (a restarted peer would
    /// otherwise hear from us only after up to `retry_max_delay_ms`).
    pub(crate) fn peer_is_up(&self) {
        // One stored permit at most: a sender that is dialing right now skips its next
        // backoff once (the peer's own dials are paced by its backoff).
        self.redial.notify_one();
    }

    /// Sleep for `delay`, or less if the peer dials us meanwhile.
    async fn backoff(&self, delay: std::time::Duration) {
        // `biased`: tokio's default picks among ready branches at random, which would
        // make simulations differ between runs of one seed.
        tokio::select! {
            biased;
            _ = self.redial.notified() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }

    /// Mark the slot as finished for good (the network is shutting down).
    pub(crate) fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.set(None);
    }

    /// The current connection, if it is open.
    pub(crate) fn get(&self) -> Option<quinn::Connection> {
        let current = self.current.lock().ok()?;
        current
            .as_ref()
            .filter(|(c, _)| c.close_reason().is_none())
            .map(|(c, _)| c.clone())
    }

    /// The reliable stream on `connection` for a message of `len` bytes, started if
    /// there is none yet (or the one there broke). Messages of [`BULK_BYTES`] or more
    /// (batches, long replies) have a stream of their own at a lower priority, so that a
    /// header or a vote is not written behind them.
    fn reliable_stream(
        &self,
        connection: &quinn::Connection,
        len: usize,
        max_frame_size: usize,
    ) -> Arc<crate::reliable::Outbound> {
        let bulk = len >= BULK_BYTES;
        let mut streams = self.reliable.lock().unwrap_or_else(|p| p.into_inner());
        let current = &mut streams[usize::from(bulk)];
        match current.as_ref() {
            Some(stream) if stream.serves(connection) => stream.clone(),
            _ => {
                // Small messages at the urgent lane's priority (quinn shares one
                // priority fairly between streams), bulk ones at the normal lane's.
                // Both at the normal priority (as when each message had a stream of its
                // own) exposed a liveness failure: see the stop note of 2026-12-05.
                let priority = if bulk { 0 } else { URGENT_PRIORITY };
                let stream =
                    crate::reliable::Outbound::start(connection.clone(), max_frame_size, priority);
                *current = Some(stream.clone());
                stream
            }
        }
    }

    /// Wait until there is an open connection; `None` once the slot is closed.
    async fn wait(&self) -> Option<quinn::Connection> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            if let Some(c) = self.get() {
                return Some(c);
            }
            notified.await;
        }
    }
}

pub(crate) struct SenderInner {
    pub(crate) me: NodeId,
    pub(crate) peers: HashMap<NodeId, Peer>,
    /// The second instance of each twinned member (Twins testing; empty elsewhere):
    /// it gets a copy of everything sent to the member.
    pub(crate) twins: HashMap<NodeId, Peer>,
    /// The keys of `peers`, sorted (computed once: broadcasts ask for it every time).
    pub(crate) others: Vec<NodeId>,
    pub(crate) own_inbound: Arc<crate::inbound::Lanes>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) parameters: NetworkParameters,
    pub(crate) shutdown: CancellationToken,
}

/// A handle for sending to committee members. Cheap to clone; every clone sends
/// through the same per-peer queues and connections.
///
/// Sending to the node itself is allowed and short-circuits to its own [`crate::Receiver`]
/// (with `from` = its own id), so protocols can treat themselves like any member.
#[derive(Clone)]
pub struct Sender {
    pub(crate) inner: Arc<SenderInner>,
}

impl Sender {
    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.inner.me
    }

    /// Bytes of best-effort messages queued for `to` now (both lanes; 0 for an unknown
    /// peer or this node): what a server checks before answering a peer's request, so
    /// that a peer asking faster than its link drains is not answered into a growing
    /// queue.
    pub fn queued_bytes(&self, to: NodeId) -> usize {
        self.inner
            .peers
            .get(&to)
            .map_or(0, |p| p.queued.load(Ordering::Relaxed))
    }

    /// Ids of every other committee member, in increasing order.
    pub fn others(&self) -> Vec<NodeId> {
        self.inner.others.clone()
    }

    fn check_size(&self, payload: &Bytes) -> Result<(), SendError> {
        let limit = self.inner.parameters.max_frame_size;
        if payload.len() > limit {
            self.inner.metrics.record_drop(DropReason::OversizedSend, 1);
            return Err(SendError::TooLarge {
                len: payload.len(),
                limit,
            });
        }
        Ok(())
    }

    /// Queue `payload` for `to`, best effort. Never waits: if the peer's queue is full
    /// the message is dropped, counted, and [`SendError::QueueFull`] returned. Messages
    /// to one peer leave in the order they were queued; those in flight when a
    /// connection breaks are lost (counted as [`DropReason::ConnectionLost`]).
    pub fn send(&self, to: NodeId, payload: Bytes) -> Result<(), SendError> {
        self.check_size(&payload)?;
        if to == self.inner.me {
            return self.to_self(self.inner.own_inbound.try_push(Incoming::new(to, payload)));
        }
        self.enqueue(to, payload, |peer| &peer.queue)
    }

    /// Put `payload` on one of `to`'s best-effort lanes (and its twin's, if it has
    /// one), dropping (and counting) it when that lane is full.
    fn enqueue(
        &self,
        to: NodeId,
        payload: Bytes,
        lane: impl Fn(&Peer) -> &mpsc::Sender<Bytes>,
    ) -> Result<(), SendError> {
        let peer = self
            .inner
            .peers
            .get(&to)
            .ok_or(SendError::UnknownPeer(to))?;
        if let Some(twin) = self.inner.twins.get(&to) {
            // The twin's own failures are counted and otherwise ignored: the member
            // had the message if either instance could take it.
            let _ = self.enqueue_on(twin, to, payload.clone(), &lane);
        }
        self.enqueue_on(peer, to, payload, &lane)
    }

    fn enqueue_on(
        &self,
        peer: &Peer,
        to: NodeId,
        payload: Bytes,
        lane: &impl Fn(&Peer) -> &mpsc::Sender<Bytes>,
    ) -> Result<(), SendError> {
        // Counted before the message is queued, so the peer task never takes off more
        // than was added.
        let len = payload.len();
        let held = peer.queued.fetch_add(len, Ordering::Relaxed);
        if held > 0 && held.saturating_add(len) > self.inner.parameters.peer_queue_bytes {
            peer.queued.fetch_sub(len, Ordering::Relaxed);
            self.inner.metrics.record_drop(DropReason::QueueBytes, 1);
            return Err(SendError::QueueFull(to));
        }
        self.inner.metrics.queued(len);
        if let Err(e) = lane(peer).try_send(payload) {
            peer.queued.fetch_sub(len, Ordering::Relaxed);
            self.inner.metrics.dequeued(len);
            return Err(self.queue_error(to, e));
        }
        Ok(())
    }

    /// Like [`Sender::send`], on the peer's urgent lane: its own QUIC stream, whose data
    /// is sent before the normal lane's, so a small message (a consensus proposal or
    /// vote) does not wait behind bulk traffic (batches, certificates for a peer that
    /// catches up). Order holds within a lane, not across lanes.
    pub fn send_urgent(&self, to: NodeId, payload: Bytes) -> Result<(), SendError> {
        self.check_size(&payload)?;
        if to == self.inner.me {
            return self.send(to, payload);
        }
        self.enqueue(to, payload, |peer| &peer.urgent)
    }

    /// [`Sender::send_urgent`] to each of `to`; returns the failures (each counted).
    pub fn broadcast_urgent(
        &self,
        to: impl IntoIterator<Item = NodeId>,
        payload: Bytes,
    ) -> Vec<(NodeId, SendError)> {
        to.into_iter()
            .filter_map(|id| self.send_urgent(id, payload.clone()).err().map(|e| (id, e)))
            .collect()
    }

    /// A full queue drops the message (counted); a closed one means shutdown.
    /// The outcome of a message to this node itself, counted like a peer's.
    fn to_self(&self, pushed: Result<(), crate::inbound::PushError>) -> Result<(), SendError> {
        use crate::inbound::PushError;
        match pushed {
            Ok(()) => Ok(()),
            Err(PushError::Full) => {
                self.inner.metrics.record_drop(DropReason::QueueFull, 1);
                Err(SendError::QueueFull(self.inner.me))
            }
            Err(PushError::Unrouted) => {
                // Delivered as far as the transport goes: the node reads no such channel.
                self.inner
                    .metrics
                    .record_drop(DropReason::UnknownChannel, 1);
                Ok(())
            }
            Err(PushError::Closed) | Err(PushError::UnknownSender) => Err(SendError::Closed),
        }
    }

    fn queue_error<T>(&self, to: NodeId, error: mpsc::error::TrySendError<T>) -> SendError {
        match error {
            mpsc::error::TrySendError::Full(_) => {
                self.inner.metrics.record_drop(DropReason::QueueFull, 1);
                SendError::QueueFull(to)
            }
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        }
    }

    /// Like [`Sender::send`], but waits for room in the peer's queue instead of dropping
    /// (back-pressure for bulk traffic such as batches). Still best effort beyond the
    /// queue: a message on a connection that breaks is lost and counted.
    pub async fn send_queued(&self, to: NodeId, payload: Bytes) -> Result<(), SendError> {
        self.check_size(&payload)?;
        if to == self.inner.me {
            return self.to_self(
                self.inner
                    .own_inbound
                    .push(Incoming::new(to, payload))
                    .await,
            );
        }
        let peer = self
            .inner
            .peers
            .get(&to)
            .ok_or(SendError::UnknownPeer(to))?;
        if let Some(twin) = self.inner.twins.get(&to) {
            // A twin's copy never holds up the member's: dropped (counted) if no room.
            let _ = self.enqueue_on(twin, to, payload.clone(), &|p: &Peer| &p.queue);
        }
        // Waits for room by count; its bytes are counted (our own batches, bounded by
        // the batch maker's slots), and not refused by `peer_queue_bytes`.
        let len = payload.len();
        peer.queued.fetch_add(len, Ordering::Relaxed);
        self.inner.metrics.queued(len);
        if peer.queue.send(payload).await.is_err() {
            peer.queued.fetch_sub(len, Ordering::Relaxed);
            self.inner.metrics.dequeued(len);
            return Err(SendError::Closed);
        }
        Ok(())
    }

    /// [`Sender::send`] to each of `to`; returns the failures (each already counted).
    pub fn broadcast(
        &self,
        to: impl IntoIterator<Item = NodeId>,
        payload: Bytes,
    ) -> Vec<(NodeId, SendError)> {
        to.into_iter()
            .filter_map(|id| self.send(id, payload.clone()).err().map(|e| (id, e)))
            .collect()
    }

    /// Send `payload` to `to` reliably. Waits while `max_inflight_reliable` messages to
    /// that peer are unacknowledged (back-pressure), then returns a [`Delivery`] that
    /// resolves once the peer has acknowledged the message. Until then the message is
    /// resent with exponential backoff (`retry_min_delay_ms` doubling up to
    /// `retry_max_delay_ms`) on whatever connection to the peer is current. Dropping
    /// the [`Delivery`] cancels the resends; [`Delivery::detach`] keeps them going
    /// without a handle.
    pub async fn send_reliable(&self, to: NodeId, payload: Bytes) -> Result<Delivery, SendError> {
        self.check_size(&payload)?;
        if to == self.inner.me {
            let token = self.inner.shutdown.child_token();
            let (done_tx, done_rx) = oneshot::channel();
            let inbound = self.inner.own_inbound.clone();
            let metrics = self.inner.metrics.clone();
            let cancel = token.clone();
            let retry = self.inner.parameters.retry_min_delay();
            tokio::spawn(async move {
                loop {
                    let (ack_tx, ack_rx) = oneshot::channel();
                    let incoming = Incoming {
                        from: to,
                        payload: payload.clone(),
                        ack: Some(crate::receiver::Ack::Local(ack_tx)),
                    };
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => {
                            metrics.record_drop(DropReason::Cancelled, 1);
                            return;
                        }
                        sent = inbound.push(incoming) => {
                            if sent.is_err() {
                                return;
                            }
                            if let Ok(false) = ack_rx.await {
                                tokio::time::sleep(retry).await;
                                continue;
                            }
                            let _ = done_tx.send(());
                            return;
                        }
                    }
                }
            });
            return Ok(Delivery::new(done_rx, token));
        }
        let peer = self
            .inner
            .peers
            .get(&to)
            .ok_or(SendError::UnknownPeer(to))?;
        let permit = peer
            .inflight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SendError::Closed)?;
        Ok(self.spawn_reliable(to, peer, payload, permit))
    }

    /// Like [`Sender::send_reliable`] but never waits: if `max_inflight_reliable`
    /// messages to `to` are already unacknowledged (a slow or dead peer), the message is
    /// dropped, counted as [`DropReason::QueueFull`], and [`SendError::QueueFull`] returned.
    pub fn try_send_reliable(&self, to: NodeId, payload: Bytes) -> Result<Delivery, SendError> {
        self.check_size(&payload)?;
        if to == self.inner.me {
            // Self-delivery never waits on a peer.
            let (ack_tx, ack_rx) = oneshot::channel();
            let (done_tx, done_rx) = oneshot::channel();
            let token = self.inner.shutdown.child_token();
            let incoming = Incoming {
                from: to,
                payload,
                ack: Some(crate::receiver::Ack::Local(ack_tx)),
            };
            self.to_self(self.inner.own_inbound.try_push(incoming))?;
            tokio::spawn(async move {
                // A refused self-delivery is not retried here: callers of the non-waiting
                // variant accept loss under overload.
                if !matches!(ack_rx.await, Ok(false)) {
                    let _ = done_tx.send(());
                }
            });
            return Ok(Delivery::new(done_rx, token));
        }
        let peer = self
            .inner
            .peers
            .get(&to)
            .ok_or(SendError::UnknownPeer(to))?;
        let Ok(permit) = peer.inflight.clone().try_acquire_owned() else {
            self.inner.metrics.record_drop(DropReason::QueueFull, 1);
            return Err(SendError::QueueFull(to));
        };
        Ok(self.spawn_reliable(to, peer, payload, permit))
    }

    fn spawn_reliable(
        &self,
        to: NodeId,
        peer: &Peer,
        payload: Bytes,
        permit: OwnedSemaphorePermit,
    ) -> Delivery {
        let token = self.inner.shutdown.child_token();
        let (done_tx, done_rx) = oneshot::channel();
        let task = |peer: &Peer| ReliableTask {
            connection: peer.connection.clone(),
            payload: payload.clone(),
            metrics: self.inner.metrics.clone(),
            min_delay: self.inner.parameters.retry_min_delay(),
            max_delay: self.inner.parameters.retry_max_delay(),
            max_frame_size: self.inner.parameters.max_frame_size,
        };
        let twin = self.inner.twins.get(&to).and_then(|twin| {
            let permit = twin.inflight.clone().try_acquire_owned();
            if permit.is_err() {
                self.inner.metrics.record_drop(DropReason::QueueFull, 1);
            }
            Some((twin, permit.ok()?))
        });
        let Some((twin, twin_permit)) = twin else {
            tokio::spawn(task(peer).run(token.clone(), done_tx, Some(permit)));
            return Delivery::new(done_rx, token);
        };
        // A twinned member: the first acknowledgement delivers it and frees both
        // permits (each instance's own bound on unacknowledged messages: an instance
        // cut off must not use up the member's). Until then, dropping the `Delivery`
        // cancels both copies; after it, the other copy goes on for at most
        // `TWIN_COPY_GRACE`, so an unreachable instance holds nothing for long.
        let (first_tx, mut first_rx) = oneshot::channel();
        let (second_tx, mut second_rx) = oneshot::channel();
        let (first, second) = (
            self.inner.shutdown.child_token(),
            self.inner.shutdown.child_token(),
        );
        tokio::spawn(task(peer).run(first.clone(), first_tx, None));
        tokio::spawn(task(twin).run(second.clone(), second_tx, None));
        let cancelled = token.clone();
        tokio::spawn(async move {
            let permits = (permit, twin_permit);
            let (rest, rest_rx) = tokio::select! {
                biased;
                _ = cancelled.cancelled() => {
                    first.cancel();
                    second.cancel();
                    return;
                }
                Ok(()) = &mut first_rx => (second, second_rx),
                Ok(()) = &mut second_rx => (first, first_rx),
                else => return,
            };
            let _ = done_tx.send(());
            drop(permits);
            tokio::select! {
                biased;
                _ = rest_rx => {}
                _ = tokio::time::sleep(TWIN_COPY_GRACE) => rest.cancel(),
            }
        });
        Delivery::new(done_rx, token)
    }

    /// [`Sender::send_reliable`] to each of `to`.
    pub async fn broadcast_reliable(
        &self,
        to: impl IntoIterator<Item = NodeId>,
        payload: Bytes,
    ) -> Result<Vec<Delivery>, SendError> {
        let mut out = Vec::new();
        for id in to {
            out.push(self.send_reliable(id, payload.clone()).await?);
        }
        Ok(out)
    }

    /// Whether a connection to `to` (to either instance of a twinned member) is
    /// currently established.
    pub fn is_connected(&self, to: NodeId) -> bool {
        let inner = &self.inner;
        [inner.peers.get(&to), inner.twins.get(&to)]
            .into_iter()
            .flatten()
            .any(|p| p.connection.get().is_some())
    }
}

/// The pending delivery of a reliable message. Await it to learn when the peer
/// acknowledged; drop it to cancel the resends.
pub struct Delivery {
    done: oneshot::Receiver<()>,
    guard: Option<DropGuard>,
}

impl Delivery {
    fn new(done: oneshot::Receiver<()>, token: CancellationToken) -> Self {
        Delivery {
            done,
            guard: Some(token.drop_guard()),
        }
    }

    /// Keep resending until delivered (or the network shuts down) without holding the handle.
    pub fn detach(mut self) {
        if let Some(guard) = self.guard.take() {
            guard.disarm();
        }
    }
}

impl Future for Delivery {
    type Output = Result<(), DeliveryError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.done)
            .poll(cx)
            .map(|r| r.map_err(|_| DeliveryError::Closed))
    }
}

/// One reliable message on its way.
struct ReliableTask {
    connection: Arc<ConnectionSlot>,
    payload: Bytes,
    metrics: Arc<Metrics>,
    min_delay: Duration,
    max_delay: Duration,
    max_frame_size: usize,
}

impl ReliableTask {
    async fn run(
        self,
        cancel: CancellationToken,
        done: oneshot::Sender<()>,
        _permit: Option<OwnedSemaphorePermit>,
    ) {
        let mut delay = self.min_delay;
        let mut attempt = 0u32;
        loop {
            let connection = tokio::select! {
                biased;
                _ = cancel.cancelled() => { self.metrics.record_drop(DropReason::Cancelled, 1); return; }
                c = self.connection.wait() => match c {
                    Some(c) => c,
                    None => return, // network shut down
                },
            };
            if attempt > 0 {
                self.metrics.retried();
            }
            attempt += 1;
            let stream = self.connection.reliable_stream(
                &connection,
                self.payload.len(),
                self.max_frame_size,
            );
            let result = tokio::select! {
                biased;
                _ = cancel.cancelled() => { self.metrics.record_drop(DropReason::Cancelled, 1); return; }
                r = stream.deliver(&self.payload) => r,
            };
            match result {
                Ok(()) => {
                    self.metrics.sent(1, self.payload.len());
                    let _ = done.send(());
                    return;
                }
                Err(e) => {
                    trace!(attempt, error = %e, "reliable send failed; will retry");
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => { self.metrics.record_drop(DropReason::Cancelled, 1); return; }
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(self.max_delay);
                }
            }
        }
    }
}

/// The frames of `payloads` as QUIC chunks: each payload's 4-byte big-endian length,
/// then the payload itself, shared rather than copied (quinn queues `Bytes` chunks as
/// they are; encoding through a codec buffer copied every batch once per peer, and
/// quinn's slice writes copied it again).
fn frame_chunks(
    payloads: &[Bytes],
    max_frame_size: usize,
) -> Result<Vec<Bytes>, crate::frame::FrameError> {
    let mut chunks = Vec::with_capacity(payloads.len() * 2);
    for payload in payloads {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|_| payload.len() <= max_frame_size)
            .ok_or(crate::frame::FrameError::Oversized)?;
        chunks.push(Bytes::copy_from_slice(&len.to_be_bytes()));
        chunks.push(payload.clone());
    }
    Ok(chunks)
}

/// Everything the connection task of one peer needs.
pub(crate) struct PeerTask {
    pub(crate) peer: NodeId,
    pub(crate) address: String,
    pub(crate) endpoint: quinn::Endpoint,
    pub(crate) client_config: quinn::ClientConfig,
    pub(crate) environment: Environment,
    pub(crate) connection: Arc<ConnectionSlot>,
    pub(crate) queue: mpsc::Receiver<Bytes>,
    pub(crate) urgent: mpsc::Receiver<Bytes>,
    /// The bytes on both lanes (shared with the sending side's [`Peer`]).
    pub(crate) queued: Arc<AtomicUsize>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) parameters: NetworkParameters,
}

/// QUIC stream priority of the urgent lane (quinn sends higher priorities first).
const URGENT_PRIORITY: i32 = 1;

impl PeerTask {
    /// Keep a connection to the peer open (reconnecting with backoff) and drain the
    /// best-effort queue onto it.
    pub(crate) async fn run(mut self) {
        let mut delay = self.parameters.retry_min_delay();
        loop {
            // A dial that hangs (its handshake went to a peer that was down) is given
            // up when the peer dials us: it is up, and a fresh dial reaches it at once.
            // Not a young one: at start-up both sides dial each other, and dropping a
            // dial the peer is accepting fails its handshake.
            //
            // Each attempt is bounded by `silent_redial_ms` (if set): a handshake sent
            // into a partition backs its retransmissions off like any QUIC probe, so a
            // dial that outlived a long cut would be answered seconds after the heal; a
            // fresh one starts with fresh timers.
            let bound = Duration::from_millis(self.parameters.silent_redial_ms);
            let mut timed_out = false;
            let attempt = {
                let connect = async {
                    if bound.is_zero() {
                        return self.connect().await;
                    }
                    match tokio::time::timeout(bound, self.connect()).await {
                        Ok(result) => result,
                        Err(_) => {
                            timed_out = true;
                            Err("the handshake went unanswered".into())
                        }
                    }
                };
                tokio::pin!(connect);
                let started = tokio::time::Instant::now();
                loop {
                    tokio::select! {
                        biased;
                        attempt = &mut connect => break Some(attempt),
                        _ = self.connection.redial.notified() => {
                            if started.elapsed() >= std::time::Duration::from_secs(1) {
                                break None;
                            }
                        }
                    }
                }
            };
            let Some(attempt) = attempt else {
                continue;
            };
            let connection = match attempt {
                Ok(c) => c,
                Err(e) => {
                    debug!(peer = %self.peer, error = %e, "connect failed");
                    self.metrics.record_drop(DropReason::ConnectFailed, 1);
                    if timed_out {
                        // It already waited `bound`: dial again soon, fresh.
                        self.connection
                            .backoff(self.parameters.retry_min_delay())
                            .await;
                        continue;
                    }
                    self.connection.backoff(delay).await;
                    delay = (delay * 2).min(self.parameters.retry_max_delay());
                    continue;
                }
            };
            delay = self.parameters.retry_min_delay();
            self.metrics.connected_out();
            debug!(peer = %self.peer, "connected");
            let mut connection = connection;
            let open = loop {
                self.connection.set(Some(connection.clone()));
                let dialer = self.dialer();
                let silence = Duration::from_millis(self.parameters.silent_redial_ms);
                let check = Duration::from_millis(self.parameters.keep_alive_ms);
                let outcome = tokio::select! {
                    biased;
                    open = self.write_best_effort(&connection) => Err(open),
                    fresh = replace_when_silent(&connection, &dialer, silence, check) => Ok(fresh),
                };
                match outcome {
                    Ok(fresh) => {
                        debug!(peer = %self.peer, "the connection heard nothing; replaced by a fresh one");
                        self.metrics.redialled_silent();
                        self.metrics.connected_out();
                        connection.close(0u32.into(), b"replaced");
                        connection = fresh;
                    }
                    Err(open) => break open,
                }
            };
            self.connection.set(None);
            if !open {
                self.connection.close();
                return;
            }
            debug!(peer = %self.peer, reason = ?connection.close_reason(), "connection lost");
            connection.close(0u32.into(), b"reconnecting");
            self.connection.backoff(delay).await;
        }
    }

    async fn connect(&self) -> Result<quinn::Connection, Box<dyn std::error::Error + Send + Sync>> {
        self.dialer().connect().await
    }

    /// What dialling the peer takes, apart from the task (the watchdog dials while the
    /// task writes).
    fn dialer(&self) -> Dialer {
        Dialer {
            address: self.address.clone(),
            endpoint: self.endpoint.clone(),
            client_config: self.client_config.clone(),
            environment: self.environment,
        }
    }

    /// Drain both lanes onto the connection, each on its own stream. Returns false when
    /// a queue is closed (the network is shutting down), true when the connection broke.
    async fn write_best_effort(&mut self, connection: &quinn::Connection) -> bool {
        let PeerTask {
            queue,
            urgent,
            queued,
            metrics,
            parameters,
            ..
        } = self;
        let max = parameters.max_frame_size;
        let urgent = Lane {
            queue: urgent,
            queued,
            priority: URGENT_PRIORITY,
        };
        let normal = Lane {
            queue,
            queued,
            priority: 0,
        };
        tokio::select! {
            biased;
            open = drain_lane(connection, urgent, metrics, max) => open,
            open = drain_lane(connection, normal, metrics, max) => open,
        }
    }
}

/// Dials one peer.
struct Dialer {
    address: String,
    endpoint: quinn::Endpoint,
    client_config: quinn::ClientConfig,
    environment: Environment,
}

impl Dialer {
    async fn connect(&self) -> Result<quinn::Connection, Box<dyn std::error::Error + Send + Sync>> {
        let addr = self.environment.resolve(&self.address).await?;
        let connecting = self
            .endpoint
            .connect_with(self.client_config.clone(), addr, "bftlab")?;
        Ok(connecting.await?)
    }
}

/// Resolves with a fresh connection to the peer once `connection` has received nothing
/// for `silence` (checked every `check`) and a new dial succeeds; never if `silence` is
/// zero. The keep-alive makes a live connection receive at least an acknowledgement
/// every keep-alive interval.
///
/// Why: while a peer cannot be reached, QUIC doubles its probe timeout after every
/// unanswered probe, so a connection that outlives a partition of a few seconds sends
/// its next probe seconds after the heal, and nothing moves meanwhile. A new connection
/// starts with fresh timers: its dial, repeated every `silence` while the peer stays
/// unreachable (each attempt bounded by `silence`), gets through about one round trip
/// after the heal. The old connection keeps being used until then.
async fn replace_when_silent(
    connection: &quinn::Connection,
    dialer: &Dialer,
    silence: Duration,
    check: Duration,
) -> quinn::Connection {
    if silence.is_zero() {
        return std::future::pending().await;
    }
    let mut heard = connection.stats().udp_rx.datagrams;
    let mut heard_at = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(check).await;
        let now = connection.stats().udp_rx.datagrams;
        if now != heard {
            heard = now;
            heard_at = tokio::time::Instant::now();
            continue;
        }
        if heard_at.elapsed() < silence {
            continue;
        }
        if let Ok(Ok(fresh)) = tokio::time::timeout(silence, dialer.connect()).await {
            return fresh;
        }
    }
}

/// One best-effort lane of a peer, as the peer task drains it.
struct Lane<'a> {
    queue: &'a mut mpsc::Receiver<Bytes>,
    /// The peer's queued bytes (both lanes), taken off as messages leave the queue.
    queued: &'a AtomicUsize,
    /// The priority of its stream.
    priority: i32,
}

/// Drain one lane onto its own uni stream of `connection`. Returns false when the
/// queue is closed, true when the connection broke.
async fn drain_lane(
    connection: &quinn::Connection,
    lane: Lane<'_>,
    metrics: &Metrics,
    max_frame_size: usize,
) -> bool {
    let Lane {
        queue,
        queued,
        priority,
    } = lane;
    let mut stream = match connection.open_uni().await {
        Ok(s) => s,
        Err(_) => return true,
    };
    let _ = stream.set_priority(priority);
    loop {
        let first = tokio::select! {
            biased;
            _ = connection.closed() => return true,
            m = queue.recv() => match m { Some(m) => m, None => return false },
        };
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            match queue.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let count = batch.len();
        let bytes: usize = batch.iter().map(|b| b.len()).sum();
        queued.fetch_sub(bytes, Ordering::Relaxed);
        metrics.dequeued(bytes);
        // Counted as lost unless the write completes, also when this future is dropped
        // mid-write (its connection replaced by a fresh one).
        let mut in_flight = InFlight {
            metrics,
            messages: count as u64,
        };
        // Senders checked every payload against the frame limit already.
        let written = match frame_chunks(&batch, max_frame_size) {
            Ok(mut chunks) => stream.write_all_chunks(&mut chunks).await.is_ok(),
            Err(_) => false,
        };
        if !written {
            return true;
        }
        in_flight.messages = 0;
        metrics.sent(count, bytes);
    }
}

/// Best-effort messages taken off a queue and not yet written: dropped with them still
/// in it, they are counted as lost.
struct InFlight<'a> {
    metrics: &'a Metrics,
    messages: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.messages > 0 {
            self.metrics
                .record_drop(DropReason::ConnectionLost, self.messages);
        }
    }
}
