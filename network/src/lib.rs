//! Committee-authenticated QUIC transport for bftlab that runs over real UDP or inside a turmoil simulation.
//!
//! One [`Network`] per process owns one QUIC endpoint (quinn over rustls/ring). The
//! TLS identity of a node is a self-signed certificate over its committee ed25519 key;
//! both sides of every connection present one, and a connection is accepted only when
//! the key the peer proves (by signing the TLS 1.3 handshake) is a committee member's.
//! The [`NodeId`] handed up with every [`Incoming`] message is the one that key maps
//! to, never anything the peer claims in a message.
//!
//! Sending ([`Sender`]):
//! - best effort ([`Sender::send`], [`Sender::broadcast`]): queued per peer in a
//!   bounded queue and written in order on one QUIC stream per connection; a full queue
//!   or a lost connection drops the message and counts it.
//! - reliable ([`Sender::send_reliable`], [`Sender::broadcast_reliable`]): the messages
//!   to a peer share one bidirectional stream per connection, each framed with an id
//!   and answered by the receiver with a small record (see `reliable.rs`); a message is
//!   resent, with exponential backoff, across reconnects until the receiving node
//!   acknowledges that its application took it, or until the returned [`Delivery`] is
//!   dropped (cancelled). At most
//!   `max_inflight_reliable` per peer are in flight; beyond that the sender waits
//!   (back-pressure). Delivery is at-least-once: a message whose acknowledgement was
//!   lost is sent again, so handlers must be idempotent.
//!
//! Receiving ([`Receiver`]): messages are queued per lane (a set of channel bytes) and
//! per sending member, each member's queue bounded in bytes and messages, and taken
//! round robin over members, so one member's flood or one slow lane holds up nobody
//! else (see [`Network::start_lanes`]). Frames are length-delimited (tokio-util) and limited to
//! `max_frame_size`; an oversized or truncated frame ends that one stream and is
//! counted, and other streams and peers are not affected. Every drop reason has a
//! counter in [`Metrics`].
//!
//! The same code runs over real UDP ([`Environment::Udp`]) and over turmoil's
//! simulated UDP ([`Environment::Turmoil`], through [`turmoil_socket`]), so simulations
//! exercise the real QUIC stack. Where the kernel cannot shape traffic (no netem),
//! [`wan_emulation`] delays real datagrams by a [`latency_matrix`]'s WAN latencies.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod clients;
mod environment;
mod error;
mod frame;
mod inbound;
pub mod latency_matrix;
mod metrics;
mod network;
pub mod packet_faults;
mod receiver;
mod reliable;
mod sender;
pub mod tls;
pub mod turmoil_socket;
pub mod wan_emulation;

pub use environment::{Environment, MAX_REAL_UDP_PAYLOAD, UDP_SOCKET_BUFFER_BYTES};
pub use error::{DeliveryError, NetworkError, SendError};
pub use frame::{FrameCodec, FrameError};
pub use metrics::{DropReason, Metrics, MetricsSnapshot};
pub use network::{Network, NetworkConfig};
pub use receiver::{Incoming, Receiver};
pub use sender::{Delivery, Sender};

pub use primitives::NodeId;
