//! Reliable messages multiplexed on one bidirectional QUIC stream per connection.
//!
//! Why: a stream per message (as before) cost every reliable message a stream opening,
//! a finish in each direction and an acknowledgement packet of its own; at 10 members
//! four of every five messages are reliable (headers, votes, certificates, batches,
//! consensus messages), so those packets were most of the transport's work, in a real
//! deployment and, above all, in a simulation, where every datagram is also routed,
//! encrypted and decrypted by one thread. Here the messages to a peer share a stream:
//! the sender writes them in batches, each framed with an id, and the receiver answers
//! with small acknowledgement records that share packets too. A connection has two such
//! streams, one for small messages at the urgent lane's priority and one for bulk ones
//! at the normal priority (see `sender.rs`), so that a header or a vote is not written
//! behind a batch.
//!
//! Wire format (both directions are streams of records, no other framing):
//! - sender to receiver: frames of the usual 4-byte big-endian length, whose content is
//!   the message id (8 bytes, big endian) followed by the message;
//! - receiver to sender: 9-byte records, the message id then 1 (handled) or 0 (refused:
//!   the receiver is overloaded; the sender resends after its backoff delay).
//!
//! Guarantees kept from the stream-per-message design:
//! - an acknowledgement still means "queued for and released by the application";
//! - one slow lane does not hold up another: a message whose lane is full for its
//!   sender waits aside (bounded per stream by `max_inflight_reliable` unanswered
//!   messages and one frame's worth of bytes waiting aside, past which the receiver
//!   stops reading and QUIC flow control slows that sender alone), and the messages
//!   behind it go on; a lane whose reader is gone refuses its messages one by one;
//! - a peer holds at most a few such streams (`max_concurrent_bidi_streams`), so what
//!   it can make a node hold is bounded by a few frames' worth per connection;
//! - messages are not ordered (they were not before either: each had its own stream);
//! - a broken stream or connection fails every message waiting on it, and each is
//!   resent on whatever connection is current next (at least once, as before).

use crate::inbound::{Lanes, PushError};
use crate::metrics::{DropReason, Metrics};
use crate::receiver::Incoming;
use crate::sender::WRITE_BATCH;
use bytes::{Buf, Bytes};
use futures::StreamExt;
use primitives::NodeId;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::FramedRead;
use tracing::debug;

/// Bytes of a message id.
const ID_LEN: usize = 8;
/// Bytes of an acknowledgement record: the id and the verdict.
const RECORD_LEN: usize = ID_LEN + 1;
/// Acknowledgement bytes written in one go.
const ACK_BATCH_BYTES: usize = 64 * RECORD_LEN;

/// Why a reliable message was not acknowledged on this stream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    /// The receiver refused it (overloaded): send it again after a delay.
    #[error("refused by the receiver")]
    Refused,
    /// The stream or its connection broke before the acknowledgement came.
    #[error("the reliable stream broke")]
    Broken,
}

/// The sending end of one connection's reliable stream. Messages are queued here and
/// written by one task; acknowledgements are read by another and resolve the waiters.
pub(crate) struct Outbound {
    connection: quinn::Connection,
    state: Mutex<OutboundState>,
    wake: Notify,
    max_frame_size: usize,
    /// The QUIC priority of the stream (higher is sent first).
    priority: i32,
}

#[derive(Default)]
struct OutboundState {
    next_id: u64,
    /// Each message written or queued and not yet answered, with its waiter. Ordered:
    /// when the stream breaks, its waiters are failed (and resend) in the order they
    /// were sent, so a simulation replays exactly.
    waiting: BTreeMap<u64, oneshot::Sender<bool>>,
    /// Messages not yet written. An entry whose id has left `waiting` (its sender gave
    /// up) is skipped, and such entries are swept out once they outnumber live ones.
    queue: VecDeque<(u64, Bytes)>,
    /// The stream broke: nothing more is taken.
    broken: bool,
}

