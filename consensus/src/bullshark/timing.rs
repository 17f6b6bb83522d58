//! Bullshark's DAG timing rule (arXiv:2209.05633, the partially synchronous version):
//! a node that holds 2f+1 weight of certificates of round `q` may move to `q + 1` (make
//! its header of `q + 1`) only when
//! - `q` is an anchor round (even) and it holds the anchor of `q`, or
//! - `q` is a voting round (odd) and the certificates of `q` it holds carry f+1 weight
//!   voting for the anchor of `q - 1` or 2f+1 weight not voting for it,
//!
//! or when the timeout since it reached `q` expired. It makes honest headers wait for a
//! timely anchor (so they vote for it) without waiting forever for a crashed leader.
//! Only liveness depends on it. The core applies it through
//! [`crate::Action::HoldProposer`]: the bound is `q` while waiting and `q + 1` once the
//! rule is met.

use super::dag::LocalDag;
use super::ordering::{anchor, is_anchor_round};
use crate::core::{Action, TimerId};
use crate::leaders::ProposerSchedule;
use primitives::{Committee, Round};
use std::time::Duration;

/// The timing rule's timer.
pub const LEADER_TIMER: TimerId = TimerId::new(1);

/// The rule's state.
#[derive(Debug, Default)]
pub struct TimingRule {
    /// The bound last given to the proposer.
    bound: Option<Round>,
    /// The round the timer runs for.
    waiting: Option<Round>,
    /// The round whose wait timed out.
    timed_out: Option<Round>,
    /// Timeouts that fired while the rule was still unmet.
    pub timeouts: u64,
}

/// Whether the rule lets a node that holds a quorum of `q` move on.
pub fn may_advance(
    dag: &LocalDag,
    schedule: &ProposerSchedule,
    committee: &Committee,
    q: Round,
) -> bool {
    if q == Round(0) {
        return true;
    }
    if is_anchor_round(q) {
        return anchor(dag, schedule, q).is_some();
    }
    let Some(a) = anchor(dag, schedule, Round(q.0 - 1)) else {
        // No anchor of q - 1 held: no certificate of q can vote for it (certificates
        // arrive after their parents), so the 2f+1 of q held are all non-votes.
        return true;
    };
    dag.votes(&a.digest, q, true) >= committee.validity_threshold()
        || dag.votes(&a.digest, q, false) >= committee.quorum_threshold()
}

impl TimingRule {
    /// The bound it currently gives (for metrics).
    pub fn bound(&self) -> Option<Round> {
        self.bound
    }

    /// Re-evaluate after the DAG changed (or the timer fired); push the new bound, and
    /// arm the timer when a new round starts waiting.
    pub fn update<M>(
        &mut self,
        dag: &LocalDag,
        schedule: &ProposerSchedule,
        committee: &Committee,
        timeout: Duration,
        out: &mut Vec<Action<M>>,
    ) {
        let q = dag.highest_round_with(committee.quorum_threshold());
        let met = self.timed_out == Some(q) || may_advance(dag, schedule, committee, q);
        let bound = if met { Round(q.0 + 1) } else { q };
        if !met && self.waiting != Some(q) {
            self.waiting = Some(q);
            out.push(Action::SetTimer {
                id: LEADER_TIMER,
                after: timeout,
            });
        }
        // Never lower a bound already given: the proposer may have made that header.
        if self.bound.is_none_or(|b| bound > b) {
            self.bound = Some(bound);
            out.push(Action::HoldProposer {
                max_round: Some(bound),
            });
        }
    }

    /// The timer fired: the round it ran for may move on.
    pub fn on_timer<M>(
        &mut self,
        dag: &LocalDag,
        schedule: &ProposerSchedule,
        committee: &Committee,
        timeout: Duration,
        out: &mut Vec<Action<M>>,
    ) {
        if let Some(q) = self.waiting {
            if self.bound.is_none_or(|b| b <= q) {
                self.timeouts += 1;
            }
            self.timed_out = Some(q);
        }
        self.update(dag, schedule, committee, timeout, out);
    }
}
