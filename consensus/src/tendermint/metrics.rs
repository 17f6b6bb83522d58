//! What a Tendermint replica reports through [`crate::Protocol::metrics`]: its height
//! first (its progress measure), then round, step and lock, progress counters, and the
//! sizes of its state.

use super::core::Tendermint;
use super::round_machine::Step;
use crate::core::Counters;

/// The replica's counters, height first.
pub fn counters(r: &Tendermint) -> Counters {
    let s = &r.height.state;
    let step = match s.step {
        Step::Unstarted => 0,
        Step::Propose => 1,
        Step::Prevote => 2,
        Step::Precommit => 3,
        Step::Decided => 4,
    };
    let (proposals, values, vote_instances) = r.height.sizes();
    let (history, buffered, pending_decisions) = r.sync.sizes();
    let (known, pending, carried) = r.payload.sizes();
    let p = &r.progress;
    vec![
        ("height", s.height),
        ("round", s.round),
        ("step", step),
        // lockedRound + 1 (0: nothing locked).
        ("locked_round", s.locked.map_or(0, |(lr, _)| lr + 1)),
        ("decided", p.decided),
        ("decided_by_sync", p.decided_by_sync),
        ("round_changes", p.round_changes),
        ("timeouts_propose", p.timeouts[0]),
        ("timeouts_prevote", p.timeouts[1]),
        ("timeouts_precommit", p.timeouts[2]),
        ("proposals_made", p.proposals),
        ("regossips", p.regossips),
        ("sync_requests_refused", r.sync.refused),
        ("dropped_too_far_ahead", p.too_far_ahead + r.sync.dropped),
        ("proposals", proposals as u64),
        ("values", values as u64),
        ("vote_instances", vote_instances as u64),
        ("decisions_kept", history as u64),
        ("buffered_messages", buffered as u64),
        ("pending_decisions", pending_decisions as u64),
        ("known_certificates", known as u64),
        ("pending_certificates", pending as u64),
        ("carried_certificates", carried as u64),
    ]
}
