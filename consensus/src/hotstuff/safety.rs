//! HotStuff's safety rules, as pure functions over the persisted [`SafetyState`]: when
//! a replica may vote, how QCs move the lock, and which block a new QC commits.
//!
//! Nothing here reads the network, a clock or the block tree directly: ancestry is a
//! closure the caller answers from its tree, so the rules are property-tested alone.

use super::config::CommitRule;
use super::messages::{genesis_digest, Block, Qc};
use primitives::{Digest, View};
use serde::{Deserialize, Serialize};

/// What must survive a restart for HotStuff to stay safe, and to resume committing
/// where it stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyState {
    /// The highest view this replica voted or timed out in.
    pub last_voted_view: View,
    /// The lock (three-chain rule).
    pub locked_qc: Qc,
    /// The highest QC seen.
    pub high_qc: Qc,
    /// The last committed block and its view.
    pub committed: (Digest, View),
}

impl Default for SafetyState {
    fn default() -> Self {
        SafetyState {
            last_voted_view: View(0),
            locked_qc: Qc::genesis(),
            high_qc: Qc::genesis(),
            committed: (genesis_digest(), View(0)),
        }
    }
}

/// Why a replica does not vote for a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoVote {
    /// Not a proposal of the replica's current view.
    NotCurrentView,
    /// It already voted (or timed out) in that view.
    AlreadyVoted,
    /// The block follows a timeout but does not extend the highest QC its TC reports.
    TimeoutRule,
    /// The block neither has a QC newer than the lock nor extends the locked block.
    Lock,
}

/// [once per view] A replica votes only in its current view, and at most once in it
/// (a timeout counts as its last word in that view).
pub fn may_vote_in(state: &SafetyState, current: View, block_view: View) -> Result<(), NoVote> {
    if block_view != current {
        return Err(NoVote::NotCurrentView);
    }
    if block_view <= state.last_voted_view {
        return Err(NoVote::AlreadyVoted);
    }
    Ok(())
}

/// [safeNode] The voting rule. `extends_lock` answers whether the block descends from the
/// locked block (asked only when the three-chain rule needs it).
pub fn safe_to_vote(
    rule: CommitRule,
    state: &SafetyState,
    block: &Block,
    extends_lock: impl FnOnce() -> bool,
) -> Result<(), NoVote> {
    #[cfg(test)]
    if tests_only::SKIP_VOTING_RULE.with(|s| s.get()) {
        return Ok(()); // the known-bad variant Twins must catch
    }
    // After a timeout, the block must extend the highest QC its timeout certificate
    // reports (both rules; two-chain's safety rests on it).
    if block.qc.view.next() != block.view {
        match &block.tc {
            Some(tc) if tc.view.next() == block.view && block.qc.view >= tc.high_qc_view() => {}
            _ => return Err(NoVote::TimeoutRule),
        }
    }
    let locked = &state.locked_qc;
    let ok = match rule {
        // Liveness rule (QC newer than the lock) or safety rule (extends the lock).
        CommitRule::ThreeChain => block.qc.view > locked.view || extends_lock(),
        // Jolteon: the block's QC is at least the lock (the highest QC voted on).
        CommitRule::TwoChain => block.qc.view >= locked.view,
    };
    if ok {
        Ok(())
    } else {
        Err(NoVote::Lock)
    }
}

/// A known-bad variant for tests only: HotStuff without its voting rule (neither the
/// lock check nor the timeout rule; Twins must find a case where it breaks agreement).
/// The lock check alone is not load-bearing here: a block that does not follow its
/// parent's view must extend the highest QC of its TC, and 2f+1 timeouts include an
/// honest replica whose high QC is at least the lock, so a replica without the lock
/// check still never votes for a fork of a committed block (four Twins sweeps of 200
/// cases, rounds of 50-300 ms, with the lock check alone disabled broke nothing).
#[cfg(test)]
pub(crate) mod tests_only {
    thread_local! {
        /// Vote for any block of a view not voted in yet.
        pub(crate) static SKIP_VOTING_RULE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
}

/// Record a vote (or timeout) in `view`: never again in it.
pub fn record_vote(state: &mut SafetyState, view: View) {
    if state.last_voted_view < view {
        state.last_voted_view = view;
    }
}

/// A new QC: raise the high QC and, for three-chain, lock on the QC inside the block it
/// certifies (the head of a two-chain). `certified` is that block if in hand. Returns
/// whether the state changed (and must be persisted).
pub fn observe_qc(
    rule: CommitRule,
    state: &mut SafetyState,
    qc: &Qc,
    certified: Option<&Block>,
) -> bool {
    let mut changed = false;
    if qc.view > state.high_qc.view {
        state.high_qc = qc.clone();
        changed = true;
    }
    if rule == CommitRule::ThreeChain {
        if let Some(b) = certified {
            if b.qc.view > state.locked_qc.view {
                state.locked_qc = b.qc.clone();
                changed = true;
            }
        }
    }
    changed
}

/// [commit rule] The block a QC for `certified` commits, given its parent and
/// grandparent when in hand: three-chain commits the grandparent when the three views
/// are consecutive; two-chain commits the parent when the two views are.
pub fn commit_target(
    rule: CommitRule,
    certified: &Block,
    parent: Option<&Block>,
    grandparent: Option<&Block>,
) -> Option<Digest> {
    let b1 = parent?;
    match rule {
        CommitRule::TwoChain => (certified.view == b1.view.next()).then(|| b1.digest()),
        CommitRule::ThreeChain => {
            let b0 = grandparent?;
            (certified.view == b1.view.next() && b1.view == b0.view.next()).then(|| b0.digest())
        }
    }
}

#[cfg(test)]
mod tests {
    //! Property tests over random block trees: whatever the order and content of
    //! proposals and QCs, a replica following these rules never votes twice in a view and
    //! never votes against its lock. The oracle walks the tree itself.
    use super::*;
    use crate::hotstuff::messages::Tc;
    use primitives::crypto::{KeyPair, QuorumCertificate};
    use primitives::NodeId;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    fn qc_for(b: &Block) -> Qc {
        Qc {
            block: b.digest(),
            view: b.view,
            votes: QuorumCertificate::Ed25519(vec![]),
        }
    }

