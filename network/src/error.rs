//! Errors of the network crate.

use primitives::NodeId;
use std::net::SocketAddr;

/// Starting the network failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The UDP socket could not be bound (port in use, no permission, bad address).
    #[error("cannot bind UDP socket on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// This node is not in the committee it was given.
    #[error("node {0} is not a member of the committee")]
    NotAMember(NodeId),
    /// The node's key does not match its committee entry.
    #[error("the key of node {0} does not match its committee entry")]
    KeyMismatch(NodeId),
    /// TLS configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A network parameter the transport refuses (see `Parameters::validate`, which
    /// refuses it first when the parameters come from a file).
    #[error("invalid network parameter: {0}")]
    Parameter(String),
}

/// A message could not be queued for sending.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The destination is not a committee member.
    #[error("no such peer {0}")]
    UnknownPeer(NodeId),
    /// The peer's best-effort queue is full; the message was dropped and counted.
    #[error("queue to {0} is full")]
    QueueFull(NodeId),
    /// The message is larger than the frame limit.
    #[error("message of {len} bytes exceeds the frame limit of {limit}")]
    TooLarge {
        /// Message size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The network has shut down.
    #[error("network is shut down")]
    Closed,
}

/// A reliable message was not delivered.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// The network shut down before the peer acknowledged the message.
    #[error("network shut down before delivery")]
    Closed,
}