impl Outbound {
    /// A reliable stream on `connection` at QUIC priority `priority`; its writer task
    /// starts at once.
    pub(crate) fn start(
        connection: quinn::Connection,
        max_frame_size: usize,
        priority: i32,
    ) -> Arc<Outbound> {
        let outbound = Arc::new(Outbound {
            connection,
            state: Mutex::new(OutboundState::default()),
            wake: Notify::new(),
            max_frame_size,
            priority,
        });
        tokio::spawn(outbound.clone().write());
        outbound
    }

    /// Whether this stream runs on `connection` and can still take messages.
    pub(crate) fn serves(&self, connection: &quinn::Connection) -> bool {
        self.connection.stable_id() == connection.stable_id() && !self.lock().broken
    }

    fn lock(&self) -> MutexGuard<'_, OutboundState> {
        // Every update leaves the state consistent, so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send `payload` and wait for the receiver's answer. Cancel-safe: dropping the
    /// future withdraws the message if it was not written yet.
    pub(crate) async fn deliver(&self, payload: &Bytes) -> Result<(), StreamError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut state = self.lock();
            if state.broken {
                return Err(StreamError::Broken);
            }
            let id = state.next_id;
            state.next_id += 1;
            state.waiting.insert(id, tx);
            state.queue.push_back((id, payload.clone()));
            if state.queue.len() > 2 * state.waiting.len() + WRITE_BATCH {
                let OutboundState { waiting, queue, .. } = &mut *state;
                queue.retain(|(id, _)| waiting.contains_key(id));
            }
            id
        };
        self.wake.notify_one();
        let _withdraw = Withdraw { outbound: self, id };
        match rx.await {
            Ok(true) => Ok(()),
            Ok(false) => Err(StreamError::Refused),
            Err(_) => Err(StreamError::Broken),
        }
    }

    /// Fail every waiting message (their senders resend elsewhere) and take no more.
    fn break_off(&self) {
        let waiting = {
            let mut state = self.lock();
            state.broken = true;
            state.queue.clear();
            std::mem::take(&mut state.waiting)
        };
        // In the order they were sent (see `waiting`).
        for (_, waiter) in waiting {
            drop(waiter);
        }
    }

    /// The next messages to write (skipping withdrawn ones); empty if none is queued.
    fn take_batch(&self) -> Vec<(u64, Bytes)> {
        let mut state = self.lock();
        let mut batch = Vec::new();
        while batch.len() < WRITE_BATCH {
            let Some((id, payload)) = state.queue.pop_front() else {
                break;
            };
            if state.waiting.contains_key(&id) {
                batch.push((id, payload));
            }
        }
        batch
    }

    /// The answer to message `id` came.
    fn answered(&self, id: u64, handled: bool) {
        let waiter = self.lock().waiting.remove(&id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(handled);
        }
    }

    /// The writer: open the stream, start the acknowledgement reader, then write queued
    /// messages in batches until the stream or the connection breaks.
    async fn write(self: Arc<Self>) {
        let opened = tokio::select! {
            biased;
            _ = self.connection.closed() => None,
            s = self.connection.open_bi() => s.ok(),
        };
        let Some((mut send, recv)) = opened else {
            self.break_off();
            return;
        };
        let _ = send.set_priority(self.priority);
        tokio::spawn(self.clone().read_answers(recv));
        loop {
            let batch = self.take_batch();
            if batch.is_empty() {
                if self.lock().broken {
                    return;
                }
                tokio::select! {
                    biased;
                    _ = self.connection.closed() => { self.break_off(); return; }
                    // The receiver stopped reading (a frame it refused): what was
                    // written after that point is lost, so every waiter resends.
                    _ = send.stopped() => { self.break_off(); return; }
                    _ = self.wake.notified() => continue,
                }
            }
            let written = match frames(&batch, self.max_frame_size) {
                Some(mut chunks) => send.write_all_chunks(&mut chunks).await.is_ok(),
                None => false,
            };
            if !written {
                self.break_off();
                return;
            }
        }
    }

    /// The acknowledgement reader: resolve waiters until the stream ends, then fail the
    /// rest.
    async fn read_answers(self: Arc<Self>, mut recv: quinn::RecvStream) {
        let mut record = [0u8; RECORD_LEN];
        while recv.read_exact(&mut record).await.is_ok() {
            let mut id = [0u8; ID_LEN];
            id.copy_from_slice(&record[..ID_LEN]);
            self.answered(u64::from_be_bytes(id), record[ID_LEN] == 1);
        }
        self.break_off();
        // Wake the writer so that it notices.
        self.wake.notify_one();
    }
}

