//! The receiving half: accepting committee connections and reading frames off them.

use crate::frame::{FrameCodec, FrameError};
use crate::inbound::{Lanes, PushError};
use crate::metrics::{DropReason, Metrics};
use bytes::Bytes;
use futures::StreamExt;
use primitives::{Committee, NodeId};
use std::sync::Arc;
use tokio_util::codec::FramedRead;
use tracing::{debug, Instrument};

/// A message from a committee member.
///
/// For a reliable message, the sender's [`crate::Delivery`] completes only once this
/// value has been dropped (or [`Incoming::processed`] called): the acknowledgement means
/// "handled by the application", not merely "received". Handle the message (store it,
/// apply it) before letting go of it.
#[derive(Debug)]
pub struct Incoming {
    /// The sender, as proven by its TLS key (never taken from the message).
    pub from: NodeId,
    /// The frame's payload, not yet decoded.
    pub payload: Bytes,
    /// Fires the acknowledgement of a reliable message when dropped, or a refusal
    /// (from [`Incoming::reject`]).
    pub(crate) ack: Option<Ack>,
}

/// How a reliable message is acknowledged.
#[derive(Debug)]
pub(crate) enum Ack {
    /// A message this node sent itself: its sending task waits here (`true` handled,
    /// `false` refused; dropped counts as handled).
    Local(tokio::sync::oneshot::Sender<bool>),
    /// A message from a peer's reliable stream.
    Stream(crate::reliable::Answer),
}

impl Ack {
    fn send(self, handled: bool) {
        match self {
            Ack::Local(tx) => {
                let _ = tx.send(handled);
            }
            Ack::Stream(answer) if handled => answer.handled(),
            Ack::Stream(answer) => answer.refuse(),
        }
    }
}

impl Incoming {
    /// A message without an acknowledgement (best effort).
    pub fn new(from: NodeId, payload: Bytes) -> Self {
        Incoming {
            from,
            payload,
            ack: None,
        }
    }

    /// Whether the sender waits for this message to be processed.
    pub fn is_reliable(&self) -> bool {
        self.ack.is_some()
    }

    /// Acknowledge now and keep the payload (same as dropping the message).
    pub fn processed(mut self) -> (NodeId, Bytes) {
        if let Some(ack) = self.ack.take() {
            ack.send(true);
        }
        (self.from, std::mem::take(&mut self.payload))
    }

    /// Refuse the message without handling it (this node is overloaded): a reliable
    /// sender is told so and sends it again after its backoff delay; a best-effort
    /// message is simply dropped. This is how a node pushes back on bulk traffic.
    pub fn reject(mut self) {
        if let Some(ack) = self.ack.take() {
            ack.send(false);
        }
    }

    /// Let go of the message without any answer (the node is shutting down): a
    /// reliable sender resends it on its next connection.
    pub(crate) fn withhold(mut self) {
        match self.ack.take() {
            Some(Ack::Stream(answer)) => answer.withhold(),
            Some(Ack::Local(tx)) => drop(tx),
            None => {}
        }
    }
}

/// The messages of one lane from committee members (see [`crate::Network::start_lanes`]),
/// taken round robin over members, each member's in arrival order per stream.
/// Each member's queue in the lane is bounded (`inbound_peer_bytes`,
/// `inbound_queue_capacity`): while it is full, readers of that member's streams stop
/// reading, and QUIC flow control slows that member alone. Dropping the receiver
/// releases what is queued (reliable senders see no acknowledgement) and refuses the rest.
pub struct Receiver {
    pub(crate) lane: Arc<crate::inbound::Lane>,
}

impl Receiver {
    /// The next message; `None` once the network has shut down and the lane is drained.
    /// Cancel-safe.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.lane.pop().await
    }

    /// The next message if one is waiting.
    pub fn try_recv(&mut self) -> Option<Incoming> {
        self.lane.try_pop()
    }

    /// Messages waiting in this lane now.
    pub fn len(&self) -> usize {
        self.lane.len()
    }

    /// Whether no message waits in this lane.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.lane.receiver_dropped();
    }
}

/// Shared state of the receive side.
#[derive(Clone)]
pub(crate) struct Inbound {
    pub(crate) committee: Arc<Committee>,
    pub(crate) lanes: Arc<Lanes>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) max_frame_size: usize,
    /// Unanswered reliable messages per peer stream before its reader pauses.
    pub(crate) max_unanswered: usize,
    /// Our outgoing connection to each peer (closed when the peer dials us anew).
    pub(crate) outgoing: Arc<std::collections::HashMap<NodeId, Arc<crate::sender::ConnectionSlot>>>,
    /// The latest incoming connection from each peer.
    pub(crate) latest: Arc<std::sync::Mutex<std::collections::HashMap<NodeId, quinn::Connection>>>,
    /// Members that run twice (Twins testing): each of their instances holds its own
    /// connection to us, so a dial from one supersedes nothing.
    pub(crate) twinned: Arc<std::collections::BTreeSet<NodeId>>,
}

