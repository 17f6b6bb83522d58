//! Leader schedules shared by the cores: `proposer(h, r)`, weighted round robin, the same
//! on every node (Tendermint proposes by it; Bullshark and Tusk pick anchor leaders by
//! it, one slot per leader round).
//!
//! The schedule is CometBFT's proposer-priority rule run from all-zero priorities: at
//! each slot every member's priority grows by its weight, the highest priority proposes
//! (ties to the lower id) and loses the total weight. After `W = total weight / gcd`
//! slots each member has proposed exactly `weight / gcd` times and the priorities are
//! back at zero, so the schedule is periodic with period `W`. Round 0 of height `h` is
//! slot `h`; each failed round moves `stride` slots on, `stride` being the first number
//! from a third of the period up that is coprime with it (so the rounds of one height
//! visit every slot). CometBFT moves one slot per round; then a run of consecutive
//! crashed members (neighbours in id order, often neighbours in a rack) costs each
//! height that starts in the run one failed round per member left in it, while a
//! stride of a third of the ring leaves the run in one round for any run shorter than a
//! third of the committee. Periods above [`MAX_PERIOD`] slots are cut there (each
//! member still proposes in proportion to its weight, to within one slot).

use primitives::{Committee, NodeId};

/// Longest precomputed schedule.
pub const MAX_PERIOD: usize = 1 << 16;

/// The precomputed proposer of every slot of one period.
#[derive(Clone, Debug)]
pub struct ProposerSchedule {
    slots: Vec<NodeId>,
    stride: u64,
    /// Chosen proposers of round 0 of heights 1, 2, ... (Twins testing), ahead of the
    /// rotation.
    chosen: Vec<NodeId>,
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
        let p = slots.len() as u64;
        let stride = (p.div_ceil(3)..=p)
            .find(|s| *s > 0 && gcd(*s, p) == 1)
            .unwrap_or(1);
        ProposerSchedule {
            slots,
            stride,
            chosen: Vec::new(),
        }
    }

    /// This schedule with round 0 of heights `1..=chosen.len()` proposed by `chosen`,
    /// in order, instead of by the rotation. Twins testing chooses leaders this way (see
    /// [`chosen_leaders`]). In such a height the chosen member and the one the rotation
    /// gave round 0 swap places in every round, so with equal weights (as in Twins) each
    /// member still holds as many rounds (Snowman: proposer windows) of the height as
    /// under the rotation (with unequal weights the two swap their counts too); every
    /// other height keeps the rotation.
    pub fn with_chosen(mut self, chosen: Vec<NodeId>) -> Self {
        self.chosen = chosen;
        self
    }

    /// `proposer(h, r)`.
    pub fn proposer(&self, height: u64, round: u64) -> NodeId {
        let rotation = self.rotation(height, round);
        let Some(chosen) = height
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.chosen.get(i))
        else {
            return rotation;
        };
        let displaced = self.rotation(height, 0);
        if rotation == displaced {
            *chosen
        } else if rotation == *chosen {
            displaced
        } else {
            rotation
        }
    }

    fn rotation(&self, height: u64, round: u64) -> NodeId {
        let p = self.slots.len() as u64;
        let slot = (height % p + (round % p) * self.stride % p) % p;
        self.slots[slot as usize]
    }

    /// Slots a failed round moves on.
    pub fn stride(&self) -> u64 {
        self.stride
    }

    /// Slots per period.
    pub fn period(&self) -> usize {
        self.slots.len()
    }
}

/// Most leaders a configuration may choose (Twins cases have at most 64 rounds).
pub const MAX_CHOSEN: usize = 1024;

/// Check the length of a configuration's `leaders` option (members are checked against
/// the committee when the core is built, [`chosen_leaders`]).
pub fn check_chosen_count(leaders: &[u16]) -> Result<(), String> {
    if leaders.len() > MAX_CHOSEN {
        return Err(format!("leaders: at most {MAX_CHOSEN} chosen leaders"));
    }
    Ok(())
}

/// Check a configuration's chosen leaders (the `leaders` option of every core, for
/// Twins testing: the leaders of its first instances, overriding the rotation) against
/// `committee`: each must be a member with voting weight, at most [`MAX_CHOSEN`].
pub fn chosen_leaders(committee: &Committee, leaders: &[u16]) -> Result<Vec<NodeId>, String> {
    check_chosen_count(leaders)?;
    leaders
        .iter()
        .map(|l| match committee.member(NodeId(*l)) {
            Some(m) if m.weight.0 > 0 => Ok(NodeId(*l)),
            _ => Err(format!("leaders: {l} is not a voting member")),
        })
        .collect()
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
        // A failed round moves a third of the ring on (stride 3 of 4: coprime).
        assert_eq!(s.proposer(0, 1), ids[3]);
        let rounds: std::collections::BTreeSet<NodeId> = (0..4).map(|r| s.proposer(5, r)).collect();
        assert_eq!(rounds.len(), 4, "the rounds of a height visit every member");
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

    #[test]
    fn a_run_of_three_crashed_neighbours_in_ten_costs_one_round() {
        let (c, _) = Committee::generate(10, 1, &["h".into()], 1000, Some(3)).unwrap();
        let s = ProposerSchedule::new(&c);
        assert_eq!(s.stride(), 7);
        let ids: Vec<NodeId> = c.ids().collect();
        let crashed = &ids[..3];
        for h in 0..10 {
            let live_round = (0..10).find(|r| !crashed.contains(&s.proposer(h, *r)));
            assert!(
                live_round.is_some_and(|r| r <= 1),
                "height {h}: {live_round:?}"
            );
        }
    }

    #[test]
    fn chosen_leaders_replace_round_zero_of_the_first_heights_only() {
        let (c, _) = Committee::generate(4, 1, &["h".into()], 1000, Some(4)).unwrap();
        let ids: Vec<NodeId> = c.ids().collect();
        let chosen = chosen_leaders(&c, &[ids[2].0, ids[2].0, ids[0].0]).unwrap();
        let plain = ProposerSchedule::new(&c);
        let s = ProposerSchedule::new(&c).with_chosen(chosen);
        assert_eq!(s.proposer(1, 0), ids[2]);
        assert_eq!(s.proposer(2, 0), ids[2]);
        assert_eq!(s.proposer(3, 0), ids[0]);
        for h in [0, 4, 5, 100] {
            assert_eq!(s.proposer(h, 0), plain.proposer(h, 0));
        }
        // In a chosen height, the chosen member and the one the rotation put first swap
        // places in every round: each member holds as many rounds as in the rotation.
        for h in 1..4u64 {
            let chosen = s.proposer(h, 0);
            let displaced = plain.proposer(h, 0);
            for r in 0..c.size() as u64 * 3 {
                let want = match plain.proposer(h, r) {
                    x if x == displaced => chosen,
                    x if x == chosen => displaced,
                    x => x,
                };
                assert_eq!(s.proposer(h, r), want, "height {h} round {r}");
            }
            let mut held: Vec<NodeId> = (0..4).map(|r| s.proposer(h, r)).collect();
            let mut rotation: Vec<NodeId> = (0..4).map(|r| plain.proposer(h, r)).collect();
            held.sort();
            rotation.sort();
            assert_eq!(held, rotation, "height {h}: a permutation of the rotation");
        }
        assert!(chosen_leaders(&c, &[99]).is_err(), "not a member");
    }
}
