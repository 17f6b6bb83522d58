//! A per-peer limit on requests a core answers with bulk replies (HotStuff's block
//! chains, Snowman's ancestors and accepted blocks): one member asking without pause
//! must not make a node read and send without bound.

use crate::core::Time;
use primitives::NodeId;
use std::collections::BTreeMap;
use std::time::Duration;

/// Requests answered per peer per second, at most `per_second`; the others are refused
/// (counted in `refused`).
#[derive(Debug)]
pub struct ServeRate {
    per_second: u32,
    /// Per peer: the start of its current second and the requests in it.
    windows: BTreeMap<NodeId, (Time, u32)>,
    /// Requests refused so far.
    pub refused: u64,
}

impl ServeRate {
    /// A limit of `per_second` requests per peer.
    pub fn new(per_second: u32) -> Self {
        ServeRate {
            per_second,
            windows: BTreeMap::new(),
            refused: 0,
        }
    }

    /// Whether a request from `peer` at `now` may be answered (and count it).
    pub fn admit(&mut self, peer: NodeId, now: Time) -> bool {
        let w = self.windows.entry(peer).or_insert((now, 0));
        if now.since(w.0) >= Duration::from_secs(1) {
            *w = (now, 0);
        }
        w.1 = w.1.saturating_add(1);
        if w.1 > self.per_second {
            self.refused += 1;
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Time {
        Time(Duration::from_millis(ms))
    }

    #[test]
    fn a_flooding_peer_is_refused_past_its_rate_and_others_are_not() {
        let mut rate = ServeRate::new(5);
        let admitted = (0..100).filter(|_| rate.admit(NodeId(1), at(0))).count();
        assert_eq!(admitted, 5);
        assert_eq!(rate.refused, 95);
        assert!(rate.admit(NodeId(2), at(10)));
        assert!(!rate.admit(NodeId(1), at(999)));
        assert!(rate.admit(NodeId(1), at(1_000)));
    }
}
