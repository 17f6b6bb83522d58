//! Digests, node identities, committees, parameters, crypto and the wire codec that every bftlab crate shares.
//!
//! Nothing in this crate does I/O except the explicit `load`/`save` helpers for
//! committee, key and parameter files. Everything that parses outside input
//! (files, wire bytes, keys) returns a typed [`Error`] and never panics.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod clock;
pub mod codec;
pub mod committee;
pub mod crypto;
pub mod digest;
pub mod error;
mod fixed_bytes;
pub mod ids;
pub mod parameters;
pub mod rate;

pub use committee::{Authority, Committee, WorkerAddresses};
pub use digest::{Digest, Hasher};
pub use error::{Error, Result};
pub use ids::{NodeId, Round, View, Weight, WorkerId};
pub use parameters::Parameters;