impl Inbound {
    /// Accept connections until the endpoint closes.
    pub(crate) async fn accept_loop(self, endpoint: quinn::Endpoint) {
        while let Some(incoming) = endpoint.accept().await {
            let this = self.clone();
            tokio::spawn(async move {
                let connection = match incoming.await {
                    Ok(c) => c,
                    Err(e) => {
                        // Unknown keys are counted by the verifier as UnknownPeer.
                        debug!(error = %e, "incoming handshake failed");
                        this.metrics.record_drop(DropReason::HandshakeFailed, 1);
                        return;
                    }
                };
                let Some(from) = crate::tls::peer_id(&connection, &this.committee) else {
                    this.metrics.record_drop(DropReason::UnknownPeer, 1);
                    connection.close(1u32.into(), b"unknown peer");
                    return;
                };
                this.metrics.connected_in();
                if !this.twinned.contains(&from) {
                    this.superseded(from, &connection);
                }
                if let Some(slot) = this.outgoing.get(&from) {
                    slot.peer_is_up();
                }
                let span = tracing::debug_span!("conn", peer = %from);
                this.serve(connection, from).instrument(span).await;
            });
        }
    }

    /// A peer dialed us while its previous connection to us still looked open: it
    /// restarted (or lost that connection). Our own connection to it is then most
    /// likely dead too, but QUIC would only notice at its idle timeout, so close both
    /// and let the sender dial again at once.
    fn superseded(&self, from: NodeId, connection: &quinn::Connection) {
        let previous = match self.latest.lock() {
            Ok(mut latest) => latest.insert(from, connection.clone()),
            Err(_) => None,
        };
        let Some(previous) = previous.filter(|p| p.close_reason().is_none()) else {
            return;
        };
        debug!(peer = %from, "peer reconnected: dropping the old connections both ways");
        previous.close(0u32.into(), b"superseded");
        // Only a connection that predates the peer's new dial by a margin: closing a
        // fresh one could make two peers re-dial each other in turn.
        let old = self
            .outgoing
            .get(&from)
            .and_then(|slot| slot.get_older_than(std::time::Duration::from_secs(2)));
        if let Some(out) = old {
            out.close(0u32.into(), b"peer reconnected");
        }
    }

    async fn serve(self, connection: quinn::Connection, from: NodeId) {
        loop {
            tokio::select! {
                biased;
                uni = connection.accept_uni() => match uni {
                    Ok(recv) => { tokio::spawn(self.clone().read_stream(recv, from)); }
                    Err(_) => break,
                },
                bi = connection.accept_bi() => match bi {
                    Ok(stream) => {
                        tokio::spawn(crate::reliable::serve(
                            self.lanes.clone(),
                            self.metrics.clone(),
                            self.max_frame_size,
                            self.max_unanswered,
                            from,
                            connection.clone(),
                            stream,
                        ));
                    }
                    Err(_) => break,
                },
            }
        }
        debug!(peer = %from, reason = ?connection.close_reason(), "incoming connection closed");
    }

    /// Queue a received message for the node, waiting while its sender's queue in its
    /// lane is full; false when the stream should stop (the node is shutting down).
    async fn queue(&self, incoming: Incoming) -> bool {
        match self.lanes.push(incoming).await {
            Ok(()) => true,
            Err(PushError::Unrouted) => {
                self.metrics.record_drop(DropReason::UnknownChannel, 1);
                true
            }
            Err(PushError::Closed) | Err(PushError::Full) => {
                self.metrics.record_drop(DropReason::InboundClosed, 1);
                false
            }
            Err(PushError::UnknownSender) => {
                self.metrics.record_drop(DropReason::UnknownPeer, 1);
                false
            }
        }
    }

    fn count_error(&self, error: &FrameError) {
        self.metrics.record_drop(frame_drop_reason(error), 1);
    }

    /// A best-effort stream: frames until the stream ends or turns bad.
    async fn read_stream(self, recv: quinn::RecvStream, from: NodeId) {
        let mut frames = FramedRead::new(recv, FrameCodec::new(self.max_frame_size));
        while let Some(frame) = frames.next().await {
            match frame {
                Ok(bytes) => {
                    self.metrics.received(bytes.len());
                    let incoming = Incoming::new(from, bytes.freeze());
                    if !self.queue(incoming).await {
                        return;
                    }
                }
                Err(e) => {
                    debug!(peer = %from, error = %e, "dropping stream");
                    self.count_error(&e);
                    let _ = frames.get_mut().stop(2u32.into());
                    return;
                }
            }
        }
    }
}

/// The counter a bad frame is dropped under.
pub(crate) fn frame_drop_reason(error: &FrameError) -> DropReason {
    match error {
        FrameError::Oversized => DropReason::OversizedFrame,
        FrameError::Truncated => DropReason::TruncatedFrame,
        FrameError::Io(_) => DropReason::StreamError,
    }
}
