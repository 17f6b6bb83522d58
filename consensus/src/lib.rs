//! Sans-IO consensus cores for bftlab (HotStuff first) that order the mempool's DAG certificates.
//!
//! A core is a deterministic state machine ([`Core`]): it takes [`Event`]s (a verified
//! message from a peer, a timer that fired, a DAG certificate that became available)
//! and returns [`Action`]s (send, broadcast, set or cancel a timer, persist safety
//! state, commit, ask the mempool to fetch certificates). It owns no sockets, clocks,
//! tasks or randomness; the driver performs the actions in order, and must make every
//! [`Action::Persist`] durable before performing the actions after it.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod byzantine;
mod core;
pub mod driver;
pub mod hotstuff;
pub mod linearizer;
pub mod node;

pub use crate::core::{Action, Core, Event, TimerId};
pub use node::{Delivered, Node, NodeConfig, Protocol};
