//! Counters of the network crate: traffic in and out and every reason a message or
//! connection was dropped.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a message, frame, stream or connection was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Outgoing: the peer's best-effort queue was full.
    QueueFull,
    /// Outgoing: the message exceeded the frame limit.
    OversizedSend,
    /// Outgoing: best-effort messages lost with a broken connection.
    ConnectionLost,
    /// Outgoing: a reliable message was cancelled before delivery.
    Cancelled,
    /// Incoming: a frame's length prefix exceeded the frame limit (stream closed).
    OversizedFrame,
    /// Incoming: a stream ended in the middle of a frame.
    TruncatedFrame,
    /// Incoming: a stream failed (reset, connection lost) with data undelivered.
    StreamError,
    /// Incoming: the application's inbound queue is gone (shutting down).
    InboundClosed,
    /// Connection: the peer's key is not in the committee (handshake refused).
    UnknownPeer,
    /// Connection: the QUIC/TLS handshake failed for another reason.
    HandshakeFailed,
    /// Connection: an outgoing connection attempt failed.
    ConnectFailed,
    /// Incoming: the application refused a reliable message (overloaded); the sender retries.
    Refused,
    /// Outgoing: the peer's best-effort lanes held `peer_queue_bytes` already.
    QueueBytes,
    /// Incoming: the message's channel byte is not one the node reads (or it was empty).
    UnknownChannel,
}

impl DropReason {
    /// Every reason, in a fixed order.
    pub const ALL: [DropReason; 14] = [
        DropReason::QueueFull,
        DropReason::OversizedSend,
        DropReason::ConnectionLost,
        DropReason::Cancelled,
        DropReason::OversizedFrame,
        DropReason::TruncatedFrame,
        DropReason::StreamError,
        DropReason::InboundClosed,
        DropReason::UnknownPeer,
        DropReason::HandshakeFailed,
        DropReason::ConnectFailed,
        DropReason::Refused,
        DropReason::QueueBytes,
        DropReason::UnknownChannel,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// The network's counters. Cheap to update from any task; read with [`Metrics::snapshot`].
#[derive(Debug, Default)]
pub struct Metrics {
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    connections_out: AtomicU64,
    connections_in: AtomicU64,
    silent_redials: AtomicU64,
    reliable_retries: AtomicU64,
    queued_bytes: AtomicU64,
    inbound_queued_bytes: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
}

/// A point-in-time copy of [`Metrics`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Messages written to peers (reliable ones counted once, when acknowledged).
    pub messages_out: u64,
    /// Payload bytes of those messages.
    pub bytes_out: u64,
    /// Messages received and handed to the application.
    pub messages_in: u64,
    /// Payload bytes of those messages.
    pub bytes_in: u64,
    /// Outgoing connections established.
    pub connections_out: u64,
    /// Incoming connections accepted.
    pub connections_in: u64,
    /// Outgoing connections replaced by a fresh one after they received nothing for
    /// `silent_redial_ms` (see [`primitives::parameters::NetworkParameters`]).
    pub silent_redials: u64,
    /// Reliable messages sent again after a failure.
    pub reliable_retries: u64,
    /// Bytes of best-effort messages queued for peers now (every peer, both lanes).
    pub queued_bytes: u64,
    /// Bytes of received messages waiting for the node to take them now (every lane
    /// and member; at most `inbound_peer_bytes` per member and lane, plus one message).
    pub inbound_queued_bytes: u64,
    /// Drops by reason (reasons with a zero count are omitted).
    pub drops: Vec<(DropReason, u64)>,
}

impl Metrics {
    pub(crate) fn sent(&self, messages: usize, bytes: usize) {
        self.messages_out
            .fetch_add(messages as u64, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn received(&self, bytes: usize) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn connected_out(&self) {
        self.connections_out.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn redialled_silent(&self) {
        self.silent_redials.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn connected_in(&self) {
        self.connections_in.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn retried(&self) {
        self.reliable_retries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn queued(&self, bytes: usize) {
        self.queued_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn dequeued(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn inbound_queued(&self, bytes: usize) {
        self.inbound_queued_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn inbound_dequeued(&self, bytes: usize) {
        self.inbound_queued_bytes
            .fetch_sub(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn record_drop(&self, reason: DropReason, count: u64) {
        self.drops[reason.index()].fetch_add(count, Ordering::Relaxed);
    }

    /// How many drops for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].load(Ordering::Relaxed)
    }

    /// Messages received so far.
    pub fn messages_in(&self) -> u64 {
        self.messages_in.load(Ordering::Relaxed)
    }

    /// A copy of all counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            messages_out: self.messages_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            messages_in: self.messages_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            connections_out: self.connections_out.load(Ordering::Relaxed),
            connections_in: self.connections_in.load(Ordering::Relaxed),
            silent_redials: self.silent_redials.load(Ordering::Relaxed),
            reliable_retries: self.reliable_retries.load(Ordering::Relaxed),
            queued_bytes: self.queued_bytes.load(Ordering::Relaxed),
            inbound_queued_bytes: self.inbound_queued_bytes.load(Ordering::Relaxed),
            drops: DropReason::ALL
                .iter()
                .map(|r| (*r, self.dropped(*r)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}
