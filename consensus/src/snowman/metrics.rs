//! What a Snowman replica reports through [`crate::Protocol::metrics`]: the accepted
//! height first (its progress measure), then blocks accepted (by polls and by catch-up),
//! rejected and proposed, polls made, timed out and ended early, chits counted (and
//! how late: after their poll ended, over 250 ms, the slowest) and those naming blocks
//! this node lacks, and the sizes of its state.

use super::core::Snowman;
use crate::core::Counters;

/// The replica's counters, accepted height first.
pub fn counters(r: &Snowman) -> Counters {
    let p = r.progress;
    let (held, pending_payload, _) = r.payload.sizes();
    vec![
        ("height", r.tree.accepted_height()),
        ("accepted", p.accepted),
        ("accepted_by_catch_up", p.accepted_by_catch_up),
        ("rejected", p.rejected),
        ("proposed", p.proposed),
        ("polls", p.polls),
        ("polls_timed_out", r.polls.timed_out),
        ("polls_ended_early", r.polls.ended_early),
        ("chits", p.chits),
        ("chits_after_end", r.polls.chits_after_end),
        ("chits_over_250ms", r.polls.chits_over_250ms),
        ("slowest_chit_ms", r.polls.slowest_chit_ms),
        ("votes_for_unknown_blocks", p.unknown_votes),
        ("blocks_dropped", p.dropped_blocks),
        ("invalid_payloads", p.invalid_payloads),
        ("refused_requests", r.serve_rate.refused()),
        ("processing", r.tree.processing() as u64),
        ("root_confidence", r.tree.root_confidence()),
        ("certificates_held", held as u64),
        ("certificates_pending", pending_payload as u64),
    ]
}
