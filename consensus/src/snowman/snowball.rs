//! Snowball over the children of one block (Team Rocket et al., arXiv:1906.08936,
//! Figure 3 "Snowball", with avalanchego's two alphas: `snow/consensus/snowball`).
//!
//! One instance decides among the conflicting children of a block. For each poll the
//! tree gives it the child with the most votes and how many:
//! - `count >= alpha_preference`: that child's preference strength (the paper's `d[]`)
//!   grows by one, and the preference becomes the child with the greatest strength
//!   (the first to reach it, on a tie).
//! - `count >= alpha_confidence` for the child the last such poll chose: confidence
//!   grows by one; for another child it restarts at one (the paper's `cnt`, Snowflake's
//!   `lastcol`).
//! - a poll below `alpha_confidence` (an *unsuccessful* poll) resets confidence to zero.
//! - (ours) a poll below `alpha_preference` whose most voted child is as strong as the
//!   preferred one makes it preferred: a tie-break for committees polled whole, see
//!   [`Snowball::record_poll`].
//! - confidence reaching `beta` finalizes the instance: the child confidence counted
//!   for is decided (and preferred from then on, even in the rare case that another
//!   child had more strength, as avalanchego does).

use super::config::Effective;
use primitives::Digest;
use std::collections::BTreeMap;

/// A Snowball instance over the children of one block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snowball {
    /// Preference strength per child.
    strength: BTreeMap<Digest, u64>,
    /// The preferred child.
    preference: Digest,
    /// The child the confidence counts for (Snowflake's colour).
    confident_in: Digest,
    /// Consecutive successful polls for `confident_in`.
    confidence: u64,
    finalized: bool,
}

impl Snowball {
    /// An instance whose first choice is `first` (it is preferred until another child
    /// gains more strength).
    pub fn new(first: Digest) -> Self {
        Snowball {
            strength: BTreeMap::from([(first, 0)]),
            preference: first,
            confident_in: first,
            confidence: 0,
            finalized: false,
        }
    }

    /// A new conflicting choice (preference unchanged).
    pub fn add(&mut self, choice: Digest) {
        self.strength.entry(choice).or_insert(0);
    }

    /// The preferred choice.
    pub fn preference(&self) -> Digest {
        self.preference
    }

    /// Consecutive successful polls for the current choice.
    pub fn confidence(&self) -> u64 {
        self.confidence
    }

    /// Whether the preference is decided.
    pub fn finalized(&self) -> bool {
        self.finalized
    }

    /// Record a poll in which `choice` got `count` votes, the most of any choice.
    /// Returns whether the poll was successful (reached `alpha_confidence`).
    pub fn record_poll(&mut self, count: u64, choice: Digest, p: &Effective) -> bool {
        let (alpha_preference, alpha_confidence, beta) =
            (p.alpha_preference, p.alpha_confidence, p.beta);
        if self.finalized {
            return count >= alpha_confidence;
        }
        if count >= alpha_preference {
            let best = self.strength.get(&self.preference).copied().unwrap_or(0);
            let s = self.strength.entry(choice).or_insert(0);
            *s += 1;
            if *s > best {
                self.preference = choice;
            }
        } else if count > 0
            && choice != self.preference
            && self.strength.get(&choice) == self.strength.get(&self.preference)
        {
            // Among equally strong choices, follow the most voted of the last poll (the
            // lowest digest on a tie of votes, so that nodes seeing the same votes move
            // alike). Not in the paper: with K at the committee's size every node sees
            // the same votes and nothing random breaks a tie, so a committee split evenly
            // between two blocks that neither ever got alpha_preference for would stay
            // split for good. Only when every poll asks the whole committee (with a
            // random sample, chance breaks ties as in the paper). Confidence and
            // finalization are untouched.
            self.preference = choice;
        }
        if count < alpha_confidence {
            self.confidence = 0;
            return false;
        }
        if self.confident_in == choice {
            self.confidence += 1;
        } else {
            self.confident_in = choice;
            self.confidence = 1;
        }
        if self.confidence >= beta {
            // Snowflake decided. Its choice can (rarely) differ from the strongest one;
            // the decided choice is the preference from now on, as in avalanchego.
            self.finalized = true;
            self.preference = self.confident_in;
        }
        true
    }

