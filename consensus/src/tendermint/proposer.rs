//! `proposer(h, r)`: weighted round robin, the same on every node.
//!
//! The schedule is CometBFT's proposer-priority rule run from all-zero priorities: at
//! each slot every member's priority grows by its weight, the highest priority proposes
//! (ties to the lower id) and loses the total weight. After `W = total weight / gcd`
//! slots each member has proposed exactly `weight / gcd` times and the priorities are
//! back at zero, so the schedule is periodic with period `W`. Slot `h + r` proposes for
//! height `h`, round `r` (a failed round hands over to the next slot, as CometBFT's
//! per-round priority increments do). Periods above [`MAX_PERIOD`] slots are cut there
//! (each member still proposes in proportion to its weight, to within one slot).

use primitives::{Committee, NodeId};

/// Longest precomputed schedule.
pub const MAX_PERIOD: usize = 1 << 16;

/// The precomputed proposer of every slot of one period.
#[derive(Clone, Debug)]
pub struct ProposerSchedule {
    slots: Vec<NodeId>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl ProposerSchedule {
    /// The schedule of `committee`.
    pub fn new(committee: &Committee) -> Self {
        let members: Vec<(NodeId, u64)> = committee
            .members()
            .iter()
            .map(|m| (m.id, m.weight.0))
            .filter(|(_, w)| *w > 0)
            .collect();
        let g = members.iter().fold(0, |g, (_, w)| gcd(g, *w)).max(1);
        let weights: Vec<i128> = members.iter().map(|(_, w)| (*w / g) as i128).collect();
        let total: i128 = weights.iter().sum();
        let period = (total.max(1) as u128).min(MAX_PERIOD as u128) as usize;
        let mut priority = vec![0i128; members.len()];
        let mut slots = Vec::with_capacity(period);
        for _ in 0..period {
            for (p, w) in priority.iter_mut().zip(&weights) {
                *p += *w;
            }
            let mut best = 0;
            for i in 1..priority.len() {
                if priority[i] > priority[best] {
                    best = i;
                }
            }
            match members.get(best) {
                Some((id, _)) => slots.push(*id),
                None => break,
            }
            priority[best] -= total;
        }
        if slots.is_empty() {
            slots.push(committee.id_at(0).unwrap_or_default());
        }
        ProposerSchedule { slots }
    }

    /// `proposer(h, r)`.
    pub fn proposer(&self, height: u64, round: u64) -> NodeId {
        let slot = height.wrapping_add(round) % self.slots.len() as u64;
        self.slots[slot as usize]
    }

    /// Slots per period.
    pub fn period(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn equal_weights_rotate_in_id_order() {
        let (c, _) = Committee::generate(4, 1, &["h".into()], 1000, Some(1)).unwrap();
        let s = ProposerSchedule::new(&c);
        assert_eq!(s.period(), 4);
        let order: Vec<NodeId> = (0..8).map(|h| s.proposer(h, 0)).collect();
        let ids: Vec<NodeId> = c.ids().collect();
        assert_eq!(order[..4], ids[..]);
        assert_eq!(order[4..], ids[..]);
        // A failed round hands over to the next slot.
        assert_eq!(s.proposer(0, 1), s.proposer(1, 0));
    }

    #[test]
    fn members_propose_in_proportion_to_their_weight() {
        let (c, _) = Committee::generate(3, 1, &["h".into()], 1000, Some(2)).unwrap();
        let mut file = c.to_file();
        for (m, w) in file.member.iter_mut().zip([6u64, 3, 3]) {
            m.weight = w;
        }
        let c = Committee::new(file).unwrap();
        let s = ProposerSchedule::new(&c);
        assert_eq!(s.period(), 4); // weights 6, 3, 3 divided by 3
        let mut count: BTreeMap<NodeId, usize> = BTreeMap::new();
        for h in 0..400 {
            *count.entry(s.proposer(h, 0)).or_default() += 1;
        }
        let ids: Vec<NodeId> = c.ids().collect();
        assert_eq!(count[&ids[0]], 200);
        assert_eq!(count[&ids[1]], 100);
        assert_eq!(count[&ids[2]], 100);
        // Interleaved: the heavy member proposes first and last of the period.
        let period: Vec<NodeId> = (0..4).map(|h| s.proposer(h, 0)).collect();
        assert_eq!(period, vec![ids[0], ids[1], ids[2], ids[0]]);
    }
}
