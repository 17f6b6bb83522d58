//! The commit rules and the order of anchors, as pure functions of the local DAG.
//!
//! Anchors sit in even rounds (2, 4, ...), one per round, led by `leader(r)`: slot
//! `r / 2` of the weighted rotation ([`crate::leaders::ProposerSchedule`]), the same on
//! every node.
//!
//! - **Direct commit.** Bullshark (partially synchronous version, arXiv:2209.05633,
//!   its commit rule): the anchor of round `r` commits when the certificates of round `r + 1` that have it as
//!   a parent carry at least f+1 weight (`validity_threshold`). Tusk (Narwhal and Tusk,
//!   EuroSys 2022, Section 5): waves of three rounds `r, r+1, r+2`; the leader of the
//!   wave is learned once the node holds 2f+1 weight of round `r + 2` (the round whose
//!   vertices would carry the coin shares), and it commits with f+1 support in `r + 1`.
//! - **Indirect commit** (the ordering of anchors, the same in both papers and in
//!   DAG-Rider before them): from the anchor to commit,
//!   walk back two rounds at a time down to the last committed anchor round; each
//!   earlier anchor with a path from the anchor most recently put in the chain joins
//!   it, one without such a path is skipped for good. The chain is committed oldest
//!   first. Two honest nodes commit the same anchors in the same order: an anchor with
//!   f+1 votes is a parent of at least one of the 2f+1 parents of every later anchor
//!   (quorum intersection), so every later anchor reaches it.

use super::dag::{LocalDag, Vertex};
use crate::leaders::ProposerSchedule;
use primitives::{Committee, Digest, NodeId, Round};

/// Whether `round` has an anchor.
pub fn is_anchor_round(round: Round) -> bool {
    round.0 >= 2 && round.0 % 2 == 0
}

/// The leader of anchor round `round` (even, at least 2).
pub fn leader(schedule: &ProposerSchedule, round: Round) -> NodeId {
    schedule.proposer(round.0 / 2, 0)
}

/// The anchor of `round`, if the DAG holds it.
pub fn anchor<'a>(
    dag: &'a LocalDag,
    schedule: &ProposerSchedule,
    round: Round,
) -> Option<&'a Vertex> {
    if !is_anchor_round(round) {
        return None;
    }
    dag.at(round, leader(schedule, round))
}

/// Bullshark's direct commit rule: the anchor of `round` has f+1 weight of votes among
/// the certificates of `round + 1` held.
pub fn directly_committed(
    dag: &LocalDag,
    schedule: &ProposerSchedule,
    committee: &Committee,
    round: Round,
) -> Option<Digest> {
    let a = anchor(dag, schedule, round)?;
    let support = dag.votes(&a.digest, Round(round.0 + 1), true);
    (support >= committee.validity_threshold()).then_some(a.digest)
}

/// Tusk's: the wave's third round is complete (2f+1 weight of round `round + 2`: the
/// coin is revealed) and its leader has f+1 weight of votes in `round + 1`.
pub fn tusk_committed(
    dag: &LocalDag,
    schedule: &ProposerSchedule,
    committee: &Committee,
    round: Round,
) -> Option<Digest> {
    if dag.round_weight(Round(round.0 + 2)) < committee.quorum_threshold() {
        return None;
    }
    directly_committed(dag, schedule, committee, round)
}

/// The anchors that committing `anchor` commits, oldest first: the anchor and every
/// earlier anchor above `last_committed` reached by the path rule, and how many anchor
/// rounds in between were skipped (no anchor held, or no path).
pub fn order_anchors(
    dag: &LocalDag,
    schedule: &ProposerSchedule,
    anchor_digest: Digest,
    last_committed: Round,
) -> (Vec<(Digest, Round)>, u64) {
    let Some(top) = dag.get(&anchor_digest) else {
        return (Vec::new(), 0);
    };
    let mut chain = vec![(top.digest, top.round)];
    let mut current = top.digest;
    let mut skipped = 0;
    let mut r = top.round.0.saturating_sub(2);
    while r > last_committed.0 && r >= 2 {
        match anchor(dag, schedule, Round(r)) {
            Some(earlier) if dag.linked(&current, &earlier.digest) => {
                chain.push((earlier.digest, earlier.round));
                current = earlier.digest;
            }
            _ => skipped += 1,
        }
        r -= 2;
    }
    chain.reverse();
    (chain, skipped)
}