    /// A poll that gave this instance no successful choice: confidence resets.
    pub fn record_unsuccessful_poll(&mut self) {
        if !self.finalized {
            self.confidence = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::Hasher;

    fn d(i: u64) -> Digest {
        Hasher::new().update_u64(i).finalize()
    }

    fn ps(alpha_preference: u64, alpha_confidence: u64, beta: u64) -> Effective {
        Effective {
            k: 20,
            alpha_preference,
            alpha_confidence,
            beta,
            concurrent_repolls: 1,
            polls_everyone: true,
        }
    }

    #[test]
    fn beta_minus_one_successful_polls_do_not_finalize_and_beta_do() {
        let mut s = Snowball::new(d(1));
        for _ in 0..19 {
            assert!(s.record_poll(15, d(1), &ps(15, 15, 20)));
        }
        assert!(!s.finalized());
        assert_eq!(s.confidence(), 19);
        assert!(s.record_poll(16, d(1), &ps(15, 15, 20)));
        assert!(s.finalized());
        assert_eq!(s.preference(), d(1));
    }

    #[test]
    fn an_unsuccessful_poll_resets_confidence() {
        let mut s = Snowball::new(d(1));
        for _ in 0..10 {
            s.record_poll(15, d(1), &ps(15, 15, 20));
        }
        assert!(!s.record_poll(14, d(1), &ps(15, 15, 20)));
        assert_eq!(s.confidence(), 0);
        s.record_poll(15, d(1), &ps(15, 15, 20));
        s.record_unsuccessful_poll();
        assert_eq!(s.confidence(), 0);
        for _ in 0..19 {
            s.record_poll(15, d(1), &ps(15, 15, 20));
        }
        assert!(!s.finalized());
    }

    #[test]
    fn the_preference_follows_the_strongest_choice() {
        let mut s = Snowball::new(d(1));
        s.add(d(2));
        // d(1) strength 1.
        s.record_poll(15, d(1), &ps(15, 15, 20));
        // d(2) strength 1: a tie keeps the first to reach it.
        s.record_poll(15, d(2), &ps(15, 15, 20));
        assert_eq!(s.preference(), d(1));
        assert_eq!(s.confidence(), 1, "a new choice restarts confidence at one");
        // d(2) strength 2: preferred.
        s.record_poll(15, d(2), &ps(15, 15, 20));
        assert_eq!(s.preference(), d(2));
        assert_eq!(s.confidence(), 2);
        // Between the alphas: the strength moves, confidence resets.
        let mut t = Snowball::new(d(1));
        t.add(d(2));
        assert!(!t.record_poll(12, d(2), &ps(11, 15, 20)));
        assert_eq!(t.preference(), d(2));
        assert_eq!(t.confidence(), 0);
    }

    #[test]
    fn the_decided_choice_is_the_one_confidence_counted_for() {
        let mut t = Snowball::new(d(1));
        t.add(d(2));
        for _ in 0..3 {
            t.record_poll(15, d(1), &ps(15, 15, 100));
        }
        // d(2) gets three successful polls: strength ties at 3, d(1) stays preferred
        // until d(2) is decided by confidence.
        t.record_poll(15, d(2), &ps(15, 15, 3));
        t.record_poll(15, d(2), &ps(15, 15, 3));
        assert_eq!(t.preference(), d(1));
        assert!(!t.finalized());
        t.record_poll(15, d(2), &ps(15, 15, 3));
        assert!(t.finalized());
        assert_eq!(t.preference(), d(2));
        // Finalized: nothing moves it.
        t.record_poll(20, d(1), &ps(15, 15, 3));
        t.record_unsuccessful_poll();
        assert_eq!(t.preference(), d(2));
    }
}
