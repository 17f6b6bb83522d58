//! Payload availability for cores that propose DAG certificate digests (HotStuff,
//! Tendermint, Snowman): which certificates this node holds, which no block has carried
//! yet (the next proposal's payload), and which a payload is missing.
//!
//! A voter accepts a payload only when it holds every certificate named, of the round
//! named (data availability; the linearizer relies on the rounds). Certificates at or
//! below the mempool's GC horizon are the exception: they are gone from the DAG, and the
//! linearizer skips them on every node (their rounds are at or below its cutoff by the
//! time the block commits), so they need not be held.
//!
//! Only the frontier of what no block carried waits to be proposed: committing a block
//! delivers the causal histories of the certificates it names (the linearizer), so a
//! certificate whose child arrived is delivered with that child and need not be named
//! itself ([`PayloadTracker::on_certificate_with_parents`]). The pending set then holds
//! about one certificate per member (plus any no later certificate references), however
//! long no block is accepted, instead of every certificate since the last block.

use primitives::{Digest, Round};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Most certificates remembered as available; beyond it the lowest rounds are forgotten.
pub const MAX_KNOWN: usize = 200_000;

/// How far above the newest held certificate a block may claim an unknown certificate's
/// round and still have it remembered as carried (the mempool's default round
/// lookahead: no honest certificate is further ahead of this node's DAG).
pub const CARRIED_LOOKAHEAD: u64 = 1_000;

/// What a payload lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Every certificate is held (or below the horizon), of the round named.
    Available,
    /// A certificate is held with another round than the payload says.
    WrongRound(Digest),
    /// These certificates are not held yet.
    Missing(Vec<Digest>),
}

/// Available certificates and the ones waiting to be proposed.
#[derive(Clone, Debug, Default)]
pub struct PayloadTracker {
    known: BTreeMap<Digest, Round>,
    known_by_round: BTreeSet<(Round, Digest)>,
    /// Certificates not carried by any block yet, in arrival order.
    pending: VecDeque<(Digest, Round)>,
    /// Certificates some block carried, by digest and by round (for pruning).
    carried: BTreeMap<Digest, Round>,
    carried_by_round: BTreeSet<(Round, Digest)>,
    horizon: Round,
}

impl PayloadTracker {
    /// A certificate became available. Returns whether it was new.
    pub fn on_certificate(&mut self, digest: Digest, round: Round) -> bool {
        if round <= self.horizon && self.horizon > Round(0) {
            return false;
        }
        if self.known.insert(digest, round).is_some() {
            return false;
        }
        self.known_by_round.insert((round, digest));
        if !self.carried.contains_key(&digest) {
            self.pending.push_back((digest, round));
        }
        if self.known.len() > MAX_KNOWN {
            if let Some((_, lowest)) = self.known_by_round.pop_first() {
                self.known.remove(&lowest);
            }
        }
        true
    }

    /// A certificate with these parents became available: as
    /// [`PayloadTracker::on_certificate`], and its parents stop waiting to be proposed
    /// (a block naming it delivers them; their own parents left when they arrived, since
    /// certificates arrive in causal order). Returns whether it was new.
    pub fn on_certificate_with_parents(
        &mut self,
        digest: Digest,
        round: Round,
        parents: &[Digest],
    ) -> bool {
        if !self.on_certificate(digest, round) {
            return false;
        }
        if !parents.is_empty() && !self.pending.is_empty() {
            // Parents are of the round below; only entries of that round can match.
            let below = Round(round.0.saturating_sub(1));
            self.pending
                .retain(|(d, r)| *r != below || !parents.contains(d));
        }
        true
    }

    /// Whether `digest` is held.
    pub fn holds(&self, digest: &Digest) -> bool {
        self.known.contains_key(digest)
    }

