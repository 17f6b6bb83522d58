//! How the mempool puts its messages on the node's committee transport.
//!
//! A node's single QUIC endpoint carries every component's traffic; the first byte of
//! each payload names the component (channel). The mempool uses [`CHANNEL_MEMPOOL`].

use crate::messages::MempoolMessage;
use bytes::Bytes;
use network::{Delivery, Sender};
use primitives::{codec, NodeId};
use tracing::warn;

/// The channel byte of mempool messages.
pub const CHANNEL_MEMPOOL: u8 = 0;

/// Encode a message with its channel byte.
pub(crate) fn encode(message: &MempoolMessage) -> Option<Bytes> {
    let mut out = Vec::with_capacity(message.encoded_size_hint() + 1);
    out.push(CHANNEL_MEMPOOL);
    match codec::encode_append(message, &mut out) {
        Ok(()) => Some(out.into()),
        Err(e) => {
            warn!(error = %e, "cannot encode mempool message");
            None
        }
    }
}

/// The mempool's view of the transport.
#[derive(Clone)]
pub(crate) struct Outbound {
    pub(crate) sender: Sender,
}

impl Outbound {
    pub(crate) fn me(&self) -> NodeId {
        self.sender.me()
    }

    pub(crate) fn others(&self) -> Vec<NodeId> {
        self.sender.others()
    }

    /// Bytes queued for `to` on the transport now.
    pub(crate) fn queued_bytes(&self, to: NodeId) -> usize {
        self.sender.queued_bytes(to)
    }

    /// Best effort to one peer (drops are counted by the network).
    pub(crate) fn send(&self, to: NodeId, message: &MempoolMessage) {
        if let Some(bytes) = encode(message) {
            let _ = self.sender.send(to, bytes);
        }
    }

    /// Reliable to one peer without waiting for a permit; `None` (counted by the
    /// network) when the peer's in-flight budget is exhausted.
    pub(crate) fn try_reliable(&self, to: NodeId, message: &MempoolMessage) -> Option<Delivery> {
        let bytes = encode(message)?;
        self.sender.try_send_reliable(to, bytes).ok()
    }

    /// Reliable to each of `to`, waiting while a peer's in-flight budget is exhausted
    /// (back-pressure: used for batches, which must reach a quorum).
    pub(crate) async fn broadcast_reliable_wait(
        &self,
        to: &[NodeId],
        message: &MempoolMessage,
    ) -> Vec<(NodeId, Delivery)> {
        let Some(bytes) = encode(message) else {
            return vec![];
        };
        let mut out = Vec::with_capacity(to.len());
        for id in to {
            if let Ok(d) = self.sender.send_reliable(*id, bytes.clone()).await {
                out.push((*id, d));
            }
        }
        out
    }

    /// Reliable to each of `to` without waiting for permits; peers whose in-flight
    /// budget is exhausted are skipped (counted by the network) and must sync later.
    pub(crate) fn broadcast_reliable(
        &self,
        to: &[NodeId],
        message: &MempoolMessage,
    ) -> Vec<(NodeId, Delivery)> {
        let Some(bytes) = encode(message) else {
            return vec![];
        };
        to.iter()
            .filter_map(|id| {
                self.sender
                    .try_send_reliable(*id, bytes.clone())
                    .ok()
                    .map(|d| (*id, d))
            })
            .collect()
    }
}