/// Withdraws a message whose sender stopped waiting for it.
struct Withdraw<'a> {
    outbound: &'a Outbound,
    id: u64,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.outbound.lock().waiting.remove(&self.id);
    }
}

/// The QUIC chunks of a batch: per message the frame length, the id and the message
/// (shared, not copied). `None` if a message exceeds the frame limit (senders checked).
fn frames(batch: &[(u64, Bytes)], max_frame_size: usize) -> Option<Vec<Bytes>> {
    let mut chunks = Vec::with_capacity(batch.len() * 2);
    for (id, payload) in batch {
        if payload.len() > max_frame_size {
            return None;
        }
        let len = u32::try_from(payload.len() + ID_LEN).ok()?;
        let mut head = Vec::with_capacity(4 + ID_LEN);
        head.extend_from_slice(&len.to_be_bytes());
        head.extend_from_slice(&id.to_be_bytes());
        chunks.push(Bytes::from(head));
        chunks.push(payload.clone());
    }
    Some(chunks)
}

/// The acknowledgement of one message from a peer's reliable stream: sent as
/// "handled" when dropped, unless [`Answer::refuse`] or [`Answer::withhold`] is called.
#[derive(Debug)]
pub(crate) struct Answer {
    id: u64,
    records: mpsc::UnboundedSender<Record>,
    /// Held until the answer is written: bounds the unanswered messages per stream.
    permit: Option<OwnedSemaphorePermit>,
    sent: bool,
}

