//! What a DAG-native replica reports through [`crate::Protocol::metrics`]: the round of
//! the last committed anchor first (its progress measure), then anchors committed
//! (directly, and in all), anchors skipped, DAG rounds per committed anchor, the timing
//! rule's bound and timeouts, and the size of the local DAG.

use super::core::DagOrderer;
use crate::core::Counters;

/// The replica's counters, committed round first.
pub fn counters(r: &DagOrderer) -> Counters {
    let s = r.state;
    let (vertices, rounds) = r.dag.sizes();
    vec![
        ("committed_round", s.last_committed.0),
        ("anchors_committed", s.committed),
        ("anchors_committed_directly", r.progress.direct),
        ("anchors_skipped", s.skipped),
        // x100: 200 when every anchor round commits.
        (
            "dag_rounds_per_commit_x100",
            (s.last_committed.0 * 100)
                .checked_div(s.committed)
                .unwrap_or(0),
        ),
        ("proposer_bound", r.timing.bound().map_or(0, |b| b.0)),
        ("leader_timeouts", r.timing.timeouts),
        ("certificates_ignored", r.progress.ignored),
        // The horizon ordering stopped at (0: ordering).
        ("halted_at_horizon", r.progress.halted_at.map_or(0, |h| h.0)),
        ("dag_certificates", vertices as u64),
        ("dag_rounds", rounds as u64),
    ]
}
