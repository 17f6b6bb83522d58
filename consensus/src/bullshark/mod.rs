//! DAG-native consensus: Bullshark (Spiegelman, Giridharan, Sonnino, Kokoris-Kogias,
//! "Bullshark: DAG BFT Protocols Made Practical", CCS 2022, arXiv:2201.05677, and
//! "Bullshark: The Partially Synchronous Version", arXiv:2209.05633) and Tusk (Danezis,
//! Kokoris-Kogias, Sonnino, Spiegelman, "Narwhal and Tusk", EuroSys 2022).
//!
//! Both order the mempool's DAG itself and send no messages of their own: a
//! certificate's parents are its votes. Their [`Message`] type has no values, so any
//! frame on their consensus channel is undecodable and dropped (counted by the driver).
//!
//! The rules (`ordering.rs`, `timing.rs`):
//! - **Anchors** sit in even rounds 2, 4, ...; the leader of round `r` is slot `r / 2`
//!   of the weighted rotation of [`crate::leaders::ProposerSchedule`] (equal weights:
//!   round robin in id order), computed alike by every node.
//! - **Bullshark's commit rule:** the anchor of round `r` commits when the certificates
//!   of round `r + 1` that have it as a parent carry f+1 weight (the validity
//!   threshold, not 2f+1).
//! - **Tusk's commit rule:** waves of three rounds `r, r+1, r+2` (the third round of one
//!   wave is the first of the next); the wave's leader is learned once the node holds
//!   2f+1 weight of round `r + 2` and commits with f+1 weight of votes in `r + 1`.
//!   Tusk draws the leader with a threshold coin revealed in round `r + 2`; this core,
//!   like the reference implementation, uses the rotation instead (so an adversary that
//!   knows the schedule can target leaders; the commit latency, one round later than
//!   Bullshark's, is kept).
//! - **Order:** on a commit, walk back two rounds at a time to the last committed anchor
//!   round; each earlier anchor with a path from the anchor last added to the chain is
//!   ordered before it (oldest first), one without is skipped for good. Each committed
//!   anchor is one [`crate::Action::Commit`] (block = the anchor, height = its round);
//!   the linearizer delivers its causal history not delivered before, by round then
//!   author.
//! - **Bullshark's timing rule** (partially synchronous version): with 2f+1 of round
//!   `q`, the node makes its header of `q + 1` only once it holds the anchor of `q`
//!   (`q` even) or f+1 weight of round `q` voting for the anchor of `q - 1` or 2f+1 not
//!   voting (`q` odd), or `leader_timeout_ms` passed; applied through
//!   [`crate::Action::HoldProposer`]. Tusk has no timeouts.
//!
//! Safety: two honest nodes commit the same anchors in the same order, whatever order
//! their DAGs fill in: an anchor with f+1 votes is a parent of one of the 2f+1 parents
//! of every later anchor, so the path rule of every later commit reaches it. This
//! needs at most one certificate per author and round, which the mempool guarantees
//! with at most f Byzantine members; beyond that (equivocating headers certified by
//! f+1 colluders) nodes can order different anchors, and the checkers must see it.
//!
//! Persistence: the round of the last committed anchor, written after the commits of
//! each step (with the linearizer's position). A restarted node's mempool re-delivers
//! its DAG; anchors at or below that round are not committed again.
//!
//! Garbage collection: certificates at or below the mempool's horizon are forgotten
//! ([`crate::Event::Horizon`]). The horizon normally trails the committed round by
//! `gc_depth`. A node cut off for longer than that finds its peers collected rounds it
//! never ordered (its mempool jumps the horizon past them): the order of those rounds
//! cannot be rebuilt from its DAG, so it stops ordering (logged, and counted as
//! `halted_at_horizon`) rather than deliver a sequence with a hole. Catching up from
//! there needs state transfer (the committed sequence from peers), not built yet.
//!
//! Layers: `dag` (the local DAG: votes and paths), `ordering` (the commit rules and the
//! order of anchors, pure), `timing` (Bullshark's timing rule), `core` (the replica and
//! the two [`crate::Protocol`] impls); `config`, `messages`, `adversarial`, `metrics`.

mod adversarial;
mod config;
mod core;
mod dag;
mod messages;
mod metrics;
mod ordering;
#[cfg(test)]
mod tests;
mod timing;

pub use self::config::{Config, TuskConfig};
pub use self::core::{Bullshark, DagOrderer, Persisted, Tusk, Variant};
pub use self::dag::{LocalDag, Vertex};
pub use self::messages::Message;
pub use self::ordering::{
    anchor, directly_committed, is_anchor_round, leader, order_anchors, tusk_committed,
};
pub use self::timing::{may_advance, TimingRule, LEADER_TIMER};