/// An answer on its way to the writer, with the permit it frees once written.
#[derive(Debug)]
struct Record {
    id: u64,
    handled: bool,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Answer {
    fn send(&mut self, handled: bool) {
        if !self.sent {
            self.sent = true;
            let _ = self.records.send(Record {
                id: self.id,
                handled,
                _permit: self.permit.take(),
            });
        }
    }

    /// Tell the sender the message was handled.
    pub(crate) fn handled(mut self) {
        self.send(true);
    }

    /// Tell the sender the message was refused (it resends after its backoff delay).
    pub(crate) fn refuse(mut self) {
        self.send(false);
    }

    /// Answer nothing (the node is shutting down: the sender resends on the next
    /// connection).
    pub(crate) fn withhold(mut self) {
        self.sent = true;
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.send(true);
    }
}

/// The receiving end of a peer's reliable stream: read frames, queue each for the
/// application, and answer each once the application is done with it.
pub(crate) async fn serve(
    lanes: Arc<Lanes>,
    metrics: Arc<Metrics>,
    max_frame_size: usize,
    max_unanswered: usize,
    from: NodeId,
    connection: quinn::Connection,
    (send, recv): (quinn::SendStream, quinn::RecvStream),
) {
    let (records, pending) = mpsc::unbounded_channel();
    tokio::spawn(write_answers(send, pending, metrics.clone()));
    let budget = Arc::new(Semaphore::new(max_unanswered.max(1)));
    // Bytes of the messages waiting aside (their lane full for this sender): they are
    // outside the lanes' bounds, so they have their own, one frame's worth per stream
    // (a larger message passes alone). Past it the reader waits, as a reader of the
    // stream-per-message design held one frame per stream.
    let aside = Arc::new(Semaphore::new(max_frame_size.max(1)));
    let codec = crate::frame::FrameCodec::new(max_frame_size.saturating_add(ID_LEN));
    let mut frames = FramedRead::new(recv, codec);
    loop {
        // Past the budget, stop reading: flow control then slows this sender alone.
        let Ok(permit) = budget.clone().acquire_owned().await else {
            return;
        };
        let mut frame = match frames.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                debug!(peer = %from, error = %e, "dropping reliable stream");
                metrics.record_drop(crate::receiver::frame_drop_reason(&e), 1);
                let _ = frames.get_mut().stop(2u32.into());
                return;
            }
            None => return,
        };
        if frame.len() < ID_LEN {
            metrics.record_drop(DropReason::TruncatedFrame, 1);
            let _ = frames.get_mut().stop(2u32.into());
            return;
        }
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&frame[..ID_LEN]);
        frame.advance(ID_LEN);
        metrics.received(frame.len());
        let incoming = Incoming {
            from,
            payload: frame.freeze(),
            ack: Some(crate::receiver::Ack::Stream(Answer {
                id: u64::from_be_bytes(id),
                records: records.clone(),
                permit: Some(permit),
                sent: false,
            })),
        };
        match lanes.offer(incoming) {
            Ok(()) => {}
            Err((PushError::Full, incoming)) => {
                // Its lane is full for this sender: it waits aside, the stream goes on.
                let share = u32::try_from(incoming.payload.len().clamp(1, max_frame_size.max(1)))
                    .unwrap_or(u32::MAX);
                let Ok(room) = aside.clone().acquire_many_owned(share).await else {
                    return;
                };
                let (lanes, metrics, connection) =
                    (lanes.clone(), metrics.clone(), connection.clone());
                tokio::spawn(async move {
                    let _room = room;
                    // The connection gone, the message goes with it: no answer can reach
                    // its sender, who resends it on the next connection.
                    tokio::select! {
                        biased;
                        _ = connection.closed() => {}
                        pushed = lanes.push_or_return(incoming) => {
                            if let Err((error, incoming)) = pushed {
                                settle(error, incoming, &metrics);
                            }
                        }
                    }
                });
            }
            Err((error, incoming)) => {
                if !settle(error, incoming, &metrics) {
                    let _ = frames.get_mut().stop(0u32.into());
                    return;
                }
            }
        }
    }
}

/// A message that could not be queued: count it and answer it. Returns false when the
/// stream should stop (its sender is no member: cannot happen on an authenticated
/// connection).
fn settle(error: PushError, incoming: Incoming, metrics: &Metrics) -> bool {
    match error {
        PushError::Unrouted => {
            // Delivered as far as the transport goes: the node reads no such channel.
            metrics.record_drop(DropReason::UnknownChannel, 1);
            drop(incoming);
            true
        }
        PushError::Closed | PushError::Full => {
            // That lane's reader is gone (the node is stopping, or one of its parts
            // did): refuse this message alone, so that the sender tries again later and
            // the other lanes' messages behind it on the stream go on.
            metrics.record_drop(DropReason::InboundClosed, 1);
            incoming.reject();
            true
        }
        PushError::UnknownSender => {
            metrics.record_drop(DropReason::UnknownPeer, 1);
            incoming.withhold();
            false
        }
    }
}

/// Write answers in batches as they come; each frees its message's place in the
/// stream's budget once written.
async fn write_answers(
    mut send: quinn::SendStream,
    mut pending: mpsc::UnboundedReceiver<Record>,
    metrics: Arc<Metrics>,
) {
    let mut bytes = Vec::with_capacity(ACK_BATCH_BYTES);
    let mut written = Vec::new();
    while let Some(first) = pending.recv().await {
        bytes.clear();
        let mut next = Some(first);
        while let Some(record) = next.take() {
            if !record.handled {
                metrics.record_drop(DropReason::Refused, 1);
            }
            bytes.extend_from_slice(&record.id.to_be_bytes());
            bytes.push(u8::from(record.handled));
            written.push(record);
            if bytes.len() < ACK_BATCH_BYTES {
                next = pending.try_recv().ok();
            }
        }
        if send.write_all(&bytes).await.is_err() {
            return;
        }
        written.clear();
    }
    let _ = send.finish();
}