    /// Whether `block` descends from `ancestor`, by walking parents in `tree`.
    fn descends(tree: &BTreeMap<Digest, Block>, block: &Block, ancestor: &Digest) -> bool {
        let mut cursor = block.parent();
        loop {
            if cursor == *ancestor {
                return true;
            }
            match tree.get(&cursor) {
                Some(b) => cursor = b.parent(),
                None => return false,
            }
        }
    }

    fn run(rule: CommitRule, seed: u64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let keys = KeyPair::from_seed(&[seed as u8; 32]);
        let mut tree: BTreeMap<Digest, Block> = BTreeMap::new();
        let mut certified: Vec<Block> = Vec::new();
        let mut state = SafetyState::default();
        let mut voted: BTreeMap<View, Digest> = BTreeMap::new();
        let mut current = View(1);
        for _ in 0..400 {
            // The replica moves on now and then (as QCs and TCs would make it).
            if rng.gen_bool(0.3) {
                current = current.next();
            }
            // A proposal extending a random certified block (or genesis), in a view
            // at or around the current one, sometimes after a TC.
            let parent_qc = if certified.is_empty() || rng.gen_bool(0.1) {
                Qc::genesis()
            } else {
                qc_for(&certified[rng.gen_range(0..certified.len())])
            };
            let view = View(current.0.saturating_sub(rng.gen_range(0..2)) + rng.gen_range(0..2));
            if view <= parent_qc.view {
                continue;
            }
            let tc = (parent_qc.view.next() != view && rng.gen_bool(0.7)).then(|| Tc {
                view: View(view.0 - 1),
                timeouts: vec![(
                    NodeId(0),
                    View(rng.gen_range(0..=parent_qc.view.0)),
                    primitives::crypto::ed25519::Signature([0; 64]),
                )],
            });
            let payload = vec![(Digest::default(), primitives::Round(rng.gen_range(0..1000)))];
            let block = Block::new(&keys, NodeId(0), view, parent_qc, tc, payload);
            tree.insert(block.digest(), block.clone());
            let lock = state.locked_qc.clone();
            let decision = may_vote_in(&state, current, block.view).and_then(|_| {
                safe_to_vote(rule, &state, &block, || {
                    descends(&tree, &block, &lock.block)
                })
            });
            if decision.is_ok() {
                record_vote(&mut state, block.view);
                assert!(
                    voted.insert(block.view, block.digest()).is_none(),
                    "seed {seed}: two votes in view {}",
                    block.view
                );
                if rule == CommitRule::ThreeChain {
                    assert!(
                        block.qc.view > lock.view
                            || lock.block == genesis_digest()
                            || descends(&tree, &block, &lock.block),
                        "seed {seed}: voted against the lock"
                    );
                } else {
                    assert!(
                        block.qc.view >= lock.view,
                        "seed {seed}: voted below the lock"
                    );
                }
            }
            // Some proposals get certified (a quorum voted), which moves high QC and lock.
            if rng.gen_bool(0.5) {
                let qc = qc_for(&block);
                observe_qc(rule, &mut state, &qc, Some(&block));
                certified.push(block);
                assert!(state.locked_qc.view <= state.high_qc.view);
            }
        }
    }

    #[test]
    fn never_votes_twice_in_a_view_nor_against_the_lock() {
        for seed in 0..40 {
            run(CommitRule::ThreeChain, seed);
            run(CommitRule::TwoChain, seed);
        }
    }

    #[test]
    fn commit_targets_need_consecutive_views() {
        let keys = KeyPair::from_seed(&[1; 32]);
        let b = |view: u64, parent: &Qc| {
            Block::new(&keys, NodeId(0), View(view), parent.clone(), None, vec![])
        };
        let b0 = b(1, &Qc::genesis());
        let b1 = b(2, &qc_for(&b0));
        let b2 = b(3, &qc_for(&b1));
        let b2_late = b(4, &qc_for(&b1));
        let three = CommitRule::ThreeChain;
        assert_eq!(
            commit_target(three, &b2, Some(&b1), Some(&b0)),
            Some(b0.digest())
        );
        assert_eq!(commit_target(three, &b2_late, Some(&b1), Some(&b0)), None);
        assert_eq!(commit_target(three, &b2, Some(&b1), None), None);
        let two = CommitRule::TwoChain;
        assert_eq!(commit_target(two, &b1, Some(&b0), None), Some(b0.digest()));
        assert_eq!(commit_target(two, &b2_late, Some(&b1), None), None);
    }
}
