//! Polls in flight: weighted sampling, chits collected by weight, early termination,
//! timeouts, and results handed over in the order the polls were made (as avalanchego's
//! poll set does: `snow/engine/snowman/poll`).

use super::config::Effective;
use crate::core::Time;
use primitives::{Committee, Digest, NodeId};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Sample `k` units of weight without replacement (Floyd's algorithm over the units
/// `0..total`); each member appears as often as units of its weight were drawn, as
/// avalanchego's weighted validator sampling does. `k` at or above the total weight
/// samples every unit.
pub fn sample(committee: &Committee, k: u64, rng: &mut impl Rng) -> BTreeMap<NodeId, u64> {
    let total = committee.total_weight().0;
    let mut units: BTreeSet<u64> = BTreeSet::new();
    if k >= total {
        units.extend(0..total);
    } else {
        for j in (total - k)..total {
            let t = rng.gen_range(0..=j);
            if !units.insert(t) {
                units.insert(j);
            }
        }
    }
    // Members own consecutive ranges of units, in committee order.
    let mut out = BTreeMap::new();
    let mut start = 0u64;
    let mut drawn = units.into_iter().peekable();
    for m in committee.members() {
        let end = start.saturating_add(m.weight.0);
        let mut n = 0;
        while drawn.next_if(|u| *u < end).is_some() {
            n += 1;
        }
        if n > 0 {
            out.insert(m.id, n);
        }
        start = end;
    }
    out
}

/// One poll.
#[derive(Clone, Debug)]
struct Poll {
    /// Sampled members not heard from yet, with their multiplicity.
    waiting: BTreeMap<NodeId, u64>,
    /// Votes (in units) per block.
    votes: BTreeMap<Digest, u64>,
    /// When it was made (for the chits' round trips).
    started: Time,
    deadline: Time,
    done: bool,
}

/// The polls in flight.
#[derive(Clone, Debug, Default)]
pub struct Polls {
    next: u64,
    polls: BTreeMap<u64, Poll>,
    /// Polls ended by their timeout.
    pub timed_out: u64,
    /// Polls ended early (their outcome could not change any more).
    pub ended_early: u64,
    /// Chits that came after their poll had ended (timed out, or decided early).
    pub chits_after_end: u64,
    /// Chits whose round trip exceeded 250 ms.
    pub chits_over_250ms: u64,
    /// The longest round trip of a counted chit, in milliseconds.
    pub slowest_chit_ms: u64,
}

impl Polls {
    /// No polls yet; the first gets id `first`.
    pub fn starting_at(first: u64) -> Self {
        Polls {
            next: first,
            ..Polls::default()
        }
    }

    /// Start a poll of `sampled` (member -> multiplicity) at `now`, ending at `deadline`
    /// at the latest; returns its id.
    pub fn start(&mut self, sampled: BTreeMap<NodeId, u64>, now: Time, deadline: Time) -> u64 {
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        self.polls.insert(
            id,
            Poll {
                waiting: sampled,
                votes: BTreeMap::new(),
                started: now,
                deadline,
                done: false,
            },
        );
        id
    }

    /// Note when a chit for poll `id` arrived (its round trip, or that its poll had
    /// ended), for the counters; the vote itself goes to [`Polls::record`].
    pub fn note_arrival(&mut self, id: u64, now: Time) {
        match self.polls.get(&id).filter(|p| !p.done) {
            None => self.chits_after_end += 1,
            Some(poll) => {
                let ms = now.since(poll.started).as_millis() as u64;
                self.slowest_chit_ms = self.slowest_chit_ms.max(ms);
                if ms > 250 {
                    self.chits_over_250ms += 1;
                }
            }
        }
    }

    /// Polls not handed over yet: in flight, or finished and waiting for an older one
    /// (counted as avalanchego's poll set does, so a slow oldest poll holds new ones
    /// back instead of letting finished ones pile up behind it).
    pub fn in_flight(&self) -> usize {
        self.polls.len()
    }

    /// The earliest deadline of a poll in flight.
    pub fn next_deadline(&self) -> Option<Time> {
        self.polls
            .values()
            .filter(|p| !p.done)
            .map(|p| p.deadline)
            .min()
    }

    /// `from` answered poll `id` with a vote for `vote` (`None`: a block this node does
    /// not hold, no vote). A member answers once per poll; a member not sampled, or a
    /// poll not in flight, is ignored. Returns whether the chit was counted.
    pub fn record(&mut self, id: u64, from: NodeId, vote: Option<Digest>, p: &Effective) -> bool {
        let Some(poll) = self.polls.get_mut(&id).filter(|poll| !poll.done) else {
            return false;
        };
        let Some(weight) = poll.waiting.remove(&from) else {
            return false;
        };
        if let Some(v) = vote {
            *poll.votes.entry(v).or_insert(0) += weight;
        }
        // Early termination: every sampled member answered; or one block has
        // alpha_confidence votes (more than half of k: no later chit changes the most
        // voted block); or even every silent member voting alike could not bring the
        // votes to alpha_preference.
        let remaining: u64 = poll.waiting.values().sum();
        let counted: u64 = poll.votes.values().sum();
        let top = poll.votes.values().copied().max().unwrap_or(0);
        if remaining == 0 {
            poll.done = true;
        } else if top >= p.alpha_confidence || counted + remaining < p.alpha_preference {
            poll.done = true;
            self.ended_early += 1;
        }
        true
    }

    /// End every poll whose deadline passed (silent members count as no vote).
    pub fn expire(&mut self, now: Time) {
        for poll in self.polls.values_mut() {
            if !poll.done && poll.deadline <= now {
                poll.done = true;
                self.timed_out += 1;
            }
        }
    }

    /// The votes of finished polls, oldest first, stopping at the first poll still in
    /// flight (results are applied in the order the polls were made).
    pub fn take_finished(&mut self) -> Vec<BTreeMap<Digest, u64>> {
        let mut out = Vec::new();
        while let Some(entry) = self.polls.first_entry() {
            if !entry.get().done {
                break;
            }
            out.push(entry.remove().votes);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn effective(k: u64, alpha: u64) -> Effective {
        Effective {
            k,
            alpha_preference: alpha,
            alpha_confidence: alpha,
            beta: 20,
            concurrent_repolls: 4,
            polls_everyone: false,
        }
    }

    fn committee(weights: &[u64]) -> Committee {
        let (c, _) = Committee::generate(weights.len(), 1, &["h".into()], 1000, Some(1)).unwrap();
        let mut file = c.to_file();
        for (m, w) in file.member.iter_mut().zip(weights) {
            m.weight = *w;
        }
        Committee::new(file).unwrap()
    }

    #[test]
    fn a_member_with_half_the_weight_fills_about_half_of_each_sample() {
        // Weights: 50 for node 0, 1 each for 50 others (total 100).
        let mut weights = vec![50u64];
        weights.extend(std::iter::repeat_n(1, 50));
        let committee = committee(&weights);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let (mut heavy, mut total) = (0u64, 0u64);
        for _ in 0..2_000 {
            let s = sample(&committee, 20, &mut rng);
            assert_eq!(s.values().sum::<u64>(), 20);
            heavy += s.get(&committee.id_at(0).unwrap()).copied().unwrap_or(0);
            total += 20;
        }
        let share = heavy as f64 / total as f64;
        assert!((0.47..0.53).contains(&share), "{share}");
    }

    #[test]
    fn the_same_seed_draws_the_same_samples_and_k_above_the_total_samples_all() {
        let committee = committee(&[1; 10]);
        let draw = |seed| {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            (0..5)
                .map(|_| sample(&committee, 4, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let all = sample(&committee, 20, &mut rng);
        assert_eq!(all.len(), 10);
        assert!(all.values().all(|n| *n == 1));
    }

    #[test]
    fn polls_end_early_time_out_and_are_handed_over_in_order() {
        let p = effective(4, 3);
        let d = Digest::default();
        let mut polls = Polls::default();
        let all = |n: u16| (0..n).map(|i| (NodeId(i), 1)).collect::<BTreeMap<_, _>>();
        let first = polls.start(
            all(4),
            Time::default(),
            Time(std::time::Duration::from_secs(1)),
        );
        let second = polls.start(
            all(4),
            Time::default(),
            Time(std::time::Duration::from_secs(2)),
        );
        // The second poll gets three agreeing votes: it ends early, but waits for the
        // first before it is handed over.
        for i in 0..3 {
            assert!(polls.record(second, NodeId(i), Some(d), &p));
        }
        assert!(!polls.record(second, NodeId(3), Some(d), &p), "poll ended");
        assert!(polls.take_finished().is_empty());
        // A member answers once; a member not sampled is ignored.
        assert!(polls.record(first, NodeId(0), Some(d), &p));
        assert!(!polls.record(first, NodeId(0), Some(d), &p));
        assert!(!polls.record(first, NodeId(9), Some(d), &p));
        // Two members say nothing useful: 1 vote + 1 silent < 3, the poll ends.
        polls.record(first, NodeId(1), None, &p);
        polls.record(first, NodeId(2), None, &p);
        let results = polls.take_finished();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0], BTreeMap::from([(d, 1)]));
        assert_eq!(results[1], BTreeMap::from([(d, 3)]));
        // A silent member: the poll ends at its deadline.
        let third = polls.start(
            all(4),
            Time::default(),
            Time(std::time::Duration::from_secs(3)),
        );
        polls.record(third, NodeId(0), Some(d), &p);
        polls.record(third, NodeId(1), Some(d), &p);
        polls.expire(Time(std::time::Duration::from_secs(2)));
        assert_eq!(polls.in_flight(), 1);
        polls.expire(Time(std::time::Duration::from_secs(3)));
        assert_eq!(polls.take_finished(), vec![BTreeMap::from([(d, 2)])]);
        assert_eq!(polls.timed_out, 1);
    }
}
