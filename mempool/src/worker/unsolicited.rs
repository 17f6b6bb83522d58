//! Batches a peer pushed that no header or certificate has named yet, per sender.
//!
//! Narwhal's workers store the batches their peers broadcast before any header names
//! them (that is how a certificate comes to guarantee availability). A Byzantine member
//! can push batches that it never proposes; without a bound each honest worker stores
//! them until garbage collection, and with the history retention for thousands of
//! rounds. Here:
//! - each sender has [`PER_MEMBER`] places for batches it pushed that nothing has named
//!   yet; past them its pushes are refused (a reliable sender retries after its
//!   backoff, so an honest author slowed by a stalled DAG is held back, not lost: its
//!   batch is fetched from a voter once a certificate names it);
//! - a batch leaves the set when a certificate in the DAG names it, or a committed
//!   entry (delivered, or installed from the committed history) does: it is then kept
//!   like any certified batch;
//! - one still unnamed when its tag falls to the GC round is deleted then, not
//!   `history_retention_rounds` later: no certificate of a round the DAG still holds
//!   carries it (those are kept by the caller), and should a late certificate name it,
//!   the voters that named it hold it.

use primitives::{Digest, NodeId, Round};
use std::collections::BTreeMap;

/// Batches one member may have pushed that nothing named yet.
pub(crate) const PER_MEMBER: usize = 256;

/// The unnamed pushed batches, by digest, with their sender and tag.
#[derive(Default)]
pub(crate) struct Unsolicited {
    batches: BTreeMap<Digest, (NodeId, Round)>,
    per_member: BTreeMap<NodeId, usize>,
}

impl Unsolicited {
    /// Whether `from` may push one more.
    pub(crate) fn has_room(&self, from: NodeId) -> bool {
        self.per_member.get(&from).copied().unwrap_or(0) < PER_MEMBER
    }

    /// `from` pushed `digest`, stored under `tag`.
    pub(crate) fn add(&mut self, digest: Digest, from: NodeId, tag: Round) {
        if self.batches.insert(digest, (from, tag)).is_none() {
            *self.per_member.entry(from).or_default() += 1;
        }
    }

    /// A header or certificate named these: they are no longer unsolicited.
    pub(crate) fn named(&mut self, digests: &[Digest]) {
        for d in digests {
            if let Some((from, _)) = self.batches.remove(d) {
                self.release(from);
            }
        }
    }

    fn release(&mut self, from: NodeId) {
        if let Some(n) = self.per_member.get_mut(&from) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_member.remove(&from);
            }
        }
    }

    /// The batches tagged below `gc_round` leave the set: those in `keep` (a certificate
    /// the DAG holds carries them: named after all) are kept, the others are returned
    /// for deletion.
    pub(crate) fn collect(
        &mut self,
        gc_round: Round,
        keep: &crate::dag::CarriedBatches,
    ) -> Vec<Digest> {
        let old: Vec<(Digest, NodeId)> = self
            .batches
            .iter()
            .filter(|(_, (_, tag))| *tag < gc_round)
            .map(|(d, (from, _))| (*d, *from))
            .collect();
        let mut gone = Vec::new();
        for (d, from) in old {
            self.batches.remove(&d);
            self.release(from);
            if !keep.contains(&d) {
                gone.push(d);
            }
        }
        gone
    }

    /// How many there are.
    pub(crate) fn len(&self) -> usize {
        self.batches.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: usize) -> Digest {
        Digest::of(&i.to_le_bytes())
    }

    #[test]
    fn one_member_fills_only_its_own_places() {
        let mut u = Unsolicited::default();
        let (flooder, honest) = (NodeId(3), NodeId(1));
        for i in 0..PER_MEMBER {
            assert!(u.has_room(flooder));
            u.add(d(i), flooder, Round(5));
        }
        assert!(!u.has_room(flooder));
        assert!(u.has_room(honest));
        // A header naming one frees a place.
        u.named(&[d(0)]);
        assert!(u.has_room(flooder));
        assert_eq!(u.len(), PER_MEMBER - 1);
    }

    #[test]
    fn unnamed_batches_below_the_gc_round_are_collected_unless_kept() {
        let mut u = Unsolicited::default();
        u.add(d(1), NodeId(3), Round(5));
        u.add(d(2), NodeId(3), Round(9));
        u.add(d(3), NodeId(2), Round(5));
        let keep = [d(3)].into_iter().collect();
        assert_eq!(u.collect(Round(8), &keep), vec![d(1)]);
        // d(3) was carried by a certificate: kept, and no longer counted.
        assert_eq!(u.len(), 1);
        assert!(u.has_room(NodeId(3)));
    }
}
