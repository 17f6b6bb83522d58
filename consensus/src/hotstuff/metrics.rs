//! What a HotStuff replica reports through [`crate::Protocol::metrics`]: its view first
//! (its progress measure), then commit progress and the sizes of its state.

use super::core::HotStuff;
use crate::core::Counters;

/// Progress and state sizes of a replica.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSizes {
    /// Current view.
    pub view: u64,
    /// View of the last committed block.
    pub committed_view: u64,
    /// View of the highest QC.
    pub high_qc_view: u64,
    /// View of the locked QC.
    pub locked_view: u64,
    /// Uncommitted blocks held.
    pub blocks: usize,
    /// Committed blocks kept for peers.
    pub history: usize,
    /// (view, block) pairs with votes being counted.
    pub vote_instances: usize,
    /// Views with timeouts being counted.
    pub timeout_views: usize,
    /// Leaders suspected of being silent.
    pub suspected: usize,
    /// Proposals waiting for blocks or certificates.
    pub waiting: usize,
    /// DAG certificates known to be available.
    pub known: usize,
    /// Certificates no block carried yet.
    pub pending: usize,
    /// Certificates some block carried (kept until the GC horizon passes them).
    pub carried: usize,
    /// (view, voter) pairs with a second, different vote counted.
    pub second_votes: usize,
    /// Messages refused for a view beyond the window ahead of the current one.
    pub refused_ahead: u64,
    /// Blocks or votes refused over the caps of a view.
    pub refused_extra: u64,
    /// Block requests refused over a peer's rate.
    pub refused_requests: u64,
    /// The measured round trip (median recent view), ms; 0 before the first.
    pub round_trip_ms: u64,
    /// The base view timeout it gives, ms.
    pub base_timeout_ms: u64,
}

/// The replica's counters, view first.
pub fn counters(replica: &HotStuff) -> Counters {
    let s = replica.state_sizes();
    vec![
        ("view", s.view),
        ("committed_view", s.committed_view),
        ("high_qc_view", s.high_qc_view),
        ("locked_view", s.locked_view),
        ("blocks", s.blocks as u64),
        ("history", s.history as u64),
        ("vote_instances", s.vote_instances as u64),
        ("timeout_views", s.timeout_views as u64),
        ("suspected", s.suspected as u64),
        ("waiting", s.waiting as u64),
        ("known_certificates", s.known as u64),
        ("pending_certificates", s.pending as u64),
        ("carried_certificates", s.carried as u64),
        ("second_votes", s.second_votes as u64),
        ("refused_ahead", s.refused_ahead),
        ("refused_extra", s.refused_extra),
        ("refused_requests", s.refused_requests),
        ("round_trip_ms", s.round_trip_ms),
        ("base_timeout_ms", s.base_timeout_ms),
    ]
}