    /// Some block carries these certificates: nobody needs to propose them again.
    ///
    /// Bounded whatever a block claims: an entry whose round contradicts the held
    /// certificate's, or that names an unknown certificate more than
    /// [`CARRIED_LOOKAHEAD`] rounds above the newest held one, is ignored (it would never
    /// be pruned by the GC horizon); past [`MAX_KNOWN`] entries the lowest rounds are
    /// forgotten.
    pub fn mark_carried(&mut self, payload: &[(Digest, Round)]) {
        let mut any = false;
        let newest = self
            .known_by_round
            .last()
            .map_or(self.horizon, |(r, _)| *r)
            .max(self.horizon);
        for (d, r) in payload {
            if *r <= self.horizon && self.horizon > Round(0) {
                continue;
            }
            match self.known.get(d) {
                Some(held) if held != r => continue,
                None if r.0 > newest.0.saturating_add(CARRIED_LOOKAHEAD) => continue,
                _ => {}
            }
            if self.carried.insert(*d, *r).is_none() {
                self.carried_by_round.insert((*r, *d));
                any = true;
            }
        }
        while self.carried.len() > MAX_KNOWN {
            let Some((_, lowest)) = self.carried_by_round.pop_first() else {
                break;
            };
            self.carried.remove(&lowest);
        }
        if any {
            let carried = &self.carried;
            self.pending.retain(|(d, _)| !carried.contains_key(d));
        }
    }

    /// The next proposal's payload: up to `max` pending certificates, oldest first
    /// (they stay pending until a block carrying them is seen).
    pub fn next_payload(&self, max: usize) -> Vec<(Digest, Round)> {
        self.pending.iter().take(max).copied().collect()
    }

    /// Like [`PayloadTracker::next_payload`], skipping certificates in `exclude` (those
    /// an undecided ancestor of the new block carries already).
    pub fn next_payload_excluding(
        &self,
        max: usize,
        exclude: &BTreeSet<Digest>,
    ) -> Vec<(Digest, Round)> {
        self.pending
            .iter()
            .filter(|(d, _)| !exclude.contains(d))
            .take(max)
            .copied()
            .collect()
    }

    /// Whether any certificate waits to be proposed.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether this node can vote for a block carrying `payload`.
    pub fn availability(&self, payload: &[(Digest, Round)]) -> Availability {
        let mut missing = Vec::new();
        for (d, r) in payload {
            match self.known.get(d) {
                Some(known) if known != r => return Availability::WrongRound(*d),
                Some(_) => {}
                None if *r <= self.horizon && self.horizon > Round(0) => {}
                None => missing.push(*d),
            }
        }
        if missing.is_empty() {
            Availability::Available
        } else {
            Availability::Missing(missing)
        }
    }

    /// The newest held certificate not in `exclude` (the Byzantine behaviours build a
    /// conflicting payload from it).
    pub fn newest_not_in(&self, exclude: &[(Digest, Round)]) -> Option<(Digest, Round)> {
        self.known_by_round
            .iter()
            .rev()
            .find(|(_, d)| !exclude.iter().any(|(e, _)| e == d))
            .map(|(r, d)| (*d, *r))
    }

    /// The mempool collected every round at or below `gc_round`: forget those.
    pub fn prune(&mut self, gc_round: Round) {
        if gc_round <= self.horizon {
            return;
        }
        self.horizon = gc_round;
        let keep = (gc_round.next(), Digest::default());
        let kept = self.known_by_round.split_off(&keep);
        for (_, d) in std::mem::replace(&mut self.known_by_round, kept) {
            self.known.remove(&d);
        }
        let kept = self.carried_by_round.split_off(&keep);
        for (_, d) in std::mem::replace(&mut self.carried_by_round, kept) {
            self.carried.remove(&d);
        }
        self.pending.retain(|(_, r)| *r > gc_round);
    }

    /// The GC horizon last pruned at.
    pub fn horizon(&self) -> Round {
        self.horizon
    }

    /// Sizes: (held, pending, carried).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.known.len(), self.pending.len(), self.carried.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::Hasher;

    fn d(i: u64) -> Digest {
        Hasher::new().update_u64(i).finalize()
    }

    #[test]
    fn pending_until_carried_and_availability_by_round() {
        let mut p = PayloadTracker::default();
        assert!(p.on_certificate(d(1), Round(1)));
        assert!(!p.on_certificate(d(1), Round(1)));
        p.on_certificate(d(2), Round(2));
        assert_eq!(p.next_payload(10), vec![(d(1), Round(1)), (d(2), Round(2))]);
        p.mark_carried(&[(d(1), Round(1))]);
        assert_eq!(p.next_payload(10), vec![(d(2), Round(2))]);
        assert_eq!(
            p.availability(&[(d(1), Round(1)), (d(2), Round(2))]),
            Availability::Available
        );
        assert_eq!(
            p.availability(&[(d(2), Round(3))]),
            Availability::WrongRound(d(2))
        );
        assert_eq!(
            p.availability(&[(d(3), Round(3))]),
            Availability::Missing(vec![d(3)])
        );
        // Carried before it arrived: never pending.
        p.mark_carried(&[(d(4), Round(4))]);
        p.on_certificate(d(4), Round(4));
        assert_eq!(p.next_payload(10), vec![(d(2), Round(2))]);
        assert_eq!(p.newest_not_in(&[]), Some((d(4), Round(4))));
    }

