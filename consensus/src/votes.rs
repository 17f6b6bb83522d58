//! Counting signed votes by weight, for any protocol that votes on values in numbered
//! instances (HotStuff: (view, block); Tendermint: ((height, round, step), value)).
//!
//! Each voter counts once per instance: a second vote for another value in the same
//! instance is reported as a conflict (evidence of equivocation) and not counted; a
//! repeat of the same vote is ignored. Instances below a bound are pruned on request.

use primitives::{Committee, NodeId, Weight};
use std::collections::BTreeMap;

/// What adding a vote did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Added<V> {
    /// Counted: the value's weight in this instance went from `before` to `after`.
    Counted {
        /// Weight for the value before this vote.
        before: Weight,
        /// Weight for the value including this vote.
        after: Weight,
    },
    /// The voter already voted for this value here: nothing changed.
    Duplicate,
    /// The voter already voted for `earlier`, another value, in this instance: not
    /// counted (evidence of equivocation).
    Conflicting {
        /// The value it voted for first.
        earlier: V,
    },
}

/// One instance: each voter's value and share, and each value's weight.
#[derive(Clone, Debug)]
struct Instance<V, S> {
    by_voter: BTreeMap<NodeId, (V, S)>,
    weight_of: BTreeMap<V, Weight>,
    total: Weight,
}

impl<V, S> Default for Instance<V, S> {
    fn default() -> Self {
        Instance {
            by_voter: BTreeMap::new(),
            weight_of: BTreeMap::new(),
            total: Weight(0),
        }
    }
}

/// Votes by instance `I` for values `V`, each carrying a signature share `S`.
#[derive(Clone, Debug)]
pub struct VoteAggregator<I, V, S> {
    instances: BTreeMap<I, Instance<V, S>>,
}

impl<I, V, S> Default for VoteAggregator<I, V, S> {
    fn default() -> Self {
        VoteAggregator {
            instances: BTreeMap::new(),
        }
    }
}

impl<I: Ord + Copy, V: Ord + Copy, S: Clone> VoteAggregator<I, V, S> {
    /// Count `voter`'s vote (weight from `committee`; non-members count zero).
    pub fn add(
        &mut self,
        committee: &Committee,
        instance: I,
        value: V,
        voter: NodeId,
        share: S,
    ) -> Added<V> {
        let entry = self.instances.entry(instance).or_default();
        if let Some((earlier, _)) = entry.by_voter.get(&voter) {
            return if *earlier == value {
                Added::Duplicate
            } else {
                Added::Conflicting { earlier: *earlier }
            };
        }
        let weight = committee.weight(voter);
        entry.by_voter.insert(voter, (value, share));
        entry.total += weight;
        let w = entry.weight_of.entry(value).or_insert(Weight(0));
        let before = *w;
        *w += weight;
        Added::Counted { before, after: *w }
    }

    /// Weight of the votes for `value` in `instance`.
    pub fn weight(&self, instance: &I, value: &V) -> Weight {
        self.instances
            .get(instance)
            .and_then(|i| i.weight_of.get(value).copied())
            .unwrap_or(Weight(0))
    }

    /// Weight of every vote in `instance`, whatever the value.
    pub fn total(&self, instance: &I) -> Weight {
        self.instances
            .get(instance)
            .map(|i| i.total)
            .unwrap_or(Weight(0))
    }

    /// The (voter, share) pairs for `value` in `instance`, by voter id.
    pub fn shares(&self, instance: &I, value: &V) -> Vec<(NodeId, S)> {
        self.instances
            .get(instance)
            .map(|i| {
                i.by_voter
                    .iter()
                    .filter(|(_, (v, _))| v == value)
                    .map(|(n, (_, s))| (*n, s.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forget every instance below `lowest`.
    pub fn retain_from(&mut self, lowest: I) {
        self.instances = self.instances.split_off(&lowest);
    }

    /// Number of instances held.
    pub fn instances(&self) -> usize {
        self.instances.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_weight_once_per_voter_and_reports_conflicts() {
        let (committee, _) = Committee::generate(4, 1, &["h".into()], 1000, Some(1)).unwrap();
        let mut votes: VoteAggregator<u64, u8, ()> = VoteAggregator::default();
        assert_eq!(
            votes.add(&committee, 1, 7, NodeId(0), ()),
            Added::Counted {
                before: Weight(0),
                after: Weight(1)
            }
        );
        assert_eq!(votes.add(&committee, 1, 7, NodeId(0), ()), Added::Duplicate);
        assert_eq!(
            votes.add(&committee, 1, 8, NodeId(0), ()),
            Added::Conflicting { earlier: 7 }
        );
        votes.add(&committee, 1, 8, NodeId(1), ());
        votes.add(&committee, 2, 7, NodeId(2), ());
        assert_eq!(votes.weight(&1, &7), Weight(1));
        assert_eq!(votes.total(&1), Weight(2));
        assert_eq!(votes.shares(&1, &8), vec![(NodeId(1), ())]);
        votes.retain_from(2);
        assert_eq!(votes.instances(), 1);
        assert_eq!(votes.total(&1), Weight(0));
    }
}
