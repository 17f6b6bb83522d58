//! Digests remembered with a round, forgotten in round order.
//!
//! The linearizer remembers the certificates it delivered (for `gc_depth` rounds) and
//! the batches they carried (for the batch memory, thousands of rounds by default), and
//! forgets what falls below a cutoff after every anchor. Scanning the whole map for
//! that made each anchor cost as much as everything remembered: in a 50-node
//! simulation the batch memory grew all run long and its scans took most of the time
//! of the run's last minute. Here a second index orders the digests by round, so
//! forgetting costs what is forgotten.

use primitives::{Digest, Round};
use std::collections::BTreeMap;

/// A map from digest to round whose entries at or below a cutoff are dropped in time
/// proportional to their number. Equivalent to a `BTreeMap<Digest, Round>` pruned with
/// `retain(|_, r| *r > cutoff)`; iteration is in digest order, as that map's.
#[derive(Debug, Default, Clone)]
pub struct RoundMemory {
    by_digest: BTreeMap<Digest, Round>,
    /// Every round a digest was given, with that digest. A digest given a new round is
    /// listed under both; the older listing is stale and skipped when its round is
    /// forgotten (the digest's current round decides).
    by_round: BTreeMap<Round, Vec<Digest>>,
}

impl RoundMemory {
    /// Remember `digest` at `round`, replacing its earlier round; returns that round.
    pub fn insert(&mut self, digest: Digest, round: Round) -> Option<Round> {
        let old = self.by_digest.insert(digest, round);
        if old != Some(round) {
            self.by_round.entry(round).or_default().push(digest);
        }
        old
    }

    /// Remember `digest` at `round` unless it is already remembered.
    pub fn insert_if_absent(&mut self, digest: Digest, round: Round) {
        if !self.contains(&digest) {
            self.insert(digest, round);
        }
    }

    /// Whether `digest` is remembered.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.by_digest.contains_key(digest)
    }

    /// The round `digest` is remembered at.
    pub fn get(&self, digest: &Digest) -> Option<Round> {
        self.by_digest.get(digest).copied()
    }

    /// How many digests are remembered.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Forget every digest whose round is at or below `cutoff`.
    pub fn forget_up_to(&mut self, cutoff: Round) {
        while let Some(entry) = self.by_round.first_entry() {
            if *entry.key() > cutoff {
                break;
            }
            for digest in entry.remove() {
                if self.by_digest.get(&digest).is_some_and(|r| *r <= cutoff) {
                    self.by_digest.remove(&digest);
                }
            }
        }
    }

    /// The remembered digests with their rounds, in digest order.
    pub fn iter(&self) -> impl Iterator<Item = (Digest, Round)> + '_ {
        self.by_digest.iter().map(|(d, r)| (*d, *r))
    }
}

impl FromIterator<(Digest, Round)> for RoundMemory {
    fn from_iter<I: IntoIterator<Item = (Digest, Round)>>(iter: I) -> Self {
        let mut memory = RoundMemory::default();
        for (digest, round) in iter {
            memory.insert(digest, round);
        }
        memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn behaves_as_a_map_pruned_by_retain() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut memory = RoundMemory::default();
        let mut model: BTreeMap<Digest, Round> = BTreeMap::new();
        let mut cutoff = 0u64;
        for step in 0..20_000u64 {
            let digest = Digest::of(&rng.gen_range(0..300u32).to_le_bytes());
            match rng.gen_range(0..10) {
                // Rounds around the cutoff, sometimes lower than the digest's last one.
                0..=5 => {
                    let round = Round(cutoff + rng.gen_range(0..40));
                    assert_eq!(memory.insert(digest, round), model.insert(digest, round));
                }
                6 => {
                    let round = Round(cutoff + rng.gen_range(0..40));
                    memory.insert_if_absent(digest, round);
                    model.entry(digest).or_insert(round);
                }
                7 | 8 => {
                    cutoff += rng.gen_range(0..3);
                    memory.forget_up_to(Round(cutoff));
                    model.retain(|_, r| r.0 > cutoff);
                }
                _ => assert_eq!(memory.get(&digest), model.get(&digest).copied()),
            }
            assert_eq!(memory.len(), model.len(), "step {step}");
        }
        assert!(memory.iter().eq(model.iter().map(|(d, r)| (*d, *r))));
        // The index holds nothing at or below the cutoff once forgotten.
        memory.forget_up_to(Round(cutoff));
        assert!(memory.by_round.keys().all(|r| r.0 > cutoff));
    }
}