    #[test]
    fn only_certificates_without_an_arrived_child_wait_to_be_proposed() {
        let mut p = PayloadTracker::default();
        // Round 1: four certificates; round 2: two, referencing three of them.
        for i in 1..=4 {
            assert!(p.on_certificate_with_parents(d(i), Round(1), &[]));
        }
        assert!(p.on_certificate_with_parents(d(5), Round(2), &[d(1), d(2), d(3)]));
        assert!(p.on_certificate_with_parents(d(6), Round(2), &[d(1), d(2), d(3)]));
        // A repeat changes nothing.
        assert!(!p.on_certificate_with_parents(d(6), Round(2), &[d(4)]));
        // A parent is only matched in the round below its child: d(4) (round 1) named
        // by a round-3 certificate stays pending (d(7) itself waits, being new).
        assert!(p.on_certificate_with_parents(d(7), Round(3), &[d(4)]));
        assert!(p.next_payload(10).contains(&(d(4), Round(1))));
        p.mark_carried(&[(d(7), Round(3))]);
        assert_eq!(
            p.next_payload(10),
            vec![(d(4), Round(1)), (d(5), Round(2)), (d(6), Round(2))]
        );
        // Thirty rounds of four certificates each referencing the round below: only the
        // top round (and the one round-1 certificate nobody referenced) stays pending.
        let mut below = vec![d(5), d(6)];
        for r in 3..=32u64 {
            let this: Vec<Digest> = (0..4).map(|a| d(r * 100 + a)).collect();
            for c in &this {
                p.on_certificate_with_parents(*c, Round(r), &below);
            }
            below = this;
        }
        let pending = p.next_payload(100);
        assert_eq!(pending.len(), 5, "{pending:?}");
        assert_eq!(pending[0], (d(4), Round(1)));
        assert!(pending[1..].iter().all(|(_, r)| *r == Round(32)));
        assert_eq!(
            p.sizes().0,
            4 + 2 + 1 + 30 * 4,
            "every certificate is still held"
        );
    }

    #[test]
    fn the_horizon_prunes_and_excuses_collected_rounds() {
        let mut p = PayloadTracker::default();
        for i in 1..=10 {
            p.on_certificate(d(i), Round(i));
        }
        p.mark_carried(&[(d(1), Round(1)), (d(9), Round(9))]);
        p.prune(Round(5));
        assert_eq!(p.sizes(), (5, 4, 1));
        assert!(!p.holds(&d(5)));
        // Collected rounds need not be held; newer ones must.
        assert_eq!(
            p.availability(&[(d(3), Round(3)), (d(7), Round(7))]),
            Availability::Available
        );
        assert_eq!(
            p.availability(&[(d(99), Round(6))]),
            Availability::Missing(vec![d(99)])
        );
        assert!(!p.on_certificate(d(100), Round(4)));
    }

    #[test]
    fn carried_claims_that_contradict_or_run_far_ahead_are_not_kept() {
        let mut p = PayloadTracker::default();
        p.on_certificate(d(1), Round(1));
        // The held certificate's round is 1: a claim of round 7 is a lie.
        p.mark_carried(&[(d(1), Round(7))]);
        assert_eq!(p.sizes().2, 0);
        assert!(p.has_pending());
        // An unknown certificate far above anything held is not remembered.
        p.mark_carried(&[(d(2), Round(1 + CARRIED_LOOKAHEAD + 1))]);
        assert_eq!(p.sizes().2, 0);
        // One within the lookahead is (it may arrive later), and so is the truth.
        p.mark_carried(&[(d(3), Round(1 + CARRIED_LOOKAHEAD)), (d(1), Round(1))]);
        assert_eq!(p.sizes().2, 2);
        assert!(!p.has_pending());
    }
}
