//! Sans-IO consensus cores for bftlab that order the mempool's DAG certificates, behind one protocol-neutral interface.
//!
//! A core is a deterministic state machine implementing [`Protocol`]: built from a
//! [`Context`], it takes [`Event`]s (a verified message from a peer, a timer that fired,
//! a DAG certificate that became available, the mempool's GC horizon) and returns
//! [`Action`]s (send or broadcast, best effort or reliable; set or cancel a timer;
//! persist safety state; commit; fetch certificates; hold the DAG proposer; evidence).
//! It owns no sockets, clocks, tasks or randomness beyond its seeded RNG; the
//! [`driver`] performs the actions in order, making every [`Action::Persist`] durable
//! before the actions after it.
//!
//! Protocols are listed in [`registry::PROTOCOLS`]; a new one is its folder
//! (`consensus/src/<protocol>/`) plus one line there (see `docs/adding-a-protocol.md`).
//! Shared building blocks: [`votes`] (weighted vote counting), [`payload`] (which
//! certificates a proposal may carry), [`byzantine`] (behaviours that wrap any core).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod bullshark;
pub mod byzantine;
mod core;
pub mod driver;
pub mod history;
pub mod hotstuff;
pub mod leaders;
pub mod linearizer;
pub mod node;
pub mod payload;
pub mod registry;
pub mod round_memory;
pub mod serve_rate;
pub mod snowman;
pub mod tendermint;
pub mod testing;
pub mod timers;
pub mod transfer;
pub mod twins;
pub mod votes;

pub use crate::core::{
    parse_config, Action, CertificateInfo, ConsensusError, Context, Counters, Delivery, Event,
    Protocol, ProtocolConfig, Rejected, Time, TimerId,
};
pub use node::{Delivered, Node, NodeConfig, NodeError};
